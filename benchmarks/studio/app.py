"""The studio's web application: browse episodes, annotate steps, agree, export, ask.

A Starlette app over episode files named when it is built (served by index, never by a
path the browser sends) and one annotation file. Security: the page and its script and
style are package files with a strict Content-Security-Policy (no inline script, no
external asset) and the script writes every piece of episode text as text; requests name
a known host (against DNS rebinding), writes need a JSON content type and a same-origin
``Origin`` (so another site cannot post to it), and bodies are bounded.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from raggym.benchmarks.html_report import episode_status
from raggym.benchmarks.studio.agreement import agreement
from raggym_env.annotations import (
    Annotation,
    AnnotationStore,
    episode_key,
    latest_annotations,
)
from raggym_env.availability import require
from raggym_env.episode import EpisodeRecord, SchemaError
from raggym_env.store import EpisodeStore, ReadStats, read_episodes
from raggym_env.types import Document

__all__ = [
    "MAX_BODY_BYTES",
    "EpisodeFile",
    "Exporter",
    "Studio",
    "create_app",
]

MAX_BODY_BYTES = 64 * 1024
"""Largest request body accepted (an annotation or a question is far smaller)."""
MAX_QUESTION_CHARS = 2000
DOC_TEXT_LIMIT = 4000
PREVIEW_CHARS = 300
ALLOWED_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})
STATIC = {
    "studio.js": "application/javascript; charset=utf-8",
    "studio.css": "text/css; charset=utf-8",
}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

Exporter = Callable[[Sequence[EpisodeRecord], Sequence[Annotation], str], list[dict[str, Any]]]
"""``exporter(records, annotations, format)`` -> training rows (``sft``, ``dpo``, ``critic``)."""


class DocumentSource(Protocol):
    """Where document texts come from: a corpus (``get`` by document id)."""

    def get(self, doc_id: str) -> Document: ...


class RequestError(ValueError):
    """A request the studio refuses, with the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class EpisodeFile:
    """An episode file the studio serves: its records and the lines it skipped."""

    path: Path
    records: list[EpisodeRecord]
    skipped: ReadStats
    keys: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: str | Path) -> EpisodeFile:
        """Read ``path`` (malformed lines are skipped and counted, never fatal)."""
        file = Path(path)
        if not file.is_file():
            raise FileNotFoundError(f"no episode file at {file}")
        stats = ReadStats()
        records = list(read_episodes(file, stats=stats))
        return cls(file, records, stats, [episode_key(r) for r in records])


@dataclass
class AskJob:
    """One question being answered in a worker thread; its events, in order."""

    id: int
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    done: bool = False
    record: EpisodeRecord | None = None
    saved: tuple[int, int] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def emit(self, event: str, data: dict[str, Any]) -> None:
        """Record an event for every listener (late listeners replay from the start)."""
        with self.lock:
            self.events.append((event, data))


