"""protocol="rag-gym" training rows: the paper's episode filter, thresholds and critic rows."""

import pytest

from raggym.trainers import datasets as td
from raggym_env.episode import Candidate, EpisodeRecord, StepRecord

PROMPT = [
    {"role": "system", "content": "You answer questions."},
    {"role": "user", "content": "Question: Who?"},
]


def cand(text, score, *, kind="search", error=None):
    return Candidate(text, {"type": kind, "text": text}, score, "judge", None, error)


def ranked(*texts, kind="search"):
    """Candidates scored as the paper's judge does: 1/(1+rank), best first."""
    return [cand(text, 1.0 / (1 + rank), kind=kind) for rank, text in enumerate(texts)]


def step(candidates, *, chosen=0, prompt=PROMPT, raw_text="auto", action=None, **extra):
    raw = candidates[chosen].text if raw_text == "auto" and candidates else raw_text
    if raw == "auto":
        raw = "Search: q"
    act = action or (
        dict(candidates[chosen].action) if candidates else {"type": "search", "text": "q"}
    )
    step_extra = dict(extra)
    if prompt is not None:
        step_extra["prompt"] = prompt
    if candidates:
        step_extra["chosen"] = chosen
    return StepRecord(
        index=0, action=act, raw_text=raw, candidates=list(candidates), extra=step_extra
    )


def answer_step(**kwargs):
    return step(ranked("yes", "maybe", "no", "dunno", kind="answer"), **kwargs)


# final answer, first gold answer: their token F1 is the key (the paper's outcome label)
ANSWERS_WITH_F1 = {
    1.0: ("Ed Wood", "Ed Wood"),
    0.8: ("alpha beta gamma", "alpha beta gamma delta"),  # 0.857
    0.75: ("w1 w2 w3", "w1 w2 w3 w4 w5"),  # 0.75, not above
    0.5: ("w1 w3", "w1 w2"),
}


def episode(steps, *, f1=1.0, kept=False, error=None, example_id="q1"):
    answer, gold = ANSWERS_WITH_F1[f1]
    return EpisodeRecord(
        env_id="RAGGym/HotpotQA-v0",
        env_version=0,
        example_id=example_id,
        question="Who?",
        steps=list(steps),
        final_answer=answer,
        gold={"answers": [gold, "an alias that matches exactly: " + answer]},
        error=error,
        metrics={"f1": 1.0},  # raggym's alias-max F1: never what the paper's filter reads
        extra={"agent": "test", "kept": kept},
    )


def test_the_filter_reads_the_paper_outcome_not_the_alias_maximum():
    assert td.rag_gym_episode_skipped(good_episode(f1=0.5)) == td.OUTCOME_NOT_ABOVE
    mc = EpisodeRecord(
        env_id="RAGGym/MedQA-v0", env_version=0, example_id="m", question="Which?",
        options={"A": "x", "B": "y"}, steps=[answer_step()], final_answer="B. y",
        gold={"answers": ["y"], "answer_letter": "B"}, metrics={"accuracy": 1.0},
    )  # fmt: skip
    assert td.rag_gym_episode_skipped(mc) == td.OUTCOME_NOT_ABOVE  # EM of "B. y" vs "B"
    exact = EpisodeRecord(**{**mc.__dict__, "final_answer": "b"})
    assert td.rag_gym_episode_skipped(exact) is None


def good_episode(**kwargs):
    return episode(
        [step(ranked("Search: a", "Search: b", "Search: c", "Search: d")), answer_step()], **kwargs
    )


