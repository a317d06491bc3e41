"""Pytest fixtures of the testing kit, loaded automatically once raggym is installed.

Registered under the ``pytest11`` entry point ``raggym``, so a project that installs
raggym can write, with no conftest and no network::

    def test_my_agent(raggym_env, scripted_llm):
        llm = scripted_llm(["Search: Ed Wood", "Answer: yes"])
        ...

Every fixture imports what it needs when it runs, so merely having raggym installed adds
nothing to a pytest session's start-up. Disable the plugin with ``-p no:raggym``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from raggym.testing.fake_server import FakeOpenAIServer
    from raggym.testing.llms import MockLLM, ScriptedLLM
    from raggym_env.env import RAGEnv
    from raggym_env.tasks.catalog import Task


@pytest.fixture
def raggym_env() -> Iterator[RAGEnv]:
    """A fresh environment on the tiny task (BM25, k=2, 10 steps); closed afterwards."""
    from raggym.testing.tasks import make_tiny_env

    env = make_tiny_env()
    yield env
    env.close()


@pytest.fixture
def raggym_env_factory() -> Iterator[Callable[..., RAGEnv]]:
    """``make(**kwargs)`` -> an environment on the tiny task; every one is closed afterwards.

    Keywords are those of :class:`~raggym_env.env.RAGEnv` (``retriever="fake"``,
    ``max_steps=3``, ``reward="f1"``, ``examples=[...]``, ...).
    """
    from raggym.testing.tasks import make_tiny_env

    made: list[RAGEnv] = []

    def make(**kwargs: Any) -> RAGEnv:
        env = make_tiny_env(**kwargs)
        made.append(env)
        return env

    yield make
    for env in made:
        env.close()


@pytest.fixture
def raggym_tiny_task() -> Task:
    """The tiny task: six documents, three two-hop questions with gold evidence."""
    from raggym.testing.tasks import make_tiny_env

    return make_tiny_env(retriever="fake").task


@pytest.fixture
def scripted_llm() -> Callable[..., ScriptedLLM]:
    """``make(replies, **kwargs)`` -> a :class:`~raggym.testing.llms.ScriptedLLM`."""
    from raggym.testing.llms import ScriptedLLM

    def make(replies: Sequence[str], **kwargs: Any) -> ScriptedLLM:
        return ScriptedLLM(replies, **kwargs)

    return make


@pytest.fixture
def mock_llm() -> Callable[..., MockLLM]:
    """``make(respond, **kwargs)`` -> a :class:`~raggym.testing.llms.MockLLM`."""
    from raggym.testing.llms import MockLLM

    def make(respond: Callable[..., Any], **kwargs: Any) -> MockLLM:
        return MockLLM(respond, **kwargs)

    return make


@pytest.fixture
def fake_openai_server() -> Iterator[FakeOpenAIServer]:
    """An OpenAI-compatible server on 127.0.0.1 (default replies; steer ``.faults``)."""
    from raggym.testing.fake_server import fake_openai_server as serve

    with serve() as server:
        yield server


@pytest.fixture(scope="session")
def tiny_causal_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of a tiny causal LM + tokenizer built offline (``hf:PATH`` loads it)."""
    from raggym.testing.tiny import build_tiny_causal_lm

    return build_tiny_causal_lm(tmp_path_factory.mktemp("raggym-tiny-lm"))


@pytest.fixture(scope="session")
def tiny_classifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of a tiny one-label sequence classifier (a reward-model critic base)."""
    from raggym.testing.tiny import build_tiny_classifier

    return build_tiny_classifier(tmp_path_factory.mktemp("raggym-tiny-classifier"))
