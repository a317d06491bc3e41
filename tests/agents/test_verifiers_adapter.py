"""The verifiers adapter: Search-R1 episodes through verifiers' real Agent, over the fake server."""

import asyncio
import sys
from collections.abc import Callable
from typing import Any

import pytest

pytest.importorskip("verifiers.v1")
pytest.importorskip("starlette")

from raggym.agents import verifiers_adapter
from raggym.agents.verifiers_adapter import (
    REWARD_NAME,
    evaluate_search_r1,
    make_search_r1_agent,
    run_search_r1_episode,
)
from raggym.testing.fake_server import fake_openai_server
from raggym.testing.tasks import make_tiny_env
from raggym_env.availability import MissingDependencyError
from raggym_env.text_protocol import SearchR1TextEnv, format_information

TOWER, ROCKET = 1, 2  # indices of the tiny task's questions


def script(turns_by_word: dict[str, list[str]]) -> Callable[[list[dict[str, Any]], int], str]:
    """A fake-server reply function: the turns of the question's script, one per reply."""

    def respond(messages: list[dict[str, Any]], sample_index: int) -> str:
        question = messages[0]["content"].lower()
        turns = next(t for word, t in turns_by_word.items() if word in question)
        done = sum(message["role"] == "assistant" for message in messages)
        return turns[min(done, len(turns) - 1)]

    return respond


def play(respond, indices, **env_kwargs):
    """Serve ``respond``, evaluate ``indices`` of the tiny task; return results and the server."""
    env_kwargs = {"retriever": "fake", "k": 2, "max_steps": 4, **env_kwargs}
    with fake_openai_server(respond) as server:
        agent = make_search_r1_agent(server.url, "fake-model")
        results = asyncio.run(evaluate_search_r1(agent, make_tiny_env(**env_kwargs), indices))
    return results, server


def test_rewards_follow_the_scripted_answers_right_and_wrong():
    respond = script(
        {
            "rocket": ["<search> Uranus probe </search>", "<answer> Martin Marietta </answer>"],
            "tower": ["<think>Hmm.</think><answer> Germany </answer>"],
        }
    )
    right, wrong = play(respond, [ROCKET, TOWER])[0]
    assert (right.index, right.example_id, right.ok) == (ROCKET, "tiny-3", True)
    assert right.reward == 1.0 and right.trace.rewards[REWARD_NAME].score == 1.0
    assert right.metrics["em"] == 1.0 and right.metrics["steps"] == 2.0
    assert right.trace.num_turns == 2 and right.trace.info["raggym"]["answer"] == "Martin Marietta"
    assert wrong.reward == 0.0 and wrong.metrics["em"] == 0.0 and wrong.metrics["f1"] == 0.0
    assert wrong.metrics["episode_done"] == 1.0 and wrong.trace.num_turns == 1


def test_the_information_block_is_the_next_user_message():
    respond = script({"tower": ["<search> Eiffel Tower </search>", "<answer> France </answer>"]})
    (result,), server = play(respond, [TOWER])
    assert result.reward == 1.0
    first, second = list(server.stats.bodies)
    docs = make_tiny_env(retriever="fake", k=2).retriever.search(["Eiffel Tower"], 2)[0]
    information = format_information(docs)
    assert information.startswith("<information>Doc 1(Title: Eiffel Tower)")
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "user"]
    assert second["messages"][0] == first["messages"][0]
    assert second["messages"][1]["content"] == "<search> Eiffel Tower </search>"
    assert second["messages"][2]["content"] == information


def test_a_malformed_turn_is_charged_as_the_env_charges_it():
    respond = script(
        {"tower": ["<search> Eiffel Tower", "<search> Eiffel Tower </search>", "<answer> France"]}
    )
    # unclosed search: a step and the penalty; then a search; then an unclosed answer: the
    # budget of three steps is spent without an answer
    (result,), server = play(respond, [TOWER], max_steps=3, reward={"invalid_action_penalty": 0.25})
    outcome = result.trace.info["raggym"]
    assert outcome["truncated"] and not outcome["terminated"]
    assert [turn["type"] for turn in outcome["turns"]] == ["invalid", "search", "invalid"]
    assert result.reward == pytest.approx(-0.5) and result.metrics["invalid_turns"] == 2.0
    assert result.metrics["steps"] == 3.0 and result.metrics["em"] == 0.0
    feedback = list(server.stats.bodies)[1]["messages"][-1]["content"]
    assert feedback.startswith("<information>Your last turn held no valid action")
    assert "never closed" in feedback


