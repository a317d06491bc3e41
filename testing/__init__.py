"""The testing kit: test doubles for testing agents, critics and pipelines offline.

Everything a test of an agent needs without a model, a GPU or a network:

- :class:`MockLLM` / :class:`ScriptedLLM`: LLM backends whose replies come from a
  function or a fixed script (:mod:`raggym.testing.llms`);
- :class:`SynthResponder` / :func:`scripted_synth_llm`: a rule-based model for
  ``raggym synth`` prompts with malformed and adversarial replies at set rates
  (:mod:`raggym.testing.synth`);
- :class:`FakeRetriever`: word-overlap retrieval with call recording and injected
  failures, installed as ``retriever="fake"`` (entry point group ``raggym.retrievers``);
- :func:`tiny_corpus`, :func:`tiny_examples`, :func:`make_tiny_env`: a six-document,
  three-question task (:mod:`raggym.testing.tasks`);
- :func:`fake_openai_server`: an OpenAI-compatible HTTP server on 127.0.0.1 with a fault
  plan (:mod:`raggym.testing.fake_server`; needs ``raggym[serve]``);
- :class:`~raggym.testing.drip_server.DripServer`: a loopback HTTP server dripping its
  reply one byte at a time, for testing client deadlines (standard library only);
- :func:`build_tiny_tokenizer`, :func:`build_tiny_causal_lm`, :func:`build_tiny_classifier`:
  2-layer models built offline in seconds (:mod:`raggym.testing.tiny`; needs ``raggym[hf]``).

The pytest plugin :mod:`raggym.testing.pytest_plugin` (installed with raggym, loaded by
pytest automatically) turns these into fixtures: ``raggym_env``, ``raggym_tiny_task``,
``scripted_llm``, ``mock_llm``, ``fake_openai_server``, ``tiny_causal_lm``,
``tiny_classifier``. Every name is imported on first use, so importing this package (as
pytest does to load the plugin) costs nothing until a test asks for something.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from raggym.testing.fake_server import (
        FakeOpenAIServer,
        FakeServerStats,
        Fault,
        FaultPlan,
        create_fake_openai_app,
        fake_openai_server,
    )
    from raggym.testing.llms import MockLLM, ScriptedLLM
    from raggym.testing.retriever import FakeRetriever
    from raggym.testing.synth import SynthResponder, scripted_synth_llm
    from raggym.testing.tasks import TINY_DOCUMENTS, make_tiny_env, tiny_corpus, tiny_examples
    from raggym.testing.tiny import (
        build_tiny_causal_lm,
        build_tiny_classifier,
        build_tiny_tokenizer,
    )

__all__ = [
    "TINY_DOCUMENTS",
    "FakeOpenAIServer",
    "FakeRetriever",
    "FakeServerStats",
    "Fault",
    "FaultPlan",
    "MockLLM",
    "ScriptedLLM",
    "SynthResponder",
    "build_tiny_causal_lm",
    "build_tiny_classifier",
    "build_tiny_tokenizer",
    "create_fake_openai_app",
    "fake_openai_server",
    "make_tiny_env",
    "scripted_synth_llm",
    "tiny_corpus",
    "tiny_examples",
]

_LAZY = {
    "MockLLM": "raggym.testing.llms",
    "ScriptedLLM": "raggym.testing.llms",
    "FakeRetriever": "raggym.testing.retriever",
    "SynthResponder": "raggym.testing.synth",
    "scripted_synth_llm": "raggym.testing.synth",
    "TINY_DOCUMENTS": "raggym.testing.tasks",
    "make_tiny_env": "raggym.testing.tasks",
    "tiny_corpus": "raggym.testing.tasks",
    "tiny_examples": "raggym.testing.tasks",
    "FakeOpenAIServer": "raggym.testing.fake_server",
    "FakeServerStats": "raggym.testing.fake_server",
    "Fault": "raggym.testing.fake_server",
    "FaultPlan": "raggym.testing.fake_server",
    "create_fake_openai_app": "raggym.testing.fake_server",
    "fake_openai_server": "raggym.testing.fake_server",
    "build_tiny_causal_lm": "raggym.testing.tiny",
    "build_tiny_classifier": "raggym.testing.tiny",
    "build_tiny_tokenizer": "raggym.testing.tiny",
}


def __getattr__(name: str) -> Any:
    """Import each name of the kit on first use."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The kit's public names (imported on first use)."""
    return sorted(__all__)
