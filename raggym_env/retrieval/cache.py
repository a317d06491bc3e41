"""A thread-safe LRU result cache in front of any retriever, shareable across environments.

Rollouts ask the same queries again and again (the question itself, repeated searches,
several agents on one question). :class:`CachedRetriever` answers repeats from memory and
sends only the misses of a batch to the underlying retriever, in one batched call.
:func:`shared_cache` keeps one cached retriever per key in the process, so every
environment built with the same retriever settings shares one cache (and one model).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from raggym_env.caches import LRUCache
from raggym_env.retrieval.base import Retriever, check_search_args
from raggym_env.types import ScoredDocument

__all__ = ["SHARED_CACHE_SIZE", "CacheStats", "CachedRetriever", "shared_cache"]


@dataclass(frozen=True)
class CacheStats:
    """A snapshot of a cache's counters.

    Attributes:
        hits: queries answered from the cache (including repeats within one batch).
        misses: queries sent to the underlying retriever.
        entries: results currently stored.
        evictions: results dropped to respect ``max_entries``.
    """

    hits: int
    misses: int
    entries: int
    evictions: int

    @property
    def hit_rate(self) -> float:
        """``hits / (hits + misses)``; 0.0 before any query."""
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


_Key = tuple[str, int | None]


class CachedRetriever:
    """LRU cache of ``(query, k) -> results`` in front of a retriever; thread-safe.

    In one ``search`` call, identical queries are looked up once and every miss goes to the
    base retriever in a single batched call. Exceptions from the base propagate and are
    never cached. The lock is not held while the base searches, so two threads missing the
    same query at the same moment may both send it to the base (the results agree).

    With ``reuse_prefix=True`` one entry per query is kept and the results for a larger
    ``k`` answer any smaller ``k`` (their first ``k``). Enable it only for a base whose
    top ``k`` is always the prefix of its top ``k + n`` (true for BM25, dense and fake;
    not for :class:`~raggym_env.retrieval.hybrid.HybridRetriever`, whose candidate depth
    grows with ``k``).

    Args:
        base: the retriever to cache.
        max_entries: stored results at most (>= 1); the least recently used go first.
        reuse_prefix: answer a smaller ``k`` from the results of a larger one.
    """

    def __init__(
        self, base: Retriever, *, max_entries: int = 100_000, reuse_prefix: bool = False
    ) -> None:
        if not isinstance(base, Retriever):
            raise TypeError(f"base has no search(queries, k) method: {type(base).__name__}")
        if isinstance(max_entries, bool) or not isinstance(max_entries, int):
            raise TypeError(f"max_entries must be an int, got {max_entries!r}")
        if max_entries < 1:
            raise ValueError(f"max_entries must be >= 1, got {max_entries}")
        self._base = base
        self._max_entries = max_entries
        self._reuse_prefix = bool(reuse_prefix)
        # key -> (k the results were searched with, results)
        self._entries: OrderedDict[_Key, tuple[int, tuple[ScoredDocument, ...]]] = OrderedDict()
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0
        self._evictions = 0

    @property
    def base(self) -> Retriever:
        """The cached retriever."""
        return self._base

    @property
    def max_entries(self) -> int:
        """The capacity of the cache."""
        return self._max_entries

    @property
    def stats(self) -> CacheStats:
        """Current hit, miss, size and eviction counts."""
        with self._lock:
            return CacheStats(self._hits, self._misses, len(self._entries), self._evictions)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __repr__(self) -> str:
        stats = self.stats
        return (
            f"CachedRetriever({self._base!r}, entries={stats.entries}/{self._max_entries}, "
            f"hit_rate={stats.hit_rate:.2f})"
        )

    def clear(self) -> None:
        """Drop every stored result and reset the counters."""
        with self._lock:
            self._entries.clear()
            self._hits = self._misses = self._evictions = 0

    def _key(self, query: str, k: int) -> _Key:
        return (query, None) if self._reuse_prefix else (query, k)

    def _lookup(self, key: _Key, k: int) -> list[ScoredDocument] | None:
        """Return the stored answer for ``k`` (marking it recently used), if any; under lock."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        stored_k, results = entry
        # A list shorter than its k is exhaustive, so it answers any k.
        if stored_k < k and len(results) == stored_k:
            return None
        self._entries.move_to_end(key)
        return list(results[:k])

    def search(self, queries: list[str], k: int) -> list[list[ScoredDocument]]:
        """Return the top ``k`` per query, from the cache where possible.

        Raises:
            TypeError: if ``queries`` is not a list of str or ``k`` not an int.
            ValueError: if ``k < 1``.
        """
        queries = check_search_args(queries, k)
        k = int(k)
        answers: dict[str, list[ScoredDocument]] = {}
        missing: list[str] = []
        with self._lock:
            for query in dict.fromkeys(queries):
                found = self._lookup(self._key(query, k), k)
                if found is None:
                    missing.append(query)
                else:
                    answers[query] = found
            self._misses += len(missing)
            self._hits += len(queries) - len(missing)
        if missing:
            fetched = self._base.search(missing, k)
            if len(fetched) != len(missing):
                raise ValueError(
                    f"{type(self._base).__name__}.search returned {len(fetched)} result lists "
                    f"for {len(missing)} queries"
                )
            with self._lock:
                for query, results in zip(missing, fetched, strict=True):
                    stored = tuple(results)
                    self._store(self._key(query, k), k, stored)
                    answers[query] = list(stored)
        return [list(answers[query]) for query in queries]

    def _store(self, key: _Key, k: int, results: tuple[ScoredDocument, ...]) -> None:
        """Insert or refresh one entry, evicting the least recently used; under lock."""
        entry = self._entries.get(key)
        if entry is not None and entry[0] > k:
            self._entries.move_to_end(key)  # keep the deeper results already stored
            return
        self._entries[key] = (k, results)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
            self._evictions += 1


SHARED_CACHE_SIZE = 8
"""How many retrievers :func:`shared_cache` keeps (least recently used goes first);
:func:`raggym_env.clear_caches` empties the registry."""

_SHARED: LRUCache[Hashable, CachedRetriever] = LRUCache("retrieval.shared", SHARED_CACHE_SIZE)
_SHARED_LOCK = threading.Lock()  # held while building, so one retriever is built once


def shared_cache(
    key: Hashable,
    factory: Callable[[], Retriever],
    *,
    max_entries: int = 100_000,
    reuse_prefix: bool = False,
) -> CachedRetriever:
    """Return the process-wide cached retriever registered under ``key``, building it once.

    The first call with a given ``(key, max_entries, reuse_prefix)`` calls ``factory()``
    and wraps the result; later calls return that same object, so its model, index and
    cache are shared. Choose a key that identifies everything the retriever depends on
    (backend name, corpus content hash, options). The :data:`SHARED_CACHE_SIZE` most
    recently used stay registered; :func:`raggym_env.clear_caches` forgets them all.
    """
    registry_key = (key, max_entries, bool(reuse_prefix))
    with _SHARED_LOCK:
        cached = _SHARED.get(registry_key)
        if cached is None:
            cached = CachedRetriever(factory(), max_entries=max_entries, reuse_prefix=reuse_prefix)
            _SHARED.put(registry_key, cached)
        return cached
