"""An OpenAI-compatible chat-completions server with no model, for tests and benchmarks.

:func:`create_fake_openai_app` builds a Starlette app serving ``POST
/v1/chat/completions``, ``GET /v1/models`` and ``GET /health``. Replies come from a
``respond(messages, sample_index)`` function; the server honours ``n``, ``stop`` and
``max_tokens`` (tokens are whitespace words), sleeps ``latency_s`` per request with
``asyncio.sleep`` (so concurrent requests overlap) and rejects malformed requests with a
400 and an OpenAI-style ``{"error": {"message": ...}}`` body.

A :class:`FaultPlan` injects failures: HTTP error statuses (with ``Retry-After`` if
asked), slow replies, malformed JSON and dropped connections, for the next K requests,
every Nth request, or requests matching a predicate. :class:`FakeServerStats`
(``app.state.stats``) counts what arrived. Run it in its own process with::

    python -m raggym.testing.fake_server --port 0 --latency-ms 50

which prints ``READY http://127.0.0.1:PORT/v1`` on its first stdout line and serves until
killed. Needs the ``serve`` extra: ``pip install 'raggym[serve]'``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import socket
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from raggym.agents.llm.base import truncate_at_stop
from raggym_env.availability import require

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.types import Receive, Scope, Send

__all__ = [
    "FakeOpenAIServer",
    "FakeServerStats",
    "Fault",
    "FaultPlan",
    "create_fake_openai_app",
    "default_respond",
    "fake_openai_server",
    "main",
]

_FEATURE = "the fake OpenAI server"
_NAMED_FAULTS = ("slow", "malformed", "drop")
_ROLES = frozenset({"system", "user", "assistant", "tool", "developer"})
_DROP_KEY = "raggym.drop_connection"
_MALFORMED_BODY = b'{"id": "chatcmpl-broken", "choices": [{"index": 0, "message": '

FaultKind = int | Literal["slow", "malformed", "drop"]
Respond = Callable[[list[dict[str, Any]], int], str]
Predicate = Callable[[dict[str, Any]], bool]


def default_respond(messages: list[dict[str, Any]], sample_index: int) -> str:
    """Reply ``"Answer: <first 5 words of the last user message>"`` (deterministic)."""
    for message in reversed(messages):
        if message.get("role") == "user" and isinstance(message.get("content"), str):
            return "Answer: " + " ".join(message["content"].split()[:5])
    return "Answer:"


@dataclass(frozen=True)
class Fault:
    """What an injected fault does to one request.

    Attributes:
        kind: an HTTP status (400-599) answered with an OpenAI-style error body, or
            ``"slow"`` (wait ``delay_s`` before a normal reply; the wait ends early if the
            client disconnects), ``"malformed"`` (200 with a truncated JSON body), or
            ``"drop"`` (close the connection without sending any response).
        retry_after: seconds sent as a ``Retry-After`` header with an HTTP status fault
            (no header when ``None``).
        delay_s: how long a ``"slow"`` reply waits.
        message: the error message of an HTTP status fault.
    """

    kind: FaultKind
    retry_after: float | None = None
    delay_s: float = 10.0
    message: str = "injected fault"

    def __post_init__(self) -> None:
        if isinstance(self.kind, bool) or not (
            (isinstance(self.kind, int) and 400 <= self.kind <= 599) or self.kind in _NAMED_FAULTS
        ):
            raise ValueError(
                f"fault kind must be an HTTP status 400-599 or one of {_NAMED_FAULTS}, "
                f"got {self.kind!r}"
            )
        if self.retry_after is not None and not self.retry_after >= 0:
            raise ValueError(f"retry_after must be >= 0 or None, got {self.retry_after!r}")
        if not self.delay_s >= 0:
            raise ValueError(f"delay_s must be >= 0, got {self.delay_s!r}")

    @property
    def label(self) -> str:
        """The kind as a string (``"500"``, ``"drop"``...), the key of the stats counter."""
        return str(self.kind)


@dataclass
class _Rule:
    fault: Fault
    remaining: int | None
    every: int | None = None
    when: Predicate | None = None

    def applies(self, number: int, body: dict[str, Any]) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.every is not None and number % self.every:
            return False
        return self.when is None or bool(self.when(body))


class FaultPlan:
    """Which requests fail, and how; rules are tried in the order they were added.

    Each rule names a fault (an HTTP status such as ``500``, or ``"slow"``,
    ``"malformed"``, ``"drop"``; see :class:`Fault`) and which requests it hits: the
    next ``times`` requests (:meth:`next`), every Nth request counted from the server's
    first (:meth:`every`), requests whose JSON body satisfies a predicate (:meth:`when`),
    or all (:meth:`always`). The first applicable rule fires and uses up one of its
    ``times`` (``None``: unlimited). Only well-formed requests are considered, so a 400
    for a bad request never consumes a fault. Safe to change while the server runs;
    ``fired`` counts the faults injected by kind.

    Example::

        plan = FaultPlan().next(503, times=2, retry_after=0.1).every(10, "drop")
        app = create_fake_openai_app(faults=plan)
    """

    def __init__(self) -> None:
        self._rules: list[_Rule] = []
        self._lock = threading.Lock()
        self.fired: Counter[str] = Counter()

    def next(
        self,
        kind: FaultKind,
        times: int = 1,
        *,
        retry_after: float | None = None,
        delay_s: float = 10.0,
        message: str = "injected fault",
    ) -> FaultPlan:
        """Fail the next ``times`` requests with ``kind``; return the plan for chaining."""
        return self._add(Fault(kind, retry_after, delay_s, message), times=_count(times))

    def every(
        self,
        n: int,
        kind: FaultKind,
        *,
        times: int | None = None,
        retry_after: float | None = None,
        delay_s: float = 10.0,
        message: str = "injected fault",
    ) -> FaultPlan:
        """Fail requests number ``n, 2n, 3n...`` (1-based, since the server started)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"every: n must be a positive int, got {n!r}")
        fault = Fault(kind, retry_after, delay_s, message)
        return self._add(fault, times=None if times is None else _count(times), every=n)

    def when(
        self,
        predicate: Predicate,
        kind: FaultKind,
        *,
        times: int | None = None,
        retry_after: float | None = None,
        delay_s: float = 10.0,
        message: str = "injected fault",
    ) -> FaultPlan:
        """Fail requests whose parsed JSON body makes ``predicate`` true."""
        if not callable(predicate):
            raise TypeError(f"predicate must be callable, got {type(predicate).__name__}")
        fault = Fault(kind, retry_after, delay_s, message)
        return self._add(fault, times=None if times is None else _count(times), when=predicate)

    def always(
        self,
        kind: FaultKind,
        *,
        retry_after: float | None = None,
        delay_s: float = 10.0,
        message: str = "injected fault",
    ) -> FaultPlan:
        """Fail every request with ``kind``."""
        return self._add(Fault(kind, retry_after, delay_s, message), times=None)

    def clear(self) -> None:
        """Remove every rule (``fired`` is kept)."""
        with self._lock:
            self._rules.clear()

    def pick(self, number: int, body: dict[str, Any]) -> Fault | None:
        """The fault for request ``number`` (1-based) with ``body``, or ``None``; counts it."""
        with self._lock:
            for rule in self._rules:
                if rule.applies(number, body):
                    if rule.remaining is not None:
                        rule.remaining -= 1
                    self.fired[rule.fault.label] += 1
                    return rule.fault
        return None

    def _add(
        self,
        fault: Fault,
        *,
        times: int | None,
        every: int | None = None,
        when: Predicate | None = None,
    ) -> FaultPlan:
        with self._lock:
            self._rules.append(_Rule(fault, times, every, when))
        return self


