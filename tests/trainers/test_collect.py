"""Process-supervision collection: scored candidates, kept marks, resume, critics, CLI."""

import json
import re

import gymnasium as gym
import pytest

from raggym.agents.critics.base import CriticItem
from raggym.agents.llm.base import Completion
from raggym.agents.react import ReActAgent
from raggym.testing.fake_server import create_fake_openai_app
from raggym.testing.llms import MockLLM
from raggym.trainers.collect import CollectConfig, CollectSummary, collect, is_critic_failure
from raggym.trainers.critics import MonteCarloCritic, make_collection_critic
from raggym_env import Answer, Search
from raggym_env.cli import main
from raggym_env.env import EnvFactory
from raggym_env.retrieval.server import BackgroundServer
from raggym_env.store import EpisodeStore, read_episodes

NONSENSE = "zzqx nonsense"
GARBAGE = "I will not follow the format."


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def factory():
    return EnvFactory("hotpotqa", limit=4)


@pytest.fixture(scope="module")
def plan(factory):
    """question -> (index, key gold title, right answer, wrong answer)."""
    out = {}
    for i, ex in enumerate(factory.examples):
        right = ex.answers[0]
        wrong = {"yes": "no", "no": "yes"}.get(right, "Goosebumps")
        out[ex.question] = (i, ex.evidence.titles[1], right, wrong)
    return out


def question_of(conversation) -> str:
    text = conversation[-1]["content"]
    return re.search(r"^(?:Question: )?(.*)$", text, re.MULTILINE).group(1)


def actor_pool(plan, conversation) -> list[str]:
    """Candidates differ by sample: a gold search, nonsense, garbage, answers right/wrong.

    Even-numbered questions can be answered right after the first search; odd ones only
    wrong, so their episodes are not kept.
    """
    i, title, right, wrong = plan[question_of(conversation)]
    if "(none yet)" in conversation[-1]["content"]:
        return [
            f"Thought: the key page.\nAction: Search[{title}]",
            f"Thought: a random search.\nAction: Search[{NONSENSE}]",
            GARBAGE,
            f"Thought: a guess.\nAction: Finish[{wrong}]",
        ]
    if i % 2 == 0:
        return [
            f"Thought: found it.\nAction: Finish[{right}]",
            f"Thought: hmm.\nAction: Finish[{wrong}]",
            f"Thought: more.\nAction: Search[{NONSENSE}]",
            GARBAGE,
        ]
    return [f"Thought: unsure.\nAction: Finish[{wrong}]", GARBAGE] * 2


def rollout_reply(plan, conversation) -> str:
    """A rollout policy: right once the key gold page was seen, else search again, then wrong."""
    _, title, right, wrong = plan[question_of(conversation)]
    text = conversation[-1]["content"]
    if f"Title: {title}\n" in text:
        return f"Thought: seen it.\nAction: Finish[{right}]"
    if text.count("Search[") < 2:
        return "Thought: keep looking.\nAction: Search[zzqx more]"
    return f"Thought: give up.\nAction: Finish[{wrong}]"


def counts(records):
    steps = [s for r in records for s in r.steps]
    failures = [c for s in steps for c in s.candidates if is_critic_failure(c)]
    excluded = [s for s in steps if any(is_critic_failure(c) for c in s.candidates)]
    return {
        "steps": len(steps),
        "candidates": sum(len(s.candidates) for s in steps),
        "kept": sum(r.extra["kept"] for r in records),
        "critic_failures": len(failures),
        "excluded_steps": len(excluded),
    }


def summary_counts(summary: CollectSummary):
    return {k: getattr(summary, k) for k in ("steps", "candidates", "kept", "critic_failures",
                                             "excluded_steps")}  # fmt: skip


