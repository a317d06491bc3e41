"""Runners: sequential, batched lockstep, step_batch, failure isolation, replay."""

from pathlib import Path

import gymnasium as gym
import pytest

from raggym.agents import ask
from raggym.agents.base import Decision, LLMAgent, Memory, Parsed, PolicyAgent
from raggym.agents.baselines import (
    CallablePolicy,
    GoldEvidenceOracle,
    QuestionSearchHeuristic,
    ReplayPolicy,
)
from raggym.agents.llm.base import Completion, SamplingParams
from raggym.agents.rollout import BatchedRunner, rollout, run_episode
from raggym.testing.llms import MockLLM
from raggym.testing.retriever import FakeRetriever
from raggym_env import Answer, RAGEnv, Search
from raggym_env.actions import ActionParseError, parse_action
from raggym_env.env import step_batch
from raggym_env.retrieval.bm25 import BM25Retriever
from raggym_env.store import EpisodeStore, read_episodes

PROMPT = """# placeholders: question, history, budget_note
=== system ===
Answer questions.
=== user ===
Question: {question}
{history}
{budget_note}
"""


class LineAgent(LLMAgent):
    """The smallest LLM agent: the model's text is an action line."""

    name = "line"

    def render(self, observation, memory):
        history = "\n".join(
            f"Searched {h['query']}: " + ", ".join(d["title"] for d in h["documents"])
            for h in observation["history"]
        )
        return {
            "question": observation["question"],
            "history": history,
            "budget_note": self.budget_note(observation),
        }

    def parse(self, text, observation, memory):
        try:
            return Parsed(parse_action(text))
        except ActionParseError as exc:
            return Parsed(None, error=str(exc))


@pytest.fixture(scope="module")
def prompt_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("prompts") / "line.txt"
    path.write_text(PROMPT)
    return path


@pytest.fixture(scope="module")
def hotpot_retriever():
    env = RAGEnv("hotpotqa", limit=30)
    return env.retriever


def hotpot_env(retriever, **kwargs):
    return RAGEnv("hotpotqa", limit=30, retriever=retriever, **kwargs)


def search_then_answer(conversation):
    """Search the question first, then answer the first retrieved title."""
    text = conversation[-1]["content"]
    if "Searched" not in text:
        question = text.split("Question: ", 1)[1].splitlines()[0]
        return f"Search: {question}"
    titles = text.split("Searched", 1)[1].split(": ", 1)[1].splitlines()[0]
    return f"Answer: {titles.split(', ')[0]}"


class CountingRetriever:
    def __init__(self, base):
        self.base = base
        self.calls: list[list[str]] = []

    def search(self, queries, k):
        self.calls.append(list(queries))
        return self.base.search(queries, k)


# ---------------------------------------------------------------------------- step_batch
def test_step_batch_matches_sequential_steps_with_one_retrieval_call(hotpot_retriever):
    counting = CountingRetriever(hotpot_retriever)
    batched = [hotpot_env(counting) for _ in range(4)]
    single = [hotpot_env(hotpot_retriever) for _ in range(4)]
    actions = [Search("Scott Derrickson"), Answer("yes"), Search("Ed Wood"), "garbage text"]
    for i, (a, b) in enumerate(zip(batched, single, strict=True)):
        a.reset(options={"index": i})
        b.reset(options={"index": i})
    out = step_batch(batched, actions)
    ref = [env.step(action) for env, action in zip(single, actions, strict=True)]
    assert counting.calls == [["Scott Derrickson", "Ed Wood"]]
    for (o1, r1, t1, u1, i1), (o2, r2, t2, u2, i2) in zip(out, ref, strict=True):
        assert o1 == o2 and r1 == r2 and (t1, u1) == (t2, u2)
        assert i1 == i2


def test_step_batch_dedupes_queries_and_checks_lengths(hotpot_retriever):
    counting = CountingRetriever(hotpot_retriever)
    envs = [hotpot_env(counting) for _ in range(3)]
    for env in envs:
        env.reset(options={"index": 0})
    step_batch(envs, [Search("Paris")] * 3)
    assert counting.calls == [["Paris"]]
    with pytest.raises(ValueError, match="3 environments but 2 actions"):
        step_batch(envs, [Search("x")] * 2)


