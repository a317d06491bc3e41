"""Benchmark retrieval speed: BM25 vs dense vs hybrid on HotpotQA, FAISS flat vs HNSW at scale.

Usage::

    python perf/retrieval_speed.py [--questions 500] [--limit-docs N]
        [--vectors 1000000] [--hnsw-budget 480]

Part 1: the pooled context paragraphs of a HotpotQA file (4,937 documents for the bundled
500-question dev sample) with its questions as queries. For raggym's ``bm25``, ``dense``
(bundled all-MiniLM-L6-v2, exact ``flat`` FAISS index) and ``hybrid`` (RRF of the two):
index build time, save and reload time, queries/s for top-10 in one batched ``search`` call
and one query per call, p50/p95 latency of one query per call, and peak RSS. The corpus
is encoded once (dense build), saved, and the hybrid reuses both saved member indexes.
Also the encoder's own throughput (paragraphs/s and questions/s, torch threads = 2).

Part 2: random L2-normalised 384-d float32 vectors (numpy seed 0): FAISS ``IndexFlatIP``
against ``IndexHNSWFlat`` (M=32, efConstruction=40, efSearch 64 and 128): build time,
index size (serialized bytes) and RSS, queries/s for 1,000 random queries top-10, and
HNSW recall@10 against the exact flat results. A 100k HNSW build is timed first; when the
full size is projected to take longer than ``--hnsw-budget`` seconds, the largest size
that fits is used instead (the report says so). The memory planner's recommendation for
the full size with a 2 GiB and a 24 GiB budget is printed next to the measured sizes.

Every phase runs in its own subprocess (so ``ru_maxrss`` is per phase) with 2 BLAS /
OpenMP / torch threads.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from measure import (
    cpu_model,
    current_rss_mib,
    dir_size_mib,
    fmt,
    peak_rss_mib,
    run_json_worker,
)

if TYPE_CHECKING:
    import numpy as np

    from raggym_env.corpora import Corpus

THREADS = 2
THREAD_ENV = {
    "OMP_NUM_THREADS": str(THREADS),
    "OPENBLAS_NUM_THREADS": str(THREADS),
    "MKL_NUM_THREADS": str(THREADS),
    "NUMBA_NUM_THREADS": str(THREADS),
    "VECLIB_MAXIMUM_THREADS": str(THREADS),
    "TOKENIZERS_PARALLELISM": "false",
    "DISABLE_TQDM": "1",
}
# ../shared/data beside the repository (see its README); --hotpotqa names another file
DEFAULT_HOTPOTQA = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "data"
    / "hotpotqa"
    / "hotpot_dev_distractor_first500.json"
)
TOP_K = 10
DIM = 384
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 40
HNSW_EF_SEARCH = (64, 128)
PROBE_VECTORS = 100_000
FAISS_QUERIES = 1_000
GIB = 2**30


# -- measurement helpers -------------------------------------------------------------------


def _set_torch_threads() -> None:
    """Use ``THREADS`` torch intra-op threads (when torch is installed)."""
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(THREADS)


def _percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``."""
    import numpy as np

    return float(np.percentile(np.asarray(values), q))


# -- part 1: HotpotQA corpus ---------------------------------------------------------------


def load_hotpotqa(args: argparse.Namespace) -> tuple[Corpus, list[str]]:
    """The pooled corpus (first ``--limit-docs`` documents) and the first ``--questions``."""
    from raggym_env.corpora import Corpus
    from raggym_env.tasks import load_task

    task = load_task("hotpotqa", path=args.hotpotqa)
    corpus = task.corpus
    if args.limit_docs and args.limit_docs < len(corpus):
        corpus = Corpus(
            corpus.documents[: args.limit_docs], name=f"{corpus.name}-{args.limit_docs}"
        )
    questions = [ex.question for ex in task.examples][: args.questions]
    return corpus, questions


def _time_search(retriever: Any, queries: list[str]) -> dict[str, Any]:
    """Batched and one-per-call top-10 timings of ``retriever`` on ``queries``."""
    retriever.search(queries[:2], TOP_K)  # warm-up (lazy imports, first forward pass)
    start = time.perf_counter()
    retriever.search(queries, TOP_K)
    batched = time.perf_counter() - start
    latencies = []
    for query in queries:
        start = time.perf_counter()
        retriever.search([query], TOP_K)
        latencies.append(time.perf_counter() - start)
    return {
        "batched_qps": len(queries) / batched,
        "single_qps": len(queries) / sum(latencies),
        "p50_ms": _percentile(latencies, 50) * 1e3,
        "p95_ms": _percentile(latencies, 95) * 1e3,
    }