def _count(times: object) -> int:
    if isinstance(times, bool) or not isinstance(times, int) or times < 1:
        raise ValueError(f"times must be a positive int, got {times!r}")
    return times


@dataclass
class FakeServerStats:
    """What the server received (``app.state.stats``); updated on the server's loop.

    Attributes:
        requests: ``POST /v1/chat/completions`` requests received, whatever came of them.
        completed: requests answered with choices (after any ``"slow"`` wait).
        rejected: requests refused with a 400 (malformed JSON or fields).
        faults: faults injected, by kind (``"500"``, ``"drop"``...).
        in_flight: requests being handled now.
        max_in_flight: the most handled at once.
        bodies: the last 10,000 parsed JSON request bodies, in arrival order.
        headers: the last 10,000 request headers (lower-case names), in arrival order.
        peers: distinct ``host:port`` client addresses seen (one per TCP connection).
    """

    requests: int = 0
    completed: int = 0
    rejected: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    max_in_flight: int = 0
    bodies: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=10_000))
    headers: deque[dict[str, str]] = field(default_factory=lambda: deque(maxlen=10_000))
    peers: set[str] = field(default_factory=set)

    def reset(self) -> None:
        """Zero every counter (requests in flight stay counted)."""
        self.requests = self.completed = self.rejected = self.max_in_flight = 0
        self.faults.clear()
        self.bodies.clear()
        self.headers.clear()
        self.peers.clear()


