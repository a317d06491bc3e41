"""Search-R1's /retrieve protocol over real HTTP on loopback: our server, our client, theirs."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("httpx")
pytest.importorskip("prometheus_client")

import httpx

from raggym.testing.retriever import FakeRetriever
from raggym_env.corpora import Corpus
from raggym_env.corpora.memory import document_id
from raggym_env.env import RAGEnv
from raggym_env.retrieval.base import RetrievalError
from raggym_env.retrieval.factory import make_retriever
from raggym_env.retrieval.remote import RemoteRetriever
from raggym_env.retrieval.searchr1 import (
    ProtocolError,
    build_retrieve_request,
    document_from_searchr1,
    format_contents,
    parse_contents,
    parse_retrieve_request,
    parse_retrieve_response,
)
from raggym_env.retrieval.server import BackgroundServer, create_app
from raggym_env.serve_cli import serve_command
from raggym_env.tasks import load_examples
from raggym_env.types import Document, ScoredDocument

PASSAGES = [
    ("Paris", "Paris is the capital and largest city of France."),
    ("Berlin", "Berlin is the capital of Germany, on the river Spree."),
    ("Rome", "Rome is the capital city of Italy."),
    ("Madrid", "Madrid is the capital of Spain."),
    ("Seine", "The Seine is a river flowing through Paris in France."),
    ("Tiber", "The Tiber river flows through Rome."),
]
QUERIES = ["capital of France", "river through Rome", "capital Spain"]


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return Corpus.from_passages(PASSAGES, name="capitals")


@pytest.fixture(scope="module")
def fake(corpus: Corpus) -> FakeRetriever:
    return FakeRetriever(corpus)


@contextmanager
def serving(source: object, **options: Any) -> Iterator[BackgroundServer]:
    """Serve ``create_app(source)`` on an ephemeral loopback port until the block ends."""
    with BackgroundServer(create_app(source, **options)) as server:  # type: ignore[arg-type]
        with RemoteRetriever(server.url) as remote:
            remote.wait_until_ready(10)
        yield server


@pytest.fixture(scope="module")
def server(fake: FakeRetriever) -> Iterator[BackgroundServer]:
    with serving(
        fake, max_queries_per_request=4, max_query_chars=50, max_k=10, max_results_per_request=20
    ) as running:
        yield running


def retrieve(url: str, body: object = None, content: bytes | None = None) -> httpx.Response:
    if content is not None:
        return httpx.post(f"{url}/retrieve", content=content, timeout=10)
    return httpx.post(f"{url}/retrieve", json=body, timeout=10)


def as_tuples(results: list[list[ScoredDocument]]) -> list[list[tuple[str, str, str, float]]]:
    return [[(r.id, r.document.title, r.document.text, r.score) for r in row] for row in results]


# ---------------------------------------------------------------------- protocol helpers
def test_flashrag_contents_round_trip():
    contents = format_contents("Paris", "Paris is the capital.\nSecond line.")
    assert contents == '"Paris"\nParis is the capital.\nSecond line.'
    assert parse_contents(contents) == ("Paris", "Paris is the capital.\nSecond line.")
    assert parse_contents("Unquoted title\nbody") == ("Unquoted title", "body")
    assert parse_contents("no newline at all") == ("", "no newline at all")
    assert parse_contents('""\nbody') == ("", "body")


def test_document_from_contents_only_gets_a_stable_id():
    doc = document_from_searchr1({"contents": '"Rome"\nRome is in Italy.'})
    assert (doc.title, doc.text) == ("Rome", "Rome is in Italy.")
    assert doc.id == document_id("Rome", "Rome is in Italy.")
    assert document_from_searchr1({"contents": '"Rome"\nRome is in Italy.'}).id == doc.id
    assert document_from_searchr1({"id": 7, "contents": "x\ny"}).id == "7"
    with pytest.raises(ProtocolError, match="neither 'contents' nor 'text'"):
        document_from_searchr1({"id": "1"})
    with pytest.raises(ProtocolError, match=r"doc.contents must be a string"):
        document_from_searchr1({"contents": 3}, "doc")


def test_parse_response_names_the_bad_item():
    with pytest.raises(ProtocolError, match="'result' has 1 lists for 2 queries"):
        parse_retrieve_response({"result": [[]]}, 2)
    with pytest.raises(ProtocolError, match=r"result\[0\]\[0\].score must be a number"):
        parse_retrieve_response({"result": [[{"document": {"contents": "a\nb"}, "score": "x"}]]}, 1)
    with pytest.raises(ProtocolError, match="object with a 'result' list"):
        parse_retrieve_response({"results": []}, 0)
    bare = parse_retrieve_response({"result": [[{"contents": "a\nb"}, {"contents": "c\nd"}]]}, 1)
    assert [r.score for r in bare[0]] == [1.0, 0.5]  # rank order kept


def test_parse_request_defaults_and_limits():
    request = parse_retrieve_request({"queries": ["q"]}, default_topk=4)
    assert (request.queries, request.topk, request.return_scores) == (["q"], 4, False)
    request = parse_retrieve_request({"queries": ["q"], "topk": None, "return_scores": None})
    assert (request.topk, request.return_scores) == (3, False)
    assert build_retrieve_request(["q"], 2) == {"queries": ["q"], "topk": 2, "return_scores": True}
    assert "topk" not in build_retrieve_request(["q"], None, return_scores=False)


# ---------------------------------------------------------------------- our server's /retrieve
def test_retrieve_with_scores_matches_search(server: BackgroundServer, fake: FakeRetriever):
    response = retrieve(server.url, {"queries": QUERIES, "topk": 2, "return_scores": True})
    assert response.status_code == 200
    result = response.json()["result"]
    assert len(result) == len(QUERIES)
    expected = fake.search(QUERIES, 2)
    for row, want in zip(result, expected, strict=True):
        assert [item["score"] for item in row] == [r.score for r in want]
        for item, scored in zip(row, want, strict=True):
            assert set(item) == {"document", "score"}
            doc = item["document"]
            assert set(doc) == {"id", "contents", "title", "text"}
            assert doc["id"] == scored.id
            assert doc["contents"] == f'"{scored.document.title}"\n{scored.document.text}'
            assert (doc["title"], doc["text"]) == (scored.document.title, scored.document.text)


def test_retrieve_without_scores_returns_bare_documents(server: BackgroundServer):
    for body in (
        {"queries": QUERIES[:1], "topk": 2},
        {"queries": QUERIES[:1], "topk": 2, "return_scores": False},
    ):
        result = retrieve(server.url, body).json()["result"]
        assert len(result) == 1 and len(result[0]) == 2
        assert all(set(item) == {"id", "contents", "title", "text"} for item in result[0])
        assert result[0][0]["title"] == "Paris"


def test_retrieve_topk_defaults_to_the_server_option(fake: FakeRetriever):
    with serving(fake) as default:
        result = retrieve(default.url, {"queries": ["capital"]}).json()["result"]
        assert len(result[0]) == 3  # Search-R1's default
        health = httpx.get(f"{default.url}/health", timeout=5).json()
        assert health["retrieve_topk"] == 3
    with serving(fake, retrieve_topk=5) as five:
        result = retrieve(five.url, {"queries": ["capital river"], "topk": None}).json()["result"]
        assert len(result[0]) == 5
    with pytest.raises(ValueError, match="retrieve_topk"):
        create_app(fake, max_k=4, retrieve_topk=5)


def test_retrieve_empty_query_list(server: BackgroundServer):
    response = retrieve(server.url, {"queries": []})
    assert response.status_code == 200 and response.json() == {"result": []}


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ([1, 2], 400, "the body must be a JSON object, got list"),
        ({"topk": 3}, 422, "missing field 'queries' (a list of strings)"),
        ({"queries": "capital"}, 422, "'queries' must be a list of strings, got str"),
        ({"queries": ["ok", 5]}, 422, "queries[1] must be a string, got int"),
        ({"queries": ["  "]}, 422, "queries[0] is empty"),
        ({"queries": ["q"] * 5}, 413, "too many queries: 5 > max_queries_per_request=4"),
        ({"queries": ["x" * 51]}, 413, "queries[0] is too long: 51 > max_query_chars=50"),
        ({"queries": ["q"], "topk": "3"}, 422, "'topk' must be an integer, got str"),
        ({"queries": ["q"], "topk": 2.5}, 422, "'topk' must be an integer, got float"),
        ({"queries": ["q"], "topk": True}, 422, "'topk' must be an integer, got bool"),
        ({"queries": ["q"], "topk": 0}, 422, "'topk' must be between 1 and max_k=10, got 0"),
        ({"queries": ["q"], "topk": 11}, 422, "'topk' must be between 1 and max_k=10, got 11"),
        ({"queries": ["q"], "return_scores": "yes"}, 422, "'return_scores' must be a boolean"),
        ({"queries": ["q"] * 3, "topk": 7}, 413, "max_results_per_request=20"),
    ],
)
def test_retrieve_rejects_bad_bodies(
    server: BackgroundServer, body: object, status: int, message: str
):
    response = retrieve(server.url, body)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


def test_retrieve_rejects_malformed_json_like_search(server: BackgroundServer):
    for content, message in [
        (b"{not json", "malformed JSON body"),
        (b"[" * 20 + b"]" * 20, "MAX_JSON_DEPTH"),
        (b'{"queries": ["q"], "topk": NaN}', "NaN is not valid JSON"),
        (b'{"queries": ["q"], "topk": ' + b"1" * 40 + b"}", "numbers may have at most"),
    ]:
        response = retrieve(server.url, content=content)
        assert response.status_code == 400, content
        assert message in response.json()["error"]


def test_retrieve_refuses_while_loading(fake: FakeRetriever):
    release = threading.Event()

    def slow() -> FakeRetriever:
        release.wait(10)
        return fake

    with BackgroundServer(create_app(slow)) as running:
        response = retrieve(running.url, {"queries": ["capital"]})
        assert response.status_code == 503
        assert response.json()["status"] == "loading"
        release.set()


def test_serve_cli_has_retrieve_topk():
    import argparse

    parser = argparse.ArgumentParser()
    serve_command(parser.add_subparsers())
    args = parser.parse_args(["serve-retriever", "--task", "bamboogle", "--retrieve-topk", "5"])
    assert args.retrieve_topk == 5
    assert parser.parse_args(["serve-retriever", "--task", "bamboogle"]).retrieve_topk == 3


# ---------------------------------------------------------------------- our client, our server
def test_remote_search_r1_client_matches_in_process(server: BackgroundServer, fake: FakeRetriever):
    with RemoteRetriever(server.url, protocol="search-r1") as remote:
        remote.wait_until_ready(5)
        for k in (1, 3):
            assert as_tuples(remote.search(QUERIES, k)) == as_tuples(fake.search(QUERIES, k))
        many = [f"capital {i}" for i in range(9)]  # more than the server's 4 per request
        assert as_tuples(remote.search(many, 2)) == as_tuples(fake.search(many, 2))
        assert remote.search([], 3) == []


def test_remote_rejects_unknown_protocol(server: BackgroundServer):
    with pytest.raises(ValueError, match="protocol must be one of"):
        RemoteRetriever(server.url, protocol="grpc")  # type: ignore[arg-type]


def test_factory_builds_a_search_r1_client(server: BackgroundServer, corpus: Corpus):
    remote = make_retriever("remote", corpus, url=server.url, protocol="search-r1")
    assert isinstance(remote, RemoteRetriever) and remote.protocol == "search-r1"
    try:
        assert remote.search(["capital of France"], 1)[0][0].document.title == "Paris"
    finally:
        remote.close()


# ---------------------------------------------------------------------- an independent server
class SearchR1Shaped(BaseHTTPRequestHandler):
    """Answers POST /retrieve like Search-R1's server: documents with only ``contents``."""

    passages: ClassVar[list[tuple[str, str]]] = PASSAGES
    requests: ClassVar[list[dict[str, Any]]] = []
    fail_next: ClassVar[list[int]] = []

    def do_POST(self) -> None:
        if self.path != "/retrieve":
            self._send(404, {"detail": "Not Found"})
            return
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(body)
        if type(self).fail_next:
            self._send(type(self).fail_next.pop(0), {"detail": "busy"})
            return
        topk = body.get("topk") or 3
        result = []
        for query in body["queries"]:
            words = set(query.lower().split())
            ranked = sorted(
                (
                    (len(words & set(f"{title} {text}".lower().replace(".", "").split())), i)
                    for i, (title, text) in enumerate(self.passages)
                ),
                key=lambda pair: (-pair[0], pair[1]),
            )[:topk]
            docs = [
                {"contents": f'"{self.passages[i][0]}"\n{self.passages[i][1]}'} for _, i in ranked
            ]
            if body.get("return_scores"):
                result.append(
                    [
                        {"document": d, "score": float(s)}
                        for d, (s, _) in zip(docs, ranked, strict=True)
                    ]
                )
            else:
                result.append(docs)
        self._send(200, {"result": result})

    def do_GET(self) -> None:
        self._send(404, {"detail": "Not Found"})

    def _send(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def foreign() -> Iterator[str]:
    SearchR1Shaped.requests = []
    SearchR1Shaped.fail_next = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), SearchR1Shaped)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_client_against_a_search_r1_shaped_server(foreign: str):
    with RemoteRetriever(
        foreign, protocol="search-r1", max_queries_per_request=2, backoff_s=0.001
    ) as remote:
        assert remote.wait_until_ready(5)["status"] == "ready"  # it has no /health
        results = remote.search(QUERIES, 2)
    assert [len(row) for row in results] == [2, 2, 2]
    top = results[0][0]
    assert (top.document.title, top.document.text) == PASSAGES[0]
    assert top.id == document_id(*PASSAGES[0])
    assert top.score == 3.0  # "capital", "of", "france"
    assert results[1][0].document.title == "Tiber"
    assert [r["queries"] for r in SearchR1Shaped.requests] == [QUERIES[:2], QUERIES[2:]]
    assert all(r["topk"] == 2 and r["return_scores"] is True for r in SearchR1Shaped.requests)