def worker_bm25(args: argparse.Namespace) -> dict[str, Any]:
    """Build, save, reload (memory-mapped) and time raggym's BM25 retriever."""
    from raggym_env.retrieval.bm25 import BM25Retriever

    corpus, questions = load_hotpotqa(args)
    baseline = current_rss_mib()
    start = time.perf_counter()
    built = BM25Retriever.build(corpus, n_threads=1)
    build_s = time.perf_counter() - start
    path = Path(args.path) / "bm25"
    start = time.perf_counter()
    built.save(path)
    save_s = time.perf_counter() - start
    del built
    start = time.perf_counter()
    retriever = BM25Retriever.load(path, corpus=corpus, mmap=True)
    load_s = time.perf_counter() - start
    return {
        "build_s": build_s,
        "save_s": save_s,
        "load_s": load_s,
        "disk_mib": dir_size_mib(path),
        **_time_search(retriever, questions),
        "rss_corpus_mib": baseline,
        "peak_rss_mib": peak_rss_mib(),
    }


def worker_dense_build(args: argparse.Namespace) -> dict[str, Any]:
    """Encode the corpus once into a flat dense index and save it (reused by later phases)."""
    from raggym_env.retrieval.dense import DenseRetriever

    _set_torch_threads()
    corpus, _ = load_hotpotqa(args)
    baseline = current_rss_mib()
    start = time.perf_counter()
    retriever = DenseRetriever.build(corpus, index_type="flat")
    build_s = time.perf_counter() - start
    path = Path(args.path) / "dense"
    start = time.perf_counter()
    retriever.save(path)
    save_s = time.perf_counter() - start
    return {
        "build_s": build_s,
        "build_docs_per_s": len(corpus) / build_s,
        "save_s": save_s,
        "disk_mib": dir_size_mib(path),
        "rss_corpus_mib": baseline,
        "peak_rss_mib": peak_rss_mib(),
    }


def worker_dense_serve(args: argparse.Namespace) -> dict[str, Any]:
    """Reload the saved dense index (model included) and time search."""
    from raggym_env.retrieval.dense import DenseRetriever

    _set_torch_threads()
    corpus, questions = load_hotpotqa(args)
    baseline = current_rss_mib()
    start = time.perf_counter()
    retriever = DenseRetriever.load(Path(args.path) / "dense", corpus=corpus)
    load_s = time.perf_counter() - start
    return {
        "load_s": load_s,
        **_time_search(retriever, questions),
        "rss_corpus_mib": baseline,
        "peak_rss_mib": peak_rss_mib(),
    }


def worker_hybrid(args: argparse.Namespace) -> dict[str, Any]:
    """Load the hybrid from both saved member indexes and time search."""
    from raggym_env.retrieval.factory import make_retriever

    _set_torch_threads()
    corpus, questions = load_hotpotqa(args)
    baseline = current_rss_mib()
    start = time.perf_counter()
    retriever = make_retriever(
        "hybrid",
        corpus,
        cache=False,
        bm25={"index_dir": str(Path(args.path) / "bm25")},
        dense={"index_dir": str(Path(args.path) / "dense"), "index_type": "flat"},
    )
    load_s = time.perf_counter() - start
    return {
        "load_s": load_s,
        **_time_search(retriever, questions),
        "rss_corpus_mib": baseline,
        "peak_rss_mib": peak_rss_mib(),
    }


