"""``raggym studio``: serve the annotation studio, report agreement, export training rows.

- ``raggym studio serve EPISODES... --annotations FILE``: the web app on 127.0.0.1.
- ``raggym studio agree EPISODES... --annotations FILE``: agreement between annotators and
  between people and the recorded scorers (``--json`` for a machine-readable report).
- ``raggym studio export EPISODES... --annotations FILE --format sft|dpo|critic --out FILE``:
  training rows from people's judgements (needs raggym's trainers).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import warnings
from collections.abc import Callable
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from raggym.benchmarks.studio.agreement import agreement
from raggym.benchmarks.studio.app import Exporter, Studio, create_app
from raggym_env.annotations import read_annotations
from raggym_env.cli import EXIT_OK
from raggym_env.redaction import redact_text
from raggym_env.store import ReadStats, read_episodes

__all__ = ["EXPORTER_GROUP", "load_exporter", "studio_command"]

EXPORTER_GROUP = "raggym.annotation_exporters"
"""Entry-point group naming the function that turns annotations into rows (``rows``)."""

DEFAULT_AGENTS = ("react", "re2search", "rag", "search_o1", "cot", "direct")


def load_exporter() -> Exporter | None:
    """The installed annotation exporter (raggym's trainers), or ``None`` without one."""
    for ep in entry_points(group=EXPORTER_GROUP):
        if ep.name == "rows":
            try:
                found: Any = ep.load()
            except ImportError:
                return None
            return _wrap(found)
    return None


def _wrap(rows: Callable[..., list[dict[str, Any]]]) -> Exporter:
    """Adapt ``annotation_rows(records, annotations, kind)`` to the studio's exporter."""

    def export(records: Any, annotations: Any, kind: str) -> list[dict[str, Any]]:
        return rows(records, annotations, kind)

    return export


def studio_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``raggym studio`` and its ``serve``, ``agree`` and ``export`` subcommands."""
    parser = sub.add_parser(
        "studio",
        help="annotate episodes in the browser; annotator agreement; export rows",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = parser.add_subparsers(dest="studio_command", required=True, metavar="ACTION")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("episodes", nargs="+", type=Path, help="episode JSONL files")
        p.add_argument("--annotations", type=Path, required=True, help="annotation JSONL file")

    serve = verbs.add_parser("serve", help="run the web app")
    common(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765, help="port (0: any free one)")
    serve.add_argument(
        "--texts-from", metavar="TASK", help="show document texts from this task's corpus"
    )
    serve.add_argument(
        "--llm", action="append", default=[], help="an LLM endpoint Ask may use (repeatable)"
    )
    serve.add_argument(
        "--agent", action="append", default=[], help="an agent Ask may use (repeatable)"
    )
    serve.add_argument(
        "--ask-task", action="append", default=[], help="a task Ask may search (repeatable)"
    )
    serve.add_argument("--ask-out", type=Path, help="episode file asked episodes are saved to")
    serve.set_defaults(func=_serve)

    agree = verbs.add_parser("agree", help="agreement between annotators and scorers")
    common(agree)
    agree.add_argument("--json", action="store_true", help="print the report as JSON")
    agree.set_defaults(func=_agree)

    export = verbs.add_parser("export", help="training rows from the annotations")
    common(export)
    export.add_argument("--format", choices=("sft", "dpo", "critic"), required=True)
    export.add_argument("--out", type=Path, required=True, help="JSONL file to write")
    export.set_defaults(func=_export)


def _read(args: argparse.Namespace) -> tuple[list[Any], list[Any]]:
    """The episodes and annotations named on the command line (bad lines are reported)."""
    records: list[Any] = []
    for path in args.episodes:
        if not path.is_file():
            raise FileNotFoundError(f"no episode file at {path}")
        records.extend(read_episodes(path))
    stats = ReadStats()
    annotations = list(read_annotations(args.annotations, stats=stats))
    if stats.count:
        warnings.warn(f"{args.annotations}: {stats.describe()}", stacklevel=2)
    return records, annotations


def _agree(args: argparse.Namespace) -> int:
    records, annotations = _read(args)
    report = agreement(records, annotations)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.to_text())
    return EXIT_OK


def _export(args: argparse.Namespace, exporter: Exporter | None = None) -> int:
    exporter = exporter or load_exporter()
    if exporter is None:
        raise ImportError("exporting needs raggym's trainers (pip install raggym[train])")
    records, annotations = _read(args)
    rows = exporter(records, annotations, args.format)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} {args.format} rows to {args.out}")
    return EXIT_OK


def build_asker(tasks: list[str], agents: list[str], llms: list[str]) -> Any:
    """An :class:`~raggym.benchmarks.studio.ask.Asker` over the named tasks, agents and LLMs."""
    from raggym.agents.registry import make_agent, make_llm
    from raggym.benchmarks.studio.ask import Asker
    from raggym_env.env import RAGEnv
    from raggym_env.tasks import load_task

    loaded = cache(load_task)
    backends = cache(make_llm)
    # the page shows each endpoint without the credentials a spec may carry
    specs = {redact_text(spec): spec for spec in llms}

    def env(task: str) -> RAGEnv:
        return RAGEnv(loaded(task))

    def agent(name: str, llm: str) -> Any:
        return make_agent(name, backends(specs[llm]))

    return Asker(tasks, agents or list(DEFAULT_AGENTS), list(specs), env, agent)


def _serve(args: argparse.Namespace) -> int:
    from raggym_env.retrieval.server import BackgroundServer

    documents = None
    if args.texts_from:
        from raggym_env.tasks import load_task

        documents = load_task(args.texts_from).corpus
    asker = None
    if args.llm and args.ask_task:
        asker = build_asker(args.ask_task, args.agent, args.llm)
    studio = Studio(
        args.episodes,
        args.annotations,
        documents=documents,
        exporter=load_exporter(),
        asker=asker,
        ask_out=args.ask_out,
    )
    app = create_app(studio)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"warning: serving on {args.host}: anyone who can reach it can read the episodes "
            "and write annotations",
            file=sys.stderr,
        )
        app.allow(args.host)
    server = BackgroundServer(app, host=args.host, port=args.port).start()
    print(f"raggym studio at {server.url}/  (Ctrl-C stops it)", flush=True)
    try:
        threading.Event().wait()
    finally:
        server.stop()
    return EXIT_OK