class _BadRequest(Exception):
    """A request the client must fix: answered with a 400."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _validate(body: object) -> dict[str, Any]:
    """Check a chat-completions body; raise :class:`_BadRequest` naming the bad field."""
    if not isinstance(body, dict):
        raise _BadRequest(f"the body must be a JSON object, got {type(body).__name__}")
    if "messages" not in body:
        raise _BadRequest("missing required field 'messages' (a list of messages)", "messages")
    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        raise _BadRequest("'messages' must be a non-empty list of messages", "messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _BadRequest(f"messages[{i}] must be an object", "messages")
        if message.get("role") not in _ROLES:
            raise _BadRequest(
                f"messages[{i}].role must be one of {sorted(_ROLES)}, got {message.get('role')!r}",
                "messages",
            )
        if not isinstance(message.get("content"), str):
            raise _BadRequest(f"messages[{i}].content must be a string", "messages")
    if "model" in body and not isinstance(body["model"], str):
        raise _BadRequest("'model' must be a string", "model")
    n = body.get("n", 1)
    if not _is_int(n) or not 1 <= n <= 128:
        raise _BadRequest(f"'n' must be an integer in [1, 128], got {n!r}", "n")
    max_tokens = body.get("max_tokens")
    if max_tokens is not None and (not _is_int(max_tokens) or max_tokens < 1):
        raise _BadRequest(
            f"'max_tokens' must be a positive integer, got {max_tokens!r}", "max_tokens"
        )
    for name in ("temperature", "top_p"):
        if name in body and body[name] is not None and not _is_number(body[name]):
            raise _BadRequest(f"{name!r} must be a number, got {body[name]!r}", name)
    stop = body.get("stop")
    if not (
        stop is None
        or isinstance(stop, str)
        or (isinstance(stop, list) and all(isinstance(s, str) for s in stop))
    ):
        raise _BadRequest(f"'stop' must be a string or a list of strings, got {stop!r}", "stop")
    seed = body.get("seed")
    if seed is not None and not _is_int(seed):
        raise _BadRequest(f"'seed' must be an integer, got {seed!r}", "seed")
    return body


def _words(text: str) -> int:
    return len(text.split())


def _completion(body: dict[str, Any], respond: Respond, model: str, number: int) -> dict[str, Any]:
    """The chat.completion object answering a validated ``body``."""
    messages: list[dict[str, Any]] = body["messages"]
    n: int = body.get("n", 1)
    stop = body.get("stop") or []
    stops: Sequence[str] = [stop] if isinstance(stop, str) else [s for s in stop if s]
    max_tokens: int | None = body.get("max_tokens")
    choices = []
    completion_tokens = 0
    for index in range(n):
        text = respond(messages, index)
        if not isinstance(text, str):
            raise TypeError(f"respond must return a string, got {type(text).__name__}")
        text, _ = truncate_at_stop(text, stops)
        finish = "stop"
        words = text.split()
        if max_tokens is not None and len(words) > max_tokens:
            text, finish = " ".join(words[:max_tokens]), "length"
        completion_tokens += _words(text)
        choices.append(
            {
                "index": index,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish,
                "logprobs": None,
            }
        )
    prompt_tokens = sum(_words(m["content"]) for m in messages)
    return {
        "id": f"chatcmpl-fake-{number}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", model),
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def _find_transport(send: Any) -> Any:
    """The connection's asyncio transport when ``send`` is a uvicorn cycle's method.

    Also turns on ``TCP_NODELAY`` for it: asyncio only does so for sockets created with
    ``proto=IPPROTO_TCP``, and a listening socket made with ``socket.socket()`` (as
    ``BackgroundServer`` does) has proto 0, so every keep-alive reply, written as headers
    then body, would wait ~40 ms for the client's delayed ACK (Nagle's algorithm).
    """
    transport: Any = getattr(getattr(send, "__self__", None), "transport", None)
    if not callable(getattr(transport, "close", None)):
        return None
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return transport


def create_fake_openai_app(
    respond: Respond | None = None,
    *,
    latency_s: float = 0.0,
    faults: FaultPlan | None = None,
    model: str = "fake-model",
) -> Starlette:
    """Build the fake server's ASGI app (serve it with uvicorn or ``BackgroundServer``).

    Args:
        respond: ``respond(messages, sample_index) -> str`` makes each choice's text
            (default :func:`default_respond`); ``stop`` and ``max_tokens`` are applied to
            what it returns. An exception in it is not caught: uvicorn logs it and the
            client sees a 500 or a dropped connection.
        latency_s: seconds every normal reply waits (``asyncio.sleep``).
        faults: the fault plan (default: an empty one); ``app.state.faults`` either way.
        model: the id listed by ``/v1/models`` (requests may name any model; the
            reply echoes the requested name).

    Returns:
        A Starlette app whose ``state.stats`` is a :class:`FakeServerStats` and
        ``state.faults`` the :class:`FaultPlan`.

    Raises:
        MissingDependencyError: if starlette is not installed (an ``ImportError`` naming
            the extra).
        TypeError: ``respond`` is not callable or ``faults`` not a :class:`FaultPlan`.
        ValueError: ``latency_s`` is negative or ``model`` empty.
    """
    require("starlette", feature=_FEATURE)
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    respond_fn: Respond = default_respond if respond is None else respond
    if not callable(respond_fn):
        raise TypeError(f"respond must be callable, got {type(respond).__name__}")
    if not _is_number(latency_s) or not latency_s >= 0:
        raise ValueError(f"latency_s must be a number >= 0, got {latency_s!r}")
    plan = FaultPlan() if faults is None else faults
    if not isinstance(plan, FaultPlan):
        raise TypeError(f"faults must be a FaultPlan or None, got {type(faults).__name__}")
    if not isinstance(model, str) or not model:
        raise ValueError(f"model must be a non-empty string, got {model!r}")
    stats = FakeServerStats()

    class _AsciiJSON(JSONResponse):
        """JSON with non-ASCII as escapes, as servers send it (lone surrogates included)."""

        def render(self, content: Any) -> bytes:
            return json.dumps(content, separators=(",", ":")).encode("ascii")

    def error(
        status: int, message: str, kind: str, param: str | None = None, **headers: str
    ) -> Response:
        body = {"error": {"message": message, "type": kind, "param": param, "code": status}}
        return JSONResponse(body, status_code=status, headers=headers or None)

    class _DropResponse(Response):
        """Closes the connection without sending anything."""

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            transport = scope.get(_DROP_KEY)
            if transport is not None:
                transport.close()
                await asyncio.sleep(0)  # let the server see the connection is gone
                return
            # Not uvicorn's own send: announce a body, never send it. The server then
            # closes the connection (uvicorn logs "returned without completing response").
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")],
                }
            )

    async def apply(fault: Fault, request: Request, body: dict[str, Any], number: int) -> Response:
        if fault.kind == "drop":
            return _DropResponse()
        if fault.kind == "malformed":
            return Response(_MALFORMED_BODY, status_code=200, media_type="application/json")
        if fault.kind == "slow":
            deadline = time.monotonic() + fault.delay_s
            while (remaining := deadline - time.monotonic()) > 0:
                await asyncio.sleep(min(0.02, remaining))
                if await request.is_disconnected():
                    return Response(status_code=499)
            return _AsciiJSON(_completion(body, respond_fn, model, number))
        headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
        return error(int(fault.kind), fault.message, "injected_fault", **headers)

    async def chat_completions(request: Request) -> Response:
        stats.requests += 1
        number = stats.requests
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            if request.client is not None:
                stats.peers.add(f"{request.client.host}:{request.client.port}")
            stats.headers.append(dict(request.headers))
            raw = await request.body()
            try:
                parsed = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                stats.rejected += 1
                return error(400, f"malformed JSON body: {exc}", "invalid_request_error")
            if isinstance(parsed, dict):
                stats.bodies.append(parsed)
            try:
                body = _validate(parsed)
            except _BadRequest as exc:
                stats.rejected += 1
                return error(400, exc.message, "invalid_request_error", exc.param)
            fault = plan.pick(number, body)
            if fault is not None:
                stats.faults[fault.label] += 1
                response = await apply(fault, request, body, number)
                if fault.kind == "slow" and response.status_code == 200:
                    stats.completed += 1
                return response
            if latency_s:
                await asyncio.sleep(latency_s)
            reply = _completion(body, respond_fn, model, number)
            stats.completed += 1
            return _AsciiJSON(reply)
        finally:
            stats.in_flight -= 1

    async def models(request: Request) -> Response:
        card = {"id": model, "object": "model", "created": 0, "owned_by": "raggym"}
        return JSONResponse({"object": "list", "data": [card]})

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    class _FakeOpenAIApp(Starlette):
        """Starlette, plus the connection's transport in the scope for ``"drop"`` faults."""

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                scope[_DROP_KEY] = _find_transport(send)
            await super().__call__(scope, receive, send)

    app = _FakeOpenAIApp(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
        ]
    )
    app.state.stats = stats
    app.state.faults = plan
    return app


