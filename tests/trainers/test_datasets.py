"""Episode records -> SFT rows, DPO pairs and reward-model pairs, JSONL and datasets."""

import dataclasses
import json
import math
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raggym.agents.baselines import CallablePolicy
from raggym.agents.critic_guided import CriticGuidedAgent
from raggym.agents.critics.base import critic_input
from raggym.agents.critics.gold import GoldEvidenceCritic
from raggym.agents.react import ReActAgent
from raggym.agents.rollout import run_episode
from raggym.testing.llms import MockLLM
from raggym.testing.retriever import FakeRetriever
from raggym.trainers import datasets as td
from raggym_env import Answer, Corpus, Document, RAGEnv, Search
from raggym_env.episode import Candidate, EpisodeRecord, RetrievedDoc, StepRecord
from raggym_env.retrieval.base import RetrievalError
from raggym_env.store import EpisodeStore, read_episodes

MAX_STEPS = 4
PROMPT = [
    {"role": "system", "content": "You answer questions."},
    {"role": "user", "content": "Question: Who?\nYou have 3 steps left."},
]

# ---------------------------------------------------------------------------------------------
# Hand-built records
# ---------------------------------------------------------------------------------------------


def cand(text, score, *, kind="search", error=None, parsed=True):
    if not parsed:
        return Candidate(text, None, error=error or "could not parse")
    return Candidate(text, {"type": kind, "text": text}, score, "judge", None, error)


def step(candidates=(), *, chosen=0, prompt=PROMPT, raw_text="auto", index=0, **extra):
    candidates = list(candidates)
    if raw_text == "auto":
        raw_text = candidates[chosen].text if candidates else "Search: q"
    action = (
        dict(candidates[chosen].action)
        if candidates and candidates[chosen].action
        else {"type": "search", "text": "q"}
    )
    step_extra = dict(extra)
    if prompt is not None:
        step_extra["prompt"] = prompt
    if candidates:
        step_extra["chosen"] = chosen
    return StepRecord(
        index=index, action=action, raw_text=raw_text, candidates=candidates, extra=step_extra
    )


def episode(steps, *, kept=True, error=None, example_id="q1", **fields):
    extra = {"agent": "test"} if kept is None else {"agent": "test", "kept": kept}
    return EpisodeRecord(
        env_id="RAGGym/HotpotQA-v0",
        env_version=0,
        example_id=example_id,
        question="Who?",
        steps=list(steps),
        error=error,
        extra=extra,
        **fields,
    )


# ---------------------------------------------------------------------------------------------
# Ranking and exclusion
# ---------------------------------------------------------------------------------------------


def test_ranks_are_competition_ranks_with_ties_best_first():
    s = step(
        [
            cand("a", 0.5),
            cand("junk", None, parsed=False),
            cand("b", 2.0),
            cand("c", 0.5),
            cand("d", 2.0),
            cand("e", -1.0),
        ],
        chosen=2,
    )
    ranked = td.rank_candidates(s)
    assert [(i, c.text, r) for i, c, r in ranked] == [
        (2, "b", 1),
        (4, "d", 1),
        (0, "a", 3),
        (3, "c", 3),
        (5, "e", 5),
    ]


def test_duplicate_texts_rank_once_at_their_best_score():
    s = step([cand("a", 1.0), cand("a", 1.0), cand("b", 0.5), cand("a", 3.0)])
    ranked = td.rank_candidates(s)
    assert [(i, c.text, r) for i, c, r in ranked] == [(3, "a", 1), (2, "b", 2)]


def test_unparsed_or_unscored_candidates_are_not_ranked():
    s = step([cand("x", None, parsed=False), cand("y", 1.0), cand("z", float("nan"))])
    assert [c.text for _, c, _ in td.rank_candidates(s)] == ["y"]


