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
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raggym.agents.cli import add_resume_arguments
from raggym.agents.registry import LLM_SPEC_HELP
from raggym_env.cli import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, retry_command

if TYPE_CHECKING:
    from raggym.benchmarks.leaderboard import CellResult, Leaderboard
    from raggym.benchmarks.stats import PairedResult
    from raggym_env.episode import EpisodeRecord

__all__ = [
    "DEMO_NOTE",
    "CellComparison",
    "PairedComparison",
    "bench_command",
    "compare_command",
    "compare_paired",
    "compare_runs",
    "demo_command",
    "format_paired",
]

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
    parser.add_argument(
        "--judge",
        metavar="SPEC",
        help="judge LLM (openai:URL:MODEL, hf:PATH or vllm:MODEL) adding faithfulness, answer "
        "relevance and context relevance columns; overrides the suite's judge",
    )
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
    parser.add_argument("--llm", help=f"LLM backend: {LLM_SPEC_HELP}")
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
            retry_failed=args.retry_failed, judge=getattr(args, "judge", None),
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


_COMPARE_HELP = """\
Compare two `raggym bench` run folders (or their leaderboard.json files).

First the leaderboards side by side: A, B and B-A for every cell present in both, and the
per-dataset mean of each delta. Then the paired comparison: the questions of each shared
cell are paired by id (from the cells' episode files) and each metric's difference B-A is
given with its 95% paired bootstrap interval and a two-sided p-value: exact McNemar for
0/1 metrics (EM, cover-EM, Acc), a paired sign-flip permutation test for the others (F1,
ev.recall, searches/q, and where both runs report them the gold-evidence ctx.prec and
ctx.recall and the judge's faithful, ans.relev and ctx.relev, read from the run's saved
judge results; each of these pairs the questions both runs count, its own n). A question
that failed counts 0, as in the leaderboard. Cells
whose question sets differ are flagged and compared on the questions they share. Per
dataset, each question's values are averaged over the shared agents and the same
interval and sign-flip test run over questions (McNemar when one agent leaves them 0/1).

Exit status: 0 compared, 2 nothing comparable (no shared cell, or no shared question with
readable episodes in any shared cell) or an unreadable run.
"""


