import json
import os
import threading
from pathlib import Path

import pytest

from raggym_env import clear_caches
from raggym_env.corpora import Corpus, DiskCorpus, write_store
from raggym_env.retrieval import bm25 as bm25_module
from raggym_env.retrieval.base import IndexMismatchError, Retriever
from raggym_env.retrieval.bm25 import (
    FORMAT_VERSION,
    MANIFEST_NAME,
    BM25Config,
    BM25Retriever,
    load_or_build,
)
from raggym_env.types import Document


@pytest.fixture(scope="module")
def corpus():
    return Corpus(
        [
            Document("paris", "Paris", "Paris is the capital and largest city of France."),
            Document("berlin", "Berlin", "Berlin is the capital of Germany, on the Spree."),
            Document("uranus", "Uranus", "Voyager 2 flew past the planet in 1986."),
            Document("titan", "Titan IIIE", "The rocket launched Voyager 2 from Cape Canaveral."),
            Document("runner", "Marathon", "She runs marathons and trained for the race daily."),
            Document("cats", "Cat", "Cats are small domesticated carnivorous mammals."),
        ],
        name="tiny",
    )


@pytest.fixture(scope="module")
def retriever(corpus):
    return BM25Retriever.build(corpus)


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_caches()
    yield
    clear_caches()


def ids(results):
    return [[hit.id for hit in hits] for hits in results]


def scores(results):
    return [[hit.score for hit in hits] for hits in results]


# -- search ------------------------------------------------------------------------------


def test_is_a_retriever(retriever):
    assert isinstance(retriever, Retriever)


@pytest.mark.parametrize(
    ("query", "best"),
    [
        ("What is the capital of Germany?", "berlin"),
        ("largest city in France", "paris"),
        ("Which rocket launched Voyager 2?", "titan"),
        ("mammals", "cats"),
    ],
)
def test_relevant_document_ranks_first(retriever, query, best):
    hits = retriever.search([query], k=3)[0]
    assert hits[0].id == best
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert all(type(h.score) is float and h.score > 0 for h in hits)


def test_title_is_indexed(retriever):
    # "Uranus" appears only in the title of its document.
    assert retriever.search(["uranus"], k=5)[0][0].id == "uranus"


def test_stemming_matches_inflections(corpus):
    assert BM25Retriever.build(corpus).search(["running"], 5)[0][0].id == "runner"
    assert BM25Retriever.build(corpus, stemmer=None).search(["running"], 5) == [[]]


def test_only_matching_documents_are_returned(retriever):
    hits = retriever.search(["Spree"], k=10)[0]
    assert [h.id for h in hits] == ["berlin"]


def test_batch_equals_one_by_one(retriever):
    queries = [
        "capital of France",
        "the of and",
        "Voyager planet rocket",
        "zzzz unknownword",
        "capital",
        "",
    ]
    batched = retriever.search(queries, k=4)
    single = [retriever.search([q], k=4)[0] for q in queries]
    assert ids(batched) == ids(single)
    assert scores(batched) == scores(single)


def test_k_is_clamped_to_corpus_size(retriever, corpus):
    hits = retriever.search(["capital Voyager cats marathon rocket France"], k=1000)[0]
    assert 0 < len(hits) <= len(corpus)
    assert len(retriever.search(["capital"], k=1)[0]) == 1


def test_ties_follow_corpus_order():
    docs = [Document(f"d{9 - i}", f"Page {i}", "gamma delta epsilon") for i in range(6)]
    docs.append(Document("other", "Other", "zeta"))
    hits = BM25Retriever.build(Corpus(docs)).search(["gamma"], k=4)[0]
    assert len({h.score for h in hits}) == 1
    assert [h.id for h in hits] == ["d9", "d8", "d7", "d6"]


@pytest.mark.parametrize("query", ["the of and is", "", "   ", "qwertyuiop", "a b c"])
def test_query_without_known_terms_returns_nothing(retriever, query):
    assert retriever.search([query], k=5) == [[]]


def test_empty_batch(retriever):
    assert retriever.search([], k=5) == []


