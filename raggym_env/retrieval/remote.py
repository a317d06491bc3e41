"""A :class:`Retriever` that queries a retrieval server over HTTP (``raggym serve-retriever``).

Many rollout workers can share one index this way. Transient failures (connection errors,
timeouts, 429, 5xx, a malformed reply) are retried with exponential backoff and jitter;
when retries run out a :class:`RetrievalError` is raised, which the environment records
in ``info`` instead of crashing the rollout. Each attempt must end within ``deadline_s``
(connect, send and the whole reply), so a server dripping its reply byte by byte counts
as a timeout. A 413 (a query longer than the server's ``max_query_chars``, or more results
than its ``max_results_per_request``) is a :class:`RetrievalError` too, not retried: the
query usually comes from a model, so the environment records it and charges the step.
Any other 4xx reply is a caller bug: ``ValueError``.

``protocol="search-r1"`` talks to any server speaking Search-R1's ``POST /retrieve``
(Search-R1's own retrieval server, or ``raggym serve-retriever``'s ``/retrieve``): queries
go in batches as ``{"queries", "topk", "return_scores": true}``; documents with only
FlashRAG ``contents`` are split into title and text, and missing ids become stable hashes
(see :mod:`raggym_env.retrieval.searchr1`). Deadlines, retries and errors are the same.
"""

from __future__ import annotations

import json
import random
import threading
import time
from typing import TYPE_CHECKING, Any, Literal

from raggym_env.availability import require
from raggym_env.retrieval.base import RetrievalError, check_search_args
from raggym_env.retrieval.searchr1 import (
    ProtocolError,
    build_retrieve_request,
    parse_retrieve_response,
)
from raggym_env.sanitize import scrub_surrogates
from raggym_env.types import Document, ScoredDocument

if TYPE_CHECKING:
    import httpx

__all__ = ["PROTOCOLS", "RemoteRetriever"]

WireProtocol = Literal["raggym", "search-r1"]
PROTOCOLS: tuple[str, ...] = ("raggym", "search-r1")
"""Wire protocols of :class:`RemoteRetriever`: raggym's ``/search``, Search-R1's ``/retrieve``."""


class _Retryable(Exception):
    """A transient failure worth another attempt."""


