"""Context precision and recall against gold evidence, on hand-built episodes."""

from __future__ import annotations

import pytest

from raggym_env.episode import EpisodeRecord, RetrievedDoc, SchemaError, StepRecord
from raggym_env.rag_metrics import context_precision, context_recall, episode_rag_metrics


def _search(index: int, *ids: str) -> StepRecord:
    docs = [RetrievedDoc(i, f"title {i}", 1.0) for i in ids]
    return StepRecord(index=index, action={"type": "search", "text": "q"}, retrieved=docs)


def _record(steps: list[StepRecord], gold: list[str]) -> EpisodeRecord:
    answer = StepRecord(index=len(steps), action={"type": "answer", "text": "x"})
    return EpisodeRecord(
        env_id="RAGGym/Custom-v0", env_version=0, example_id="q1", question="Who?",
        steps=[*steps, answer], final_answer="x", gold={"evidence_doc_ids": gold},
    )  # fmt: skip


def test_rank_aware_precision_and_recall_by_hand():
    # Retrieved in order: a g1 b | g1 (repeat, dropped) g2 -> ranks a=1 g1=2 b=3 g2=4.
    record = _record([_search(0, "a", "g1", "b"), _search(1, "g1", "g2")], ["g1", "g2", "g3"])
    got = episode_rag_metrics(record)
    assert got["context_recall"] == pytest.approx(2 / 3)
    assert got["context_precision"] == pytest.approx((1 / 2 + 2 / 4) / 2)


def test_perfect_and_zero_cases():
    assert context_precision(["g1", "g2", "x"], ["g1", "g2"]) == 1.0
    assert context_recall(["g1", "g2", "x"], ["g1", "g2"]) == 1.0
    assert context_precision(["x", "y"], ["g1"]) == 0.0
    assert context_recall([], ["g1"]) == 0.0
    assert context_precision([], ["g1"]) == 0.0
    # Relevant first counts more than relevant last.
    assert context_precision(["g", "x", "y"], ["g"]) > context_precision(["x", "y", "g"], ["g"])
    assert context_precision(["x", "y", "g"], ["g"]) == pytest.approx(1 / 3)


def test_no_gold_evidence_is_missing_not_zero():
    record = _record([_search(0, "a")], [])
    assert episode_rag_metrics(record) == {"context_precision": None, "context_recall": None}
    assert context_precision(["a"], []) is None


def test_json_mapping_accepted_and_malformed_rejected_clearly():
    record = _record([_search(0, "g1")], ["g1"])
    assert episode_rag_metrics(record.to_dict()) == {
        "context_precision": 1.0,
        "context_recall": 1.0,
    }
    with pytest.raises(SchemaError, match="schema_version"):
        episode_rag_metrics({"example_id": "q"})


def test_recall_matches_environment_evidence_recall():
    from raggym_env.metrics import evidence_recall

    ids, gold = ["a", "g2", "b", "g1"], ["g1", "g2", "g9"]
    assert context_recall(ids, gold) == evidence_recall(ids, gold)
