"""The retrieval server over real HTTP on loopback: results, health, metrics, errors, batching."""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("httpx")
pytest.importorskip("prometheus_client")

import httpx

from raggym.testing.retriever import FakeRetriever
from raggym_env.corpora import Corpus
from raggym_env.retrieval.base import RetrievalError
from raggym_env.retrieval.bm25 import BM25Retriever, load_or_build
from raggym_env.retrieval.remote import RemoteRetriever
from raggym_env.retrieval.server import BackgroundServer, create_app
from raggym_env.serve_cli import (
    retriever_factory_from_args,
    run_serve_retriever,
    serve_command,
)
from raggym_env.tasks import load_task
from raggym_env.types import ScoredDocument

PASSAGES = [
    ("Paris", "Paris is the capital and largest city of France."),
    ("Berlin", "Berlin is the capital of Germany, on the river Spree."),
    ("Rome", "Rome is the capital city of Italy and was the heart of an empire."),
    ("Madrid", "Madrid is the capital of Spain."),
    ("Seine", "The Seine is a river flowing through Paris in France."),
    ("Thames", "The Thames is a river flowing through London in England."),
    ("Tiber", "The Tiber river flows through Rome."),
    ("Danube", "The Danube flows through Vienna, Budapest and Belgrade."),
]
QUERIES = ["capital of France", "river through Rome", "Danube cities", "capital Spain"]


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return Corpus.from_passages(PASSAGES, name="capitals")


@pytest.fixture(scope="module")
def bm25(corpus: Corpus) -> BM25Retriever:
    return BM25Retriever.build(corpus)


@contextmanager
def serving(source: object, **options: object) -> Iterator[BackgroundServer]:
    """Serve ``create_app(source)`` on an ephemeral loopback port; stop afterwards."""
    app = create_app(source, **options)  # type: ignore[arg-type]
    with BackgroundServer(app) as server:
        yield server


@pytest.fixture(scope="module")
def bm25_server(bm25: BM25Retriever) -> Iterator[BackgroundServer]:
    with serving(
        bm25,
        max_queries_per_request=8,
        max_query_chars=50,
        max_k=20,
        max_results_per_request=100,
        max_body_bytes=300_000,
    ) as server:
        wait_ready(server.url)
        yield server


def wait_ready(url: str) -> None:
    with RemoteRetriever(url) as remote:
        remote.wait_until_ready(10)


def post(url: str, body: object = None, content: bytes | None = None) -> httpx.Response:
    if content is not None:
        return httpx.post(f"{url}/search", content=content, timeout=10)
    return httpx.post(f"{url}/search", json=body, timeout=10)


def as_tuples(results: list[list[ScoredDocument]]) -> list[list[tuple[str, str, str, float]]]:
    return [[(r.id, r.document.title, r.document.text, r.score) for r in row] for row in results]


# ---------------------------------------------------------------------- results
def test_search_matches_in_process_bm25(bm25_server: BackgroundServer, bm25: BM25Retriever):
    with RemoteRetriever(bm25_server.url) as remote:
        for k in (1, 3, 8):
            assert as_tuples(remote.search(QUERIES, k)) == as_tuples(bm25.search(QUERIES, k))
    body = post(bm25_server.url, {"queries": QUERIES[:1], "k": 2}).json()
    assert set(body["results"][0][0]) == {"id", "title", "text", "score"}


def test_search_matches_in_process_on_bundled_hotpotqa():
    task = load_task("hotpotqa")
    retriever = load_or_build(task.corpus)
    questions = [ex.question for ex in task.examples[:40]]
    with serving(lambda: retriever) as server, RemoteRetriever(server.url) as remote:
        health = remote.wait_until_ready(10)
        assert health["documents"] == len(task.corpus)
        assert as_tuples(remote.search(questions, 5)) == as_tuples(retriever.search(questions, 5))


def test_empty_query_list_gets_empty_results(bm25_server: BackgroundServer):
    response = post(bm25_server.url, {"queries": [], "k": 3})
    assert response.status_code == 200
    assert response.json() == {"results": []}