@pytest.mark.parametrize(
    ("queries", "k", "error", "match"),
    [
        (["x"], 0, ValueError, "k must be >= 1"),
        (["x"], -3, ValueError, "k must be >= 1"),
        (["x"], 2.5, TypeError, "k must be an int"),
        (["x"], True, TypeError, "k must be an int"),
        ("capital", 3, TypeError, "queries must be a list"),
        (["ok", 7], 3, TypeError, r"queries\[1\] must be a str"),
        ([None], 3, TypeError, r"queries\[0\] must be a str"),
    ],
)
def test_bad_arguments(retriever, queries, k, error, match):
    with pytest.raises(error, match=match):
        retriever.search(queries, k)


def test_threads_give_same_results(retriever):
    queries = ["capital of France", "Voyager", "cats mammals", "marathon runs"] * 30
    expected = retriever.search(queries, k=3)
    assert ids(retriever.with_threads(2).search(queries, k=3)) == ids(expected)
    outputs: list = []

    def work():
        outputs.append(retriever.search(queries, k=3))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(ids(out) == ids(expected) for out in outputs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "bm25+"}, "method must be one of"),
        ({"b": 1.5}, "b must be"),
        ({"k1": -1}, "k1 must be"),
        ({"stopwords": "klingon"}, "unknown stopword list"),
        ({"stemmer": "klingon"}, "unknown stemmer"),
        ({"n_threads": 0}, "n_threads"),
    ],
)
def test_bad_build_parameters(corpus, kwargs, match):
    with pytest.raises(ValueError, match=match):
        BM25Retriever.build(corpus, **kwargs)


def test_unindexable_corpora_are_refused():
    with pytest.raises(ValueError, match="empty corpus"):
        BM25Retriever.build(Corpus([], name="nothing"))
    only_stopwords = Corpus([Document("a", "The", "and of the"), Document("b", "", "a")])
    with pytest.raises(ValueError, match="no indexable terms"):
        BM25Retriever.build(only_stopwords)


def test_custom_stopwords(corpus):
    r = BM25Retriever.build(corpus, stopwords=("Capital", "city"))
    assert r.params.stopwords == ("capital", "city")
    assert r.search(["capital city"], 3) == [[]]
    assert r.search(["the France"], 3)[0][0].id == "paris"


def test_properties(retriever, corpus):
    assert retriever.corpus is corpus
    assert retriever.params == BM25Config()
    assert retriever.params.method == "lucene" and retriever.params.k1 == 1.5
    assert len(retriever.index_hash) == 64
    assert retriever.index_hash == BM25Retriever.build(corpus).index_hash
    assert retriever.index_hash != BM25Retriever.build(corpus, k1=1.2).index_hash
    assert retriever.manifest["corpus"]["content_hash"] == corpus.content_hash
    assert retriever.vocabulary_size > 10
    assert "tiny" in repr(retriever)


# -- persistence -------------------------------------------------------------------------

QUERIES = ["capital of France", "Voyager rocket", "the and", "running", "cats", "Germany Spree"]


@pytest.mark.parametrize("mmap", [True, False])
@pytest.mark.parametrize("pass_corpus", [True, False])
def test_save_load_round_trip(retriever, corpus, tmp_path, mmap, pass_corpus):
    directory = retriever.save(tmp_path / "index")
    loaded = BM25Retriever.load(directory, corpus=corpus if pass_corpus else None, mmap=mmap)
    before, after = retriever.search(QUERIES, 4), loaded.search(QUERIES, 4)
    assert ids(after) == ids(before)
    assert scores(after) == scores(before)
    assert loaded.index_hash == retriever.index_hash
    assert loaded.params == retriever.params
    assert [d.to_dict() for d in loaded.corpus] == [d.to_dict() for d in corpus]
    assert (loaded.corpus is corpus) == pass_corpus


def test_manifest_content(retriever, corpus, tmp_path):
    retriever.save(tmp_path / "index")
    manifest = json.loads((tmp_path / "index" / MANIFEST_NAME).read_text())
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["backend"] == "raggym-postings"
    assert manifest["num_shards"] if "num_shards" in manifest else manifest["shards"]
    assert manifest["params"] == {
        "k1": 1.5,
        "b": 0.75,
        "method": "lucene",
        "stemmer": "english",
        "stopwords": "en",
    }
    assert manifest["corpus"] == {
        "name": "tiny",
        "content_hash": corpus.content_hash,
        "num_documents": len(corpus),
    }
    assert manifest["created"].endswith("+00:00")