def compare_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``raggym compare``."""
    parser = sub.add_parser(
        "compare",
        help="compare two benchmark runs: deltas with paired intervals and p-values",
        description=_COMPARE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("baseline", type=Path, help="run folder A (the reference)")
    parser.add_argument("candidate", type=Path, help="run folder B (the change)")
    parser.add_argument(
        "--json", action="store_true", help="print the paired comparison as JSON instead"
    )
    parser.set_defaults(func=_compare)


def _compare(args: argparse.Namespace) -> int:
    from raggym.benchmarks.leaderboard import load_leaderboard

    board_a, board_b = load_leaderboard(args.baseline), load_leaderboard(args.candidate)
    paired = compare_paired(board_a, board_b, _run_folder(args.baseline),
                            _run_folder(args.candidate))  # fmt: skip
    if args.json:
        print(json.dumps(paired.to_dict(), indent=2, sort_keys=True))
    else:
        print(compare_runs(board_a, board_b))
        print()
        print(format_paired(paired))
    if not paired.comparable:
        reason = (
            "the runs share no dataset x agent cell"
            if not paired.cells
            else "no shared cell has a shared question with readable episodes"
        )
        print(f"raggym compare: nothing comparable: {reason}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def _run_folder(path: Path) -> Path:
    """The run folder of a ``raggym compare`` argument (a folder or its leaderboard.json)."""
    return path if path.is_dir() else path.parent


_COMPARED = (
    ("em", "EM"),
    ("f1", "F1"),
    ("accuracy", "Acc"),
    ("evidence_recall", "ev.recall"),
    ("searches", "searches/q"),
    ("failures", "failures"),
)
"""The columns of the side-by-side table, always shown."""

_RAG_COLUMNS = (
    ("context_precision", "ctx.prec"),
    ("context_recall", "ctx.recall"),
    ("faithfulness", "faithful"),
    ("answer_relevance", "ans.relev"),
    ("context_relevance", "ctx.relev"),
)
"""Gold-evidence and judge columns, shown where a shared cell of either run reports them."""


def _compared_columns(
    cells: Sequence[tuple[CellResult, CellResult]],
) -> tuple[tuple[str, str], ...]:
    """:data:`_COMPARED` plus each :data:`_RAG_COLUMNS` metric some cell reports."""
    reported = [
        (key, title)
        for key, title in _RAG_COLUMNS
        if any(cell.metrics.get(key) is not None for pair in cells for cell in pair)
    ]
    return (*_COMPARED, *reported)


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
    columns = _compared_columns([(a_cells[key], b_cells[key]) for key in shared])
    lines = [
        _run_line("A", baseline),
        _run_line("B", candidate),
        "",
        "| dataset | agent | n | "
        + " | ".join(f"{title} A | {title} B | {title} Δ" for _, title in columns)
        + " |",
        "|---|---|---:|" + "---:|" * (3 * len(columns)),
    ]
    deltas: dict[str, dict[str, list[float]]] = {}
    for key in shared:
        a, b = a_cells[key].metrics, b_cells[key].metrics
        row = [key[0], key[1], f"{a_cells[key].selected}/{b_cells[key].selected}"]
        for metric, _ in columns:
            va, vb = a.get(metric), b.get(metric)
            delta = vb - va if va is not None and vb is not None else None
            if delta is not None:
                deltas.setdefault(key[0], {}).setdefault(metric, []).append(delta)
            row += [_fmt(va), _fmt(vb), _fmt(delta, signed=True)]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Per-dataset mean delta (B - A) over the shared agents:", ""]
    lines.append("| dataset | " + " | ".join(title for _, title in columns) + " |")
    lines.append("|---|" + "---:|" * len(columns))
    for dataset, per_metric in deltas.items():
        means = [per_metric.get(m) for m, _ in columns]
        cells = [_fmt(sum(v) / len(v), signed=True) if v else "-" for v in means]
        lines.append(f"| {dataset} | " + " | ".join(cells) + " |")
    only_a = sorted(set(a_cells) - set(b_cells))
    only_b = sorted(set(b_cells) - set(a_cells))
    if only_a or only_b:
        lines.append("")
        lines += [f"only in A: {d} x {g}" for d, g in only_a]
        lines += [f"only in B: {d} x {g}" for d, g in only_b]
    return "\n".join(lines)


_PAIRED: tuple[tuple[str, str], ...] = (
    ("em", "EM"),
    ("f1", "F1"),
    ("cover_em", "cover-EM"),
    ("accuracy", "Acc"),
    ("evidence_recall", "ev.recall"),
    ("searches", "searches/q"),
    *_RAG_COLUMNS,
)
"""The metrics the paired comparison tests (each where both cells report it).

