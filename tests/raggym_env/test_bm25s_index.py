"""Indexes saved by bm25s itself, loaded through raggym: same results as bm25s, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import bm25s
import numpy as np
import pytest

from raggym_env.corpora import Corpus
from raggym_env.retrieval.base import IndexMismatchError, Retriever
from raggym_env.retrieval.bm25s_index import (
    BM25sIndexRetriever,
    LuceneIndexError,
    load_bm25s_index,
)
from raggym_env.retrieval.factory import make_retriever, retriever_option_names
from raggym_env.types import Document

TEXTS = [
    "Paris is the capital and largest city of France.",
    "Berlin is the capital of Germany, on the river Spree.",
    "Rome is the capital city of Italy and was the heart of an empire.",
    "Madrid is the capital of Spain.",
    "The Seine is a river flowing through Paris in France.",
    "The Thames is a river flowing through London in England.",
    "The Tiber river flows through Rome.",
    "The Danube flows through Vienna, Budapest and Belgrade.",
    "Running rivers ran through the running city.",
]
QUERIES = ["capital of France", "river flowing through Rome", "Danube cities", "rivers running"]


def build(
    directory: Path, corpus: object = None, *, stopwords: object = "en", stemmer: object = None
) -> bm25s.BM25:
    """Index TEXTS with bm25s and save it (with ``corpus`` when given); return the model."""
    tokens = bm25s.tokenize(TEXTS, stopwords=stopwords, stemmer=stemmer, show_progress=False)
    model = bm25s.BM25()
    model.index(tokens, show_progress=False)
    model.save(str(directory), corpus=corpus, show_progress=False)
    return model


def reference(
    model: bm25s.BM25,
    queries: list[str],
    k: int,
    *,
    stopwords: object = "en",
    stemmer: object = None,
) -> list[list[tuple[int, float]]]:
    """bm25s's own ranking: (row, score) per query."""
    tokens = bm25s.tokenize(
        queries, stopwords=stopwords, stemmer=stemmer, return_ids=False, show_progress=False
    )
    rows, scores = model.retrieve(tokens, k=k, show_progress=False)
    return [
        [(int(r), float(s)) for r, s in zip(row, score, strict=True)]
        for row, score in zip(rows, scores, strict=True)
    ]


def rows_of(
    retriever: BM25sIndexRetriever, queries: list[str], k: int
) -> list[list[tuple[int, float]]]:
    by_id = {doc.id: i for i, doc in enumerate(retriever.corpus)}
    return [[(by_id[r.id], r.score) for r in row] for row in retriever.search(queries, k)]


# ---------------------------------------------------------------------- results equal bm25s's
@pytest.mark.parametrize("mmap", [False, True])
def test_string_corpus_results_equal_bm25s(tmp_path: Path, mmap: bool):
    model = build(tmp_path, corpus=TEXTS)
    retriever = load_bm25s_index(tmp_path, mmap=mmap)
    assert isinstance(retriever, Retriever)
    assert len(retriever.corpus) == len(TEXTS)
    assert [d.id for d in retriever.corpus] == [str(i) for i in range(len(TEXTS))]
    assert [d.text for d in retriever.corpus] == TEXTS
    for k in (1, 3, len(TEXTS)):
        assert rows_of(retriever, QUERIES, k) == reference(model, QUERIES, k)
    top = retriever.search(["capital of France"], 1)[0][0]
    assert (top.id, top.document.title, top.document.text) == ("0", "", TEXTS[0])


def test_k_beyond_the_corpus_is_capped_and_unknown_words_find_nothing(tmp_path: Path):
    build(tmp_path, corpus=TEXTS)
    retriever = load_bm25s_index(tmp_path)
    assert len(retriever.search(["capital"], 50)[0]) == len(TEXTS)
    assert retriever.search(["zzzz qqqq", "the of and"], 3) == [[], []]
    assert retriever.search([], 3) == []
    with pytest.raises(TypeError):
        retriever.search("capital", 3)  # type: ignore[arg-type]


