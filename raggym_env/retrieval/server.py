"""An HTTP retrieval server that shares one index between many rollout workers.

``POST /search`` answers ``{"queries": [...], "k": int}`` with ranked documents; concurrent
requests are micro-batched into one ``Retriever.search`` call. ``POST /retrieve`` speaks
Search-R1's protocol (``{"queries": [...], "topk": int, "return_scores": bool}`` answered
with ``{"result": [...]}``, documents carrying FlashRAG ``contents``; see
:mod:`raggym_env.retrieval.searchr1`), so Search-R1, veRL's search tool and GEM can use
the same server; its requests share the batcher and the limits below. ``GET /health`` says whether
the index has loaded (it loads in a background thread at startup) and reports the limits
below and ``index_id`` (see :func:`index_identity`; replicas of one index report the
same); ``GET /metrics`` serves Prometheus text. Needs the ``serve`` extra:
``pip install 'raggym[serve]'``.

Request bodies are untrusted, so every ``/search`` and ``/retrieve`` request is bounded (defaults of
:func:`create_app`, all configurable) and a violation is a 4xx with a JSON
``{"error": ...}`` naming what was wrong and the limit, never a 500 or a hang:

- body at most ``max_body_bytes`` (4 MiB), by ``Content-Length`` and as it streams: 413;
- the whole body must arrive within ``body_timeout_s`` (10 s) of the request's headers:
  408 (the connection is then closed);
- JSON: UTF-8, nested at most 8 levels deep (checked by a linear scan before parsing),
  numbers at most 32 characters, no ``NaN``/``Infinity``: 400;
- ``k`` (``topk`` for ``/retrieve``, default ``retrieve_topk``) an integer in
  ``1..max_k`` (1000), other fields of the right type: 422; at most
  ``max_queries_per_request`` (256) queries of at most ``max_query_chars`` (2000)
  characters each: 413;
- at most ``max_results_per_request`` (4096) results, ``len(queries) * k``, which bounds
  the reply (about 40 MB with 10 kB documents): 413.

A client that hangs up mid-body is logged as one debug line and counted as status 499 in
``raggym_requests``. Idle keep-alive connections close after ``timeout_keep_alive_s``
(5 s, uvicorn's ``timeout_keep_alive``); uvicorn itself bounds request headers to 16 kB.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import math
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from raggym_env.availability import require
from raggym_env.retrieval.base import Retriever
from raggym_env.retrieval.searchr1 import (
    DEFAULT_TOPK,
    ProtocolError,
    build_retrieve_response,
    parse_retrieve_request,
)
from raggym_env.types import ScoredDocument

if TYPE_CHECKING:
    import uvicorn
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import Metric
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

__all__ = ["BackgroundServer", "create_app", "index_identity", "run_server"]

logger = logging.getLogger(__name__)

MAX_JSON_DEPTH = 8
"""Deepest nesting of arrays and objects accepted in a request body."""
MAX_NUMBER_CHARS = 32
"""Longest number literal accepted in a request body, in characters."""

# A JSON string, closing quote optional: the match never fails, so one pass is linear.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")

RetrieverSource = Callable[[], Retriever] | Retriever


def _require_serve_deps() -> None:
    """Fail early, naming the ``serve`` extra, when any of the server's packages is missing."""
    for package in ("starlette", "uvicorn", "prometheus_client"):
        require(package, feature="the retrieval server")


