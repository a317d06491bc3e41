"""Per-step analysis on hand-built episodes with known values."""

import pytest

from raggym.benchmarks.step_analysis import (
    OUTCOME_BUCKETS,
    evidence_recall_by_step,
    final_evidence_recall,
    outcome_breakdown,
    outcome_bucket,
    plot_step_analysis,
    searches_per_question,
)
from raggym_env.episode import EpisodeRecord, RetrievedDoc, StepRecord

GOLD = {"answers": ["Paris"], "evidence_titles": ["A", "B"]}


def search(i, recall, *titles):
    docs = [RetrievedDoc(t, t, 1.0) for t in titles]
    return StepRecord(index=i, action={"type": "search", "text": "q"}, retrieved=docs,
                      evidence_recall=recall)  # fmt: skip


def answer(i, recall, text="Paris"):
    return StepRecord(index=i, action={"type": "answer", "text": text}, evidence_recall=recall)


def episode(steps, answer_text="Paris", em=1.0, gold=GOLD, error=None, **extra):
    return EpisodeRecord(
        env_id="RAGGym/HotpotQA-v0", env_version=0, example_id=f"q{len(steps)}{em}",
        question="?", steps=steps, final_answer=answer_text, gold=gold,
        metrics={} if error else {"em": em}, terminated=answer_text is not None, error=error,
        **extra,
    )  # fmt: skip


def test_recall_by_step_carries_a_finished_episode_forward():
    one = episode([search(0, 0.5, "A"), search(1, 1.0, "B"), answer(2, 1.0)])
    two = episode([search(0, 0.0, "C"), answer(1, None)], "London", 0.0)
    none = episode([], None, 0.0)
    assert evidence_recall_by_step([one, two, none]) == pytest.approx([0.5 / 3, 1 / 3, 1 / 3])
    no_gold = episode([search(0, None, "A")], gold={"answers": ["x"]})
    assert evidence_recall_by_step([no_gold]) == []
    assert final_evidence_recall(no_gold) is None
    assert final_evidence_recall(one) == 1.0


def test_searches_per_question_counts_questions_per_number_of_searches():
    records = [
        episode([search(0, 0.5), search(1, 0.5), answer(2, 0.5)]),
        episode([answer(0, 0.0)]),
        episode([search(0, 0.5), answer(1, 0.5)]),
        episode([search(0, 0.5), StepRecord(index=1, action={"type": "invalid", "text": "?"})]),
    ]
    assert searches_per_question(records) == {0: 1, 1: 2, 2: 1}
    assert searches_per_question([]) == {}


def test_outcome_buckets():
    found = episode([search(0, 1.0, "A", "B"), answer(1, 1.0, "Rome")], "Rome", 0.0)
    missed = episode([search(0, 0.5, "A"), answer(1, 0.5, "Rome")], "Rome", 0.0)
    correct = episode([search(0, 0.5, "A"), answer(1, 0.5)])
    no_answer = episode([search(0, 0.5, "A")], None, 0.0)
    failed = episode([search(0, 1.0, "A", "B")], None, 0.0, error="RuntimeError: boom")
    mc = EpisodeRecord(env_id="RAGGym/MedQA-v0", env_version=0, example_id="m", question="?",
                       options={"A": "x", "B": "y"}, final_answer="B", gold={"answers": ["A"]},
                       metrics={"accuracy": 0.0, "em": 1.0})  # fmt: skip
    assert outcome_bucket(found, False) == "wrong, evidence found"
    assert outcome_bucket(missed, False) == "wrong, evidence missed"
    assert outcome_bucket(correct, False) == "correct"
    assert outcome_bucket(no_answer, False) == "no answer"
    assert outcome_bucket(failed, False) == "failed"
    assert outcome_bucket(mc, True) == "wrong"  # accuracy decides for multiple choice
    breakdown = outcome_breakdown([found, missed, correct, correct, no_answer, failed], False)
    assert list(breakdown) == list(OUTCOME_BUCKETS)
    assert breakdown == {"correct": 2, "wrong, evidence found": 1, "wrong, evidence missed": 1,
                         "wrong": 0, "no answer": 1, "failed": 1}  # fmt: skip
    # scored as multiple choice, EM no longer counts: the "correct" ones missed evidence
    assert outcome_breakdown([correct, mc], True)["wrong, evidence missed"] == 1


def test_plot_is_a_png():
    pytest.importorskip("matplotlib")
    cells = {
        "a": [episode([search(0, 0.5, "A"), answer(1, 0.5)])],
        "b": [episode([answer(0, 0.0, "Rome")], "Rome", 0.0)],
    }
    data = plot_step_analysis("hotpotqa", cells, False)
    assert data.startswith(b"\x89PNG") and len(data) > 5000
