"""Weighted reciprocal rank fusion: hand-computed scores, batching, validation."""

import math

import pytest

from raggym.testing.retriever import FakeRetriever
from raggym_env.corpora import Corpus
from raggym_env.retrieval.base import Retriever
from raggym_env.retrieval.hybrid import FusedHit, HybridRetriever, reciprocal_rank_fusion
from raggym_env.types import Document, ScoredDocument

DOCS = [
    Document("a", "Alpha", "alpha apple"),
    Document("b", "Beta", "beta banana"),
    Document("c", "Gamma", "gamma cherry"),
    Document("d", "Delta", "delta date"),
]


@pytest.fixture
def corpus():
    return Corpus(DOCS, name="abcd")


def fake(corpus, ranking, query="q"):
    return FakeRetriever(corpus, mapping={query: ranking})


def test_rrf_scores_and_order_by_hand(corpus):
    # member 1: a b c ; member 2: c a d
    one, two = fake(corpus, ["a", "b", "c"]), fake(corpus, ["c", "a", "d"])
    hybrid = HybridRetriever([one, two], rrf_k=60)
    [results] = hybrid.search(["q"], 4)
    expected = {
        "a": 1 / 61 + 1 / 62,
        "c": 1 / 63 + 1 / 61,
        "b": 1 / 62,
        "d": 1 / 63,
    }
    assert [r.id for r in results] == ["a", "c", "b", "d"]
    for r in results:
        assert r.score == pytest.approx(expected[r.id], abs=1e-15)
    assert isinstance(results[0], ScoredDocument)


def test_weights_change_the_order_as_computed(corpus):
    one, two = fake(corpus, ["a", "b", "c"]), fake(corpus, ["c", "a", "d"])
    # weights 1, 3: a = 1/61 + 3/62 = 0.06478; c = 1/63 + 3/61 = 0.06505 -> c first
    hybrid = HybridRetriever([one, two], weights=[1.0, 3.0], rrf_k=60)
    [results] = hybrid.search(["q"], 4)
    assert [r.id for r in results] == ["c", "a", "d", "b"]
    assert results[0].score == pytest.approx(1 / 63 + 3 / 61)
    assert results[1].score == pytest.approx(1 / 61 + 3 / 62)
    assert results[2].score == pytest.approx(3 / 63)  # d: 0.0476 > b: 1/62 = 0.0161
    assert results[3].score == pytest.approx(1 / 62)


def test_zero_weight_member_contributes_nothing(corpus):
    one, two = fake(corpus, ["a", "b"]), fake(corpus, ["d", "c"])
    [results] = HybridRetriever([one, two], weights=[1, 0]).search(["q"], 4)
    assert [r.id for r in results] == ["a", "b"]


def test_ties_break_by_best_rank_then_member_then_id(corpus):
    # a: ranks (1, 3) ; c: ranks (3, 1) -> equal fused score; a's best rank comes from member 0
    one, two = fake(corpus, ["a", "b", "c"]), fake(corpus, ["c", "d", "a"])
    [results] = HybridRetriever([one, two], rrf_k=0).search(["q"], 4)
    assert results[0].score == results[1].score  # bit-identical thanks to fsum
    assert [r.id for r in results] == ["a", "c", "b", "d"]
    # b and d also tie (rank 2 each, one member each): member 0 first.
    hits = reciprocal_rank_fusion(
        [[ScoredDocument(DOCS[3], 1.0)], [ScoredDocument(DOCS[1], 1.0)]], [1, 1], 60
    )
    assert [h.document.id for h in hits] == ["d", "b"]


def test_explain_reports_member_ranks(corpus):
    one, two = fake(corpus, ["a", "b", "c"]), fake(corpus, ["c", "a", "d"])
    hits = HybridRetriever([one, two]).explain("q", 3)
    assert all(isinstance(h, FusedHit) for h in hits)
    by_id = {h.document.id: h for h in hits}
    assert by_id["a"].ranks == (1, 2)
    assert by_id["c"].ranks == (3, 1)
    assert by_id["b"].ranks == (2, None)
    assert by_id["a"].member_scores == (3.0, 2.0)
    assert by_id["c"].best_rank == 1
    assert len(hits) == 3


