"""Benchmark raggym's BM25Retriever against rank_bm25's BM25Okapi on one CPU core.

Usage::

    python perf/bm25_speed.py [--docs 200000] [--big-docs 1000000] [--queries 1000]
    python perf/bm25_speed.py --quick      # 20k docs, 100 queries, ~20 s

A synthetic corpus (Zipf-distributed vocabulary of pseudo-words, fixed seed) is generated
identically in every worker process. Each backend and phase runs in its own subprocess
pinned to one core with one BLAS/OpenMP thread, so peak RSS (``ru_maxrss``) is per phase:

- build: analyse + index the corpus, then save it (ours: index directory; rank_bm25: pickle).
- serve: reload the index (ours: memory-mapped, corpus passed in; rank_bm25: unpickle) and
  answer the queries top-10 (ours: one batched call; rank_bm25: one ``get_scores`` each).

rank_bm25 gets the same analysis with the same code (raggym's Analyzer: lowercase, English
stopwords, Snowball stemming), so both index identical terms and the build comparison
isolates index construction; its tokenisation time is also reported on its own.
"""

from __future__ import annotations

import argparse
import json
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
    from raggym_env.corpora import Corpus

SINGLE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
    "DISABLE_TQDM": "1",
}
VOCAB_SIZE = 50_000
ZIPF_EXPONENT = 1.0
DOC_WORDS = (40, 120)
TITLE_WORDS = (1, 3)
QUERY_WORDS = (3, 8)
TOP_K = 10
RANK_BM25_BUDGET_S = 180.0
RANK_BM25_SUBSET = 100
COMPARE_QUERIES = 100
SINGLE_CALL_QUERIES = 200


# -- synthetic data ------------------------------------------------------------------------


def _pseudo_words(seed: int) -> list[str]:
    """``VOCAB_SIZE`` distinct lowercase pseudo-words of 3-10 letters, rank order = Zipf rank."""
    import numpy as np

    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words: dict[str, None] = {}
    while len(words) < VOCAB_SIZE:
        length = int(rng.integers(3, 11))
        words.setdefault("".join(rng.choice(letters, length)), None)
    return list(words)


def _zipf_texts(n: int, length_range: tuple[int, int], seed: int) -> list[str]:
    """``n`` texts of ``length_range`` words drawn from the Zipf vocabulary (deterministic)."""
    import numpy as np

    vocab = _pseudo_words(0)
    weights = 1.0 / np.arange(1, VOCAB_SIZE + 1) ** ZIPF_EXPONENT
    cdf = np.cumsum(weights) / weights.sum()
    rng = np.random.default_rng(seed)
    lengths = rng.integers(length_range[0], length_range[1] + 1, n)
    texts: list[str] = []
    chunk = 20_000
    for start in range(0, n, chunk):
        lens = lengths[start : start + chunk]
        ranks = np.searchsorted(cdf, rng.random(int(lens.sum()))).tolist()
        pos = 0
        for length in lens.tolist():
            texts.append(" ".join([vocab[r] for r in ranks[pos : pos + length]]))
            pos += length
    return texts


def make_corpus(n_docs: int, seed: int) -> Corpus:
    """The benchmark corpus: ids ``d0..``, 1-3 word titles, 40-120 word texts."""
    from raggym_env.corpora import Corpus
    from raggym_env.types import Document

    titles = _zipf_texts(n_docs, TITLE_WORDS, seed + 1)
    texts = _zipf_texts(n_docs, DOC_WORDS, seed + 2)
    return Corpus(
        (
            Document(f"d{i}", title, text)
            for i, (title, text) in enumerate(zip(titles, texts, strict=True))
        ),
        name=f"zipf-{n_docs}",
    )


def make_queries(n_queries: int, seed: int) -> list[str]:
    """Queries of 3-8 words from the same Zipf distribution."""
    return _zipf_texts(n_queries, QUERY_WORDS, seed + 3)


# -- measurement helpers -------------------------------------------------------------------


def _pin_to_one_core() -> str:
    """Pin this process to its first allowed CPU; return a description."""
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    return "not pinned (sched_setaffinity unavailable)"


# -- workers (each runs in its own process) -----------------------------------------------


def worker_ours_build(args: argparse.Namespace) -> dict[str, Any]:
    """Build our index over the corpus and save it to ``args.path``."""
    from raggym_env.retrieval.bm25 import BM25Retriever

    start = time.perf_counter()
    corpus = make_corpus(args.docs, args.seed)
    generated = time.perf_counter() - start
    baseline = current_rss_mib()
    start = time.perf_counter()
    retriever = BM25Retriever.build(
        corpus, n_threads=1, n_workers=1
    )  # one core: analyse in-process
    built = time.perf_counter() - start
    start = time.perf_counter()
    retriever.save(args.path)
    saved = time.perf_counter() - start
    corpus_file_mib = dir_size_mib(Path(args.path) / "corpus.jsonl")
    return {
        "generate_s": generated,
        "build_s": built,
        "save_s": saved,
        "vocabulary": retriever.vocabulary_size,
        "index_mib": dir_size_mib(Path(args.path)) - corpus_file_mib,
        "corpus_file_mib": corpus_file_mib,
        "rss_after_corpus_mib": baseline,
        "peak_rss_mib": peak_rss_mib(),
    }