@pytest.mark.parametrize(
    ("candidates", "kwargs", "reason"),
    [
        ([cand("a", 1.0), cand("b", None, error="TimeoutError: judge")], {}, td.CRITIC_FAILURE),
        ([cand("a", 1.0), cand("b", None)], {}, td.CRITIC_FAILURE),
        ([cand("a", 1.0), cand("b", float("nan"))], {}, td.CRITIC_FAILURE),
        ([cand("a", 1.0), cand("b", 0.0), cand("c", None, parsed=False)], {}, None),
        ([cand("a", 1.0), cand("b", 1.0), cand("c", None, parsed=False)], {}, td.TOO_FEW_SCORES),
        ([cand("a", 1.0), cand("a", 0.0)], {}, td.TOO_FEW_SCORES),
        ([cand("a", 1.0)], {}, td.TOO_FEW_SCORES),
        ([], {}, td.NO_CANDIDATES),
        ([cand("a", 1.0), cand("b", 0.0)], {"prompt": None}, td.NO_PROMPT),
        ([cand("a", 1.0), cand("b", 0.0)], {"prompt": [{"role": "user"}]}, td.NO_PROMPT),
        ([cand("a", 1.0), cand("b", 0.0)], {"raw_text": None}, td.NO_MODEL_TEXT),
        (
            [cand("a", 1.0, kind="answer"), cand("b", 0.0)],
            {"fields": {"forced_answer": "true"}},
            td.FORCED_ANSWER,
        ),
    ],
)
def test_step_exclusion_reasons(candidates, kwargs, reason):
    assert td.step_excluded(step(candidates, **kwargs)) == reason


def test_reward_data_needs_no_prompt_and_keeps_forced_steps():
    scored = [cand("a", 1.0, kind="answer"), cand("b", 0.0)]
    assert td.step_excluded(step(scored, prompt=None), for_policy=False) is None
    forced = step(scored, fields={"forced_answer": "true"})
    assert td.step_excluded(forced, for_policy=False) is None
    failed = step([cand("a", 1.0), cand("b", None, error="judge unreadable")], prompt=None)
    assert td.step_excluded(failed, for_policy=False) == td.CRITIC_FAILURE


# ---------------------------------------------------------------------------------------------
# A realistic collection: ReAct + mock LLM, gold-evidence critic, HotpotQA sample
# ---------------------------------------------------------------------------------------------

SAMPLES = {
    # 4 steps left: two gold searches tie first, two worthless actions rank 3.
    4: [
        "Thought: start with the director\nAction: Search[Scott Derrickson]",
        "I am not sure what to do",
        "Thought: food\nAction: Search[pizza recipes]",
        "Thought: guess\nAction: Finish[no]",
        "Thought: the other one\nAction: Search[Ed Wood]",
    ],
    # 3 steps left: the right answer, a useful search, two wrong or useless actions.
    3: [
        "Thought: both American\nAction: Finish[yes]",
        "Thought: check Ed Wood\nAction: Search[Ed Wood filmmaker]",
        "Thought: doubt\nAction: Finish[no]",
        "Thought: food\nAction: Search[pizza recipes]",
        "Thought: both American\nAction: Finish[yes]",
    ],
}


class RecordingCritic:
    """Wraps a critic and keeps the observation of every scored step."""

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name
        self.observations = []

    def score(self, groups):
        self.observations.extend(group[0].observation for group in groups if group)
        return self.inner.score(groups)


def respond(conversation):
    for left, samples in SAMPLES.items():
        if f"You have {left} steps left" in conversation[-1]["content"]:
            return samples
    return "Thought: finish\nAction: Finish[yes]"


@pytest.fixture(scope="module")
def env():
    return RAGEnv("hotpotqa", limit=5, max_steps=MAX_STEPS)


