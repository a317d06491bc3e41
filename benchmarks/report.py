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

from raggym.benchmarks.aggregate import METRIC_COLUMNS
from raggym.benchmarks.charts import plot_leaderboard
from raggym.benchmarks.html_report import DocumentTexts, render_html
from raggym.benchmarks.leaderboard import LEADERBOARD_FILE, CellResult, Episodes, Leaderboard
from raggym.benchmarks.tables import Table, finite, full_table, run_header, summary_table
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
    (full precision; empty when ``None``), ``n_errors`` and ``episodes_file``.
    """
    cells = leaderboard.cells
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
            value = finite(cell.metrics.get(key))
            row[key] = "" if value is None else repr(value)
        writer.writerow(row)
    return buffer.getvalue()


def format_json(leaderboard: Leaderboard) -> str:
    """``leaderboard.json``: :meth:`Leaderboard.to_dict` as stable JSON (sorted keys, indent 2).

    Non-finite numbers are written as ``null``: the file is strict JSON, never ``NaN``.

    :func:`raggym.benchmarks.leaderboard.load_leaderboard` reads it back.
    """
    data = _without_non_finite(leaderboard.to_dict())
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