def worker_encode(args: argparse.Namespace) -> dict[str, Any]:
    """Throughput of the bundled encoder alone: corpus paragraphs and questions."""
    from sentence_transformers import SentenceTransformer

    from raggym_env.retrieval.dense import _bundled_model_path, document_text

    _set_torch_threads()
    corpus, questions = load_hotpotqa(args)
    texts = [document_text(doc) for doc in corpus.documents[: args.encode_sample]]
    start = time.perf_counter()
    encoder = SentenceTransformer(str(_bundled_model_path()), device="cpu")
    model_load_s = time.perf_counter() - start
    encoder.encode_query(questions[:8], show_progress_bar=False)  # warm-up
    start = time.perf_counter()
    encoder.encode_document(texts, batch_size=64, show_progress_bar=False, convert_to_numpy=True)
    docs_s = time.perf_counter() - start
    start = time.perf_counter()
    encoder.encode_query(questions, batch_size=64, show_progress_bar=False, convert_to_numpy=True)
    queries_s = time.perf_counter() - start
    return {
        "model_load_s": model_load_s,
        "docs": len(texts),
        "docs_per_s": len(texts) / docs_s,
        "queries": len(questions),
        "queries_per_s": len(questions) / queries_s,
        "max_seq_length": encoder.max_seq_length,
        "peak_rss_mib": peak_rss_mib(),
    }


# -- part 2: random vectors, FAISS flat vs HNSW --------------------------------------------


CENTRE_SEED = 12345
"""Seed of the cluster centres, shared by corpus and query vectors."""


