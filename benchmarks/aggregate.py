"""Per-cell metrics of a benchmark run: one (dataset, agent) pair's episodes -> one row.

Every average divides by the number of **selected** questions: a question whose episode
crashed, or that has no episode yet, counts 0 for the answer metrics and is counted in
``failures``. Nothing is dropped from a denominator. A non-finite metric value counts as
missing (0), and an unreadable timestamp leaves that episode out of the latency
percentiles, so no leaderboard number is ever NaN.

``paper_em``, ``paper_f1`` and ``paper_acc`` are the RAG-Gym paper's scoring of the same
answers (:func:`raggym_env.metrics.paper_score`: one gold string, the answer located by the
official script's patterns, its letter normaliser for multiple choice). They share the
denominator above, whereas the official script divides by the items that produced a
prediction file; with failures the two differ. Episodes recorded before these metrics
existed leave them ``None``.

Every mean over questions carries a 95% percentile bootstrap interval in
:attr:`.CellResult.ci95` (:func:`raggym.benchmarks.stats.bootstrap_cis`), computed from the
per-question values of :func:`question_values`, which follow the rule above (a failed or
missing question is 0), so each interval is about the mean it stands beside. Those means are
:data:`MEAN_METRICS`. Latency percentiles, wall time and throughput are not means over
questions, and ``parse_failures`` / ``failures`` are totals, so they get no interval.

RAG quality metrics (:mod:`raggym_env.rag_metrics`, :mod:`raggym.agents.judge`) have their
own denominators, since they are undefined for some questions; a failed or missing episode
still counts 0 in each and nothing is ever NaN. ``context_precision`` and ``context_recall``
are means over the selected questions that have gold evidence (a question without an
episode counts as having it); a dataset without gold evidence leaves them ``None``. The judge
metrics ``faithfulness``, ``answer_relevance`` and ``context_relevance`` (present when the run
had a judge) are means over the selected questions the judge scored, plus the failed or
missing episodes; a judge failure (an HTTP error, an unparseable verdict, a refusal) or a
metric that does not apply (no answer, nothing retrieved) leaves the question out, and
``judge_failures`` counts the failed judgements (one per question and metric).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from raggym.benchmarks.leaderboard import CellResult, FailedItem, Leaderboard
from raggym.benchmarks.stats import SeedSummary, bootstrap_cis, seed_summary
from raggym_env.episode import EpisodeRecord
from raggym_env.rag_metrics import episode_rag_metrics, gold_evidence_ids

__all__ = [
    "BINARY_METRICS",
    "JUDGE_METRICS",
    "MEAN_METRICS",
    "METRIC_COLUMNS",
    "RAG_METRICS",
    "SeedGroup",
    "aggregate_cell",
    "percentile",
    "question_values",
    "question_values_by_id",
    "rag_values_by_question",
    "summarize_seeds",
]

METRIC_COLUMNS: tuple[tuple[str, str], ...] = (
    ("em", "EM"),
    ("f1", "F1"),
    ("cover_em", "cover-EM"),
    ("accuracy", "Acc"),
    ("paper_em", "paper-EM"),
    ("paper_f1", "paper-F1"),
    ("paper_acc", "paper-Acc"),
    ("searches", "searches/q"),
    ("evidence_recall", "ev.recall"),
    ("context_precision", "ctx.prec"),
    ("context_recall", "ctx.recall"),
    ("faithfulness", "faithful"),
    ("answer_relevance", "ans.relev"),
    ("context_relevance", "ctx.relev"),
    ("judge_failures", "judge fails"),
    ("steps", "steps/q"),
    ("parse_failures", "parse fails"),
    ("failures", "failures"),
    ("latency_q_p50", "time/q p50"),
    ("latency_q_p95", "time/q p95"),
    ("latency_q_p99", "time/q p99"),
    ("latency_step_p50", "time/step p50"),
    ("latency_step_p95", "time/step p95"),
    ("latency_step_p99", "time/step p99"),
    ("tokens_per_q", "tokens/q"),
    ("wall_s", "wall s"),
    ("throughput", "q/s"),
)
"""Metric keys of :attr:`.CellResult.metrics` and their short column titles."""

_SCORES = (
    "em", "f1", "cover_em", "accuracy", "paper_em", "paper_f1", "paper_acc", "evidence_recall"
)  # fmt: skip

RAG_METRICS: tuple[str, ...] = ("context_precision", "context_recall")
"""Gold-evidence RAG metrics: means over the questions with gold evidence."""

JUDGE_METRICS: tuple[str, ...] = ("faithfulness", "answer_relevance", "context_relevance")
"""Judge-LLM metrics: means over the questions the judge scored (see the module docstring)."""

MEAN_METRICS: tuple[str, ...] = (
    *_SCORES, "searches", "steps", "tokens_per_q", *RAG_METRICS, *JUDGE_METRICS
)  # fmt: skip
"""The metrics that are means over the selected questions: each gets a ``ci95`` interval."""

BINARY_METRICS: frozenset[str] = frozenset({"em", "cover_em", "accuracy", "paper_em", "paper_acc"})
"""Means of 0/1 outcomes per question (paired comparisons use McNemar's test on them)."""


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100, linear interpolation); ``None`` without values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _timestamp(text: str | None) -> datetime | None:
    """Parse an ISO-8601 timestamp; ``None`` for a missing or unreadable one."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _seconds(record: EpisodeRecord) -> float | None:
    """An episode's wall time, ``None`` when a timestamp is missing or unreadable."""
    start, end = _timestamp(record.started_at), _timestamp(record.ended_at)
    if start is None or end is None:
        return None
    try:
        seconds = (end - start).total_seconds()
    except TypeError:  # one timestamp with a time zone, the other without
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _finite(value: float | None) -> float | None:
    """The value itself when it is a finite number, else ``None`` (never NaN or inf)."""
    if value is None or not math.isfinite(value):
        return None
    return value


