"""Critic-guided selection: N samples per step, one critic call per batch, all recorded."""

import pytest

from raggym.agents.base import LLMAgent, Parsed
from raggym.agents.critic_guided import CriticGuidedAgent
from raggym.agents.critics.base import CallableCritic, CriticScore, critic_input
from raggym.agents.rollout import BatchedRunner, run_episode
from raggym.testing.llms import MockLLM
from raggym_env import Answer, RAGEnv, Search
from raggym_env.actions import ActionParseError, parse_action

PROMPT = """# placeholders: question, n_docs
=== user ===
Question: {question}
Documents so far: {n_docs}
"""


class LineAgent(LLMAgent):
    name = "line"

    def render(self, observation, memory):
        n_docs = sum(len(h["documents"]) for h in observation["history"])
        return {"question": observation["question"], "n_docs": n_docs}

    def parse(self, text, observation, memory):
        try:
            return Parsed(parse_action(text))
        except ActionParseError as exc:
            return Parsed(None, error=str(exc))


@pytest.fixture
def actor(tmp_path):
    path = tmp_path / "line.txt"
    path.write_text(PROMPT)

    def samples(conversation):
        if "Documents so far: 0" in conversation[-1]["content"]:
            return ["Search: Ed Wood", "nonsense", "Search: Ed Wood", "Search: Paris"]
        return ["Answer: no", "Answer: yes", "Answer: no", "Answer: yes"]

    return LineAgent(MockLLM(samples), prompt=path)


def prefers(word):
    def score(item):
        return 1.0 if word in item.text else 0.0

    return score


@pytest.fixture
def env(tiny_corpus):
    return lambda: RAGEnv("hotpotqa", limit=4, corpus=tiny_corpus, retriever="fake")


def test_samples_n_candidates_scores_them_and_follows_the_best(actor, env):
    critic = CallableCritic(lambda item: 2.0 if "Paris" in item.text or "yes" in item.text else 0.5)
    agent = CriticGuidedAgent(actor, critic, n=4)
    record = run_episode(env(), agent, options={"index": 0})
    first, second = record.steps
    assert first.action == {"type": "search", "text": "Paris"}
    assert second.action == {"type": "answer", "text": "yes"}
    assert len(first.candidates) == 4
    assert [c.score for c in first.candidates] == [0.5, None, 0.5, 2.0]
    assert first.candidates[1].error and first.candidates[1].action is None
    assert {c.scorer for c in first.candidates if c.action} == {"callable"}
    assert first.extra["chosen"] == 3
    params = actor.llm.calls[0][1]
    assert params.n == 4 and params.temperature == 1.0
    assert agent.name == "line+critic"


def test_ties_go_to_the_majority_then_the_earliest(actor, env):
    agent = CriticGuidedAgent(actor, CallableCritic(lambda item: 1.0), n=4)
    record = run_episode(env(), agent, options={"index": 0})
    assert record.steps[0].action["text"] == "Ed Wood"  # proposed twice
    assert record.steps[1].action["text"] == "no"  # 2 votes each: the earliest


class BrokenCritic:
    name = "broken"

    def score(self, groups):
        return [
            [CriticScore(None, output="???", error="judge output unreadable")] * len(g)
            for g in groups
        ]


def test_critic_failure_is_recorded_and_falls_back_to_a_majority_vote(actor, env):
    agent = CriticGuidedAgent(actor, BrokenCritic(), n=4)
    record = run_episode(env(), agent, options={"index": 0})
    step = record.steps[0]
    assert step.action["text"] == "Ed Wood"
    scored = [c for c in step.candidates if c.action]
    assert all(c.score is None and c.error == "judge output unreadable" for c in scored)
    assert all(c.scorer_output == "???" for c in scored)


class RaisingCritic:
    name = "raising"

    def score(self, groups):
        raise RuntimeError("reward model crashed")


def test_critic_exception_is_recorded_on_every_candidate(actor, env):
    record = run_episode(
        env(), CriticGuidedAgent(actor, RaisingCritic(), n=4), options={"index": 0}
    )
    assert record.error is None and record.terminated
    errors = {c.error for c in record.steps[0].candidates if c.action}
    assert errors == {"RuntimeError: reward model crashed"}


def test_one_critic_call_per_lockstep_step(actor, env):
    groups_seen = []

    class Recording:
        name = "recording"

        def score(self, groups):
            groups_seen.append([len(g) for g in groups])
            return [[CriticScore(float(len(item.text))) for item in g] for g in groups]

    agent = CriticGuidedAgent(actor, Recording(), n=4)
    records = BatchedRunner(env, agent, batch_size=4).run(env().examples)
    assert len(records) == 4
    assert groups_seen == [[3, 3, 3, 3], [4, 4, 4, 4]]  # unparsed candidates are not scored
    assert len(actor.llm.calls) == 2


def test_critic_items_carry_the_example_for_gold_critics(actor, env):
    seen = []
    agent = CriticGuidedAgent(actor, CallableCritic(lambda item: seen.append(item) or 0.0), n=2)
    example = env().examples[2]
    run_episode(env(), agent, options={"example": example})
    assert seen and all(item.example == example for item in seen)
    assert isinstance(seen[0].action, Search) and isinstance(seen[-1].action, Answer)
    text = critic_input(seen[0].observation, seen[0].action)
    assert text.startswith("Question: ") and text.endswith("Next action: Search: Ed Wood")


def test_rejects_non_llm_actor():
    with pytest.raises(TypeError, match="LLMAgent"):
        CriticGuidedAgent(object(), CallableCritic(lambda i: 0.0))  # type: ignore[arg-type]