def random_vectors(n: int, seed: int, clusters: int = 0) -> np.ndarray:
    """``n`` L2-normalised ``DIM``-d float32 vectors (seeded).

    With ``clusters == 0`` each vector is standard normal: no neighbourhood structure, the
    worst case for a graph index. With ``clusters > 0`` each vector is one of ``clusters``
    fixed random centres plus noise of the same scale, closer to how real embeddings group.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, DIM), dtype=np.float32)
    if clusters > 0:
        centres = np.random.default_rng(CENTRE_SEED).standard_normal(
            (clusters, DIM), dtype=np.float32
        )
        x += centres[rng.integers(clusters, size=n)]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def _hnsw(n: int) -> Any:
    """An empty ``IndexHNSWFlat`` (inner product) with the benchmark's parameters."""
    import faiss

    index = faiss.IndexHNSWFlat(DIM, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    return index


def worker_hnsw_probe(args: argparse.Namespace) -> dict[str, Any]:
    """Time an HNSW build over ``--size`` vectors (used to extrapolate the full build)."""
    x = random_vectors(args.size, args.seed, args.clusters)
    index = _hnsw(args.size)
    start = time.perf_counter()
    index.add(x)
    return {"size": args.size, "build_s": time.perf_counter() - start}


def worker_flat(args: argparse.Namespace) -> dict[str, Any]:
    """Build ``IndexFlatIP``, time search, and save the exact top-10 ids for recall."""
    import faiss
    import numpy as np

    x = random_vectors(args.size, args.seed, args.clusters)
    queries = random_vectors(FAISS_QUERIES, args.seed + 1, args.clusters)
    baseline = current_rss_mib()
    start = time.perf_counter()
    index = faiss.IndexFlatIP(DIM)
    index.add(x)
    build_s = time.perf_counter() - start
    del x
    index.search(queries[:10], TOP_K)
    start = time.perf_counter()
    _, ids = index.search(queries, TOP_K)
    search_s = time.perf_counter() - start
    rss = current_rss_mib()
    peak = peak_rss_mib()
    np.save(Path(args.path) / "flat_ids.npy", ids)
    index_bytes = faiss.serialize_index(index).nbytes
    return {
        "build_s": build_s,
        "qps": FAISS_QUERIES / search_s,
        "index_bytes": int(index_bytes),
        "rss_vectors_mib": baseline,
        "rss_mib": rss,
        "peak_rss_mib": peak,
    }


def worker_hnsw(args: argparse.Namespace) -> dict[str, Any]:
    """Build HNSW, time search at each efSearch, and measure recall@10 against flat."""
    import faiss
    import numpy as np

    x = random_vectors(args.size, args.seed, args.clusters)
    queries = random_vectors(FAISS_QUERIES, args.seed + 1, args.clusters)
    exact = np.load(Path(args.path) / "flat_ids.npy")
    baseline = current_rss_mib()
    index = _hnsw(args.size)
    start = time.perf_counter()
    index.add(x)
    build_s = time.perf_counter() - start
    del x
    searches = {}
    for ef in HNSW_EF_SEARCH:
        index.hnsw.efSearch = ef
        index.search(queries[:10], TOP_K)
        start = time.perf_counter()
        _, ids = index.search(queries, TOP_K)
        search_s = time.perf_counter() - start
        overlaps = [
            len(set(a.tolist()) & set(b.tolist())) / TOP_K for a, b in zip(ids, exact, strict=True)
        ]
        recall = float(np.mean(overlaps))
        searches[str(ef)] = {"qps": FAISS_QUERIES / search_s, "recall": recall}
    rss = current_rss_mib()
    peak = peak_rss_mib()
    index_bytes = faiss.serialize_index(index).nbytes
    return {
        "build_s": build_s,
        "searches": searches,
        "index_bytes": int(index_bytes),
        "rss_vectors_mib": baseline,
        "rss_mib": rss,
        "peak_rss_mib": peak,
    }


WORKERS = {
    "bm25": worker_bm25,
    "dense-build": worker_dense_build,
    "dense-serve": worker_dense_serve,
    "hybrid": worker_hybrid,
    "encode": worker_encode,
    "hnsw-probe": worker_hnsw_probe,
    "flat": worker_flat,
    "hnsw": worker_hnsw,
}


# -- driver --------------------------------------------------------------------------------


def _run_worker(
    name: str, args: argparse.Namespace, path: Path, size: int | None = None
) -> dict[str, Any]:
    """Run one phase in a fresh subprocess and return its JSON result."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        name,
        "--path",
        str(path),
        "--hotpotqa",
        str(args.hotpotqa),
        "--questions",
        str(args.questions),
        "--limit-docs",
        str(args.limit_docs),
        "--encode-sample",
        str(args.encode_sample),
        "--seed",
        str(args.seed),
        "--size",
        str(size or 0),
        "--clusters",
        str(args.clusters),
    ]
    label = f" on {size:,} vectors" if size else ""
    print(f"  running {name}{label} ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    env = THREAD_ENV
    result = run_json_worker(name, command, env)
    result["wall_s"] = time.perf_counter() - start
    print(f"    done in {result['wall_s']:.1f} s", file=sys.stderr, flush=True)
    return result


def _machine() -> str:
    """A one-line description of the CPU and library versions."""
    model = cpu_model()
    import faiss
    import numpy
    import sentence_transformers
    import torch

    return (
        f"{model}, {os.cpu_count()} logical CPUs, {THREADS} torch/OpenMP threads; Python "
        f"{platform.python_version()}, numpy {numpy.__version__}, faiss {faiss.__version__}, "
        f"torch {torch.__version__}, sentence-transformers {sentence_transformers.__version__}"
    )


def part_hotpotqa(args: argparse.Namespace, workdir: Path) -> str:
    """Run part 1 and return its markdown."""
    corpus, questions = load_hotpotqa(args)
    bm25 = _run_worker("bm25", args, workdir)
    dense_build = _run_worker("dense-build", args, workdir)
    dense = _run_worker("dense-serve", args, workdir)
    hybrid = _run_worker("hybrid", args, workdir)
    enc = _run_worker("encode", args, workdir)
    rows = [
        ("index build (s)", bm25["build_s"], dense_build["build_s"], None),
        ("save (s)", bm25["save_s"], dense_build["save_s"], bm25["save_s"] + dense_build["save_s"]),
        ("reload (s)", bm25["load_s"], dense["load_s"], hybrid["load_s"]),
    ]
    lines = [
        f"### HotpotQA pooled corpus: {len(corpus):,} documents, {len(questions):,} questions "
        f"as queries, top-{TOP_K}",
        "",
        "| | bm25 | dense (MiniLM, flat) | hybrid (RRF bm25 + dense) |",
        "|---|---:|---:|---:|",
    ]
    for label, a, b, c in rows:
        lines.append(f"| {label} | {fmt(a)} | {fmt(b)} | {fmt(c) if c is not None else '-'} |")
    for label, key, digits in (
        ("queries/s, one batched call", "batched_qps", 0),
        ("queries/s, one query per call", "single_qps", 0),
        ("latency p50, one per call (ms)", "p50_ms", 2),
        ("latency p95, one per call (ms)", "p95_ms", 2),
    ):
        lines.append(
            f"| {label} | {fmt(bm25[key], digits)} | {fmt(dense[key], digits)} | "
            f"{fmt(hybrid[key], digits)} |"
        )
    lines += [
        f"| peak RSS, build (MiB) | {fmt(bm25['peak_rss_mib'], 0)} "
        f"| {fmt(dense_build['peak_rss_mib'], 0)} | - |",
        f"| peak RSS, serve (MiB) | (same process) | {fmt(dense['peak_rss_mib'], 0)} "
        f"| {fmt(hybrid['peak_rss_mib'], 0)} |",
        f"| RSS with corpus loaded, before indexing (MiB) | {fmt(bm25['rss_corpus_mib'], 0)} "
        f"| {fmt(dense_build['rss_corpus_mib'], 0)} | {fmt(hybrid['rss_corpus_mib'], 0)} |",
        f"| index on disk, with corpus.jsonl (MiB) | {fmt(bm25['disk_mib'], 1)} "
        f"| {fmt(dense_build['disk_mib'], 1)} | (both) |",
        "",
        "- bm25: one process builds (1 thread), saves, reloads memory-mapped and serves, so "
        "its peak RSS covers all of it. dense: build = load the model + encode every "
        f"document + FAISS flat ({dense_build['build_docs_per_s']:.1f} docs/s overall); "
        "reload = `DenseRetriever.load` including loading the model (a fresh process). "
        "hybrid: no build of its own; reload = `make_retriever('hybrid', ...)` over the two "
        "saved member indexes (BM25 + dense incl. model); its save is the sum of the members'.",
        "- One-per-call timings are `search([q], 10)` for every question (after a 2-query "
        "warm-up); dense and hybrid pay one forward pass per call.",
        "",
        f"Encoder alone (bundled all-MiniLM-L6-v2, CPU, torch threads = {THREADS}, batch 64, "
        f"max_seq_length {enc['max_seq_length']}):",
        "",
        "| input | count | per second |",
        "|---|---:|---:|",
        f"| corpus paragraphs (title: text) | {enc['docs']:,} | {fmt(enc['docs_per_s'], 1)} |",
        f"| questions | {enc['queries']:,} | {fmt(enc['queries_per_s'], 1)} |",
        "",
        f"Model load: {enc['model_load_s']:.2f} s.",
    ]
    return "\n".join(lines)


def _projected_hnsw_s(probe_s: float, probe_n: int, n: int) -> float:
    """HNSW build time for ``n`` vectors extrapolated as ``n log n`` from a probe."""
    return probe_s * (n * math.log(n)) / (probe_n * math.log(probe_n))


def _hnsw_size(args: argparse.Namespace, probe_s: float, probe_n: int) -> int:
    """The largest size <= ``--vectors`` whose projected HNSW build fits the budget."""
    n = args.vectors
    if _projected_hnsw_s(probe_s, probe_n, n) <= args.hnsw_budget:
        return n
    step = 50_000 if n > 100_000 else 10_000
    while n > step and _projected_hnsw_s(probe_s, probe_n, n) > args.hnsw_budget:
        n -= step
    return n


def part_faiss(args: argparse.Namespace, workdir: Path) -> str:
    """Run part 2 and return its markdown."""
    from raggym_env.retrieval.memory import plan_index

    probe_n = min(PROBE_VECTORS, args.vectors)
    probe = _run_worker("hnsw-probe", args, workdir, probe_n)
    projected = _projected_hnsw_s(probe["build_s"], probe_n, args.vectors)
    size = _hnsw_size(args, probe["build_s"], probe_n)
    if size < args.vectors:
        note = (
            f"**Shrunk:** HNSW over {args.vectors:,} vectors was projected to take "
            f"{projected:.0f} s to build (from {probe['build_s']:.1f} s for {probe_n:,}, "
            f"scaled as n log n), over the {args.hnsw_budget:.0f} s budget; both indexes "
            f"were measured at {size:,} vectors, the largest size projected to fit."
        )
    else:
        note = (
            f"HNSW probe: {probe_n:,} vectors built in {probe['build_s']:.1f} s; "
            f"{args.vectors:,} projected at {projected:.0f} s (within the "
            f"{args.hnsw_budget:.0f} s budget)."
        )
    flat = _run_worker("flat", args, workdir, size)
    hnsw = _run_worker("hnsw", args, workdir, size)
    lines = [
        f"### FAISS over {size:,} random {DIM}-d normalised vectors"
        + (f" around {args.clusters:,} centres" if args.clusters else "")
        + f", {FAISS_QUERIES:,} "
        f"queries, top-{TOP_K}",
        "",
        note,
        "",
        "| index | build (s) | index bytes (serialized, MiB) | RSS after search (MiB) "
        "| peak RSS (MiB) | queries/s | recall@10 vs flat |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| IndexFlatIP (exact) | {fmt(flat['build_s'])} | "
        f"{fmt(flat['index_bytes'] / 2**20, 0)} | {fmt(flat['rss_mib'], 0)} | "
        f"{fmt(flat['peak_rss_mib'], 0)} | {fmt(flat['qps'], 0)} | 1.000 |",
    ]
    for ef, result in hnsw["searches"].items():
        lines.append(
            f"| HNSW M={HNSW_M}, efC={HNSW_EF_CONSTRUCTION}, efSearch={ef} | "
            f"{fmt(hnsw['build_s'])} | {fmt(hnsw['index_bytes'] / 2**20, 0)} | "
            f"{fmt(hnsw['rss_mib'], 0)} | {fmt(hnsw['peak_rss_mib'], 0)} | "
            f"{fmt(result['qps'], 0)} | {result['recall']:.3f} |"
        )
    lines += [
        "",
        f"- RSS with the vectors generated, before indexing: flat "
        f"{fmt(flat['rss_vectors_mib'], 0)} MiB, HNSW {fmt(hnsw['rss_vectors_mib'], 0)} MiB "
        "(the float32 array is freed after `add`; peak RSS includes it). One HNSW build "
        "serves both efSearch settings. queries/s: one batched `search` of all queries "
        f"({THREADS} OpenMP threads).",
        "",
        f"Memory planner (`plan_index({args.vectors:,}, {DIM}, budget)`), estimates next to "
        f"the measured index bytes at {size:,} vectors:",
        "",
        "| budget | recommends | fits | flat est. (MiB) | hnsw est. (MiB) | ivfpq est. (MiB) "
        "| reason |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for budget_gib in (2, 24):
        plan = plan_index(args.vectors, DIM, budget_gib * GIB)
        alt = plan.alternatives
        lines.append(
            f"| {budget_gib} GiB | {plan.index_type} | {plan.fits} | "
            f"{fmt(alt['flat'] / 2**20, 0)} | {fmt(alt['hnsw'] / 2**20, 0)} | "
            f"{fmt(alt['ivfpq'] / 2**20, 0)} | {plan.reason} |"
        )
    scale = args.vectors / size
    lines += [
        "",
        f"Measured: flat {fmt(flat['index_bytes'] / 2**20, 0)} MiB, HNSW "
        f"{fmt(hnsw['index_bytes'] / 2**20, 0)} MiB"
        + (
            f" (x{scale:.1f} linear for {args.vectors:,}: flat "
            f"{fmt(flat['index_bytes'] * scale / 2**20, 0)} MiB, HNSW "
            f"{fmt(hnsw['index_bytes'] * scale / 2**20, 0)} MiB)."
            if size < args.vectors
            else "."
        ),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, then run either one worker or the whole benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--hotpotqa", type=Path, default=DEFAULT_HOTPOTQA)
    parser.add_argument("--questions", type=int, default=500, help="questions used as queries")
    parser.add_argument("--limit-docs", type=int, default=0, help="first N documents (0: all)")
    parser.add_argument(
        "--encode-sample", type=int, default=1_000, help="paragraphs for encoder throughput"
    )
    parser.add_argument("--vectors", type=int, default=1_000_000, help="random vectors (0: skip)")
    parser.add_argument(
        "--hnsw-budget",
        type=float,
        default=480.0,
        help="seconds the HNSW build may take; larger sizes are shrunk to fit",
    )
    parser.add_argument(
        "--clusters",
        type=int,
        default=0,
        help="0: plain random vectors; N: N random centres plus noise (more realistic)",
    )
    parser.add_argument("--skip-hotpotqa", action="store_true", help="only the FAISS part")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, help="where indexes go (default: a temp dir)")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        result = WORKERS[args.worker](args)
        print(json.dumps(result))
        return 0

    started = time.perf_counter()
    sections = []
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        if not args.skip_hotpotqa:
            sections.append(part_hotpotqa(args, Path(tmp)))
        if args.vectors > 0:
            sections.append(part_faiss(args, Path(tmp)))
    report = "\n\n".join(
        [
            "## Retrieval speed "
            f"(`{' '.join(['python', 'perf/retrieval_speed.py', *sys.argv[1:]])}`)",
            f"Machine: {_machine()}.",
            *sections,
            f"Total wall time {time.perf_counter() - started:.0f} s.",
        ]
    )
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