class Studio:
    """The studio's state: episode files, the annotation store, the exporter and the asker.

    Args:
        episode_files: the episode JSONL files to serve, addressed by position.
        annotations: the annotation JSONL file (created on the first annotation).
        documents: a corpus to show retrieved documents' texts from (titles alone without).
        exporter: builds training rows from annotations (see
            :func:`raggym.trainers.annotations.annotation_rows`); export is off without one.
        asker: runs typed questions (see :class:`~raggym.benchmarks.studio.ask.Asker`);
            the Ask view is off without one.
        ask_out: the episode file asked episodes are saved to.
    """

    def __init__(
        self,
        episode_files: Sequence[str | Path],
        annotations: str | Path,
        *,
        documents: DocumentSource | None = None,
        exporter: Exporter | None = None,
        asker: Any = None,
        ask_out: str | Path | None = None,
    ) -> None:
        self.files = [EpisodeFile.load(p) for p in episode_files]
        self.store = AnnotationStore(annotations)
        self.documents = documents
        self.exporter = exporter
        self.asker = asker
        self.ask_out = Path(ask_out) if ask_out is not None else None
        self.jobs: dict[int, AskJob] = {}
        self._job_ids = itertools.count(1)
        self._lock = threading.Lock()

    # ---- reading ------------------------------------------------------------------------

    def file(self, index: int) -> EpisodeFile:
        """The file at ``index``, or a 404 error."""
        if not 0 <= index < len(self.files):
            raise RequestError(f"no episode file {index}", 404)
        return self.files[index]

    def episode(self, index: int, number: int) -> tuple[EpisodeRecord, str]:
        """The record at position ``number`` of file ``index`` and its key, or a 404 error."""
        file = self.file(index)
        if not 0 <= number < len(file.records):
            raise RequestError(f"no episode {number} in file {index}", 404)
        return file.records[number], file.keys[number]

    def all_records(self) -> list[EpisodeRecord]:
        """Every record of every file."""
        return [r for f in self.files for r in f.records]

    def annotations(self) -> list[Annotation]:
        """Everything annotated so far, each person's latest judgement of each thing."""
        return latest_annotations(self.store.read())

    def texts(self, record: EpisodeRecord) -> dict[str, str]:
        """Retrieved documents' texts by id, from the corpus (shortened; missing ids left out)."""
        if self.documents is None:
            return {}
        found: dict[str, str] = {}
        for step in record.steps:
            for doc in step.retrieved:
                if doc.id in found:
                    continue
                try:
                    text = self.documents.get(doc.id).text
                except (KeyError, IndexError, ValueError):
                    continue
                found[doc.id] = text if len(text) <= DOC_TEXT_LIMIT else text[:DOC_TEXT_LIMIT] + "…"
        return found

    # ---- writing ------------------------------------------------------------------------

    def annotate(self, body: Mapping[str, Any]) -> Annotation:
        """Validate a posted judgement against the episode it names and append it."""
        record, key = self.episode(
            _int(body.get("file"), "file"), _int(body.get("episode"), "episode")
        )
        try:
            item = Annotation(
                annotator=_str(body.get("annotator"), "annotator").strip(),
                episode=key,
                example_id=record.example_id,
                step=_int(body.get("step"), "step"),
                kind=body.get("kind"),  # type: ignore[arg-type]  # checked by Annotation
                order=tuple(_int(i, "order") for i in _list(body.get("order"), "order")),
                candidate=None
                if body.get("candidate") is None
                else _int(body["candidate"], "candidate"),
                label=body.get("label") if isinstance(body.get("label"), str) else None,
                note=_opt_str(body.get("note"), "note") or None,
            )
        except SchemaError as exc:
            raise RequestError(str(exc)) from exc
        if not item.fits(record):
            raise RequestError("the step or candidate does not exist in this episode")
        return self.store.append(item)

    def save_asked(self, job: AskJob) -> tuple[int, int]:
        """Append an asked episode to the ask file and serve it; return ``(file, episode)``."""
        if job.record is None:
            raise RequestError("the question has not been answered yet", 409)
        if self.ask_out is None:
            raise RequestError("saving is off: start the studio with --ask-out FILE", 409)
        with self._lock:
            if job.saved is not None:
                return job.saved
            with EpisodeStore(self.ask_out) as store:
                store.append(job.record)
            target = self.ask_out.resolve()
            known = [i for i, f in enumerate(self.files) if f.path.resolve() == target]
            if known:
                index = known[0]
                self.files[index].records.append(job.record)
                self.files[index].keys.append(episode_key(job.record))
            else:
                self.files.append(EpisodeFile.load(self.ask_out))
                index = len(self.files) - 1
            job.saved = (index, len(self.files[index].records) - 1)
            return job.saved

    def start_ask(self, body: Mapping[str, Any]) -> AskJob:
        """Start answering a typed question in a worker thread."""
        if self.asker is None:
            raise RequestError("asking is off: start the studio with --llm and --ask-task", 409)
        question = _str(body.get("question"), "question").strip()
        if not question or len(question) > MAX_QUESTION_CHARS:
            raise RequestError(f"the question must have 1 to {MAX_QUESTION_CHARS} characters")
        answer = _opt_str(body.get("answer"), "answer") or ""
        choice = {k: _str(body.get(k), k) for k in ("task", "agent", "llm")}
        try:
            self.asker.check(**choice)
        except ValueError as exc:
            raise RequestError(str(exc)) from exc
        job = AskJob(next(self._job_ids))
        with self._lock:
            self.jobs[job.id] = job
        thread = threading.Thread(
            target=self.asker.run,
            args=(job, question, answer.strip()),
            kwargs=choice,
            name=f"studio-ask-{job.id}",
            daemon=True,
        )
        thread.start()
        return job

    def job(self, job_id: int) -> AskJob:
        """The ask job with ``job_id``, or a 404 error."""
        found = self.jobs.get(job_id)
        if found is None:
            raise RequestError(f"no question {job_id}", 404)
        return found


