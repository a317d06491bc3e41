"""``raggym bench SUITE`` runs a benchmark suite; ``raggym compare A B`` diffs two runs.

``raggym bench smoke`` needs nothing but the package: bundled questions, a local BM25
index and the model-free baselines. Suites with LLM agents take ``--llm``, e.g.
``--llm openai:http://127.0.0.1:8000/v1:Qwen/Qwen2.5-7B-Instruct`` for a vLLM server.
A rerun into the same ``--out`` resumes: finished questions are not played again.
The folder records every cell's settings (run.json); a rerun with other settings (k,
max_steps, retriever, data, LLM, agent options, prompts, seeds, ...) is refused with each
change named: --fresh moves the old episodes aside, or pick another --out. One process
writes a folder at a time. Failed questions stay failed on resume unless --retry-failed.

Exit status: 0 all selected questions played without failure, 1 some failed (the last
line says how many and the command that retries them), 2 usage error (nothing played),
130 interrupted (finished episodes are saved; the same command resumes).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raggym.agents.cli import add_resume_arguments
from raggym_env.cli import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, retry_command

if TYPE_CHECKING:
    from raggym.benchmarks.leaderboard import Leaderboard

__all__ = ["DEMO_NOTE", "bench_command", "compare_command", "compare_runs", "demo_command"]

DEMO_NOTE = "raggym demo is raggym bench smoke (the same run, the same options)"
"""The line ``raggym demo`` prints before it runs the smoke suite."""


def bench_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``raggym bench``."""
    from raggym.benchmarks.suite import available_suites

    parser = sub.add_parser(
        "bench",
        help="run a benchmark suite and write its leaderboard and HTML report (resumable)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "suite", help=f"a packaged suite ({', '.join(available_suites())}) or a TOML file"
    )
    _add_run_arguments(parser)
    parser.set_defaults(func=_bench)


def demo_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``raggym demo``: another name for ``raggym bench smoke``."""
    parser = sub.add_parser(
        "demo",
        help="the same as 'raggym bench smoke': model-free baselines on the bundled samples",
        description=f"{DEMO_NOTE}.\n\n{__doc__}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_run_arguments(parser)
    parser.set_defaults(func=_demo, suite="smoke")


def _demo(args: argparse.Namespace) -> int:
    print(DEMO_NOTE)
    return _bench(args)


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of a suite run, shared by ``raggym bench`` and ``raggym demo``."""
    parser.add_argument("--llm", help="LLM backend: openai:URL:MODEL, hf:PATH or vllm:MODEL")
    parser.add_argument("--out", type=Path, help="run folder (default runs/bench/<suite>)")
    parser.add_argument(
        "--data-dir", type=Path, help="folder that the suite's relative dataset paths start in"
    )
    parser.add_argument("--limit", type=int, help="cap every dataset at N questions")
    parser.add_argument(
        "--api-key-env", help="environment variable holding the API key (never logged)"
    )
    parser.add_argument("--concurrency", type=int, help="HTTP requests in flight")
    parser.add_argument(
        "--wandb",
        metavar="PROJECT",
        help="also log to this wandb project (checked before the run: without a wandb login "
        "the run is logged offline, with a warning, for a later `wandb sync`)",
    )
    add_resume_arguments(parser, "the folder's old episodes and run.json")


