"""Query embeddings from an OpenAI-compatible ``POST /v1/embeddings`` server (vLLM, TEI...).

A dense index built offline can then be searched without loading the embedding model in
every rollout worker: :class:`RemoteQueryEncoder` sends the queries, in batches of
``batch_size``, as ``{"model": M, "input": [texts], "encoding_format": "float"}`` and reads
``{"data": [{"index": i, "embedding": [...]}, ...]}`` back, in any order of ``index``.
Vectors come out as float32, L2-normalised, shape ``(n, dim)``: what a FAISS
inner-product index built from normalised document embeddings expects.

Transient failures (connection errors, timeouts, 429, 5xx) are retried with exponential
backoff and jitter, then raise :class:`EmbeddingError` (a
:class:`~raggym_env.retrieval.base.RetrievalError`, which the environment records instead
of crashing). A reply of the wrong shape (not JSON, items missing or repeated, a vector of
the wrong dimension, non-finite numbers) raises :class:`EmbeddingError` at once, naming
what was wrong. Any other 4xx (e.g. an unknown model) is a ``ValueError``.

The API key, when the server needs one, is read from the environment variable named by
``api_key_env`` at each request; it is never stored, logged or shown.

Integration: anything with ``dim`` and ``encode_queries(list[str]) -> np.ndarray`` is a
:class:`QueryEncoder`. :func:`with_remote_queries` puts one in front of a dense retriever
(a raggym dense index or an imported FAISS index): queries are turned into the texts the
index's own encoder would see (its query prefix added), embedded by the server, and
searched with ``search_vectors``; the index's dimension is checked against the replies.
The retriever options ``query_embeddings={"url": ..., "model": ..., "api_key_env": ...}``
of ``"dense"`` and ``"faiss"`` do this. :func:`search_embeddings` shows the use with a
FAISS index directly.
"""

from __future__ import annotations

import json
import math
import os
import random
import threading
import time
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from raggym_env.availability import require
from raggym_env.redaction import redact_text
from raggym_env.retrieval.base import RetrievalError

if TYPE_CHECKING:
    import httpx

__all__ = [
    "EmbeddingError",
    "QueryEncoder",
    "RemoteQueryEncoder",
    "RemoteQueryRetriever",
    "search_embeddings",
    "with_remote_queries",
]


@runtime_checkable
class QueryEncoder(Protocol):
    """Turns queries into float32, L2-normalised vectors of a fixed dimension."""

    @property
    def dim(self) -> int | None:
        """The vector dimension (``None`` while not yet known)."""
        ...

    def encode_queries(self, queries: list[str]) -> np.ndarray:
        """Vectors of ``queries``, shape ``(len(queries), dim)``."""
        ...


class EmbeddingError(RetrievalError):
    """The embeddings server could not embed the queries (or answered malformed)."""


class _Retryable(Exception):
    """A transient failure worth another attempt."""


def _endpoint(url: str) -> str:
    """``.../v1/embeddings`` from a server root, an API root (``/v1``) or the endpoint."""
    base = url.rstrip("/")
    if base.endswith("/embeddings"):
        return base
    if base.endswith("/v1"):
        return base + "/embeddings"
    return base + "/v1/embeddings"