# ----------------------------------------------------------------------------- gold critic
def test_gold_collection_records_scored_candidates_marks_kept_and_resumes(tmp_path, factory, plan):
    actor = ReActAgent(MockLLM(lambda c: actor_pool(plan, c)))
    env = factory()
    critic = make_collection_critic("gold", retriever=env.retriever, k=env.k)
    path = tmp_path / "gold.jsonl"
    lines = []
    config = CollectConfig(n=4, batch_size=4, progress_every_s=0)
    with EpisodeStore(path, fsync=False) as store:
        summary = collect(
            factory, actor, critic, factory.examples, store=store, config=config,
            progress=lines.append,
        )  # fmt: skip
    records = list(read_episodes(path))
    assert len(records) == 4 and len(actor.llm.calls) == 2  # one sampling call per step
    assert actor.llm.calls[0][1].n == 4 and actor.llm.calls[0][1].temperature == 1.0
    for record in records:
        index = plan[record.question][0]
        assert record.error is None and record.extra["scorer"] == "gold_evidence"
        assert [s.action_type for s in record.steps] == ["search", "answer"]
        for step in record.steps:
            assert len(step.candidates) == 4
            assert step.candidates[step.extra["chosen"]].action == step.action
            parsed = [c for c in step.candidates if c.action is not None]
            assert len(parsed) == (2 if step.index and index % 2 else 3)
            assert all(c.scorer == "gold_evidence" and c.score is not None for c in parsed)
            unparsed = [c for c in step.candidates if c.action is None]
            assert unparsed[0].text == GARBAGE and unparsed[0].error and unparsed[0].score is None
        first = record.steps[0].candidates
        assert first[0].score >= 0.5 and first[0].scorer_output  # gold pages newly found
        assert first[1].score == 0.0 and first[1].scorer_output == ""
        assert first[3].score == 0.0  # the wrong answer
        assert record.extra["kept"] is (index % 2 == 0)
        assert record.extra["outcome"] == record.metrics["f1"]
        assert record.extra["outcome_metric"] == "f1" and record.extra["threshold"] == 0.75
        assert (record.metrics["f1"] >= 0.75) is record.extra["kept"]
        assert record.extra["excluded_steps"] == []
    assert summary.questions == 4 and summary.played == 4 and summary.resumed == 0
    assert summary.failed == 0 and summary.critic == "gold_evidence"
    assert summary_counts(summary) == counts(records)
    assert summary.kept == 2 and summary.candidates == 32
    assert lines[0].startswith("collect: 4 questions, 0 already done, playing 4")
    assert any("4/4 episodes (2 kept, 0 failed" in line for line in lines)
    text = summary.format()
    assert "4 questions (4 played, 0 resumed, 0 failed)" in text and "2 of 4 episodes kept" in text

    with EpisodeStore(path, fsync=False) as store:
        again = collect(factory, actor, critic, factory.examples, store=store, config=config,
                        progress=None)  # fmt: skip
    assert len(actor.llm.calls) == 2 and len(list(read_episodes(path))) == 4
    assert again.played == 0 and again.resumed == 4
    assert summary_counts(again) == summary_counts(summary)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="n must be a positive int"):
        CollectConfig(n=0)
    with pytest.raises(ValueError, match="threshold"):
        CollectConfig(threshold=1.5)


# ----------------------------------------------------------------------------- judge critic
def judge_reply(conversation) -> str:
    text = conversation[-1]["content"]
    if "Scott Derrickson and Ed Wood" in text:
        return "They all look alike to me."  # no ranking line: a judge failure
    count = len(re.findall(r"^\d+\. ", text, re.MULTILINE))
    return "Reasoning.\nRanking: " + " > ".join(str(i) for i in range(1, count + 1))


def test_judge_failures_are_recorded_and_counted_never_scored(tmp_path, factory, plan):
    actor = ReActAgent(MockLLM(lambda c: actor_pool(plan, c)))
    judge = MockLLM(judge_reply)
    critic = make_collection_critic("judge", llm=judge)
    path = tmp_path / "judge.jsonl"
    with EpisodeStore(path, fsync=False) as store:
        summary = collect(factory, actor, critic, factory.examples, store=store,
                          config=CollectConfig(n=4, batch_size=4), progress=None)  # fmt: skip
    records = {r.question: r for r in read_episodes(path)}
    failing = next(r for q, r in records.items() if "Scott Derrickson" in q)
    for step in failing.steps:
        parsed = [c for c in step.candidates if c.action is not None]
        assert parsed and all(c.score is None for c in parsed)
        assert all("RankingParseError" in c.error for c in parsed)
        assert all(c.scorer_output == "They all look alike to me." for c in parsed)
    assert failing.extra["excluded_steps"] == list(range(len(failing.steps)))
    for record in records.values():
        if record is not failing:
            assert record.extra["excluded_steps"] == []
            scores = [c.score for s in record.steps for c in s.candidates if c.action]
            assert all(s in (1.0, 0.5, 1 / 3) for s in scores)
    assert summary.critic_failures == 6 and summary.excluded_steps == 2
    assert summary_counts(summary) == counts(list(records.values()))
    assert len(judge.calls) == 2  # one batched judge call per lockstep step