def question_values(
    records: Iterable[EpisodeRecord],
    selected_ids: Sequence[str],
    judged: Mapping[str, Mapping[str, object]] | None = None,
) -> dict[str, list[float]]:
    """Each mean metric's value per selected question, in ``selected_ids``' order.

    A question whose episode failed or is missing counts 0 in the scores (EM, F1, ...), as
    in :func:`aggregate_cell`; searches, steps and tokens count what its episode (failed or
    not) recorded, 0 without one; a non-finite score counts 0. The mean of each list is the
    cell's metric wherever :func:`aggregate_cell` reports one. The RAG and judge metrics'
    lists hold only the questions of their denominators (see the module docstring), so they
    may be shorter; ``judged`` maps a question id to its :mod:`raggym.agents.judge` result.
    """
    wanted = set(selected_ids)
    by_id = {r.example_id: r for r in records if r.example_id in wanted}
    values = _score_values(by_id, selected_ids)
    values.update(_rag_values(by_id, selected_ids, judged))
    return values


def question_values_by_id(
    records: Iterable[EpisodeRecord],
    selected_ids: Sequence[str],
    judged: Mapping[str, Mapping[str, object]] | None = None,
) -> dict[str, dict[str, float]]:
    """:func:`question_values` keyed by question id (``selected_ids`` must be distinct).

    Every question maps for the scores, searches, steps and tokens; the RAG and judge
    metrics map only the questions of their denominators (:func:`rag_values_by_question`),
    so two runs' values pair up by id even where those denominators differ.
    """
    wanted = set(selected_ids)
    by_id = {r.example_id: r for r in records if r.example_id in wanted}
    values = {
        name: dict(zip(selected_ids, column, strict=True))
        for name, column in _score_values(by_id, selected_ids).items()
    }
    values.update(rag_values_by_question(by_id.values(), selected_ids, judged))
    return values


def _score_values(
    by_id: Mapping[str, EpisodeRecord], selected_ids: Sequence[str]
) -> dict[str, list[float]]:
    """The mean metrics other than the RAG and judge ones, one value per selected question."""
    names = [name for name in MEAN_METRICS if name not in (*RAG_METRICS, *JUDGE_METRICS)]
    values: dict[str, list[float]] = {name: [] for name in names}
    for example_id in selected_ids:
        record = by_id.get(example_id)
        ok = record is not None and record.error is None
        for name in _SCORES:
            score = _finite(record.metrics.get(name)) if ok and record is not None else None
            values[name].append(float(score or 0.0))
        values["searches"].append(float(record.num_searches) if record is not None else 0.0)
        values["steps"].append(float(len(record.steps)) if record is not None else 0.0)
        tokens = sum(sum(s.tokens.values()) for s in record.steps) if record is not None else 0
        values["tokens_per_q"].append(float(tokens))
    return values


def _failures(result: object) -> int:
    """How many judgements of one judge result failed."""
    failures = result.get("failures") if isinstance(result, Mapping) else None
    return len(failures) if isinstance(failures, Mapping) else 0


