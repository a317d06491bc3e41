"""RemoteRetriever over several real retrieval servers on loopback: spread, failover, checks."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("httpx")
pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("prometheus_client")

from raggym.testing import tiny_corpus
from raggym_env.corpora import Corpus
from raggym_env.retrieval.base import IndexMismatchError, RetrievalError
from raggym_env.retrieval.bm25 import BM25Retriever
from raggym_env.retrieval.factory import make_retriever
from raggym_env.retrieval.remote import RemoteRetriever, parse_urls
from raggym_env.retrieval.server import BackgroundServer, create_app, index_identity
from raggym_env.types import ScoredDocument

QUERIES = [
    "Scott Derrickson nationality",
    "Ed Wood director",
    "American film director",
    "horror films",
    "Doctor Strange",
    "Plan 9 from Outer Space",
]


class Counting:
    """Wraps a retriever: counts the queries it answers and can be slowed down."""

    def __init__(self, inner: BM25Retriever, delay_s: float = 0.0) -> None:
        self.inner = inner
        self.corpus = inner.corpus
        self.index_hash = inner.index_hash
        self.delay_s = delay_s
        self.queries = 0
        self.lock = threading.Lock()

    def search(self, queries: list[str], k: int) -> list[list[ScoredDocument]]:
        with self.lock:
            self.queries += len(queries)
        if self.delay_s:
            time.sleep(self.delay_s)
        return self.inner.search(queries, k)


@pytest.fixture(scope="module")
def bm25() -> BM25Retriever:
    return BM25Retriever.build(tiny_corpus())


def serve(retriever: object, port: int = 0) -> BackgroundServer:
    return BackgroundServer(create_app(retriever, max_wait_ms=1), port=port).start()  # type: ignore[arg-type]


@pytest.fixture
def pair(bm25: BM25Retriever) -> Iterator[tuple[list[Counting], list[BackgroundServer]]]:
    counters = [Counting(bm25, delay_s=0.002), Counting(bm25, delay_s=0.002)]
    servers = [serve(c) for c in counters]
    try:
        yield counters, servers
    finally:
        for server in servers:
            server.stop()


def as_tuples(results: list[list[ScoredDocument]]) -> list[list[tuple[str, float]]]:
    return [[(r.id, round(r.score, 5)) for r in row] for row in results]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_health_reports_an_index_id_equal_for_equal_indexes(bm25: BM25Retriever):
    again = BM25Retriever.build(tiny_corpus())
    other = BM25Retriever.build(Corpus(list(tiny_corpus())[:-1], name="smaller"))
    assert index_identity(bm25) == index_identity(again)
    assert index_identity(bm25) != index_identity(other)
    assert index_identity(object()) is None  # type: ignore[arg-type]


def test_parse_urls_accepts_lists_and_comma_separated_strings():
    assert parse_urls("http://a:1/, http://b:2") == ("http://a:1", "http://b:2")
    assert parse_urls(["http://a:1"]) == ("http://a:1",)
    with pytest.raises(ValueError, match="twice"):
        parse_urls(["http://a:1", "http://a:1/"])
    with pytest.raises(ValueError, match="http"):
        parse_urls(["http://a:1", "ftp://b"])
    with pytest.raises(ValueError, match="at least one"):
        parse_urls(" , ")


def test_requests_spread_over_both_replicas(pair, bm25: BM25Retriever):
    counters, servers = pair
    with RemoteRetriever([s.url for s in servers]) as remote:
        remote.wait_until_ready(10)
        for query in QUERIES * 2:
            assert as_tuples(remote.search([query], 2)) == as_tuples(bm25.search([query], 2))
        stats = remote.replica_stats()
    assert [c.queries for c in counters] == [6, 6]
    assert [s["requests"] for s in stats] == [6, 6]
    assert all(s["up"] and s["index_id"] == index_identity(bm25) for s in stats)


def test_a_replica_stopped_mid_run_loses_no_request_and_is_used_again(pair, bm25):
    counters, servers = pair
    queries = [QUERIES[i % len(QUERIES)] for i in range(240)]
    expected = as_tuples(bm25.search(queries, 3))
    port = servers[0].port
    remote = RemoteRetriever(
        [s.url for s in servers], cooldown_s=0.3, timeout_s=2, max_retries=3, backoff_s=0.01
    )
    with remote:
        remote.wait_until_ready(10)
        done = threading.Event()
        answered = 0
        lock = threading.Lock()

        def one(query: str) -> list[list[ScoredDocument]]:
            nonlocal answered
            result = remote.search([query], 3)
            with lock:
                answered += 1
                if answered == 60:
                    done.set()
            return result

        with ThreadPoolExecutor(16) as pool:
            futures = [pool.submit(one, q) for q in queries]
            assert done.wait(20)
            servers[0].stop()  # while the rest of the batch is in flight
            results = [f.result() for f in futures]  # none may raise
        assert [as_tuples(r)[0] for r in results] == expected
        stopped_at = counters[0].queries
        assert 0 < stopped_at < len(queries)
        assert counters[0].queries + counters[1].queries >= len(queries)
        assert remote.replica_stats()[0]["failures"] >= 1  # the stop was noticed and routed around

        # the stopped replica is skipped, then comes back on the same port and is used again
        assert as_tuples(remote.search(QUERIES, 3)) == as_tuples(bm25.search(QUERIES, 3))
        revived = Counting(bm25)
        servers[0] = serve(revived, port=port)
        deadline = time.monotonic() + 10
        while revived.queries == 0 and time.monotonic() < deadline:
            answer = remote.search(QUERIES[:1], 2)
            assert as_tuples(answer) == as_tuples(bm25.search(QUERIES[:1], 2))
            time.sleep(0.05)
        assert revived.queries > 0
        assert remote.replica_stats()[0]["up"]


def test_every_replica_failing_names_them_without_credentials():
    urls = [f"http://user:hunter2@127.0.0.1:{free_port()}" for _ in range(2)]
    with RemoteRetriever(urls, max_retries=1, backoff_s=0.001, timeout_s=1) as remote:
        with pytest.raises(RetrievalError, match="every retrieval replica failed") as caught:
            remote.search(["x"], 1)
        assert "hunter2" not in repr(remote)
    message = str(caught.value)
    assert "hunter2" not in message
    for url in urls:
        assert url.replace("user:hunter2", "***") in message


def test_a_failing_replica_is_skipped_while_another_answers(pair, bm25):
    counters, servers = pair
    dead = f"http://127.0.0.1:{free_port()}"
    with RemoteRetriever([dead, servers[1].url], cooldown_s=60, backoff_s=0.001) as remote:
        for query in QUERIES:
            assert as_tuples(remote.search([query], 2)) == as_tuples(bm25.search([query], 2))
        stats = remote.replica_stats()
    assert not stats[0]["up"] and stats[0]["requests"] <= 1
    assert counters[1].queries == len(QUERIES)


def test_mixed_replicas_are_refused(bm25: BM25Retriever):
    other = BM25Retriever.build(Corpus(list(tiny_corpus())[:-1], name="smaller"))
    servers = [serve(bm25), serve(other)]
    try:
        urls = [s.url for s in servers]
        with RemoteRetriever(urls) as remote, pytest.raises(IndexMismatchError, match="index"):
            remote.wait_until_ready(10)
        with (
            RemoteRetriever(urls) as remote,
            pytest.raises(IndexMismatchError, match=servers[1].url),
        ):
            remote.search(["Ed Wood"], 1)
    finally:
        for server in servers:
            server.stop()


def test_the_remote_factory_takes_a_list_or_comma_separated_urls(pair, bm25):
    _, servers = pair
    for url in ([s.url for s in servers], ",".join(s.url for s in servers)):
        remote = make_retriever("remote", tiny_corpus(), url=url)
        assert isinstance(remote, RemoteRetriever)
        with remote:
            assert remote.urls == tuple(s.url for s in servers)
            assert as_tuples(remote.search(QUERIES, 2)) == as_tuples(bm25.search(QUERIES, 2))


def broken_app(index_id: str | None) -> object:
    """A replica that is healthy by /health but answers every search with a 500."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ready", "index_id": index_id})

    async def search(request: Request) -> JSONResponse:
        return JSONResponse({"error": "injected"}, status_code=500)

    return Starlette(routes=[Route("/health", health), Route("/search", search, methods=["POST"])])