# ----------------------------------------------------------------------------- Monte Carlo
def items_at(env, example, history, candidates, steps_remaining=None):
    observation, _ = env.reset(options={"example": example})
    for query in history:
        observation, *_ = env.step(Search(query))
    if steps_remaining is not None:
        observation = {**observation, "steps_remaining": steps_remaining}
    return [CriticItem(observation, text, action, example=example) for text, action in candidates]


def test_monte_carlo_scores_by_rollout_outcomes_in_lockstep(factory, plan):
    env = factory()
    ex0, ex1 = factory.examples[:2]
    group_a = items_at(env, ex0, [], [
        ("Thought: the director is key.\nAction: Search[Ed Wood]", Search("Ed Wood")),
        (f"Action: Search[{NONSENSE}]", Search(NONSENSE)),
        ("Action: Finish[yes]", Answer("yes")),
        ("Action: Finish[no]", Answer("no")),
        (GARBAGE, None),
        ("Search: Ed Wood", Search("Ed Wood")),  # the same search: shares the rollouts
    ])  # fmt: skip
    group_b = items_at(env, ex1, ["Kiss and Tell (1945 film)"], [
        ("Action: Search[Shirley Temple]", Search("Shirley Temple")),
        (f"Action: Search[{NONSENSE}]", Search(NONSENSE)),
    ])  # fmt: skip
    llm = MockLLM(lambda c: rollout_reply(plan, c))
    critic = MonteCarloCritic(factory, ReActAgent(llm, temperature=1.0), rollouts=4)
    scores = critic.score([group_a, group_b])
    assert [s.score for s in scores[0]] == [1.0, 0.0, 1.0, 0.0, -1.0, 1.0]
    assert [s.score for s in scores[1]] == [1.0, 0.0]
    assert all(s.error is None for g in scores for s in g)
    output = json.loads(scores[0][0].output)
    assert output == {"metric": "f1", "outcomes": [1.0] * 4, "answers": ["yes"] * 4}
    # 4 distinct searches x 4 rollouts in one batch; then only the rollouts of group A's
    # nonsense search go on (its policy searches again when it has searched only once)
    assert [len(conversations) for conversations, _ in llm.calls] == [16, 4]
    first_prompts = [c[-1]["content"] for c in llm.calls[0][0]]
    assert any("Thought 1: the director is key.\nAction 1: Search[Ed Wood]" in p
               for p in first_prompts)  # fmt: skip
    assert any("Action 1: Search[Kiss and Tell (1945 film)]" in p
               and "Action 2: Search[Shirley Temple]" in p for p in first_prompts)  # fmt: skip
    assert all(p.count("You have 8 steps left") for p in first_prompts if "Action 2" in p)


def test_monte_carlo_score_is_the_mean_over_rollouts(factory, plan):
    env = factory()
    calls = {"n": 0}

    def alternating(conversation):
        calls["n"] += 1
        _, _, right, wrong = plan[question_of(conversation)]
        return f"Action: Finish[{right if calls['n'] % 2 else wrong}]"

    group = items_at(env, factory.examples[0], [], [("x", Search(NONSENSE))])
    critic = MonteCarloCritic(factory, ReActAgent(MockLLM(alternating)), rollouts=4)
    [[verdict]] = critic.score([group])
    assert verdict.score == 0.5 and json.loads(verdict.output)["outcomes"] == [1.0, 0.0] * 2


class FailingLLM:
    """Fails every request whose prompt mentions the nonsense search."""

    name = "failing"

    def __init__(self, inner, *, raise_instead=False):
        self.inner, self.raise_instead = inner, raise_instead

    def generate(self, conversations, params):
        if self.raise_instead and any(NONSENSE in c[-1]["content"] for c in conversations):
            raise RuntimeError("backend crashed")
        out = self.inner.generate(conversations, params)
        return [
            Completion(error="LLMError: HTTP 503") if NONSENSE in c[-1]["content"] else done
            for c, done in zip(conversations, out, strict=True)
        ]


