"""RAG quality metrics against gold evidence, per episode: context precision and recall.

No LLM is involved: a retrieved document is relevant when its corpus id is one of the
question's gold evidence document ids (``gold["evidence_doc_ids"]`` of an
:class:`~raggym_env.episode.EpisodeRecord`), the same identity the environment's
``evidence_recall`` uses. The retrieved list of an episode is every document of every search
step, steps in order and each step's documents best first, with repeats of an id dropped
(its first retrieval counts).

- **context recall** = |gold ids retrieved| / |gold ids|, the fraction of the gold evidence
  found anywhere in the episode (equal to the environment's final ``evidence_recall``).
- **context precision** = the mean, over the ranks ``k`` of the retrieved list that hold a
  relevant document, of precision@k (relevant documents in the first ``k`` / ``k``); 0.0
  when no relevant document was retrieved (or nothing was retrieved at all).

A question without gold evidence gives ``None`` (no measurement) for both, never 0.

RAGAS's context precision is the same rank-aware average, with relevance decided by an LLM
against the reference answer; ours decides it by gold document id. RAGAS's context recall
is claim-based (the share of the reference answer's claims an LLM can attribute to the
retrieved context); ours is id-based against the gold evidence documents.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from raggym_env.episode import EpisodeRecord

__all__ = [
    "RAG_METRICS",
    "context_precision",
    "context_recall",
    "episode_rag_metrics",
    "gold_evidence_ids",
    "retrieved_in_order",
]

RAG_METRICS: tuple[str, ...] = ("context_precision", "context_recall")
"""The keys :func:`episode_rag_metrics` returns."""


def _distinct(ids: Iterable[str]) -> list[str]:
    """``ids`` with repeats dropped, first occurrence kept."""
    return list(dict.fromkeys(ids))


def context_recall(retrieved_ids: Iterable[str], gold_ids: Sequence[str]) -> float | None:
    """Fraction of the distinct gold ids among ``retrieved_ids``; ``None`` without gold."""
    gold = set(gold_ids)
    if not gold:
        return None
    return len(gold.intersection(retrieved_ids)) / len(gold)


def context_precision(retrieved_ids: Iterable[str], gold_ids: Sequence[str]) -> float | None:
    """Mean precision@k over the ranks k holding a gold id (repeats dropped); ``None`` w/o gold.

    0.0 when no gold document was retrieved. Linear in the number of retrieved ids.
    """
    gold = set(gold_ids)
    if not gold:
        return None
    hits = 0
    total = 0.0
    for rank, doc_id in enumerate(_distinct(retrieved_ids), start=1):
        if doc_id in gold:
            hits += 1
            total += hits / rank
    return total / hits if hits else 0.0


def retrieved_in_order(record: EpisodeRecord) -> list[str]:
    """Distinct ids of every document the episode retrieved, steps in order, best first."""
    return _distinct(doc_id for step in record.steps for doc_id in step.retrieved_ids)


def gold_evidence_ids(record: EpisodeRecord) -> list[str]:
    """The record's gold evidence document ids (empty when it has none or they are malformed)."""
    ids = record.gold.get("evidence_doc_ids") or []
    if not isinstance(ids, (list, tuple)):
        return []
    return [i for i in ids if isinstance(i, str)]


def episode_rag_metrics(record: EpisodeRecord | Mapping[str, Any]) -> dict[str, float | None]:
    """``{"context_precision", "context_recall"}`` of one episode (``None`` without gold).

    ``record`` is an :class:`EpisodeRecord` or its JSON mapping (validated; a malformed one
    raises :class:`~raggym_env.episode.SchemaError`).
    """
    if not isinstance(record, EpisodeRecord):
        record = EpisodeRecord.from_dict(record)
    retrieved = retrieved_in_order(record)
    gold = gold_evidence_ids(record)
    return {
        "context_precision": context_precision(retrieved, gold),
        "context_recall": context_recall(retrieved, gold),
    }
