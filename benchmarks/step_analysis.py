"""Per-step analysis of a cell's episodes: evidence recall by step, searches, where answers fail.

The computations are plain functions over :class:`~raggym_env.episode.EpisodeRecord` lists
(tested on hand-built episodes); :func:`plot_step_analysis` draws them for the HTML report and
needs matplotlib (``pip install 'raggym[report]'``).

Outcome buckets (:func:`outcome_bucket`), from what an episode records:

- ``correct``: EM (accuracy for multiple choice) is 1;
- ``wrong, evidence found``: wrong, yet every gold evidence title was retrieved (a reading or
  reasoning error);
- ``wrong, evidence missed``: wrong and some gold evidence was never retrieved (a search
  error);
- ``wrong``: wrong, for questions without gold evidence labels (e.g. MedQA);
- ``no answer``: the episode ended without an answer (step budget spent);
- ``failed``: the episode crashed (it still counts in every average).
"""

from __future__ import annotations

import io
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from raggym_env.availability import require
from raggym_env.episode import EpisodeRecord

__all__ = [
    "OUTCOME_BUCKETS",
    "evidence_recall_by_step",
    "final_evidence_recall",
    "outcome_breakdown",
    "outcome_bucket",
    "plot_step_analysis",
    "searches_per_question",
]

OUTCOME_BUCKETS: tuple[str, ...] = (
    "correct",
    "wrong, evidence found",
    "wrong, evidence missed",
    "wrong",
    "no answer",
    "failed",
)
"""The outcome buckets in display order (see the module docstring)."""


def _finite(value: Any) -> float | None:
    """``value`` as a float, or ``None`` when missing, not a number or not finite."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _has_evidence(record: EpisodeRecord) -> bool:
    """Whether the question has gold evidence labels (so recall is defined)."""
    gold = record.gold
    return bool(gold.get("evidence_titles") or gold.get("evidence_doc_ids"))


def _recall_after_steps(record: EpisodeRecord) -> list[float]:
    """Cumulative evidence recall after each step (carried forward over steps without one)."""
    values: list[float] = []
    current = 0.0
    for step in record.steps:
        value = _finite(step.evidence_recall)
        if value is not None:
            current = max(current, value)
        values.append(current)
    return values


def final_evidence_recall(record: EpisodeRecord) -> float | None:
    """The share of gold evidence the episode retrieved (``None`` without gold evidence)."""
    if not _has_evidence(record):
        return None
    recorded = _finite(record.metrics.get("evidence_recall"))
    steps = _recall_after_steps(record)
    last = steps[-1] if steps else 0.0
    return max(recorded, last) if recorded is not None else last


def evidence_recall_by_step(records: Sequence[EpisodeRecord]) -> list[float]:
    """Mean gold-evidence recall after step ``k`` (index ``k - 1``), over questions with gold.

    An episode that ended before step ``k`` keeps its final recall; one with no steps counts
    0. Empty when no question has gold evidence.
    """
    curves = [_recall_after_steps(r) or [0.0] for r in records if _has_evidence(r)]
    if not curves:
        return []
    length = max(len(curve) for curve in curves)
    return [
        sum(curve[min(k, len(curve) - 1)] for curve in curves) / len(curves) for k in range(length)
    ]


def searches_per_question(records: Sequence[EpisodeRecord]) -> dict[int, int]:
    """How many questions made 0, 1, 2, ... searches (sorted by the number of searches)."""
    counts = Counter(sum(s.action_type == "search" for s in r.steps) for r in records)
    return dict(sorted(counts.items()))


def outcome_bucket(record: EpisodeRecord, multiple_choice: bool) -> str:
    """The episode's bucket of :data:`OUTCOME_BUCKETS` (see the module docstring)."""
    if record.error is not None:
        return "failed"
    if record.final_answer is None or not str(record.final_answer).strip():
        return "no answer"
    score = _finite(record.metrics.get("accuracy" if multiple_choice else "em"))
    if score == 1.0:
        return "correct"
    recall = final_evidence_recall(record)
    if recall is None:
        return "wrong"
    return "wrong, evidence found" if recall >= 1.0 else "wrong, evidence missed"