def test_step_batch_falls_back_to_single_searches_on_retrieval_error(tiny_corpus):
    from raggym_env.retrieval.base import RetrievalError

    fake = FakeRetriever(tiny_corpus, fail_on={"bad query": RetrievalError("index offline")})
    envs = [RAGEnv("hotpotqa", limit=3, corpus=tiny_corpus, retriever=fake) for _ in range(2)]
    for env in envs:
        env.reset(options={"index": 0})
    (_, _, _, _, bad), (_, _, _, _, good) = step_batch(
        envs, [Search("bad query"), Search("Ed Wood")]
    )
    assert "index offline" in bad["retrieval_error"]
    assert good["retrieval_error"] is None and good["retrieved"][0]["title"] == "Ed Wood"
    assert fake.calls == [["bad query", "Ed Wood"], ["bad query"], ["Ed Wood"]]


# ---------------------------------------------------------------------------- runners
def test_batched_runner_matches_sequential_rollout(hotpot_retriever, tmp_path):
    examples = hotpot_env(hotpot_retriever).examples[:20]
    sequential = rollout(hotpot_env(hotpot_retriever), GoldEvidenceOracle(), examples)
    store = EpisodeStore(tmp_path / "episodes.jsonl")
    runner = BatchedRunner(
        lambda: hotpot_env(hotpot_retriever), GoldEvidenceOracle(), batch_size=8, store=store
    )
    batched = runner.run(examples)
    by_id = {r.example_id: r for r in batched}
    assert sorted(by_id) == sorted(r.example_id for r in sequential)
    for record in sequential:
        other = by_id[record.example_id]
        assert other.metrics == record.metrics
        assert [s.action for s in other.steps] == [s.action for s in record.steps]
        assert [s.retrieved_ids for s in other.steps] == [s.retrieved_ids for s in record.steps]
    stored = list(read_episodes(tmp_path / "episodes.jsonl"))
    assert len(stored) == 20 and {r.example_id for r in stored} == set(by_id)
    # lockstep: far fewer agent batches than steps
    assert runner.stats["steps"] == sum(len(r.steps) for r in batched)
    assert runner.stats["agent_calls"] < runner.stats["steps"] / 4


def test_llm_agent_gets_one_backend_call_per_lockstep_step(hotpot_retriever, prompt_file):
    llm = MockLLM(search_then_answer)
    agent = LineAgent(llm, prompt=prompt_file)
    examples = hotpot_env(hotpot_retriever).examples[:6]
    runner = BatchedRunner(lambda: hotpot_env(hotpot_retriever), agent, batch_size=6)
    records = runner.run(examples)
    assert len(llm.calls) == 2  # everyone searches, then everyone answers
    assert [len(batch) for batch, _ in llm.calls] == [6, 6]
    for record in records:
        assert [s.action_type for s in record.steps] == ["search", "answer"]
        assert record.steps[0].tokens["prompt"] > 0
        prompt = record.steps[1].extra["prompt"]
        assert prompt[-1]["role"] == "user" and "Searched" in prompt[-1]["content"]
        assert record.steps[1].raw_text.startswith("Answer: ")


def test_refill_keeps_the_batch_full(hotpot_retriever):
    def answer_at_index(observation):
        return Answer("x") if len(observation["question"]) % 2 else Search("a b c")

    examples = hotpot_env(hotpot_retriever).examples[:10]
    runner = BatchedRunner(
        lambda: hotpot_env(hotpot_retriever, max_steps=3),
        CallablePolicy(answer_at_index),
        batch_size=3,
    )
    records = runner.run(examples)
    assert len(records) == 10
    assert len(runner._envs) == 3


class Exploding:
    name = "exploding"

    def begin(self, example):
        self.example = example

    def act(self, observation):
        if self.example.id.endswith(("0", "5")):
            raise ZeroDivisionError("policy bug")
        return Answer("yes")


def test_a_crashing_item_is_recorded_and_the_rest_go_on(hotpot_retriever, tmp_path):
    examples = hotpot_env(hotpot_retriever).examples[:12]
    crashing = {e.id for e in examples if e.id.endswith(("0", "5"))}
    assert crashing, "fixture needs at least one crashing id"
    store = EpisodeStore(tmp_path / "e.jsonl")
    records = BatchedRunner(
        lambda: hotpot_env(hotpot_retriever), Exploding(), batch_size=4, store=store
    ).run(examples)
    failed = {r.example_id: r for r in records if r.error}
    assert set(failed) == crashing
    assert all("ZeroDivisionError: policy bug" in r.error for r in failed.values())
    assert all(r.metrics["steps"] == 0 for r in failed.values())
    assert len(list(read_episodes(tmp_path / "e.jsonl"))) == 12
    seq = rollout(hotpot_env(hotpot_retriever), Exploding(), examples)
    assert {r.example_id for r in seq if r.error} == crashing
    assert "traceback" in next(r for r in seq if r.error).extra


