"""A batched :class:`~raggym.agents.llm.base.LLM` over any OpenAI-compatible chat server.

Works with a vLLM server, OpenAI, or anything else that speaks ``POST
{base}/v1/chat/completions``. A batch of conversations becomes one HTTP request per
conversation (each asking for ``n`` choices), sent concurrently with httpx over
keep-alive connections, at most ``concurrency`` requests in flight.

Retry policy: connection failures, timeouts, dropped connections, HTTP 429 and 5xx, and a
200 whose body is not JSON or has no non-empty ``choices`` list are retried up to
``max_retries`` times with jittered exponential backoff (a numeric ``Retry-After`` on
429/503 is honoured, both capped at ``max_backoff_s``). Other 4xx replies are not retried.
Each attempt must end within ``deadline_s`` (connect, send and the whole reply; default
``2 * timeout_s``), since ``timeout_s`` bounds each read alone and a server dripping its reply
byte by byte would never trip it; an attempt past its deadline is a retried timeout.
A request that still fails does not raise: its :class:`~raggym.agents.llm.base.Completion`
carries ``error="ErrorType: message"``, so one bad request never sinks the batch.

The API key is sent as ``Authorization: Bearer``; it never appears in ``repr``, logs,
exceptions or ``Completion.error`` (any echo of it by the server is masked). Credentials
in ``base_url`` (``http://user:KEY@host/v1``) are taken out of the URL and sent as that
bearer key (the password, or a lone user name), which is what OpenAI-compatible servers
such as ``vllm serve --api-key`` check. Needs httpx:
``pip install 'raggym[llm]'``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import math
import os
import random
import threading
import time
import weakref
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

from raggym.agents.llm.base import Completion, Message, SamplingParams, check_messages
from raggym_env.availability import require
from raggym_env.redaction import redact_text
from raggym_env.sanitize import scrub_surrogates

if TYPE_CHECKING:
    import httpx

__all__ = ["OpenAICompatibleLLM"]

logger = logging.getLogger(__name__)

_RESERVED_BODY_KEYS = frozenset(
    {"model", "messages", "n", "temperature", "top_p", "max_tokens", "stop", "seed", "stream"}
)
_MESSAGE_CHARS = 300
_T = TypeVar("_T")


class _Secret:
    """A string kept out of ``repr`` and ``str`` so it cannot leak through logging or vars()."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself (only for building the request header)."""
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__


@dataclass(frozen=True)
class _Failure:
    """One failed attempt: the error's type and message, whether to retry, any Retry-After."""

    kind: str
    message: str
    retryable: bool
    retry_after: float | None = None
    status: int | None = None


class _ClientFactory:
    """Builds one single-connection ``httpx.AsyncClient`` per slot (holds no LLM reference)."""

    def __init__(self, secret: _Secret | None, timeout_s: float, httpx_module: Any) -> None:
        self._secret = secret
        self._timeout_s = timeout_s
        self._httpx = httpx_module

    def __call__(self) -> httpx.AsyncClient:
        module = self._httpx
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._secret is not None:
            headers["Authorization"] = f"Bearer {self._secret.reveal()}"
        client: httpx.AsyncClient = module.AsyncClient(
            headers=headers,
            timeout=module.Timeout(self._timeout_s),
            limits=module.Limits(max_connections=1, max_keepalive_connections=1),
            verify=_ssl_context(module),
        )
        return client

    def __repr__(self) -> str:
        return f"_ClientFactory(timeout_s={self._timeout_s})"


_SSL_CONTEXT: list[Any] = []
_SSL_LOCK = threading.Lock()


def _ssl_context(module: Any) -> Any:
    """One default TLS context shared by every client (building one costs ~50 ms)."""
    with _SSL_LOCK:
        if not _SSL_CONTEXT:
            _SSL_CONTEXT.append(module.create_ssl_context())
        return _SSL_CONTEXT[0]