@pytest.mark.parametrize(
    ("raise_instead", "error"),
    [(False, "LLMError: HTTP 503"), (True, "RuntimeError: backend crashed")],
)
def test_failed_rollouts_give_no_score_and_the_error(factory, plan, raise_instead, error):
    env = factory()
    group = items_at(env, factory.examples[0], [], [
        ("Action: Search[Ed Wood]", Search("Ed Wood")), ("n", Search(NONSENSE)),
    ])  # fmt: skip
    llm = FailingLLM(MockLLM(lambda c: rollout_reply(plan, c)), raise_instead=raise_instead)
    critic = MonteCarloCritic(factory, ReActAgent(llm), rollouts=3)
    [[good, bad]] = critic.score([group])
    assert good.score == 1.0 and good.error is None
    assert bad.score is None and bad.error == f"3 of 3 rollouts failed: {error}"


def test_monte_carlo_rebuilds_the_budget_and_checks_the_replay(factory, plan):
    env = factory()
    ex = factory.examples[0]
    llm = MockLLM(lambda c: rollout_reply(plan, c))
    critic = MonteCarloCritic(factory, ReActAgent(llm), rollouts=2)
    last_step = items_at(env, ex, [], [("s", Search("Ed Wood"))], steps_remaining=1)
    too_many = items_at(env, ex, [], [("s", Search("Ed Wood"))], steps_remaining=11)
    forged = items_at(env, ex, ["Ed Wood"], [("s", Search("Scott Derrickson"))])
    entry = forged[0].observation["history"][0]
    fake_docs = ({**entry["documents"][0], "id": "not-a-real-id"},)
    observation = {**forged[0].observation, "history": ({**entry, "documents": fake_docs},)}
    forged = [CriticItem(observation, "s", Search("Scott Derrickson"), example=ex)]
    [[spent], [short], [mismatch]] = critic.score([last_step, too_many, forged])
    assert spent.score == 0.0 and spent.error is None  # the search used the last step
    assert short.score is None and "step budget" in short.error
    assert mismatch.score is None and "does not replay" in mismatch.error
    assert "not-a-real-id" in mismatch.error
    assert llm.calls == []


def test_monte_carlo_needs_the_example_and_valid_specs(factory):
    agent = ReActAgent(MockLLM(lambda c: "x"))
    critic = MonteCarloCritic(factory, agent)
    observation, _ = factory().reset(options={"index": 0})
    with pytest.raises(ValueError, match="no example"):
        critic.score([[CriticItem(observation, "x", Search("q"))]])
    assert make_collection_critic("mc:3", env_factory=factory, rollout_agent=agent).rollouts == 3
    assert make_collection_critic("mc", env_factory=factory, rollout_agent=agent).rollouts == 4
    with pytest.raises(ValueError, match="positive rollout count"):
        make_collection_critic("mc:0", env_factory=factory, rollout_agent=agent)
    with pytest.raises(ValueError, match="needs env_factory"):
        make_collection_critic("mc")
    with pytest.raises(ValueError, match="expected gold, judge, mc or mc:N"):
        make_collection_critic("prm")


class CountedSteps(gym.Wrapper):
    """Counts the steps that go through it and adds a key to the observation."""

    steps = 0

    def reset(self, **kwargs):
        observation, info = self.env.reset(**kwargs)
        return {**observation, "wrapped": True}, info

    def step(self, action):
        CountedSteps.steps += 1
        observation, reward, terminated, truncated, info = self.env.step(action)
        return {**observation, "wrapped": True}, 10 * reward, terminated, truncated, info


class NoHistory(gym.ObservationWrapper):
    def observation(self, observation):
        return {"question": observation["question"]}


def test_monte_carlo_rollouts_step_through_user_wrappers(factory, plan):
    group = items_at(factory(), factory.examples[0], [], [
        ("Action: Search[Ed Wood]", Search("Ed Wood")), ("n", Search(NONSENSE)),
    ])  # fmt: skip
    agent = ReActAgent(MockLLM(lambda c: rollout_reply(plan, c)))
    plain = MonteCarloCritic(factory, agent, rollouts=2).score([group])
    CountedSteps.steps = 0
    wrapped = MonteCarloCritic(lambda: CountedSteps(factory()), agent, rollouts=2)
    assert wrapped.score([group]) == plain
    assert [s.score for s in plain[0]] == [1.0, 0.0]
    # 2 rollouts x (the candidate's search, then an answer) + 2 x (nonsense, search, answer)
    assert CountedSteps.steps == 2 * 2 + 2 * 3