def test_a_step_that_raises_fails_only_its_episode(tiny_corpus):
    fake = FakeRetriever(tiny_corpus, fail_on={"boom": KeyError("bug in a retriever")})
    env_factory = lambda: RAGEnv("hotpotqa", limit=4, corpus=tiny_corpus, retriever=fake)  # noqa: E731
    examples = env_factory().examples
    queries = {examples[1].id: "boom"}
    policy = CallablePolicy(lambda obs: Answer("no") if obs["history"] else Search("x"))

    class PerQuestion(CallablePolicy):
        def begin(self, example):
            self.query = queries.get(example.id, "Paris")

        def act(self, observation):
            return Answer("no") if observation["history"] else Search(self.query)

    records = BatchedRunner(env_factory, PerQuestion(policy.fn), batch_size=4).run(examples)
    by_id = {r.example_id: r for r in records}
    assert "KeyError" in by_id[examples[1].id].error
    assert sum(r.error is None for r in records) == 3


class FailingLLM:
    name = "failing"

    def generate(self, conversations, params: SamplingParams):
        return [Completion(error="LLMError: server unavailable") for _ in conversations]


def test_failed_request_ends_the_episode_with_its_error(hotpot_retriever, prompt_file):
    agent = LineAgent(FailingLLM(), prompt=prompt_file)
    record = run_episode(hotpot_env(hotpot_retriever), agent, options={"index": 0})
    assert record.error == "LLMError: server unavailable"
    assert record.steps == [] and not record.terminated


def test_parse_failure_is_an_invalid_step_and_the_episode_continues(hotpot_retriever, prompt_file):
    replies = iter(["I am not sure what to do", "Answer: yes"])
    agent = LineAgent(MockLLM(lambda c: next(replies)), prompt=prompt_file)
    record = run_episode(hotpot_env(hotpot_retriever), agent, options={"index": 0})
    assert [s.action_type for s in record.steps] == ["invalid", "answer"]
    assert record.steps[0].raw_text == "I am not sure what to do"
    assert "could not parse" in record.steps[0].action_error
    assert record.terminated


def test_last_step_forces_an_answer(hotpot_retriever, prompt_file):
    agent = LineAgent(MockLLM(lambda c: "Search: more"), prompt=prompt_file)
    record = run_episode(hotpot_env(hotpot_retriever, max_steps=2), agent, options={"index": 0})
    assert [s.action_type for s in record.steps] == ["search", "answer"]
    assert record.steps[1].extra["fields"]["forced_answer"] == "true"
    assert "last step" in record.steps[1].extra["prompt"][-1]["content"]
    assert record.terminated and not record.truncated


# ---------------------------------------------------------------------------- policies
def test_replay_reproduces_recorded_episodes(hotpot_retriever, tmp_path):
    examples = hotpot_env(hotpot_retriever).examples[:8]
    store = EpisodeStore(tmp_path / "h.jsonl")
    original = rollout(
        hotpot_env(hotpot_retriever), QuestionSearchHeuristic(), examples, store=store
    )
    replayed = rollout(hotpot_env(hotpot_retriever), ReplayPolicy(tmp_path / "h.jsonl"), examples)
    for a, b in zip(original, replayed, strict=True):
        assert [s.action for s in a.steps] == [s.action for s in b.steps]
        assert a.metrics == b.metrics
    with pytest.raises(KeyError, match="no recorded episode"):
        ReplayPolicy(original[:1]).begin(examples[3])


def test_policy_agent_copies_the_policy_per_episode(hotpot_retriever):
    agent = PolicyAgent(GoldEvidenceOracle())
    examples = hotpot_env(hotpot_retriever).examples[:2]
    m1, m2 = agent.start(examples[0]), agent.start(examples[1])
    assert m1.data["policy"] is not m2.data["policy"]
    assert isinstance(m1, Memory)
    decision = agent.act({"question": "q", "options": (), "history": (), "steps_remaining": 5}, m1)
    assert isinstance(decision, Decision) and decision.action == Search(
        examples[0].evidence.titles[0]
    )


def test_callable_policy_text_that_does_not_parse_is_recorded(hotpot_retriever):
    record = run_episode(
        hotpot_env(hotpot_retriever, max_steps=2),
        CallablePolicy(lambda obs: "hmm"),
        options={"index": 0},
    )
    assert [s.action_type for s in record.steps] == ["invalid", "invalid"]
    assert record.steps[0].raw_text == "hmm" and record.truncated