def test_a_5xx_is_retried_on_the_other_replica_and_cools_down(pair, bm25):
    counters, servers = pair
    with BackgroundServer(broken_app(index_identity(bm25))) as broken:
        urls = [broken.url, servers[1].url]
        with RemoteRetriever(urls, cooldown_s=60, max_retries=0) as remote:
            for query in QUERIES:
                assert as_tuples(remote.search([query], 2)) == as_tuples(bm25.search([query], 2))
            stats = remote.replica_stats()
    assert stats[0]["failures"] == 1 and not stats[0]["up"]
    assert "HTTP 500" in stats[0]["last_error"]
    assert counters[1].queries == len(QUERIES)


def test_the_cli_option_names_replicas_as_a_list_or_comma_separated(pair, bm25):
    from raggym_env.cli import parse_options

    _, servers = pair
    urls = [s.url for s in servers]
    for item in (f"url={','.join(urls)}", "url=" + json.dumps(urls)):
        options = parse_options([item, "cooldown_s=0.5"])
        with make_retriever("remote", tiny_corpus(), **options) as remote:  # type: ignore[attr-defined]
            assert remote.urls == tuple(urls) and remote.cooldown_s == 0.5
            assert as_tuples(remote.search(QUERIES, 2)) == as_tuples(bm25.search(QUERIES, 2))