def _bench(args: argparse.Namespace) -> int:
    from raggym.benchmarks.report import INSTALL_HINT, format_markdown, png_available
    from raggym.benchmarks.runner import run_suite
    from raggym.benchmarks.suite import load_suite

    suite = load_suite(args.suite, data_dir=args.data_dir)
    options: dict[str, Any] = dict(suite.llm.options)
    if args.api_key_env:
        options["api_key_env"] = args.api_key_env
    if args.concurrency:
        options["concurrency"] = args.concurrency
    if options != suite.llm.options:
        import dataclasses

        suite = dataclasses.replace(suite, llm=dataclasses.replace(suite.llm, options=options))
    out = args.out or Path("runs/bench") / suite.name
    wandb_mode = None
    if args.wandb:  # checked before playing: a missing login must not cost the run
        from raggym.benchmarks.tracking import wandb_mode as check_wandb

        wandb_mode, note = check_wandb()
        if note:
            print(f"warning: {note}", file=sys.stderr)
    try:
        leaderboard, episodes = run_suite(
            suite, out, llm=args.llm, limit=args.limit, fresh=args.fresh,
            retry_failed=args.retry_failed,
        )  # fmt: skip
    except KeyboardInterrupt:
        print(
            f"\nraggym {args.command}: interrupted; finished episodes are saved in "
            f"{out / 'episodes'}/ and the same command resumes from there",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    print()
    print(format_markdown(leaderboard))
    if args.wandb:
        from raggym.benchmarks.tracking import log_to_wandb

        log_to_wandb(leaderboard, episodes, project=args.wandb, mode=wandb_mode)
    if not png_available():
        print(f"(no PNG chart: {INSTALL_HINT} for matplotlib)")
    print(f"\nHTML report: {out / 'report.html'}")
    print(f"episodes:    {out / 'episodes'}/")
    failed = sum(cell.failures for cell in leaderboard.cells)
    selected = sum(cell.selected for cell in leaderboard.cells)
    if failed:
        print(
            f"{failed} of {selected} episodes failed; play them again with: {retry_command(args)}"
        )
        return EXIT_FAILED
    print(f"all {selected} episodes played without failure")
    return EXIT_OK


def compare_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``raggym compare``."""
    parser = sub.add_parser(
        "compare",
        help="put two benchmark runs side by side with per-dataset deltas",
        description="Compare two `raggym bench` run folders (or leaderboard.json files): "
        "every cell present in both, then the per-dataset mean of each delta.",
    )
    parser.add_argument("baseline", type=Path, help="run folder A (the reference)")
    parser.add_argument("candidate", type=Path, help="run folder B (the change)")
    parser.set_defaults(func=_compare)


def _compare(args: argparse.Namespace) -> int:
    from raggym.benchmarks.leaderboard import load_leaderboard

    print(compare_runs(load_leaderboard(args.baseline), load_leaderboard(args.candidate)))
    return 0


_COMPARED = (
    ("em", "EM"),
    ("f1", "F1"),
    ("accuracy", "Acc"),
    ("evidence_recall", "ev.recall"),
    ("searches", "searches/q"),
    ("failures", "failures"),
)


def _run_line(label: str, board: Leaderboard) -> str:
    return f"{label}: {board.suite_name or '?'} ({board.created_at or '?'}, llm {board.llm or '-'})"


def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def compare_runs(baseline: Leaderboard, candidate: Leaderboard) -> str:
    """A Markdown comparison: A, B and B-A per shared cell, then per-dataset mean deltas."""
    a_cells, b_cells = baseline.by_key(), candidate.by_key()
    shared = [key for key in a_cells if key in b_cells]
    lines = [
        _run_line("A", baseline),
        _run_line("B", candidate),
        "",
        "| dataset | agent | n | "
        + " | ".join(f"{title} A | {title} B | {title} Δ" for _, title in _COMPARED)
        + " |",
        "|---|---|---:|" + "---:|" * (3 * len(_COMPARED)),
    ]
    deltas: dict[str, dict[str, list[float]]] = {}
    for key in shared:
        a, b = a_cells[key].metrics, b_cells[key].metrics
        row = [key[0], key[1], f"{a_cells[key].selected}/{b_cells[key].selected}"]
        for metric, _ in _COMPARED:
            va, vb = a.get(metric), b.get(metric)
            delta = vb - va if va is not None and vb is not None else None
            if delta is not None:
                deltas.setdefault(key[0], {}).setdefault(metric, []).append(delta)
            row += [_fmt(va), _fmt(vb), _fmt(delta, signed=True)]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Per-dataset mean delta (B - A) over the shared agents:", ""]
    lines.append("| dataset | " + " | ".join(title for _, title in _COMPARED) + " |")
    lines.append("|---|" + "---:|" * len(_COMPARED))
    for dataset, per_metric in deltas.items():
        means = [per_metric.get(m) for m, _ in _COMPARED]
        cells = [_fmt(sum(v) / len(v), signed=True) if v else "-" for v in means]
        lines.append(f"| {dataset} | " + " | ".join(cells) + " |")
    only_a = sorted(set(a_cells) - set(b_cells))
    only_b = sorted(set(b_cells) - set(a_cells))
    if only_a or only_b:
        lines.append("")
        lines += [f"only in A: {d} x {g}" for d, g in only_a]
        lines += [f"only in B: {d} x {g}" for d, g in only_b]
    return "\n".join(lines)
