"""A raw HTTP server on 127.0.0.1 that drips its reply one byte at a time, for deadline tests.

A client whose timeout is per read (as httpx's is) never times out against it: every read
returns one byte well within the timeout, so an 85-byte reply at one byte a second takes
85 s. :class:`DripServer` reads each request (headers and ``Content-Length`` body) and
answers with a fixed HTTP/1.1 reply, status line and headers included, writing one byte
every ``interval_s``. It uses only the standard library (an asyncio server in a daemon
thread), so measurement scripts can load it from its file on any checkout.

Example::

    with DripServer(b'{"results": [[]]}', interval_s=0.2) as server:
        RemoteRetriever(server.url, timeout_s=2).search(["q"], 1)
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

__all__ = ["DripServer"]


class DripServer:
    """Answers every request with ``body`` (as JSON), one byte every ``interval_s``.

    Args:
        body: the reply body.
        interval_s: pause before each byte of the reply (status line and headers included).
        status: the reply's HTTP status code.

    Attributes:
        requests: how many requests have arrived.
    """

    def __init__(self, body: bytes, *, interval_s: float = 0.2, status: int = 200) -> None:
        if interval_s < 0:
            raise ValueError(f"interval_s must be >= 0, got {interval_s!r}")
        head = (
            f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode("ascii")
        self.reply = head + body
        self.interval_s = float(interval_s)
        self.requests = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="raggym-drip-server", daemon=True)

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def seconds_per_reply(self) -> float:
        """How long one whole reply takes to drip out."""
        return len(self.reply) * self.interval_s

    def start(self, timeout_s: float = 10.0) -> DripServer:
        """Start serving on an ephemeral loopback port; return once it listens.

        Raises:
            TimeoutError: if it is not listening within ``timeout_s``.
        """
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise TimeoutError(f"the drip server did not start in {timeout_s} s")
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop serving (open connections are dropped) and join the thread."""
        stop = self._stop
        if stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(stop.set)
        self._thread.join(timeout_s)

    def __enter__(self) -> DripServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ internals
    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        handlers: set[asyncio.Task[None]] = set()

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            if task is not None:
                handlers.add(task)
            try:
                await self._handle(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                pass  # the client gave up; that is what the tests provoke
            except asyncio.CancelledError:
                pass  # stop() ends unfinished replies; returning keeps asyncio from logging it
            finally:
                writer.close()
                if task is not None:
                    handlers.discard(task)

        server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
        self.port = int(server.sockets[0].getsockname()[1])
        self._ready.set()
        async with server:
            await self._stop.wait()
        for task in list(handlers):
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length" and value.strip().isdigit():
                length = int(value.strip())
        if length:
            await reader.readexactly(length)
        self.requests += 1
        started = time.monotonic()
        for i in range(len(self.reply)):
            # Sleep to the byte's scheduled time, so the pace does not drift with load.
            await asyncio.sleep(max(0.0, started + (i + 1) * self.interval_s - time.monotonic()))
            writer.write(self.reply[i : i + 1])
            await writer.drain()