def test_save_is_atomic_and_replaces_old_index(corpus, tmp_path):
    target = tmp_path / "index"
    BM25Retriever.build(corpus, k1=1.2).save(target)
    BM25Retriever.build(corpus, k1=0.9).save(target)
    assert BM25Retriever.load(target).params.k1 == 0.9
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]  # no temp leftovers


def test_crash_during_save_leaves_no_half_index(retriever, corpus, tmp_path, monkeypatch):
    target = tmp_path / "index"
    retriever.save(target)
    old_hash = BM25Retriever.load(target).index_hash

    def boom(self, path):
        raise OSError("disk full")

    monkeypatch.setattr(Corpus, "save_jsonl", boom)
    with pytest.raises(OSError, match="disk full"):
        BM25Retriever.build(corpus, k1=0.5).save(target)
    with pytest.raises(OSError, match="disk full"):
        retriever.save(tmp_path / "fresh")
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]
    assert BM25Retriever.load(target).index_hash == old_hash


def test_save_refuses_foreign_directory(retriever, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a raggym index"):
        retriever.save(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    empty = tmp_path / "empty"
    empty.mkdir()
    retriever.save(empty)
    assert (empty / MANIFEST_NAME).is_file()


def test_load_with_other_corpus_is_refused(retriever, tmp_path):
    directory = retriever.save(tmp_path / "index")
    other = Corpus([Document("x", "Other", "a different corpus")], name="other")
    with pytest.raises(IndexMismatchError) as info:
        BM25Retriever.load(directory, corpus=other)
    message = str(info.value)
    assert retriever.corpus.content_hash in message
    assert other.content_hash in message
    assert str(directory) in message


def test_load_missing_directory_or_manifest(retriever, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        BM25Retriever.load(tmp_path / "nowhere")
    directory = retriever.save(tmp_path / "index")
    (directory / MANIFEST_NAME).unlink()
    with pytest.raises(FileNotFoundError, match=f"{MANIFEST_NAME} not found"):
        BM25Retriever.load(directory)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda m: "{not json", "not valid JSON"),
        (lambda m: json.dumps([1, 2]), "JSON object"),
        (lambda m: json.dumps({**m, "format_version": 999}), r"expected .*2.*found.*999"),
        (lambda m: json.dumps({**m, "backend": "pyserini"}), "pyserini"),
        (lambda m: json.dumps({**m, "params": {"k1": 1}}), "malformed"),
        (lambda m: json.dumps({**m, "shards": [{"path": "shards/00000"}]}), "damaged"),
        (lambda m: json.dumps({**m, "total_length": "many"}), "damaged"),
    ],
)
def test_tampered_manifest(retriever, tmp_path, edit, match):
    directory = retriever.save(tmp_path / "index")
    path = directory / MANIFEST_NAME
    path.write_text(edit(json.loads(path.read_text())))
    with pytest.raises(IndexMismatchError, match=match):
        BM25Retriever.load(directory)


def test_tampered_or_missing_files(retriever, tmp_path):
    directory = retriever.save(tmp_path / "index")
    corpus_file = directory / "corpus.jsonl"
    lines = corpus_file.read_text().splitlines()
    corpus_file.write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(IndexMismatchError, match="was modified"):
        BM25Retriever.load(directory)
    (directory / "shards" / "00000" / "data.npy").unlink()
    with pytest.raises(FileNotFoundError, match=r"incomplete .*data\.npy"):
        BM25Retriever.load(directory, corpus=retriever.corpus)


# -- shared cache ------------------------------------------------------------------------


def test_load_or_build_shares_one_index(corpus):
    first = load_or_build(corpus)
    assert load_or_build(corpus) is first
    same_content = Corpus(list(corpus), name="copy")
    assert load_or_build(same_content) is first
    assert load_or_build(corpus, k1=1.2) is not first
    threaded = load_or_build(corpus, n_threads=2)
    assert threaded is not first and threaded.n_threads == 2
    assert threaded._index is first._index  # same index arrays, not a rebuild
    assert load_or_build(corpus, n_threads=2) is threaded
    clear_caches()
    assert load_or_build(corpus) is not first


