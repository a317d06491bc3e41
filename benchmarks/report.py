"""Write a benchmark run's reports: Markdown, CSV, JSON, a PNG chart and a self-contained HTML.

The input is the leaderboard mapping the runner builds (``schema_version``, ``suite``,
``run_card``, ``created_at``, ``llm`` and ``cells``, each a :meth:`CellResult.to_dict`) and,
for the HTML episode browser, the episodes keyed by ``(dataset, agent)``. Every file is
written atomically (a temporary file in the same folder, then :func:`os.replace`), so a
reader never sees half a report. The PNG needs matplotlib (``pip install 'raggym[report]'``);
without it the chart is skipped and everything else is still written.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from raggym.benchmarks.aggregate import METRIC_COLUMNS, CellResult
from raggym_env.availability import install_hint, is_matplotlib_available, require
from raggym_env.episode import EpisodeRecord

__all__ = [
    "FORMATS",
    "REPORT_FILES",
    "Table",
    "format_csv",
    "format_json",
    "format_markdown",
    "format_metric",
    "full_table",
    "headline",
    "leaderboard_cells",
    "plot_leaderboard",
    "png_available",
    "run_header",
    "summary_table",
    "write_reports",
]

REPORT_FILES: dict[str, str] = {
    "md": "leaderboard.md",
    "csv": "leaderboard.csv",
    "json": "leaderboard.json",
    "png": "leaderboard.png",
    "html": "report.html",
}
"""Report format -> file name inside the run folder."""

FORMATS: tuple[str, ...] = tuple(REPORT_FILES)
"""Every format :func:`write_reports` can write."""

INSTALL_HINT = install_hint("matplotlib")

_RATES = frozenset({"em", "f1", "cover_em", "accuracy", "evidence_recall"})
_PER_QUESTION = frozenset({"searches", "steps"})
_COUNTS = frozenset({"parse_failures", "failures"})
_DURATIONS = frozenset(
    {
        "latency_q_p50",
        "latency_q_p95",
        "latency_q_p99",
        "latency_step_p50",
        "latency_step_p95",
        "latency_step_p99",
    }
)
_CELL_FIELDS = ("dataset", "agent", "task", "multiple_choice", "selected", "finished")
_FAILURES_SHOWN = 5
_ERROR_WIDTH = 240

Episodes = Mapping[tuple[str, str], Sequence[EpisodeRecord]]
"""A run's episode records keyed by ``(dataset, agent)``."""


# --------------------------------------------------------------------------------------------
# Reading the leaderboard
# --------------------------------------------------------------------------------------------


def leaderboard_cells(leaderboard: Mapping[str, Any]) -> list[CellResult]:
    """Parse the leaderboard's ``cells`` so every report reads the same typed rows.

    Raises:
        ValueError: ``cells`` is missing, not a list, or a cell lacks a required field.
    """
    raw = leaderboard.get("cells")
    if not isinstance(raw, Sequence) or isinstance(raw, (str, bytes)):
        raise ValueError("leaderboard['cells'] must be a list of cell mappings")
    cells = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise ValueError(f"leaderboard cell {i} is a {type(item).__name__}, not a mapping")
        missing = [name for name in _CELL_FIELDS if name not in item]
        if missing:
            raise ValueError(f"leaderboard cell {i} lacks the fields {missing}")
        cells.append(CellResult.from_dict(item))
    return cells