def test_monte_carlo_refuses_a_wrapper_that_hides_the_replayed_keys(factory):
    group = items_at(factory(), factory.examples[0], [], [("s", Search("Ed Wood"))])
    critic = MonteCarloCritic(lambda: NoHistory(factory()), ReActAgent(MockLLM(lambda c: "x")))
    with pytest.raises(TypeError, match=r"NoHistory.*without 'history', 'steps_remaining'"):
        critic.score([group])


def test_monte_carlo_collection_batches_rollouts(tmp_path, factory, plan):
    actor = ReActAgent(MockLLM(lambda c: actor_pool(plan, c)))
    rollout_llm = MockLLM(lambda c: rollout_reply(plan, c))
    critic = MonteCarloCritic(factory, ReActAgent(rollout_llm, temperature=1.0), rollouts=3)
    path = tmp_path / "mc.jsonl"
    with EpisodeStore(path, fsync=False) as store:
        summary = collect(factory, actor, critic, factory.examples, store=store,
                          config=CollectConfig(n=4, batch_size=4), progress=None)  # fmt: skip
    records = list(read_episodes(path))
    assert summary.kept == 2 and summary.critic_failures == 0
    for record in records:
        first = record.steps[0]
        assert [c.score for c in first.candidates] == [1.0, 0.0, None, 0.0]
        assert {c.scorer for c in first.candidates if c.action} == {"monte_carlo"}
        assert first.action["text"] == plan[record.question][1]
    assert summary_counts(summary) == counts(records)
    rollouts = sum(len(conversations) for conversations, _ in rollout_llm.calls)
    assert rollouts == 4 * 2 * 3 + 4 * 3 + 2 * 3  # searches x rollouts; nonsense twice
    assert len(rollout_llm.calls) == 3  # all of them in lockstep: 2 + 1 rollout steps


# ----------------------------------------------------------------------------- CLI
def rag_gym_pool(plan, conversation) -> list[str]:
    """The same candidates in the RAG-Gym protocol's JSON format."""
    text = conversation[-1]["content"]
    question = text.split("### Original Question\n", 1)[1].split("\n\n", 1)[0]
    i, title, right, wrong = plan[question]

    def block(key: str, value: str) -> str:
        return f"### Structured Output\n```json\n{json.dumps({key: value})}\n```"

    if "### Information-seeking History\n\n" in text:  # nothing searched yet
        return [block("generated_query", title), block("generated_query", NONSENSE)]
    return [
        block("predicted_answer", right if i % 2 == 0 else wrong),
        block("predicted_answer", wrong),
    ]


@pytest.fixture(scope="module")
def fake_llm_url(plan):
    def respond(messages, index):
        if "Candidate next actions:" in messages[-1]["content"]:
            return judge_reply(messages)
        if "### Original Question" in messages[-1]["content"]:
            pool = rag_gym_pool(plan, messages)
            return pool[index % len(pool)]
        pool = actor_pool(plan, messages)
        return pool[index % len(pool)]

    with BackgroundServer(create_fake_openai_app(respond)) as server:
        yield server.url


def test_collect_command_collects_resumes_and_summarises(fake_llm_url, tmp_path, capsys):
    out = tmp_path / "collect.jsonl"
    args = [
        "collect", "--task", "hotpotqa", "--agent", "react", "--limit", "4", "--n", "4",
        "--llm", f"openai:{fake_llm_url}/v1:fake", "--batch-size", "2", "--out", str(out),
    ]  # fmt: skip
    assert main(args) == 0
    first = capsys.readouterr().out
    assert "playing 4 with react+critic" in first
    assert "4 questions (4 played, 0 resumed, 0 failed) scored by gold_evidence" in first
    assert "2 of 4 episodes kept" in first
    records = list(read_episodes(out))
    assert len(records) == 4 and sum(r.extra["kept"] for r in records) == 2
    assert all(len(s.candidates) == 4 for r in records for s in r.steps)
    config = records[0].run_card["config"]
    assert config["command"] == "collect" and config["critic"] == "gold" and config["n"] == 4
    assert main(args) == 0
    assert "(0 played, 4 resumed, 0 failed)" in capsys.readouterr().out
    assert len(list(read_episodes(out))) == 4