def test_ask_answers_an_adhoc_question(prompt_file):
    agent = LineAgent(MockLLM(search_then_answer), prompt=prompt_file)
    corpus = [
        {"title": "Ed Wood", "text": "Ed Wood was an American filmmaker born in 1924."},
        {"title": "Paris", "text": "Paris is the capital of France."},
    ]
    record = ask(agent, "Who was Ed Wood?", corpus=corpus, answers=["Ed Wood"], k=1)
    assert record.final_answer == "Ed Wood" and record.metrics["em"] == 1.0
    assert "Ed Wood" in record.summary() and "answer: 'Ed Wood'" in record.summary()
    unscored = ask(agent, "Who was Ed Wood?", corpus=corpus, k=1)
    assert "em" not in unscored.metrics and unscored.gold == {}


def test_ask_takes_a_scripted_policy_and_multiple_choice_options():
    policy = CallablePolicy(lambda obs: Answer("B"))
    options = {"A": "Rome", "B": "Paris"}
    corpus = [{"title": "Paris", "text": "Paris is the capital of France."}]
    record = ask(policy, "Capital of France?", corpus=corpus, options=options, answers=["B"])
    assert record.final_answer == "B" and record.metrics["accuracy"] == 1.0
    assert record.options == options and record.gold["answer_letter"] == "B"
    assert not hasattr(LineAgent, "run")  # the contract no longer plays episodes itself


def test_bm25_shared_by_factory_envs_batches_searches(tiny_corpus):
    bm25 = CountingRetriever(BM25Retriever.build(tiny_corpus))
    factory = lambda: RAGEnv("hotpotqa", limit=5, corpus=tiny_corpus, retriever=bm25)  # noqa: E731
    BatchedRunner(factory, QuestionSearchHeuristic(), batch_size=5).run(factory().examples)
    assert len(bm25.calls) == 1 and len(bm25.calls[0]) == 5


# ---------------------------------------------------------------------------- wrappers
class TenfoldReward(gym.RewardWrapper):
    def reward(self, reward):
        return 10.0 * reward


class Hinted(gym.ObservationWrapper):
    """Adds a key the policy below depends on."""

    def observation(self, observation):
        return {**observation, "hint": observation["question"].rstrip("?")}


def hint_policy(observation):
    if not observation["history"]:
        return Search(observation["hint"])
    return Answer(observation["history"][0]["documents"][0]["title"])


def test_user_wrappers_apply_alike_in_run_episode_and_the_batched_runner(hotpot_retriever):
    counting = CountingRetriever(hotpot_retriever)
    wrapped = lambda: TenfoldReward(Hinted(hotpot_env(counting)))  # noqa: E731
    examples = hotpot_env(hotpot_retriever).examples[:12]
    policy = CallablePolicy(hint_policy)
    alone = [run_episode(wrapped(), policy, options={"example": ex}) for ex in examples]
    counting.calls.clear()
    runner = BatchedRunner(wrapped, policy, batch_size=6)
    batched = {r.example_id: r for r in runner.run(examples)}
    assert all(r.error is None for r in alone) and len(batched) == len(examples)
    assert any(r.steps[-1].reward == 10.0 for r in alone)  # the reward wrapper applied
    for record in alone:
        other = batched[record.example_id]
        assert other.error is None
        assert [s.action for s in other.steps] == [s.action for s in record.steps]
        assert [s.reward for s in other.steps] == [s.reward for s in record.steps]
        assert other.metrics == record.metrics
        assert record.steps[0].action["text"] == record.question.rstrip("?")
    # the searches still went out as one batched retrieval call per lockstep step
    assert [len(batch) for batch in counting.calls] == [6, 6]


def test_batched_runner_refuses_an_environment_that_is_not_raggym(hotpot_retriever):
    runner = BatchedRunner(lambda: gym.make("CartPole-v1"), GoldEvidenceOracle())
    examples = hotpot_env(hotpot_retriever).examples[:1]
    with pytest.raises(TypeError, match="a RAGGym environment is needed, got CartPoleEnv"):
        runner.run(examples)


def test_run_episode_hands_each_step_to_on_step_as_it_is_played(hotpot_retriever):
    seen = []
    record = run_episode(
        hotpot_env(hotpot_retriever),
        GoldEvidenceOracle(),
        options={"index": 0},
        on_step=lambda step: seen.append((step, len(seen))),
    )
    assert len(record.steps) >= 2
    assert [step for step, _ in seen] == record.steps
    assert [index for _, index in seen] == [step.index for step in record.steps]
