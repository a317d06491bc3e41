"""The cache registry: every process-wide cache is registered, bounded and cleared by one switch."""

import functools
import importlib
from collections.abc import Iterator

import pytest

import raggym_env
from raggym.testing.retriever import FakeRetriever
from raggym_env import caches, clear_caches
from raggym_env.caches import CacheInfo, LRUCache, cache_info, register_cache, register_lru
from raggym_env.corpora import Corpus
from raggym_env.types import Document

EXPECTED = [
    "agents.label_patterns",
    "bm25.indexes",
    "dense.encoders",
    "dense.fingerprints",
    "dense.indexes",
    "rerank.cross_encoders",
    "retrieval.shared",
    "store.malformed_warnings",
    "tasks.corpus_files",
    "tasks.examples",
    "tasks.placeholder_corpora",
    "tasks.pooled_corpora",
    "tasks.warnings_given",
]


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    clear_caches()
    yield
    clear_caches()


def _info(name: str) -> CacheInfo:
    return next(info for info in cache_info() if info.name == name)


def _corpus(i: int) -> Corpus:
    return Corpus([Document(f"d{i}", f"Doc {i}", f"word{i} apple banana")], name=f"c{i}")


def test_every_cache_is_registered() -> None:
    pytest.importorskip("bm25s")
    for module in (
        "raggym.agents",
        "raggym.trainers",
        "raggym.benchmarks",
        # Retrieval backends load lazily; their caches join when they are imported.
        "raggym_env.retrieval.bm25",
        "raggym_env.retrieval.dense",
        "raggym_env.retrieval.rerank",
        "raggym_env.retrieval.cache",
    ):
        importlib.import_module(module)
    assert [info.name for info in cache_info()] == EXPECTED
    assert all(info.bound >= 1 for info in cache_info())
    assert raggym_env.clear_caches is caches.clear_caches


def test_bm25_index_cache_evicts_the_least_recently_used() -> None:
    bm25 = pytest.importorskip("raggym_env.retrieval.bm25")
    bound = bm25.INDEX_CACHE_SIZE
    assert _info("bm25.indexes").bound == bound
    corpora = [_corpus(i) for i in range(bound + 1)]
    built = [bm25.load_or_build(corpus) for corpus in corpora[:bound]]
    assert _info("bm25.indexes").entries == bound
    assert bm25.load_or_build(corpora[0]) is built[0]  # a hit: now the most recent
    extra = bm25.load_or_build(corpora[bound])
    assert _info("bm25.indexes").entries == bound
    assert bm25.load_or_build(corpora[bound]) is extra
    assert bm25.load_or_build(corpora[0]) is built[0]  # kept: recently used
    assert bm25.load_or_build(corpora[1]) is not built[1]  # evicted: the oldest
    assert _info("bm25.indexes").entries == bound


def test_shared_retriever_cache_is_bounded() -> None:
    from raggym_env.retrieval.cache import SHARED_CACHE_SIZE, shared_cache

    corpus = _corpus(0)
    first = shared_cache("key-0", lambda: FakeRetriever(corpus))
    for i in range(1, SHARED_CACHE_SIZE + 1):
        shared_cache(f"key-{i}", lambda: FakeRetriever(corpus))
    assert _info("retrieval.shared") == CacheInfo(
        "retrieval.shared", SHARED_CACHE_SIZE, SHARED_CACHE_SIZE
    )
    last = f"key-{SHARED_CACHE_SIZE}"
    assert shared_cache(last, lambda: FakeRetriever(corpus)) is shared_cache(
        last, lambda: FakeRetriever(corpus)
    )
    assert shared_cache("key-0", lambda: FakeRetriever(corpus)) is not first


def test_clear_caches_empties_every_cache() -> None:
    pytest.importorskip("bm25s")
    from raggym.agents.parsing import find_labels
    from raggym_env.retrieval.bm25 import load_or_build
    from raggym_env.retrieval.cache import shared_cache
    from raggym_env.tasks import load_task

    task = load_task("hotpotqa", limit=2)
    retriever = load_or_build(task.corpus)
    shared = shared_cache("clear-test", lambda: FakeRetriever(task.corpus))
    find_labels("Answer: Paris", ["answer"])
    filled = {info.name for info in cache_info() if info.entries}
    assert {
        "agents.label_patterns",
        "bm25.indexes",
        "retrieval.shared",
        "tasks.examples",
        "tasks.pooled_corpora",
    } <= filled

    clear_caches()
    assert all(info.entries == 0 for info in cache_info()), cache_info()
    assert load_or_build(task.corpus) is not retriever
    assert shared_cache("clear-test", lambda: FakeRetriever(task.corpus)) is not shared


def test_cache_info_reports_sizes() -> None:
    from raggym_env.tasks import load_examples

    assert _info("tasks.examples") == CacheInfo("tasks.examples", 0, 64)
    load_examples("hotpotqa", limit=1)
    load_examples("bamboogle", limit=1)
    load_examples("hotpotqa", limit=2)  # same file: a hit
    assert _info("tasks.examples").entries == 2


def test_lru_cache_order_and_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(caches, "_REGISTRY", {})
    cache: LRUCache[str, int] = LRUCache("test.lru", 2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "b" is now the least recently used
    cache.put("c", 3)
    assert "b" not in cache and cache.get("b") is None
    assert [key for key, _ in cache.items()] == ["a", "c"]
    assert cache_info() == [CacheInfo("test.lru", 2, 2)]
    clear_caches()
    assert len(cache) == 0


def test_registration_rejects_unbounded_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(caches, "_REGISTRY", {})

    @functools.cache
    def unbounded(x: int) -> int:
        return x

    with pytest.raises(ValueError, match="maxsize"):
        register_lru("test.unbounded")(unbounded)
    with pytest.raises(ValueError, match=">= 1"):
        LRUCache("test.empty", 0)
    with pytest.raises(TypeError, match="int"):
        register_cache("test.float", bound=2.5, size=lambda: 0, clear=lambda: None)
    with pytest.raises(ValueError, match="name"):
        register_cache("", bound=1, size=lambda: 0, clear=lambda: None)
    assert cache_info() == []


def test_put_new_stores_once_and_keeps_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(caches, "_REGISTRY", {})
    cache: LRUCache[str, bool] = LRUCache("test.put_new", 2)
    assert cache.put_new("a", True) is True
    assert cache.put_new("a", True) is False
    assert cache.put_new("b", True) and cache.put_new("c", True)
    assert len(cache) == 2 and "a" not in cache