def test_collect_command_with_judge_and_monte_carlo(fake_llm_url, tmp_path, capsys, monkeypatch):
    llm = f"openai:{fake_llm_url}/v1:fake"
    judge = tmp_path / "judge.jsonl"
    base = ["collect", "--task", "hotpotqa", "--agent", "react", "--limit", "2", "--n", "4"]
    assert main([*base, "--llm", llm, "--critic", "judge", "--judge-llm",
                 f"openai:{fake_llm_url}/v1:judge", "--out", str(judge)]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    steps = [s for r in read_episodes(judge) for s in r.steps]
    scored = [c for s in steps for c in s.candidates if c.action]
    failed = [c for c in scored if c.score is None]
    assert {c.scorer for c in scored} == {"llm_judge"} and failed  # question 1 fails
    assert f"{len(failed)} critic failures excluding {len(steps) // 2} steps" in printed
    judged = [c for c in scored if c.scorer_output is not None]  # a lone action needs no call
    assert judged and all("Ranking" in c.scorer_output for c in judged if c.score is not None)

    monkeypatch.chdir(tmp_path)
    assert main([*base, "--llm", llm, "--critic", "mc:2"]) == 0
    assert "scored by monte_carlo" in capsys.readouterr().out
    records = list(read_episodes(tmp_path / "runs/collect/hotpotqa.react.mc2.jsonl"))
    assert len(records) == 2
    outputs = [json.loads(c.scorer_output) for c in records[0].steps[0].candidates if c.action]
    assert all(len(o["outcomes"]) in (1, 2) for o in outputs)


@pytest.mark.parametrize(
    ("critic", "message"), [("mc:0", "positive rollout count"), ("prm", "expected gold, judge")]
)
def test_collect_command_rejects_bad_critics(fake_llm_url, tmp_path, capsys, critic, message):
    args = [
        "collect", "--task", "hotpotqa", "--agent", "react", "--limit", "1",
        "--llm", f"openai:{fake_llm_url}/v1:fake", "--critic", critic, "--out", str(tmp_path / "x"),
    ]  # fmt: skip
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_collect_command_refuses_other_settings_and_exits_1_on_failures(
    fake_llm_url, tmp_path, capsys
):
    from raggym.testing.fake_server import FaultPlan, fake_openai_server

    out = str(tmp_path / "c.jsonl")
    base = ["collect", "--task", "hotpotqa", "--agent", "react", "--limit", "2",
            "--llm", f"openai:{fake_llm_url}/v1:fake", "--out", out]  # fmt: skip
    assert main([*base, "--n", "4"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("all 2 episodes played without failure")
    assert main([*base, "--n", "2"]) == 2
    assert "n: 4 -> 2" in capsys.readouterr().err
    with fake_openai_server(faults=FaultPlan().always(400)) as down:
        failing = [*base[:-4], "--llm", f"openai:{down.url}:fake", "--out",
                   str(tmp_path / "f.jsonl"), "--n", "2"]  # fmt: skip
        assert main(failing) == 1
    last = capsys.readouterr().out.rstrip().splitlines()[-1]
    assert last.startswith("2 of 2 episodes failed; play them again with: raggym collect")


# ------------------------------------------------------------------------- rag-gym protocol
def _record(f1, last_action, *, forced=False):
    from raggym_env.episode import EpisodeRecord, StepRecord

    fields = {"forced_answer": "true"} if forced else {}
    last = StepRecord(
        index=0, action={"type": last_action, "text": "x"}, raw_text="x", extra={"fields": fields}
    )
    answer, gold = {0.75: ("w1 w2 w3", "w1 w2 w3 w4 w5"), 0.8: ("a1 a2 a3", "a1 a2 a3 a4"),
                    0.5: ("w1 w3", "w1 w2")}[f1]  # fmt: skip
    return EpisodeRecord(
        env_id="RAGGym/HotpotQA-v0", env_version=0, example_id="q", question="Who?",
        steps=[last], metrics={"f1": f1}, final_answer=answer, gold={"answers": [gold]},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("f1", "last", "forced", "raggym", "rag_gym"),
    [
        (0.75, "answer", False, True, False),  # at the threshold: kept only by raggym
        (0.8, "answer", False, True, True),
        (0.8, "search", False, True, False),  # ended on a search
        (0.8, "answer", True, True, False),  # forced answer
        (0.5, "answer", False, False, False),
    ],
)
def test_mark_episode_under_each_protocol(f1, last, forced, raggym, rag_gym):
    from raggym.trainers.collect import mark_episode

    record = _record(f1, last, forced=forced)
    default = mark_episode(record, threshold=0.75, critic="judge")
    paper = mark_episode(record, threshold=0.75, critic="judge", protocol="rag-gym")
    assert (default.extra["kept"], paper.extra["kept"]) == (raggym, rag_gym)
    assert (default.extra["protocol"], paper.extra["protocol"]) == ("raggym", "rag-gym")


def test_config_checks_the_protocol():
    assert CollectConfig(protocol="paper").protocol == "rag-gym"
    assert CollectConfig().protocol == "raggym"
    with pytest.raises(ValueError, match="unknown protocol"):
        CollectConfig(protocol="other")


def test_collect_command_records_the_protocol_and_never_mixes_them(fake_llm_url, tmp_path, capsys):
    out = str(tmp_path / "p.jsonl")
    base = ["collect", "--task", "hotpotqa", "--agent", "react", "--limit", "2", "--n", "2",
            "--llm", f"openai:{fake_llm_url}/v1:fake", "--out", out]  # fmt: skip
    assert main([*base, "--protocol", "rag-gym"]) == 0
    assert "outcome > 0.75 and a final model answer" in capsys.readouterr().out
    records = list(read_episodes(out))
    assert {r.extra["protocol"] for r in records} == {"rag-gym"}
    assert records[0].run_card["config"]["protocol"] == "rag-gym"
    assert main(base) == 2
    assert "protocol: rag-gym -> (absent)" in capsys.readouterr().err


def rag_gym_judge_reply(plan, conversation) -> str:
    """The protocol's annotator: right answers and gold searches first, duplicates kept."""
    text = conversation[-1]["content"]
    question = text.split("## Original Question:\n", 1)[1].split("\n\n", 1)[0]
    _, title, right, _ = plan[question]
    actions = re.findall(r"^\[(\d+)\] (Query|Answer): (.*)$", text, re.MULTILINE)
    good = {f"Answer: {right}", f"Query: {title}"}
    order = sorted(
        (int(i) for i, kind, value in actions),
        key=lambda i: (f"{actions[i][1]}: {actions[i][2]}" not in good, i),
    )
    return f'Done.\n```json\n{{"ranked_indices": {order}}}\n```'


def test_rag_gym_collection_with_its_annotator_feeds_the_protocols_rows(plan, tmp_path, capsys):
    from raggym.trainers import datasets as td

    def respond(messages, index):
        if "## Proposed Next Actions:" in messages[-1]["content"]:
            return rag_gym_judge_reply(plan, messages)
        pool = rag_gym_pool(plan, messages)
        return pool[index % len(pool)]

    out = tmp_path / "paper.jsonl"
    with BackgroundServer(create_fake_openai_app(respond)) as server:
        argv = [
            "collect", "--task", "hotpotqa", "--agent", "react", "--limit", "4", "--n", "4",
            "--llm", f"openai:{server.url}/v1:actor", "--critic", "judge",
            "--judge-llm", f"openai:{server.url}/v1:judge", "--protocol", "rag-gym",
            "--out", str(out),
        ]  # fmt: skip
        assert main(argv) == 0
    capsys.readouterr()
    records = list(read_episodes(out))
    assert len(records) == 4
    first = records[0].steps[0]
    assert [c.score for c in first.candidates] == pytest.approx([1.0, 1 / 3, 0.5, 0.25])
    assert first.candidates[0].scorer == "rag_gym_judge"
    assert first.action["text"] == plan[records[0].question][1]  # the best is followed
    kept = [r for r in records if r.extra["kept"]]
    assert len(kept) == 2 and all(r.extra["outcome_metric"] == "paper_outcome" for r in kept)
    stats = td.DatasetStats("sft")
    sft = td.sft_rows(records, protocol="rag-gym", stats=stats)
    assert len(sft) == 4  # two kept episodes x (search step, answer step)
    assert stats.skipped_episodes == {td.OUTCOME_NOT_ABOVE: 2}
    assert "generated_query" in sft[0]["completion"][0]["content"]
    assert "### Original Question" in sft[0]["prompt"][-1]["content"]
    dpo = td.dpo_rows(records, protocol="rag-gym")
    assert len(dpo) == 4  # each step: the best vs the other text (best copy at 1/3)
    assert all(r["meta"]["rejected_score"] < 0.5 for r in dpo)
    critic = td.reward_rows(records, protocol="rag-gym")
    assert len(critic) == 4 and critic[0]["chosen"][-1]["role"] == "assistant"