def test_each_member_searched_once_per_batch_with_depth(corpus):
    one, two = FakeRetriever(corpus), FakeRetriever(corpus)
    hybrid = HybridRetriever([one, two])
    results = hybrid.search(["alpha beta", "cherry", "nothing here"], 2)
    assert one.calls == [["alpha beta", "cherry", "nothing here"]]
    assert two.calls == one.calls
    assert [len(r) for r in results] == [2, 1, 0]
    assert hybrid.candidate_depth(2) == 4
    assert HybridRetriever([one], depth=1).candidate_depth(3) == 3
    assert HybridRetriever([one], depth=10).candidate_depth(3) == 10
    assert hybrid.search([], 3) == []
    assert len(one.calls) == 1  # an empty batch asks nobody


def test_depth_is_passed_to_members(corpus):
    class Recorder:
        def __init__(self):
            self.ks = []

        def search(self, queries, k):
            self.ks.append(k)
            return [[] for _ in queries]

    rec = Recorder()
    HybridRetriever([rec]).search(["x"], 5)
    HybridRetriever([rec], depth=32).search(["x"], 5)
    HybridRetriever([rec], min_depth=100).search(["x"], 32)  # RAG-Gym: max(2k, 100)
    HybridRetriever([rec], min_depth=100).search(["x"], 64)
    assert rec.ks == [10, 32, 100, 128]
    with pytest.raises(ValueError, match="min_depth"):
        HybridRetriever([rec], min_depth=-1)


def test_hybrid_over_bm25_and_fake(corpus):
    pytest.importorskip("bm25s")
    from raggym_env.retrieval.bm25 import BM25Retriever

    bm25 = BM25Retriever.build(corpus)
    other = FakeRetriever(corpus, mapping={"banana date": ["d", "b"]})
    hybrid = HybridRetriever([bm25, other], weights=[1.0, 1.0])
    assert isinstance(hybrid, Retriever)
    [results] = hybrid.search(["banana date"], 3)
    ids = [r.id for r in results]
    assert set(ids) == {"b", "d"}
    bm25_ids = [r.id for r in bm25.search(["banana date"], 6)[0]]
    expected_b = 1 / (60 + bm25_ids.index("b") + 1) + 1 / 62
    expected_d = 1 / (60 + bm25_ids.index("d") + 1) + 1 / 61
    scores = {r.id: r.score for r in results}
    assert scores["b"] == pytest.approx(expected_b)
    assert scores["d"] == pytest.approx(expected_d)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"weights": [1.0]}, ValueError),
        ({"weights": [1.0, -1.0]}, ValueError),
        ({"weights": [0.0, 0.0]}, ValueError),
        ({"weights": [1.0, math.nan]}, ValueError),
        ({"weights": [1.0, "x"]}, TypeError),
        ({"rrf_k": -1}, ValueError),
        ({"rrf_k": "60"}, TypeError),
        ({"depth": 0}, ValueError),
        ({"depth": 2.5}, TypeError),
    ],
)
def test_validation(corpus, kwargs, error):
    with pytest.raises(error):
        HybridRetriever([FakeRetriever(corpus), FakeRetriever(corpus)], **kwargs)


def test_needs_retrievers(corpus):
    with pytest.raises(ValueError, match="at least one"):
        HybridRetriever([])
    with pytest.raises(TypeError, match="search"):
        HybridRetriever([object()])


def test_search_args_are_checked(corpus):
    hybrid = HybridRetriever([FakeRetriever(corpus)])
    with pytest.raises(ValueError):
        hybrid.search(["q"], 0)
    with pytest.raises(TypeError):
        hybrid.search("q", 1)
    with pytest.raises(TypeError):
        hybrid.explain(["q"], 1)