def worker_ours_serve(args: argparse.Namespace) -> dict[str, Any]:
    """Reload our index (memory-mapped) and time top-10 search."""
    from raggym_env.retrieval.bm25 import BM25Retriever

    corpus = make_corpus(args.docs, args.seed)
    queries = make_queries(args.queries, args.seed)
    baseline = current_rss_mib()
    start = time.perf_counter()
    retriever = BM25Retriever.load(args.path, corpus=corpus, mmap=True, n_threads=1)
    loaded = time.perf_counter() - start
    start = time.perf_counter()
    results = retriever.search(queries, TOP_K)
    searched = time.perf_counter() - start
    singles = queries[:SINGLE_CALL_QUERIES]
    start = time.perf_counter()
    for query in singles:
        retriever.search([query], TOP_K)
    single_s = time.perf_counter() - start
    peak = peak_rss_mib()
    del retriever
    start = time.perf_counter()
    BM25Retriever.load(args.path, mmap=True)  # corpus read back from corpus.jsonl
    full_load = time.perf_counter() - start
    return {
        "load_s": loaded,
        "load_with_corpus_file_s": full_load,
        "queries": len(queries),
        "search_s": searched,
        "qps": len(queries) / searched,
        "single_call_qps": len(singles) / single_s,
        "empty_results": sum(not hits for hits in results),
        "top_ids": [[hit.id for hit in hits] for hits in results[:COMPARE_QUERIES]],
        "rss_after_corpus_mib": baseline,
        "peak_rss_mib": peak,
    }


def worker_rank_build(args: argparse.Namespace) -> dict[str, Any]:
    """Build rank_bm25's BM25Okapi over the same analysed terms and pickle it."""
    import pickle

    from rank_bm25 import BM25Okapi

    from raggym_env.retrieval.tokenize import Analyzer

    start = time.perf_counter()
    corpus = make_corpus(args.docs, args.seed)
    generated = time.perf_counter() - start
    baseline = current_rss_mib()
    analyzer = Analyzer(stemmer="english", stopwords="en")
    start = time.perf_counter()
    # The same analysis code as ours (cached per distinct word), decoded back to strings.
    token_ids, vocab = analyzer.fit(f"{doc.title}\n{doc.text}" for doc in corpus)
    terms = [""] * len(vocab)
    for term, term_id in vocab.items():
        terms[term_id] = term
    tokens = [[terms[i] for i in ids] for ids in token_ids]
    del token_ids
    tokenized = time.perf_counter() - start
    model = BM25Okapi(tokens, k1=1.5, b=0.75)
    built = time.perf_counter() - start
    del tokens
    start = time.perf_counter()
    with open(args.path, "wb") as f:
        pickle.dump(model, f, protocol=pickle.HIGHEST_PROTOCOL)
    saved = time.perf_counter() - start
    return {
        "generate_s": generated,
        "build_s": built,
        "tokenize_s": tokenized,
        "save_s": saved,
        "vocabulary": len(model.idf),
        "index_mib": dir_size_mib(Path(args.path)),
        "rss_after_corpus_mib": baseline,
        "peak_rss_mib": peak_rss_mib(),
    }


def worker_rank_serve(args: argparse.Namespace) -> dict[str, Any]:
    """Unpickle BM25Okapi and time top-10 search, on a subset if all would take too long."""
    import pickle

    import numpy as np

    from raggym_env.retrieval.tokenize import Analyzer

    corpus = make_corpus(args.docs, args.seed)
    queries = make_queries(args.queries, args.seed)
    analyzer = Analyzer(stemmer="english", stopwords="en")
    baseline = current_rss_mib()
    start = time.perf_counter()
    with open(args.path, "rb") as f:
        model = pickle.load(f)
    loaded = time.perf_counter() - start

    def top_ids(query: str) -> list[str]:
        scores = model.get_scores(analyzer.terms(query))
        k = min(TOP_K, len(scores))
        best = np.argpartition(-scores, k - 1)[:k]
        best = best[np.lexsort((best, -scores[best]))]
        return [corpus[int(i)].id for i in best if scores[i] > 0]

    probe = min(10, len(queries))
    start = time.perf_counter()
    answers = [top_ids(q) for q in queries[:probe]]
    probe_s = time.perf_counter() - start
    projected = probe_s / probe * len(queries)
    timed = len(queries) if projected <= args.rank_budget else min(RANK_BM25_SUBSET, len(queries))
    start = time.perf_counter()
    answers += [top_ids(q) for q in queries[probe:timed]]
    searched = probe_s + time.perf_counter() - start
    return {
        "load_s": loaded,
        "queries": timed,
        "subset": timed < len(queries),
        "projected_all_s": projected,
        "search_s": searched,
        "qps": timed / searched,
        "top_ids": answers[:COMPARE_QUERIES],
        "rss_after_corpus_mib": baseline,
        "peak_rss_mib": peak_rss_mib(),
    }


