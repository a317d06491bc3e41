"""Recall@k of the approximate FAISS indexes (HNSW, IVF-PQ, IVF-Flat, IVF-SQ8) against exact search.

Embeds a real passage corpus with the bundled model once (the embeddings are cached under
``--cache-dir``), uses the benchmark questions as queries, and for every index setting
reports recall@k against exact flat inner-product search (the share of the exact top k
that the index also returns), queries/s of one batched search on one thread, and build
seconds. The same grid then runs on synthetic clustered unit vectors (Gaussian blobs
around random centres, not uniform noise, which no index handles well).

    python perf/ann_recall.py [--corpus PATH ...] [--synthetic 100000] [--k 10]
    python perf/ann_recall.py --quick      # a small grid and 20k synthetic vectors

Defaults read ``../shared/data`` beside the repository: the 6,119-passage Wikipedia file
plus the pooled HotpotQA and 2Wiki context paragraphs, queried by their questions.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

_ROOT = Path(__file__).resolve().parents[1]
SHARED = next(
    (d / "shared" / "data" for d in (_ROOT.parent, _ROOT.parent.parent) if (d / "shared").is_dir()),
    _ROOT.parent / "shared" / "data",
)
DEFAULT_CORPORA = (SHARED / "wiki_corpus" / "wiki_passages_2wiki6119.json",)
DEFAULT_TASKS = {
    "hotpotqa": SHARED / "hotpotqa" / "hotpot_dev_distractor_first500.json",
    "2wikimultihopqa": SHARED / "2wikimultihopqa" / "2wiki_dev_sample500.json",
}


def _encode(texts: list[str], *, query: bool) -> np.ndarray:
    """Embed ``texts`` with the bundled model, through dense retrieval's own encoder code."""
    from raggym_env.retrieval.dense import _encoder, _resolve_model

    _, location = _resolve_model(None)
    encoder, _ = _encoder(location, None, None)
    encode = encoder.encode_query if query else encoder.encode_document
    vectors = encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    return np.ascontiguousarray(vectors, dtype=np.float32)


def real_data(corpora: Sequence[Path], cache_dir: Path) -> tuple[np.ndarray, np.ndarray, str]:
    """Document and question embeddings of the corpus files plus the pooled task paragraphs."""
    from raggym_env.corpora import load_corpus
    from raggym_env.retrieval.dense import passage_text
    from raggym_env.tasks import load_task

    seen: set[str] = set()
    texts: list[str] = []
    sources = [load_corpus(path) for path in corpora]
    tasks = [load_task(name, path=path) for name, path in DEFAULT_TASKS.items() if path.exists()]
    sources += [task.corpus for task in tasks]
    for corpus in sources:
        for doc in corpus:
            if doc.id not in seen:
                seen.add(doc.id)
                texts.append(passage_text(doc.title, doc.text))
    questions = [ex.question for task in tasks for ex in task.examples]
    if not texts or not questions:
        raise SystemExit(f"no passages or questions found (looked in {SHARED})")
    key = hashlib.sha256("\n".join(texts + questions).encode()).hexdigest()[:16]
    path = cache_dir / f"ann_recall_{key}.npz"
    if path.exists():
        cached = np.load(path)
        return cached["docs"], cached["queries"], f"cached {path}"
    cache_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    docs, queries = _encode(texts, query=False), _encode(questions, query=True)
    np.savez(path, docs=docs, queries=queries)
    return docs, queries, f"encoded in {time.perf_counter() - start:.0f} s, cached at {path}"