class RemoteQueryEncoder:
    """Query encoder backed by an OpenAI-compatible embeddings endpoint.

    Args:
        url: the server (``http://127.0.0.1:8000``), its API root (``.../v1``) or the
            endpoint itself (``.../v1/embeddings``). Credentials may not be in it.
        model: the served model's name, sent as ``model``.
        dim: the dimension the index expects (e.g. a FAISS index's ``d``); ``None``
            adopts the first reply's and holds later replies to it.
        api_key_env: name of the environment variable holding the bearer key, if any.
        batch_size: most texts per request.
        query_prefix: prepended to every query (some models want e.g. ``"query: "``).
        timeout_s: timeout of each network operation; one attempt must end within
            ``2 * timeout_s`` overall.
        max_retries: extra attempts after the first for transient failures.
        backoff_s: base delay; retry ``n`` waits ``backoff_s * 2**n`` times a jitter in
            ``[0.5, 1.5)``, capped at ``max_backoff_s``.
        max_backoff_s: cap on one delay.
        pool_size: most concurrent connections.
        seed: seed of the jitter.

    Raises:
        ValueError: a bad argument, a URL carrying credentials, or ``api_key_env`` naming
            an unset variable.
    """

    def __init__(
        self,
        url: str,
        model: str,
        *,
        dim: int | None = None,
        api_key_env: str | None = None,
        batch_size: int = 64,
        query_prefix: str = "",
        timeout_s: float = 30.0,
        max_retries: int = 3,
        backoff_s: float = 0.2,
        max_backoff_s: float = 5.0,
        pool_size: int = 8,
        seed: int = 0,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"url must be an http(s) URL, got {redact_text(str(url))!r}")
        if redact_text(url) != url or "@" in url.split("/", 3)[2]:
            raise ValueError("the embeddings URL may not carry credentials; use api_key_env")
        if not isinstance(model, str) or not model:
            raise ValueError("model must be the served model's name")
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int) or dim < 1):
            raise ValueError(f"dim must be a positive int or None, got {dim!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an int >= 0, got {max_retries!r}")
        if not (isinstance(timeout_s, (int, float)) and math.isfinite(timeout_s) and timeout_s > 0):
            raise ValueError(f"timeout_s must be a finite number > 0, got {timeout_s!r}")
        if backoff_s < 0 or max_backoff_s < 0:
            raise ValueError("backoff_s and max_backoff_s must be >= 0")
        if not isinstance(pool_size, int) or pool_size < 1:
            raise ValueError(f"pool_size must be a positive int, got {pool_size!r}")
        if api_key_env is not None and not os.environ.get(api_key_env):
            raise ValueError(f"api_key_env names {api_key_env!r}, which is not set")
        httpx = require("httpx", feature="RemoteQueryEncoder")
        from raggym_env.retrieval.deadline import DeadlineTransport

        self.url = _endpoint(url)
        self.model = model
        self.api_key_env = api_key_env
        self.batch_size = batch_size
        self.query_prefix = query_prefix
        self.timeout_s = float(timeout_s)
        self.deadline_s = 2 * self.timeout_s
        self.max_retries = max_retries
        self.backoff_s = float(backoff_s)
        self.max_backoff_s = float(max_backoff_s)
        self._dim = dim
        self._dim_lock = threading.Lock()
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._client = httpx.Client(
            timeout=httpx.Timeout(self.timeout_s),
            transport=DeadlineTransport(max_connections=pool_size),
            trust_env=False,
        )

    @property
    def dim(self) -> int | None:
        """The vector dimension: the one given, else the first reply's (``None`` before)."""
        return self._dim

    def encode_queries(self, queries: list[str]) -> np.ndarray:
        """Embed ``queries``: float32, L2-normalised, shape ``(len(queries), dim)``.

        Raises:
            TypeError: ``queries`` is not a list of str.
            EmbeddingError: the server failed after every retry, or its reply was
                malformed or of the wrong dimension.
            ValueError: the server rejected the request (a 4xx other than 429).
        """
        if isinstance(queries, (str, bytes)) or not isinstance(queries, (list, tuple)):
            raise TypeError(f"queries must be a list of str, got {type(queries).__name__}")
        for i, query in enumerate(queries):
            if not isinstance(query, str):
                raise TypeError(f"queries[{i}] must be a str, got {type(query).__name__}")
        if not queries:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        texts = [self.query_prefix + q for q in queries]
        parts = [
            self._embed(texts[start : start + self.batch_size])
            for start in range(0, len(texts), self.batch_size)
        ]
        vectors = np.concatenate(parts) if len(parts) > 1 else parts[0]
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        if np.any(norms == 0):
            row = int(np.flatnonzero(norms[:, 0] == 0)[0])
            raise EmbeddingError(f"{self.url} returned a zero vector for queries[{row}]")
        return np.ascontiguousarray(vectors / norms, dtype=np.float32)

    # ------------------------------------------------------------------ helpers
    def _embed(self, texts: list[str]) -> np.ndarray:
        """One batch through the endpoint, retried on transient failures (raw vectors)."""
        import httpx

        from raggym_env.retrieval.deadline import request_deadline

        attempts = self.max_retries + 1
        last_error = "no attempt made"
        body = {"model": self.model, "input": texts, "encoding_format": "float"}
        for attempt in range(attempts):
            if attempt:
                time.sleep(self._delay(attempt - 1))
            try:
                with request_deadline(self.deadline_s):
                    response = self._client.post(self.url, json=body, headers=self._headers())
                return self._parse(response, len(texts))
            except httpx.TimeoutException as exc:
                last_error = f"timed out ({type(exc).__name__})"
            except httpx.TransportError as exc:
                last_error = f"{type(exc).__name__}: {exc or 'connection failed'}"
            except _Retryable as exc:
                last_error = str(exc)
        raise EmbeddingError(
            f"embeddings server {self.url} failed after {attempts} attempt(s): {last_error}"
        )

    def _headers(self) -> dict[str, str]:
        if self.api_key_env is None:
            return {}
        key = os.environ.get(self.api_key_env)
        if not key:
            raise EmbeddingError(f"api_key_env names {self.api_key_env!r}, which is not set")
        return {"Authorization": f"Bearer {key}"}

    def _parse(self, response: httpx.Response, n: int) -> np.ndarray:
        """The ``(n, dim)`` float64 vectors of a reply, in input order."""
        status = response.status_code
        if status == 429 or status >= 500:
            raise _Retryable(f"HTTP {status}: {_message(response)}")
        if status >= 400:
            raise ValueError(
                f"embeddings server {self.url} rejected the request (HTTP {status}): "
                f"{_message(response)}"
            )
        if status != 200:
            raise _Retryable(f"unexpected HTTP {status}")
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise self._malformed(f"not JSON ({exc}): {response.text[:200]!r}") from None
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise self._malformed(f"no 'data' list: {redact_text(json.dumps(body)[:200])}")
        if len(data) != n:
            raise self._malformed(f"{len(data)} embeddings for {n} inputs")
        rows: list[Any] = [None] * n
        for position, item in enumerate(data):
            if not isinstance(item, dict) or "embedding" not in item:
                raise self._malformed(f"data[{position}] has no 'embedding'")
            index = item.get("index", position)
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n:
                raise self._malformed(f"data[{position}] has index {index!r}, expected 0..{n - 1}")
            if rows[index] is not None:
                raise self._malformed(f"index {index} appears twice")
            rows[index] = item["embedding"]
        try:
            vectors = np.asarray(rows, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise self._malformed(f"embeddings are not equal-length number lists ({exc})") from None
        if vectors.ndim != 2 or vectors.shape[1] == 0:
            raise self._malformed(f"embeddings of shape {vectors.shape}, expected (n, dim)")
        if not np.all(np.isfinite(vectors)):
            raise self._malformed("embeddings hold NaN or infinite values")
        with self._dim_lock:
            if self._dim is None:
                self._dim = int(vectors.shape[1])
            elif vectors.shape[1] != self._dim:
                raise EmbeddingError(
                    f"embeddings server {self.url} returned {vectors.shape[1]}-dimensional "
                    f"vectors, but the index expects {self._dim}; serve the model the index "
                    f"was built with (model {self.model!r})"
                )
        return vectors

    def _malformed(self, what: str) -> EmbeddingError:
        return EmbeddingError(f"embeddings server {self.url} sent a malformed reply: {what}")

    def _delay(self, retry: int) -> float:
        with self._rng_lock:
            jitter = 0.5 + self._rng.random()
        return float(min(self.max_backoff_s, self.backoff_s * (2**retry) * jitter))

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __enter__(self) -> RemoteQueryEncoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"RemoteQueryEncoder(url={self.url!r}, model={self.model!r}, dim={self._dim}, "
            f"api_key_env={self.api_key_env!r})"
        )


