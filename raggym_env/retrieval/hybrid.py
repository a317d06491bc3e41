"""Hybrid retrieval: weighted reciprocal rank fusion (RRF) of several retrievers.

RRF (Cormack, Clarke and Buettcher, 2009) scores a document by the ranks it gets from each
member retriever, ignoring their raw scores, so lexical and dense scores never need to be
calibrated against each other::

    score(d) = sum_i  w_i / (rrf_k + rank_i(d))

with 1-based ranks; a member that did not return ``d`` in its top ``depth`` contributes
nothing. ``rrf_k=60`` is the setting of the original paper and of the RAG-Gym paper.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from raggym_env.retrieval.base import Retriever, check_search_args
from raggym_env.types import Document, ScoredDocument

__all__ = ["FusedHit", "HybridRetriever", "reciprocal_rank_fusion"]


@dataclass(frozen=True)
class FusedHit:
    """One fused result with the evidence behind its score.

    Attributes:
        document: the document.
        score: the fused RRF score.
        ranks: its 1-based rank in each member's list (``None`` where it was absent).
        member_scores: each member's own score for it (``None`` where it was absent).
    """

    document: Document
    score: float
    ranks: tuple[int | None, ...]
    member_scores: tuple[float | None, ...]

    @property
    def best_rank(self) -> int:
        """The best (smallest) rank any member gave the document."""
        return min(rank for rank in self.ranks if rank is not None)


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[ScoredDocument]],
    weights: Sequence[float],
    rrf_k: float,
    k: int | None = None,
) -> list[FusedHit]:
    """Fuse ranked lists (one per member, best first) into one list by weighted RRF.

    A document listed twice by one member counts at its first (best) position. Documents
    whose fused score is 0 (found only by zero-weight members) are dropped. Ties in the
    fused score are broken by the best single rank, then by the member that gave it, then
    by document id, so the order is deterministic.

    Args:
        rankings: one ranked list per member.
        weights: one non-negative weight per member.
        rrf_k: the RRF smoothing constant (>= 0).
        k: keep only the best ``k`` hits (all when ``None``).
    """
    if len(rankings) != len(weights):
        raise ValueError(f"got {len(rankings)} rankings but {len(weights)} weights")
    n = len(rankings)
    ranks: dict[str, list[int | None]] = {}
    scores: dict[str, list[float | None]] = {}
    docs: dict[str, Document] = {}
    for member, ranking in enumerate(rankings):
        for position, hit in enumerate(ranking, start=1):
            doc_id = hit.document.id
            if doc_id not in ranks:
                ranks[doc_id] = [None] * n
                scores[doc_id] = [None] * n
                docs[doc_id] = hit.document
            if ranks[doc_id][member] is None:
                ranks[doc_id][member] = position
                scores[doc_id][member] = float(hit.score)
    hits = []
    for doc_id, doc_ranks in ranks.items():
        # fsum rounds exactly, so equal rank multisets give bit-identical scores.
        fused = math.fsum(
            w / (rrf_k + r) for w, r in zip(weights, doc_ranks, strict=True) if r is not None
        )
        if fused > 0:
            hits.append(FusedHit(docs[doc_id], fused, tuple(doc_ranks), tuple(scores[doc_id])))

    def order(hit: FusedHit) -> tuple[float, int, int, str]:
        best = hit.best_rank
        return (-hit.score, best, hit.ranks.index(best), hit.document.id)

    hits.sort(key=order)
    return hits if k is None else hits[:k]


class HybridRetriever:
    """Weighted reciprocal rank fusion of several retrievers (e.g. BM25 + dense).

    Each ``search`` call asks every member once, with the whole batch, for its top
    ``depth`` documents per query, fuses the lists per query and returns the best ``k``
    with the fused score. Without an explicit ``depth`` the members are asked for
    ``max(2 * k, min_depth)`` candidates (``min_depth`` 0 by default; the RAG-Gym protocol
    uses 100), so a document just below the cut of one member can still be lifted by the
    others; an explicit ``depth`` smaller than ``k`` is raised to ``k``.

    Args:
        retrievers: the members (at least one), in the order ``weights`` refer to.
        weights: one non-negative weight per member (default 1.0 each); at least one > 0.
        rrf_k: the RRF constant (>= 0); 60 as in the RRF and RAG-Gym papers.
        depth: candidates fetched from each member per query (default
            ``max(2 * k, min_depth)``).
        min_depth: the fewest candidates fetched from each member when ``depth`` is not
            given (RAG-Gym: 100, i.e. ``max(2k, 100)`` per member).
    """

    def __init__(
        self,
        retrievers: Sequence[Retriever],
        *,
        weights: Sequence[float] | None = None,
        rrf_k: float = 60,
        depth: int | None = None,
        min_depth: int = 0,
    ) -> None:
        members = list(retrievers)
        if not members:
            raise ValueError("HybridRetriever needs at least one retriever")
        for i, member in enumerate(members):
            if not isinstance(member, Retriever):
                raise TypeError(
                    f"retrievers[{i}] has no search(queries, k) method: {type(member).__name__}"
                )
        if weights is None:
            weights = [1.0] * len(members)
        weights = list(weights)
        if len(weights) != len(members):
            raise ValueError(f"got {len(weights)} weights for {len(members)} retrievers")
        for i, weight in enumerate(weights):
            if isinstance(weight, bool) or not isinstance(weight, (int, float)):
                raise TypeError(f"weights[{i}] must be a number, got {weight!r}")
            if not math.isfinite(weight) or weight < 0:
                raise ValueError(f"weights[{i}] must be finite and >= 0, got {weight!r}")
        if not any(weight > 0 for weight in weights):
            raise ValueError(f"at least one weight must be > 0, got {weights}")
        if isinstance(rrf_k, bool) or not isinstance(rrf_k, (int, float)):
            raise TypeError(f"rrf_k must be a number, got {rrf_k!r}")
        if not math.isfinite(rrf_k) or rrf_k < 0:
            raise ValueError(f"rrf_k must be finite and >= 0, got {rrf_k!r}")
        if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int)):
            raise TypeError(f"depth must be an int or None, got {depth!r}")
        if depth is not None and depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self._members = tuple(members)
        self._weights = tuple(float(weight) for weight in weights)
        self._rrf_k = rrf_k
        if isinstance(min_depth, bool) or not isinstance(min_depth, int) or min_depth < 0:
            raise ValueError(f"min_depth must be an int >= 0, got {min_depth!r}")
        self._depth = depth
        self._min_depth = min_depth

    @property
    def retrievers(self) -> tuple[Retriever, ...]:
        """The member retrievers, in weight order."""
        return self._members

    @property
    def weights(self) -> tuple[float, ...]:
        """One weight per member."""
        return self._weights

    @property
    def rrf_k(self) -> float:
        """The RRF smoothing constant."""
        return self._rrf_k

    @property
    def depth(self) -> int | None:
        """Candidates per member per query as configured (``None``: ``2 * k``)."""
        return self._depth

    def candidate_depth(self, k: int) -> int:
        """The number of candidates asked of each member when searching for ``k``."""
        if self._depth is None:
            return max(2 * k, self._min_depth)
        return max(self._depth, k)

    def __repr__(self) -> str:
        members = ", ".join(type(member).__name__ for member in self._members)
        return (
            f"HybridRetriever([{members}], weights={list(self._weights)}, "
            f"rrf_k={self._rrf_k}, depth={self._depth}, min_depth={self._min_depth})"
        )

    def _fuse(self, queries: list[str], k: int) -> list[list[FusedHit]]:
        if not queries:
            return []
        depth = self.candidate_depth(k)
        per_member = []
        for member in self._members:
            lists = member.search(queries, depth)
            if len(lists) != len(queries):
                raise ValueError(
                    f"{type(member).__name__}.search returned {len(lists)} result lists "
                    f"for {len(queries)} queries"
                )
            per_member.append(lists)
        return [
            reciprocal_rank_fusion(
                [lists[i] for lists in per_member], self._weights, self._rrf_k, k
            )
            for i in range(len(queries))
        ]

    def search(self, queries: list[str], k: int) -> list[list[ScoredDocument]]:
        """Return the best ``k`` documents per query by fused score; one call per member.

        Raises:
            TypeError: if ``queries`` is not a list of str or ``k`` not an int.
            ValueError: if ``k < 1``.
        """
        queries = check_search_args(queries, k)
        return [
            [ScoredDocument(hit.document, hit.score) for hit in hits]
            for hits in self._fuse(queries, int(k))
        ]

    def explain(self, query: str, k: int) -> list[FusedHit]:
        """Return the top ``k`` for one query with each member's rank and score, for debugging.

        Raises:
            TypeError: if ``query`` is not a str or ``k`` not an int.
            ValueError: if ``k < 1``.
        """
        if not isinstance(query, str):
            raise TypeError(f"query must be a str, got {type(query).__name__}")
        queries = check_search_args([query], k)
        return self._fuse(queries, int(k))[0]
