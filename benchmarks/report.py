"""Write a benchmark run's reports: Markdown, CSV, JSON, a PNG chart and a self-contained HTML.

The input is the run's :class:`~raggym.benchmarks.leaderboard.Leaderboard` (validated once,
when it was built or read) and, for the HTML episode browser, the episodes keyed by
``(dataset, agent)``. The tables come from :mod:`raggym.benchmarks.tables`. Every file is
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
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from raggym.benchmarks.aggregate import MEAN_METRICS, METRIC_COLUMNS, summarize_seeds
from raggym.benchmarks.charts import plot_leaderboard
from raggym.benchmarks.html_report import DocumentTexts, render_html
from raggym.benchmarks.leaderboard import LEADERBOARD_FILE, CellResult, Episodes, Leaderboard
from raggym.benchmarks.tables import (
    Table,
    finite,
    format_metric,
    full_table,
    run_header,
    summary_table,
)
from raggym_env.availability import install_hint, is_matplotlib_available
from raggym_env.sanitize import scrub_surrogates

__all__ = [
    "FORMATS",
    "REPORT_FILES",
    "format_csv",
    "format_json",
    "format_markdown",
    "plot_leaderboard",
    "png_available",
    "write_reports",
]

REPORT_FILES: dict[str, str] = {
    "md": "leaderboard.md",
    "csv": "leaderboard.csv",
    "json": LEADERBOARD_FILE,
    "png": "leaderboard.png",
    "html": "report.html",
}
"""Report format -> file name inside the run folder."""

FORMATS: tuple[str, ...] = tuple(REPORT_FILES)
"""Every format :func:`write_reports` can write."""

INSTALL_HINT = install_hint("matplotlib")

_CELL_FIELDS = ("dataset", "agent", "task", "multiple_choice", "selected", "finished")
_FAILURES_SHOWN = 5
_ERROR_WIDTH = 240


# --------------------------------------------------------------------------------------------
# Markdown, CSV and JSON
# --------------------------------------------------------------------------------------------


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


def _seeds_markdown(leaderboard: Leaderboard) -> list[str]:
    """The "Across seeds" section (mean ± sample std per metric); empty with one seed."""
    groups = summarize_seeds(leaderboard)
    if not groups:
        return []
    titles = dict(METRIC_COLUMNS)
    keys = [k for k in MEAN_METRICS if any(k in g.metrics for g in groups)]
    lines = ["", "## Across seeds", ""]
    lines.append("| dataset | agent | seeds | " + " | ".join(titles[k] for k in keys) + " |")
    lines.append("|---|---|---:|" + "---:|" * len(keys))
    for group in groups:
        shown = []
        for key in keys:
            summary = group.metrics.get(key)
            if summary is None:
                shown.append("-")
                continue
            std = "-" if summary.std is None else format_metric(key, summary.std)
            shown.append(f"{format_metric(key, summary.mean)} ± {std}")
        row = [_md_text(group.dataset), _md_text(group.agent), str(len(group.members))]
        lines.append("| " + " | ".join(row + shown) + " |")
    lines += ["", "Mean ± sample standard deviation of the per-seed values."]
    return lines


def format_markdown(leaderboard: Leaderboard) -> str:
    """The leaderboard as Markdown: run header, summary table, full table and failures.

    This is what ``raggym bench`` prints and writes to ``leaderboard.md``.
    """
    cells = leaderboard.cells
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
    lines += _markdown_table(summary_table(leaderboard, intervals=True))
    lines += [
        "",
        "EM/F1 for open QA, Acc for multiple choice; every average divides by the selected "
        "questions, so a failed item counts 0. Best per column in bold. Brackets: 95% "
        "bootstrap interval over questions.",
        "",
        "## All metrics",
        "",
    ]
    lines += _markdown_table(full_table(leaderboard, intervals=True))
    lines += _seeds_markdown(leaderboard)
    lines += ["", "## Failed items", ""]
    failed = leaderboard.failed_cells()
    if not failed:
        lines.append("None: every selected question ran to its end.")
    for cell in failed:
        total = cell.failures
        lines.append(
            f"### {_md_text(cell.dataset)} / {_md_text(cell.agent)}: "
            f"{total:,} of {cell.selected:,} failed"
        )
        lines.append("")
        for error in cell.errors[:_FAILURES_SHOWN]:
            example = _md_code(error.example_id)
            message = _md_code(_shorten(error.error, _ERROR_WIDTH))
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


def format_csv(leaderboard: Leaderboard) -> str:
    """One CSV row per cell with every metric as its own column, for spreadsheets and pandas.

    Columns: ``dataset, agent, task, multiple_choice, selected, finished``, the metric keys
    (full precision; empty when ``None``), each mean followed by ``<key>_ci95_lo`` and
    ``<key>_ci95_hi`` (empty without an interval), ``n_errors`` and ``episodes_file``.
    """
    cells = leaderboard.cells
    metric_keys = _metric_keys(cells)
    with_ci = set(MEAN_METRICS) | {k for cell in cells for k in cell.ci95}
    metric_fields: list[str] = []
    for key in metric_keys:
        metric_fields.append(key)
        if key in with_ci:
            metric_fields += [f"{key}_ci95_lo", f"{key}_ci95_hi"]
    fields = [*_CELL_FIELDS, *metric_fields, "n_errors", "episodes_file"]
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
            value = finite(cell.metrics.get(key))
            row[key] = "" if value is None else repr(value)
            if key in with_ci:
                ci = cell.ci95.get(key)
                row[f"{key}_ci95_lo"] = "" if ci is None else repr(ci[0])
                row[f"{key}_ci95_hi"] = "" if ci is None else repr(ci[1])
        writer.writerow(row)
    return buffer.getvalue()


def format_json(leaderboard: Leaderboard) -> str:
    """``leaderboard.json``: :meth:`Leaderboard.to_dict` as stable JSON (sorted keys, indent 2).

    Non-finite numbers are written as ``null``: the file is strict JSON, never ``NaN``.
    A run over several seeds also gets ``across_seeds``: per dataset and agent, each mean
    metric's mean, sample std and n across seeds (:func:`.summarize_seeds`; derived, so
    reading the file back ignores it).

    :func:`raggym.benchmarks.leaderboard.load_leaderboard` reads it back.
    """
    raw = leaderboard.to_dict()
    groups = summarize_seeds(leaderboard)
    if groups:
        raw["across_seeds"] = [group.to_dict() for group in groups]
    data = _without_non_finite(raw)
    text = json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)
    return text + "\n"


def _without_non_finite(value: Any) -> Any:
    """Replace NaN and infinities with ``None`` (JSON ``null``), recursively.

    A bare ``NaN`` token is not JSON: strict readers (browsers, ``jq``) reject the file.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _without_non_finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_without_non_finite(item) for item in value]
    return value


