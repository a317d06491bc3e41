import pytest

from raggym.testing.retriever import FakeRetriever
from raggym_env.corpora import Corpus
from raggym_env.retrieval.base import RetrievalError, Retriever
from raggym_env.types import Document

DOCS = [
    Document("d1", "Scott Derrickson", "Scott Derrickson is an American director."),
    Document("d2", "Ed Wood", "Ed Wood was an American filmmaker."),
    Document("d3", "Paris", "Paris is the capital of France."),
    Document("d4", "Lyon", "Lyon is a city in France."),
]


@pytest.fixture
def corpus():
    return Corpus(DOCS, name="tiny")


def ids(hits):
    return [h.id for h in hits]


def test_is_a_retriever(corpus):
    assert isinstance(FakeRetriever(corpus), Retriever)


def test_ranks_by_word_overlap(corpus):
    hits = FakeRetriever(corpus).search(["Ed Wood American filmmaker"], k=3)[0]
    assert ids(hits) == ["d2", "d1"]
    assert [h.score for h in hits] == [4.0, 1.0]  # distinct shared words
    assert all(type(h.score) is float for h in hits)


def test_ties_keep_corpus_order_and_k_limits(corpus):
    retriever = FakeRetriever(corpus)
    assert ids(retriever.search(["FRANCE"], k=5)[0]) == ["d3", "d4"]
    assert ids(retriever.search(["france"], k=1)[0]) == ["d3"]
    assert retriever.search(["nothing matches"], k=5) == [[]]


def test_records_every_batch(corpus):
    retriever = FakeRetriever(corpus)
    queries = ["paris", "lyon"]
    retriever.search(queries, k=2)
    queries.append("mutated later")
    retriever.search(["wood"], k=1)
    assert retriever.calls == [["paris", "lyon"], ["wood"]]


def test_accepts_plain_documents():
    retriever = FakeRetriever(DOCS)
    assert retriever.corpus.name == "fake" and len(retriever.corpus) == 4


def test_explicit_mapping(corpus):
    retriever = FakeRetriever(corpus, mapping={"who?": ["d4", "d1", "d2"]})
    hits = retriever.search(["who?", "paris"], k=2)
    assert ids(hits[0]) == ["d4", "d1"] and [h.score for h in hits[0]] == [2.0, 1.0]
    assert ids(hits[1]) == ["d3"]
    with pytest.raises(ValueError, match="unknown ids"):
        FakeRetriever(corpus, mapping={"q": ["d1", "nope"]})


def test_fail_on_every_call(corpus):
    retriever = FakeRetriever(corpus, fail_on=RetrievalError("server down"))
    with pytest.raises(RetrievalError, match="server down"):
        retriever.search(["paris"], k=1)
    assert retriever.calls == [["paris"]]


def test_fail_on_specific_query(corpus):
    retriever = FakeRetriever(corpus, fail_on={"bad": TimeoutError("slow")})
    assert ids(retriever.search(["paris"], k=1)[0]) == ["d3"]
    with pytest.raises(TimeoutError, match="slow"):
        retriever.search(["paris", "bad"], k=1)
    assert retriever.calls == [["paris"], ["paris", "bad"]]


@pytest.mark.parametrize(
    ("queries", "k", "error"),
    [
        (["x"], 0, ValueError),
        (["x"], 1.0, TypeError),
        ("x", 1, TypeError),
        ([3], 1, TypeError),
    ],
)
def test_bad_arguments(corpus, queries, k, error):
    retriever = FakeRetriever(corpus)
    with pytest.raises(error):
        retriever.search(queries, k)
    assert retriever.calls == []
