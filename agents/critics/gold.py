"""A gold-evidence critic: scores candidates against the question's gold, for analysis.

:class:`GoldEvidenceCritic` reads the episode's :class:`~raggym_env.QAExample` (so it is an
oracle: use it to build critic training targets or to measure other critics, not as a
deployable critic). Scores, all in ``[0, 1]`` for valid actions:

* ``Search(query)``: the fraction of the gold evidence documents
  (``example.evidence.doc_ids``) that the query's top-``k`` retrieval *adds*: gold
  documents already present in the observation's search history count for nothing.
  ``output`` lists the newly found gold ids. A question without gold doc ids cannot be
  scored this way (``score=None`` with the error).
* ``Answer(text)``: token F1 against the gold answers for open questions, accuracy for
  multiple choice (both via :func:`raggym_env.metrics.score_answer`).
* An unparsed candidate (``action is None``) scores ``-1.0``, below any valid action, so
  rankings put malformed output last.

All search queries of all groups go to the retriever in a single ``search`` call
(duplicates sent once). A :class:`~raggym_env.retrieval.base.RetrievalError` gives those
candidates ``score=None`` with the error; other retriever exceptions are bugs and propagate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from raggym.agents.critics.base import CriticItem, CriticScore
from raggym_env import Answer, QAExample, Search
from raggym_env.metrics import score_answer
from raggym_env.retrieval.base import RetrievalError, Retriever

__all__ = ["UNPARSED_SCORE", "GoldEvidenceCritic"]

UNPARSED_SCORE = -1.0
"""The score of a candidate whose text did not parse into an action."""


def _seen_ids(observation: Any) -> set[str]:
    return {str(doc["id"]) for step in observation.get("history", ()) for doc in step["documents"]}


class GoldEvidenceCritic:
    """Scores searches by new gold evidence retrieved and answers by F1 / accuracy.

    Args:
        retriever: the retriever the environment searches with (any ``Retriever``).
        k: documents retrieved per search query (use the environment's ``k``).
        name: the critic name recorded in episodes.

    Raises:
        TypeError: ``retriever`` has no ``search`` method.
        ValueError: ``k`` is not a positive int.
    """

    def __init__(self, retriever: Retriever, k: int = 5, name: str = "gold_evidence") -> None:
        if not callable(getattr(retriever, "search", None)):
            raise TypeError(f"retriever must have a search method, got {type(retriever).__name__}")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
        self.retriever = retriever
        self.k = k
        self.name = name

    def __repr__(self) -> str:
        return f"GoldEvidenceCritic(name={self.name!r}, k={self.k})"

    def score(self, groups: Sequence[Sequence[CriticItem]]) -> list[list[CriticScore]]:
        """Score every candidate; every group's searches share one retriever call.

        Raises:
            ValueError: a candidate has no ``example`` (this critic reads gold).
        """
        queries: dict[str, int] = {}
        for g, group in enumerate(groups):
            for j, item in enumerate(group):
                if item.example is None:
                    raise ValueError(
                        f"GoldEvidenceCritic reads gold evidence: group {g} candidate {j} has "
                        "no example (pass CriticItem(example=...))"
                    )
                if isinstance(item.action, Search) and item.example.evidence.doc_ids:
                    queries.setdefault(item.action.query, len(queries))
        hits: list[list[str]] = []
        failure: str | None = None
        if queries:
            try:
                results = self.retriever.search(list(queries), self.k)
            except RetrievalError as exc:
                failure = f"{type(exc).__name__}: {exc}"
            else:
                if len(results) != len(queries):
                    raise RuntimeError(
                        f"the retriever returned {len(results)} result lists for "
                        f"{len(queries)} queries"
                    )
                hits = [[hit.document.id for hit in result] for result in results]
        out: list[list[CriticScore]] = []
        for group in groups:
            verdicts = []
            for item in group:
                example = item.example
                if example is None:  # checked above; keeps the type checker informed
                    raise ValueError("GoldEvidenceCritic needs CriticItem.example")
                action = item.action
                if isinstance(action, Answer):
                    verdicts.append(self._answer(action, example))
                elif isinstance(action, Search):
                    verdicts.append(self._search(item, action, example, queries, hits, failure))
                else:
                    verdicts.append(CriticScore(UNPARSED_SCORE, output="unparsed action"))
            out.append(verdicts)
        return out

    @staticmethod
    def _answer(action: Answer, example: QAExample) -> CriticScore:
        scores = score_answer(
            action.text,
            example.answers,
            options=example.options,
            answer_letter=example.answer_letter,
        )
        metric = "accuracy" if example.is_multiple_choice else "f1"
        return CriticScore(float(scores[metric]), output=metric)

    @staticmethod
    def _search(
        item: CriticItem,
        action: Search,
        example: QAExample,
        queries: dict[str, int],
        hits: list[list[str]],
        failure: str | None,
    ) -> CriticScore:
        gold = set(example.evidence.doc_ids)
        if not gold:
            return CriticScore(
                None, error=f"question {example.id!r} has no gold evidence doc ids to score against"
            )
        if failure is not None:
            return CriticScore(None, error=failure)
        found = set(hits[queries[action.query]]) & gold
        new = sorted(found - _seen_ids(item.observation))
        return CriticScore(len(new) / len(gold), output=", ".join(new))