def outcome_breakdown(records: Sequence[EpisodeRecord], multiple_choice: bool) -> dict[str, int]:
    """Episodes per outcome bucket, every bucket of :data:`OUTCOME_BUCKETS` present, in order."""
    counts = Counter(outcome_bucket(r, multiple_choice) for r in records)
    return {bucket: counts.get(bucket, 0) for bucket in OUTCOME_BUCKETS}


def plot_step_analysis(
    dataset: str,
    cells: Mapping[str, Sequence[EpisodeRecord]],
    multiple_choice: bool,
) -> bytes:
    """One dataset's three panels (recall by step, searches, outcomes), one series per agent.

    Args:
        dataset: the dataset's name (the figure's title).
        cells: agent name -> that cell's episodes.
        multiple_choice: whether accuracy (not EM) decides correctness.

    Returns:
        The figure as PNG bytes.

    Raises:
        MissingDependencyError: matplotlib is not installed.
    """
    feature = "the per-step analysis plots"
    backend_agg = require("matplotlib.backends.backend_agg", feature=feature)
    figure_cls = require("matplotlib.figure", feature=feature).Figure
    figure = figure_cls(figsize=(13.0, 3.9), layout="constrained")
    backend_agg.FigureCanvasAgg(figure)
    recall_ax, search_ax, outcome_ax = figure.subplots(1, 3)
    agents = list(cells)
    width = 0.8 / max(1, len(agents))

    any_recall = False
    for agent in agents:
        curve = evidence_recall_by_step(cells[agent])
        if curve:
            any_recall = True
            steps = list(range(1, len(curve) + 1))
            recall_ax.plot(steps, curve, marker="o", markersize=3, label=agent)
    longest = max((len(evidence_recall_by_step(cells[a])) for a in agents), default=0)
    recall_ax.set_xticks(range(1, longest + 1) if longest <= 12 else range(1, longest + 1, 2))
    recall_ax.set_title("gold evidence recall by step")
    recall_ax.set_xlabel("step k")
    recall_ax.set_ylabel("mean recall after step k")
    recall_ax.set_ylim(0.0, 1.05)
    if not any_recall:
        recall_ax.text(0.5, 0.5, "no gold evidence labels", ha="center", va="center",
                       transform=recall_ax.transAxes, color="gray")  # fmt: skip
    recall_ax.grid(alpha=0.3)

    counts = {agent: searches_per_question(cells[agent]) for agent in agents}
    most = max((max(c, default=0) for c in counts.values()), default=0)
    for i, agent in enumerate(agents):
        xs = [x - 0.4 + width * (i + 0.5) for x in range(most + 1)]
        search_ax.bar(xs, [counts[agent].get(x, 0) for x in range(most + 1)], width * 0.92)
    search_ax.set_xticks(range(most + 1))
    search_ax.set_title("searches per question")
    search_ax.set_xlabel("searches")
    search_ax.set_ylabel("questions")
    search_ax.grid(axis="y", alpha=0.3)

    buckets = [
        b
        for b in OUTCOME_BUCKETS
        if any(outcome_breakdown(cells[a], multiple_choice)[b] for a in agents)
    ]
    colors = {
        "correct": "#1b8a4b",
        "wrong, evidence found": "#e0a030",
        "wrong, evidence missed": "#c8641e",
        "wrong": "#d08a2a",
        "no answer": "#8c8c8c",
        "failed": "#b7372f",
    }
    for agent_index, agent in enumerate(agents):
        breakdown = outcome_breakdown(cells[agent], multiple_choice)
        total = max(1, sum(breakdown.values()))
        left = 0.0
        for bucket in buckets:
            share = breakdown[bucket] / total
            outcome_ax.barh(agent_index, share, left=left, color=colors[bucket],
                            label=bucket if agent_index == 0 else None)  # fmt: skip
            left += share
    outcome_ax.set_yticks(range(len(agents)), agents)
    outcome_ax.invert_yaxis()
    outcome_ax.set_xlim(0.0, 1.0)
    outcome_ax.set_xlabel("share of questions")
    outcome_ax.set_title("where answers go wrong")
    if buckets:
        outcome_ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2),
                          ncols=min(3, len(buckets)), frameon=False)  # fmt: skip
    if agents:
        search_ax.legend(list(search_ax.containers), agents, fontsize=7, title="agent",
                         title_fontsize=7)  # fmt: skip
    figure.suptitle(f"{dataset}: per-step analysis")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()