def _finite(value: Any) -> float | None:
    """``value`` as a float, or ``None`` when it is missing, not a number, or not finite."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def headline(cell: CellResult) -> tuple[str, str]:
    """The metric a cell is ranked by, as ``(key, title)``: accuracy for MC, else F1."""
    return ("accuracy", "Acc") if cell.multiple_choice else ("f1", "F1")


def _ordered(values: Iterable[str]) -> list[str]:
    """Distinct values in order of first appearance (the suite's order)."""
    return list(dict.fromkeys(values))


def run_header(leaderboard: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The run's provenance as ``(label, value)`` pairs, shared by the Markdown and HTML headers.

    Labels: ``suite``, ``description``, ``created``, ``raggym``, ``git``, ``python``,
    ``LLM``; entries without a value are left out (except ``LLM``, which reads ``none``).
    """
    suite = leaderboard.get("suite")
    suite = suite if isinstance(suite, Mapping) else {}
    card = leaderboard.get("run_card")
    card = card if isinstance(card, Mapping) else {}
    pairs: list[tuple[str, str]] = []

    def add(label: str, value: Any) -> None:
        if value not in (None, ""):
            pairs.append((label, str(value)))

    add("suite", suite.get("name"))
    add("description", suite.get("description"))
    add("created", leaderboard.get("created_at"))
    add("raggym", card.get("package_version"))
    revision = card.get("git_revision")
    if revision:
        dirty = card.get("git_dirty")
        add("git", f"{revision}{' (dirty)' if dirty else ''}")
    add("python", card.get("python_version"))
    pairs.append(("LLM", str(leaderboard.get("llm") or "none")))
    return pairs


# --------------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------------


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
    number = _finite(value)
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
    if key in _DURATIONS:
        return _duration(number)
    if key == "tokens_per_q":
        return f"{number:,.0f}"
    if key == "throughput":
        return f"{number:,.2f}" if number < 100 else f"{number:,.0f}"
    return f"{number:.3g}"


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


def full_table(leaderboard: Mapping[str, Any]) -> Table:
    """Every metric of every cell: one row per dataset x agent, in the suite's order."""
    cells = leaderboard_cells(leaderboard)
    columns = ["dataset", "agent", "n", "finished", *(title for _, title in METRIC_COLUMNS)]
    keys = ["dataset", "agent", "selected", "finished", *(key for key, _ in METRIC_COLUMNS)]
    rows = tuple(
        (
            cell.dataset,
            cell.agent,
            f"{cell.selected:,}",
            f"{cell.finished:,}",
            *(format_metric(key, cell.metrics.get(key)) for key, _ in METRIC_COLUMNS),
        )
        for cell in cells
    )
    numeric = (False, False, *([True] * (len(columns) - 2)))
    return Table(tuple(columns), tuple(keys), rows, numeric)


def summary_table(leaderboard: Mapping[str, Any]) -> Table:
    """The paper-style table: one row per agent, each dataset's headline columns, an average.

    Open-QA datasets show EM and F1, multiple-choice ones accuracy. With more than one
    dataset, ``avg`` is the mean of each dataset's headline score (F1 or accuracy); it is
    ``-`` when the agent lacks a score on some dataset. The best value of each column is
    marked (bold in Markdown) when two or more agents have one.
    """
    cells = leaderboard_cells(leaderboard)
    datasets = _ordered(cell.dataset for cell in cells)
    agents = _ordered(cell.agent for cell in cells)
    by_key = {(cell.dataset, cell.agent): cell for cell in cells}
    mc = {d: next(c.multiple_choice for c in cells if c.dataset == d) for d in datasets}
    spec: list[tuple[str, str, str]] = []  # (dataset, metric key, title)
    for dataset in datasets:
        if mc[dataset]:
            spec.append((dataset, "accuracy", f"{dataset} Acc"))
        else:
            spec += [(dataset, "em", f"{dataset} EM"), (dataset, "f1", f"{dataset} F1")]
    with_average = len(datasets) > 1
    kinds = {headline(by_key[(d, a)])[1] for (d, a) in by_key}
    average_title = "avg " + ("/".join(sorted(kinds, key=["F1", "Acc"].index)))

    values: list[list[float | None]] = []
    for agent in agents:
        row: list[float | None] = []
        for dataset, key, _ in spec:
            cell = by_key.get((dataset, agent))
            row.append(_finite(cell.metrics.get(key)) if cell is not None else None)
        if with_average:
            scores = []
            for dataset in datasets:
                cell = by_key.get((dataset, agent))
                score = _finite(cell.metrics.get(headline(cell)[0])) if cell else None
                scores.append(score)
            known = [s for s in scores if s is not None]
            row.append(sum(known) / len(known) if len(known) == len(scores) else None)
        values.append(row)

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
        (agent, *(format_metric("f1", v) for v in row))
        for agent, row in zip(agents, values, strict=True)
    )
    numeric = (False, *([True] * n_value_columns))
    return Table(tuple(columns), tuple(keys), rows, numeric, frozenset(best))


def _md_text(text: str) -> str:
    """Make ``text`` safe inside a Markdown table cell or list item (one line, no pipes)."""
    flat = " ".join(str(text).split())
    return flat.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;")


def _md_code(text: str) -> str:
    """``text`` as an inline code span whose fence outlasts any backtick run inside it."""
    flat = " ".join(str(text).split()).replace("|", "\\|")
    longest = run = 0
    for char in flat:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    fence = "`" * (longest + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


def _shorten(text: str, width: int) -> str:
    """One line of at most about ``width`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _markdown_table(table: Table) -> list[str]:
    """The lines of a GitHub-flavoured Markdown table."""
    lines = [
        "| " + " | ".join(_md_text(c) for c in table.columns) + " |",
        "|" + "|".join("---:" if n else "---" for n in table.numeric) + "|",
    ]
    for r, row in enumerate(table.rows):
        shown = [
            f"**{_md_text(v)}**" if (r, c) in table.best else _md_text(v) for c, v in enumerate(row)
        ]
        lines.append("| " + " | ".join(shown) + " |")
    return lines


def format_markdown(leaderboard: Mapping[str, Any]) -> str:
    """The leaderboard as Markdown: run header, summary table, full table and failures.

    This is what ``raggym bench`` prints and writes to ``leaderboard.md``.
    """
    cells = leaderboard_cells(leaderboard)
    header = dict(run_header(leaderboard))
    lines = [f"# Benchmark: {_md_text(header.get('suite', 'unnamed suite'))}", ""]
    if "description" in header:
        lines += [_md_text(header["description"]), ""]
    for label in ("created", "raggym", "git", "python", "LLM"):
        if label in header:
            lines.append(f"- **{label}**: {_md_text(header[label])}")
    lines.append("")
    if not cells:
        lines.append("No cells: the suite selected no dataset x agent pair.")
        return "\n".join(lines) + "\n"

    lines += ["## Summary", ""]
    lines += _markdown_table(summary_table(leaderboard))
    lines += [
        "",
        "EM/F1 for open QA, Acc for multiple choice; every average divides by the selected "
        "questions, so a failed item counts 0. Best per column in bold.",
        "",
        "## All metrics",
        "",
    ]
    lines += _markdown_table(full_table(leaderboard))
    lines += ["", "## Failed items", ""]
    failed = [cell for cell in cells if cell.errors or _finite(cell.metrics.get("failures"))]
    if not failed:
        lines.append("None: every selected question ran to its end.")
    for cell in failed:
        total = int(_finite(cell.metrics.get("failures")) or len(cell.errors))
        lines.append(
            f"### {_md_text(cell.dataset)} / {_md_text(cell.agent)}: "
            f"{total:,} of {cell.selected:,} failed"
        )
        lines.append("")
        for error in cell.errors[:_FAILURES_SHOWN]:
            example = _md_code(str(error.get("example_id", "?")))
            message = _md_code(_shorten(str(error.get("error", "")), _ERROR_WIDTH))
            lines.append(f"- {example}: {message}")
        hidden = total - min(len(cell.errors), _FAILURES_SHOWN)
        if hidden > 0:
            where = f" (see {_md_code(cell.episodes_file)})" if cell.episodes_file else ""
            lines.append(f"- … and {hidden:,} more{where}")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def _metric_keys(cells: Sequence[CellResult]) -> list[str]:
    """Every metric key: :data:`METRIC_COLUMNS` first, then any others the cells carry."""
    known = [key for key, _ in METRIC_COLUMNS]
    extra = sorted({k for cell in cells for k in cell.metrics} - set(known))
    return known + extra


def format_csv(leaderboard: Mapping[str, Any]) -> str:
    """One CSV row per cell with every metric as its own column, for spreadsheets and pandas.

    Columns: ``dataset, agent, task, multiple_choice, selected, finished``, the metric keys
    (full precision; empty when ``None``), ``n_errors`` and ``episodes_file``.
    """
    cells = leaderboard_cells(leaderboard)
    metric_keys = _metric_keys(cells)
    fields = [*_CELL_FIELDS, *metric_keys, "n_errors", "episodes_file"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for cell in cells:
        row: dict[str, Any] = {
            "dataset": cell.dataset,
            "agent": cell.agent,
            "task": cell.task,
            "multiple_choice": str(bool(cell.multiple_choice)).lower(),
            "selected": cell.selected,
            "finished": cell.finished,
            "n_errors": len(cell.errors),
            "episodes_file": cell.episodes_file,
        }
        for key in metric_keys:
            value = _finite(cell.metrics.get(key))
            row[key] = "" if value is None else repr(value)
        writer.writerow(row)
    return buffer.getvalue()


def format_json(leaderboard: Mapping[str, Any]) -> str:
    """The leaderboard as given, as stable JSON (sorted keys, 2-space indent)."""
    return json.dumps(leaderboard, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------------------------
# PNG chart (optional: matplotlib)
# --------------------------------------------------------------------------------------------


def png_available() -> bool:
    """Whether matplotlib is installed, i.e. whether :func:`write_reports` can draw the PNG."""
    return is_matplotlib_available()


def plot_leaderboard(leaderboard: Mapping[str, Any], handle: IO[bytes]) -> None:
    """Draw the grouped bar chart (datasets on x, a bar per agent, headline score) as PNG.

    Args:
        leaderboard: the leaderboard mapping.
        handle: a binary file to write the PNG to.

    Raises:
        MissingDependencyError: matplotlib is not installed (an ``ImportError`` whose
            message says how to install it).
    """
    backend_agg = require("matplotlib.backends.backend_agg", feature="the PNG chart")
    Figure = require("matplotlib.figure", feature="the PNG chart").Figure
    FigureCanvasAgg = backend_agg.FigureCanvasAgg

    cells = leaderboard_cells(leaderboard)
    datasets = _ordered(cell.dataset for cell in cells)
    agents = _ordered(cell.agent for cell in cells)
    by_key = {(cell.dataset, cell.agent): cell for cell in cells}
    titles = {d: headline(next(c for c in cells if c.dataset == d))[1] for d in datasets}
    suite = dict(run_header(leaderboard)).get("suite", "benchmark")

    width = max(6.0, 1.0 + len(datasets) * max(1.2, 0.45 * len(agents)))
    figure = Figure(figsize=(width, 4.8), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    bar = 0.8 / max(1, len(agents))
    top = 1.0
    for i, agent in enumerate(agents):
        heights: list[float] = []
        labels: list[str] = []
        for dataset in datasets:
            cell = by_key.get((dataset, agent))
            value = _finite(cell.metrics.get(headline(cell)[0])) if cell else None
            heights.append(math.nan if value is None else value)
            labels.append("-" if value is None else f"{value:.2f}")
            top = max(top, value or 0.0)
        offsets = [x - 0.4 + bar * (i + 0.5) for x in range(len(datasets))]
        bars = axes.bar(offsets, heights, bar * 0.92, label=agent)
        axes.bar_label(bars, labels=labels, padding=2, fontsize=8)
    axes.set_xticks(range(len(datasets)), [f"{d}\n({titles[d]})" for d in datasets])
    axes.set_ylim(0.0, top * 1.1)
    axes.set_xlabel("dataset (headline metric)")
    axes.set_ylabel("score (F1 for open QA, accuracy for MC)")
    axes.set_title(f"{suite}: headline score per dataset and agent")
    axes.grid(axis="y", alpha=0.3)
    axes.set_axisbelow(True)
    if agents:
        figure.legend(loc="outside lower center", ncols=min(len(agents), 4), title="agent")
    figure.savefig(handle, format="png", dpi=150)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``path`` through a temporary file in its folder, then rename it into place."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    done = False
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, path)
        done = True
    finally:
        if not done:
            Path(temp).unlink(missing_ok=True)


def _write_text(path: Path, text: str) -> None:
    """Write ``text`` as UTF-8, atomically."""
    data = text.encode("utf-8")

    def write(handle: IO[bytes]) -> None:
        handle.write(data)

    _atomic_write(path, write)


def write_reports(
    leaderboard: Mapping[str, Any],
    episodes: Episodes | None,
    out_dir: str | os.PathLike[str],
    *,
    formats: Iterable[str] = FORMATS,
) -> dict[str, Path]:
    """Write the run's reports into ``out_dir`` so people and tools can read the results.

    Args:
        leaderboard: the leaderboard mapping (see the module docstring).
        episodes: the episode records by ``(dataset, agent)``, for the HTML episode browser
            (``None`` or empty: the browser lists nothing).
        out_dir: the folder to write into (created if needed).
        formats: any of ``md``, ``csv``, ``json``, ``png``, ``html``.

    Returns:
        Format -> path of each file written. ``png`` is absent when matplotlib is not
        installed (check :func:`png_available` to tell the user).

    Raises:
        ValueError: an unknown format, or a malformed leaderboard.
    """
    wanted = list(dict.fromkeys(formats))
    unknown = [f for f in wanted if f not in REPORT_FILES]
    if unknown:
        raise ValueError(f"unknown report formats {unknown}; choose from {list(FORMATS)}")
    leaderboard_cells(leaderboard)  # validate once, before writing anything
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for fmt in wanted:
        path = out / REPORT_FILES[fmt]
        if fmt == "md":
            _write_text(path, format_markdown(leaderboard))
        elif fmt == "csv":
            _write_text(path, format_csv(leaderboard))
        elif fmt == "json":
            _write_text(path, format_json(leaderboard))
        elif fmt == "png":
            if not png_available():
                continue
            try:
                _atomic_write(path, lambda handle: plot_leaderboard(leaderboard, handle))
            except ImportError:  # matplotlib present but unusable: skip the chart only
                continue
        else:
            # Imported here: html_report builds on this module's tables.
            from raggym.benchmarks.html_report import render_html

            _write_text(path, render_html(leaderboard, episodes or {}))
        written[fmt] = path
    return written
