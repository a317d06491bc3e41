"""Cell aggregation: denominators are the selected questions, failures are counted."""

import dataclasses
import math

import pytest

from raggym.agents.baselines import GoldEvidenceOracle, QuestionSearchHeuristic
from raggym.agents.rollout import rollout
from raggym.benchmarks.aggregate import METRIC_COLUMNS, aggregate_cell, percentile
from raggym.benchmarks.leaderboard import CellResult
from raggym_env import RAGEnv


@pytest.fixture(scope="module")
def hotpot_records():
    env = RAGEnv("hotpotqa", limit=6)
    return env, rollout(env, GoldEvidenceOracle())


def test_every_average_divides_by_the_selected_questions(hotpot_records):
    env, records = hotpot_records
    selected = [ex.id for ex in env.examples]
    crashed = dataclasses.replace(records[1], error="RuntimeError: boom", metrics={})
    kept = [records[0], crashed, records[2], records[3]]  # 4 and 5 never ran
    cell = aggregate_cell(
        kept, selected, dataset="hotpotqa", agent="oracle", task="hotpotqa",
        multiple_choice=False, wall_s=2.0, played=4,
    )  # fmt: skip
    assert cell.selected == 6 and cell.finished == 3
    assert cell.metrics["em"] == pytest.approx(3 / 6)
    # The paper's scores share the denominator: failures and missing episodes count 0.
    assert cell.metrics["paper_em"] == pytest.approx(3 / 6)
    assert cell.metrics["paper_acc"] is None
    assert cell.metrics["failures"] == 3
    assert cell.metrics["accuracy"] is None
    assert cell.metrics["searches"] == pytest.approx(sum(r.num_searches for r in kept) / 6)
    assert cell.metrics["throughput"] == 2.0
    errors = {e.example_id: e.error for e in cell.errors}
    assert errors[records[1].example_id] == "RuntimeError: boom"
    assert errors[selected[5]] == "no episode recorded"
    assert set(cell.metrics) == {key for key, _ in METRIC_COLUMNS}
    assert CellResult.from_dict(cell.to_dict()) == cell


def test_records_outside_the_selection_are_ignored(hotpot_records):
    env, records = hotpot_records
    cell = aggregate_cell(
        records, [records[0].example_id], dataset="d", agent="a", task="hotpotqa",
        multiple_choice=False,
    )  # fmt: skip
    assert cell.selected == 1 and cell.metrics["em"] == 1.0
    assert cell.metrics["wall_s"] is None and cell.metrics["throughput"] is None


def test_multiple_choice_reports_accuracy_and_no_evidence_recall():
    env = RAGEnv("medqa", limit=8)
    records = rollout(env, QuestionSearchHeuristic())
    cell = aggregate_cell(
        records, [ex.id for ex in env.examples], dataset="medqa", agent="h", task="medqa",
        multiple_choice=True,
    )  # fmt: skip
    expected = sum(r.metrics["accuracy"] for r in records) / 8
    assert cell.metrics["accuracy"] == pytest.approx(expected)
    assert cell.metrics["em"] is None and cell.metrics["f1"] is None
    assert cell.metrics["paper_em"] is None and cell.metrics["paper_f1"] is None
    paper = sum(r.metrics["paper_acc"] for r in records) / 8
    assert cell.metrics["paper_acc"] == pytest.approx(paper)
    assert cell.metrics["evidence_recall"] is None
    assert cell.metrics["latency_step_p50"] is not None


def test_percentiles():
    assert percentile([], 50) is None
    assert percentile([3.0], 99) == 3.0
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile(list(range(101)), 95) == 95


def test_non_finite_metrics_and_unreadable_timestamps_never_give_nan(hotpot_records):
    env, records = hotpot_records
    selected = [r.example_id for r in records[:3]]
    odd = [
        dataclasses.replace(records[0], metrics={**records[0].metrics, "em": float("nan")}),
        dataclasses.replace(records[1], started_at="yesterday"),
        dataclasses.replace(records[2], ended_at="2026-01-01T00:00:00+00:00", started_at="x"),
    ]
    cell = aggregate_cell(
        odd, selected, dataset="d", agent="a", task="hotpotqa", multiple_choice=False
    )
    em = cell.metrics["em"]
    assert em is not None and math.isfinite(em)
    assert em == pytest.approx(sum(r.metrics["em"] for r in records[1:3]) / 3)
    assert cell.metrics["latency_q_p50"] == cell.metrics["latency_q_p99"]  # one readable
    assert all(v is None or math.isfinite(v) for v in cell.metrics.values())


def test_episodes_without_paper_metrics_leave_them_missing(hotpot_records):
    env, records = hotpot_records
    old = [
        dataclasses.replace(
            r, metrics={k: v for k, v in r.metrics.items() if not k.startswith("paper_")}
        )
        for r in records
    ]
    cell = aggregate_cell(
        old, [ex.id for ex in env.examples], dataset="d", agent="a", task="hotpotqa",
        multiple_choice=False,
    )  # fmt: skip
    assert cell.metrics["paper_em"] is None and cell.metrics["paper_f1"] is None
    assert cell.metrics["em"] == 1.0