def test_dict_rows_keep_ids_titles_and_flashrag_contents(tmp_path: Path):
    rows: list[object] = [
        {"id": f"doc-{i}", "title": f"T{i}", "text": text} for i, text in enumerate(TEXTS[:3])
    ]
    rows += [{"_id": "flash", "contents": f'"Madrid"\n{TEXTS[3]}'}]
    rows += [[f"T{i}", text] for i, text in enumerate(TEXTS[4:], 4)]
    model = build(tmp_path, corpus=rows)
    retriever = load_bm25s_index(tmp_path)
    docs = list(retriever.corpus)
    assert docs[0] == Document(id="doc-0", title="T0", text=TEXTS[0])
    assert docs[3] == Document(id="flash", title="Madrid", text=TEXTS[3])
    assert docs[4] == Document(id="4", title="T4", text=TEXTS[4])
    assert rows_of(retriever, QUERIES, 4) == reference(model, QUERIES, 4)


def test_a_raggym_corpus_supplies_documents_when_none_was_saved(tmp_path: Path):
    model = build(tmp_path)
    assert not (tmp_path / "corpus.jsonl").exists()
    corpus = Corpus([Document(id=f"p{i}", title=f"P{i}", text=t) for i, t in enumerate(TEXTS)])
    retriever = load_bm25s_index(tmp_path, corpus=corpus)
    assert rows_of(retriever, QUERIES, 3) == reference(model, QUERIES, 3)
    assert retriever.search(["Tiber"], 1)[0][0].id == "p6"
    with pytest.raises(ValueError, match=r"has no corpus.jsonl .*pass corpus="):
        load_bm25s_index(tmp_path)
    with pytest.raises(IndexMismatchError, match=r"the corpus has 2 documents but .* has 9"):
        load_bm25s_index(tmp_path, corpus=list(corpus)[:2])


def test_stemmer_and_saved_stopwords(tmp_path: Path):
    stemmer_module = pytest.importorskip("Stemmer")
    stemmer = stemmer_module.Stemmer("english")
    model = build(tmp_path / "stem", corpus=TEXTS, stemmer=stemmer)
    retriever = load_bm25s_index(tmp_path / "stem", stemmer="english")
    expected = reference(model, QUERIES, 3, stemmer=stemmer)
    assert rows_of(retriever, QUERIES, 3) == expected
    plain = load_bm25s_index(tmp_path / "stem")  # without the stemmer "rivers" misses
    assert rows_of(plain, ["rivers"], 3) != reference(model, ["rivers"], 3, stemmer=stemmer)
    with pytest.raises(ValueError, match="no stemmer for language 'klingon'"):
        load_bm25s_index(tmp_path / "stem", stemmer="klingon")

    model = build(tmp_path / "all", corpus=TEXTS, stopwords=None)
    bm25s.tokenization.Tokenizer(stopwords=[]).save_stopwords(str(tmp_path / "all"))
    saved = load_bm25s_index(tmp_path / "all")  # "auto": the saved (empty) list
    assert saved.stopwords == []
    queries = ["the river", "in the city"]
    assert rows_of(saved, queries, 3) == reference(model, queries, 3, stopwords=None)


# ---------------------------------------------------------------------- factory
def test_factory_name_bm25s(tmp_path: Path):
    model = build(tmp_path / "saved", corpus=TEXTS)
    unrelated = Corpus.from_passages([("x", "y")])
    retriever = make_retriever("bm25s", unrelated, path=tmp_path / "saved")  # its own corpus
    assert isinstance(retriever, BM25sIndexRetriever)
    assert rows_of(retriever, QUERIES, 2) == reference(model, QUERIES, 2)
    build(tmp_path / "bare")
    corpus = Corpus([Document(id=f"p{i}", title="", text=t) for i, t in enumerate(TEXTS)])
    bare = make_retriever("bm25s", corpus, path=str(tmp_path / "bare"), stopwords="en")
    assert bare.search(["Tiber"], 1)[0][0].id == "p6"
    with pytest.raises(ValueError, match="needs the option path"):
        make_retriever("bm25s", corpus)
    names = retriever_option_names("bm25s")
    assert names is not None and {"path", "stopwords", "stemmer", "mmap", "cache"} <= names


# ---------------------------------------------------------------------- bad directories
def test_missing_and_incomplete_directories(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_bm25s_index(tmp_path / "nowhere")
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="expected the directory bm25s"):
        load_bm25s_index(tmp_path / "file")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"not a bm25s index: missing params.index.json"):
        load_bm25s_index(tmp_path / "empty")
    build(tmp_path / "partial", corpus=TEXTS)
    (tmp_path / "partial" / "indptr.csc.index.npy").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing indptr.csc.index.npy"):
        load_bm25s_index(tmp_path / "partial")


