"""Names -> backends, agents and critics; ``raggym rollout`` end to end over real HTTP."""

import pytest

from raggym.agents.base import PolicyAgent
from raggym.agents.critic_guided import CriticGuidedAgent
from raggym.agents.critics.base import CallableCritic
from raggym.agents.registry import AGENTS, make_agent, make_critic, make_llm
from raggym.testing.fake_server import fake_openai_server
from raggym.testing.llms import MockLLM
from raggym_env.cli import main
from raggym_env.store import read_episodes


@pytest.mark.parametrize(
    ("spec", "url", "model"),
    [
        ("openai:http://127.0.0.1:8000/v1:Qwen/Qwen2.5-7B-Instruct",
         "http://127.0.0.1:8000/v1", "Qwen/Qwen2.5-7B-Instruct"),
        ("openai:http://localhost:9000:llama3:8b", "http://localhost:9000", "llama3:8b"),
        ("openai:https://api.example.com/v1:gpt-4o-mini",
         "https://api.example.com/v1", "gpt-4o-mini"),
    ],
)  # fmt: skip
def test_openai_specs_split_url_and_model(spec, url, model):
    llm = make_llm(spec)
    try:
        assert llm.model == model
        assert llm.base_url.rstrip("/").removesuffix("/v1") == url.removesuffix("/v1")
        assert llm.name == f"openai:{model}"
    finally:
        llm.close()


@pytest.mark.parametrize("spec", ["openai:nourl", "gpt-4", "hf:", "vllm"])
def test_bad_llm_specs_name_the_expected_forms(spec):
    with pytest.raises(ValueError, match="openai:URL:MODEL"):
        make_llm(spec)


def test_hf_spec_loads_a_local_model(tmp_path):
    from raggym.testing.tiny import build_tiny_causal_lm

    path = build_tiny_causal_lm(tmp_path / "tiny")
    llm = make_llm(f"hf:{path}")
    assert type(llm).__name__ == "TransformersLLM"


@pytest.mark.parametrize("name", sorted(AGENTS))
def test_every_llm_agent_builds_by_name(name):
    agent = make_agent(name, MockLLM(lambda c: "Answer: x"), options={"temperature": 0.5})
    assert agent.name == name and agent.params.temperature == 0.5
    assert agent.describe()["prompt_sha256"]


def test_policies_and_critic_guided_agents_by_name():
    assert isinstance(make_agent("oracle"), PolicyAgent)
    guided = make_agent(
        "re2search++", MockLLM(lambda c: "x"), critic=CallableCritic(lambda i: 0.0), n=3
    )
    assert isinstance(guided, CriticGuidedAgent) and guided.name == "re2search++"
    assert guided.params.n == 3
    with pytest.raises(ValueError, match="needs a critic"):
        make_agent("re2search++", MockLLM(lambda c: "x"))
    with pytest.raises(ValueError, match="needs an LLM"):
        make_agent("react")
    with pytest.raises(ValueError, match="unknown agent 'reflexion'"):
        make_agent("reflexion", MockLLM(lambda c: "x"))


def test_critics_by_name(tiny_corpus):
    from raggym.testing.retriever import FakeRetriever

    assert make_critic("gold", retriever=FakeRetriever(tiny_corpus)).name == "gold_evidence"
    assert make_critic("judge", llm=MockLLM(lambda c: "Ranking: 1")).name == "llm_judge"
    with pytest.raises(ValueError, match="needs the environment's retriever"):
        make_critic("gold")
    with pytest.raises(ValueError, match="rm:PATH, judge or gold"):
        make_critic("prm")


def react_script(messages, index):
    prompt = messages[-1]["content"]
    if "Search[" not in prompt:
        return "Thought: look it up.\nAction: Search[" + prompt.splitlines()[0][:60] + "]"
    return "Thought: done.\nAction: Finish[yes]"


@pytest.fixture(scope="module")
def fake_llm_url():
    with fake_openai_server(react_script) as server:
        yield server.url