# ---------------------------------------------------------------------- health / loading
def test_health_reports_loading_until_the_slow_factory_returns(bm25: BM25Retriever):
    release = threading.Event()

    def slow_factory() -> BM25Retriever:
        release.wait(10)
        return bm25

    with serving(slow_factory) as server:
        health = httpx.get(f"{server.url}/health", timeout=5)
        assert health.status_code == 503
        assert health.json()["status"] == "loading"
        busy = post(server.url, {"queries": ["capital"], "k": 1})
        assert busy.status_code == 503
        assert "loading" in busy.json()["error"]
        with RemoteRetriever(server.url) as remote:
            with pytest.raises(TimeoutError, match="not ready"):
                remote.wait_until_ready(timeout_s=0.3, poll_s=0.05)
            release.set()
            ready = remote.wait_until_ready(10)
        assert ready["status"] == "ready"
        assert ready["documents"] == len(PASSAGES)
        assert httpx.get(f"{server.url}/health", timeout=5).status_code == 200


def test_failed_load_is_reported_and_search_refused():
    def broken() -> BM25Retriever:
        raise FileNotFoundError("no index at /nowhere")

    with serving(broken) as server, RemoteRetriever(server.url) as remote:
        with pytest.raises(RetrievalError, match="no index at /nowhere"):
            remote.wait_until_ready(5, poll_s=0.02)
        health = httpx.get(f"{server.url}/health", timeout=5)
        assert health.status_code == 503
        assert health.json()["status"] == "failed"
        refused = post(server.url, {"queries": ["x"], "k": 1})
        assert refused.status_code == 503
        assert "no index at /nowhere" in refused.json()["error"]


# ---------------------------------------------------------------------- metrics
def test_metrics_expose_counters_and_retriever_stats(corpus: Corpus):
    class WithStats(FakeRetriever):
        stats: ClassVar[dict[str, object]] = {"cache_hits": 7, "cache_misses": 2, "label": "x"}

    with serving(WithStats(corpus)) as server, RemoteRetriever(server.url) as remote:
        remote.wait_until_ready(10)
        remote.search(QUERIES, 2)
        post(server.url, content=b"{not json")
        text = httpx.get(f"{server.url}/metrics", timeout=5).text
    assert 'raggym_requests_total{endpoint="search",status="200"} 1.0' in text
    assert 'raggym_requests_total{endpoint="search",status="400"} 1.0' in text
    assert "raggym_request_seconds_bucket" in text
    assert "raggym_search_batch_queries_count 1.0" in text
    assert f"raggym_queries_total {float(len(QUERIES))}" in text
    assert 'raggym_retriever_stat{name="cache_hits"} 7.0' in text
    assert "raggym_index_ready 1.0" in text
    assert 'name="label"' not in text


def test_metrics_export_cached_retriever_stats(bm25: BM25Retriever):
    cache = pytest.importorskip("raggym_env.retrieval.cache")
    cached = cache.CachedRetriever(bm25)
    with serving(cached) as server, RemoteRetriever(server.url) as remote:
        remote.wait_until_ready(10)
        remote.search(QUERIES[:2], 2)
        remote.search(QUERIES[:2], 2)
        text = httpx.get(f"{server.url}/metrics", timeout=5).text
    assert 'raggym_retriever_stat{name="hits"} 2.0' in text
    assert 'raggym_retriever_stat{name="misses"} 2.0' in text