def test_a_lucene_index_is_refused_with_what_to_do(tmp_path: Path):
    lucene = tmp_path / "pyserini-index"
    lucene.mkdir()
    for name in ("segments_3", "_0.cfs", "_0.cfe", "_0.si", "write.lock"):
        (lucene / name).write_bytes(b"\x3f\xd7\x6c\x17")
    with pytest.raises(LuceneIndexError) as caught:
        load_bm25s_index(lucene)
    message = str(caught.value)
    assert "Lucene index" in message and "JVM" in message
    assert "protocol': 'search-r1'" in message and "rebuild" in message
    assert isinstance(caught.value, ValueError)


def test_damaged_params_and_corpus(tmp_path: Path):
    build(tmp_path, corpus=TEXTS)
    corpus_file = tmp_path / "corpus.jsonl"
    lines = corpus_file.read_text(encoding="utf-8").splitlines()

    corpus_file.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    with pytest.raises(IndexMismatchError, match="has 8 rows but the index has 9"):
        load_bm25s_index(tmp_path)
    corpus_file.write_text("\n".join([*lines, lines[0]]) + "\n", encoding="utf-8")
    with pytest.raises(IndexMismatchError, match="more than 9 rows"):
        load_bm25s_index(tmp_path)
    corpus_file.write_text("\n".join([*lines[:-1], "{broken"]) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"corpus.jsonl:9: not valid JSON"):
        load_bm25s_index(tmp_path)
    corpus_file.write_text("\n".join([*lines[:-1], '{"id": 8, "body": "x"}']), encoding="utf-8")
    with pytest.raises(ValueError, match=r":9: expected a string 'text' or 'contents'"):
        load_bm25s_index(tmp_path)
    corpus_file.write_text("\n".join([*lines[:-1], "7"]), encoding="utf-8")
    with pytest.raises(ValueError, match=r":9: expected an object, got int"):
        load_bm25s_index(tmp_path)
    corpus_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert len(load_bm25s_index(tmp_path).corpus) == 9

    params = tmp_path / "params.index.json"
    good = json.loads(params.read_text())
    params.write_text("{nope")
    with pytest.raises(ValueError, match=r"params.index.json: not valid JSON"):
        load_bm25s_index(tmp_path)
    params.write_text(json.dumps({**good, "num_docs": "nine"}))
    with pytest.raises(ValueError, match="'num_docs' must be an integer >= 0, got 'nine'"):
        load_bm25s_index(tmp_path)
    params.write_text(json.dumps(good))
    assert np.load(tmp_path / "indptr.csc.index.npy").ndim == 1


# ---------------------------------------------------------------------- serving one
def test_serve_retriever_serves_a_bm25s_index_over_search_r1(tmp_path: Path):
    pytest.importorskip("starlette")
    pytest.importorskip("uvicorn")
    pytest.importorskip("httpx")
    pytest.importorskip("prometheus_client")
    import argparse

    from raggym_env.retrieval.remote import RemoteRetriever
    from raggym_env.retrieval.server import BackgroundServer, create_app
    from raggym_env.serve_cli import retriever_factory_from_args, serve_command

    model = build(tmp_path, corpus=TEXTS)
    parser = argparse.ArgumentParser()
    serve_command(parser.add_subparsers())

    def factory(*argv: str) -> object:
        return retriever_factory_from_args(parser.parse_args(["serve-retriever", *argv]))

    with pytest.raises(ValueError, match="--retriever bm25s needs --index-dir"):
        factory("--retriever", "bm25s", "--task", "bamboogle")
    build_index = factory(
        "--retriever", "bm25s", "--index-dir", str(tmp_path), "--option", "stopwords=en"
    )
    app = create_app(build_index)  # type: ignore[arg-type]
    with (
        BackgroundServer(app) as server,
        RemoteRetriever(server.url, protocol="search-r1") as remote,
    ):
        assert remote.wait_until_ready(10)["documents"] == len(TEXTS)
        results = remote.search(QUERIES, 3)
    assert [[(int(r.id), r.score) for r in row] for row in results] == [
        [(row, pytest.approx(score)) for row, score in ranked]
        for ranked in reference(model, QUERIES, 3)
    ]
