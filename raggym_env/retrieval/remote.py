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

Replicas: ``url`` may be a list of servers serving the same index (or one string of
comma-separated URLs, as ``--option url=A,B`` gives). Each request goes to the healthy
replica with the fewest requests in flight (ties in turn); one that fails (connection
error, timeout, 5xx, malformed reply) is retried at once on another replica, and the
failing replica is marked down for ``cooldown_s``, then probed on ``/health`` before it is
used again. A search fails only when every replica has failed it (the error names each
one, credentials masked). Before a replica is first used its ``/health`` must report the
same ``index_id`` as the others (see :func:`raggym_env.retrieval.server.index_identity`);
mixed replicas raise :class:`~raggym_env.retrieval.base.IndexMismatchError`.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from raggym_env.availability import require
from raggym_env.redaction import redact_text
from raggym_env.retrieval.base import IndexMismatchError, RetrievalError, check_search_args
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

    def __init__(self, message: str, *, overload: bool = False) -> None:
        super().__init__(message)
        self.overload = overload  # a 429: busy, not broken (the replica is not marked down)


_UNSET: Any = object()


@dataclass(eq=False)
class _Replica:
    """One server behind the client and what the client knows of it (guarded by a lock)."""

    number: int
    url: str
    label: str  # the URL with credentials masked, for messages
    client: httpx.Client
    down_until: float = 0.0  # time.monotonic() before which it is skipped
    needs_probe: bool = False  # /health must answer (and match) before the next use
    in_flight: int = 0
    requests: int = 0
    failures: int = 0
    last_error: str | None = None
    index_id: str | None = None


def parse_urls(url: str | Sequence[str]) -> tuple[str, ...]:
    """The replica URLs of ``url``: one URL, comma-separated URLs, or a list of them.

    Raises:
        ValueError: no URL, one that is not http(s), or the same URL twice.
    """
    if isinstance(url, str):
        items: list[object] = [part.strip() for part in url.split(",") if part.strip()]
    elif isinstance(url, Sequence):
        items = list(url)
    else:
        raise ValueError(f"url must be an http(s) URL or a list of them, got {url!r}")
    if not items:
        raise ValueError("url must name at least one http(s) URL")
    urls: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item.startswith(("http://", "https://")):
            shown = redact_text(item) if isinstance(item, str) else repr(item)
            raise ValueError(f"url must be an http(s) URL, got {shown!r}")
        clean = item.strip().rstrip("/")
        if clean in urls:
            raise ValueError(f"replica URL {redact_text(clean)!r} is listed twice")
        urls.append(clean)
    return tuple(urls)