WORKERS = {
    "ours-build": worker_ours_build,
    "ours-serve": worker_ours_serve,
    "rank-build": worker_rank_build,
    "rank-serve": worker_rank_serve,
}


# -- driver --------------------------------------------------------------------------------


def _run_worker(name: str, docs: int, path: Path, args: argparse.Namespace) -> dict[str, Any]:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        name,
        "--docs",
        str(docs),
        "--queries",
        str(args.queries),
        "--seed",
        str(args.seed),
        "--path",
        str(path),
        "--rank-budget",
        str(args.rank_budget),
    ]
    print(f"  running {name} on {docs:,} documents ...", file=sys.stderr, flush=True)
    env = SINGLE_THREAD_ENV
    result = run_json_worker(name, command, env)
    return result


def _machine() -> str:
    model = cpu_model()
    import numpy

    return (
        f"{model}, {os.cpu_count()} logical CPUs (each worker pinned to one core, "
        f"1 BLAS/OpenMP thread); Python {platform.python_version()}, numpy "
        f"{numpy.__version__}, {platform.system()} "
        f"{platform.release()}"
    )


def _ratio(ours: float, theirs: float, higher_is_better: bool) -> str:
    ratio = ours / theirs
    if higher_is_better:
        verdict = f"{ratio:.1f}x faster" if ratio >= 1 else f"{1 / ratio:.1f}x slower"
    else:
        verdict = f"{1 / ratio:.1f}x faster" if ratio <= 1 else f"{ratio:.1f}x slower"
    return f"{ratio:.3g} ({verdict})"


def _mem_ratio(ours: float, theirs: float) -> str:
    ratio = ours / theirs
    return (
        f"{ratio:.3g} ({1 / ratio:.1f}x less)" if ratio <= 1 else f"{ratio:.3g} ({ratio:.1f}x more)"
    )


def _overlap(ours: list[list[str]], theirs: list[list[str]]) -> float:
    shared = [
        len(set(a) & set(b)) / max(len(a), len(b))
        for a, b in zip(ours, theirs, strict=False)
        if a or b
    ]
    return sum(shared) / len(shared) if shared else float("nan")


def compare(args: argparse.Namespace, workdir: Path) -> str:
    """Run the side-by-side comparison and return the markdown report."""
    ob = _run_worker("ours-build", args.docs, workdir / "ours", args)
    os_ = _run_worker("ours-serve", args.docs, workdir / "ours", args)
    rb = _run_worker("rank-build", args.docs, workdir / "rank.pkl", args)
    rs = _run_worker("rank-serve", args.docs, workdir / "rank.pkl", args)
    subset_note = (
        f" (rank_bm25 timed on the first {rs['queries']} queries: all {args.queries} were "
        f"projected to take {rs['projected_all_s']:.0f} s)"
        if rs["subset"]
        else ""
    )
    rows = [
        ("index build (s)", ob["build_s"], rb["build_s"], False),
        ("save (s)", ob["save_s"], rb["save_s"], False),
        ("reload (s)", os_["load_s"], rs["load_s"], False),
        (f"queries/s, top-{TOP_K}", os_["qps"], rs["qps"], True),
    ]
    lines = [
        f"### {args.docs:,} documents, {args.queries:,} queries{subset_note}",
        "",
        "| | raggym BM25Retriever | rank_bm25 BM25Okapi | ratio ours/rank_bm25 |",
        "|---|---:|---:|---|",
    ]
    for label, ours, theirs, higher in rows:
        lines.append(f"| {label} | {fmt(ours)} | {fmt(theirs)} | {_ratio(ours, theirs, higher)} |")
    for label, key_build in (("peak RSS, build (MiB)", True), ("peak RSS, serve (MiB)", False)):
        ours = (ob if key_build else os_)["peak_rss_mib"]
        theirs = (rb if key_build else rs)["peak_rss_mib"]
        lines.append(
            f"| {label} | {fmt(ours, 0)} | {fmt(theirs, 0)} | {_mem_ratio(ours, theirs)} |"
        )
    lines += [
        f"| RSS with corpus only, before indexing (MiB) | {fmt(ob['rss_after_corpus_mib'], 0)} "
        f"| {fmt(rb['rss_after_corpus_mib'], 0)} | |",
        f"| index on disk, without the corpus (MiB) | {fmt(ob['index_mib'], 0)} "
        f"| {fmt(rb['index_mib'], 0)} | |",
        "",
        "- ours: build = analysis + sharded indexing (one process here); save also writes "
        f"the corpus (corpus.jsonl, {ob['corpus_file_mib']:.0f} MiB), the pickle does not; "
        f"reload = `BM25Retriever.load(dir, "
        f"corpus=corpus, mmap=True)`; search = one batched `search(queries, {TOP_K})` call. "
        f"One query per call: {os_['single_call_qps']:,.0f} q/s. Reload reading the corpus "
        f"back from corpus.jsonl: "
        f"{os_['load_with_corpus_file_s']:.2f} s.",
        f"- rank_bm25: build includes {rb['tokenize_s']:.2f} s of tokenisation with the same "
        f"analyzer; save/reload = pickle dump/load; search = `get_scores` + argpartition per "
        f"query.",
        f"- top-{TOP_K} agreement on the first {COMPARE_QUERIES} queries (shared ids / "
        f"list length; the two use different idf formulas): "
        f"{_overlap(os_['top_ids'], rs['top_ids']):.2f}. Vocabulary: ours "
        f"{ob['vocabulary']:,} terms, rank_bm25 {rb['vocabulary']:,}.",
        f"- corpus generation: {ob['generate_s']:.1f} s (not counted).",
    ]
    return "\n".join(lines)