def _rag_values(
    by_id: Mapping[str, EpisodeRecord],
    selected_ids: Sequence[str],
    judged: Mapping[str, Mapping[str, object]] | None,
) -> dict[str, list[float]]:
    """Per-question values of the RAG and judge metrics, over their own denominators."""
    keyed = rag_values_by_question(by_id.values(), selected_ids, judged)
    return {name: list(per_question.values()) for name, per_question in keyed.items()}


def rag_values_by_question(
    records: Iterable[EpisodeRecord],
    selected_ids: Sequence[str],
    judged: Mapping[str, Mapping[str, object]] | None = None,
) -> dict[str, dict[str, float]]:
    """The RAG and judge metrics per question id, over their own denominators.

    Each metric maps only the questions it counts (in ``selected_ids``' order): for the
    gold-evidence metrics those with gold evidence or without an episode, for the judge
    metrics the failed or missing episodes and those the judge scored. Keyed by id, two
    runs' values pair up even where their denominators differ.
    """
    wanted = set(selected_ids)
    by_id = {r.example_id: r for r in records if r.example_id in wanted}
    values: dict[str, dict[str, float]] = {name: {} for name in (*RAG_METRICS, *JUDGE_METRICS)}
    for example_id in selected_ids:
        record = by_id.get(example_id)
        failed = record is None or record.error is not None
        if record is None or gold_evidence_ids(record):
            scores = {} if failed or record is None else episode_rag_metrics(record)
            for name in RAG_METRICS:
                values[name][example_id] = float(_finite(scores.get(name)) or 0.0)
        if judged is None:
            continue
        result = judged.get(example_id) or {}
        for name in JUDGE_METRICS:
            value = result.get(name)
            if failed:
                values[name][example_id] = 0.0
            elif (
                isinstance(value, (int, float))
                and not isinstance(value, bool)
                and math.isfinite(value)
            ):
                values[name][example_id] = float(value)
    return values


def aggregate_cell(
    records: Iterable[EpisodeRecord],
    selected_ids: Sequence[str],
    *,
    dataset: str,
    agent: str,
    task: str,
    multiple_choice: bool,
    wall_s: float | None = None,
    played: int = 0,
    episodes_file: str = "",
    judged: Mapping[str, Mapping[str, object]] | None = None,
) -> CellResult:
    """Aggregate the final episode of each selected question into one row.

    Args:
        records: the cell's final records (one per question; others are ignored).
        selected_ids: every question the suite selected, in order.
        dataset: the dataset's name.
        agent: the agent's name.
        task: the task name.
        multiple_choice: accuracy is the headline metric.
        wall_s: wall time spent playing the cell, summed over every run that resumed it
            (``None`` when none was recorded).
        played: episodes those runs played (for throughput).
        episodes_file: the episode file, relative to the run folder.
        judged: question id -> its :mod:`raggym.agents.judge` result, when the run had a
            judge (``None``: the judge metrics stay ``None``).
    """
    wanted = set(selected_ids)
    by_id = {r.example_id: r for r in records if r.example_id in wanted}
    n = len(selected_ids)
    ok = [r for r in by_id.values() if r.error is None]
    steps = [s for r in by_id.values() for s in r.steps]

    def mean(name: str) -> float | None:
        if not ok:  # every selected question failed (or has no episode): each counts 0
            return 0.0 if n else None
        values = [_finite(r.metrics.get(name)) for r in ok]
        if not any(v is not None for v in values):
            return None
        return sum(float(v or 0.0) for v in values) / n if n else None

    def per_question(total: float) -> float | None:
        return total / n if n else None

    has_gold_evidence = any(r.gold.get("evidence_doc_ids") for r in by_id.values())
    values = question_values(by_id.values(), selected_ids, judged)

    def rag_mean(name: str) -> float | None:
        found = values[name]
        return sum(found) / len(found) if found else None

    judge_failures = None
    if judged is not None:
        judge_failures = float(
            sum(_failures(result) for key, result in judged.items() if key in wanted)
        )
    q_latency = [s for s in (_seconds(r) for r in ok) if s is not None]
    step_latency = [t for t in (_finite(s.latency_s) for s in steps) if t is not None]
    tokens = sum(sum(s.tokens.values()) for s in steps)
    metrics: dict[str, float | None] = {
        "em": None if multiple_choice else mean("em"),
        "f1": None if multiple_choice else mean("f1"),
        "cover_em": None if multiple_choice else mean("cover_em"),
        "accuracy": mean("accuracy") if multiple_choice else None,
        "paper_em": None if multiple_choice else mean("paper_em"),
        "paper_f1": None if multiple_choice else mean("paper_f1"),
        "paper_acc": mean("paper_acc") if multiple_choice else None,
        "searches": per_question(sum(r.num_searches for r in by_id.values())),
        "evidence_recall": mean("evidence_recall") if has_gold_evidence else None,
        "context_precision": rag_mean("context_precision") if has_gold_evidence else None,
        "context_recall": rag_mean("context_recall") if has_gold_evidence else None,
        "faithfulness": rag_mean("faithfulness"),
        "answer_relevance": rag_mean("answer_relevance"),
        "context_relevance": rag_mean("context_relevance"),
        "judge_failures": judge_failures,
        "steps": per_question(len(steps)),
        "parse_failures": float(sum(s.action_type == "invalid" for s in steps)),
        "failures": float(n - len(ok)),
        "latency_q_p50": percentile(q_latency, 50),
        "latency_q_p95": percentile(q_latency, 95),
        "latency_q_p99": percentile(q_latency, 99),
        "latency_step_p50": percentile(step_latency, 50),
        "latency_step_p95": percentile(step_latency, 95),
        "latency_step_p99": percentile(step_latency, 99),
        "tokens_per_q": per_question(tokens) if tokens else None,
        "wall_s": wall_s,
        "throughput": played / wall_s if wall_s and played else None,
    }
    own = {*RAG_METRICS, *JUDGE_METRICS}  # their own denominators: resampled on their own
    ci95 = bootstrap_cis(
        {n: values[n] for n in MEAN_METRICS if metrics.get(n) is not None and n not in own}
    )
    for name in own:
        if metrics.get(name) is not None:
            ci95.update(bootstrap_cis({name: values[name]}))
    missing = [i for i in selected_ids if i not in by_id]
    errors = [FailedItem(r.example_id, str(r.error)) for r in by_id.values() if r.error]
    errors += [FailedItem(i, "no episode recorded") for i in missing]
    return CellResult(
        dataset=dataset,
        agent=agent,
        task=task,
        multiple_choice=multiple_choice,
        selected=n,
        finished=len(ok),
        metrics=metrics,
        errors=tuple(errors[:50]),
        episodes_file=episodes_file,
        ci95=ci95,
    )