def test_client_retries_a_search_r1_server_and_then_gives_up(foreign: str):
    SearchR1Shaped.fail_next = [503]
    with RemoteRetriever(foreign, protocol="search-r1", backoff_s=0.001) as remote:
        assert remote.search(["capital Spain"], 1)[0][0].document.title == "Madrid"
        assert len(SearchR1Shaped.requests) == 2
        SearchR1Shaped.fail_next = [500, 500, 500]
        with (
            RemoteRetriever(foreign, protocol="search-r1", max_retries=2, backoff_s=0.001) as flaky,
            pytest.raises(RetrievalError, match=r"after 3 attempt\(s\): HTTP 500"),
        ):
            flaky.search(["capital"], 1)
        SearchR1Shaped.fail_next = [422]
        with pytest.raises(ValueError, match="rejected the request"):
            remote.search(["capital"], 1)


def test_env_episode_through_a_search_r1_server(foreign: str, corpus: Corpus):
    examples = load_examples("hotpotqa", limit=1)
    env = RAGEnv(
        "custom",
        examples=examples,
        corpus=corpus,
        retriever="remote",
        retriever_options={"url": foreign, "protocol": "search-r1", "backoff_s": 0.001},
        k=2,
    )
    try:
        env.reset(seed=0)
        _, _, terminated, truncated, info = env.step("Search: river through Rome")
        assert not terminated and not truncated
        assert "retrieval_error" not in info or not info["retrieval_error"]
        retrieved = info["retrieved"]
        assert len(retrieved) == 2
        first = retrieved[0]
        title = first.title if isinstance(first, Document) else first["title"]
        assert title == "Tiber"
        assert SearchR1Shaped.requests[-1]["topk"] == 2
        _, _, terminated, _, info = env.step("Answer: Rome")
        assert terminated
    finally:
        env.close()
        env.retriever.close()  # type: ignore[attr-defined]