class _LoopState:
    """What one event loop uses: ``concurrency`` connection slots and a semaphore over them.

    Each slot is its own single-connection ``httpx.AsyncClient``, built on first use, and
    a request borrows a free slot for one send. A single shared pool would scale badly:
    httpcore's pool does work quadratic in its connection count on every request, and
    hands one idle connection to every request queued at the same moment, all but one of
    which then retry. With the semaphore, a free slot always exists when a request runs;
    free slots are a stack, so the most recently used (warm) connections are reused first.
    """

    def __init__(self, make_client: _ClientFactory, concurrency: int) -> None:
        self.semaphore = asyncio.Semaphore(concurrency)
        self._make_client = make_client
        self._clients: list[httpx.AsyncClient | None] = [None] * concurrency
        self._free = list(range(concurrency - 1, -1, -1))

    def borrow(self) -> tuple[int, httpx.AsyncClient]:
        """Take a free slot (call only while holding the semaphore)."""
        slot = self._free.pop()
        client = self._clients[slot]
        if client is None:
            client = self._clients[slot] = self._make_client()
        return slot, client

    def give_back(self, slot: int) -> None:
        """Return a slot taken by :meth:`borrow`."""
        self._free.append(slot)

    async def aclose(self) -> None:
        """Close every slot's connection."""
        clients, self._clients = self._clients, [None] * len(self._clients)
        for client in clients:
            if client is not None:
                await client.aclose()


class _WorkerLoop:
    """An event loop running forever in a daemon thread; sync ``generate`` submits to it."""

    def __init__(self, thread_name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name=thread_name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()

    def submit(self, coro: Coroutine[Any, Any, _T]) -> concurrent.futures.Future[_T]:
        """Schedule ``coro`` on the worker loop from any other thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self, state: _LoopState | None, timeout_s: float = 5.0) -> None:
        """Cancel what still runs there, close ``state``'s client, stop the loop, join."""
        if self.loop.is_closed():
            return
        if threading.current_thread() is self.thread:  # e.g. a finalizer run by GC here
            self.loop.stop()
            return

        async def shutdown() -> None:
            current = asyncio.current_task()
            pending = [t for t in asyncio.all_tasks() if t is not current]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            if state is not None:
                await state.aclose()

        try:
            self.submit(shutdown()).result(timeout_s)
        except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError, RuntimeError):
            logger.debug("the LLM worker loop did not shut down cleanly")
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout_s)


class _Runtime:
    """The mutable machinery of one LLM: per-loop clients and the worker loop of ``generate``.

    Kept apart from the LLM object so a ``weakref.finalize`` can shut it down when the LLM
    is garbage-collected. After a ``fork`` the parent's threads and sockets are unusable,
    so the child starts afresh.
    """

    def __init__(self, make_client: _ClientFactory, concurrency: int, thread_name: str) -> None:
        self._make_client = make_client
        self._concurrency = concurrency
        self._thread_name = thread_name
        self._lock = threading.Lock()
        self._states: dict[asyncio.AbstractEventLoop, _LoopState] = {}
        self._worker: _WorkerLoop | None = None
        self._pid = os.getpid()

    def _check_fork(self) -> None:
        if os.getpid() != self._pid:
            self._lock = threading.Lock()
            self._states = {}
            self._worker = None
            self._pid = os.getpid()

    def state(self) -> _LoopState:
        """The client and semaphore of the running loop, created on first use."""
        loop = asyncio.get_running_loop()
        self._check_fork()
        with self._lock:
            state = self._states.get(loop)
            if state is None:
                for old in [old for old in self._states if old.is_closed()]:
                    del self._states[old]  # its sockets are closed when garbage-collected
                state = _LoopState(self._make_client, self._concurrency)
                self._states[loop] = state
            return state

    def worker(self) -> _WorkerLoop:
        """The worker loop, started on first use (and again after :meth:`close`)."""
        self._check_fork()
        with self._lock:
            if self._worker is None or not self._worker.thread.is_alive():
                self._worker = _WorkerLoop(self._thread_name)
            return self._worker

    def pop_state(self, loop: asyncio.AbstractEventLoop) -> _LoopState | None:
        """Forget ``loop``'s client and return it (for the caller to close)."""
        with self._lock:
            return self._states.pop(loop, None)

    def close(self) -> None:
        """Stop the worker loop (closing its client) and close the clients of running loops."""
        with self._lock:
            worker, self._worker = self._worker, None
            states, self._states = self._states, {}
        if worker is not None:
            worker.stop(states.pop(worker.loop, None))
        for loop, state in states.items():
            if loop.is_running() and not loop.is_closed():
                asyncio.run_coroutine_threadsafe(state.aclose(), loop)