_SEED_LABEL = re.compile(r"^(?P<agent>.+)@seed(?P<seed>\d+)$")
"""How the runner names a cell of a suite with several seeds (``react@seed1``)."""


@dataclass(frozen=True)
class SeedGroup:
    """One agent on one dataset over several seeds (or runs): per-metric mean, std and n.

    Attributes:
        dataset: the dataset.
        agent: the agent's name without its ``@seedN`` suffix.
        members: the cells' agent labels (``react@seed0``, ...), one per seed or run.
        metrics: each mean metric that some member has -> its :class:`SeedSummary`.
    """

    dataset: str
    agent: str
    members: tuple[str, ...]
    metrics: Mapping[str, SeedSummary]

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready mapping."""
        return {
            "dataset": self.dataset,
            "agent": self.agent,
            "members": list(self.members),
            "metrics": {name: summary.to_dict() for name, summary in self.metrics.items()},
        }


def summarize_seeds(*boards: Leaderboard) -> list[SeedGroup]:
    """Mean and sample std of every mean metric across seeds, per dataset and agent.

    In one leaderboard, the cells of a suite run with several ``seeds`` (named
    ``agent@seedN`` by the runner) form a group. Given several leaderboards (the same
    suite run once per seed, say), the cells of the same dataset and agent across them
    form a group too. Only groups of two or more cells are returned, in first-seen order;
    the std is across seeds, not over questions (that is each cell's ``ci95``).
    """
    groups: dict[tuple[str, str], list[CellResult]] = {}
    for board in boards:
        for cell in board.cells:
            match = _SEED_LABEL.match(cell.agent)
            agent = match.group("agent") if match else cell.agent
            groups.setdefault((cell.dataset, agent), []).append(cell)
    result = []
    for (dataset, agent), cells in groups.items():
        if len(cells) < 2:
            continue
        metrics: dict[str, SeedSummary] = {}
        for name in MEAN_METRICS:
            values = [v for v in (_finite(c.metrics.get(name)) for c in cells) if v is not None]
            summary = seed_summary(values)
            if summary is not None:
                metrics[name] = summary
        result.append(SeedGroup(dataset, agent, tuple(c.agent for c in cells), metrics))
    return result