def search_embeddings(
    index: Any, encoder: QueryEncoder, queries: list[str], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Search a FAISS inner-product ``index`` with ``encoder``'s query vectors.

    Returns FAISS's ``(scores, ids)``, each of shape ``(len(queries), k)``.

    Raises:
        ValueError: the encoder's dimension differs from the index's ``d``.
    """
    expected = int(index.d)
    if encoder.dim is not None and encoder.dim != expected:
        raise ValueError(
            f"the query encoder makes {encoder.dim}-d vectors; the index has {expected}"
        )
    vectors = encoder.encode_queries(list(queries))
    if vectors.shape[1] != expected:
        raise ValueError(f"query vectors are {vectors.shape[1]}-d; the index has {expected}")
    scores, ids = index.search(np.ascontiguousarray(vectors, dtype=np.float32), int(k))
    return scores, ids


def _message(response: httpx.Response) -> str:
    """The server's error message (OpenAI's ``{"error": {"message"}}`` too), or the body."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return redact_text(response.text[:200]) or response.reason_phrase
    if isinstance(body, dict) and "error" in body:
        error = body["error"]
        if isinstance(error, dict) and "message" in error:
            return redact_text(str(error["message"]))
        return redact_text(str(error))
    return redact_text(json.dumps(body)[:200])