def test_episode_filter_is_strictly_above_and_needs_a_model_answer():
    assert td.rag_gym_episode_skipped(good_episode(f1=0.8)) is None
    assert td.rag_gym_episode_skipped(good_episode(f1=0.75)) == td.OUTCOME_NOT_ABOVE
    assert td.rag_gym_episode_skipped(good_episode(error="boom")) == td.EPISODE_FAILED
    searched_last = episode([step(ranked("Search: a", "Search: b"))])
    assert td.rag_gym_episode_skipped(searched_last) == td.NO_FINAL_ANSWER
    forced = episode([answer_step(fields={"forced_answer": "true"})])
    assert td.rag_gym_episode_skipped(forced) == td.NO_FINAL_ANSWER
    scripted = episode([step([], raw_text=None, action={"type": "answer", "text": "x"})])
    assert td.rag_gym_episode_skipped(scripted) == td.NO_FINAL_ANSWER


def test_the_kept_flag_of_another_protocol_is_not_trusted():
    stats = td.DatasetStats("sft")
    rows = td.sft_rows([good_episode(f1=0.75, kept=True)], protocol="rag-gym", stats=stats)
    assert rows == []
    assert stats.skipped_episodes == {td.OUTCOME_NOT_ABOVE: 1}
    # ... and an unkept episode the rule accepts is used.
    assert td.sft_rows([good_episode(kept=False)], protocol="rag-gym")


def test_sft_rows_are_the_top_ranked_candidates_only_deduplicated():
    dup = step([cand("Search: a", 1.0), cand("Search: a", 1.0), cand("Search: b", 0.5)])
    rows = td.sft_rows([episode([dup, answer_step()])], protocol="rag-gym")
    assert [r["completion"][0]["content"] for r in rows] == ["Search: a", "yes"]
    assert all(r["prompt"] == PROMPT for r in rows)


def test_sft_skips_steps_without_candidates_or_with_a_critic_failure():
    plain = step([], raw_text="Search: q")
    failed = step([cand("Search: a", 1.0), cand("Search: b", None, error="judge timed out")])
    stats = td.DatasetStats("sft")
    rows = td.sft_rows([episode([plain, failed, answer_step()])], protocol="rag-gym", stats=stats)
    assert len(rows) == 1
    assert stats.skipped_steps == {td.NO_CANDIDATES: 1, td.CRITIC_FAILURE: 1}


def test_dpo_pairs_the_best_against_every_candidate_below_one_half():
    rows = td.dpo_rows([good_episode()], protocol="rag-gym")
    pairs = [(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in rows]
    assert pairs == [
        ("Search: a", "Search: c"),
        ("Search: a", "Search: d"),
        ("yes", "no"),
        ("yes", "dunno"),
    ]
    assert all(r["meta"]["chosen_score"] == 1.0 and r["meta"]["rejected_score"] < 0.5 for r in rows)


def test_dpo_steps_without_a_negative_or_positive_give_nothing():
    two = step(ranked("Search: a", "Search: b"))
    no_top = step([cand("Search: a", 0.5), cand("Search: b", 0.2)])
    stats = td.DatasetStats("dpo")
    rows = td.dpo_rows([episode([two, no_top, answer_step()])], protocol="rag-gym", stats=stats)
    assert len(rows) == 2
    assert stats.skipped_steps == {td.NO_REJECTED: 1, td.NO_POSITIVE: 1}
    # unkept episodes give nothing, unlike the raggym default
    assert td.dpo_rows([good_episode(f1=0.5)], protocol="rag-gym") == []
    assert td.dpo_rows([good_episode(f1=0.5)])


def test_reward_rows_are_conversations_of_the_recorded_prompt_and_full_text():
    rows = td.reward_rows([good_episode()], protocol="rag-gym")
    assert len(rows) == 4
    first = rows[0]
    assert first["chosen"] == [*PROMPT, {"role": "assistant", "content": "Search: a"}]
    assert first["rejected"] == [*PROMPT, {"role": "assistant", "content": "Search: c"}]
    dataset = td.to_dataset(rows, "reward")
    assert dataset.column_names == ["chosen", "rejected"]
    assert dataset[0]["chosen"][-1] == {"role": "assistant", "content": "Search: a"}


def test_unknown_protocol_is_refused():
    with pytest.raises(ValueError, match="unknown protocol"):
        td.sft_rows([], protocol="nope")
