"""Benchmarks: load a suite, run it, write its leaderboard reports, compare two runs.

A notebook or script needs only these names::

    from raggym.benchmarks import (
        compare_runs, format_markdown, load_leaderboard, load_suite, run_suite,
    )

    leaderboard, episodes = run_suite(load_suite("smoke"), "runs/smoke", limit=5)
    print(format_markdown(leaderboard))
    print(compare_runs(load_leaderboard("runs/before"), leaderboard))

:func:`run_suite` writes every report itself; :func:`write_reports` writes them again (or
only some formats) from a :class:`Leaderboard` and its episodes. Importing this package
loads neither matplotlib (the PNG chart) nor wandb (tracking): each is imported only
when its function runs.
"""

from raggym.benchmarks.aggregate import METRIC_COLUMNS, aggregate_cell
from raggym.benchmarks.cli import compare_runs
from raggym.benchmarks.html_report import render_html
from raggym.benchmarks.leaderboard import (
    LEADERBOARD_SCHEMA,
    CellResult,
    Episodes,
    FailedItem,
    Leaderboard,
    RunCard,
    load_leaderboard,
)
from raggym.benchmarks.report import (
    FORMATS,
    format_csv,
    format_json,
    format_markdown,
    plot_leaderboard,
    png_available,
    write_reports,
)
from raggym.benchmarks.runner import build_agent, run_suite
from raggym.benchmarks.suite import Suite, SuiteError, available_suites, load_suite, parse_suite
from raggym.benchmarks.tables import Table, format_metric, full_table, summary_table
from raggym.benchmarks.tracking import log_to_wandb

__all__ = [
    "FORMATS",
    "LEADERBOARD_SCHEMA",
    "METRIC_COLUMNS",
    "CellResult",
    "Episodes",
    "FailedItem",
    "Leaderboard",
    "RunCard",
    "Suite",
    "SuiteError",
    "Table",
    "aggregate_cell",
    "available_suites",
    "build_agent",
    "compare_runs",
    "format_csv",
    "format_json",
    "format_markdown",
    "format_metric",
    "full_table",
    "load_leaderboard",
    "load_suite",
    "log_to_wandb",
    "parse_suite",
    "plot_leaderboard",
    "png_available",
    "render_html",
    "run_suite",
    "summary_table",
    "write_reports",
]