def scale(args: argparse.Namespace, workdir: Path) -> str:
    """Run ours alone on the big corpus and return the markdown report."""
    ob = _run_worker("ours-build", args.big_docs, workdir / "ours-big", args)
    os_ = _run_worker("ours-serve", args.big_docs, workdir / "ours-big", args)
    return "\n".join(
        [
            f"### raggym BM25Retriever alone, {args.big_docs:,} documents, "
            f"{args.queries:,} queries",
            "",
            "| build (s) | save (s) | reload, mmap (s) | reload + corpus.jsonl (s) | queries/s "
            "(batched) | queries/s (1 per call) | peak RSS build (MiB) | peak RSS serve (MiB) "
            "| index on disk (MiB) |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| {fmt(ob['build_s'])} | {fmt(ob['save_s'])} | {fmt(os_['load_s'])} | "
            f"{fmt(os_['load_with_corpus_file_s'])} | {fmt(os_['qps'], 0)} | "
            f"{fmt(os_['single_call_qps'], 0)} | {fmt(ob['peak_rss_mib'], 0)} | "
            f"{fmt(os_['peak_rss_mib'], 0)} | {fmt(ob['index_mib'], 0)} |",
            "",
            f"- index on disk excludes corpus.jsonl ({ob['corpus_file_mib']:.0f} MiB). RSS with "
            f"the corpus only: {fmt(ob['rss_after_corpus_mib'], 0)} MiB; vocabulary "
            f"{ob['vocabulary']:,} terms; corpus generation {ob['generate_s']:.1f} s.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, then run either one worker or the whole benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--docs", type=int, default=200_000, help="corpus size for the comparison")
    parser.add_argument(
        "--big-docs", type=int, default=1_000_000, help="corpus size for ours alone (0: skip)"
    )
    parser.add_argument("--queries", type=int, default=1_000, help="number of top-10 queries")
    parser.add_argument("--quick", action="store_true", help="20k docs, 50k big, 100 queries")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, help="where indexes go (default: a temp dir)")
    parser.add_argument(
        "--rank-budget",
        type=float,
        default=RANK_BM25_BUDGET_S,
        help="seconds rank_bm25 may spend on all queries before a subset is timed",
    )
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        pinned = _pin_to_one_core()
        result = WORKERS[args.worker](args)
        result["affinity"] = pinned
        print(json.dumps(result))
        return 0

    if args.quick:
        args.docs, args.big_docs, args.queries = 20_000, 50_000, 100
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        sections = [compare(args, Path(tmp))]
        if args.big_docs > 0:
            sections.append(scale(args, Path(tmp)))
    report = "\n\n".join(
        [
            f"## BM25 speed (`{' '.join(['python', 'perf/bm25_speed.py', *sys.argv[1:]])}`)",
            f"Machine: {_machine()}.",
            f"Corpus: Zipf(s={ZIPF_EXPONENT}) over {VOCAB_SIZE:,} pseudo-words, titles of "
            f"{TITLE_WORDS[0]}-{TITLE_WORDS[1]} and texts of {DOC_WORDS[0]}-{DOC_WORDS[1]} words, "
            f"queries of {QUERY_WORDS[0]}-{QUERY_WORDS[1]} words, seed {args.seed}.",
            *sections,
            f"Total wall time {time.perf_counter() - started:.0f} s.",
        ]
    )
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
