"""Measure how the HTTP clients and the retrieval server cope with hostile peers.

Usage::

    python perf/http_limits.py [--interval 0.1] [--timeout 2] [--disconnects 150]

Three figures, all on 127.0.0.1:

- drip: seconds one request takes when the server drips its reply one byte every
  ``interval`` seconds, for ``RemoteRetriever`` and ``OpenAICompatibleLLM`` with
  ``timeout_s=timeout`` and no retries (a per-read timeout never fires; a deadline does);
- disconnects: bytes logged by the retrieval server for ``disconnects`` clients that send
  headers and part of a body, then hang up (and whether the server still answers after);
- big response: status and bytes of the reply to one 256-query, ``k=1000`` request against
  the bundled HotpotQA BM25 index.

The dripping server is loaded from ``testing/drip_server.py`` by path (standard library
only), so the script measures any checkout, old or new.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import logging
import socket
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["main", "measure_big_response", "measure_disconnects", "measure_drip"]

_CHAT_REPLY = json.dumps(
    {"choices": [{"index": 0, "message": {"role": "assistant", "content": "x"}}]}
).encode()


def _drip_module() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "testing" / "drip_server.py"
    spec = importlib.util.spec_from_file_location("_raggym_drip_server", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measure_drip(interval_s: float, timeout_s: float) -> dict[str, Any]:
    """Seconds per dripped request for both HTTP clients (no retries)."""
    from raggym.agents.llm.base import SamplingParams
    from raggym.agents.llm.openai_compat import OpenAICompatibleLLM
    from raggym_env.retrieval.remote import RemoteRetriever

    drip = _drip_module()
    out: dict[str, Any] = {}
    with drip.DripServer(b'{"results": [[]]}', interval_s=interval_s) as server:
        remote = RemoteRetriever(server.url, timeout_s=timeout_s, max_retries=0)
        start = time.perf_counter()
        try:
            remote.search(["q"], 1)
            outcome = "answered"
        except Exception as exc:  # noqa: BLE001 - the outcome is what we measure
            outcome = f"{type(exc).__name__}: {str(exc)[:120]}"
        out["retriever"] = {
            "seconds": round(time.perf_counter() - start, 2),
            "reply_bytes": len(server.reply),
            "outcome": outcome,
        }
        remote.close()
    with drip.DripServer(_CHAT_REPLY, interval_s=interval_s) as server:
        llm = OpenAICompatibleLLM(
            base_url=server.url, model="m", timeout_s=timeout_s, max_retries=0
        )
        start = time.perf_counter()
        completion = llm.generate([[{"role": "user", "content": "hi"}]], SamplingParams())[0]
        out["llm"] = {
            "seconds": round(time.perf_counter() - start, 2),
            "reply_bytes": len(server.reply),
            "outcome": completion.error or "answered",
        }
        llm.close()
    return out


def _tiny_app() -> Any:
    from raggym_env.corpora import Corpus
    from raggym_env.retrieval.bm25 import BM25Retriever
    from raggym_env.retrieval.server import create_app

    corpus = Corpus.from_passages([("Paris", "Paris is the capital of France.")], name="one")
    return create_app(BM25Retriever.build(corpus))


def measure_disconnects(count: int) -> dict[str, Any]:
    """Bytes the server logs for ``count`` clients hanging up mid-body."""
    import httpx

    from raggym_env.retrieval.server import BackgroundServer

    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    with BackgroundServer(_tiny_app()) as server:
        loggers = [logging.getLogger("uvicorn"), logging.getLogger()]
        for logger in loggers:
            logger.addHandler(handler)
        try:
            httpx.post(f"{server.url}/search", json={"queries": ["x"], "k": 1}, timeout=10)
            head = (
                b"POST /search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: 1000\r\n\r\n"
            )
            for _ in range(count):
                with socket.create_connection((server.host, server.port), timeout=5) as sock:
                    sock.sendall(head + b'{"queries": ["par')
                    time.sleep(0.005)
            time.sleep(0.5)
            after = httpx.post(
                f"{server.url}/search", json={"queries": ["Paris"], "k": 1}, timeout=10
            )
        finally:
            for logger in loggers:
                logger.removeHandler(handler)
    text = captured.getvalue()
    return {
        "disconnects": count,
        "log_bytes": len(text.encode()),
        "log_lines": text.count("\n"),
        "status_after": after.status_code,
    }


def measure_big_response() -> dict[str, Any]:
    """Status and size of the reply to 256 queries with k=1000 (bundled HotpotQA BM25)."""
    import httpx

    from raggym_env.retrieval.bm25 import load_or_build
    from raggym_env.retrieval.server import BackgroundServer, create_app
    from raggym_env.tasks import load_task

    task = load_task("hotpotqa")
    retriever = load_or_build(task.corpus)
    questions = [ex.question[:20] for ex in task.examples]
    queries = [questions[i % len(questions)] for i in range(256)]
    request = json.dumps({"queries": queries, "k": 1000}).encode()
    with BackgroundServer(create_app(retriever)) as server:
        deadline = time.monotonic() + 30
        while httpx.get(f"{server.url}/health", timeout=10).status_code != 200:
            if time.monotonic() > deadline:
                raise TimeoutError("the index did not load")
            time.sleep(0.05)
        start = time.perf_counter()
        response = httpx.post(
            f"{server.url}/search",
            content=request,
            headers={"Content-Type": "application/json"},
            timeout=120,
        )
        seconds = time.perf_counter() - start
    return {
        "documents": len(task.corpus),
        "request_bytes": len(request),
        "status": response.status_code,
        "response_bytes": len(response.content),
        "seconds": round(seconds, 2),
        "message": response.json().get("error") if response.status_code != 200 else None,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the three measurements and print them as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--interval", type=float, default=0.1, help="seconds per dripped byte")
    parser.add_argument("--timeout", type=float, default=2.0, help="clients' timeout_s")
    parser.add_argument("--disconnects", type=int, default=150)
    parser.add_argument("--skip", nargs="*", default=[], choices=["drip", "disconnects", "big"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    report: dict[str, Any] = {}
    if "drip" not in args.skip:
        report["drip"] = measure_drip(args.interval, args.timeout)
    if "disconnects" not in args.skip:
        report["disconnects"] = measure_disconnects(args.disconnects)
    if "big" not in args.skip:
        report["big_response"] = measure_big_response()
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