class _BadRequest(Exception):
    """A request the client must fix; carries the HTTP status and a message."""

    def __init__(self, status: int, message: str, *, close: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.close = close


class _ClientGone(Exception):
    """The client hung up before its request body was complete."""


@dataclass
class _Pending:
    """One queued /search request waiting for its share of a batch."""

    queries: list[str]
    k: int
    future: asyncio.Future[list[list[ScoredDocument]]]


@dataclass
class _State:
    """Mutable server state shared by the handlers, the loader thread and the batcher."""

    retriever: Retriever | None = None
    load_error: str | None = None
    load_seconds: float | None = None
    documents: int | None = None
    index_id: str | None = None
    started_at: float = field(default_factory=time.monotonic)
    queue: asyncio.Queue[_Pending] | None = None


def _documents_of(retriever: Retriever) -> int | None:
    corpus = getattr(retriever, "corpus", None)
    try:
        return len(corpus) if corpus is not None else None
    except TypeError:
        return None


def index_identity(retriever: Retriever) -> str | None:
    """A hash naming what ``retriever`` serves, equal across replicas of the same index.

    The retriever's ``index_hash`` (BM25, dense: corpus and settings) when it has one, else
    its class name with its corpus's ``content_hash``; ``None`` when neither is known (then
    clients cannot tell replicas apart and do not try).
    """
    index_hash = getattr(retriever, "index_hash", None)
    if isinstance(index_hash, str):
        content: dict[str, str] = {"index_hash": index_hash}
    else:
        corpus = getattr(retriever, "corpus", None)
        corpus_hash = getattr(corpus, "content_hash", None) if corpus is not None else None
        if not isinstance(corpus_hash, str):
            return None
        content = {"retriever": type(retriever).__name__, "corpus_hash": corpus_hash}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def _retriever_stats(retriever: Retriever | None) -> dict[str, float]:
    """Numeric entries of ``retriever.stats``, e.g. a ``CachedRetriever``'s hits and misses.

    ``stats`` may be a mapping, a dataclass or plain object, or a method returning one.
    """
    stats = getattr(retriever, "stats", None) if retriever is not None else None
    if callable(stats):
        stats = stats()
    if stats is None:
        return {}
    items: Iterable[tuple[Any, Any]]
    if isinstance(stats, Mapping):
        items = stats.items()
    elif dataclasses.is_dataclass(stats):
        items = ((f.name, getattr(stats, f.name)) for f in dataclasses.fields(stats))
    elif hasattr(stats, "__dict__"):
        items = vars(stats).items()
    else:
        return {}
    return {
        str(name): float(value)
        for name, value in items
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    }


def create_app(
    retriever_factory: RetrieverSource,
    *,
    max_batch: int = 64,
    max_wait_ms: float = 5,
    max_queries_per_request: int = 256,
    max_query_chars: int = 2000,
    max_k: int = 1000,
    max_results_per_request: int = 4096,
    max_body_bytes: int = 4 * 1024 * 1024,
    body_timeout_s: float = 10.0,
    retrieve_topk: int = DEFAULT_TOPK,
) -> Starlette:
    """Build the ASGI app serving ``retriever_factory()`` (or a ready retriever).

    Args:
        retriever_factory: a retriever, or a zero-argument callable building one; it runs
            in a background thread at startup while ``/health`` answers 503 ``loading``.
        max_batch: most queries gathered into one ``search`` call (a larger request is
            still served whole, alone).
        max_wait_ms: how long the batcher waits for more requests after the first one.
        max_queries_per_request: most queries one request may carry.
        max_query_chars: longest accepted query, in characters.
        max_k: largest accepted ``k``.
        max_results_per_request: most ``len(queries) * k`` per request (bounds the reply);
            at least ``max_k``.
        max_body_bytes: largest accepted request body, in bytes.
        body_timeout_s: how long a client may take to send its whole body after the
            headers; a slower one gets 408 and its connection is closed.
        retrieve_topk: ``topk`` of a ``/retrieve`` request that leaves it out (Search-R1's
            default is 3); at most ``max_k``.

    Raises:
        MissingDependencyError: if the ``serve`` extra is not installed (an ``ImportError``).
        ValueError: if a limit is not positive, ``max_results_per_request < max_k`` or
            ``retrieve_topk > max_k``.
    """
    _require_serve_deps()
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    for name, value in {
        "max_batch": max_batch,
        "max_queries_per_request": max_queries_per_request,
        "max_query_chars": max_query_chars,
        "max_k": max_k,
        "max_results_per_request": max_results_per_request,
        "max_body_bytes": max_body_bytes,
        "retrieve_topk": retrieve_topk,
    }.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if max_results_per_request < max_k:
        raise ValueError(
            f"max_results_per_request ({max_results_per_request}) must be >= max_k ({max_k})"
        )
    if retrieve_topk > max_k:
        raise ValueError(f"retrieve_topk ({retrieve_topk}) must be <= max_k ({max_k})")
    if (
        isinstance(body_timeout_s, bool)
        or not isinstance(body_timeout_s, (int, float))
        or not math.isfinite(body_timeout_s)
        or body_timeout_s <= 0
    ):
        raise ValueError(f"body_timeout_s must be a finite number > 0, got {body_timeout_s!r}")
    if (
        not isinstance(max_wait_ms, (int, float))
        or not math.isfinite(max_wait_ms)
        or max_wait_ms < 0
    ):
        raise ValueError(f"max_wait_ms must be a finite number >= 0, got {max_wait_ms!r}")
    if isinstance(retriever_factory, Retriever):
        ready_retriever = retriever_factory

        def factory() -> Retriever:
            return ready_retriever

    elif callable(retriever_factory):
        factory = retriever_factory
    else:
        raise TypeError(
            "retriever_factory must be a Retriever or a callable returning one, "
            f"got {type(retriever_factory).__name__}"
        )

    state = _State()
    registry = CollectorRegistry()
    metrics = _Metrics(registry, state)
    limits = {
        "max_batch": max_batch,
        "max_wait_ms": max_wait_ms,
        "max_queries_per_request": max_queries_per_request,
        "max_query_chars": max_query_chars,
        "max_k": max_k,
        "max_results_per_request": max_results_per_request,
        "max_body_bytes": max_body_bytes,
        "body_timeout_s": body_timeout_s,
        "retrieve_topk": retrieve_topk,
    }

    def load() -> None:
        logger.info("loading index...")
        start = time.perf_counter()
        try:
            retriever = factory()
            if not isinstance(retriever, Retriever):
                raise TypeError(
                    f"the retriever factory returned {type(retriever).__name__}, "
                    "which has no search(queries, k) method"
                )
        except Exception as exc:  # any loader failure is reported by /health, not a crash
            state.load_error = f"{type(exc).__name__}: {exc}"
            logger.exception("loading the index failed")
            return
        state.load_seconds = time.perf_counter() - start
        state.documents = _documents_of(retriever)
        try:
            state.index_id = index_identity(retriever)
        except Exception:  # an odd corpus must not stop the server
            logger.exception("could not compute the index identity")
        state.retriever = retriever
        docs = "?" if state.documents is None else f"{state.documents:,}"
        logger.info("loaded %s documents in %.2f s", docs, state.load_seconds)

    async def batcher(queue: asyncio.Queue[_Pending]) -> None:
        wait_s = max_wait_ms / 1000
        loop = asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            size = len(batch[0].queries)
            deadline = loop.time() + wait_s
            while size < max_batch:
                if not queue.empty():
                    item = queue.get_nowait()
                else:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(queue.get(), remaining)
                    except asyncio.TimeoutError:
                        break
                if size + len(item.queries) > max_batch:
                    await _run_batch(batch)
                    batch, size = [item], len(item.queries)
                    deadline = loop.time() + wait_s
                    continue
                batch.append(item)
                size += len(item.queries)
            await _run_batch(batch)

    async def _run_batch(batch: list[_Pending]) -> None:
        live = [item for item in batch if not item.future.done()]
        if not live:
            return
        retriever = state.retriever
        if retriever is None:  # unreachable: requests are refused until loaded
            raise RuntimeError("search before the index loaded")
        queries = [q for item in live for q in item.queries]
        k = max(item.k for item in live)
        metrics.batch_queries.observe(len(queries))
        try:
            results = await asyncio.to_thread(retriever.search, queries, k)
            if len(results) != len(queries):
                raise RuntimeError(
                    f"retriever returned {len(results)} result lists for {len(queries)} queries"
                )
        except Exception as exc:  # noqa: BLE001 - a retriever failure becomes a 500, not a dead server
            for item in live:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        offset = 0
        for item in live:
            share = [list(r[: item.k]) for r in results[offset : offset + len(item.queries)]]
            offset += len(item.queries)
            if not item.future.done():
                item.future.set_result(share)

    def respond(
        endpoint: str, start: float, status: int, body: Any, *, close: bool = False
    ) -> Response:
        metrics.requests.labels(endpoint=endpoint, status=str(status)).inc()
        metrics.latency.labels(endpoint=endpoint).observe(time.perf_counter() - start)
        headers = {"Connection": "close"} if close else None
        return JSONResponse(body, status_code=status, headers=headers)

    async def answer(
        endpoint: str, start: float, queries: list[str], k: int
    ) -> list[list[ScoredDocument]] | Response:
        """Queue ``queries`` for the batcher; their results, or the error response."""
        if state.retriever is None or state.queue is None:
            status = "failed" if state.load_error else "loading"
            message = state.load_error or "the index is still loading; retry shortly"
            return respond(endpoint, start, 503, {"error": message, "status": status})
        metrics.queries.inc(len(queries))
        if not queries:
            return []
        future: asyncio.Future[list[list[ScoredDocument]]] = (
            asyncio.get_running_loop().create_future()
        )
        await state.queue.put(_Pending(queries, k, future))
        try:
            return await future
        except Exception as exc:  # noqa: BLE001 - report any retriever error as a 500 and keep serving
            logger.warning("%s failed: %s: %s", endpoint, type(exc).__name__, exc)
            return respond(endpoint, start, 500, {"error": f"{type(exc).__name__}: {exc}"})

    async def search(request: Request) -> Response:
        start = time.perf_counter()
        try:
            raw = await _read_body(request, max_body_bytes, body_timeout_s)
            queries, k = _parse_search(
                raw, max_queries_per_request, max_query_chars, max_k, max_results_per_request
            )
        except _BadRequest as exc:
            return respond("search", start, exc.status, {"error": exc.message}, close=exc.close)
        except _ClientGone as exc:
            logger.debug("client %s: %s", _peer(request), exc)
            return respond("search", start, 499, {"error": str(exc)}, close=True)
        results = await answer("search", start, queries, k)
        if not isinstance(results, list):
            return results
        body = {
            "results": [
                [
                    {
                        "id": r.document.id,
                        "title": r.document.title,
                        "text": r.document.text,
                        "score": float(r.score),
                    }
                    for r in per_query
                ]
                for per_query in results
            ]
        }
        return respond("search", start, 200, body)

    async def retrieve(request: Request) -> Response:
        start = time.perf_counter()
        try:
            raw = await _read_body(request, max_body_bytes, body_timeout_s)
            try:
                parsed = parse_retrieve_request(
                    _loads(raw),
                    default_topk=retrieve_topk,
                    max_queries=max_queries_per_request,
                    max_query_chars=max_query_chars,
                    max_topk=max_k,
                    max_results=max_results_per_request,
                )
            except ProtocolError as exc:
                raise _BadRequest(exc.status, str(exc)) from None
        except _BadRequest as exc:
            return respond("retrieve", start, exc.status, {"error": exc.message}, close=exc.close)
        except _ClientGone as exc:
            logger.debug("client %s: %s", _peer(request), exc)
            return respond("retrieve", start, 499, {"error": str(exc)}, close=True)
        results = await answer("retrieve", start, parsed.queries, parsed.topk)
        if not isinstance(results, list):
            return results
        body = build_retrieve_response(results, return_scores=parsed.return_scores)
        return respond("retrieve", start, 200, body)

    async def health(request: Request) -> Response:
        start = time.perf_counter()
        info: dict[str, Any] = {
            "uptime_s": round(time.monotonic() - state.started_at, 3),
            **limits,
        }
        if state.retriever is not None:
            body = {
                "status": "ready",
                "documents": state.documents,
                "retriever": type(state.retriever).__name__,
                "index_id": state.index_id,
                "load_s": state.load_seconds,
                **info,
            }
            return respond("health", start, 200, body)
        if state.load_error is not None:
            return respond("health", start, 503, {"status": "failed", "error": state.load_error})
        return respond("health", start, 503, {"status": "loading", **info})

    async def metrics_endpoint(request: Request) -> Response:
        metrics.requests.labels(endpoint="metrics", status="200").inc()
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state.queue = asyncio.Queue()
        worker = asyncio.create_task(batcher(state.queue))
        threading.Thread(target=load, name="raggym-index-loader", daemon=True).start()
        try:
            yield
        finally:
            worker.cancel()
            with suppress(asyncio.CancelledError):
                await worker
            while not state.queue.empty():
                pending = state.queue.get_nowait()
                if not pending.future.done():
                    pending.future.set_exception(RuntimeError("the server is shutting down"))

    app = Starlette(
        routes=[
            Route("/search", search, methods=["POST"]),
            Route("/retrieve", retrieve, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.raggym = state
    app.state.registry = registry
    return app


class _Metrics:
    """The Prometheus series of one app, in its own registry (so apps do not collide)."""

    def __init__(self, registry: CollectorRegistry, state: _State) -> None:
        from prometheus_client import Counter, Histogram

        self.requests = Counter(
            "raggym_requests",
            "HTTP requests by endpoint and status code.",
            ["endpoint", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "raggym_request_seconds",
            "Request latency in seconds by endpoint.",
            ["endpoint"],
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.batch_queries = Histogram(
            "raggym_search_batch_queries",
            "Queries per retriever search call (micro-batch size).",
            registry=registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
        )
        self.queries = Counter(
            "raggym_queries", "Queries received by /search and /retrieve.", registry=registry
        )
        registry.register(_StatsCollector(state))


class _StatsCollector:
    """Exports the retriever's numeric ``stats`` (e.g. cache hits) as gauges."""

    def __init__(self, state: _State) -> None:
        self._state = state

    def collect(self) -> Iterator[Metric]:
        """Yield one gauge family with a sample per numeric stat."""
        from prometheus_client.core import GaugeMetricFamily

        stats = _retriever_stats(self._state.retriever)
        family = GaugeMetricFamily(
            "raggym_retriever_stat",
            "Numeric retriever statistics (e.g. cache hits).",
            labels=["name"],
        )
        for name, value in sorted(stats.items()):
            family.add_metric([name], value)
        ready = GaugeMetricFamily("raggym_index_ready", "1 once the index has loaded, else 0.")
        ready.add_metric([], 1.0 if self._state.retriever is not None else 0.0)
        yield ready
        if stats:
            yield family

    def describe(self) -> list[Metric]:
        """Nothing to describe up front (the stats are only known after loading)."""
        return []


def _peer(request: Request) -> str:
    client = request.client
    return f"{client.host}:{client.port}" if client is not None else "?"


async def _read_body(request: Request, max_bytes: int, timeout_s: float) -> bytes:
    """The request body, at most ``max_bytes``, arrived within ``timeout_s``.

    Raises:
        _BadRequest: 413 for a body over ``max_bytes`` (announced or streamed), 408 when it
            has not all arrived in time.
        _ClientGone: the client disconnected before the end of the body.
    """
    declared = request.headers.get("content-length", "")
    if (
        declared.isascii()
        and declared.isdigit()
        and (len(declared) > 18 or int(declared) > max_bytes)
    ):
        raise _BadRequest(
            413,
            f"the body is too large: Content-Length {declared[:40]} > max_body_bytes={max_bytes}",
            close=True,
        )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    chunks: list[bytes] = []
    size = 0
    while True:
        left = deadline - loop.time()
        try:
            if left <= 0:
                raise asyncio.TimeoutError
            message = await asyncio.wait_for(request.receive(), left)
        except asyncio.TimeoutError:
            raise _BadRequest(
                408,
                f"the body did not arrive within body_timeout_s={timeout_s} s "
                f"({size} bytes received)",
                close=True,
            ) from None
        if message["type"] == "http.disconnect":
            raise _ClientGone(f"disconnected mid-body after {size} bytes")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise _BadRequest(
                413, f"the body is too large: over max_body_bytes={max_bytes}", close=True
            )
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _json_depth(text: str) -> int:
    """How deep arrays and objects nest in ``text`` (outside strings); linear time."""
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text)).encode("ascii")
    if not brackets:
        return 0
    codes = np.frombuffer(brackets, dtype=np.uint8)
    steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1).astype(np.int64)
    return int(np.cumsum(steps).max())


def _number(text: str) -> float:
    """``parse_int``/``parse_float`` hook refusing number literals over MAX_NUMBER_CHARS."""
    if len(text) > MAX_NUMBER_CHARS:
        raise _BadRequest(
            400,
            f"a number with {len(text)} characters; numbers may have at most "
            f"{MAX_NUMBER_CHARS} (k is a small integer)",
        )
    return int(text) if text.lstrip("-").isdigit() else float(text)


def _no_constant(name: str) -> None:
    """``parse_constant`` hook: ``NaN`` and ``Infinity`` are not JSON."""
    raise _BadRequest(400, f"{name} is not valid JSON")


def _loads(raw: bytes) -> Any:
    """Parse an untrusted JSON body within MAX_JSON_DEPTH and MAX_NUMBER_CHARS."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _BadRequest(400, f"malformed JSON body: not UTF-8 ({exc})") from None
    if _json_depth(text) > MAX_JSON_DEPTH:
        raise _BadRequest(
            400, f"malformed JSON body: nested over MAX_JSON_DEPTH={MAX_JSON_DEPTH} levels"
        )
    try:
        return json.loads(text, parse_int=_number, parse_float=_number, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise _BadRequest(400, f"malformed JSON body: {exc}") from None
    except (RecursionError, ValueError) as exc:  # defence in depth; the checks above come first
        raise _BadRequest(400, f"malformed JSON body: {type(exc).__name__}") from None


def _parse_search(
    raw: bytes, max_queries: int, max_query_chars: int, max_k: int, max_results: int
) -> tuple[list[str], int]:
    """Validate a /search body; raise :class:`_BadRequest` with a client-facing message."""
    body = _loads(raw)
    if not isinstance(body, dict):
        raise _BadRequest(400, f"the body must be a JSON object, got {type(body).__name__}")
    if "queries" not in body:
        raise _BadRequest(422, "missing field 'queries' (a list of strings)")
    if "k" not in body:
        raise _BadRequest(422, "missing field 'k' (an integer >= 1)")
    queries, k = body["queries"], body["k"]
    if not isinstance(queries, list):
        raise _BadRequest(422, f"'queries' must be a list of strings, got {type(queries).__name__}")
    if len(queries) > max_queries:
        raise _BadRequest(
            413, f"too many queries: {len(queries)} > max_queries_per_request={max_queries}"
        )
    for i, query in enumerate(queries):
        if not isinstance(query, str):
            raise _BadRequest(422, f"queries[{i}] must be a string, got {type(query).__name__}")
        if not query.strip():
            raise _BadRequest(422, f"queries[{i}] is empty; expected a non-blank query")
        if len(query) > max_query_chars:
            raise _BadRequest(
                413, f"queries[{i}] is too long: {len(query)} > max_query_chars={max_query_chars}"
            )
    if isinstance(k, bool) or not isinstance(k, int):
        raise _BadRequest(422, f"'k' must be an integer, got {type(k).__name__}")
    if not 1 <= k <= max_k:
        raise _BadRequest(422, f"'k' must be between 1 and max_k={max_k}, got {k}")
    if len(queries) * k > max_results:
        raise _BadRequest(
            413,
            f"too many results: {len(queries)} queries x k={k} = {len(queries) * k} > "
            f"max_results_per_request={max_results}; send fewer queries or a smaller k",
        )
    return queries, k


def run_server(
    retriever_factory: RetrieverSource,
    host: str = "127.0.0.1",
    port: int = 8001,
    *,
    log_level: str = "info",
    timeout_keep_alive_s: float = 5.0,
    **options: Any,
) -> None:
    """Serve ``retriever_factory`` with uvicorn until interrupted.

    Args:
        retriever_factory: see :func:`create_app`.
        host: interface to bind (loopback by default; the server has no authentication).
        port: TCP port.
        log_level: uvicorn's log level.
        timeout_keep_alive_s: an idle keep-alive connection is closed after this long.
        **options: limits passed to :func:`create_app` (``max_batch``, ``max_k``...).
    """
    _require_serve_deps()
    import uvicorn

    app = create_app(retriever_factory, **options)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        timeout_keep_alive=max(1, math.ceil(timeout_keep_alive_s)),
    )


class BackgroundServer:
    """Runs an app with uvicorn in a daemon thread on an (ephemeral) loopback port.

    Meant for tests, notebooks and benchmarks: ``with BackgroundServer(app) as server:``
    then talk to ``server.url``; leaving the block shuts the server down.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        require("uvicorn", feature="serving an app in the background")
        import uvicorn

        # IPPROTO_TCP (not 0) lets asyncio set TCP_NODELAY on accepted connections; without
        # it a reply on a kept-alive connection can wait ~40 ms for the peer's delayed ACK.
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.host, self.port = host, int(self._sock.getsockname()[1])
        config = uvicorn.Config(
            app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2
        )
        self._server: uvicorn.Server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> BackgroundServer:
        """Start serving; return once uvicorn accepts connections.

        Raises:
            TimeoutError: if it has not started within ``timeout_s``.
        """
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                self.stop()
                raise TimeoutError(f"the server at {self.url} did not start in {timeout_s} s")
            time.sleep(0.01)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask uvicorn to exit and wait (bounded) for its thread."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        self._sock.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
