"""Load-test the retrieval server on loopback and compare it with in-process BM25.

Usage::

    python perf/server_load.py [--clients 32] [--requests 20] [--k 5]

The bundled HotpotQA questions (repeated to fill the load) are searched against the
bundled HotpotQA corpus with BM25: first in-process (one query per call, then one batched
call), then through ``raggym serve-retriever``'s app on an ephemeral loopback port with
``clients`` threads each sending ``requests`` one-query requests through one shared
:class:`~raggym_env.retrieval.remote.RemoteRetriever`. Prints latency percentiles, errors
and throughput side by side.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field

__all__ = ["LoadReport", "main", "run_load"]


@dataclass
class LoadReport:
    """Outcome of :func:`run_load`: per-request latencies (s), errors and wall time."""

    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    expected: int = 0

    def percentile(self, q: float) -> float:
        """Latency percentile ``q`` (0-100) in milliseconds (nan without samples)."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
        return ordered[index] * 1000

    @property
    def throughput(self) -> float:
        """Answered requests per second of wall time."""
        return len(self.latencies) / self.wall_s if self.wall_s > 0 else 0.0

    def summary(self) -> str:
        """One line: answered/expected, errors, p50/p95/p99 and throughput."""
        return (
            f"{len(self.latencies)}/{self.expected} answered, {len(self.errors)} errors, "
            f"p50 {self.percentile(50):.1f} ms, p95 {self.percentile(95):.1f} ms, "
            f"p99 {self.percentile(99):.1f} ms, {self.throughput:.0f} req/s "
            f"in {self.wall_s:.2f} s"
        )


def run_load(
    url: str,
    queries: list[str],
    *,
    clients: int = 32,
    requests_per_client: int = 20,
    k: int = 5,
    timeout_s: float = 60.0,
) -> LoadReport:
    """Send ``clients x requests_per_client`` one-query searches concurrently to ``url``.

    Client ``c`` sends queries ``c * requests_per_client + i`` (mod ``len(queries)``).
    Failures are recorded, not raised (no retries, so none are hidden); requests not done
    within ``timeout_s`` count as errors.
    """
    from raggym_env.retrieval.remote import RemoteRetriever

    report = LoadReport(expected=clients * requests_per_client)
    lock = threading.Lock()
    stop = threading.Event()

    def client(c: int, remote: RemoteRetriever) -> None:
        for i in range(requests_per_client):
            if stop.is_set():
                return
            query = queries[(c * requests_per_client + i) % len(queries)]
            start = time.perf_counter()
            try:
                result = remote.search([query], k)
                if len(result) != 1:
                    raise RuntimeError(f"expected 1 result list, got {len(result)}")
            except (RuntimeError, ValueError) as exc:  # RetrievalError is a RuntimeError
                with lock:
                    report.errors.append(f"{type(exc).__name__}: {exc}")
                continue
            with lock:
                report.latencies.append(time.perf_counter() - start)

    with RemoteRetriever(url, max_retries=0, timeout_s=timeout_s, pool_size=clients) as remote:
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=clients) as pool:
            futures = [pool.submit(client, c, remote) for c in range(clients)]
            _, not_done = wait(futures, timeout=timeout_s)
            if not_done:
                stop.set()
                report.errors.append(f"{len(not_done)} clients unfinished after {timeout_s} s")
        report.wall_s = time.perf_counter() - start
    return report


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    from raggym_env.retrieval.bm25 import load_or_build
    from raggym_env.retrieval.server import BackgroundServer, create_app
    from raggym_env.tasks import load_task

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=20, help="requests per client")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--max-batch", type=int, default=64)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    args = parser.parse_args(argv)

    task = load_task("hotpotqa")
    retriever = load_or_build(task.corpus)
    total = args.clients * args.requests
    base = [ex.question for ex in task.examples]
    queries = (base * (total // len(base) + 1))[:total]

    start = time.perf_counter()
    for query in queries:
        retriever.search([query], args.k)
    single_s = time.perf_counter() - start
    start = time.perf_counter()
    retriever.search(queries, args.k)
    batched_s = time.perf_counter() - start

    app = create_app(retriever, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms)
    with BackgroundServer(app) as server:
        report = run_load(
            server.url, queries, clients=args.clients, requests_per_client=args.requests, k=args.k
        )
    print(f"corpus: {len(task.corpus):,} documents (bundled HotpotQA), {total} queries, k={args.k}")
    print(f"server ({args.clients} clients x {args.requests} requests): {report.summary()}")
    if report.errors:
        print("first errors:", *report.errors[:5], sep="\n  ")
    print(f"{'mode':<34}{'queries/s':>12}")
    print(f"{'in-process, one query per call':<34}{total / single_s:>12.0f}")
    print(f"{'in-process, one batched call':<34}{total / batched_s:>12.0f}")
    print(f"{'server, concurrent one-query reqs':<34}{report.throughput:>12.0f}")
    if report.latencies:
        print(f"mean latency {statistics.fmean(report.latencies) * 1000:.1f} ms")
    return 1 if report.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