# ---- request checking helpers ---------------------------------------------------------------


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(f"{what}: expected an integer")
    return value


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise RequestError(f"{what}: expected a string")
    return value


def _opt_str(value: Any, what: str) -> str | None:
    return None if value is None else _str(value, what)


def _list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise RequestError(f"{what}: expected an array")
    return value


def _summary(file: int, number: int, key: str, record: EpisodeRecord) -> dict[str, Any]:
    """What the episode list shows and filters on."""
    question = record.question
    return {
        "file": file,
        "n": number,
        "key": key,
        "example_id": record.example_id,
        "env_id": record.env_id,
        "agent": str(record.extra.get("agent", "")),
        "question": question if len(question) <= PREVIEW_CHARS else question[:PREVIEW_CHARS] + "…",
        "status": episode_status(record, record.options is not None),
        "steps": len(record.steps),
        "sampled": sum(1 for s in record.steps if len(s.candidates) > 1),
    }


def create_app(studio: Studio) -> Any:
    """The Starlette app serving ``studio`` (see the module docstring for its safeguards)."""
    require("starlette", feature="the annotation studio")
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    def page(name: str, media: str) -> Response:
        body = (
            resources.files("raggym.benchmarks.studio")
            .joinpath("static")
            .joinpath(name)
            .read_bytes()
        )
        headers = {
            "Content-Security-Policy": CSP,
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
        }
        return Response(body, media_type=media, headers=headers)

    async def index(request: Request) -> Response:
        return page("studio.html", "text/html; charset=utf-8")

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:  # a fixed list of names: no path reaches the file system
            return JSONResponse({"error": "not found"}, status_code=404)
        return page(name, STATIC[name])

    async def body_of(request: Request) -> Any:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            raise RequestError("send application/json", 415)
        origin = request.headers.get("origin")
        if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
            raise RequestError("cross-origin writes are refused", 403)
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
            raise RequestError(f"the body is larger than {MAX_BODY_BYTES} bytes", 413)
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > MAX_BODY_BYTES:
                raise RequestError(f"the body is larger than {MAX_BODY_BYTES} bytes", 413)
        try:
            parsed = json.loads(bytes(data))
        except (ValueError, RecursionError) as exc:
            raise RequestError("the body is not valid JSON") from exc
        if not isinstance(parsed, dict):
            raise RequestError("the body must be a JSON object")
        return parsed

    async def config(request: Request) -> Response:
        asker = studio.asker
        return JSONResponse(
            {
                "export": studio.exporter is not None,
                "ask": None if asker is None else asker.choices(),
                "save": studio.ask_out is not None,
                "texts": studio.documents is not None,
            }
        )

    async def files(request: Request) -> Response:
        return JSONResponse(
            [
                {
                    "index": i,
                    "name": f.path.name,
                    "episodes": len(f.records),
                    "skipped": f.skipped.describe(),
                }
                for i, f in enumerate(studio.files)
            ]
        )

    async def episodes(request: Request) -> Response:
        index = int(request.path_params["file"])
        file = studio.file(index)
        return JSONResponse(
            [
                _summary(index, n, key, r)
                for n, (r, key) in enumerate(zip(file.records, file.keys, strict=True))
            ]
        )

    async def episode(request: Request) -> Response:
        record, key = studio.episode(
            int(request.path_params["file"]), int(request.path_params["n"])
        )
        data = record.to_dict()
        data.pop("run_card", None)
        return JSONResponse({"key": key, "record": data, "texts": studio.texts(record)})

    async def annotations(request: Request) -> Response:
        if request.method == "POST":
            made = await asyncio.to_thread(studio.annotate, await body_of(request))
            return JSONResponse(made.to_dict(), status_code=201)
        key = request.query_params.get("episode")
        items = [a for a in studio.annotations() if key is None or a.episode == key]
        return JSONResponse([a.to_dict() for a in items])

    async def agree(request: Request) -> Response:
        report = await asyncio.to_thread(agreement, studio.all_records(), studio.annotations())
        return JSONResponse(report.to_dict())

    async def export(request: Request) -> Response:
        if studio.exporter is None:
            raise RequestError("export is off (raggym's trainers are not installed)", 409)
        kind = request.query_params.get("format", "dpo")
        if kind not in ("sft", "dpo", "critic"):
            raise RequestError("format must be sft, dpo or critic")
        exporter = studio.exporter
        rows = await asyncio.to_thread(exporter, studio.all_records(), studio.annotations(), kind)
        if request.query_params.get("download"):
            text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
            disposition = f'attachment; filename="annotations-{kind}.jsonl"'
            return Response(
                text,
                media_type="application/x-ndjson",
                headers={"Content-Disposition": disposition},
            )
        return JSONResponse({"format": kind, "count": len(rows), "rows": rows})

    async def ask(request: Request) -> Response:
        job = studio.start_ask(await body_of(request))
        return JSONResponse({"job": job.id}, status_code=202)

    async def events(request: Request) -> Response:
        job = studio.job(int(request.path_params["job"]))

        async def stream() -> AsyncIterator[str]:
            sent = 0
            while True:
                with job.lock:
                    pending = job.events[sent:]
                    finished = job.done
                for event, data in pending:
                    yield f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
                sent += len(pending)
                if finished and not pending:
                    yield "event: end\ndata: {}\n\n"
                    return
                if await request.is_disconnected():
                    return
                await asyncio.sleep(0.05)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def save(request: Request) -> Response:
        await body_of(request)
        job = studio.job(int(request.path_params["job"]))
        file, number = await asyncio.to_thread(studio.save_asked, job)
        return JSONResponse({"file": file, "n": number})

    async def refused(request: Request, exc: Exception) -> Response:
        status = exc.status if isinstance(exc, RequestError) else 400
        return JSONResponse({"error": str(exc)}, status_code=status)

    routes = [
        Route("/", index),
        Route("/static/{name}", static),
        Route("/api/config", config),
        Route("/api/files", files),
        Route("/api/files/{file:int}/episodes", episodes),
        Route("/api/files/{file:int}/episodes/{n:int}", episode),
        Route("/api/annotations", annotations, methods=["GET", "POST"]),
        Route("/api/agreement", agree),
        Route("/api/export", export),
        Route("/api/ask", ask, methods=["POST"]),
        Route("/api/ask/{job:int}/events", events),
        Route("/api/ask/{job:int}/save", save, methods=["POST"]),
    ]
    app = Starlette(routes=routes, exception_handlers={RequestError: refused})
    return _HostCheck(app)


class _HostCheck:
    """ASGI wrapper answering 421 to a request whose ``Host`` is not a loopback name.

    A page on another site can point its own domain at 127.0.0.1 (DNS rebinding); its
    requests then carry that domain as ``Host`` and are refused here.
    """

    def __init__(self, app: Any, allowed: frozenset[str] = ALLOWED_HOSTS) -> None:
        self.app = app
        self.allowed = set(allowed)

    def allow(self, host: str) -> None:
        """Also accept ``host`` (the address the studio was bound to)."""
        self.allowed.add(host)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            host = headers.get(b"host", b"").decode("latin-1")
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if name not in self.allowed:
                from starlette.responses import PlainTextResponse

                await PlainTextResponse("unknown host", status_code=421)(scope, receive, send)
                return
        await self.app(scope, receive, send)
