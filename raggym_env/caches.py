"""The process-wide caches, each bounded and all cleared by one switch.

Loading an index, a model or a task file is slow, and many environment copies ask for the
same one, so several modules keep what they loaded in process-wide caches. Each of them
registers itself here at import, under a name, with its size bound, so that

* :func:`clear_caches` forgets everything any of them holds (e.g. after editing a corpus
  file in place, rebuilding an index behind the process's back, or to free memory), and
* :func:`cache_info` reports every cache's current size against its bound.

Every cache evicts its least recently used entry once full. The caches of
``raggym.agents`` and the other packages join the registry when those are imported.
Caches with their own capacity, such as a :class:`~raggym_env.retrieval.cache.CachedRetriever`
in front of one retriever, belong to their object and are freed with it.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

__all__ = ["CacheInfo", "LRUCache", "cache_info", "clear_caches", "register_cache", "register_lru"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True)
class CacheInfo:
    """One registered cache's state.

    Attributes:
        name: the name it registered under (e.g. ``"bm25.indexes"``).
        entries: how many entries it holds now.
        bound: the most entries it holds; the least recently used goes beyond that.
    """

    name: str
    entries: int
    bound: int


@dataclass(frozen=True)
class _Registration:
    bound: int
    size: Callable[[], int]
    clear: Callable[[], None]


_REGISTRY: dict[str, _Registration] = {}
_REGISTRY_LOCK = threading.Lock()


def _check_bound(name: str, bound: object) -> int:
    if isinstance(bound, bool) or not isinstance(bound, int):
        raise TypeError(f"cache {name!r}: bound must be an int, got {bound!r}")
    if bound < 1:
        raise ValueError(f"cache {name!r}: bound must be >= 1, got {bound}")
    return bound


def register_cache(
    name: str, *, bound: int, size: Callable[[], int], clear: Callable[[], None]
) -> None:
    """Add a process-wide cache to the registry.

    Registering a name again replaces its entry (as happens when a module is reloaded).

    Args:
        name: a unique, dotted name such as ``"dense.encoders"``.
        bound: the most entries the cache holds.
        size: returns the number of entries it holds now.
        clear: empties it.

    Raises:
        TypeError: if ``bound`` is not an int.
        ValueError: if ``name`` is empty or ``bound`` is below 1.
    """
    if not name:
        raise ValueError("a cache needs a non-empty name")
    registration = _Registration(_check_bound(name, bound), size, clear)
    with _REGISTRY_LOCK:
        _REGISTRY[name] = registration


class _LRUFunction(Protocol):
    """What ``functools.lru_cache`` returns, as far as the registry needs it."""

    def cache_info(self) -> functools._CacheInfo: ...

    def cache_clear(self) -> None: ...


_F = TypeVar("_F", bound=_LRUFunction)


def register_lru(name: str) -> Callable[[_F], _F]:
    """Register a ``functools.lru_cache``-wrapped function as the cache ``name``.

    Use it above ``@functools.lru_cache(maxsize=...)``; its ``maxsize`` is the bound.

    Raises:
        ValueError: if the function's cache is unbounded (``maxsize=None``).
    """

    def decorate(function: _F) -> _F:
        maxsize = function.cache_info().maxsize
        if maxsize is None:
            raise ValueError(f"cache {name!r}: lru_cache needs a maxsize to be registered")
        register_cache(
            name,
            bound=maxsize,
            size=lambda: function.cache_info().currsize,
            clear=function.cache_clear,
        )
        return function

    return decorate


def _registrations() -> list[tuple[str, _Registration]]:
    with _REGISTRY_LOCK:
        return sorted(_REGISTRY.items())


def clear_caches() -> None:
    """Empty every registered cache, freeing what only they still hold."""
    for _, registration in _registrations():
        registration.clear()


def cache_info() -> list[CacheInfo]:
    """Every registered cache's name, current size and bound, sorted by name."""
    return [
        CacheInfo(name, registration.size(), registration.bound)
        for name, registration in _registrations()
    ]


class LRUCache(Generic[K, V]):
    """A thread-safe mapping of at most ``bound`` entries that registers itself by name.

    Reading or writing an entry makes it the most recently used; writing beyond the bound
    evicts the least recently used. Values are never None (``get`` returns None for a miss).

    Args:
        name: the name under which :func:`cache_info` reports it.
        bound: the most entries it holds.

    Raises:
        TypeError: if ``bound`` is not an int.
        ValueError: if ``bound`` is below 1.
    """

    def __init__(self, name: str, bound: int) -> None:
        self._name = name
        self._bound = _check_bound(name, bound)
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()
        register_cache(name, bound=self._bound, size=self.__len__, clear=self.clear)

    @property
    def name(self) -> str:
        """The name it is registered under."""
        return self._name

    @property
    def bound(self) -> int:
        """The most entries it holds."""
        return self._bound

    def get(self, key: K) -> V | None:
        """The value under ``key`` (now the most recently used), or None when absent."""
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        """Store ``value`` under ``key``, evicting the least recently used beyond the bound."""
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self._bound:
                self._entries.popitem(last=False)

    def put_new(self, key: K, value: V) -> bool:
        """Store ``value`` only if ``key`` is absent; True when it was stored (e.g. warn once)."""
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return False
            self._entries[key] = value
            while len(self._entries) > self._bound:
                self._entries.popitem(last=False)
            return True

    def items(self) -> list[tuple[K, V]]:
        """A snapshot of the entries, least recently used first."""
        with self._lock:
            return list(self._entries.items())

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._entries
