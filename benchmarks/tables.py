"""Leaderboard tables: what every report shows, numbers formatted the same way everywhere.

:func:`summary_table` (paper style: an agent per row, each dataset's headline columns, an
average) and :func:`full_table` (every metric of every cell) turn a
:class:`~raggym.benchmarks.leaderboard.Leaderboard` into a :class:`Table` of formatted text;
:func:`run_header` gives the run's provenance. The Markdown report and the HTML page both
print these, so the two never disagree. With ``intervals=True`` each mean is followed by its
95% bootstrap interval in the same units (``0.412 [0.381, 0.443]``); a cell without one
(an older ``leaderboard.json``) shows the mean alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from raggym.benchmarks.aggregate import METRIC_COLUMNS
from raggym.benchmarks.leaderboard import CellResult, Leaderboard

__all__ = [
    "DURATION_KEYS",
    "Table",
    "finite",
    "format_metric",
    "format_with_interval",
    "full_table",
    "headline",
    "run_header",
    "summary_table",
]

_RATES = frozenset(
    {"em", "f1", "cover_em", "accuracy", "paper_em", "paper_f1", "paper_acc", "evidence_recall"}
    | {"context_precision", "context_recall"}
    | {"faithfulness", "answer_relevance", "context_relevance"}
)
_PER_QUESTION = frozenset({"searches", "steps"})
_COUNTS = frozenset({"parse_failures", "failures", "judge_failures"})
DURATION_KEYS = frozenset(
    {
        "latency_q_p50",
        "latency_q_p95",
        "latency_q_p99",
        "latency_step_p50",
        "latency_step_p95",
        "latency_step_p99",
    }
)
"""The latency percentiles: durations in seconds, shown in ``ms`` or ``s``."""


def finite(value: Any) -> float | None:
    """``value`` as a float, or ``None`` when it is missing, not a number, or not finite."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def headline(cell: CellResult) -> tuple[str, str]:
    """The metric a cell is ranked by, as ``(key, title)``: accuracy for MC, else F1."""
    return ("accuracy", "Acc") if cell.multiple_choice else ("f1", "F1")


def run_header(leaderboard: Leaderboard) -> list[tuple[str, str]]:
    """The run's provenance as ``(label, value)`` pairs, shared by the Markdown and HTML headers.

    Labels: ``suite``, ``description``, ``created``, ``raggym``, ``git``, ``python``,
    ``LLM``; entries without a value are left out (except ``LLM``, which reads ``none``).
    """
    card = leaderboard.run_card
    pairs: list[tuple[str, str]] = []

    def add(label: str, value: str | None) -> None:
        if value not in (None, ""):
            pairs.append((label, str(value)))

    add("suite", leaderboard.suite_name)
    add("description", leaderboard.suite_description)
    add("created", leaderboard.created_at)
    add("raggym", card.package_version)
    if card.git_revision:
        add("git", f"{card.git_revision}{' (dirty)' if card.git_dirty else ''}")
    add("python", card.python_version)
    pairs.append(("LLM", leaderboard.llm or "none"))
    return pairs


def _duration(seconds: float) -> str:
    """A duration in ``s`` from one second up, else in ``ms``."""
    if seconds >= 1.0:
        return f"{seconds:,.2f} s"
    millis = seconds * 1000.0
    return f"{millis:.1f} ms" if millis >= 1.0 else f"{millis:.3f} ms"


def format_metric(key: str, value: Any) -> str:
    """Format one metric for a table, so every report shows the same numbers.

    Rates (EM, F1, accuracy, recall) get 3 decimals, counts per question 2, totals none,
    latencies and wall time read in ``ms`` or ``s``; a missing or non-finite value is ``-``.
    """
    number = finite(value)
    if number is None:
        return "-"
    if key in _RATES:
        return f"{number:.3f}"
    if key in _PER_QUESTION:
        return f"{number:.2f}"
    if key in _COUNTS:
        return f"{number:,.0f}"
    if key == "wall_s":
        return f"{number:,.2f} s"
    if key in DURATION_KEYS:
        return _duration(number)
    if key == "tokens_per_q":
        return f"{number:,.0f}"
    if key == "throughput":
        return f"{number:,.2f}" if number < 100 else f"{number:,.0f}"
    return f"{number:.3g}"


def format_with_interval(key: str, value: Any, ci: tuple[float, float] | None) -> str:
    """:func:`format_metric` followed by the interval ``[lo, hi]`` in the same format.

    Without an interval (or without a value) this is :func:`format_metric` alone.
    """
    shown = format_metric(key, value)
    if ci is None or shown == "-":
        return shown
    return f"{shown} [{format_metric(key, ci[0])}, {format_metric(key, ci[1])}]"


def _cell_text(cell: CellResult, key: str, intervals: bool) -> str:
    """One metric of a cell, with its interval when asked for and recorded."""
    ci = cell.ci95.get(key) if intervals else None
    return format_with_interval(key, cell.metrics.get(key), ci)