def _normalise_base_url(base_url: object) -> tuple[str, _Secret | None]:
    """Return ``base_url`` as ``scheme://host[:port]/.../v1`` and the key in its userinfo.

    ``http://user:KEY@host/v1`` yields ``http://host/v1`` and the key ``KEY`` (percent-
    decoded; a lone ``KEY@`` works too): the credentials leave the URL, so they are never
    sent as HTTP basic auth nor shown, and go out as the bearer key instead.
    """
    if not isinstance(base_url, str) or not base_url.strip():
        raise ValueError(f"base_url must be an http(s) URL string, got {_masked(base_url)!r}")
    text = base_url.strip()
    try:
        parts = urlsplit(text)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        valid = valid and (parts.port or 0) >= 0  # .port raises ValueError on a bad port
    except ValueError:
        valid = False
    if not valid:
        raise ValueError(
            f"base_url must be an http(s) URL such as 'http://127.0.0.1:8000/v1', "
            f"got {_masked(text)!r}"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"base_url must not have a query or fragment, got {_masked(text)!r}")
    path = parts.path.rstrip("/")
    if path.endswith("/chat/completions"):
        path = path[: -len("/chat/completions")]
    if not path.endswith("/v1"):
        path += "/v1"
    userinfo, at, host = parts.netloc.rpartition("@")
    secret = None
    if at:
        user, _, password = userinfo.partition(":")
        key = unquote(password or user).strip()
        secret = _Secret(key) if key else None
    return urlunsplit((parts.scheme, host, path, "", "")), secret


def _masked(value: object) -> str:
    """``value`` as text with any credentials (URL userinfo, key parameters) masked."""
    return redact_text(str(value))


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _finite(name: str, value: object, *, positive: bool) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or (value <= 0 if positive else value < 0)
    ):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return float(value)


def _token_count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _server_message(response: httpx.Response) -> str:
    """The server's error message (OpenAI or vLLM shape), else the start of the body."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    message: object = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            message = error.get("message")
        elif isinstance(error, str):
            message = error
        if message is None:
            message = body.get("message") or body.get("detail")
    text = str(message) if message is not None else response.text
    text = " ".join(text.split())
    if len(text) > _MESSAGE_CHARS:
        text = text[:_MESSAGE_CHARS] + "..."
    return text or response.reason_phrase


def _retry_after(response: httpx.Response) -> float | None:
    """A numeric ``Retry-After`` header in seconds (HTTP dates and junk are ignored)."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _choice_order(item: tuple[int, object]) -> int:
    position, choice = item
    index = choice.get("index") if isinstance(choice, dict) else None
    return index if isinstance(index, int) and not isinstance(index, bool) else position


