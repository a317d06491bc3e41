"""The ``raggym serve-retriever`` command: serve one retrieval index over HTTP."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from raggym_env.cli import add_option_argument, parse_options
from raggym_env.corpora import CORPUS_FORMATS, DEFAULT_CHUNK_OVERLAP, DEFAULT_CHUNK_TOKENS
from raggym_env.retrieval.base import Retriever
from raggym_env.retrieval.server import MAX_JSON_DEPTH, MAX_NUMBER_CHARS

__all__ = ["retriever_factory_from_args", "run_serve_retriever", "serve_command"]


def serve_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``raggym serve-retriever``: an HTTP retrieval server for many workers."""
    parser = sub.add_parser(
        "serve-retriever",
        help="serve a retrieval index over HTTP",
        description=(
            "Serve a task's corpus, your own corpus or a saved index over HTTP "
            "(POST /search, GET /health, GET /metrics); clients use RemoteRetriever. "
            "POST /retrieve speaks Search-R1's protocol for Search-R1, veRL and GEM."
        ),
        epilog=(
            "Every /search and /retrieve request is bounded and a violation gets a 4xx "
            "with a JSON error naming the limit: body size (413), body arrival time (408, "
            "connection closed), "
            f"JSON nesting <= {MAX_JSON_DEPTH} levels and numbers <= {MAX_NUMBER_CHARS} "
            "characters (400), k in 1..max-k (422), queries per request and query length "
            "(413), queries x k <= max-results (413; bounds the reply). GET /health lists "
            "the limits in force."
        ),
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--task", help="hotpotqa, hotpotqa-fullwiki (with --data-path), 2wikimultihopqa, ..."
    )
    source.add_argument(
        "--corpus",
        help="corpus file or folder (JSON/JSONL of title+text, .txt files, DPR TSV, FlashRAG "
        "JSONL, MedRAG chunks, HotpotQA abstracts; .gz/.bz2 read) or hub:<dataset>[:config"
        "[:split]]",
    )
    parser.add_argument(
        "--corpus-format",
        choices=tuple(CORPUS_FORMATS),
        help="the --corpus format (default: detected from the path and first record)",
    )
    parser.add_argument("--data-path", type=Path, help="task data file (default: bundled)")
    parser.add_argument(
        "--index-dir",
        type=Path,
        help="index directory (alone: a saved BM25 index, or with --retriever bm25s one saved "
        "by bm25s's BM25.save; with --task/--corpus: passed to the retriever as index_dir, "
        "which loads a matching index there or builds one, e.g. the output of `raggym index`)",
    )
    parser.add_argument("--retriever", default="bm25", help="backend name (bm25, dense, ...)")
    parser.add_argument(
        "--chunk-tokens",
        type=int,
        default=DEFAULT_CHUNK_TOKENS,
        help="for .txt corpora: words (whitespace-delimited tokens) per chunk "
        f"(default {DEFAULT_CHUNK_TOKENS})",
    )
    parser.add_argument(
        "--overlap",
        type=int,
        default=DEFAULT_CHUNK_OVERLAP,
        help="for .txt corpora: words shared by consecutive chunks "
        f"(default {DEFAULT_CHUNK_OVERLAP})",
    )
    add_option_argument(parser)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind")
    parser.add_argument("--port", type=int, default=8001, help="TCP port")
    parser.add_argument("--max-batch", type=int, default=64, help="queries per search call")
    parser.add_argument("--max-wait-ms", type=float, default=5.0, help="batching window")
    limits = parser.add_argument_group("request limits")
    limits.add_argument("--max-k", type=int, default=1000, help="largest k accepted (default 1000)")
    limits.add_argument(
        "--max-queries", type=int, default=256, help="queries per request (default 256)"
    )
    limits.add_argument(
        "--max-query-chars", type=int, default=2000, help="characters per query (default 2000)"
    )
    limits.add_argument(
        "--max-results",
        type=int,
        default=4096,
        help="most queries x k per request, which bounds the reply (default 4096)",
    )
    limits.add_argument(
        "--max-body-bytes",
        type=int,
        default=4 * 1024 * 1024,
        help="largest request body in bytes (default 4 MiB)",
    )
    limits.add_argument(
        "--body-timeout-s",
        type=float,
        default=10.0,
        help="seconds a client may take to send its body after the headers; slower: 408 "
        "(default 10)",
    )
    limits.add_argument(
        "--retrieve-topk",
        type=int,
        default=3,
        help="topk of a Search-R1 /retrieve request that leaves it out (default 3, as "
        "Search-R1's server)",
    )
    limits.add_argument(
        "--keep-alive-s",
        type=float,
        default=5.0,
        help="idle keep-alive connections are closed after this many seconds (default 5)",
    )
    parser.set_defaults(func=run_serve_retriever)