def test_a_failed_model_call_is_a_recorded_rollout_error_with_no_reward():
    with fake_openai_server(script({"tower": ["<answer> France </answer>"]})) as server:
        server.faults.always(400, message="bad request")
        agent = make_search_r1_agent(server.url, "fake-model")
        env = SearchR1TextEnv(make_tiny_env(retriever="fake"))
        (result,) = asyncio.run(evaluate_search_r1(agent, env, [TOWER]))
    assert not result.ok and result.errors
    assert result.reward == 0.0 and result.trace.info["raggym"]["done"] is False


def test_one_entered_agent_plays_episodes_on_a_seeded_question():
    respond = script({w: ["<answer> yes </answer>"] for w in ("rocket", "tower", "nationality")})

    async def both(url: str) -> list[Any]:
        agent = make_search_r1_agent(url, "fake-model")
        env = make_tiny_env(retriever="fake")
        async with agent:
            return [await run_search_r1_episode(agent, env, seed=s) for s in (3, 3)]

    with fake_openai_server(respond) as server:
        first, again = asyncio.run(both(server.url))
    assert first.index == again.index and first.index in (0, 1, 2)
    assert first.reward == again.reward == (1.0 if first.index == 0 else 0.0)


def test_bad_arguments_and_a_missing_verifiers_say_what_is_wrong(monkeypatch):
    with pytest.raises(ValueError, match="base_url"):
        make_search_r1_agent("", "m")
    with pytest.raises(ValueError, match="model"):
        make_search_r1_agent("http://127.0.0.1:1/v1", "")
    monkeypatch.setitem(sys.modules, "verifiers.v1", None)
    verifiers_adapter._types.cache_clear()
    try:
        with pytest.raises(MissingDependencyError, match=r"raggym\[verifiers\]"):
            make_search_r1_agent("http://127.0.0.1:1/v1", "m")
    finally:
        monkeypatch.undo()
        verifiers_adapter._types.cache_clear()


PLUGIN = """
from raggym.agents.verifiers_adapter import verifiers_plugin

SearchR1Taskset, SearchR1Env, SearchR1Harness = verifiers_plugin()
__all__ = ["SearchR1Env", "SearchR1Harness", "SearchR1Taskset"]
"""


def test_a_plugin_module_runs_under_verifiers_own_env_machinery(tmp_path, monkeypatch):
    import verifiers.v1 as vf

    (tmp_path / "raggym_search_r1_test_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    config = vf.resolve_env_config(
        {
            "taskset": {
                "id": "raggym_search_r1_test_plugin",
                "make_env": "raggym.testing.tasks:make_tiny_env",
                "env_kwargs": {"retriever": "fake", "k": 2, "max_steps": 3},
                "indices": [ROCKET, TOWER],
            }
        }
    )
    env = vf.load_environment(config)
    tasks = list(env.taskset)
    assert [task.data.index for task in tasks] == [ROCKET, TOWER]
    assert "Question: Which company built the rocket" in tasks[0].data.prompt
    respond = script(
        {
            "rocket": ["<search> Uranus probe </search>", "<answer> Martin Marietta </answer>"],
            "tower": ["<answer> France </answer"],  # never closed: invalid, budget spent
        }
    )

    async def episodes(url: str) -> list[Any]:
        ctx = vf.ModelContext(client=vf.EvalClientConfig(base_url=url), model="fake-model")
        async with env.serving():
            return list(await asyncio.gather(*(env.run_episode(t, ctx) for t in tasks)))

    with fake_openai_server(respond) as server:
        right, wrong = asyncio.run(episodes(server.url))
    assert right.ok and wrong.ok
    (right_trace,), (wrong_trace,) = right.traces, wrong.traces
    assert right_trace.reward == 1.0 and right_trace.metrics["em"] == 1.0
    assert wrong_trace.reward == 0.0 and wrong_trace.metrics["invalid_turns"] == 3.0
    assert wrong_trace.info["raggym"]["truncated"] is True


def test_the_api_key_reaches_the_server_but_not_the_trace(monkeypatch):
    canary = "sk-canary-verifiers-7731"
    monkeypatch.setenv("RAGGYM_TEST_KEY", canary)
    with fake_openai_server(lambda messages, i: "<answer> yes </answer>") as server:
        agent = make_search_r1_agent(server.url, "fake-model", api_key_var="RAGGYM_TEST_KEY")
        (result,) = asyncio.run(evaluate_search_r1(agent, make_tiny_env(retriever="fake"), [0]))
    assert result.reward == 1.0
    assert list(server.stats.headers)[-1]["authorization"] == f"Bearer {canary}"
    assert canary not in result.trace.model_dump_json()
