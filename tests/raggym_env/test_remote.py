"""RemoteRetriever against a fault-injecting HTTP server on loopback: retries and errors."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytest.importorskip("httpx")

from raggym.testing.drip_server import DripServer
from raggym_env.corpora import Corpus
from raggym_env.env import RAGEnv
from raggym_env.retrieval.base import RetrievalError, Retriever
from raggym_env.retrieval.remote import RemoteRetriever
from raggym_env.tasks import load_examples

DOC = {"id": "d1", "title": "Paris", "text": "Paris is the capital of France.", "score": 2.5}


@dataclass
class Faults:
    """Scripted replies, consumed one per request; ``default`` once the script is empty."""

    script: list[str] = field(default_factory=list)
    default: str = "ok"
    requests: list[dict[str, object]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next(self) -> str:
        with self.lock:
            return self.script.pop(0) if self.script else self.default


class FaultServer(ThreadingHTTPServer):
    daemon_threads = True
    faults: Faults


class FaultHandler(BaseHTTPRequestHandler):
    server: FaultServer

    def log_message(self, format: str, *args: object) -> None:  # silence stderr
        pass

    def reply(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        action = self.server.faults.next()
        if action == "loading":
            self.reply(503, json.dumps({"status": "loading"}).encode())
        elif action == "failed":
            self.reply(503, json.dumps({"status": "failed", "error": "bad index"}).encode())
        else:
            self.reply(200, json.dumps({"status": "ready", "max_queries_per_request": 2}).encode())

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        faults = self.server.faults
        with faults.lock:
            faults.requests.append(body)
        action = faults.next()
        if action == "ok":
            results = [[{**DOC, "title": q}] * min(body["k"], 2) for q in body["queries"]]
            self.reply(200, json.dumps({"results": results}).encode())
        elif action in ("500", "503", "429"):
            self.reply(int(action), json.dumps({"error": f"injected {action}"}).encode())
        elif action == "413":
            self.reply(
                413, json.dumps({"error": "queries[0] is too long: 9 > max_query_chars=5"}).encode()
            )
        elif action == "422":
            self.reply(422, json.dumps({"error": "'k' must be between 1 and max_k=5"}).encode())
        elif action == "slow":
            time.sleep(0.5)
            self.reply(200, b'{"results": []}')
        elif action == "drop":
            self.close_connection = True  # no reply at all: the socket just closes
        elif action == "garbage":
            self.reply(200, b"<html>not json</html>", "text/html")
        elif action == "wrong-shape":
            self.reply(200, json.dumps({"results": [[{"id": "x"}]]}).encode())
        else:  # pragma: no cover - a typo in a test script
            raise ValueError(action)


@pytest.fixture
def fault_server() -> Iterator[tuple[str, Faults]]:
    server = FaultServer(("127.0.0.1", 0), FaultHandler)
    server.faults = Faults()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.faults
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def client(url: str, **options: object) -> RemoteRetriever:
    return RemoteRetriever(url, backoff_s=0.001, timeout_s=0.2, **options)  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_is_a_retriever(fault_server: tuple[str, Faults]):
    url, _ = fault_server
    with client(url) as remote:
        assert isinstance(remote, Retriever)
        assert url in repr(remote)


def test_rebuilds_scored_documents(fault_server: tuple[str, Faults]):
    url, faults = fault_server
    with client(url) as remote:
        results = remote.search(["a", "b"], 3)
    assert [[r.document.title for r in row] for row in results] == [["a", "a"], ["b", "b"]]
    assert results[0][0].score == 2.5
    assert results[0][0].id == "d1"
    assert faults.requests == [{"queries": ["a", "b"], "k": 3}]


@pytest.mark.parametrize("fault", ["500", "503", "429", "slow", "drop", "garbage"])
def test_transient_failure_then_success_is_retried(fault_server: tuple[str, Faults], fault: str):
    url, faults = fault_server
    faults.script = [fault, "ok"]
    with client(url) as remote:
        assert remote.search(["q"], 1)[0][0].document.title == "q"
    assert len(faults.requests) == 2


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("500", "HTTP 500: injected 500"),
        ("429", "HTTP 429: injected 429"),
        ("slow", "timed out after 0.2 s"),
        ("drop", "RemoteProtocolError"),
        ("garbage", "malformed response"),
        ("wrong-shape", "malformed response"),
    ],
)
def test_persistent_failure_raises_retrieval_error(
    fault_server: tuple[str, Faults], fault: str, message: str
):
    url, faults = fault_server
    faults.default = fault
    with client(url, max_retries=2) as remote, pytest.raises(RetrievalError) as info:
        remote.search(["q"], 1)
    text = str(info.value)
    assert url in text
    assert "after 3 attempt(s)" in text
    assert message in text
    assert len(faults.requests) == 3


def test_client_error_is_a_value_error_without_retry(fault_server: tuple[str, Faults]):
    url, faults = fault_server
    faults.default = "422"
    with client(url) as remote, pytest.raises(ValueError, match=r"HTTP 422.*max_k=5"):
        remote.search(["q"], 9)
    assert len(faults.requests) == 1


def test_unreachable_server_raises_retrieval_error():
    url = f"http://127.0.0.1:{free_port()}"
    with client(url, max_retries=1) as remote, pytest.raises(RetrievalError, match="ConnectError"):
        remote.search(["q"], 1)


def test_large_batches_are_split_into_chunks(fault_server: tuple[str, Faults]):
    url, faults = fault_server
    with client(url, max_queries_per_request=2) as remote:
        results = remote.search(["a", "b", "c", "d", "e"], 1)
        assert remote.search([], 1) == []
    assert [row[0].document.title for row in results] == ["a", "b", "c", "d", "e"]
    assert [r["queries"] for r in faults.requests] == [["a", "b"], ["c", "d"], ["e"]]


def test_batches_are_split_to_bound_queries_times_k(fault_server: tuple[str, Faults]):
    url, faults = fault_server
    with client(url, max_results_per_request=4) as remote:
        results = remote.search([f"q{i}" for i in range(5)], 2)
    assert [len(r["queries"]) for r in faults.requests] == [2, 2, 1]  # type: ignore[arg-type]
    assert [row[0].document.title for row in results] == [f"q{i}" for i in range(5)]


def test_a_413_is_a_retrieval_error_without_retry(fault_server: tuple[str, Faults]):
    url, faults = fault_server
    faults.default = "413"
    with client(url) as remote, pytest.raises(RetrievalError, match=r"HTTP 413.*max_query_chars"):
        remote.search(["q"], 1)
    assert len(faults.requests) == 1


@pytest.mark.parametrize(("options", "deadline"), [({"deadline_s": 0.6}, 0.6), ({}, 1.0)])
def test_a_server_dripping_its_reply_is_cut_off_at_the_deadline(
    options: dict[str, float], deadline: float
):
    # 107 bytes at one per 0.2 s would take 21 s; every read returns well within timeout_s.
    with DripServer(b'{"results": [[]]}', interval_s=0.2) as server:
        remote = RemoteRetriever(
            server.url, timeout_s=0.5, max_retries=1, backoff_s=0.001, **options
        )
        start = time.monotonic()
        with remote, pytest.raises(RetrievalError) as info:
            remote.search(["q"], 1)
        elapsed = time.monotonic() - start
    assert remote.deadline_s == deadline
    assert f"no complete reply within deadline_s={deadline} s" in str(info.value)
    assert "after 2 attempt(s)" in str(info.value)
    assert server.requests == 2
    assert 2 * deadline - 0.1 < elapsed < 2 * deadline + 0.5, elapsed


def test_a_dripping_health_reply_is_cut_off_too():
    with (
        DripServer(b'{"status": "ready"}', interval_s=0.2) as server,
        RemoteRetriever(server.url, timeout_s=0.5, deadline_s=0.5) as remote,
    ):
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            remote.wait_until_ready(timeout_s=0.2, poll_s=0.05)
        assert time.monotonic() - start < 1.5


def test_wait_until_ready_polls_and_adopts_the_server_limit(fault_server: tuple[str, Faults]):
    url, faults = fault_server
    faults.script = ["loading", "loading"]
    with client(url) as remote:
        health = remote.wait_until_ready(timeout_s=5, poll_s=0.01)
        assert health["status"] == "ready"
        assert remote.max_queries_per_request == 2
        faults.script = ["failed"]
        with pytest.raises(RetrievalError, match="failed to load: bad index"):
            remote.wait_until_ready(timeout_s=5, poll_s=0.01)


def test_wait_until_ready_times_out_on_unreachable_server():
    with (
        client(f"http://127.0.0.1:{free_port()}") as remote,
        pytest.raises(TimeoutError, match="ConnectError"),
    ):
        remote.wait_until_ready(timeout_s=0.2, poll_s=0.05)


def test_backoff_is_exponential_capped_and_seeded():
    first = RemoteRetriever("http://127.0.0.1:1", backoff_s=0.1, max_backoff_s=0.5, seed=3)
    second = RemoteRetriever("http://127.0.0.1:1", backoff_s=0.1, max_backoff_s=0.5, seed=3)
    delays = [first._delay(n) for n in range(6)]
    assert delays == [second._delay(n) for n in range(6)]
    for n, delay in enumerate(delays):
        assert min(0.5, 0.1 * 2**n * 0.5) <= delay <= min(0.5, 0.1 * 2**n * 1.5)
    first.close()
    second.close()


@pytest.mark.parametrize(
    "options",
    [
        {"url": "127.0.0.1:8001"},
        {"url": "http://x", "timeout_s": 0},
        {"url": "http://x", "max_retries": -1},
        {"url": "http://x", "pool_size": 0},
        {"url": "http://x", "max_queries_per_request": 0},
        {"url": "http://x", "max_results_per_request": 0},
        {"url": "http://x", "deadline_s": 0},
    ],
)
def test_rejects_bad_options(options: dict[str, object]):
    with pytest.raises(ValueError):
        RemoteRetriever(**options)  # type: ignore[arg-type]


def test_search_validates_arguments(fault_server: tuple[str, Faults]):
    url, faults = fault_server
    with client(url) as remote:
        with pytest.raises(TypeError):
            remote.search("q", 1)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="k must be >= 1"):
            remote.search(["q"], 0)
    assert faults.requests == []


def test_env_records_retrieval_error_from_a_stopped_server():
    examples = load_examples("hotpotqa", limit=2)
    corpus = Corpus.from_passages([("Paris", "Paris is the capital of France.")], name="tiny")
    remote = RemoteRetriever(f"http://127.0.0.1:{free_port()}", max_retries=1, backoff_s=0.001)
    env = RAGEnv("custom", examples=examples, corpus=corpus, retriever=remote)
    try:
        env.reset(seed=0)
        _, _, terminated, truncated, info = env.step("Search: capital of France")
        assert not terminated and not truncated
        assert info["retrieval_error"].startswith("RetrievalError: retrieval server http://")
        assert "after 2 attempt(s)" in info["retrieval_error"]
        assert info["retrieved"] == []
        _, _, terminated, _, _ = env.step("Answer: Paris")
        assert terminated
    finally:
        env.close()
        remote.close()


def test_queries_with_lone_surrogates_are_sent_as_utf8(fault_server: tuple[str, Faults]):
    url, faults = fault_server
    with client(url) as remote:
        results = remote.search(["bad \ud800 query"], 1)
    assert [r.document.title for r in results[0]] == ["bad \ufffd query"]
    assert faults.requests == [{"queries": ["bad \ufffd query"], "k": 1}]