def synthetic_data(n: int, dim: int, n_queries: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Unit vectors in ``sqrt(n)`` Gaussian clusters of varied spread; queries alike."""
    rng = np.random.default_rng(seed)
    n_centres = max(1, int(math.sqrt(n)))
    centres = rng.standard_normal((n_centres, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    spread = rng.uniform(0.5, 1.5, n_centres).astype(np.float32) / math.sqrt(dim)

    def draw(m: int) -> np.ndarray:
        which = rng.integers(0, n_centres, m)
        noise = rng.standard_normal((m, dim)).astype(np.float32) * spread[which, None]
        points = centres[which] + noise * 1.2
        return points / np.linalg.norm(points, axis=1, keepdims=True)

    return draw(n), draw(n_queries)


FAMILIES = ("raggym", "hnsw", "ivfflat", "ivfsq8", "ivfpq")
"""``raggym``: the indexes DenseConfig builds by default, searched as DenseRetriever does."""


def _grid(quick: bool, n: int, dim: int) -> Iterator[tuple[str, str, dict[str, int]]]:
    """(family, FAISS factory string, search params) for every plain FAISS setting."""
    from raggym_env.retrieval.memory import auto_ivf_nlist, auto_pq_m

    for m in (16, 32) if quick else (16, 32, 48):
        yield "hnsw", f"HNSW{m}", {"efSearch": 0}
    nlists = sorted({auto_ivf_nlist(n), max(1, min(n // 39, round(math.sqrt(n))))})
    pq_ms = sorted({auto_pq_m(dim), dim // 4, dim // 2})
    for nlist in nlists:
        yield "ivfflat", f"IVF{nlist},Flat", {"nprobe": 0}
        yield "ivfsq8", f"IVF{nlist},SQ8", {"nprobe": 0}
        for pq_m in pq_ms:
            if dim % pq_m == 0:
                yield "ivfpq", f"IVF{nlist},PQ{pq_m}x8", {"nprobe": 0}


EF_SEARCH = (16, 32, 64, 128, 256)
NPROBE = (8, 16, 32, 64, 128)
REFINE = (1, 2, 4, 8)


def _recall(truth: np.ndarray, found: np.ndarray) -> float:
    """The share of the exact top k that ``found`` holds too."""
    pairs = zip(truth.tolist(), found.tolist(), strict=True)
    return sum(len(set(a) & set(b)) for a, b in pairs) / truth.size


def measure_defaults(
    docs: np.ndarray, queries: np.ndarray, truth: np.ndarray, k: int, threads: int
) -> Iterator[dict[str, object]]:
    """Rows for raggym's default HNSW and IVF-PQ (``DenseConfig``).

    Built by dense retrieval's own code from float16 embeddings and searched through
    ``refined_search`` at each search breadth and re-rank factor.
    """
    import faiss

    from raggym_env.retrieval.dense import DenseConfig, _faiss_index, refined_search

    n, dim = docs.shape
    stored = docs.astype(np.float16)  # what DenseRetriever keeps (memory-mapped) on disk
    for index_type in ("hnsw", "ivfpq"):
        params = DenseConfig(index_type).resolved(n, dim)  # type: ignore[arg-type]
        faiss.omp_set_num_threads(threads)
        start = time.perf_counter()
        index = _faiss_index(stored, params)
        build = time.perf_counter() - start
        faiss.omp_set_num_threads(1)
        if index_type == "hnsw":
            name = f"raggym hnsw (HNSW{params.hnsw_m}, efC {params.hnsw_ef_construction})"
            settings = [(f"efSearch={ef}", ef, 1) for ef in EF_SEARCH]
        else:
            name = f"raggym ivfpq (IVF{params.ivf_nlist},PQ{params.pq_m}x{params.pq_nbits})"
            settings = [
                (f"nprobe={p}, refine={r}", p, r)
                for p in NPROBE
                if p <= (params.ivf_nlist or 1)
                for r in REFINE
            ]
        for label, breadth, refine in settings:
            if index_type == "hnsw":
                index.hnsw.efSearch = max(breadth, k)
            else:
                index.nprobe = breadth
            start = time.perf_counter()
            _, found = refined_search(index, queries, k, n, stored, refine)
            qps = len(queries) / (time.perf_counter() - start)
            is_default = breadth == (
                params.hnsw_ef_search if index_type == "hnsw" else params.nprobe
            ) and refine == (params.refine_factor if index_type == "ivfpq" else 1)
            yield {
                "index": name,
                "breadth": label + (" **(default)**" if is_default else ""),
                "recall": _recall(truth, found),
                "qps": qps,
                "build": build,
            }


def measure(
    docs: np.ndarray,
    queries: np.ndarray,
    k: int,
    quick: bool,
    emit: Callable[[dict[str, object]], None] = lambda row: None,
    threads: int = 1,
    families: Sequence[str] = FAMILIES,
) -> list[dict[str, object]]:
    """One row per (index setting, search breadth): recall@k against exact search, q/s."""
    import faiss

    faiss.omp_set_num_threads(1)
    n, dim = docs.shape
    exact = faiss.IndexFlatIP(dim)
    exact.add(docs)
    start = time.perf_counter()
    _, truth = exact.search(queries, k)
    flat_qps = len(queries) / (time.perf_counter() - start)
    rows: list[dict[str, object]] = [
        {"index": "Flat (exact)", "breadth": "-", "recall": 1.0, "qps": flat_qps, "build": 0.0}
    ]
    emit(rows[0])
    if "raggym" in families:
        for row in measure_defaults(docs, queries, truth, k, threads):
            rows.append(row)
            emit(row)
    rng = np.random.default_rng(0)
    faiss.omp_set_num_threads(threads)
    for family, spec, _ in _grid(quick, n, dim):
        if family not in families:
            continue
        start = time.perf_counter()
        index: Any = faiss.index_factory(dim, spec, faiss.METRIC_INNER_PRODUCT)
        if family == "hnsw":
            index.hnsw.efConstruction = 40
        if family != "hnsw":  # the training sample dense retrieval takes
            size = min(n, max(64 * index.nlist, 64 * 256, 10_000), 200_000)
            index.train(docs[np.sort(rng.choice(n, size=size, replace=False))])
        index.add(docs)
        build = time.perf_counter() - start
        faiss.omp_set_num_threads(1)
        for breadth in EF_SEARCH if family == "hnsw" else NPROBE:
            if family == "hnsw":
                index.hnsw.efSearch = max(breadth, k)
            else:
                if breadth > index.nlist:
                    continue
                index.nprobe = breadth
            start = time.perf_counter()
            _, found = index.search(queries, k)
            qps = len(queries) / (time.perf_counter() - start)
            name = "efSearch" if family == "hnsw" else "nprobe"
            rows.append(
                {
                    "index": spec,
                    "breadth": f"{name}={breadth}",
                    "recall": _recall(truth, found),
                    "qps": qps,
                    "build": build,
                }
            )
            emit(rows[-1])
        faiss.omp_set_num_threads(threads)
    return rows


def print_header(title: str, k: int) -> None:
    """The heading and column names of one markdown table."""
    print(f"\n### {title}\n")
    print(
        f"| index (FAISS factory) | search breadth | recall@{k} | queries/s (1 thread) | build s |"
    )
    print("|---|---|---:|---:|---:|", flush=True)


def print_row(row: dict[str, object]) -> None:
    """One table row, printed as soon as it is measured."""
    recall, qps, build = (float(row[key]) for key in ("recall", "qps", "build"))  # type: ignore[arg-type]
    print(
        f"| {row['index']} | {row['breadth']} | {recall:.3f} | {qps:,.0f} | {build:.1f} |",
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Measure the real corpus, then the synthetic vectors; print markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--corpus",
        type=Path,
        nargs="*",
        default=list(DEFAULT_CORPORA),
        help="passage corpus files (load_corpus); default the shared wiki file",
    )
    parser.add_argument(
        "--synthetic",
        type=int,
        default=100_000,
        help="synthetic clustered vectors (0 skips them); default 100000",
    )
    parser.add_argument("--k", type=int, default=10, help="recall@k; default 10")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path("/tmp/raggym-ann-recall"),
        help="where corpus embeddings are cached",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="FAISS threads for index builds; default 1"
    )
    parser.add_argument("--quick", action="store_true", help="smaller grid, 20k synthetic")
    parser.add_argument(
        "--families",
        nargs="+",
        choices=FAMILIES,
        default=list(FAMILIES),
        help="index families to measure (raggym = its default HNSW and re-ranked IVF-PQ); "
        "default all",
    )
    parser.add_argument(
        "--no-real", action="store_true", help="skip the real corpus (synthetic only)"
    )
    parser.add_argument(
        "--dim", type=int, default=384, help="synthetic dimension with --no-real; default 384"
    )
    args = parser.parse_args(argv)  # fmt: skip

    print("# Approximate-index recall against exact search\n")
    dim = args.dim
    if not args.no_real:
        docs, queries, how = real_data([p for p in args.corpus if p.exists()], args.cache_dir)
        dim = docs.shape[1]
        print(f"Real: {len(docs):,} passages x {dim} ({how}), {len(queries)} questions.")
        print_header(f"Real passages ({len(docs):,}), benchmark questions", args.k)
        measure(docs, queries, args.k, args.quick, print_row, args.threads, args.families)
    n = 20_000 if args.quick else args.synthetic
    if n:
        sdocs, squeries = synthetic_data(n, dim, 1000)
        print_header(f"Synthetic clustered ({n:,} x {dim} vectors, 1,000 queries)", args.k)
        measure(sdocs, squeries, args.k, args.quick, print_row, args.threads, args.families)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
