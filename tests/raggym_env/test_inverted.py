"""The sharded inverted index behind BM25: postings codes, exact scores, shard invariance."""

from __future__ import annotations

import math
import os
import random
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from raggym_env import Corpus, Document
from raggym_env.retrieval import inverted
from raggym_env.retrieval import postings as postings_module
from raggym_env.retrieval.base import IndexMismatchError
from raggym_env.retrieval.bm25 import BM25Config, BM25Retriever
from raggym_env.retrieval.inverted import ShardPlan, parse_size
from raggym_env.retrieval.postings import (
    BLOCK_SIZE,
    decode_block,
    decode_varbytes,
    encode_postings,
    encode_varbytes,
)

# -- postings ------------------------------------------------------------------------------


def test_varbytes_round_trip_at_every_width():
    values = np.array(
        [0, 1, 127, 128, 16_383, 16_384, 2**21 - 1, 2**21, 2**28 - 1, 2**28, 2**32 - 1],
        dtype=np.uint32,
    )
    data, offsets = encode_varbytes(values)
    assert decode_varbytes(data).tolist() == values.tolist()
    assert np.diff(np.append(offsets, len(data))).tolist() == [1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert decode_varbytes(np.zeros(0, np.uint8)).tolist() == []


def test_encoded_postings_decode_to_what_went_in():
    rng = np.random.default_rng(0)
    terms, docs, tfs = [], [], []
    for term, size in enumerate([1, BLOCK_SIZE, BLOCK_SIZE + 1, 3 * BLOCK_SIZE + 7]):
        chosen = np.sort(rng.choice(5_000, size=size, replace=False))
        terms += [term] * size
        docs += chosen.tolist()
        tfs += rng.integers(1, 300, size=size).tolist()
    lengths = rng.integers(1, 500, size=5_000).astype(np.uint32)
    encoded = encode_postings(
        np.array(terms, np.uint32), np.array(docs, np.uint32), np.array(tfs, np.uint32), lengths
    )
    shard = inverted._Shard.__new__(inverted._Shard)
    shard.postings = encoded
    decoded_docs, decoded_tfs = [], []
    for position in range(len(encoded.terms)):
        d, f = shard.decode(position)
        decoded_docs += d.tolist()
        decoded_tfs += f.tolist()
    assert decoded_docs == docs and decoded_tfs == tfs
    assert encoded.terms.tolist() == [0, 1, 2, 3]
    blocks = np.diff(encoded.term_blocks).tolist()
    assert blocks == [1, 1, 2, 4]
    assert int(encoded.block_count.max()) == BLOCK_SIZE


# -- exact scores --------------------------------------------------------------------------

WORDS = [f"w{i}" for i in range(60)] + ["alpha", "beta", "gamma", "delta", "owls", "rivers"]


def _random_corpus(n: int, seed: int) -> Corpus:
    rng = random.Random(seed)
    weights = [1 / (rank + 1) for rank in range(len(WORDS))]  # Zipf-like: frequent terms
    docs = []
    for i in range(n):
        length = rng.randint(1, 40)
        text = " ".join(rng.choices(WORDS, weights=weights, k=length))
        docs.append(Document(f"d{i}", f"T{i % 97}", text))
    return Corpus(docs, name=f"random-{n}")


QUERIES = ["w0 w1", "alpha beta gamma", "owls rivers w5", "w3 w3 delta", "w59", "nothing here"]


def _direct_scores(corpus: Corpus, query: str, params: BM25Config) -> dict[int, float]:
    """BM25 computed from scratch in float64 from the analysed tokens."""
    analyzer = params.analyzer()
    docs = [Counter(analyzer.terms(f"{d.title}\n{d.text}")) for d in corpus]
    lengths = [sum(c.values()) for c in docs]
    n, avgdl = len(docs), sum(lengths) / len(docs)
    df = Counter(term for c in docs for term in c)
    scores: dict[int, float] = {}
    for term in analyzer.terms(query):
        if term not in df:
            continue
        if params.method == "lucene":
            idf = math.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5))
        elif params.method == "robertson":
            idf = math.log(max((n - df[term] + 0.5) / (df[term] + 0.5), 1.0))
        else:
            idf = math.log(n / df[term])
        scale = params.k1 + 1 if params.method == "atire" else 1.0
        for i, counts in enumerate(docs):
            tf = counts.get(term, 0)
            if tf:
                norm = params.k1 * (1 - params.b + params.b * lengths[i] / avgdl)
                scores[i] = scores.get(i, 0.0) + idf * tf * scale / (tf + norm)
    return {i: s for i, s in scores.items() if s > 0}


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return _random_corpus(700, seed=1)


