"""The leaderboard chart: a grouped bar chart of each cell's headline score (needs matplotlib).

Shared by ``leaderboard.png`` (:mod:`raggym.benchmarks.report`) and the chart embedded in the
HTML report (:mod:`raggym.benchmarks.html_report`).
"""

from __future__ import annotations

import math
from typing import IO

from raggym.benchmarks.leaderboard import Leaderboard
from raggym.benchmarks.tables import finite, headline
from raggym_env.availability import require

__all__ = ["plot_leaderboard"]


def plot_leaderboard(leaderboard: Leaderboard, handle: IO[bytes]) -> None:
    """Draw the grouped bar chart (datasets on x, a bar per agent, headline score) as PNG.

    Args:
        leaderboard: the run's leaderboard.
        handle: a binary file to write the PNG to.

    Raises:
        MissingDependencyError: matplotlib is not installed (an ``ImportError`` whose
            message says how to install it).
    """
    backend_agg = require("matplotlib.backends.backend_agg", feature="the PNG chart")
    Figure = require("matplotlib.figure", feature="the PNG chart").Figure
    FigureCanvasAgg = backend_agg.FigureCanvasAgg

    datasets = leaderboard.datasets
    agents = leaderboard.agents
    by_key = leaderboard.by_key()
    titles = {d: "Acc" if leaderboard.is_multiple_choice(d) else "F1" for d in datasets}
    suite = leaderboard.suite_name or "benchmark"

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
            value = finite(cell.metrics.get(headline(cell)[0])) if cell else None
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
