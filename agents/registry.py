"""Build backends, agents and critics from short names (CLI flags, suite files, notebooks).

- LLMs: ``openai:URL:MODEL`` (any OpenAI-compatible server, e.g.
  ``openai:http://127.0.0.1:8000/v1:Qwen/Qwen2.5-7B-Instruct``), ``hf:PATH`` (transformers),
  ``vllm:MODEL`` (in-process vLLM).
- Agents: ``direct``, ``cot``, ``rag``, ``react``, ``search_o1``, ``re2search`` (LLM agents),
  ``NAME++`` (that agent with a critic choosing among samples; ``re2search++`` is the
  paper's Re2Search++), ``heuristic`` and ``oracle`` (no model).
- Critics: ``rm:PATH`` (a reward model), ``judge`` (an LLM judge on the agent's backend),
  ``gold`` (gold-evidence oracle critic).
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Mapping
from typing import Any

from raggym.agents.base import Agent, LLMAgent, PolicyAgent
from raggym.agents.llm.base import LLM

__all__ = [
    "AGENTS",
    "POLICIES",
    "agent_names",
    "agent_option_names",
    "make_agent",
    "make_critic",
    "make_llm",
]

AGENTS: dict[str, str] = {
    "direct": "raggym.agents.direct:DirectAgent",
    "cot": "raggym.agents.direct:CoTAgent",
    "rag": "raggym.agents.rag:RAGAgent",
    "react": "raggym.agents.react:ReActAgent",
    "search_o1": "raggym.agents.search_o1:SearchO1Agent",
    "re2search": "raggym.agents.re2search:Re2SearchAgent",
}
"""LLM agent names -> ``module:Class``."""

POLICIES: dict[str, str] = {
    "heuristic": "raggym.agents.baselines:QuestionSearchHeuristic",
    "oracle": "raggym.agents.baselines:GoldEvidenceOracle",
}
"""Model-free baseline names -> ``module:Class``."""


def agent_names() -> list[str]:
    """Every name :func:`make_agent` accepts (``NAME++``: ``NAME`` with a critic choosing)."""
    return sorted([*AGENTS, *POLICIES, *(f"{name}++" for name in AGENTS)])


def agent_option_names(name: str) -> frozenset[str]:
    """The ``options`` keys :func:`make_agent` accepts for agent ``name``.

    Read from the constructor signatures along the class's bases (a constructor taking
    ``**kwargs`` passes them on to its base's), so a suite can reject a misspelt option
    before anything is built. The LLM itself is not an option.

    Raises:
        ValueError: ``name`` is not an agent name.
    """
    base_name = name[:-2] if name.endswith("++") else name
    target = POLICIES.get(name) or AGENTS.get(base_name)
    if target is None:
        raise ValueError(f"unknown agent {name!r}; known: {agent_names()}")
    cls = _load(target)
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if klass is object:
            break  # object() takes no options
        if init is None:  # inherits its base's constructor
            continue
        params = list(inspect.signature(init).parameters.values())[1:]  # self
        if name not in POLICIES:
            params = [p for p in params if p.name != "llm"]
        names.update(
            p.name
            for p in params
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        )
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
            break
    return frozenset(names)


_OPENAI = re.compile(r"^openai:(?P<url>https?://[^/:\s]+(?::\d+)?(?:/[^:\s]*)?):(?P<model>\S.*)$")


def _load(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def make_llm(spec: str, **kwargs: Any) -> LLM:
    """Build a backend from ``openai:URL:MODEL``, ``hf:PATH`` or ``vllm:MODEL``.

    ``kwargs`` go to the backend's constructor (e.g. ``concurrency=64``,
    ``api_key_env="OPENAI_API_KEY"``; no key is sent unless one is given).
    """
    if not isinstance(spec, str):
        raise TypeError(f"an LLM spec must be a string, got {type(spec).__name__}")
    kind, _, rest = spec.partition(":")
    if kind == "openai":
        match = _OPENAI.match(spec)
        if match is None:
            raise ValueError(
                f"bad LLM spec {spec!r}: expected openai:URL:MODEL, e.g. "
                "openai:http://127.0.0.1:8000/v1:Qwen/Qwen2.5-7B-Instruct"
            )
        from raggym.agents.llm.openai_compat import OpenAICompatibleLLM

        return OpenAICompatibleLLM(base_url=match["url"], model=match["model"], **kwargs)
    if kind == "hf" and rest:
        from raggym.agents.llm.hf import TransformersLLM

        return TransformersLLM(rest, **kwargs)
    if kind == "vllm" and rest:
        from raggym.agents.llm.vllm_backend import VLLMLLM

        return VLLMLLM(rest, **kwargs)
    raise ValueError(f"bad LLM spec {spec!r}: expected openai:URL:MODEL, hf:PATH or vllm:MODEL")


def make_critic(
    spec: str, *, llm: LLM | None = None, retriever: Any = None, k: int = 5, **kwargs: Any
) -> Any:
    """Build a critic: ``rm:PATH``, ``judge`` (needs ``llm``) or ``gold`` (needs ``retriever``)."""
    kind, _, rest = spec.partition(":")
    if kind == "rm" and rest:
        from raggym.agents.critics.reward_model import RewardModelCritic

        return RewardModelCritic(rest, **kwargs)
    if kind == "judge":
        if llm is None:
            raise ValueError("the 'judge' critic needs an LLM backend (llm=...)")
        from raggym.agents.critics.llm_judge import LLMJudgeCritic

        return LLMJudgeCritic(llm, **kwargs)
    if kind == "gold":
        if retriever is None:
            raise ValueError("the 'gold' critic needs the environment's retriever (retriever=...)")
        from raggym.agents.critics.gold import GoldEvidenceCritic

        return GoldEvidenceCritic(retriever, k=k, **kwargs)
    raise ValueError(f"bad critic spec {spec!r}: expected rm:PATH, judge or gold")


def make_agent(
    name: str,
    llm: LLM | None = None,
    *,
    critic: Any = None,
    n: int = 10,
    options: Mapping[str, Any] | None = None,
) -> Agent:
    """Build an agent by name; LLM agents need ``llm``, ``re2search++`` also a ``critic``.

    ``options`` go to the agent's constructor (e.g. ``temperature``, ``prompt``).
    """
    extra = dict(options or {})
    if name in POLICIES:
        return PolicyAgent(_load(POLICIES[name])(**extra))
    base_name = name[:-2] if name.endswith("++") else name
    if base_name not in AGENTS:
        raise ValueError(f"unknown agent {name!r}; known: {agent_names()}")
    if llm is None:
        raise ValueError(f"agent {name!r} needs an LLM backend (llm=...)")
    actor: LLMAgent = _load(AGENTS[base_name])(llm, **extra)
    if base_name == name:
        return actor
    if critic is None:
        raise ValueError(f"agent {name!r} needs a critic (critic=...)")
    from raggym.agents.critic_guided import CriticGuidedAgent

    return CriticGuidedAgent(actor, critic, n=n, name=name)
