"""The ``raggym`` command line: subcommands are plugged in through entry points.

Each package contributes commands under the ``raggym.commands`` entry-point group as a
function that adds a sub-parser (and sets ``func``), so the environment package never
imports the agents, trainers or benchmarks that add their own commands.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import time
import warnings
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from raggym_env.corpora import (
    DEFAULT_CHUNK_OVERLAP,
    DEFAULT_CHUNK_TOKENS,
    BaseCorpus,
    Corpus,
    DiskCorpus,
    is_corpus_store,
)
from raggym_env.progress import PROGRESS_ENV, progress_setting
from raggym_env.redaction import redact_text
from raggym_env.retrieval.base import IndexMismatchError
from raggym_env.runfiles import RunConflictError

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "add_option_argument",
    "index_command",
    "main",
    "parse_option",
    "parse_options",
    "retry_command",
]

EXIT_OK = 0
"""Exit status: everything selected was played (or resumed) without a failure."""
EXIT_FAILED = 1
"""Exit status: the command ran, but some selected items failed (see its last line)."""
EXIT_USAGE = 2
"""Exit status: a usage error (bad flags, files, settings); nothing was played."""
EXIT_INTERRUPTED = 130
"""Exit status: interrupted (Ctrl-C); what was finished is saved, the same command resumes."""

#: Errors that mean "the user asked for something that cannot be done", shown without a trace.
USER_ERRORS = (
    ValueError,
    FileNotFoundError,
    FileExistsError,
    KeyError,
    IndexMismatchError,
    ImportError,
    RunConflictError,
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every installed subcommand."""
    parser = argparse.ArgumentParser(
        prog="raggym",
        description="Multi-hop QA environments, agents, trainers and leaderboards.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for ep in sorted(entry_points(group="raggym.commands"), key=lambda e: e.name):
        try:
            register = ep.load()
        except ImportError as exc:  # a command whose module or dependency is missing
            _unavailable(sub, ep.name, exc)
            continue
        register(sub)
    for command in sub.choices.values():
        _add_progress_flag(command)
    return parser


def _add_progress_flag(command: argparse.ArgumentParser) -> None:
    """Give a command ``--progress`` / ``--no-progress`` unless it declares them itself.

    A command with subcommands (``raggym train sft``) gets the flag on each of them, where
    users write it, and not on itself.
    """
    if command.prefix_chars != "-":  # an unavailable command takes no options
        return
    nested = [a for a in command._actions if isinstance(a, argparse._SubParsersAction)]
    if nested:
        for action in nested:
            for child in action.choices.values():
                _add_progress_flag(child)
        return
    if any("--progress" in action.option_strings for action in command._actions):
        return
    command.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"progress bars on stderr (default: on a terminal; or set {PROGRESS_ENV}=0/1)",
    )