@pytest.mark.parametrize("method", ["lucene", "robertson", "atire"])
def test_scores_equal_a_direct_computation(corpus, method):
    params = BM25Config(k1=1.2, b=0.75, method=method)
    retriever = BM25Retriever.build(corpus, **params.to_kwargs(), shard_size=150)
    k = 10
    for query, hits in zip(QUERIES, retriever.search(QUERIES, k), strict=True):
        expected = _direct_scores(corpus, query, params)
        assert len(hits) == min(k, len(expected))
        for hit in hits:
            position = retriever.corpus.index_of(hit.document.id)
            assert hit.score == pytest.approx(expected[position], rel=1e-5)
        best = sorted(expected.values(), reverse=True)
        if len(best) > k:  # nothing better than the last hit was left out
            assert hits[-1].score >= best[k] * (1 - 1e-5)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def _results(retriever: BM25Retriever, k: int = 20) -> list[list[tuple[str, float]]]:
    return [[(h.document.id, h.score) for h in hits] for hits in retriever.search(QUERIES, k)]


def test_four_shards_and_one_return_identical_ids_and_scores(corpus):
    one = BM25Retriever.build(corpus)
    four = BM25Retriever.build(corpus, shard_size=175)
    assert one.num_shards == 1 and four.num_shards == 4
    assert _results(four) == _results(one)
    assert _results(four, k=700) == _results(one, k=700)


def test_memory_budget_cuts_shards_without_changing_results(corpus):
    one = BM25Retriever.build(corpus)
    budgeted = BM25Retriever.build(corpus, memory_budget=40 * 3_000)
    assert budgeted.num_shards > 1
    assert _results(budgeted) == _results(one)


def test_numpy_path_equals_the_compiled_kernel(corpus):
    retriever = BM25Retriever.build(corpus, shard_size=300)
    if not retriever.compiled:
        pytest.skip("numba is not installed: only the numpy path exists")
    compiled = _results(retriever, k=50)
    retriever._index._kernel = None
    assert not retriever.compiled
    assert _results(retriever, k=50) == compiled


def test_worker_processes_build_the_same_index(corpus):
    alone = BM25Retriever.build(corpus, n_workers=1)
    parallel = BM25Retriever.build(corpus, n_workers=2, shard_size=200)
    assert _results(parallel) == _results(alone)
    assert parallel.vocabulary_size == alone.vocabulary_size


def test_equal_scores_come_in_corpus_order():
    docs = [Document(f"d{i}", "", "same words here") for i in range(300)]
    retriever = BM25Retriever.build(Corpus(docs, name="ties"), shard_size=64)
    hits = retriever.search(["same words"], 5)[0]
    assert [h.document.id for h in hits] == ["d0", "d1", "d2", "d3", "d4"]
    assert len({h.score for h in hits}) == 1


def test_unknown_and_stopword_queries_return_nothing(corpus):
    retriever = BM25Retriever.build(corpus)
    assert retriever.search(["the and of", "zzzunseen", ""], 5) == [[], [], []]


