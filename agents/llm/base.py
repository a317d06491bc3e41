"""The batched LLM protocol every backend implements, and its request/response types.

A backend takes many chat conversations at once and returns one :class:`Completion` per
conversation, each holding ``n`` sampled texts with token usage and latency. A request
that fails after the backend's retries does not raise: its completion carries ``error``
so one bad request never sinks the batch (agents record it as data). Misconfiguration
(a bad argument, a missing dependency) raises at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

__all__ = [
    "LLM",
    "Completion",
    "LLMError",
    "Message",
    "SamplingParams",
    "check_messages",
    "truncate_at_stop",
]

Message = Mapping[str, str]
"""One chat message: ``{"role": "system" | "user" | "assistant", "content": str}``."""

_ROLES = frozenset({"system", "user", "assistant"})


class LLMError(RuntimeError):
    """A generation request failed after the backend's retries (recorded, not raised, by agents)."""


@dataclass(frozen=True)
class SamplingParams:
    """How to sample: the knobs every backend understands.

    Attributes:
        n: completions per conversation.
        temperature: 0 means greedy.
        top_p: nucleus sampling mass (1.0 keeps everything).
        max_tokens: most new tokens per completion.
        stop: strings that end a completion (the stop string itself is not returned).
        seed: sampling seed where the backend supports one (``None``: unseeded).
    """

    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 512
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.n, bool) or not isinstance(self.n, int) or self.n < 1:
            raise ValueError(f"SamplingParams.n must be a positive int, got {self.n!r}")
        if not 0.0 <= float(self.temperature) <= 5.0:
            raise ValueError(
                f"SamplingParams.temperature must be in [0, 5], got {self.temperature!r}"
            )
        if not 0.0 < float(self.top_p) <= 1.0:
            raise ValueError(f"SamplingParams.top_p must be in (0, 1], got {self.top_p!r}")
        if (
            isinstance(self.max_tokens, bool)
            or not isinstance(self.max_tokens, int)
            or self.max_tokens < 1
        ):
            raise ValueError(
                f"SamplingParams.max_tokens must be a positive int, got {self.max_tokens!r}"
            )
        if isinstance(self.stop, str) or not all(isinstance(s, str) and s for s in self.stop):
            raise ValueError(
                f"SamplingParams.stop must be a tuple of non-empty strings, got {self.stop!r}"
            )
        object.__setattr__(self, "stop", tuple(self.stop))


@dataclass(frozen=True)
class Completion:
    """The answer to one conversation: ``n`` texts, usage, latency, or the error that ended it.

    Attributes:
        texts: the sampled texts (empty when ``error`` is set).
        prompt_tokens: tokens in the prompt (0 when unknown).
        completion_tokens: tokens generated over all ``n`` texts (0 when unknown).
        latency_s: wall time of the request, retries included.
        finish_reasons: per text, e.g. ``"stop"`` or ``"length"`` (``None`` when unknown).
        error: ``"ErrorType: message"`` when the request failed after its retries.
        attempts: how many times the request was sent.
    """

    texts: tuple[str, ...] = ()
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    finish_reasons: tuple[str | None, ...] = ()
    error: str | None = None
    attempts: int = 1
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the request produced texts."""
        return self.error is None and bool(self.texts)

    @property
    def text(self) -> str:
        """The first text; raises :class:`LLMError` for a failed request."""
        if not self.ok:
            raise LLMError(self.error or "the backend returned no text")
        return self.texts[0]

    @property
    def tokens(self) -> dict[str, int]:
        """Token usage as an episode step records it."""
        return {"prompt": self.prompt_tokens, "completion": self.completion_tokens}


@runtime_checkable
class LLM(Protocol):
    """A batched chat-generation backend.

    ``generate`` returns exactly one :class:`Completion` per conversation, in order.
    """

    name: str

    def generate(
        self, conversations: Sequence[Sequence[Message]], params: SamplingParams
    ) -> list[Completion]:
        """Sample ``params.n`` completions for each conversation."""
        ...


def check_messages(conversation: Sequence[Message], where: str = "conversation") -> None:
    """Raise ``ValueError`` naming what is wrong if ``conversation`` is not chat messages."""
    if isinstance(conversation, (str, bytes)) or not isinstance(conversation, Sequence):
        raise ValueError(
            f"{where}: expected a list of {{'role', 'content'}} messages, "
            f"got {type(conversation).__name__}"
        )
    if not conversation:
        raise ValueError(f"{where}: a conversation needs at least one message")
    for i, message in enumerate(conversation):
        if not isinstance(message, Mapping):
            raise ValueError(f"{where} message {i}: expected a mapping, got {message!r}")
        role, content = message.get("role"), message.get("content")
        if role not in _ROLES:
            raise ValueError(
                f"{where} message {i}: role must be one of {sorted(_ROLES)}, got {role!r}"
            )
        if not isinstance(content, str):
            raise ValueError(
                f"{where} message {i}: content must be a string, got {type(content).__name__}"
            )


def truncate_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Cut ``text`` at the earliest stop string; return the text and whether one was found."""
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)