The gold-evidence and judge metrics pair the questions both runs count (each has its own
denominator: see :func:`raggym.benchmarks.aggregate.rag_values_by_question`); their
results carry that ``n``.
"""


@dataclass(frozen=True)
class CellComparison:
    """One shared cell compared question by question.

    Attributes:
        dataset: the dataset.
        agent: the agent.
        n: questions present in both runs (the pairs).
        n_a: questions of A's cell.
        n_b: questions of B's cell.
        results: metric -> B - A over the pairs (empty when ``n`` is 0).
        note: why the cell could not be compared, if it could not.
    """

    dataset: str
    agent: str
    n: int
    n_a: int
    n_b: int
    results: Mapping[str, PairedResult] = field(default_factory=dict)
    note: str | None = None

    @property
    def same_questions(self) -> bool:
        """Whether both runs hold exactly the same questions for this cell."""
        return self.n == self.n_a == self.n_b

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "dataset": self.dataset,
            "agent": self.agent,
            "n": self.n,
            "n_a": self.n_a,
            "n_b": self.n_b,
            "same_questions": self.same_questions,
            "note": self.note,
            "results": {name: r.to_dict() for name, r in self.results.items()},
        }


@dataclass(frozen=True)
class PairedComparison:
    """The paired comparison of two runs: per shared cell and per dataset.

    Attributes:
        cells: one entry per cell present in both runs.
        datasets: dataset -> metric -> B - A over its questions, each question's values
            averaged over the dataset's compared agents.
    """

    cells: tuple[CellComparison, ...]
    datasets: Mapping[str, Mapping[str, PairedResult]]

    @property
    def comparable(self) -> bool:
        """Whether some shared cell had at least one shared question."""
        return any(cell.n for cell in self.cells)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "comparable": self.comparable,
            "cells": [cell.to_dict() for cell in self.cells],
            "datasets": {
                name: {metric: r.to_dict() for metric, r in results.items()}
                for name, results in self.datasets.items()
            },
        }


def _cell_questions(folder: Path, cell: CellResult) -> tuple[list[EpisodeRecord], list[str]]:
    """A cell's final episode records and all its question ids, from its episode file.

    The ids are those with a record plus the failures listed as having none.

    Raises:
        ValueError: the cell names no episode file, or one outside the run folder, or the
            file cannot be read.
    """
    from raggym_env.store import final_episodes, read_episodes

    if not cell.episodes_file:
        raise ValueError("the leaderboard names no episode file")
    root = folder.resolve()
    path = (root / cell.episodes_file).resolve()
    if not path.is_relative_to(root):
        raise ValueError(f"episode file {cell.episodes_file!r} lies outside the run folder")
    if not path.is_file():
        raise ValueError(f"episode file {str(path)!r} is missing")
    try:
        records = final_episodes(read_episodes(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"episode file {str(path)!r} cannot be read: {exc}") from None
    ids = list(dict.fromkeys(r.example_id for r in records))
    ids += [e.example_id for e in cell.errors if e.error == "no episode recorded"]
    return records, list(dict.fromkeys(ids))


def _values_by_question(
    folder: Path, key: tuple[str, str], records: list[EpisodeRecord], shared: list[str]
) -> dict[str, dict[str, float]]:
    """Each paired metric's value per question id of one run's cell.

    The judge metrics come from the judge results the run saved for the cell (those made
    for the episodes as recorded); without them they stay empty.
    """
    from raggym.benchmarks.aggregate import question_values_by_id
    from raggym.benchmarks.runner import saved_judgements

    judged = saved_judgements(folder, key[0], key[1], records)
    return question_values_by_id(records, shared, judged)


def compare_paired(
    baseline: Leaderboard, candidate: Leaderboard, folder_a: Path, folder_b: Path
) -> PairedComparison:
    """Pair the questions of every shared cell by id and test each metric's difference B-A.

    ``folder_a`` / ``folder_b`` are the run folders the cells' ``episodes_file`` paths
    start in. See ``raggym compare --help`` for the tests; a cell whose episodes cannot be
    read is kept with a note and ``n`` 0.
    """
    from raggym.benchmarks.aggregate import BINARY_METRICS
    from raggym.benchmarks.stats import paired_test

    a_cells, b_cells = baseline.by_key(), candidate.by_key()
    compared: list[CellComparison] = []
    # dataset -> metric -> question id -> ([A values], [B values]) over the agents
    pooled: dict[str, dict[str, dict[str, tuple[list[float], list[float]]]]] = {}
    for key in (k for k in a_cells if k in b_cells):
        a, b = a_cells[key], b_cells[key]
        dataset, agent = key
        try:
            records_a, ids_a = _cell_questions(folder_a, a)
            records_b, ids_b = _cell_questions(folder_b, b)
        except ValueError as exc:
            compared.append(CellComparison(dataset, agent, 0, 0, 0, note=str(exc)))
            continue
        in_b = set(ids_b)
        shared = [i for i in ids_a if i in in_b]
        values_a = _values_by_question(folder_a, key, records_a, shared)
        values_b = _values_by_question(folder_b, key, records_b, shared)
        results: dict[str, PairedResult] = {}
        for metric, _ in _PAIRED:
            if not shared or a.metrics.get(metric) is None or b.metrics.get(metric) is None:
                continue
            ids = [i for i in shared if i in values_a[metric] and i in values_b[metric]]
            if not ids:
                continue
            va = [values_a[metric][i] for i in ids]
            vb = [values_b[metric][i] for i in ids]
            results[metric] = paired_test(va, vb, binary=metric in BINARY_METRICS)
            per_question = pooled.setdefault(dataset, {}).setdefault(metric, {})
            for qid, x, y in zip(ids, va, vb, strict=True):
                pair = per_question.setdefault(qid, ([], []))
                pair[0].append(x)
                pair[1].append(y)
        note = None if shared else "no shared question"
        compared.append(
            CellComparison(dataset, agent, len(shared), len(ids_a), len(ids_b), results, note)
        )
    datasets: dict[str, dict[str, PairedResult]] = {}
    for dataset, metrics in pooled.items():
        for metric, per_question in metrics.items():
            mean_a = [sum(x) / len(x) for x, _ in per_question.values()]
            mean_b = [sum(y) / len(y) for _, y in per_question.values()]
            datasets.setdefault(dataset, {})[metric] = paired_test(
                mean_a, mean_b, binary=metric in BINARY_METRICS
            )
    return PairedComparison(tuple(compared), datasets)


def _paired_text(result: PairedResult | None) -> list[str]:
    """``Δ [lo, hi]`` and the p-value of one result, or dashes."""
    if result is None:
        return ["-", "-"]
    ci = result.ci95
    interval = f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci is not None else ""
    return [f"{result.diff:+.3f}{interval}", _p_text(result.p_value)]


def _p_text(p_value: float) -> str:
    """A p-value with three significant digits (``<0.001`` below that)."""
    return "<0.001" if p_value < 0.001 else f"{p_value:.3g}"


def _paired_table(
    first: Sequence[str], rows: Sequence[tuple[list[str], Mapping[str, PairedResult]]]
) -> list[str]:
    """A Markdown table of Δ and p per :data:`_PAIRED` metric."""
    metrics = [(m, t) for m, t in _PAIRED if any(m in results for _, results in rows)]
    lines = [
        "| " + " | ".join([*first, *(f"{t} Δ [95% CI] | {t} p" for _, t in metrics)]) + " |",
        "|" + "---|" * (len(first) - 1) + "---:|" * (1 + 2 * len(metrics)),
    ]
    for head, results in rows:
        cells = [text for m, _ in metrics for text in _paired_text(results.get(m))]
        lines.append("| " + " | ".join([*head, *cells]) + " |")
    return lines


def format_paired(paired: PairedComparison) -> str:
    """The paired comparison as Markdown: per cell, per dataset, and flagged cells."""
    lines = [
        "Paired by question (B - A with its 95% bootstrap interval; p: exact McNemar for "
        "EM/cover-EM/Acc, sign-flip permutation otherwise):",
        "",
    ]
    rows = [
        ([c.dataset, c.agent, str(c.n) + ("" if c.same_questions else " *")], c.results)
        for c in paired.cells
        if c.n
    ]
    if rows:
        lines += _paired_table(["dataset", "agent", "n"], rows)
    else:
        lines.append("(no cell with shared questions)")
    if paired.datasets:
        lines += ["", "Per dataset (each question averaged over the shared agents):", ""]
        lines += _paired_table(
            ["dataset", "n"],
            [
                ([name, str(next(iter(results.values())).n)], results)
                for name, results in paired.datasets.items()
            ],
        )
    flagged = [c for c in paired.cells if not c.same_questions or c.note]
    if flagged:
        lines += ["", "Flagged (n * : the runs hold different questions for the cell):"]
    for cell in flagged:
        where = f"{cell.dataset} x {cell.agent}"
        if cell.note and not cell.n:
            lines.append(f"* {where}: not compared: {cell.note}")
        else:
            lines.append(
                f"* {where}: question sets differ (A {cell.n_a}, B {cell.n_b}); "
                f"compared on the {cell.n} shared"
            )
    return "\n".join(lines)
