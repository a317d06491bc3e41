"""The ``raggym`` command line: subcommands are plugged in through entry points.

Each package contributes commands under the ``raggym.commands`` entry-point group as a
function that adds a sub-parser (and sets ``func``), so the environment package never
imports the agents, trainers or benchmarks that add their own commands.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path

from raggym_env.retrieval.base import IndexMismatchError

__all__ = ["index_command", "main"]

#: Errors that mean "the user asked for something that cannot be done", shown without a trace.
USER_ERRORS = (ValueError, FileNotFoundError, KeyError, IndexMismatchError, ImportError)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every installed subcommand."""
    parser = argparse.ArgumentParser(
        prog="raggym",
        description="Multi-hop QA environments, agents, trainers and leaderboards.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for ep in sorted(entry_points(group="raggym.commands"), key=lambda e: e.name):
        ep.load()(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; user errors print one line and exit with status 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as exc:
        print(f"raggym {args.command}: error: {exc}", file=sys.stderr)
        return 2


def index_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``raggym index``: build a BM25 index on disk for a task or a corpus."""
    parser = sub.add_parser(
        "index",
        help="build a retrieval index on disk",
        description="Build a BM25 index for a task's corpus or your own corpus file/folder.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--task", help="hotpotqa, 2wikimultihopqa, bamboogle, medqa")
    source.add_argument("--corpus", type=Path, help="JSON/JSONL of title+text, or .txt files")
    parser.add_argument("--data-path", type=Path, help="task data file (default: bundled)")
    parser.add_argument("--out", type=Path, required=True, help="index directory to write")
    parser.add_argument("--chunk-tokens", type=int, default=400, help="words per text chunk")
    parser.add_argument("--overlap", type=int, default=50, help="words shared by chunks")
    parser.set_defaults(func=_run_index)


def _run_index(args: argparse.Namespace) -> int:
    from raggym_env.corpora import load_corpus
    from raggym_env.retrieval.bm25 import BM25Retriever
    from raggym_env.tasks import load_task

    if args.task:
        corpus = load_task(args.task, path=args.data_path).corpus
    else:
        corpus = load_corpus(args.corpus, chunk_tokens=args.chunk_tokens, overlap=args.overlap)
    start = time.perf_counter()
    retriever = BM25Retriever.build(corpus)
    built = time.perf_counter() - start
    retriever.save(args.out)
    print(
        f"built BM25 index of {len(corpus):,} documents ({corpus.name}) in {built:.2f}s "
        f"-> {args.out} (corpus hash {corpus.content_hash[:12]})"
    )
    return 0