def _unavailable(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, exc: ImportError
) -> None:
    """Register ``name`` as a command that explains why it cannot run (the rest still work)."""
    reason = f"{type(exc).__name__}: {exc}"
    # No option prefix: every argument (even "--help") lands in `rest`, so the user sees why
    # the command is unavailable instead of an argument error.
    parser = sub.add_parser(
        name, help=f"(unavailable: {reason})", prefix_chars="\0", add_help=False
    )
    parser.add_argument("rest", nargs="*", help=argparse.SUPPRESS)

    def fail(_args: argparse.Namespace) -> int:
        raise ImportError(f"the {name!r} command cannot be loaded ({reason})")

    parser.set_defaults(func=fail)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand and return its exit status.

    :data:`EXIT_OK` (0), :data:`EXIT_FAILED` (1: some selected items failed),
    :data:`EXIT_USAGE` (2: user errors print one line; argparse errors too) or
    :data:`EXIT_INTERRUPTED` (130: Ctrl-C).
    """
    parser = build_parser()
    words = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(words)
    args.argv = words
    try:
        with warnings.catch_warnings(), progress_setting(getattr(args, "progress", None)):
            warnings.showwarning = _show_warning
            return int(args.func(args) or 0)
    except USER_ERRORS as exc:
        print(f"raggym {args.command}: error: {redact_text(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(
            f"\nraggym {args.command}: interrupted; finished work is saved and the same "
            "command resumes it",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """Warnings on a terminal: one line saying what happened, not the code that noticed."""
    print(f"warning: {redact_text(str(message))}", file=file or sys.stderr)


def retry_command(args: argparse.Namespace, flag: str = "--retry-failed") -> str:
    """The command line that was run, with ``flag`` added (to tell users how to retry).

    ``--fresh`` is left out: rerunning with it would move the episodes to retry aside.
    """
    words = [str(w) for w in getattr(args, "argv", None) or [args.command] if w != "--fresh"]
    if flag not in words:
        words.append(flag)
    return redact_text(shlex.join(["raggym", *words]))


def parse_option(text: str) -> tuple[str, Any]:
    """Parse one ``KEY=VALUE`` option; the value is JSON when it parses, else a string.

    Args:
        text: the raw ``KEY=VALUE`` text from the command line.

    Returns:
        The key and the decoded value (``k1=1.2`` gives ``1.2``, ``name=abc`` gives ``"abc"``).

    Raises:
        ValueError: if there is no ``=`` or the key is empty.
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"option {text!r} must look like KEY=VALUE (e.g. k1=1.2)")
    try:
        value: Any = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key, value


def parse_options(items: Sequence[str] | None) -> dict[str, Any]:
    """Parse repeated ``--option KEY=VALUE`` arguments into a dict (later keys win).

    Raises:
        ValueError: if an item is not ``KEY=VALUE``.
    """
    return dict(parse_option(item) for item in items or ())


def add_option_argument(parser: argparse.ArgumentParser) -> None:
    """Add the repeatable ``--option KEY=VALUE`` argument shared by several commands."""
    parser.add_argument(
        "--option",
        dest="options",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="retriever builder option, repeatable; VALUE is parsed as JSON when it parses "
        '(1.2, true, [1, 2], {"a": 1}), else taken as a string',
    )


#: Retrievers ``raggym index`` can build.
INDEX_RETRIEVERS = ("bm25", "dense", "hybrid")
_RETRIEVER_LABELS = {"bm25": "BM25", "dense": "dense", "hybrid": "hybrid (BM25 + dense)"}