# ---------------------------------------------------------------------- bad requests
BAD_REQUESTS = [
    pytest.param(b"{not json", 400, "malformed JSON", id="malformed-json"),
    pytest.param(b"\xff\xfe", 400, "malformed JSON", id="not-utf8"),
    pytest.param(b"[1, 2]", 400, "JSON object", id="not-an-object"),
    pytest.param(b'{"k": 3}', 422, "missing field 'queries'", id="missing-queries"),
    pytest.param(b'{"queries": ["a"]}', 422, "missing field 'k'", id="missing-k"),
    pytest.param(b'{"queries": "a", "k": 3}', 422, "list of strings", id="queries-str"),
    pytest.param(b'{"queries": [1], "k": 3}', 422, "queries[0] must be a string", id="query-int"),
    pytest.param(b'{"queries": ["a", " "], "k": 3}', 422, "queries[1] is empty", id="blank"),
    pytest.param(b'{"queries": [""], "k": 3}', 422, "queries[0] is empty", id="empty"),
    pytest.param(
        b'{"queries": ["' + b"x" * 51 + b'"], "k": 3}', 413, "too long", id="query-too-long"
    ),
    pytest.param(
        b'{"queries": [' + b",".join([b'"a"'] * 9) + b'], "k": 3}',
        413,
        "too many queries",
        id="too-many-queries",
    ),
    pytest.param(b'{"queries": ["a"], "k": "3"}', 422, "'k' must be an integer", id="k-str"),
    pytest.param(b'{"queries": ["a"], "k": true}', 422, "'k' must be an integer", id="k-bool"),
    pytest.param(b'{"queries": ["a"], "k": 2.5}', 422, "'k' must be an integer", id="k-float"),
    pytest.param(b'{"queries": ["a"], "k": 0}', 422, "between 1 and max_k=20", id="k-zero"),
    pytest.param(b'{"queries": ["a"], "k": 21}', 422, "between 1 and max_k=20", id="k-too-big"),
    pytest.param(
        b'{"queries": ["a"], "k": 1' + b"1" * 5000 + b"}",
        400,
        "a number with 5001 characters; numbers may have at most 32",
        id="k-5000-digits",
    ),
    pytest.param(b'{"queries": ["a"], "k": 1e999}', 422, "'k' must be an integer", id="k-inf"),
    pytest.param(b'{"queries": ["a"], "k": NaN}', 400, "NaN is not valid JSON", id="k-nan"),
    pytest.param(
        b'{"queries": ["a"], "k": 1, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        400,
        "nested over MAX_JSON_DEPTH=8 levels",
        id="deep-json",
    ),
    pytest.param(
        b'{"queries": ["a"], "k": 1, "x": ' + b"{" * 100_000 + b"}",
        400,
        "nested over MAX_JSON_DEPTH=8 levels",
        id="deep-unclosed-json",
    ),
    pytest.param(
        b'{"queries": ["[[[[[[[[[[[[{{{{{"], "k": 1}', 200, "", id="brackets-in-a-string-are-text"
    ),
    pytest.param(
        b'{"queries": [' + b",".join([b'"a"'] * 8) + b'], "k": 13}',
        413,
        "8 queries x k=13 = 104 > max_results_per_request=100",
        id="too-many-results",
    ),
    pytest.param(
        b'{"queries": ["' + b"a " * 160_000 + b'"], "k": 1}',
        413,
        "Content-Length 320025 > max_body_bytes=300000",
        id="body-too-large",
    ),
]


@pytest.mark.parametrize(("content", "status", "message"), BAD_REQUESTS)
def test_bad_requests_get_clear_4xx_and_the_server_keeps_serving(
    bm25_server: BackgroundServer, content: bytes, status: int, message: str
):
    response = post(bm25_server.url, content=content)
    assert response.status_code == status, response.text[:300]
    if status != 200:
        assert message in response.json()["error"]
    ok = post(bm25_server.url, {"queries": ["capital of France"], "k": 1})
    assert ok.status_code == 200
    assert ok.json()["results"][0][0]["title"] == "Paris"


def test_streamed_body_over_the_limit_is_413(bm25_server: BackgroundServer):
    def chunks() -> Iterator[bytes]:  # no Content-Length: the server counts as it reads
        yield b'{"queries": ["'
        for _ in range(40):
            yield b"a " * 5000
        yield b'"], "k": 1}'

    response = httpx.post(f"{bm25_server.url}/search", content=chunks(), timeout=10)
    assert response.status_code == 413
    assert "over max_body_bytes=300000" in response.json()["error"]
    assert post(bm25_server.url, {"queries": ["capital"], "k": 1}).status_code == 200


def test_health_reports_the_limits_and_the_client_adopts_them(bm25_server: BackgroundServer):
    with RemoteRetriever(bm25_server.url) as remote:
        health = remote.wait_until_ready(10)
        assert health["max_results_per_request"] == 100
        assert health["max_body_bytes"] == 300_000
        assert health["body_timeout_s"] == 10.0
        assert remote.max_results_per_request == 100
        # 8 queries x k=20 = 160 results: split into requests of at most 100
        results = remote.search(QUERIES * 2, 20)
    assert len(results) == 8


def test_a_query_over_the_limit_is_recorded_by_a_remote_env_and_charged_a_step():
    import gymnasium as gym

    task = load_task("hotpotqa")
    retriever = load_or_build(task.corpus)
    with serving(lambda: retriever) as server:
        wait_ready(server.url)
        env = gym.make(
            "RAGGym/HotpotQA-v0",
            retriever="remote",
            retriever_options={"url": server.url, "max_retries": 0},
        )
        try:
            env.reset(seed=0)
            _, _, terminated, truncated, info = env.step("Search: " + "long query " * 250)
            assert not terminated and not truncated
            assert info["step"] == 1
            assert info["retrieved"] == []
            error = info["retrieval_error"]
            assert error.startswith("RetrievalError: "), error
            assert "HTTP 413" in error and "max_query_chars=2000" in error
            _, _, _, _, info = env.step("Search: capital of France")
            assert info["step"] == 2
            assert info["retrieval_error"] is None and info["retrieved"]
        finally:
            env.close()


