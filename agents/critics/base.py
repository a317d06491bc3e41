"""The critic contract: score the candidate actions of a step, many steps at a time.

A critic receives groups (one group per step: the candidates sampled there) and returns
one :class:`CriticScore` per candidate. Higher is better. A critic that fails on a
candidate returns ``score=None`` with the error: the failure is recorded, never read as 0.

:func:`critic_input` is the one text rendering of (state, action) that reward-model
critics score and that critic training data is built from, so training and inference
see the same strings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from raggym_env import Action, Answer, QAExample, Search
from raggym_env.observation import Observation

__all__ = [
    "CallableCritic",
    "Critic",
    "CriticItem",
    "CriticScore",
    "action_text",
    "critic_input",
    "state_text",
]

_DOC_CHARS = 300


@dataclass(frozen=True)
class CriticItem:
    """One candidate to score.

    Attributes:
        observation: the environment observation the candidate answers.
        text: the candidate's raw model text.
        action: its parsed action (``None`` if it did not parse).
        prompt: the messages the actor saw (LLM judges may show them).
        example: the episode's question with gold; only gold-reading critics use it.
        summaries: the history as the actor saw it when it reads each search as a condensed
            answer: one ``(query, answer)`` pair per search; empty when it reads documents.
    """

    observation: Observation
    text: str
    action: Action | None
    prompt: tuple[Mapping[str, str], ...] = ()
    example: QAExample | None = None
    summaries: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class CriticScore:
    """A critic's verdict on one candidate: a score, its raw output, or why it failed."""

    score: float | None
    output: str | None = None
    error: str | None = None


@runtime_checkable
class Critic(Protocol):
    """Scores candidates: ``score(groups)[i][j]`` is group ``i``'s candidate ``j``."""

    name: str

    def score(self, groups: Sequence[Sequence[CriticItem]]) -> list[list[CriticScore]]:
        """Score every candidate of every group."""
        ...


def state_text(observation: Observation, doc_chars: int = _DOC_CHARS) -> str:
    """The question, options and search history as plain text (documents shortened)."""
    lines = [f"Question: {observation['question']}"]
    for option in observation.get("options", ()):
        lines.append(f"{option['letter']}. {option['text']}")
    for i, step in enumerate(observation.get("history", ()), 1):
        lines.append(f"Search {i}: {step['query']}")
        for doc in step["documents"]:
            text = " ".join(str(doc["text"]).split())
            if len(text) > doc_chars:
                text = text[: doc_chars - 3] + "..."
            lines.append(f"- {doc['title']}: {text}")
    return "\n".join(lines)


def action_text(action: Action | None, raw_text: str = "") -> str:
    """An action in the environment's canonical text form (the raw text if unparsed)."""
    if isinstance(action, Search):
        return f"Search: {action.query}"
    if isinstance(action, Answer):
        return f"Answer: {action.text}"
    return raw_text.strip() or "(no action)"


def critic_input(observation: Observation, action: Action | None, raw_text: str = "") -> str:
    """The text a reward-model critic scores: the state, then the proposed action."""
    return f"{state_text(observation)}\n\nNext action: {action_text(action, raw_text)}"


class CallableCritic:
    """A critic from a function ``(item) -> float`` (tests, quick experiments)."""

    def __init__(self, fn: Callable[[CriticItem], float], *, name: str = "callable") -> None:
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        self.fn = fn
        self.name = name

    def score(self, groups: Sequence[Sequence[CriticItem]]) -> list[list[CriticScore]]:
        """Apply the function to every candidate."""
        return [[CriticScore(float(self.fn(item))) for item in group] for group in groups]