def index_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``raggym index``: build a retrieval index on disk for a task or a corpus."""
    parser = sub.add_parser(
        "index",
        help="build a retrieval index on disk",
        description=(
            "Build a BM25, dense or hybrid index for a task's corpus or your own corpus "
            "file/folder, in the layout environments and `raggym serve-retriever` load "
            "(hybrid writes OUT/bm25 and OUT/dense)."
        ),
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--task", help="hotpotqa, 2wikimultihopqa, bamboogle, medqa")
    source.add_argument("--corpus", type=Path, help="JSON/JSONL of title+text, or .txt files")
    parser.add_argument("--data-path", type=Path, help="task data file (default: bundled)")
    parser.add_argument("--out", type=Path, required=True, help="index directory to write")
    parser.add_argument(
        "--retriever", choices=INDEX_RETRIEVERS, default="bm25", help="backend (default bm25)"
    )
    parser.add_argument(
        "--model",
        help="dense/hybrid: sentence-transformers hub name or local path "
        "(default: the bundled all-MiniLM-L6-v2)",
    )
    parser.add_argument(
        "--index-type", choices=("flat", "hnsw", "ivfpq"), help="dense/hybrid: FAISS index type"
    )
    parser.add_argument("--batch-size", type=int, help="dense/hybrid: encoding batch size")
    parser.add_argument(
        "--chunk-tokens",
        type=int,
        default=DEFAULT_CHUNK_TOKENS,
        help="for .txt inputs: words per chunk; tokens are whitespace-delimited words "
        f"(default {DEFAULT_CHUNK_TOKENS})",
    )
    parser.add_argument(
        "--overlap",
        type=int,
        default=DEFAULT_CHUNK_OVERLAP,
        help="for .txt inputs: words shared by consecutive chunks "
        f"(default {DEFAULT_CHUNK_OVERLAP})",
    )
    parser.add_argument(
        "--corpus-format",
        metavar="FORMAT",
        help="format of --corpus (default: detected): passages (JSON/JSONL), text (.txt), "
        "dpr-tsv (psgs_w100.tsv), flashrag-jsonl (wiki-18), medrag, hotpotqa-abstracts; "
        "a corpus store directory is opened as is",
    )
    parser.add_argument(
        "--shard-size",
        type=int,
        help="bm25: documents per index shard (default: as many as --memory-budget allows)",
    )
    parser.add_argument(
        "--memory-budget",
        help="bm25: memory for the shard being built, e.g. 512M or 2G (default 256M); "
        "peak memory of a build stays flat in corpus size",
    )
    parser.add_argument(
        "--workers",
        type=int,
        help="bm25: analysis processes (default: every core for 50,000+ documents)",
    )
    add_option_argument(parser)
    parser.set_defaults(func=_run_index)


def _builder_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options for ``make_retriever`` from ``--model``/``--index-type``/... and ``--option``.

    For ``hybrid`` the dense flags go into the ``dense`` member options and the BM25 build
    flags into the ``bm25`` member options.

    Raises:
        ValueError: a dense-only flag is used with ``bm25`` (or a BM25 one with ``dense``),
            or a member's option is not a JSON object.
    """
    options = parse_options(args.options)
    bm25_flags = {
        name: value
        for name, value in (
            ("shard_size", args.shard_size),
            ("memory_budget", args.memory_budget),
            ("n_workers", args.workers),
        )
        if value is not None
    }
    if bm25_flags:
        if args.retriever == "dense":
            raise ValueError("--shard-size, --memory-budget and --workers only apply to bm25")
        if args.retriever == "bm25":
            options = {**options, **bm25_flags}
        else:
            options = _into_member(options, "bm25", bm25_flags)
    dense_flags = {
        name: value
        for name, value in (
            ("model", args.model),
            ("index_type", args.index_type),
            ("batch_size", args.batch_size),
        )
        if value is not None
    }
    if not dense_flags:
        return options
    if args.retriever == "bm25":
        flags = ", ".join("--" + name.replace("_", "-") for name in dense_flags)
        raise ValueError(f"{flags} only apply to --retriever dense or hybrid")
    if args.retriever == "dense":
        return {**options, **dense_flags}
    return _into_member(options, "dense", dense_flags)


def _into_member(options: dict[str, Any], member: str, flags: dict[str, Any]) -> dict[str, Any]:
    """``options`` with ``flags`` added to the options of a hybrid's ``member``.

    Raises:
        ValueError: the member's options (``--option bm25=...``) are not a JSON object.
    """
    current = options.get(member, {})
    if not isinstance(current, dict):
        raise ValueError(f"option {member} must be a JSON object, got {current!r}")
    return {**options, member: {**current, **flags}}


#: Options that do not change what a saved index holds (left out of the usage lines).
_BUILD_ONLY_OPTIONS = frozenset(
    {
        "batch_size",
        "show_progress",
        "device",
        "memory_budget_bytes",
        "shard_size",
        "memory_budget",
        "n_workers",
    }
)