class RemoteRetriever:
    """HTTP client of the retrieval server, implementing the ``Retriever`` protocol.

    One ``httpx.Client`` connection pool is shared by every thread using the instance.

    Args:
        url: the server's base URL, e.g. ``"http://127.0.0.1:8001"``. Proxy environment
            variables are not used: the server is meant to be on the local network.
        timeout_s: timeout of each network operation (connect, each read, each write,
            pool wait), in seconds.
        deadline_s: overall limit of one attempt (connect + send + every read of the
            reply), in seconds; ``None`` means ``2 * timeout_s`` (a silent server still
            trips the per-read timeout first). Past it the attempt counts as a timeout:
            retried, then a :class:`RetrievalError`.
        max_retries: extra attempts after the first for transient failures.
        backoff_s: base delay; attempt ``n`` waits ``backoff_s * 2**n`` times a jitter
            factor in ``[0.5, 1.5)``, capped at ``max_backoff_s``.
        pool_size: most concurrent connections kept to the server.
        max_queries_per_request: queries per HTTP request; larger batches are split
            (updated from the server's ``/health`` by :meth:`wait_until_ready`).
        max_results_per_request: most ``queries x k`` per HTTP request; larger batches
            are split (also adopted from ``/health``).
        max_backoff_s: cap on one backoff delay.
        seed: seed of the jitter generator (deterministic delays for a given call order).
        protocol: ``"raggym"`` (``POST /search`` of ``raggym serve-retriever``) or
            ``"search-r1"`` (``POST /retrieve`` of a Search-R1-style server; ``/health``
            is optional there).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 10.0,
        deadline_s: float | None = None,
        max_retries: int = 3,
        backoff_s: float = 0.2,
        pool_size: int = 32,
        max_queries_per_request: int = 256,
        max_results_per_request: int = 4096,
        max_backoff_s: float = 5.0,
        seed: int = 0,
        protocol: WireProtocol = "raggym",
    ) -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"url must be an http(s) URL, got {url!r}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        if deadline_s is not None and not deadline_s > 0:
            raise ValueError(f"deadline_s must be > 0 or None, got {deadline_s}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an int >= 0, got {max_retries!r}")
        if backoff_s < 0 or max_backoff_s < 0:
            raise ValueError("backoff_s and max_backoff_s must be >= 0")
        if not isinstance(pool_size, int) or pool_size < 1:
            raise ValueError(f"pool_size must be a positive int, got {pool_size!r}")
        if not isinstance(max_queries_per_request, int) or max_queries_per_request < 1:
            raise ValueError(
                f"max_queries_per_request must be a positive int, got {max_queries_per_request!r}"
            )
        if not isinstance(max_results_per_request, int) or max_results_per_request < 1:
            raise ValueError(
                f"max_results_per_request must be a positive int, got {max_results_per_request!r}"
            )
        httpx = require("httpx", feature="RemoteRetriever")
        from raggym_env.retrieval.deadline import DeadlineTransport

        self.url = url.rstrip("/")
        self.protocol: WireProtocol = protocol
        self.timeout_s = float(timeout_s)
        self.deadline_s = float(deadline_s) if deadline_s is not None else 2 * self.timeout_s
        self.max_retries = max_retries
        self.backoff_s = float(backoff_s)
        self.max_backoff_s = float(max_backoff_s)
        self.pool_size = pool_size
        self.max_queries_per_request = max_queries_per_request
        self.max_results_per_request = max_results_per_request
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._client = httpx.Client(
            base_url=self.url,
            timeout=httpx.Timeout(self.timeout_s),
            transport=DeadlineTransport(max_connections=pool_size),
            trust_env=False,
        )

    # ------------------------------------------------------------------ Retriever protocol
    def search(self, queries: list[str], k: int) -> list[list[ScoredDocument]]:
        """Return the top ``k`` documents per query from the server.

        Raises:
            TypeError: if ``queries`` is not a list of str or ``k`` not an int.
            ValueError: ``k < 1``, or the server rejected the request (HTTP 4xx but 413
                and 429).
            RetrievalError: the server could not answer after every retry, or refused a
                query as too long (HTTP 413).
        """
        queries = [scrub_surrogates(q) for q in check_search_args(queries, k)]  # UTF-8 body
        results: list[list[ScoredDocument]] = []
        step = max(1, min(self.max_queries_per_request, self.max_results_per_request // int(k)))
        for start in range(0, len(queries), step):
            chunk = queries[start : start + step]
            results.extend(self._post_search(chunk, int(k)))
        return results

    # ------------------------------------------------------------------ helpers
    def _post_search(self, queries: list[str], k: int) -> list[list[ScoredDocument]]:
        import httpx

        from raggym_env.retrieval.deadline import request_deadline

        attempts = self.max_retries + 1
        last_error = "no attempt made"
        for attempt in range(attempts):
            if attempt:
                time.sleep(self._delay(attempt - 1))
            sent = time.monotonic()
            try:
                with request_deadline(self.deadline_s):
                    if self.protocol == "search-r1":
                        body = build_retrieve_request(queries, k, return_scores=True)
                        response = self._client.post("/retrieve", json=body)
                    else:
                        body = {"queries": queries, "k": k}
                        response = self._client.post("/search", json=body)
                return self._parse(response, len(queries))
            except httpx.TimeoutException as exc:
                if time.monotonic() - sent >= self.deadline_s * 0.99:
                    last_error = (
                        f"timed out: no complete reply within deadline_s={self.deadline_s} s "
                        f"({type(exc).__name__})"
                    )
                else:
                    last_error = f"timed out after {self.timeout_s} s ({type(exc).__name__})"
            except httpx.TransportError as exc:
                last_error = f"{type(exc).__name__}: {exc or 'connection failed'}"
            except _Retryable as exc:
                last_error = str(exc)
        raise RetrievalError(
            f"retrieval server {self.url} failed after {attempts} attempt(s): {last_error}"
        )

    def _parse(self, response: httpx.Response, n_queries: int) -> list[list[ScoredDocument]]:
        status = response.status_code
        if status == 429 or status >= 500:
            raise _Retryable(f"HTTP {status}: {_message(response)}")
        if status == 413:
            raise RetrievalError(
                f"retrieval server {self.url} refused the request as too large (HTTP 413): "
                f"{_message(response)}"
            )
        if status >= 400:
            raise ValueError(
                f"retrieval server {self.url} rejected the request (HTTP {status}): "
                f"{_message(response)}"
            )
        if status != 200:
            raise _Retryable(f"unexpected HTTP {status}")
        if self.protocol == "search-r1":
            try:
                return parse_retrieve_response(response.json(), n_queries)
            except (json.JSONDecodeError, UnicodeDecodeError, ProtocolError) as exc:
                raise _Retryable(
                    f"malformed response ({type(exc).__name__}: {exc}): {response.text[:200]!r}"
                ) from None
        try:
            body = response.json()
            rows = body["results"]
            if not isinstance(rows, list) or len(rows) != n_queries:
                raise TypeError(f"expected {n_queries} result lists")
            return [
                [
                    ScoredDocument(
                        Document(id=str(d["id"]), title=str(d["title"]), text=str(d["text"])),
                        float(d["score"]),
                    )
                    for d in row
                ]
                for row in rows
            ]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
            raise _Retryable(
                f"malformed response ({type(exc).__name__}: {exc}): {response.text[:200]!r}"
            ) from None

    def _delay(self, retry: int) -> float:
        with self._rng_lock:
            jitter = 0.5 + self._rng.random()
        return float(min(self.max_backoff_s, self.backoff_s * (2**retry) * jitter))

    # ------------------------------------------------------------------ lifecycle
    def health(self) -> dict[str, Any]:
        """Return the server's ``/health`` body (also when it answers 503 while loading).

        With ``protocol="search-r1"`` a server without ``/health`` (HTTP 404 or 405: it
        answered, so it is up) reads as ``{"status": "ready"}``.

        Raises:
            httpx.HTTPError: if the server cannot be reached (or does not answer within
                ``deadline_s``).
        """
        from raggym_env.retrieval.deadline import request_deadline

        with request_deadline(self.deadline_s):
            response = self._client.get("/health")
        if self.protocol == "search-r1" and response.status_code in (404, 405):
            return {"status": "ready", "health": "not served"}
        body = response.json()
        return body if isinstance(body, dict) else {"status": "unknown", "body": body}

    def wait_until_ready(self, timeout_s: float = 60.0, poll_s: float = 0.1) -> dict[str, Any]:
        """Poll ``/health`` until the index has loaded; return the health body.

        Also adopts the server's ``max_queries_per_request`` and ``max_results_per_request``.

        Raises:
            RetrievalError: if the server reports its index failed to load.
            TimeoutError: if it is not ready within ``timeout_s``.
        """
        import httpx

        deadline = time.monotonic() + timeout_s
        last = "no reply"
        while True:
            try:
                body = self.health()
            except (httpx.HTTPError, json.JSONDecodeError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                status = body.get("status")
                if status == "ready":
                    limit = body.get("max_queries_per_request")
                    if isinstance(limit, int) and limit > 0:
                        self.max_queries_per_request = limit
                    results = body.get("max_results_per_request")
                    if isinstance(results, int) and results > 0:
                        self.max_results_per_request = results
                    return body
                if status == "failed":
                    raise RetrievalError(
                        f"retrieval server {self.url} failed to load: {body.get('error')}"
                    )
                last = f"status {status!r}"
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"retrieval server {self.url} not ready after {timeout_s} s (last: {last})"
                )
            time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __enter__(self) -> RemoteRetriever:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"RemoteRetriever(url={self.url!r}, protocol={self.protocol!r}, "
            f"max_retries={self.max_retries})"
        )


def _message(response: httpx.Response) -> str:
    """The server's ``error`` field, or the start of the body."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict) and "error" in body:
        return str(body["error"])
    return json.dumps(body)[:200]