_QUERY_EMBEDDING_KEYS = frozenset(
    {"url", "model", "api_key_env", "batch_size", "timeout_s", "max_retries", "pool_size"}
)


class RemoteQueryRetriever:
    """A dense retriever whose queries are embedded by a remote server (no local encoder).

    Everything but :meth:`search` (corpus, index hash, dimension, ...) is the wrapped
    retriever's. The wrapped retriever must offer ``query_texts`` and ``search_vectors``
    (:class:`~raggym_env.retrieval.dense.DenseRetriever` and its imported-index subclass do).
    """

    def __init__(self, base: Any, encoder: QueryEncoder) -> None:
        for method in ("query_texts", "search_vectors"):
            if not callable(getattr(base, method, None)):
                raise TypeError(
                    f"remote query embeddings need a dense retriever with {method}(), "
                    f"got {type(base).__name__}"
                )
        dim = getattr(base, "dim", None)
        if encoder.dim is not None and dim is not None and encoder.dim != dim:
            raise ValueError(
                f"the embeddings server gives {encoder.dim}-dimensional vectors but the index "
                f"holds {dim}-dimensional ones"
            )
        self.base = base
        self.encoder = encoder

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["base"], name)

    def __repr__(self) -> str:
        return f"RemoteQueryRetriever({self.base!r}, {self.encoder!r})"

    def search(self, queries: list[str], k: int) -> list[list[Any]]:
        """Embed the queries remotely, then search the wrapped index with the vectors."""
        from raggym_env.retrieval.base import check_search_args

        queries = check_search_args(queries, k)
        if not queries:
            return []
        vectors = self.encoder.encode_queries(self.base.query_texts(queries))
        return list(self.base.search_vectors(vectors, k))


def with_remote_queries(base: Any, query_embeddings: Any) -> RemoteQueryRetriever:
    """``base`` searched with query embeddings from the server ``query_embeddings`` names.

    ``query_embeddings`` is a mapping with ``url`` and ``model`` (required) and optionally
    ``api_key_env``, ``batch_size``, ``timeout_s``, ``max_retries``, ``pool_size``.

    Raises:
        ValueError: a missing or unknown key, or a server/index dimension mismatch.
    """
    if not isinstance(query_embeddings, dict) and not hasattr(query_embeddings, "keys"):
        raise ValueError(
            "query_embeddings must be a table such as {url = 'http://host:8000', model = 'M'}"
        )
    settings = dict(query_embeddings)
    unknown = sorted(set(settings) - _QUERY_EMBEDDING_KEYS)
    missing = sorted({"url", "model"} - set(settings))
    if unknown or missing:
        raise ValueError(
            f"query_embeddings: unknown keys {unknown}, missing keys {missing}; "
            f"allowed: {sorted(_QUERY_EMBEDDING_KEYS)}"
        )
    url, model = settings.pop("url"), settings.pop("model")
    encoder = RemoteQueryEncoder(url, model, dim=getattr(base, "dim", None), **settings)
    return RemoteQueryRetriever(base, encoder)
