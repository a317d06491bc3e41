"""The LRU result cache: hits and misses, in-batch dedupe, eviction, threads, errors."""

import threading

import pytest

from raggym.testing.retriever import FakeRetriever
from raggym_env import clear_caches
from raggym_env.corpora import Corpus
from raggym_env.retrieval.base import RetrievalError, Retriever
from raggym_env.retrieval.cache import (
    CachedRetriever,
    CacheStats,
    shared_cache,
)
from raggym_env.types import Document


@pytest.fixture
def corpus():
    return Corpus(
        [
            Document("a", "Alpha", "alpha apple"),
            Document("b", "Beta", "beta banana apple"),
            Document("c", "Gamma", "gamma cherry"),
        ],
        name="abc",
    )


def test_hits_and_misses(corpus):
    base = FakeRetriever(corpus)
    cached = CachedRetriever(base)
    assert isinstance(cached, Retriever)
    first = cached.search(["apple", "cherry"], 2)
    assert first == base.search(["apple", "cherry"], 2)
    base.calls.clear()
    again = cached.search(["cherry", "apple", "beta"], 2)
    assert base.calls == [["beta"]]  # only the miss, in one batch
    assert again[:2] == [first[1], first[0]]
    assert cached.stats == CacheStats(hits=2, misses=3, entries=3, evictions=0)
    assert cached.stats.hit_rate == pytest.approx(2 / 5)
    # a different k is a different entry
    cached.search(["apple"], 1)
    assert base.calls[-1] == ["apple"]


def test_results_are_copies(corpus):
    cached = CachedRetriever(FakeRetriever(corpus))
    cached.search(["apple"], 2)[0].clear()
    assert len(cached.search(["apple"], 2)[0]) == 2


def test_identical_queries_in_a_batch_are_searched_once(corpus):
    base = FakeRetriever(corpus)
    cached = CachedRetriever(base)
    results = cached.search(["apple", "apple", "cherry", "apple"], 3)
    assert base.calls == [["apple", "cherry"]]
    assert results[0] == results[1] == results[3]
    assert cached.stats.misses == 2
    assert cached.stats.hits == 2


def test_all_hits_do_not_call_the_base(corpus):
    base = FakeRetriever(corpus)
    cached = CachedRetriever(base)
    cached.search(["apple"], 2)
    cached.search(["apple"], 2)
    assert base.calls == [["apple"]]
    assert cached.search([], 2) == []
    assert len(base.calls) == 1


def test_lru_eviction(corpus):
    base = FakeRetriever(corpus)
    cached = CachedRetriever(base, max_entries=2)
    cached.search(["alpha"], 1)
    cached.search(["beta"], 1)
    cached.search(["alpha"], 1)  # alpha is now the most recently used
    cached.search(["gamma"], 1)  # evicts beta
    assert cached.stats.evictions == 1
    assert len(cached) == 2
    base.calls.clear()
    cached.search(["alpha", "gamma"], 1)
    assert base.calls == []
    cached.search(["beta"], 1)
    assert base.calls == [["beta"]]


def test_prefix_reuse(corpus):
    base = FakeRetriever(corpus)
    cached = CachedRetriever(base, reuse_prefix=True)
    deep = cached.search(["apple"], 3)[0]
    assert len(deep) == 2  # exhaustive: only two documents mention apple
    assert cached.search(["apple"], 1)[0] == deep[:1]
    assert cached.search(["apple"], 10)[0] == deep  # an exhaustive list answers any k
    assert base.calls == [["apple"]]
    cached.search(["alpha"], 1)
    cached.search(["alpha"], 2)  # the stored list may be cut short: asks again
    assert base.calls[-1] == ["alpha"]
    assert len(base.calls) == 3


def test_exceptions_are_not_cached(corpus):
    base = FakeRetriever(corpus, fail_on={"boom": RetrievalError("down")})
    cached = CachedRetriever(base)
    with pytest.raises(RetrievalError):
        cached.search(["apple", "boom"], 2)
    assert len(cached) == 0
    base.fail_on = None
    assert len(cached.search(["boom", "apple"], 2)[1]) == 2
    assert base.calls[-1] == ["boom", "apple"]
    assert len(cached) == 2


def test_thread_safety_smoke(corpus):
    base = FakeRetriever(corpus)
    cached = CachedRetriever(base, max_entries=3)
    queries = ["alpha", "beta", "gamma", "apple", "cherry", "banana"]
    expected = {q: base.search([q], 2)[0] for q in queries}
    errors = []

    def work(offset):
        try:
            for i in range(200):
                q = queries[(i + offset) % len(queries)]
                assert cached.search([q, q], 2) == [expected[q], expected[q]]
        except AssertionError as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    stats = cached.stats
    assert stats.hits + stats.misses == 4 * 200 * 2
    assert stats.entries <= 3


def test_validation(corpus):
    with pytest.raises(ValueError):
        CachedRetriever(FakeRetriever(corpus), max_entries=0)
    with pytest.raises(TypeError):
        CachedRetriever(FakeRetriever(corpus), max_entries=True)
    with pytest.raises(TypeError):
        CachedRetriever(object())
    with pytest.raises(ValueError):
        CachedRetriever(FakeRetriever(corpus)).search(["q"], 0)


def test_clear_resets(corpus):
    cached = CachedRetriever(FakeRetriever(corpus))
    cached.search(["apple"], 1)
    cached.clear()
    assert cached.stats == CacheStats(0, 0, 0, 0)
    assert cached.stats.hit_rate == 0.0


def test_shared_cache_builds_once(corpus):
    clear_caches()
    built = []

    def factory():
        built.append(1)
        return FakeRetriever(corpus)

    one = shared_cache(("fake", corpus.content_hash), factory)
    two = shared_cache(("fake", corpus.content_hash), factory)
    other = shared_cache(("fake", "other"), factory)
    assert one is two
    assert other is not one
    assert len(built) == 2
    one.search(["apple"], 1)
    assert two.stats.misses == 1
    clear_caches()
    assert shared_cache(("fake", corpus.content_hash), factory) is not one
    clear_caches()