@dataclass(frozen=True)
class Table:
    """A table ready to print: titles, formatted rows, and how to align and emphasise them.

    Attributes:
        columns: the column titles.
        keys: a machine-readable name per column (the metric key, or ``dataset:key``).
        rows: the formatted cells, one tuple per row.
        numeric: per column, whether it holds numbers (right-aligned).
        best: ``(row, column)`` positions of the best value of a column (shown in bold).
    """

    columns: tuple[str, ...]
    keys: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[bool, ...]
    best: frozenset[tuple[int, int]] = frozenset()


def full_table(leaderboard: Leaderboard, *, intervals: bool = False) -> Table:
    """Every metric of every cell: one row per dataset x agent, in the suite's order.

    ``intervals``: show each mean's ``ci95`` beside it.
    """
    columns = ["dataset", "agent", "n", "finished", *(title for _, title in METRIC_COLUMNS)]
    keys = ["dataset", "agent", "selected", "finished", *(key for key, _ in METRIC_COLUMNS)]
    rows = tuple(
        (
            cell.dataset,
            cell.agent,
            f"{cell.selected:,}",
            f"{cell.finished:,}",
            *(_cell_text(cell, key, intervals) for key, _ in METRIC_COLUMNS),
        )
        for cell in leaderboard.cells
    )
    numeric = (False, False, *([True] * (len(columns) - 2)))
    return Table(tuple(columns), tuple(keys), rows, numeric)


def summary_table(leaderboard: Leaderboard, *, intervals: bool = False) -> Table:
    """The paper-style table: one row per agent, each dataset's headline columns, an average.

    Open-QA datasets show EM and F1, multiple-choice ones accuracy, each followed by the
    RAG-Gym paper's scoring of the same answers (``paper-EM``/``paper-F1``/``paper-Acc``)
    when some cell of the dataset has it. With more than one
    dataset, ``avg`` is the mean of each dataset's headline score (F1 or accuracy); it is
    ``-`` when the agent lacks a score on some dataset. The best value of each column is
    marked (bold in Markdown) when two or more agents have one. ``intervals``: each
    dataset's mean is followed by its ``ci95`` (the average has none: it is a mean of
    means over different question sets).
    """
    datasets = leaderboard.datasets
    agents = leaderboard.agents
    by_key = leaderboard.by_key()
    spec: list[tuple[str, str, str]] = []  # (dataset, metric key, title)
    for dataset in datasets:
        if leaderboard.is_multiple_choice(dataset):
            spec.append((dataset, "accuracy", f"{dataset} Acc"))
            paper = [(dataset, "paper_acc", f"{dataset} paper-Acc")]
        else:
            spec += [(dataset, "em", f"{dataset} EM"), (dataset, "f1", f"{dataset} F1")]
            paper = [
                (dataset, "paper_em", f"{dataset} paper-EM"),
                (dataset, "paper_f1", f"{dataset} paper-F1"),
            ]
        cells = [cell for (name, _), cell in by_key.items() if name == dataset]
        spec += [
            column
            for column in paper
            if any(finite(cell.metrics.get(column[1])) is not None for cell in cells)
        ]
    with_average = len(datasets) > 1
    kinds = {headline(cell)[1] for cell in by_key.values()}
    average_title = "avg " + ("/".join(sorted(kinds, key=["F1", "Acc"].index)))

    values: list[list[float | None]] = []
    cis: list[list[tuple[float, float] | None]] = []
    for agent in agents:
        row: list[float | None] = []
        row_ci: list[tuple[float, float] | None] = []
        for dataset, key, _ in spec:
            cell = by_key.get((dataset, agent))
            row.append(finite(cell.metrics.get(key)) if cell is not None else None)
            row_ci.append(cell.ci95.get(key) if cell is not None and intervals else None)
        if with_average:
            scores = []
            for dataset in datasets:
                cell = by_key.get((dataset, agent))
                score = finite(cell.metrics.get(headline(cell)[0])) if cell else None
                scores.append(score)
            known = [s for s in scores if s is not None]
            row.append(sum(known) / len(known) if len(known) == len(scores) else None)
            row_ci.append(None)
        values.append(row)
        cis.append(row_ci)

    n_value_columns = len(spec) + int(with_average)
    best: set[tuple[int, int]] = set()
    for col in range(n_value_columns):
        column = [(r, row[col]) for r, row in enumerate(values) if row[col] is not None]
        if len(column) >= 2:
            top = max(v for _, v in column if v is not None)
            best |= {(r, col + 1) for r, v in column if v == top}

    columns = ["agent", *(title for _, _, title in spec)]
    keys = ["agent", *(f"{dataset}:{key}" for dataset, key, _ in spec)]
    if with_average:
        columns.append(average_title)
        keys.append("avg")
    rows = tuple(
        (agent, *(format_with_interval("f1", v, c) for v, c in zip(row, row_ci, strict=True)))
        for agent, row, row_ci in zip(agents, values, cis, strict=True)
    )
    numeric = (False, *([True] * n_value_columns))
    return Table(tuple(columns), tuple(keys), rows, numeric, frozenset(best))