def _parse_completion(response: httpx.Response, n: int) -> Completion | _Failure:
    """Turn one HTTP reply into a completion (without latency/attempts) or a failure."""
    status = response.status_code
    if status == 429 or status >= 500:
        retry_after = _retry_after(response) if status in (429, 503) else None
        return _Failure(
            "HTTPStatusError",
            f"{status} {response.reason_phrase}: {_server_message(response)}",
            retryable=True,
            retry_after=retry_after,
            status=status,
        )
    if not 200 <= status < 300:
        return _Failure(
            "HTTPStatusError",
            f"{status} {response.reason_phrase}: {_server_message(response)}",
            retryable=False,
            status=status,
        )
    try:
        payload = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return _Failure(
            "MalformedResponse",
            f"HTTP {status} body is not JSON ({exc}): {response.text[:120]!r}",
            retryable=True,
            status=status,
        )
    choices = payload.get("choices") if isinstance(payload, dict) else None
    if not isinstance(choices, list) or not choices:
        return _Failure(
            "MalformedResponse",
            f"HTTP {status} body has no non-empty 'choices' list: {response.text[:120]!r}",
            retryable=True,
            status=status,
        )
    texts: list[str] = []
    reasons: list[str | None] = []
    for _, choice in sorted(enumerate(choices), key=_choice_order)[:n]:
        message = choice.get("message") if isinstance(choice, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(message, dict) or not isinstance(content, (str, type(None))):
            return _Failure(
                "MalformedResponse",
                f"a choice has no message with string content: {str(choice)[:120]!r}",
                retryable=True,
                status=status,
            )
        texts.append(scrub_surrogates(content or ""))
        reason = choice.get("finish_reason")
        reasons.append(reason if isinstance(reason, str) else None)
    usage = payload.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    extra: dict[str, object] = {}
    if len(texts) < n:
        extra["choices_returned"] = len(texts)
    return Completion(
        texts=tuple(texts),
        prompt_tokens=_token_count(usage.get("prompt_tokens")),
        completion_tokens=_token_count(usage.get("completion_tokens")),
        finish_reasons=tuple(reasons),
        extra=extra,
    )


class OpenAICompatibleLLM:
    """A batched chat LLM served over HTTP by any OpenAI-compatible server.

    ``base_url`` may end in ``/v1`` or not (``"http://127.0.0.1:8000"`` and
    ``"http://127.0.0.1:8000/v1/"`` are the same); a trailing ``/chat/completions`` is
    dropped too. Requests go to ``{base}/chat/completions`` with ``base`` ending in
    ``/v1`` (see :attr:`base_url`).

    Every event loop that calls :meth:`agenerate` gets its own pooled ``httpx.AsyncClient``
    and its own ``asyncio.Semaphore(concurrency)``. The sync :meth:`generate` always runs
    on one worker thread with its own event loop, started on first use: connections are
    reused across calls, calls from many threads share one concurrency bound, and it works
    when called from inside a running event loop (a notebook). :meth:`close` (or ``with``)
    releases the worker thread and the connections; an async user closes the current
    loop's client with :meth:`aclose` (or ``async with``).

    Each completion's ``latency_s`` runs from the request's first send (time spent queued
    behind the concurrency limit is not counted) to its last reply, retries and backoff
    included; ``attempts`` counts the sends; ``extra`` holds ``retried_errors`` (the
    errors that were retried), ``http_status`` of a failed request, and
    ``choices_returned`` when the server sent fewer than ``n`` choices.

    Args:
        base_url: the server, e.g. ``"http://127.0.0.1:8000/v1"``.
        model: the model name sent with every request.
        api_key: a literal API key, sent as ``Authorization: Bearer``.
        api_key_env: the name of an environment variable holding the key, read now
            (exclusive with ``api_key``).
        concurrency: most requests in flight per event loop.
        timeout_s: per-request httpx timeout (connect, each read, write, pool wait).
        deadline_s: overall limit of one attempt (connect + send + every read of the
            reply), in seconds; ``None`` means ``2 * timeout_s`` (a silent server still
            trips the per-read timeout first). An attempt past it fails with
            ``DeadlineExceeded`` and is retried like any timeout.
        max_retries: extra attempts after the first for transient failures.
        backoff_s: base backoff; retry ``r`` (0-based) waits ``backoff_s * 2**r`` times a
            jitter factor drawn from ``[0.5, 1.5)``, capped at ``max_backoff_s``.
        max_backoff_s: cap on one wait, ``Retry-After`` included.
        name: the backend name recorded in episodes (default ``"openai:{model}"``).
        extra_body: fields merged into every request body (vLLM options such as
            ``top_k`` or ``repetition_penalty``); it may not set what
            :class:`SamplingParams` controls.

    Raises:
        ValueError: an argument is invalid, or ``api_key_env`` names an unset variable.
        MissingDependencyError: httpx is not installed (an ``ImportError`` naming the extra).
    """

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        api_key_env: str | None = None,
        concurrency: int = 32,
        timeout_s: float = 60.0,
        deadline_s: float | None = None,
        max_retries: int = 4,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        name: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> None:
        self.base_url, url_secret = _normalise_base_url(base_url)
        if not isinstance(model, str) or not model.strip():
            raise ValueError(f"model must be a non-empty string, got {model!r}")
        self.model = model
        self.concurrency = _positive_int("concurrency", concurrency)
        self.timeout_s = _finite("timeout_s", timeout_s, positive=True)
        self.deadline_s = (
            2 * self.timeout_s
            if deadline_s is None
            else _finite("deadline_s", deadline_s, positive=True)
        )
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an int >= 0, got {max_retries!r}")
        self.max_retries = max_retries
        self.backoff_s = _finite("backoff_s", backoff_s, positive=False)
        self.max_backoff_s = _finite("max_backoff_s", max_backoff_s, positive=False)
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ValueError(f"name must be a non-empty string or None, got {name!r}")
        self.name: str = name if name is not None else f"openai:{model}"
        self.extra_body = _check_extra_body(extra_body)
        self._secret = _resolve_key(api_key, api_key_env)
        if url_secret is not None:
            if self._secret is not None:
                raise ValueError(
                    "base_url has credentials (user:KEY@) and api_key/api_key_env is given "
                    "too: pass the key once"
                )
            self._secret = url_secret
        self._url = f"{self.base_url}/chat/completions"
        self._rng = random.Random()
        httpx = require("httpx", feature="OpenAICompatibleLLM")
        self._retryable_errors: tuple[type[BaseException], ...] = (
            httpx.TimeoutException,
            httpx.NetworkError,
            httpx.RemoteProtocolError,
            httpx.ProxyError,
            httpx.DecodingError,
        )
        self._http_error: type[BaseException] = httpx.HTTPError
        self._runtime = _Runtime(
            _ClientFactory(self._secret, self.timeout_s, httpx),
            self.concurrency,
            f"raggym-llm-{self.name}",
        )
        self._finalizer = weakref.finalize(self, self._runtime.close)

    # ------------------------------------------------------------------ LLM protocol
    def generate(
        self, conversations: Sequence[Sequence[Message]], params: SamplingParams
    ) -> list[Completion]:
        """Sample ``params.n`` completions per conversation; one :class:`Completion` each.

        Runs :meth:`agenerate` on this instance's worker loop, so it may be called from
        any thread, including one running an event loop.

        Raises:
            ValueError: a conversation is not a list of chat messages.
            TypeError: ``params`` is not :class:`SamplingParams`.
            RuntimeError: called from a coroutine on this instance's own worker loop.
        """
        bodies = self._encode(conversations, params)
        if not bodies:
            return []
        worker = self._runtime.worker()
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is worker.loop:
            raise RuntimeError(
                "generate() was called from this LLM's own worker loop; await agenerate()"
            )
        future = worker.submit(self._run(bodies, params.n))
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    async def agenerate(
        self, conversations: Sequence[Sequence[Message]], params: SamplingParams
    ) -> list[Completion]:
        """Async :meth:`generate`: all requests run concurrently on the running loop.

        Raises:
            ValueError: a conversation is not a list of chat messages.
            TypeError: ``params`` is not :class:`SamplingParams`.
        """
        bodies = self._encode(conversations, params)
        if not bodies:
            return []
        return await self._run(bodies, params.n)

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Stop the worker thread and close connection pools (a later call starts afresh)."""
        self._runtime.close()

    async def aclose(self) -> None:
        """Close the running event loop's connection pool."""
        state = self._runtime.pop_state(asyncio.get_running_loop())
        if state is not None:
            await state.aclose()

    def __enter__(self) -> OpenAICompatibleLLM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> OpenAICompatibleLLM:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        key = "None" if self._secret is None else "'***'"
        return (
            f"OpenAICompatibleLLM(name={self.name!r}, base_url={self.base_url!r}, "
            f"model={self.model!r}, api_key={key}, concurrency={self.concurrency}, "
            f"timeout_s={self.timeout_s}, max_retries={self.max_retries})"
        )

    # ------------------------------------------------------------------ internals
    def _encode(
        self, conversations: Sequence[Sequence[Message]], params: SamplingParams
    ) -> list[bytes]:
        """Validate the batch and encode one JSON request body per conversation."""
        if not isinstance(params, SamplingParams):
            raise TypeError(f"params must be SamplingParams, got {type(params).__name__}")
        if isinstance(conversations, (str, bytes)) or not isinstance(conversations, Sequence):
            raise ValueError(
                "conversations must be a list of conversations (lists of chat messages), "
                f"got {type(conversations).__name__}"
            )
        common: dict[str, Any] = {
            "n": params.n,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
        }
        if params.stop:
            common["stop"] = list(params.stop)
        if params.seed is not None:
            common["seed"] = params.seed
        common.update(self.extra_body)
        bodies = []
        for i, conversation in enumerate(conversations):
            check_messages(conversation, f"conversation {i}")
            body = {"model": self.model, "messages": [dict(m) for m in conversation], **common}
            text = scrub_surrogates(json.dumps(body, ensure_ascii=False))  # always UTF-8
            bodies.append(text.encode())
        return bodies

    async def _run(self, bodies: list[bytes], n: int) -> list[Completion]:
        state = self._runtime.state()
        return list(await asyncio.gather(*(self._request(state, body, n) for body in bodies)))

    async def _request(self, state: _LoopState, body: bytes, n: int) -> Completion:
        """Send one request, retrying transient failures; never raises for HTTP trouble."""
        start = 0.0
        failures: list[str] = []
        attempts = 0
        while True:
            outcome: Completion | _Failure
            async with state.semaphore:
                if not attempts:
                    start = time.perf_counter()
                attempts += 1
                slot, client = state.borrow()
                try:
                    response = await asyncio.wait_for(
                        client.post(self._url, content=body), self.deadline_s
                    )
                except asyncio.TimeoutError:
                    outcome = _Failure(
                        "DeadlineExceeded",
                        f"no complete reply within deadline_s={self.deadline_s} s "
                        "(connect + send + every read)",
                        retryable=True,
                    )
                except self._retryable_errors as exc:
                    outcome = _Failure(type(exc).__name__, str(exc) or repr(exc), retryable=True)
                except self._http_error as exc:
                    outcome = _Failure(type(exc).__name__, str(exc) or repr(exc), retryable=False)
                else:
                    outcome = _parse_completion(response, n)
                finally:
                    state.give_back(slot)
            if isinstance(outcome, Completion):
                extra = outcome.extra
                if failures:
                    extra = {**extra, "retried_errors": failures}
                return Completion(
                    texts=outcome.texts,
                    prompt_tokens=outcome.prompt_tokens,
                    completion_tokens=outcome.completion_tokens,
                    latency_s=time.perf_counter() - start,
                    finish_reasons=outcome.finish_reasons,
                    attempts=attempts,
                    extra=extra,
                )
            error = self._scrub(f"{outcome.kind}: {outcome.message}")
            if not outcome.retryable or attempts > self.max_retries:
                if outcome.retryable:
                    error += f" (gave up after {attempts} attempt(s))"
                extra = {} if outcome.status is None else {"http_status": outcome.status}
                if failures:
                    extra["retried_errors"] = failures
                return Completion(
                    latency_s=time.perf_counter() - start,
                    error=error,
                    attempts=attempts,
                    extra=extra,
                )
            failures.append(error)
            delay = self._delay(attempts - 1, outcome.retry_after)
            logger.debug(
                "%s: attempt %d failed (%s); retrying in %.3f s", self.name, attempts, error, delay
            )
            await asyncio.sleep(delay)

    def _delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (0-based)."""
        if retry_after is not None:
            return min(self.max_backoff_s, retry_after)
        base = self.backoff_s * 2.0 ** min(retry, 62)
        return min(self.max_backoff_s, base * (0.5 + self._rng.random()))

    def _scrub(self, text: str) -> str:
        """``text`` with the API key masked (a server may echo it in an error)."""
        if self._secret is not None:
            text = text.replace(self._secret.reveal(), "***")
        return text


def _resolve_key(api_key: object, api_key_env: object) -> _Secret | None:
    """The API key from the argument or the named environment variable."""
    if api_key is not None and api_key_env is not None:
        raise ValueError("pass api_key or api_key_env, not both")
    if api_key is not None:
        if not isinstance(api_key, str) or not api_key.strip():
            raise ValueError("api_key must be a non-empty string or None")
        return _Secret(api_key.strip())
    if api_key_env is None:
        return None
    if not isinstance(api_key_env, str) or not api_key_env.strip():
        raise ValueError(f"api_key_env must name an environment variable, got {api_key_env!r}")
    value = os.environ.get(api_key_env, "").strip()
    if not value:
        raise ValueError(
            f"api_key_env={api_key_env!r}: the environment variable {api_key_env} is not set "
            f"(or empty); export {api_key_env}=<your key> or pass api_key="
        )
    return _Secret(value)


def _check_extra_body(extra_body: object) -> dict[str, Any]:
    """A JSON-serialisable copy of ``extra_body`` that sets no field SamplingParams owns."""
    if extra_body is None:
        return {}
    if not isinstance(extra_body, Mapping):
        raise ValueError(f"extra_body must be a mapping or None, got {type(extra_body).__name__}")
    body = dict(extra_body)
    for key in body:
        if not isinstance(key, str):
            raise ValueError(f"extra_body keys must be strings, got {key!r}")
        if key in _RESERVED_BODY_KEYS:
            raise ValueError(
                f"extra_body may not set {key!r}: it comes from the model argument or "
                "SamplingParams (streaming is not supported)"
            )
    try:
        json.dumps(body)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"extra_body must be JSON-serialisable: {exc}") from None
    return body
