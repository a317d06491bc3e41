"""Corpus builders: chunking, user corpus files and pooled benchmark paragraphs."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from raggym_env.corpora import (
    Corpus,
    DroppedDocumentsWarning,
    chunk_text,
    document_id,
    load_corpus,
    paragraph_text,
    pooled_corpus,
    read_json_records,
)
from raggym_env.types import Document

HOTPOT = "hotpotqa/hotpot_dev_distractor_first500.json"
TWOWIKI = "2wikimultihopqa/2wiki_dev_sample500.json"
WIKI = "wiki_corpus/wiki_passages_2wiki6119.json"

TOKENS = " ".join(f"t{i}" for i in range(10))


# --- chunk_text ----------------------------------------------------------------------------


def test_chunk_text_windows_and_overlap_are_exact() -> None:
    assert chunk_text(TOKENS, size=4, overlap=1) == [
        "t0 t1 t2 t3",
        "t3 t4 t5 t6",
        "t6 t7 t8 t9",
    ]
    # The last window ends at the last token; none lies inside the previous one.
    assert chunk_text(TOKENS, size=4, overlap=2) == [
        "t0 t1 t2 t3",
        "t2 t3 t4 t5",
        "t4 t5 t6 t7",
        "t6 t7 t8 t9",
    ]
    assert chunk_text(TOKENS, size=3, overlap=0) == ["t0 t1 t2", "t3 t4 t5", "t6 t7 t8", "t9"]


def test_chunk_text_short_blank_and_whitespace() -> None:
    assert chunk_text("a  b\n\tc", size=400, overlap=50) == ["a b c"]
    assert chunk_text(TOKENS, size=10, overlap=9) == [TOKENS]
    assert chunk_text("", size=4, overlap=1) == []
    assert chunk_text(" \n ", size=4, overlap=1) == []


@pytest.mark.parametrize(
    ("size", "overlap", "match"),
    [
        (0, 0, "chunk size must be a positive integer"),
        (-3, 0, "chunk size must be a positive integer"),
        (4, 4, r"overlap \(4\) must be smaller than the chunk size \(4\)"),
        (4, 9, "must be smaller than the chunk size"),
        (4, -1, "overlap must be a non-negative integer"),
    ],
)
def test_chunk_text_rejects_bad_windows(size: int, overlap: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        chunk_text(TOKENS, size=size, overlap=overlap)


# --- load_corpus ---------------------------------------------------------------------------


def test_load_corpus_chunks_a_text_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("t0 t1 t2\nt3  t4 t5 t6 t7 t8 t9\n", encoding="utf-8")
    corpus = load_corpus(path, chunk_tokens=4, overlap=1)
    assert corpus.name == "notes"
    assert [d.title for d in corpus] == ["notes #1", "notes #2", "notes #3"]
    assert [d.text for d in corpus] == ["t0 t1 t2 t3", "t3 t4 t5 t6", "t6 t7 t8 t9"]
    assert [d.id for d in corpus] == [document_id(d.title, d.text) for d in corpus]
    # Consecutive chunks share exactly `overlap` tokens.
    for first, second in zip(corpus, list(corpus)[1:], strict=False):
        assert first.text.split()[-1:] == second.text.split()[:1]


def test_load_corpus_defaults_chunk_400_overlap_50(tmp_path: Path) -> None:
    path = tmp_path / "long.txt"
    path.write_text(" ".join(f"w{i}" for i in range(1000)), encoding="utf-8")
    texts = [d.text.split() for d in load_corpus(path)]
    assert [len(t) for t in texts] == [400, 400, 300]
    assert texts[1][0] == "w350"
    assert texts[2][0] == "w700"
    assert texts[2][-1] == "w999"


def test_load_corpus_directory_of_text_files(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.txt").write_text("beta gamma", encoding="utf-8")
    (tmp_path / "sub" / "a.txt").write_text("alpha", encoding="utf-8")
    (tmp_path / "ignored.md").write_text("not a text corpus file", encoding="utf-8")
    corpus = load_corpus(tmp_path, name="mine")
    assert corpus.name == "mine"
    assert [(d.title, d.text) for d in corpus] == [("b #1", "beta gamma"), ("sub/a #1", "alpha")]


def test_load_corpus_wiki_passages(shared_data_dir: Path) -> None:
    corpus = load_corpus(shared_data_dir / WIKI)
    assert len(corpus) == 6119
    assert corpus.name == "wiki_passages_2wiki6119"
    first = corpus[0]
    assert first.title == "Teutberga"
    assert first.text.startswith("Teutberga( died 11 November 875) was a queen of Lotharingia")
    assert first.id == document_id(first.title, first.text)


def test_load_corpus_reads_save_jsonl_output(tmp_path: Path) -> None:
    original = Corpus(
        [Document("d1", "Alpha", "first text"), Document("d2", "Beta", "second text")], name="x"
    )
    path = original.save_jsonl(tmp_path / "corpus.jsonl")
    loaded = load_corpus(path)
    assert [d.to_dict() for d in loaded] == [d.to_dict() for d in original]
    assert loaded.content_hash == original.content_hash


def test_load_corpus_json_ids_and_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "passages.json"
    records = [
        {"title": "A", "text": "one"},
        {"title": "A", "text": "one"},  # exact duplicate: dropped
        {"id": 7, "title": "B", "text": " two "},
        {"title": "C", "text": "   "},  # empty: skipped
    ]
    path.write_text(json.dumps(records), encoding="utf-8")
    with pytest.warns(DroppedDocumentsWarning) as caught:
        corpus = load_corpus(path)
    assert [(d.id, d.title, d.text) for d in corpus] == [
        (document_id("A", "one"), "A", "one"),
        ("7", "B", "two"),
    ]
    assert len(caught) == 1
    assert str(caught[0].message) == (
        f"{path}: 2 of 4 passages dropped: 1 with empty text (record 3); "
        "1 exact duplicates of an earlier record (record 1)"
    )


def test_empty_text_files_are_counted_and_chunk_titles_documented(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "doc00.txt").write_text("alpha beta gamma", encoding="utf-8")
    (folder / "empty.txt").write_text("  \n", encoding="utf-8")
    with pytest.warns(DroppedDocumentsWarning, match=r"1 of 2 passages dropped: 1 empty text"):
        corpus = load_corpus(folder)
    assert [d.title for d in corpus] == ["doc00 #1"]  # chunk titles, as load_corpus documents
    assert '"<stem> #k"' in (load_corpus.__doc__ or "")


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ('[{"title": "A", "text": "x"}, {"title": "B"}]', r"record 1: missing field 'text'"),
        ('[{"text": "x"}]', r"record 0: missing field 'title'"),
        ('[{"title": "A", "text": 3}]', r"record 0: field 'text' must be a string"),
        (
            '[{"id": "a", "title": "A", "text": "x"}, {"id": "a", "title": "B", "text": "y"}]',
            r"record 1: id 'a' is already used by record 0",
        ),
        ('[{"title": "A", "text": "x"},', r"invalid JSON at line 1"),
        ('"just a string"', "expected a JSON object per line, got str"),
    ],
)
def test_load_corpus_bad_records(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=match) as info:
        load_corpus(path)
    assert str(path) in str(info.value)


def test_load_corpus_bad_paths(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file or directory"):
        load_corpus(tmp_path / "missing.jsonl")
    other = tmp_path / "corpus.csv"
    other.write_text("title,text\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"unsupported corpus file extension '\.csv'"):
        load_corpus(other)
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    with pytest.raises(ValueError, match=r"holds no \.txt files"):
        load_corpus(empty)
    with pytest.raises(ValueError, match="must be smaller than the chunk size"):
        load_corpus(tmp_path, chunk_tokens=10, overlap=10)


# --- read_json_records ---------------------------------------------------------------------


def test_read_json_records_list_and_jsonl(tmp_path: Path) -> None:
    listed = tmp_path / "a.json"
    listed.write_text('[{"x": 1}, {"x": 2}]', encoding="utf-8")
    lines = tmp_path / "b.jsonl"
    lines.write_text('{"x": 1}\n\n{"x": 2}\n', encoding="utf-8")
    assert read_json_records(listed) == read_json_records(lines) == [{"x": 1}, {"x": 2}]
    with_bom = tmp_path / "bom.json"
    with_bom.write_text('[{"x": 1}]', encoding="utf-8-sig")
    assert read_json_records(with_bom) == [{"x": 1}]


def test_read_json_records_errors(tmp_path: Path) -> None:
    bad_line = tmp_path / "bad.jsonl"
    bad_line.write_text('{"x": 1}\n{"x": \n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: invalid JSON line"):
        read_json_records(bad_line)
    single = tmp_path / "single.json"
    single.write_text('{\n  "x": 1\n}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="holds one JSON object"):
        read_json_records(single)
    scalars = tmp_path / "scalars.json"
    scalars.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ValueError, match="record 0: expected a JSON object, got int"):
        read_json_records(scalars)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match="the file is empty"):
        read_json_records(empty)


# --- pooled_corpus -------------------------------------------------------------------------


def test_pooled_hotpotqa_corpus_joins_sentences_as_in_the_source(shared_data_dir: Path) -> None:
    records = read_json_records(shared_data_dir / HOTPOT)
    corpus = pooled_corpus(records, name="hotpot")
    assert len(corpus) == 4937
    assert len({(d.title, d.text) for d in corpus}) == len(corpus)
    # HotpotQA sentences carry their leading space: concatenation restores the paragraph.
    title, sentences = records[0]["context"][0]
    (doc_id,) = corpus.ids_for_title(title)
    doc = corpus.get(doc_id)
    assert doc.text == "".join(sentences).strip()
    assert doc.text.startswith("Ed Wood is a 1994 American biographical period comedy-drama film")
    assert "Ed Wood.  The film" not in doc.text
    assert "Ed Wood. The film" in doc.text
    assert doc_id == document_id(title, doc.text)
    # HotpotQA has no title collisions in this file.
    assert max(Counter(d.title for d in corpus).values()) == 1


def test_pooled_corpus_deduplicates_and_is_stable(shared_data_dir: Path) -> None:
    records = read_json_records(shared_data_dir / HOTPOT)[:50]
    once = pooled_corpus(records)
    twice = pooled_corpus(records + records)
    assert len(once) == len(twice)
    assert once.content_hash == twice.content_hash
    assert pooled_corpus(records).content_hash == once.content_hash
    paragraphs = {(t, "".join(s).strip()) for r in records for t, s in r["context"]}
    assert len(once) == len(paragraphs)


def test_pooled_twowiki_corpus_keeps_title_collisions(shared_data_dir: Path) -> None:
    path = shared_data_dir / TWOWIKI
    corpus = pooled_corpus(path)
    assert corpus.name == "2wiki_dev_sample500"
    assert len(corpus) == 3356
    collisions = {title: n for title, n in Counter(d.title for d in corpus).items() if n > 1}
    assert len(collisions) == 9
    assert set(collisions.values()) == {2}
    assert "Homi Wadia" in collisions
    texts = [corpus.get(i).text for i in corpus.ids_for_title("Homi Wadia")]
    assert texts[0] != texts[1]
    # 2Wiki sentences have no leading space: they are joined with one.
    title, sentences = read_json_records(path)[0]["context"][0]
    (doc_id,) = corpus.ids_for_title(title)
    assert corpus.get(doc_id).text == " ".join(sentences)
    assert "electrical engineer, software developer and entrepreneur. De Margheriti" in (
        corpus.get(doc_id).text
    )


def test_paragraph_text_and_joiner_override() -> None:
    assert paragraph_text(["A b.", " C d. "]) == "A b. C d."
    assert paragraph_text(["A b.", "C d."], " ") == "A b. C d."
    record = {"context": [["T", ["x.", "y."]]]}
    assert pooled_corpus([record])[0].text == "x.y."
    assert pooled_corpus([record], joiner=" ")[0].text == "x. y."
    assert pooled_corpus([{**record, "evidences": []}])[0].text == "x. y."


@pytest.mark.parametrize(
    ("record", "match"),
    [
        ({"question": "q"}, r"records: record 0: missing field 'context'"),
        ({"context": "text"}, "'context' must be a list"),
        ({"context": [["T", "not a list"]]}, r"context\[0\] must be a \[title, \[sentences\]\]"),
        ("oops", "expected a JSON object"),
    ],
)
def test_pooled_corpus_rejects_bad_records(record: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        pooled_corpus([record])  # type: ignore[list-item]