@pytest.fixture(scope="module")
def collected(env, tmp_path_factory):
    """One collected episode, written to and read back from an episode store."""
    critic = RecordingCritic(GoldEvidenceCritic(env.retriever, k=env.k))
    actor = ReActAgent(MockLLM(respond))
    agent = CriticGuidedAgent(actor, critic, n=5)
    record = run_episode(env, agent, options={"index": 0})
    record = dataclasses.replace(record, extra={**record.extra, "kept": True})
    path = tmp_path_factory.mktemp("episodes") / "collect.jsonl"
    with EpisodeStore(path, fsync=False) as store:
        store.append(record)
    (stored,) = read_episodes(path)
    return stored, critic.observations, actor.llm.calls


def test_the_collected_episode_is_what_the_tests_expect(collected):
    record, observations, calls = collected
    assert [s.action for s in record.steps] == [
        {"type": "search", "text": "Scott Derrickson"},
        {"type": "answer", "text": "yes"},
    ]
    assert len(observations) == len(calls) == 2
    first = record.steps[0]
    assert [c.score for c in first.candidates] == [0.5, None, 0.0, 0.0, 0.5]


def test_sft_rows_use_the_exact_prompt_and_the_followed_candidate(collected):
    record, _, calls = collected
    rows = td.sft_rows([record])
    assert len(rows) == 2
    for row, s, (conversations, _params) in zip(rows, record.steps, calls, strict=True):
        assert row["prompt"] == s.extra["prompt"] == conversations[0]
        followed = s.candidates[s.extra["chosen"]]
        assert row["completion"] == [{"role": "assistant", "content": followed.text}]
        assert row["meta"]["example_id"] == record.example_id
        assert row["meta"]["action"] == s.action
    assert rows[1]["completion"][0]["content"].endswith("Finish[yes]")


def test_sft_falls_back_to_raw_text_without_candidates():
    s = StepRecord(
        index=0,
        action={"type": "answer", "text": "yes"},
        raw_text="Answer: yes",
        extra={"prompt": PROMPT},
    )
    (row,) = td.sft_rows([episode([s])])
    assert row["completion"] == [{"role": "assistant", "content": "Answer: yes"}]


def test_sft_uses_only_kept_successful_episodes_and_usable_steps():
    good = step([cand("a", 1.0), cand("b", 0.0)])
    invalid = StepRecord(
        index=1,
        action={"type": "invalid", "text": ""},
        raw_text="garbage",
        action_error="could not parse",
        extra={"prompt": PROMPT},
    )
    scripted = StepRecord(index=2, action={"type": "search", "text": "q"})
    failed_judge = step([cand("a", 1.0), cand("b", None, error="judge down")])
    forced = step([cand("a", 1.0, kind="answer")], fields={"forced_answer": "true"})
    episodes = [
        episode([good, invalid, scripted, failed_judge, forced]),
        episode([good], kept=False),
        episode([good], kept=None),
        episode([good], error="LLMError: timeout"),
    ]
    stats = td.DatasetStats("sft")
    rows = td.sft_rows(episodes, stats=stats)
    assert len(rows) == 1 and stats.rows == 1
    assert stats.skipped_episodes == {
        td.EPISODE_NOT_KEPT: 1,
        td.NO_KEPT_FLAG: 1,
        td.EPISODE_FAILED: 1,
    }
    assert stats.skipped_steps == {
        td.INVALID_ACTION: 1,
        td.NO_MODEL_TEXT: 1,
        td.CRITIC_FAILURE: 1,
        td.FORCED_ANSWER: 1,
    }
    assert (stats.episodes, stats.episodes_used, stats.steps, stats.steps_used) == (4, 1, 5, 1)
    summary = stats.summary()
    assert "sft: 1 rows" in summary and td.CRITIC_FAILURE in summary
    assert len(td.sft_rows(episodes, kept_only=False)) == 3  # crashed episode still out