# ---------------------------------------------------------------------- slow and vanishing clients
HEAD = (
    b"POST /search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Content-Length: 1000\r\n\r\n"
)


def test_a_client_dripping_its_body_gets_408_within_the_deadline(bm25: BM25Retriever):
    with serving(bm25, body_timeout_s=0.5) as server:
        wait_ready(server.url)
        with socket.create_connection((server.host, server.port), timeout=5) as sock:
            start = time.monotonic()
            sock.sendall(HEAD)
            sock.settimeout(0.1)
            reply = b""
            while b"\r\n\r\n" not in reply and time.monotonic() - start < 5:
                sock.sendall(b" ")  # one byte every 0.1 s: never done within 1000 bytes
                with contextlib.suppress(TimeoutError):
                    reply += sock.recv(65536)
            elapsed = time.monotonic() - start
            sock.settimeout(2)
            with contextlib.suppress(OSError):
                while chunk := sock.recv(65536):  # the server closes the connection
                    reply += chunk
        assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
        assert b"body_timeout_s=0.5" in reply
        assert b"connection: close" in reply.lower()
        assert elapsed < 0.5 + 1.0, elapsed
        assert post(server.url, {"queries": ["capital"], "k": 1}).status_code == 200


def test_clients_disconnecting_mid_body_log_little_and_the_server_keeps_serving(
    bm25: BM25Retriever,
):
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    loggers = [logging.getLogger("uvicorn"), logging.getLogger()]
    with serving(bm25) as server:
        wait_ready(server.url)
        for logger in loggers:
            logger.addHandler(handler)
        try:
            for _ in range(150):
                with socket.create_connection((server.host, server.port), timeout=5) as sock:
                    sock.sendall(HEAD + b'{"queries": ["par')
            deadline = time.monotonic() + 10
            pattern = 'raggym_requests_total{endpoint="search",status="499"} 150.0'
            while pattern not in httpx.get(f"{server.url}/metrics", timeout=5).text:
                assert time.monotonic() < deadline, "the disconnects were not all counted"
                time.sleep(0.05)
            ok = post(server.url, {"queries": ["capital of France"], "k": 1})
        finally:
            for logger in loggers:
                logger.removeHandler(handler)
    assert ok.status_code == 200
    assert len(captured.getvalue().encode()) < 2048, captured.getvalue()[:2000]


def test_remote_client_turns_4xx_into_value_error(bm25_server: BackgroundServer):
    with RemoteRetriever(bm25_server.url) as remote:
        with pytest.raises(ValueError, match=r"HTTP 422.*max_k=20"):
            remote.search(["capital"], 21)
        assert remote.search(["capital of France"], 1)[0][0].document.title == "Paris"


def test_retriever_exception_is_a_500_and_the_server_keeps_serving(corpus: Corpus):
    fake = FakeRetriever(corpus, fail_on={"explode": RuntimeError("index shard missing")})
    with serving(fake) as server:
        wait_ready(server.url)
        response = post(server.url, {"queries": ["explode"], "k": 2})
        assert response.status_code == 500
        assert response.json()["error"] == "RuntimeError: index shard missing"
        ok = post(server.url, {"queries": ["capital of France"], "k": 2})
        assert ok.status_code == 200
        assert ok.json()["results"][0][0]["title"] == "Paris"


def test_create_app_validates_its_arguments(bm25: BM25Retriever):
    with pytest.raises(ValueError, match="max_batch"):
        create_app(bm25, max_batch=0)
    with pytest.raises(ValueError, match="max_wait_ms"):
        create_app(bm25, max_wait_ms=-1)
    with pytest.raises(TypeError, match="Retriever or a callable"):
        create_app(42)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- micro-batching
class CountingRetriever:
    """Wraps a retriever and records the size of every batch it is asked."""

    def __init__(self, inner: BM25Retriever) -> None:
        self.inner = inner
        self.corpus = inner.corpus
        self.batches: list[int] = []
        self._lock = threading.Lock()

    def search(self, queries: list[str], k: int) -> list[list[ScoredDocument]]:
        with self._lock:
            self.batches.append(len(queries))
        return self.inner.search(queries, k)


