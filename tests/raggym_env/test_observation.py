"""The observation and info contract, building observations, and prefetched searches."""

from typing import get_type_hints

import gymnasium as gym
import pytest

from raggym.testing.retriever import FakeRetriever
from raggym_env import (
    Answer,
    FinalInfo,
    Observation,
    QAExample,
    ResetInfo,
    Search,
    StepInfo,
    build_observation,
)
from raggym_env.env import RAGEnv, prefetch_searches, step_batch
from raggym_env.observation import DocumentView, SearchStep
from raggym_env.types import Document, Evidence

EXAMPLES = [
    QAExample(
        id="q1",
        question="Were Scott Derrickson and Ed Wood of the same nationality?",
        answers=("yes",),
        evidence=Evidence(titles=("Scott Derrickson", "Ed Wood")),
    ),
    QAExample(
        id="mc",
        question="What is the capital of France?",
        answers=("Paris",),
        options={"A": "Lyon", "B": "Paris"},
        answer_letter="B",
    ),
]


def make_env(corpus, retriever=None, **kwargs):
    retriever = retriever if retriever is not None else FakeRetriever(corpus)
    return RAGEnv("custom", examples=EXAMPLES, corpus=corpus, retriever=retriever, **kwargs)


# ------------------------------------------------------------------------ the contract
def test_the_declared_keys_are_exactly_what_the_env_returns(tiny_corpus):
    env = make_env(tiny_corpus, max_steps=2)
    observation, reset_info = env.reset(options={"index": 0})
    assert set(observation) == Observation.__required_keys__
    assert set(reset_info) == ResetInfo.__required_keys__
    observation, _, _, _, info = env.step(Search("Ed Wood"))
    assert set(info) == StepInfo.__required_keys__
    assert set(observation["history"][0]) == SearchStep.__required_keys__
    assert set(observation["history"][0]["documents"][0]) == DocumentView.__required_keys__
    assert set(info["retrieved"][0]) == {"id", "title", "score"}
    _, _, _, truncated, final = env.step("not an action")
    assert truncated and set(final) == FinalInfo.__required_keys__
    assert FinalInfo.__required_keys__ - StepInfo.__required_keys__ == {"answer", "gold", "metrics"}
    _, answered = env.reset(options={"index": 0}), env.step(Answer("yes"))[4]
    assert set(answered) == FinalInfo.__required_keys__


def test_observation_types_resolve():
    hints = get_type_hints(Observation)
    assert hints["steps_remaining"] is int and hints["question"] is str


def test_build_observation_is_what_the_env_shows(tiny_corpus):
    env = make_env(tiny_corpus)
    env.reset(options={"index": 1})
    observation, *_ = env.step(Search("Paris capital"))
    observation, *_ = env.step(Search("Ed Wood"))
    history = [
        (entry["query"], [Document(d["id"], d["title"], d["text"]) for d in entry["documents"]])
        for entry in observation["history"]
    ]
    rebuilt = build_observation(
        EXAMPLES[1].question, EXAMPLES[1].options, history, observation["steps_remaining"]
    )
    assert rebuilt == observation
    assert rebuilt["options"] == ({"letter": "A", "text": "Lyon"}, {"letter": "B", "text": "Paris"})
    assert env.observation_space.contains(rebuilt)


def test_build_observation_of_an_open_question_without_history():
    assert build_observation("Why?", None, [], 3) == {
        "question": "Why?",
        "options": (),
        "history": (),
        "steps_remaining": 3,
    }


# ------------------------------------------------------------------------ prefetching
def test_accepted_results_are_used_by_the_next_search_of_that_query(tiny_corpus):
    fake = FakeRetriever(tiny_corpus)
    env = make_env(tiny_corpus, fake)
    env.reset(options={"index": 0})
    [results] = FakeRetriever(tiny_corpus).search(["Ed Wood"], env.k)
    env.accept_prefetched("Ed Wood", results)
    observation, _, _, _, info = env.step(Search("Ed Wood"))
    assert fake.calls == []  # the environment did not search
    assert [d["id"] for d in info["retrieved"]] == [r.document.id for r in results]
    assert observation["history"][0]["query"] == "Ed Wood"


def test_accepted_results_are_dropped_by_any_other_next_step(tiny_corpus):
    fake = FakeRetriever(tiny_corpus)
    env = make_env(tiny_corpus, fake)
    env.reset(options={"index": 0})
    env.accept_prefetched("Ed Wood", [])
    env.step(Search("Scott Derrickson"))  # another query: searches itself
    env.accept_prefetched("Ed Wood", [])
    env.step("gibberish")  # an invalid step also uses up the prefetched results
    _, _, _, _, info = env.step(Search("Ed Wood"))
    assert fake.calls == [["Scott Derrickson"], ["Ed Wood"]]
    assert info["retrieved"][0]["title"] == "Ed Wood"


def test_accept_prefetched_checks_its_input(tiny_corpus):
    env = make_env(tiny_corpus)
    with pytest.raises(RuntimeError, match="call reset"):
        env.accept_prefetched("Ed Wood", [])
    env.reset(options={"index": 0})
    with pytest.raises(TypeError, match="query must be a str"):
        env.accept_prefetched(Search("Ed Wood"), [])
    with pytest.raises(TypeError, match="ScoredDocument"):
        env.accept_prefetched("Ed Wood", [{"id": "d1"}])


class Rewrite(gym.ActionWrapper):
    """Searches for something else than the agent asked for."""

    def action(self, action):
        return Search(action.query + " Derrickson") if isinstance(action, Search) else action


class Tagged(gym.ObservationWrapper):
    def observation(self, observation):
        return {**observation, "tag": len(observation["history"])}


def test_step_batch_steps_through_wrappers_and_prefetches_for_the_env_inside(tiny_corpus):
    fake = FakeRetriever(tiny_corpus)
    envs = [Tagged(make_env(tiny_corpus, fake)), Rewrite(make_env(tiny_corpus, fake))]
    for env in envs:
        env.reset(options={"index": 0})
    (tagged, *_), (rewritten, _, _, _, info) = step_batch(envs, [Search("Ed Wood")] * 2)
    assert tagged["tag"] == 1 and tagged["history"][0]["query"] == "Ed Wood"
    # the wrapper changed the query, so the prefetched results were not used
    assert rewritten["history"][0]["query"] == "Ed Wood Derrickson"
    assert fake.calls == [["Ed Wood"], ["Ed Wood Derrickson"]]
    assert info["retrieved"] == [
        {"id": r.document.id, "title": r.document.title, "score": float(r.score)}
        for r in FakeRetriever(tiny_corpus).search(["Ed Wood Derrickson"], 5)[0]
    ]


def test_prefetch_refuses_other_environments():
    with pytest.raises(TypeError, match=r"expected RAGEnv instances.*got CartPoleEnv"):
        prefetch_searches([gym.make("CartPole-v1")], [Search("x")])
