import gymnasium as gym
import pytest

import raggym_env  # noqa: F401  (registers the ids)
from raggym.agents.baselines import GoldEvidenceOracle, QuestionSearchHeuristic, ScriptedPolicy
from raggym.agents.rollout import run_episode
from raggym_env import Answer, Search
from raggym_env.episode import EpisodeRecord


def observation(question, history=(), options=(), steps_remaining=10):
    return {
        "question": question,
        "options": tuple(options),
        "history": tuple(history),
        "steps_remaining": steps_remaining,
    }


def docs(*titles):
    return {
        "query": "q",
        "documents": tuple({"id": t, "title": t, "text": f"{t} text"} for t in titles),
    }


def test_policies_follow_the_protocol():
    assert isinstance(QuestionSearchHeuristic(), ScriptedPolicy)
    assert isinstance(GoldEvidenceOracle(), ScriptedPolicy)


def test_heuristic_searches_the_question_then_answers():
    policy = QuestionSearchHeuristic()
    assert policy.act(observation("Who directed Sinister?")) == Search("Who directed Sinister?")
    answer = policy.act(
        observation("Who directed Sinister?", [docs("Sinister (film)", "Scott Derrickson")])
    )
    assert answer == Answer("Scott Derrickson")  # the question already names "Sinister"
    yes_no = policy.act(observation("Were A and B both American?", [docs("A")]))
    assert yes_no == Answer("yes")


def test_heuristic_multiple_choice_picks_the_best_supported_option():
    options = [{"letter": "A", "text": "cisplatin toxicity"}, {"letter": "B", "text": "aspirin"}]
    history = [
        {
            "query": "q",
            "documents": ({"id": "1", "title": "t", "text": "Cisplatin causes ototoxicity."},),
        }
    ]
    assert QuestionSearchHeuristic().act(observation("Which drug?", history, options)) == Answer(
        "A"
    )


def test_oracle_reaches_full_scores_on_hotpotqa():
    env = gym.make("RAGGym/HotpotQA-v0", limit=20)
    oracle = GoldEvidenceOracle()
    records = [run_episode(env, oracle, options={"index": i}) for i in range(20)]
    assert all(r.metrics["em"] == 1.0 for r in records)
    complete = sum(r.metrics["evidence_complete"] for r in records) / len(records)
    assert complete >= 0.9
    assert all(r.terminated and not r.truncated for r in records)


def test_oracle_answers_before_the_budget_runs_out():
    oracle = GoldEvidenceOracle()
    env = gym.make("RAGGym/HotpotQA-v0", limit=5, max_steps=1)
    record = run_episode(env, oracle, options={"index": 0})
    assert record.terminated and record.num_searches == 0


def test_rollout_record_is_complete_and_round_trips():
    env = gym.make("RAGGym/HotpotQA-v0")
    record = run_episode(env, QuestionSearchHeuristic(), seed=7)
    assert record.seed == 7
    assert [s.action_type for s in record.steps] == ["search", "answer"]
    assert len(record.steps[0].retrieved) == 5
    assert record.steps[0].latency_s is not None
    assert record.final_answer == record.steps[1].action["text"]
    assert set(record.metrics) >= {"em", "f1", "cover_em", "evidence_recall", "num_searches"}
    assert record.gold["answers"]
    assert record.env_id == "RAGGym/HotpotQA-v0"
    assert EpisodeRecord.from_dict(record.to_dict()) == record


def test_text_actions_are_recorded_raw():
    class Texty:
        name = "texty"

        def begin(self, example):
            pass

        def act(self, observation):
            return "I refuse" if observation["steps_remaining"] == 10 else "Answer: no"

    record = run_episode(gym.make("RAGGym/Bamboogle-v0"), Texty(), options={"index": 0})
    assert record.steps[0].action_type == "invalid"
    assert record.steps[0].raw_text == "I refuse"
    assert "could not parse" in record.steps[0].action_error
    assert record.final_answer == "no"


def test_run_episode_rejects_other_envs():
    with pytest.raises(TypeError, match="RAGGym environment"):
        run_episode(gym.make("CartPole-v1"), QuestionSearchHeuristic())