def test_dpo_pairs_rank_one_against_rank_three_or_worse(collected):
    record, _, _ = collected
    rows = td.dpo_rows([record])
    pairs = [
        (r["meta"]["step"], r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in rows
    ]
    first, second = ([c.text for c in s.candidates] for s in record.steps)
    assert pairs == [
        (0, first[0], first[2]),  # followed rank-1 search vs the useless search (rank 3)
        (0, first[0], first[3]),  # ... vs the wrong answer (rank 3)
        (1, second[0], second[2]),  # right answer vs wrong answer (rank 3)
        (1, second[0], second[3]),
    ]
    for row in rows:
        meta = row["meta"]
        assert meta["chosen_rank"] == 1 and meta["rejected_rank"] >= 3
        assert meta["chosen_score"] > meta["rejected_score"]
        assert row["prompt"] == record.steps[meta["step"]].extra["prompt"]
        assert row["chosen"] != row["rejected"]
    # the second-ranked search (score 0.5 at step 1) only pairs with a threshold of 2
    loose = td.dpo_rows([record], rejected_rank=2)
    assert (1, second[0], second[1]) in {
        (r["meta"]["step"], r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in loose
    }


def test_dpo_never_pairs_a_text_with_itself_and_drops_duplicates():
    s = step(
        [cand("a", 2.0), cand("a", 2.0), cand("b", 1.0), cand("c", 0.0), cand("c", 0.0)],
        chosen=1,
    )
    stats = td.DatasetStats("dpo")
    rows = td.dpo_rows([episode([s]), episode([s], example_id="q2")], stats=stats)
    assert [(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in rows] == [("a", "c")]
    assert stats.duplicates == 1 and stats.skipped_steps == {td.DUPLICATE: 1}


def test_dpo_prefers_the_followed_candidate_among_rank_one_ties():
    s = step([cand("a", 1.0), cand("b", 1.0), cand("x", 0.5), cand("y", 0.0)], chosen=1)
    rows = td.dpo_rows([episode([s])])
    assert {r["chosen"][0]["content"] for r in rows} == {"b"}
    assert {r["rejected"][0]["content"] for r in rows} == {"x", "y"}


def test_dpo_uses_unkept_episodes_unless_asked_and_counts_skips():
    no_rank_three = step([cand("a", 1.0), cand("b", 0.0)])
    failed = step([cand("a", 1.0), cand("b", None, error="judge down"), cand("c", 0.0)])
    scored = step([cand("a", 2.0), cand("b", 1.0), cand("c", 0.0)])
    records = [episode([no_rank_three, failed, scored], kept=False)]
    stats = td.DatasetStats("dpo")
    assert len(td.dpo_rows(records, stats=stats)) == 1
    assert stats.skipped_steps == {td.NO_REJECTED: 1, td.CRITIC_FAILURE: 1}
    assert td.dpo_rows(records, kept_only=True) == []
    with pytest.raises(ValueError, match="rejected_rank"):
        td.dpo_rows(records, rejected_rank=1)
    with pytest.raises(ValueError, match="not 'dpo'"):
        td.dpo_rows(records, stats=td.DatasetStats("sft"))


def test_observation_at_rebuilds_what_the_env_observed(collected, env):
    record, observations, _ = collected
    for index, observed in enumerate(observations):
        assert td.observation_at(record, index, env.corpus, max_steps=MAX_STEPS) == observed
    # without the budget only steps_remaining is unknown (state_text does not read it)
    rebuilt = td.observation_at(record, 1, env.corpus)
    assert {k: v for k, v in rebuilt.items() if k != "steps_remaining"} == {
        k: v for k, v in observations[1].items() if k != "steps_remaining"
    }
    carded = dataclasses.replace(record, run_card={"config": {"max_steps": MAX_STEPS}})
    assert td.observation_at(carded, 1, env.corpus) == observations[1]
    with pytest.raises(IndexError):
        td.observation_at(record, 3, env.corpus)


def test_reward_rows_are_critic_inputs_of_the_real_observations(collected, env):
    record, observations, _ = collected
    rows = td.reward_rows([record], env.corpus)
    assert rows
    actions = {"search": Search, "answer": Answer}
    for row in rows:
        meta = row["meta"]
        observed = observations[meta["step"]]
        chosen = actions[meta["chosen_action"]["type"]](meta["chosen_action"]["text"])
        rejected = actions[meta["rejected_action"]["type"]](meta["rejected_action"]["text"])
        assert row["chosen"] == critic_input(observed, chosen)
        assert row["rejected"] == critic_input(observed, rejected)
        assert meta["chosen_score"] > meta["rejected_score"]
        assert set(row) == {"chosen", "rejected", "meta"}
    # step 1's history holds the first search's documents, as the critic saw them
    step_one = [r for r in rows if r["meta"]["step"] == 1]
    assert step_one and all("Search 1: Scott Derrickson" in r["chosen"] for r in step_one)


def test_reward_rows_skip_steps_whose_documents_are_not_in_the_corpus():
    corpus = Corpus([Document("d1", "Paris", "Paris is the capital of France.")], name="tiny")
    search = StepRecord(
        index=0,
        action={"type": "search", "text": "paris"},
        retrieved=[RetrievedDoc("d1", "Paris", 1.0)],
    )
    lost = StepRecord(
        index=0,
        action={"type": "search", "text": "rome"},
        retrieved=[RetrievedDoc("d9", "Rome", 1.0)],
    )
    renamed = StepRecord(
        index=0,
        action={"type": "search", "text": "paris"},
        retrieved=[RetrievedDoc("d1", "Lyon", 1.0)],
    )
    scored = step([cand("Answer: Paris", 1.0, kind="answer"), cand("x", 0.0)], index=1)
    stats = td.DatasetStats("reward")
    rows = td.reward_rows(
        [episode([search, scored]), episode([lost, scored]), episode([renamed, scored])],
        corpus,
        stats=stats,
    )
    assert len(rows) == 1
    assert "- Paris: Paris is the capital of France." in rows[0]["chosen"]
    assert stats.skipped_steps[td.MISSING_DOCUMENT] == 1
    assert stats.skipped_steps[td.DOCUMENT_MISMATCH] == 1
    with pytest.raises(td.CorpusMismatchError, match="d9"):
        td.observation_at(episode([lost, scored]), 1, corpus)


def test_failed_and_empty_searches_rebuild_as_the_env_built_them(tiny_corpus):
    retriever = FakeRetriever(tiny_corpus, fail_on={"rome": RetrievalError("server down")})
    env = RAGEnv("hotpotqa", limit=1, corpus=tiny_corpus, retriever=retriever, max_steps=6)
    script = iter(["Search: rome", "Search: zzz", "gibberish", "Search: Ed Wood", "Answer: x"])
    seen = []

    def act(observation):
        seen.append(observation)
        return next(script)

    record = run_episode(env, CallablePolicy(act), options={"index": 0})
    assert record.steps[0].action_error and not record.steps[0].retrieved
    assert record.steps[2].action_type == "invalid"
    for index, observed in enumerate(seen):
        assert td.observation_at(record, index, tiny_corpus, max_steps=6) == observed
    assert [h["query"] for h in seen[-1]["history"]] == ["zzz", "Ed Wood"]


def test_observation_at_reads_options_in_order(tiny_corpus):
    record = episode([], options={"A": "Paris", "B": "Rome"})
    assert td.observation_at(record, 0, tiny_corpus, max_steps=5) == {
        "question": "Who?",
        "options": ({"letter": "A", "text": "Paris"}, {"letter": "B", "text": "Rome"}),
        "history": (),
        "steps_remaining": 5,
    }


def test_reward_pairs_of_the_same_action_are_dropped():
    s = step(
        [
            cand("Thought: x\nSearch: a", 1.0),
            cand("Thought: y\nSearch: a", 0.0),
        ]
    )
    # both texts propose the same action, so their critic inputs are identical
    s = dataclasses.replace(
        s,
        candidates=[
            dataclasses.replace(c, action={"type": "search", "text": "a"}) for c in s.candidates
        ],
    )
    stats = td.DatasetStats("reward")
    assert td.reward_rows([episode([s])], Corpus([]), stats=stats) == []
    assert stats.skipped_steps == {td.SAME_ACTION: 1}


# ---------------------------------------------------------------------------------------------
# Pair invariants over arbitrary scores
# ---------------------------------------------------------------------------------------------

scores = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.sampled_from([0.0, 0.5, 1.0]),
)
candidate_specs = st.lists(
    st.tuples(st.sampled_from("abcdef"), scores, st.booleans()), min_size=0, max_size=8
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs=candidate_specs, rejected_rank=st.integers(2, 5), chosen=st.integers(0, 7))
def test_pairs_always_prefer_a_strictly_higher_score(specs, rejected_rank, chosen):
    candidates = [cand(f"Search: {text}", score, parsed=parsed) for text, score, parsed in specs]
    s = step(candidates, chosen=min(chosen, len(candidates) - 1) if candidates else 0)
    ranked = td.rank_candidates(s)
    ranks = [r for _, _, r in ranked]
    assert ranks == sorted(ranks) and (not ranks or ranks[0] == 1)
    assert len({c.text for _, c, _ in ranked}) == len(ranked)
    rows = td.dpo_rows([episode([s])], rejected_rank=rejected_rank)
    corpus = Corpus([])
    rewards = td.reward_rows([episode([s])], corpus, rejected_rank=rejected_rank)
    failed = any(c.action and (c.score is None or math.isnan(c.score)) for c in candidates)
    if failed:
        assert rows == [] and rewards == []
    for row in rows + rewards:
        meta = row["meta"]
        assert meta["chosen_score"] > meta["rejected_score"]
        assert meta["chosen_rank"] == 1 and meta["rejected_rank"] >= rejected_rank
        assert row["chosen"] != row["rejected"]
    keys = [json.dumps({k: v for k, v in r.items() if k != "meta"}) for r in rows]
    assert len(keys) == len(set(keys))


# ---------------------------------------------------------------------------------------------
# JSONL and datasets
# ---------------------------------------------------------------------------------------------


def test_jsonl_round_trip_and_atomic_replace(collected, tmp_path):
    record, _, _ = collected
    path = tmp_path / "out" / "dpo.jsonl"
    rows = td.dpo_rows([record])
    assert td.write_jsonl(rows, path) == path
    assert td.read_jsonl(path) == json.loads(json.dumps(rows))
    # a row that cannot be written leaves the old file whole and no temporary file behind
    with pytest.raises(TypeError, match="row 1"):
        td.write_jsonl([rows[0], {"bad": object()}], path)
    assert td.read_jsonl(path) == json.loads(json.dumps(rows))
    assert sorted(p.name for p in path.parent.iterdir()) == ["dpo.jsonl"]
    path.write_text('{"a": 1}\n\n[1, 2]\n')
    with pytest.raises(ValueError, match=r"dpo.jsonl:3: expected a JSON object"):
        td.read_jsonl(path)


def test_jsonl_keeps_lone_surrogates(tmp_path):
    rows = [{"chosen": "bad \ud800 text", "rejected": "ok"}]
    path = td.write_jsonl(rows, tmp_path / "r.jsonl")
    assert td.read_jsonl(path) == rows


def test_to_dataset_has_exactly_the_trl_columns(collected, env, tmp_path):
    record, _, _ = collected
    made = {
        "sft": td.sft_rows([record]),
        "dpo": td.dpo_rows([record]),
        "reward": td.reward_rows([record], env.corpus),
    }
    for kind, rows in made.items():
        path = td.write_jsonl(rows, tmp_path / f"{kind}.jsonl")
        dataset = td.to_dataset(td.read_jsonl(path), kind)
        assert dataset.column_names == list(td.COLUMNS[kind])
        assert len(dataset) == len(rows) > 0
        first = {name: rows[0][name] for name in td.COLUMNS[kind]}
        assert dataset[0] == first
    empty = td.to_dataset([], "dpo")
    assert len(empty) == 0 and empty.column_names == ["prompt", "chosen", "rejected"]


def test_trl_reads_the_formats(collected, env):
    data_utils = pytest.importorskip("trl.data_utils")
    record, _, _ = collected
    sft = td.to_dataset(td.sft_rows([record]), "sft")
    dpo = td.to_dataset(td.dpo_rows([record]), "dpo")
    reward = td.to_dataset(td.reward_rows([record], env.corpus), "reward")
    assert data_utils.is_conversational(sft[0]) and data_utils.is_conversational(dpo[0])
    assert not data_utils.is_conversational(reward[0])  # plain strings: implicit prompt
    assert all(isinstance(reward[0][name], str) for name in ("chosen", "rejected"))


def test_to_dataset_rejects_bad_rows_and_kinds():
    with pytest.raises(ValueError, match="kind must be one of"):
        td.to_dataset([], "ppo")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="row 0: missing column 'rejected'"):
        td.to_dataset([{"chosen": "a"}], "reward")
    with pytest.raises(ValueError, match="row 0 column 'completion'"):
        td.to_dataset([{"prompt": PROMPT, "completion": "text"}], "sft")


def test_to_dataset_without_datasets_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(ImportError, match=r"pip install 'raggym\[train\]'"):
        td.to_dataset([], "sft")


def test_dpo_takes_an_explicit_or_an_implicit_prompt():
    """TRL's DPOTrainer reads prompt/chosen/rejected and extracts an implicit prompt itself."""
    pytest.importorskip("datasets")
    chosen = [{"role": "assistant", "content": "Search: Paris"}]
    rejected = [{"role": "assistant", "content": "Answer: Rome"}]
    explicit = td.to_dataset([{"prompt": PROMPT, "chosen": chosen, "rejected": rejected}], "dpo")
    assert explicit.column_names == ["prompt", "chosen", "rejected"]
    implicit_rows = [{"chosen": PROMPT + chosen, "rejected": PROMPT + rejected, "meta": {}}]
    implicit = td.to_dataset(implicit_rows, "dpo")
    assert implicit.column_names == ["chosen", "rejected"]
    standard = td.to_dataset([{"prompt": "Q?", "chosen": " a", "rejected": " b"}], "dpo")
    assert standard[0] == {"prompt": "Q?", "chosen": " a", "rejected": " b"}
    with pytest.raises(ValueError, match="row 1: missing column 'prompt'"):
        td.to_dataset([explicit[0], implicit_rows[0]], "dpo")
    with pytest.raises(ValueError, match="row 0 column 'chosen': expected a string"):
        td.to_dataset([{"prompt": "Q?", "chosen": chosen, "rejected": " b"}], "dpo")


def test_reward_data_keeps_a_numeric_margin_and_datasets_lose_other_columns():
    datasets = pytest.importorskip("datasets")
    rows = [{"chosen": "a", "rejected": "b", "margin": 1, "meta": {"x": 1}}]
    assert td.to_dataset(rows, "reward")[0] == {"chosen": "a", "rejected": "b", "margin": 1.0}
    with pytest.raises(ValueError, match="column 'margin': expected a number"):
        td.to_dataset([{"chosen": "a", "rejected": "b", "margin": "big"}], "reward")
    given_dataset = datasets.Dataset.from_list([{"text": "x", "tools": "y"}])
    assert td.to_dataset(given_dataset, "sft").column_names == ["text"]
    with pytest.raises(ValueError, match="missing column 'chosen'"):
        td.to_dataset(given_dataset, "reward")