def test_concurrent_requests_are_micro_batched(bm25: BM25Retriever):
    counting = CountingRetriever(bm25)
    n = 16
    barrier = threading.Barrier(n, timeout=10)

    def ask(i: int) -> list[list[ScoredDocument]]:
        barrier.wait()
        return remote.search([QUERIES[i % len(QUERIES)]], 1 + i % 4)

    with (
        serving(counting, max_batch=64, max_wait_ms=50) as server,
        RemoteRetriever(server.url, pool_size=n) as remote,
        ThreadPoolExecutor(max_workers=n) as pool,
    ):
        remote.wait_until_ready(10)
        futures = [pool.submit(ask, i) for i in range(n)]
        answers = {i: future.result(timeout=15) for i, future in enumerate(futures)}
    assert len(answers) == n
    assert sum(counting.batches) == n
    assert len(counting.batches) < n, counting.batches
    for i, got in answers.items():  # each request truncated to its own k
        assert as_tuples(got) == as_tuples(bm25.search([QUERIES[i % len(QUERIES)]], 1 + i % 4))


def test_bounded_load_test_has_no_errors(bm25: BM25Retriever, perf_script):
    run_load = perf_script("server_load").run_load

    questions = [ex.question for ex in load_task("hotpotqa").examples]
    retriever = load_or_build(load_task("hotpotqa").corpus)
    with serving(retriever) as server:
        wait_ready(server.url)
        report = run_load(server.url, questions, clients=32, requests_per_client=20, timeout_s=60)
    print(f"\nload test (32 clients x 20 requests, loopback): {report.summary()}")
    assert report.errors == []
    assert len(report.latencies) == 32 * 20
    assert report.wall_s < 60


# ---------------------------------------------------------------------- command line
def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    serve_command(parser.add_subparsers(dest="command"))
    return parser.parse_args(["serve-retriever", *argv])


def test_cli_factory_builds_the_task_retriever():
    args = parse("--task", "hotpotqa", "--port", "0", "--max-batch", "8")
    assert (args.retriever, args.host, args.max_batch, args.max_wait_ms) == (
        "bm25",
        "127.0.0.1",
        8,
        5.0,
    )
    retriever = retriever_factory_from_args(args)()
    reference = load_or_build(load_task("hotpotqa").corpus)
    question = load_task("hotpotqa").examples[0].question
    assert as_tuples(retriever.search([question], 3)) == as_tuples(reference.search([question], 3))


def test_cli_serves_a_saved_index_and_a_corpus_file(tmp_path: Path, corpus: Corpus):
    BM25Retriever.build(corpus).save(tmp_path / "index")
    loaded = retriever_factory_from_args(parse("--index-dir", str(tmp_path / "index")))()
    assert loaded.search(["capital of France"], 1)[0][0].document.title == "Paris"
    corpus.save_jsonl(tmp_path / "corpus.jsonl")
    from_file = retriever_factory_from_args(parse("--corpus", str(tmp_path / "corpus.jsonl")))()
    assert from_file.search(["river through Rome"], 1)[0][0].document.title == "Tiber"


def test_cli_rejects_missing_source():
    with pytest.raises(ValueError, match="--task, --corpus or --index-dir"):
        retriever_factory_from_args(parse())
    with pytest.raises(ValueError, match="only loads a saved bm25"):
        retriever_factory_from_args(parse("--index-dir", "x", "--retriever", "dense"))


def test_run_serve_retriever_passes_options_to_run_server(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    import raggym_env.retrieval.server as server_module

    seen: dict[str, object] = {}

    def fake_run_server(factory: Callable[[], object], **kwargs: object) -> None:
        seen.update(kwargs, retriever=factory())

    monkeypatch.setattr(server_module, "run_server", fake_run_server)
    args = parse(
        "--task", "hotpotqa", "--port", "8123", "--max-wait-ms", "2", "--max-results", "50"
    )
    assert run_serve_retriever(args) == 0
    assert seen["max_results_per_request"] == 50
    assert seen["max_k"] == 1000 and seen["max_body_bytes"] == 4 * 1024 * 1024
    assert seen["body_timeout_s"] == 10.0 and seen["timeout_keep_alive_s"] == 5.0
    assert seen["host"] == "127.0.0.1"
    assert seen["port"] == 8123
    assert seen["max_wait_ms"] == 2.0
    assert seen["max_batch"] == 64
    assert isinstance(seen["retriever"], BM25Retriever)
    assert "http://127.0.0.1:8123" in capsys.readouterr().out


def test_server_modules_import_light():
    code = (
        "import sys, raggym_env, raggym_env.retrieval.server, raggym_env.retrieval.remote, "
        "raggym_env.serve_cli; "
        "heavy = {'starlette', 'fastapi', 'uvicorn', 'httpx', 'prometheus_client'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