def test_load_or_build_reuses_index_dir(corpus, tmp_path, monkeypatch):
    directory = tmp_path / "idx"
    built = load_or_build(corpus, directory)
    assert (directory / MANIFEST_NAME).is_file()
    assert load_or_build(corpus, directory) is built
    clear_caches()

    def no_build(*args, **kwargs):
        raise AssertionError("should have loaded the saved index")

    monkeypatch.setattr(bm25_module, "_build_files", no_build)
    loaded = load_or_build(corpus, directory)
    assert loaded is not built and loaded.index_hash == built.index_hash
    assert loaded.corpus is corpus
    assert ids(loaded.search(QUERIES, 3)) == ids(built.search(QUERIES, 3))
    monkeypatch.undo()

    # Other params: the stale index in the directory is rebuilt and replaced.
    rebuilt = load_or_build(corpus, directory, k1=1.2)
    assert BM25Retriever.load(directory).index_hash == rebuilt.index_hash

    # An index cached in memory is written to a directory that lacks it.
    elsewhere = tmp_path / "elsewhere"
    assert load_or_build(corpus, elsewhere, k1=1.2) is rebuilt
    assert BM25Retriever.load(elsewhere).index_hash == rebuilt.index_hash


def test_load_or_build_refuses_foreign_directory(corpus, tmp_path):
    (tmp_path / "data.csv").write_text("1,2")
    with pytest.raises(FileExistsError):
        load_or_build(corpus, tmp_path)


def test_module_exports():
    assert set(bm25_module.__all__) >= {"BM25Retriever", "load_or_build", "BM25Config"}


# -- real data ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hotpot(request):
    data_dir: Path = request.getfixturevalue("shared_data_dir")
    path = data_dir / "hotpotqa" / "hotpot_dev_distractor_first500.json"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    data = json.loads(path.read_text(encoding="utf-8"))
    corpus = Corpus.from_passages(
        [(title, "".join(sents)) for rec in data for title, sents in rec["context"]],
        name="hotpotqa-dev-first500",
    )
    return data, corpus


def test_hotpotqa_recall_at_10(hotpot, tmp_path):
    data, corpus = hotpot
    retriever = BM25Retriever.build(corpus)
    results = retriever.search([rec["question"] for rec in data], k=10)
    recalls, complete = [], 0
    for rec, hits in zip(data, results, strict=True):
        gold = {title for title, _ in rec["supporting_facts"]}
        found = gold & {hit.document.title for hit in hits}
        recalls.append(len(found) / len(gold))
        complete += found == gold
    recall = sum(recalls) / len(recalls)
    print(
        f"HotpotQA dev first 500, {len(corpus)} pooled paragraphs: "
        f"recall@10 {recall:.3f}, all gold in top 10 {complete / len(data):.3f}"
    )
    # Measured 0.891 (all gold: 0.788) with bm25s 0.3.16, k1=1.5, b=0.75, English stemmer.
    assert recall > 0.85

    directory = retriever.save(tmp_path / "hotpot")
    reloaded = BM25Retriever.load(directory, corpus=corpus, mmap=True)
    sample = [rec["question"] for rec in data[:50]]
    assert ids(reloaded.search(sample, 10)) == ids(results[:50])


def test_a_disk_corpus_is_linked_into_the_index_not_copied(corpus, tmp_path):
    store = write_store(corpus, tmp_path / "store")
    built = BM25Retriever.build(store)
    directory = built.save(tmp_path / "index")
    assert not (directory / "corpus.jsonl").exists()
    linked, original = directory / "corpus" / "text.bin", store.directory / "text.bin"
    assert os.stat(linked).st_ino == os.stat(original).st_ino
    loaded = BM25Retriever.load(directory)
    assert isinstance(loaded.corpus, DiskCorpus)
    assert loaded.index_hash == built.index_hash
    assert ids(loaded.search(QUERIES, 3)) == ids(BM25Retriever.build(corpus).search(QUERIES, 3))