@dataclass(frozen=True)
class FakeOpenAIServer:
    """A fake server running on loopback: where to reach it and how to steer it.

    Attributes:
        url: the OpenAI base URL (``http://127.0.0.1:PORT/v1``), ready for
            ``OpenAICompatibleLLM(base_url=url, model=...)`` or ``make_llm(f"openai:{url}:m")``.
        stats: what arrived (requests, bodies, statuses), for assertions.
        faults: the fault plan; schedule failures with ``faults.next(...)`` and friends.
        app: the Starlette app being served.
    """

    url: str
    stats: FakeServerStats
    faults: FaultPlan
    app: Any


@contextlib.contextmanager
def fake_openai_server(
    respond: Respond | None = None,
    *,
    latency_s: float = 0.0,
    faults: FaultPlan | None = None,
    model: str = "fake-model",
) -> Iterator[FakeOpenAIServer]:
    """Serve :func:`create_fake_openai_app` on an ephemeral 127.0.0.1 port for a block.

    ``with fake_openai_server(lambda messages, i: "Answer: Paris") as server:`` then point
    a backend at ``server.url``; the server stops when the block ends. Arguments are those
    of :func:`create_fake_openai_app`.
    """
    from raggym_env.retrieval.server import BackgroundServer

    app = create_fake_openai_app(respond, latency_s=latency_s, faults=faults, model=model)
    with BackgroundServer(app) as server:
        yield FakeOpenAIServer(f"{server.url}/v1", app.state.stats, app.state.faults, app)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the fake server until killed; print ``READY <url>`` on the first stdout line.

    Args:
        argv: command-line arguments (default ``sys.argv[1:]``); see ``--help``.

    Returns:
        The exit status.
    """
    parser = argparse.ArgumentParser(
        prog="python -m raggym.testing.fake_server",
        description="Serve a fake OpenAI-compatible /v1/chat/completions endpoint.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind")
    parser.add_argument("--port", type=int, default=0, help="TCP port (0: pick a free one)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay of every reply")
    parser.add_argument("--model", default="fake-model", help="model id listed by /v1/models")
    parser.add_argument("--log-level", default="warning", help="uvicorn's log level")
    parser.add_argument(
        "--respond",
        metavar="MODULE:FUNCTION",
        help="import respond(messages, sample_index) -> str from here (default: echo)",
    )
    args = parser.parse_args(argv)
    if args.latency_ms < 0:
        parser.error(f"--latency-ms must be >= 0, got {args.latency_ms}")
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be in [0, 65535], got {args.port}")
    uvicorn = require("uvicorn", feature=_FEATURE)

    respond = None
    if args.respond:
        module, sep, attr = args.respond.partition(":")
        if not sep or not module or not attr:
            parser.error(f"--respond must look like MODULE:FUNCTION, got {args.respond!r}")
        respond = getattr(importlib.import_module(module), attr)
    app = create_fake_openai_app(respond, latency_s=args.latency_ms / 1000, model=args.model)
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    # IPPROTO_TCP (not 0) lets asyncio set TCP_NODELAY on accepted connections; without
    # it every keep-alive reply stalls ~40 ms (Nagle against the client's delayed ACK).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(2048)  # connections queue from now on, so READY is truthful
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"READY http://{shown}:{port}/v1", flush=True)
    config = uvicorn.Config(
        app, log_level=args.log_level, access_log=False, lifespan="off", timeout_graceful_shutdown=1
    )
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