class RemoteRetriever:
    """HTTP client of the retrieval server, implementing the ``Retriever`` protocol.

    One ``httpx.Client`` connection pool per replica is shared by every thread using the
    instance.

    Args:
        url: the server's base URL, e.g. ``"http://127.0.0.1:8001"``, or several replicas
            of it (a list, or one comma-separated string; see the module docstring). Proxy
            environment variables are not used: the server is meant to be on the local
            network.
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
        cooldown_s: with several replicas, how long a failing one is skipped before it
            is probed again.
    """

    def __init__(
        self,
        url: str | Sequence[str],
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
        cooldown_s: float = 5.0,
    ) -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
        urls = parse_urls(url)
        if not (isinstance(cooldown_s, (int, float)) and math.isfinite(cooldown_s)) or (
            cooldown_s < 0
        ):
            raise ValueError(f"cooldown_s must be a finite number >= 0, got {cooldown_s!r}")
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

        self.urls = urls
        self.url = urls[0]
        self.cooldown_s = float(cooldown_s)
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
        self._lock = threading.Lock()
        self._turn = 0  # round-robin position among equally loaded replicas
        self._index_id: Any = _UNSET  # what the first verified replica serves
        self._replicas = [
            _Replica(
                number=i,
                url=u,
                label=redact_text(u),
                client=httpx.Client(
                    base_url=u,
                    timeout=httpx.Timeout(self.timeout_s),
                    transport=DeadlineTransport(max_connections=pool_size),
                    trust_env=False,
                ),
            )
            for i, u in enumerate(urls)
        ]
        if len(self._replicas) > 1:
            for replica in self._replicas:
                replica.needs_probe = True
        self._client = self._replicas[0].client

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

    # ------------------------------------------------------------------ replicas
    @property
    def replicated(self) -> bool:
        """Whether there are several replicas (then they are health-checked and compared)."""
        return len(self._replicas) > 1

    def replica_stats(self) -> list[dict[str, Any]]:
        """Per replica: URL (credentials masked), up or not, requests, failures, last error."""
        now = time.monotonic()
        with self._lock:
            return [
                {
                    "url": r.label,
                    "up": r.down_until <= now and not r.needs_probe,
                    "in_flight": r.in_flight,
                    "requests": r.requests,
                    "failures": r.failures,
                    "last_error": r.last_error,
                    "index_id": r.index_id,
                }
                for r in self._replicas
            ]

    def _acquire(self, tried: set[int]) -> _Replica:
        """A replica for the next attempt, its in-flight count taken.

        The least loaded replica that is up and not yet tried by this request, ties taken
        in turn; when none is left, the one back soonest (the request then retries a
        replica that failed, after a backoff). A replica never found serving the same index
        as the others is never chosen.
        """
        now = time.monotonic()
        with self._lock:
            usable = [r for r in self._replicas if not math.isinf(r.down_until)]
            if not usable:
                raise IndexMismatchError(self._mismatch_message())
            ready = [r for r in usable if r.number not in tried and r.down_until <= now]
            if ready:
                n = len(self._replicas)
                least = min(r.in_flight for r in ready)
                pick = min(
                    (r for r in ready if r.in_flight == least),
                    key=lambda r: (r.number - self._turn) % n,
                )
                self._turn = (pick.number + 1) % n
            else:
                fresh = [r for r in usable if r.number not in tried] or usable
                pick = min(fresh, key=lambda r: (r.down_until, r.in_flight))
            pick.in_flight += 1
            return pick

    def _probe(self, replica: _Replica) -> str | None:
        """Check ``replica``'s ``/health``: ready and serving the same index.

        Returns ``None`` when it is, else what is wrong (the replica is then down for
        ``cooldown_s``).

        Raises:
            IndexMismatchError: it serves another index than the replicas already checked.
        """
        import httpx

        body: dict[str, Any] | None = None
        try:
            body = self._health_of(replica)
            error = None
        except (httpx.HTTPError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            error = f"health check: {type(exc).__name__}: {exc or 'failed'}"
        with self._lock:
            if body is not None and body.get("status") != "ready":
                error = f"health check: status {body.get('status')!r}"
            if error is not None or body is None:
                replica.last_error = error
                replica.down_until = time.monotonic() + self.cooldown_s
                return error or "health check failed"
            index_id = body.get("index_id")
            replica.index_id = index_id if isinstance(index_id, str) else None
            if self._index_id is _UNSET:
                self._index_id = replica.index_id
            elif replica.index_id != self._index_id:
                replica.down_until = math.inf  # never used again
                replica.last_error = f"serves index {replica.index_id}"
                raise IndexMismatchError(self._mismatch_message())
            replica.needs_probe = False
            replica.down_until = 0.0
            return None

    def _mismatch_message(self) -> str:
        served = ", ".join(f"{r.label} -> {r.index_id}" for r in self._replicas)
        return (
            "the retrieval replicas do not serve the same index (index_id by replica: "
            f"{served}); point the client at replicas of one index"
        )

    def _release(self, replica: _Replica, error: str | None, *, down: bool = True) -> None:
        """Give back ``replica``'s in-flight slot, recording the attempt's outcome."""
        with self._lock:
            replica.in_flight -= 1
            replica.requests += 1
            if error is None:
                if not math.isinf(replica.down_until):
                    replica.down_until = 0.0
                    replica.needs_probe = False
                return
            replica.failures += 1
            replica.last_error = error
            if down and self.replicated and not math.isinf(replica.down_until):
                replica.down_until = time.monotonic() + self.cooldown_s
                replica.needs_probe = True

    # ------------------------------------------------------------------ helpers
    def _post_search(self, queries: list[str], k: int) -> list[list[ScoredDocument]]:
        import httpx

        from raggym_env.retrieval.deadline import request_deadline

        if self.replicated and self._index_id is _UNSET:
            self._verify_all()
        attempts = max(self.max_retries + 1, len(self._replicas))
        errors: dict[str, str] = {}
        tried: set[int] = set()
        retries = 0
        for _ in range(attempts):
            replica = self._acquire(tried)
            if replica.number in tried:  # every replica failed once: back off first
                time.sleep(self._delay(retries))
                retries += 1
            tried.add(replica.number)
            if replica.needs_probe:
                try:
                    problem = self._probe(replica)
                except BaseException:
                    self._release(replica, None)
                    raise
                if problem is not None:
                    self._release(replica, problem)
                    errors[replica.label] = problem
                    continue
            sent = time.monotonic()
            try:
                with request_deadline(self.deadline_s):
                    if self.protocol == "search-r1":
                        body = build_retrieve_request(queries, k, return_scores=True)
                        response = replica.client.post("/retrieve", json=body)
                    else:
                        body = {"queries": queries, "k": k}
                        response = replica.client.post("/search", json=body)
                parsed = self._parse(response, len(queries), replica.label)
            except httpx.TimeoutException as exc:
                if time.monotonic() - sent >= self.deadline_s * 0.99:
                    error = (
                        f"timed out: no complete reply within deadline_s={self.deadline_s} s "
                        f"({type(exc).__name__})"
                    )
                else:
                    error = f"timed out after {self.timeout_s} s ({type(exc).__name__})"
            except httpx.TransportError as exc:
                error = f"{type(exc).__name__}: {exc or 'connection failed'}"
            except _Retryable as exc:
                self._release(replica, str(exc), down=not exc.overload)
                errors[replica.label] = str(exc)
                continue
            except BaseException:
                self._release(replica, None)
                raise
            else:
                self._release(replica, None)
                return parsed
            self._release(replica, error)
            errors[replica.label] = error
        if not self.replicated:
            raise RetrievalError(
                f"retrieval server {self._replicas[0].label} failed after {attempts} "
                f"attempt(s): {errors[self._replicas[0].label]}"
            )
        detail = "; ".join(f"{label}: {error}" for label, error in errors.items())
        raise RetrievalError(
            f"every retrieval replica failed ({attempts} attempt(s) over "
            f"{len(self._replicas)} replicas): {detail}"
        )

    def _verify_all(self) -> None:
        """Probe every replica not yet checked, so mixed indexes are refused up front."""
        now = time.monotonic()
        for replica in self._replicas:
            if replica.needs_probe and replica.down_until <= now:
                self._probe(replica)

    def _parse(
        self, response: httpx.Response, n_queries: int, where: str
    ) -> list[list[ScoredDocument]]:
        status = response.status_code
        if status == 429 or status >= 500:
            raise _Retryable(f"HTTP {status}: {_message(response)}", overload=status == 429)
        if status == 413:
            raise RetrievalError(
                f"retrieval server {where} refused the request as too large (HTTP 413): "
                f"{_message(response)}"
            )
        if status >= 400:
            raise ValueError(
                f"retrieval server {where} rejected the request (HTTP {status}): "
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
    def _health_of(self, replica: _Replica) -> dict[str, Any]:
        """``replica``'s ``/health`` body (see :meth:`health`)."""
        from raggym_env.retrieval.deadline import request_deadline

        with request_deadline(self.deadline_s):
            response = replica.client.get("/health")
        if self.protocol == "search-r1" and response.status_code in (404, 405):
            return {"status": "ready", "health": "not served"}
        body = response.json()
        return body if isinstance(body, dict) else {"status": "unknown", "body": body}

    def health(self) -> dict[str, Any]:
        """Return the server's ``/health`` body (also when it answers 503 while loading).

        With ``protocol="search-r1"`` a server without ``/health`` (HTTP 404 or 405: it
        answered, so it is up) reads as ``{"status": "ready"}``. With several replicas,
        the first replica's body.

        Raises:
            httpx.HTTPError: if the server cannot be reached (or does not answer within
                ``deadline_s``).
        """
        return self._health_of(self._replicas[0])

    def wait_until_ready(self, timeout_s: float = 60.0, poll_s: float = 0.1) -> dict[str, Any]:
        """Poll ``/health`` until the index has loaded; return the health body.

        Also adopts the server's ``max_queries_per_request`` and ``max_results_per_request``
        (the smallest over replicas). With several replicas every one must become ready
        and serve the same index; the first replica's body is returned.

        Raises:
            RetrievalError: if a server reports its index failed to load.
            IndexMismatchError: if the replicas do not serve the same index.
            TimeoutError: if a server is not ready within ``timeout_s``.
        """
        import httpx

        deadline = time.monotonic() + timeout_s
        bodies: dict[int, dict[str, Any]] = {}
        last: dict[int, str] = {}
        while True:
            for replica in self._replicas:
                if replica.number in bodies:
                    continue
                try:
                    body = self._health_of(replica)
                except (httpx.HTTPError, json.JSONDecodeError) as exc:
                    last[replica.number] = f"{type(exc).__name__}: {exc}"
                    continue
                status = body.get("status")
                if status == "ready":
                    bodies[replica.number] = body
                elif status == "failed":
                    raise RetrievalError(
                        f"retrieval server {replica.label} failed to load: {body.get('error')}"
                    )
                else:
                    last[replica.number] = f"status {status!r}"
            if len(bodies) == len(self._replicas):
                break
            if time.monotonic() >= deadline:
                waiting = [r for r in self._replicas if r.number not in bodies]
                names = ", ".join(f"{r.label} (last: {last.get(r.number)})" for r in waiting)
                raise TimeoutError(f"retrieval server {names} not ready after {timeout_s} s")
            time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))
        if self.replicated:
            for replica in self._replicas:
                self._probe(replica)  # compares index ids; raises on a mismatch
        for key in ("max_queries_per_request", "max_results_per_request"):
            limits = [b.get(key) for b in bodies.values()]
            valid = [v for v in limits if isinstance(v, int) and not isinstance(v, bool) and v > 0]
            if valid:
                setattr(self, key, min(valid))
        return bodies[0]

    def close(self) -> None:
        """Close the connection pools."""
        for replica in self._replicas:
            replica.client.close()

    def __enter__(self) -> RemoteRetriever:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        url = self._replicas[0].label if not self.replicated else [r.label for r in self._replicas]
        return (
            f"RemoteRetriever(url={url!r}, protocol={self.protocol!r}, "
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
