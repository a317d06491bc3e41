"""The retriever contract every backend implements: batched top-k search with scores."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from raggym_env.types import ScoredDocument

__all__ = ["IndexMismatchError", "RetrievalError", "Retriever", "check_search_args"]


@runtime_checkable
class Retriever(Protocol):
    """Anything that answers a batch of queries with ranked, scored documents.

    ``search`` is batched by design: an environment vector, a batched rollout runner or the
    retrieval server hands it every pending query at once, and backends vectorise over them.
    Results are sorted by descending score; a query may return fewer than ``k`` documents
    (a small corpus, or a query with no indexable terms).
    """

    def search(self, queries: list[str], k: int) -> list[list[ScoredDocument]]:
        """Return the top ``k`` documents for each query, one list per query, in order."""
        ...


class IndexMismatchError(ValueError):
    """An on-disk index does not belong to the corpus or settings it is loaded with."""


class RetrievalError(RuntimeError):
    """A search could not be served (e.g. a remote index is unreachable after retries).

    The environment records it in ``info`` and charges the step instead of crashing the
    rollout; other exceptions from a retriever are bugs and propagate.
    """


def check_search_args(queries: object, k: object) -> list[str]:
    """Validate ``search`` arguments per the contract; return the queries as a list.

    Raises:
        TypeError: ``queries`` is not a list/tuple of str, or ``k`` is not an int.
        ValueError: ``k < 1``.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an int, got {type(k).__name__}")
    if k <= 0:
        raise ValueError(f"k must be >= 1, got {k}")
    if isinstance(queries, (str, bytes)) or not isinstance(queries, (list, tuple)):
        raise TypeError(f"queries must be a list of str, got {type(queries).__name__}")
    for i, query in enumerate(queries):
        if not isinstance(query, str):
            raise TypeError(f"queries[{i}] must be a str, got {type(query).__name__}")
    return list(queries)