# --------------------------------------------------------------------------------------------
# PNG chart (optional: matplotlib)
# --------------------------------------------------------------------------------------------


def png_available() -> bool:
    """Whether matplotlib is installed, i.e. whether :func:`write_reports` can draw the PNG."""
    return is_matplotlib_available()


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
    """Write ``text`` as UTF-8, atomically (lone surrogates, e.g. from old files, as U+FFFD)."""
    data = scrub_surrogates(text).encode("utf-8")

    def write(handle: IO[bytes]) -> None:
        handle.write(data)

    _atomic_write(path, write)


def write_reports(
    leaderboard: Leaderboard,
    episodes: Episodes | None,
    out_dir: str | os.PathLike[str],
    *,
    formats: Iterable[str] = FORMATS,
    documents: DocumentTexts | None = None,
) -> dict[str, Path]:
    """Write the run's reports into ``out_dir`` so people and tools can read the results.

    Args:
        leaderboard: the run's leaderboard.
        episodes: the episode records by ``(dataset, agent)``, for the HTML episode browser
            (``None`` or empty: the browser lists nothing).
        out_dir: the folder to write into (created if needed).
        formats: any of ``md``, ``csv``, ``json``, ``png``, ``html``.
        documents: retrieved documents' texts by dataset and id, shown in the HTML report
            under each retrieved title (see :func:`raggym.benchmarks.html_report.document_texts`).

    Returns:
        Format -> path of each file written. ``png`` is absent when matplotlib is not
        installed (check :func:`png_available` to tell the user).

    Raises:
        ValueError: an unknown format.
    """
    wanted = list(dict.fromkeys(formats))
    unknown = [f for f in wanted if f not in REPORT_FILES]
    if unknown:
        raise ValueError(f"unknown report formats {unknown}; choose from {list(FORMATS)}")
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
            _write_text(path, render_html(leaderboard, episodes or {}, documents=documents))
        written[fmt] = path
    return written