def _identity_options(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` without build-only settings, as a loader must repeat them."""
    kept: dict[str, Any] = {}
    for key, value in options.items():
        if key in _BUILD_ONLY_OPTIONS:
            continue
        if key in ("bm25", "dense") and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in _BUILD_ONLY_OPTIONS}
            if not value:
                continue
        kept[key] = value
    return kept


def _disk_size(directory: Path) -> int:
    """Sum of the sizes of the files below ``directory``."""
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def _human_bytes(size: int) -> str:
    """``size`` bytes as a short human-readable string (``"1.5 MiB"``)."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _text_files(path: Path) -> list[Path] | None:
    """The ``.txt`` files a corpus path is chunked from, or ``None`` for passage files."""
    if path.is_dir():
        return sorted(path.rglob("*.txt"))
    if path.suffix.lower() == ".txt":
        return [path]
    return None


#: Formats ``raggym index --retriever bm25`` streams into a corpus store instead of memory.
_STREAMED_FORMATS = frozenset({"dpr-tsv", "flashrag-jsonl", "medrag", "hotpotqa-abstracts"})


def _index_corpus(args: argparse.Namespace) -> tuple[BaseCorpus, Path | None]:
    """The corpus ``--corpus`` names, and the staging store to remove after the build.

    A corpus store is opened as is. For BM25, the public dump formats and hub corpora are
    streamed into a store beside ``--out`` (the index links it in as ``OUT/corpus``), so
    memory stays flat at Wikipedia scale; everything else is loaded into memory.
    """
    from raggym_env.corpora import (
        corpus_name,
        detect_corpus_format,
        iter_corpus,
        load_corpus,
        write_store,
    )

    spec = str(args.corpus)
    hub = spec.startswith("hub:")
    if not hub and is_corpus_store(args.corpus):
        if args.corpus_format:
            raise ValueError(
                f"{args.corpus} is a corpus store, opened as it is; --corpus-format applies "
                "to corpus files and folders"
            )
        return DiskCorpus.open(args.corpus), None
    corpus_format = args.corpus_format or (None if hub else detect_corpus_format(args.corpus))
    if args.retriever == "bm25" and (hub or corpus_format in _STREAMED_FORMATS):
        staging = args.out.parent / f".{args.out.name}.corpus-partial"
        shutil.rmtree(staging, ignore_errors=True)
        name = corpus_name(spec)  # what load_corpus would name it
        print(f"streaming {spec} ({corpus_format or 'hub'}) into a corpus store", flush=True)
        try:
            corpus = write_store(iter_corpus(spec, format=corpus_format), staging, name=name)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return corpus, staging
    loaded = load_corpus(
        spec,
        chunk_tokens=args.chunk_tokens,
        overlap=args.overlap,
        format=corpus_format,
    )
    return loaded, None


def _store_path(args: argparse.Namespace, corpus: DiskCorpus) -> Path:
    """Where the index's users find the corpus store: ``OUT/corpus`` for BM25."""
    linked = args.out / "corpus"
    if args.retriever == "bm25" and linked.is_dir():
        return linked
    return corpus.directory


def _option_text(key: str, value: Any) -> str:
    """``KEY=VALUE`` text that :func:`parse_option` turns back into ``(key, value)``."""
    if isinstance(value, str) and parse_option(f"{key}={value}") == (key, value):
        return f"{key}={value}"
    return f"{key}={json.dumps(value)}"


def _usage_lines(
    args: argparse.Namespace, options: dict[str, Any], corpus: BaseCorpus
) -> list[str]:
    """How an environment and the retrieval server load the index just built."""
    from raggym_env.registration import ENV_IDS, env_id

    identity = _identity_options(options)
    out = str(args.out)
    env_options = {"index_dir": out, **identity}
    serve = ["raggym serve-retriever"]
    if args.task:
        registered = next((i for i, t in ENV_IDS.items() if t == args.task.lower()), None)
        env_args = [repr(registered or env_id("Custom"))]
        if args.data_path:
            env_args.append(f"data_path={str(args.data_path)!r}")
        serve.append(f"--task {shlex.quote(args.task)}")
        if args.data_path:
            serve.append(f"--data-path {shlex.quote(str(args.data_path))}")
    elif isinstance(corpus, DiskCorpus):
        store = _store_path(args, corpus)
        env_args = [
            repr(env_id("Custom")),
            "data_path=...",
            f"corpus=DiskCorpus.open({str(store)!r})",
        ]
        serve.append(f"--corpus {shlex.quote(str(store))}")
    else:
        corpus_path = str(args.corpus)
        chunked = _text_files(args.corpus) is not None and (
            args.chunk_tokens != DEFAULT_CHUNK_TOKENS or args.overlap != DEFAULT_CHUNK_OVERLAP
        )
        corpus_arg = (
            f"load_corpus({corpus_path!r}, chunk_tokens={args.chunk_tokens}, "
            f"overlap={args.overlap})"
            if chunked
            else repr(corpus_path)
        )
        env_args = [repr(env_id("Custom")), "data_path=...", f"corpus={corpus_arg}"]
        serve.append(f"--corpus {shlex.quote(corpus_path)}")
        if chunked:
            serve.append(f"--chunk-tokens {args.chunk_tokens} --overlap {args.overlap}")
    env_args.append(f"retriever={args.retriever!r}")
    env_args.append(f"retriever_options={env_options!r}")
    serve.append(f"--retriever {args.retriever} --index-dir {shlex.quote(out)}")
    for key, value in identity.items():
        serve.append(f"--option {shlex.quote(_option_text(key, value))}")
    return [f"gym.make({', '.join(env_args)})", " ".join(serve)]


def _run_index(args: argparse.Namespace) -> int:
    """Build (or reload a matching) index in ``--out`` and print a summary."""
    from raggym_env.retrieval.factory import make_retriever
    from raggym_env.tasks import load_task

    options = _builder_options(args)
    text_files: list[Path] | None = None
    staging: Path | None = None
    start = time.perf_counter()
    if args.task:
        corpus: BaseCorpus = load_task(args.task, path=args.data_path).corpus
        source = f"task {args.task}" + (f" ({args.data_path})" if args.data_path else "")
    else:
        corpus, staging = _index_corpus(args)
        source = str(args.corpus)
        text_files = _text_files(args.corpus) if isinstance(corpus, Corpus) else None
    read_s = time.perf_counter() - start
    label = _RETRIEVER_LABELS[args.retriever]
    print(f"building {label} index of {len(corpus):,} documents -> {args.out}", flush=True)
    start = time.perf_counter()
    try:
        make_retriever(args.retriever, corpus, index_dir=args.out, cache=False, **options)
    except TypeError as exc:
        # Builders reject unknown keyword options with TypeError: a user error here.
        raise ValueError(f"bad --option for retriever {args.retriever!r}: {exc}") from exc
    finally:
        if staging is not None:  # the index holds its own link to the streamed store
            shutil.rmtree(staging, ignore_errors=True)
    built = time.perf_counter() - start
    if isinstance(corpus, Corpus):
        words = sum(len(doc.text.split()) for doc in corpus)
        mean_words = f"{words / max(1, len(corpus)):.1f}"
    else:  # a store is not read twice just for this line
        mean_words = "n/a (corpus on disk)"
    print(
        f"built {label} index of {len(corpus):,} documents ({corpus.name}) in {built:.2f}s "
        f"-> {args.out} (corpus hash {corpus.content_hash[:12]})"
    )
    lines = [
        ("documents", f"{len(corpus):,}"),
        ("source", source),
    ]
    if text_files is not None:
        lines.append(
            (
                "chunking",
                f"{len(corpus):,} chunks from {len(text_files):,} .txt file"
                f"{'' if len(text_files) == 1 else 's'} ({args.chunk_tokens} words per chunk, "
                f"{args.overlap} overlap; words = whitespace-delimited tokens)",
            )
        )
    lines += [
        ("mean words/doc", mean_words),
        ("retriever", args.retriever + (f" {options}" if options else "")),
        ("corpus read", f"{read_s:.2f}s" + (" (streamed into a store)" if staging else "")),
        ("build time", f"{built:.2f}s"),
        ("size on disk", _human_bytes(_disk_size(args.out))),
        ("corpus hash", corpus.content_hash[:12]),
    ]
    env_line, serve_line = _usage_lines(args, options, corpus)
    lines += [("env usage", env_line), ("server usage", serve_line)]
    width = max(len(name) for name, _ in lines)
    for name, value in lines:
        print(f"  {name:<{width}}  {value}")
    return 0