def test_rollout_command_plays_resumes_and_summarises(fake_llm_url, tmp_path, capsys):
    out = tmp_path / "react.jsonl"
    args = [
        "rollout", "--task", "hotpotqa", "--agent", "react", "--limit", "6",
        "--llm", f"openai:{fake_llm_url}:fake", "--batch-size", "4", "--out", str(out),
    ]  # fmt: skip
    assert main(args) == 0
    first = capsys.readouterr().out
    assert "playing 6 with react" in first and "failures=0" in first
    records = list(read_episodes(out))
    assert len(records) == 6
    assert all([s.action_type for s in r.steps] == ["search", "answer"] for r in records)
    assert records[0].run_card["config"]["agent"]["agent"] == "react"
    assert main(args) == 0
    assert "6 already done, playing 0" in capsys.readouterr().out
    assert len(list(read_episodes(out))) == 6


def test_rollout_command_with_a_gold_critic(fake_llm_url, tmp_path, capsys):
    out = tmp_path / "pp.jsonl"
    args = [
        "rollout", "--task", "hotpotqa", "--agent", "react++", "--critic", "gold", "--n", "3",
        "--limit", "2", "--llm", f"openai:{fake_llm_url}:fake", "--out", str(out),
    ]  # fmt: skip
    assert main(args) == 0
    records = list(read_episodes(out))
    assert len(records) == 2
    step = records[0].steps[0]
    assert len(step.candidates) == 3 and step.candidates[0].scorer == "gold_evidence"


def test_rollout_command_without_llm_for_an_llm_agent_is_a_user_error(tmp_path, capsys):
    assert main(["rollout", "--task", "hotpotqa", "--agent", "cot", "--limit", "1"]) == 2
    assert "needs an LLM backend" in capsys.readouterr().err


def test_rollout_with_another_k_is_refused_then_fresh_starts_again(tmp_path, capsys):
    out = str(tmp_path / "x.jsonl")
    base = ["rollout", "--task", "hotpotqa", "--agent", "heuristic", "--limit", "5"]
    assert main([*base, "--k", "5", "--out", out]) == 0
    capsys.readouterr()
    assert main([*base, "--k", "1", "--out", out]) == 2
    err = capsys.readouterr().err
    assert "k: 5 -> 1" in err and "--fresh" in err
    assert main([*base, "--k", "1", "--out", out, "--fresh"]) == 0
    assert "0 already done, playing 5" in capsys.readouterr().out
    assert list(tmp_path.glob("x.jsonl.old-*"))


def test_rollout_failures_exit_1_and_retry_failed_replays_them(tmp_path, capsys):
    from raggym.testing.fake_server import FaultPlan, fake_openai_server

    out = str(tmp_path / "r.jsonl")
    with fake_openai_server(react_script, faults=FaultPlan().always(400)) as server:
        args = ["rollout", "--task", "hotpotqa", "--agent", "react", "--limit", "3",
                "--llm", f"openai:{server.url}:fake", "--out", out]  # fmt: skip
        assert main([*args, "--fresh"]) == 1
        last = capsys.readouterr().out.rstrip().splitlines()[-1]
        assert "--fresh" not in last  # retrying must not move the episodes aside
        assert last.startswith("3 of 3 episodes failed; play them again with: raggym rollout")
        assert last.endswith("--retry-failed")
        server.faults.clear()
        assert main(args) == 1
        assert "3 already done, playing 0" in capsys.readouterr().out
        assert main([*args, "--retry-failed"]) == 0
    printed = capsys.readouterr().out
    assert "0 already done, playing 3" in printed and "failures=0" in printed


def test_medqa_rollout_summary_reports_accuracy(tmp_path, capsys):
    out = str(tmp_path / "m.jsonl")
    args = ["rollout", "--task", "medqa", "--agent", "oracle", "--limit", "3", "--out", out]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "accuracy=1.000" in printed and "EM=" not in printed


def test_episode_records_carry_an_id_gym_make_accepts(tmp_path):
    import gymnasium as gym

    out = tmp_path / "h.jsonl"
    args = ["rollout", "--task", "hotpotqa", "--agent", "oracle", "--limit", "1"]
    assert main([*args, "--out", str(out)]) == 0
    (record,) = read_episodes(out)
    assert record.env_id == "RAGGym/HotpotQA-v0"
    assert gym.spec(record.env_id).id == record.env_id
