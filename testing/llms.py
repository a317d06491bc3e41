"""Backends without a model: a callable from the conversation to text, and a fixed script.

They implement the :class:`~raggym.agents.llm.base.LLM` protocol exactly, so agents, runners and
critics are tested through the same code paths a real backend uses. Token counts are
whitespace words, a stand-in that keeps usage figures non-zero and deterministic.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from raggym.agents.llm.base import (
    Completion,
    Message,
    SamplingParams,
    check_messages,
    truncate_at_stop,
)

__all__ = ["MockLLM", "ScriptedLLM", "scripted_llm_from_file"]

Responder = Callable[[Sequence[Message]], "str | Sequence[str]"]


def _count(conversation: Sequence[Message]) -> int:
    return sum(len(str(m.get("content", "")).split()) for m in conversation)


class MockLLM:
    """An LLM whose reply is ``respond(conversation)``.

    ``respond`` returns one string (used for every one of the ``n`` samples) or a sequence
    of strings (sample ``i`` takes item ``i % len``). Stop strings are applied as a real
    server would. ``calls`` keeps every batch received, for assertions.

    Args:
        respond: the reply function.
        name: the backend name recorded in episodes.
        latency_s: a sleep per batch, to imitate a model's delay.
    """

    def __init__(self, respond: Responder, *, name: str = "mock", latency_s: float = 0.0) -> None:
        if not callable(respond):
            raise TypeError(f"respond must be callable, got {type(respond).__name__}")
        self.respond = respond
        self.name = name
        self.latency_s = latency_s
        self.calls: list[tuple[list[list[Message]], SamplingParams]] = []
        self._lock = threading.Lock()

    def generate(
        self, conversations: Sequence[Sequence[Message]], params: SamplingParams
    ) -> list[Completion]:
        """Reply to every conversation with ``respond``; see the class docstring."""
        for i, conversation in enumerate(conversations):
            check_messages(conversation, f"conversation {i}")
        with self._lock:
            self.calls.append(([list(c) for c in conversations], params))
        if self.latency_s:
            time.sleep(self.latency_s)
        return [self._complete(c, self._replies(c, params.n), params) for c in conversations]

    def _replies(self, conversation: Sequence[Message], n: int) -> str | Sequence[str]:
        """What ``respond`` says for one conversation (the pool its ``n`` samples cycle)."""
        return self.respond(conversation)

    def _complete(
        self, conversation: Sequence[Message], reply: str | Sequence[str], params: SamplingParams
    ) -> Completion:
        pool = [reply] if isinstance(reply, str) else list(reply)
        if not pool or not all(isinstance(r, str) for r in pool):
            raise TypeError(f"respond must return a string or strings, got {reply!r}")
        texts = tuple(
            truncate_at_stop(pool[j % len(pool)], params.stop)[0] for j in range(params.n)
        )
        return Completion(
            texts=texts,
            prompt_tokens=_count(conversation),
            completion_tokens=sum(len(t.split()) for t in texts),
            latency_s=self.latency_s,
            finish_reasons=("stop",) * params.n,
        )


class ScriptedLLM(MockLLM):
    """An LLM that plays a fixed list of replies in order, one per sample, cycling at the end."""

    def __init__(self, replies: Sequence[str], *, name: str = "scripted") -> None:
        if isinstance(replies, str) or not replies:
            raise ValueError("ScriptedLLM needs a non-empty sequence of reply strings")
        self.replies = list(replies)
        self._next = 0
        super().__init__(self._reply, name=name)

    def _reply(self, conversation: Sequence[Message]) -> str:
        reply = self.replies[self._next % len(self.replies)]
        self._next += 1
        return reply

    def _replies(self, conversation: Sequence[Message], n: int) -> list[str]:
        """Each of the ``n`` samples of a conversation takes the next reply."""
        return [self._reply(conversation) for _ in range(n)]


MAX_SCRIPT_BYTES = 64 * 1024 * 1024
"""The largest reply file :func:`scripted_llm_from_file` reads."""


def scripted_llm_from_file(path: str, *, name: str = "scripted") -> ScriptedLLM:
    """A :class:`ScriptedLLM` playing the replies of a JSON file: the ``scripted:FILE`` spec.

    The file holds a JSON list of reply strings, played in order and cycling, one per
    sample. Every ``raggym`` command that takes ``--llm`` (and a suite's ``llm``) can then
    run a whole pipeline offline, e.g. ``raggym rollout --llm scripted:replies.json``.

    Raises:
        FileNotFoundError: there is no file at ``path``.
        ValueError: the file is not a JSON list of strings (the message says what it holds).
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"scripted LLM: no reply file at {path!r}")
    expected = 'expected a JSON list of reply strings, e.g. ["Search[Paris]", "Finish[France]"]'
    if file.stat().st_size > MAX_SCRIPT_BYTES:
        raise ValueError(f"scripted LLM: {path!r} is over {MAX_SCRIPT_BYTES:,} bytes; {expected}")
    try:
        replies = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"scripted LLM: {path!r} is not JSON ({error}); {expected}") from None
    if not isinstance(replies, list) or not replies:
        got = "an empty list" if replies == [] else f"a JSON {type(replies).__name__}"
        raise ValueError(f"scripted LLM: {path!r} holds {got}; {expected}")
    for index, reply in enumerate(replies):
        if not isinstance(reply, str):
            raise ValueError(
                f"scripted LLM: reply {index} of {path!r} is a JSON {type(reply).__name__}; "
                f"{expected}"
            )
    return ScriptedLLM(replies, name=name)