def test_vocabulary_lookup(tmp_path):
    terms = ["b", "a", "ünïcode", "c" * 300]
    inverted.Vocabulary.write(terms, tmp_path / "vocab")
    vocabulary = inverted.Vocabulary.open(tmp_path / "vocab", mmap=True)
    assert [vocabulary.get(t, -1) for t in terms] == [0, 1, 2, 3]
    assert vocabulary.get("missing", -1) == -1
    assert sorted(vocabulary.terms()) == sorted((t, i) for i, t in enumerate(terms))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("512", 512), ("64K", 64 << 10), ("1.5M", int(1.5 * (1 << 20))), ("2G", 2 << 30), (7, 7)],
)
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("bad", ["", "lots", "-1M", "0", "1X"])
def test_parse_size_rejects(bad):
    with pytest.raises(ValueError, match="size"):
        parse_size(bad)


def test_shard_plan_validates():
    with pytest.raises(ValueError, match="shard_size"):
        ShardPlan(shard_size=0)
    assert ShardPlan(memory_budget=10).max_postings == 1


def test_compiled_encoder_writes_the_numpy_layout():
    pytest.importorskip("numba", reason="the compiled encoder needs numba")
    rng = np.random.default_rng(3)
    n_docs, n = 3_000, 40_000
    docs = np.sort(rng.integers(0, n_docs, size=n)).astype(np.uint32)
    terms = rng.integers(0, 500, size=n).astype(np.uint32)
    keys = np.unique(docs.astype(np.int64) * 1_000 + terms)  # one posting per (doc, term)
    docs, terms = (keys // 1_000).astype(np.uint32), (keys % 1_000).astype(np.uint32)
    tfs = rng.integers(1, 40_000, size=len(keys)).astype(np.uint32)
    lengths = rng.integers(1, 300, size=n_docs).astype(np.uint32)
    compiled = inverted._sort_and_encode(terms, docs, tfs, lengths).arrays()
    order = np.argsort(terms, kind="stable")
    reference = encode_postings(terms[order], docs[order], tfs[order], lengths).arrays()
    assert compiled.keys() == reference.keys()
    for name, array in reference.items():
        assert compiled[name].dtype == array.dtype, name
        assert np.array_equal(compiled[name], array), name


def test_extreme_gaps_and_frequencies_round_trip():
    tfs = np.array([1, 2**32 - 1, 1, 7, 1, 1], dtype=np.uint32)
    terms = np.array([0, 0, 0, 0, 1, 1], dtype=np.uint32)
    lengths = np.ones(8, dtype=np.uint32)
    docs = np.array([0, 1, 6, 7, 5, 6], dtype=np.uint32)
    encoded = encode_postings(terms, docs, tfs, lengths)
    got = [
        decode_block(encoded.data, int(encoded.block_offset[b]), int(encoded.block_count[b]))
        for b in range(len(encoded.block_count))
    ]
    assert got[0][0].tolist() == [0, 1, 6, 7] and got[0][1].tolist() == [1, 2**32 - 1, 1, 7]
    assert got[1][0].tolist() == [5, 6] and got[1][1].tolist() == [1, 1]
    kernels = pytest.importorskip("raggym_env.retrieval.bm25_kernels", exc_type=ImportError)
    out_docs, out_tfs = np.zeros(128, np.int64), np.zeros(128, np.int64)
    start, end = np.int64(encoded.block_offset[0]), np.int64(encoded.block_offset[1])
    assert kernels._read_block(encoded.data, start, end, 4, 7, out_docs, out_tfs)
    assert out_docs[:4].tolist() == [0, 1, 6, 7] and out_tfs[:4].tolist() == [1, 2**32 - 1, 1, 7]
    compiled = inverted._sort_and_encode(terms, docs, tfs, lengths).arrays()
    for name, array in encoded.arrays().items():
        assert np.array_equal(compiled[name], array), name


def test_large_gaps_pack_in_wide_frames():
    values = np.array([3, 2**20, 2**31 + 5], dtype=np.uint64)
    for width in (0, 1, 7, 8, 9, 31, 32):
        data = np.zeros(16 + 8, dtype=np.uint8)
        bits = np.zeros(8 * len(data), dtype=np.uint8)
        masked = values & np.uint64((1 << width) - 1)
        postings_module._pack(bits, np.arange(3) * width, masked, np.full(3, width))
        data |= np.packbits(bits, bitorder="little")
        got, _ = postings_module._unpack(data, 0, 3, width)
        assert got.tolist() == masked.tolist(), width


def test_warm_up_loads_the_kernel_when_numba_is_there():
    from raggym_env.availability import is_numba_available

    assert inverted.warm_up() is is_numba_available()


def _damage(directory, name, edit):
    path = directory / "shards" / "00000" / f"{name}.npy"
    array = np.load(path)
    edit(array)
    path.unlink()  # a new file: the index's files may be hard links shared with another
    np.save(path, array)


@pytest.mark.parametrize("compiled", [True, False])
def test_a_damaged_block_is_reported_not_read_past(corpus, tmp_path, compiled):
    retriever = BM25Retriever.build(corpus, shard_size=350)
    directory = retriever.save(tmp_path / "index")
    expected = _results(BM25Retriever.build(corpus))
    shard = directory / "shards" / "00000"
    offsets = np.load(shard / "block_offset.npy")
    position = int(
        np.searchsorted(np.load(shard / "terms.npy"), retriever._index.vocabulary.get("w2"))
    )
    big = int(np.load(shard / "term_blocks.npy")[position])  # the first block of "w2"

    def widen(data):  # past the block's first document: its gap width byte
        at = int(offsets[big])
        while data[at] >= 0x80:
            at += 1
        data[at + 1] = 200

    _damage(directory, "data", widen)
    damaged = BM25Retriever.load(directory)
    if not compiled:
        damaged._index._kernel = None
    elif not damaged.compiled:
        pytest.skip("numba is not installed")
    with pytest.raises(IndexMismatchError, match="damaged"):
        damaged.search(["w1 w2"], 700)
    # The workspaces were left clean: an intact index in this thread still scores exactly.
    assert _results(retriever) == expected


@pytest.mark.parametrize(
    ("name", "edit"),
    [
        ("block_offset", lambda a: a.__setitem__(-1, a[-1] + 50)),
        ("block_count", lambda a: a.__setitem__(0, 200)),
        ("block_last", lambda a: a.__setitem__(0, 10**6)),
        ("term_blocks", lambda a: a.__setitem__(1, 0)),
        ("terms", lambda a: a.__setitem__(1, a[0])),
    ],
)
def test_inconsistent_tables_are_refused_at_load(corpus, tmp_path, name, edit):
    directory = BM25Retriever.build(corpus).save(tmp_path / "index")
    _damage(directory, name, edit)
    with pytest.raises(IndexMismatchError, match=f"damaged .*{name.split('_')[0]}"):
        BM25Retriever.load(directory)


def test_index_files_are_the_same_in_every_run(tmp_path):
    script = (
        "import sys; from pathlib import Path\n"
        "from raggym_env import Corpus, Document\n"
        "from raggym_env.retrieval.bm25 import build_into\n"
        "docs = [Document(f'd{i}', f'T{i % 5}', ' '.join(f'w{(i * j) % 37}' for j in range(30)))"
        " for i in range(300)]\n"
        "build_into(Corpus(docs, name='c'), Path(sys.argv[1]), shard_size=100, n_workers=1)\n"
    )
    digests = []
    for run, seed in enumerate(("1", "2")):
        out = tmp_path / f"run{run}"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-c", script, str(out)], check=True, env=env)
        files = sorted(p for p in out.rglob("*.npy"))
        digests.append([(p.relative_to(out).as_posix(), p.read_bytes()) for p in files])
    assert digests[0] == digests[1]