def retriever_factory_from_args(args: argparse.Namespace) -> Callable[[], Retriever]:
    """Return a zero-argument callable building the retriever the arguments describe.

    Nothing heavy happens until it is called (the server calls it in its loader thread).

    With ``--task`` or ``--corpus`` the retriever comes from
    ``make_retriever(args.retriever, corpus, index_dir=args.index_dir, **options)`` (options
    from ``--option``; ``index_dir`` only when ``--index-dir`` is given). ``--index-dir``
    alone loads a saved BM25 index, which carries its own corpus; with ``--retriever bm25s``
    it is a directory bm25s's ``BM25.save`` wrote (``--option`` goes to
    :func:`~raggym_env.retrieval.bm25s_index.load_bm25s_index`, e.g. ``stemmer=english``),
    and with ``--task``/``--corpus`` too, that corpus supplies documents the index lacks.

    Raises:
        ValueError: if neither ``--task``, ``--corpus`` nor ``--index-dir`` is given,
            ``--index-dir`` alone is used with a backend other than ``bm25``/``bm25s`` or
            ``bm25`` with ``--option``, ``bm25s`` lacks ``--index-dir``, or an ``--option``
            is not ``KEY=VALUE``.
    """
    options = parse_options(getattr(args, "options", None))
    if not (args.task or args.corpus or args.index_dir):
        raise ValueError("give one of --task, --corpus or --index-dir")
    bm25s_index = args.retriever == "bm25s"
    if bm25s_index and args.index_dir is None:
        raise ValueError("--retriever bm25s needs --index-dir, the directory BM25.save wrote")
    if not (args.task or args.corpus) and args.retriever not in ("bm25", "bm25s"):
        raise ValueError(
            f"--index-dir alone only loads a saved bm25 or bm25s index; give --task or "
            f"--corpus for retriever {args.retriever!r}"
        )
    if not (args.task or args.corpus) and options and not bm25s_index:
        raise ValueError("--option needs --task or --corpus (--index-dir alone loads as saved)")
    corpus_format = getattr(args, "corpus_format", None)
    if corpus_format is not None and not args.corpus:
        raise ValueError("--corpus-format needs --corpus")
    if args.index_dir is not None:
        options["path" if bm25s_index else "index_dir"] = args.index_dir

    def build() -> Retriever:
        from raggym_env.retrieval.factory import make_retriever

        if args.retriever in ("bm25", "hybrid", "hybrid+rerank"):
            from raggym_env.retrieval.bm25 import warm_up

            warm_up()  # numba starts before /health turns 200, not in the first request

        if args.task:
            from raggym_env.tasks import load_task

            corpus = load_task(args.task, path=args.data_path).corpus
        elif args.corpus:
            from raggym_env.corpora import load_corpus

            corpus = load_corpus(
                str(args.corpus),
                chunk_tokens=getattr(args, "chunk_tokens", DEFAULT_CHUNK_TOKENS),
                overlap=getattr(args, "overlap", DEFAULT_CHUNK_OVERLAP),
                format=corpus_format,
            )
        elif bm25s_index:
            from raggym_env.retrieval.bm25s_index import load_bm25s_index

            return load_bm25s_index(**options)
        else:
            from raggym_env.retrieval.bm25 import BM25Retriever

            return BM25Retriever.load(args.index_dir)
        return make_retriever(args.retriever, corpus, **options)

    return build


def run_serve_retriever(args: argparse.Namespace) -> int:
    """Serve until interrupted (the index loads in the background; watch ``/health``)."""
    from raggym_env.retrieval.server import run_server

    factory = retriever_factory_from_args(args)
    print(
        f"raggym retrieval server on http://{args.host}:{args.port} "
        f"(GET /health reports 'ready' once the index has loaded)",
        flush=True,
    )
    run_server(
        factory,
        host=args.host,
        port=args.port,
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        max_k=args.max_k,
        max_queries_per_request=args.max_queries,
        max_query_chars=args.max_query_chars,
        max_results_per_request=args.max_results,
        max_body_bytes=args.max_body_bytes,
        body_timeout_s=args.body_timeout_s,
        retrieve_topk=args.retrieve_topk,
        timeout_keep_alive_s=args.keep_alive_s,
    )
    return 0
