"""The observation and ``info`` contract of :class:`~raggym_env.env.RAGEnv`.

Agents, critics, trainers and benchmarks all read what the environment returns, so its
shape is declared once here as ``TypedDict``s and built in one place,
:func:`build_observation`, which the environment uses and which trainers use to rebuild
the observation of a recorded step exactly as the agent saw it.

Gymnasium types ``info`` as ``dict[str, Any]``; at run time the infos are plain dicts
(wrappers may add keys), and these types say which keys the environment itself sets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypedDict

from raggym_env.types import Document

__all__ = [
    "DocumentView",
    "FinalInfo",
    "GoldInfo",
    "Observation",
    "OptionView",
    "ResetInfo",
    "RetrievedInfo",
    "SearchStep",
    "StepInfo",
    "build_observation",
]


class DocumentView(TypedDict):
    """A retrieved document as observed: its corpus id, title and text."""

    id: str
    title: str
    text: str


class OptionView(TypedDict):
    """One lettered option of a multiple-choice question."""

    letter: str
    text: str


class SearchStep(TypedDict):
    """One successful search of the history: the query and its documents in rank order."""

    query: str
    documents: tuple[DocumentView, ...]


class Observation(TypedDict):
    """What the agent sees: never the gold answer or evidence.

    Attributes:
        question: the question text.
        options: the lettered options of a multiple-choice question (empty for open QA).
        history: one entry per search whose retrieval succeeded, oldest first.
        steps_remaining: actions left in the episode's budget.
    """

    question: str
    options: tuple[OptionView, ...]
    history: tuple[SearchStep, ...]
    steps_remaining: int


class ResetInfo(TypedDict):
    """The ``info`` of ``reset``: which question was posed and the episode's settings."""

    example_id: str
    multiple_choice: bool
    max_steps: int
    k: int


class RetrievedInfo(TypedDict):
    """One document a search retrieved, with its retriever score."""

    id: str
    title: str
    score: float


class StepInfo(TypedDict):
    """The ``info`` of every ``step``.

    Attributes:
        example_id: the question's id.
        step: the number of actions taken so far, this one included.
        action: the action as a dict ``{"type", "text"}``; type ``"invalid"`` (empty text)
            when the action text did not parse.
        action_error: why the action text did not parse, else ``None``.
        retrieval_error: why the search failed, else ``None``.
        retrieved: the documents this step's search retrieved (empty for other actions).
        evidence_recall: share of the gold evidence retrieved so far in the episode
            (``None`` for a question without gold evidence).
        reward_components: the named terms whose sum is the step's reward.
    """

    example_id: str
    step: int
    action: dict[str, str]
    action_error: str | None
    retrieval_error: str | None
    retrieved: list[RetrievedInfo]
    evidence_recall: float | None
    reward_components: dict[str, float]


class GoldInfo(TypedDict):
    """The ground truth, revealed in ``info`` once the episode ends."""

    answers: list[str]
    answer_letter: str | None
    evidence_titles: list[str]
    evidence_doc_ids: list[str]


class FinalInfo(StepInfo):
    """The ``info`` of the step that ends an episode (terminated or truncated).

    Attributes:
        answer: the answer given (``None`` when the budget ran out first).
        gold: the gold answers and evidence.
        metrics: EM, F1, cover-EM (accuracy for multiple choice), evidence recall and
            completeness (``None`` without gold evidence), searches and steps taken; and
            ``paper_em``, ``paper_f1`` (``paper_acc`` for multiple choice), the RAG-Gym
            paper's scoring of the answer against the first gold answer (see
            :func:`raggym_env.metrics.paper_score`).
    """

    answer: str | None
    gold: GoldInfo
    metrics: dict[str, float | None]


def build_observation(
    question: str,
    options: Mapping[str, str] | None,
    history: Iterable[tuple[str, Iterable[Document]]],
    steps_remaining: int,
) -> Observation:
    """The observation of a question after the given searches, with the budget left.

    Args:
        question: the question text.
        options: the multiple-choice options by letter, in display order (``None`` or
            empty for open QA).
        history: each successful search as ``(query, documents in rank order)``; a search
            whose retrieval failed is not part of the history.
        steps_remaining: actions left in the budget.
    """
    return {
        "question": question,
        "options": tuple(
            {"letter": letter, "text": text} for letter, text in (options or {}).items()
        ),
        "history": tuple(
            {
                "query": query,
                "documents": tuple(
                    {"id": doc.id, "title": doc.title, "text": doc.text} for doc in documents
                ),
            }
            for query, documents in history
        ),
        "steps_remaining": steps_remaining,
    }
