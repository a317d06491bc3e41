"""Measure the disk-backed corpus store (raggym_env.corpora.DiskCorpus) at millions of passages.

Usage::

    python perf/corpus_store.py [--sizes 1000000 2000000 5000000] [--dir DIR] [--keep]
    python perf/corpus_store.py --quick      # 20k and 50k passages, a few seconds

For each size a synthetic Wikipedia-like corpus (passages of ~100 pseudo-words drawn
Zipf-like from 50,000 words, eight passages per page title, ids ``wiki-<n>``, fixed seed)
is generated on the fly and streamed into a store by :func:`write_store`, then read back.
Every phase runs in its own subprocess, so peak memory belongs to that phase alone:

- write: wall time (generation included), peak RSS (``ru_maxrss``), size on disk;
- read: open time and the RSS it adds; ``get(id)`` per second over random ids and
  ``ids_for_title`` per second over random titles; then every passage streamed in order
  through ``titles_and_texts`` (what indexers use): passages/s and the RSS it adds.

Reads follow the write, so they hit a warm page cache. With ``--memory-baseline`` the
smallest size is also loaded as an in-memory ``Corpus`` for comparison. The last column
extrapolates linearly from the two largest sizes to 21M passages (the DPR Wikipedia split)
for what grows with the corpus (write time, peak RSS while writing: the hash tables are
laid out a sixteenth at a time; disk size); the rest does not depend on the size.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from measure import cpu_model, current_rss_mib, dir_size_mib, fmt, peak_rss_mib, run_json_worker

VOCAB = 50_000
WORDS = (80, 120)
PER_TITLE = 8
SEED = 13
TARGET = 21_000_000
CHUNK = 10_000


def _vocabulary(rng: random.Random) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choices(letters, k=rng.randint(3, 10))) for _ in range(VOCAB)]


def passages(count: int) -> Iterator[Any]:
    """The synthetic corpus, regenerated identically from the seed, one document at a time."""
    import numpy as np

    from raggym_env.types import Document

    vocab = np.array(_vocabulary(random.Random(SEED)), dtype=object)
    gen = np.random.default_rng(SEED)
    weights = 1.0 / np.arange(1, VOCAB + 1)
    weights /= weights.sum()
    for start in range(0, count, CHUNK):
        n = min(CHUNK, count - start)
        lengths = gen.integers(WORDS[0], WORDS[1] + 1, size=n)
        words = vocab[gen.choice(VOCAB, size=int(lengths.sum()), p=weights)]
        at = 0
        for i, length in enumerate(lengths.tolist()):
            row = start + i
            page = row // PER_TITLE
            yield Document(
                id=f"wiki-{row}",
                title=f"Page {page} {vocab[page % VOCAB]}",
                text=" ".join(words[at : at + length]),
            )
            at += length


def _title(row: int, vocab: list[str]) -> str:
    page = row // PER_TITLE
    return f"Page {page} {vocab[page % VOCAB]}"


# -- workers (each in its own process) ------------------------------------------------------


def write_worker(count: int, directory: str) -> dict[str, Any]:
    """Stream ``count`` passages into a store; time, peak RSS, disk size."""
    from raggym_env.corpora import write_store

    start = time.perf_counter()
    corpus = write_store(passages(count), directory, name=f"synthetic-{count}")
    seconds = time.perf_counter() - start
    assert len(corpus) == count
    return {
        "write_s": seconds,
        "write_peak_mib": peak_rss_mib(),
        "disk_mib": dir_size_mib(Path(directory)),
    }


def read_worker(count: int, directory: str) -> dict[str, Any]:
    """Open the store, look ids and titles up at random, stream every passage."""
    from raggym_env.corpora import DiskCorpus

    rng = random.Random(SEED + 1)
    vocab = _vocabulary(random.Random(SEED))
    lookups = [f"wiki-{rng.randrange(count)}" for _ in range(100_000)]
    titles = [_title(rng.randrange(count), vocab) for _ in range(20_000)]
    before = current_rss_mib() or 0.0
    start = time.perf_counter()
    corpus = DiskCorpus.open(directory)
    open_s = time.perf_counter() - start
    after_open = current_rss_mib() or 0.0

    start = time.perf_counter()
    for doc_id in lookups:
        corpus.get(doc_id)
    get_rate = len(lookups) / (time.perf_counter() - start)
    start = time.perf_counter()
    found = sum(len(corpus.ids_for_title(title)) for title in titles)
    title_rate = len(titles) / (time.perf_counter() - start)
    assert found >= len(titles)

    base = current_rss_mib() or 0.0
    highest = base
    words = 0
    start = time.perf_counter()
    for first in range(0, count, 4096):
        pairs = corpus.titles_and_texts(first, first + 4096)
        words += sum(text.count(" ") + 1 for _, text in pairs[:8])
        highest = max(highest, current_rss_mib() or 0.0)
    stream_s = time.perf_counter() - start
    return {
        "open_s": open_s,
        "open_rss_mib": after_open - before,
        "get_per_s": get_rate,
        "title_per_s": title_rate,
        "stream_per_s": count / stream_s,
        "stream_rss_mib": highest - base,
        "read_peak_mib": peak_rss_mib(),
    }


def memory_worker(count: int) -> dict[str, Any]:
    """RSS of the same passages held as an in-memory Corpus (the baseline)."""
    from raggym_env.corpora import Corpus

    before = current_rss_mib() or 0.0
    corpus = Corpus(passages(count), name="memory")
    return {"memory_rss_mib": (current_rss_mib() or 0.0) - before, "count": len(corpus)}


WORKERS = {"write": write_worker, "read": read_worker, "memory": memory_worker}


# -- driver ---------------------------------------------------------------------------------


def _run(phase: str, *args: str) -> dict[str, Any]:
    command = [sys.executable, __file__, "--worker", phase, *args]
    return run_json_worker(f"{phase} {' '.join(args)}", command, {})


def _extrapolate(sizes: list[int], rows: dict[int, dict[str, Any]], key: str) -> float | None:
    """Linear in the passage count through the two largest sizes (or proportional)."""
    if len(sizes) == 1:
        return float(rows[sizes[0]][key]) * TARGET / sizes[0]
    a, b = sizes[-2], sizes[-1]
    slope = (rows[b][key] - rows[a][key]) / (b - a)
    return float(rows[b][key] + slope * (TARGET - b))


def main(argv: list[str] | None = None) -> int:
    """Write and read stores at each size, then print one markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[1_000_000, 2_000_000, 5_000_000],
        help="passage counts to measure (default: 1M 2M 5M)",
    )  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="20k and 50k passages only")
    parser.add_argument("--dir", type=Path, help="where to write the stores (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the stores afterwards")
    parser.add_argument(
        "--memory-baseline", action="store_true",
        help="also load the smallest size as an in-memory Corpus and report its RSS",
    )  # fmt: skip
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        phase, *rest = args.worker
        count = int(rest[0])
        fn = WORKERS[phase]
        print(json.dumps(fn(count, *rest[1:])))  # type: ignore[operator]
        return 0

    sizes = sorted([20_000, 50_000] if args.quick else args.sizes)
    root = args.dir or Path(tempfile.mkdtemp(prefix="raggym-store-"))
    root.mkdir(parents=True, exist_ok=True)
    rows: dict[int, dict[str, Any]] = {}
    try:
        for count in sizes:
            directory = root / f"store-{count}"
            print(f"{count:,} passages -> {directory}", file=sys.stderr, flush=True)
            rows[count] = {**_run("write", str(count), str(directory))}
            rows[count].update(_run("read", str(count), str(directory)))
            if not args.keep:
                shutil.rmtree(directory, ignore_errors=True)
        baseline = _run("memory", str(sizes[0])) if args.memory_baseline else None
    finally:
        if not args.keep and args.dir is None:
            shutil.rmtree(root, ignore_errors=True)

    print(f"# Corpus store, synthetic ~100-word passages ({cpu_model()}, {os.cpu_count()} CPUs)\n")
    header = [f"{n:,}" for n in sizes] + [f"{TARGET:,} (extrapolated)"]
    print("| | " + " | ".join(header) + " |")
    print("|---" * (len(header) + 1) + "|")
    measures = [
        ("write time (s)", "write_s", True),
        ("peak RSS while writing (MiB)", "write_peak_mib", True),
        ("size on disk (MiB)", "disk_mib", True),
        ("open time (ms)", "open_s", False),
        ("RSS added by open (MiB)", "open_rss_mib", False),
        ("get(id) per second", "get_per_s", False),
        ("ids_for_title per second", "title_per_s", False),
        ("streamed passages per second", "stream_per_s", False),
        ("RSS added while streaming all (MiB)", "stream_rss_mib", False),
    ]
    for label, key, scales in measures:
        scale = 1000.0 if key == "open_s" else 1.0
        digits = 0 if key.endswith("per_s") else (2 if key == "open_s" else 1)
        cells = [fmt(rows[n][key] * scale, digits) for n in sizes]
        cells.append(fmt(_extrapolate(sizes, rows, key), digits) if scales else "~ same")
        print(f"| {label} | " + " | ".join(cells) + " |")
    if baseline is not None:
        print(
            f"\nIn-memory `Corpus` of the {sizes[0]:,} passages: "
            f"{fmt(baseline['memory_rss_mib'], 0)} MiB of RSS "
            f"(the store: {fmt(rows[sizes[0]]['disk_mib'], 0)} MiB on disk)."
        )
    print("\nReads ran right after the write (warm page cache). Write time includes generating.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
