"""Names -> backends, agents and critics; ``raggym rollout`` end to end over real HTTP."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raggym.agents.base import PolicyAgent
from raggym.agents.critic_guided import CriticGuidedAgent
from raggym.agents.critics.base import CallableCritic
from raggym.agents.registry import AGENTS, make_agent, make_critic, make_llm, split_openai_spec
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


@pytest.mark.parametrize(
    ("spec", "url", "model"),
    [
        ("openai:http://user:KEY@host:8000/v1:model", "http://user:KEY@host:8000/v1", "model"),
        ("openai:http://u:p@h:8000/v1:org/model:tag", "http://u:p@h:8000/v1", "org/model:tag"),
        ("openai:http://u:a:b:c@h:8000/v1:m", "http://u:a:b:c@h:8000/v1", "m"),
        ("openai:http://KEY@h/v1:llama3:8b", "http://KEY@h/v1", "llama3:8b"),
        ("openai:http://u:p@h:8000:org/model", "http://u:p@h:8000", "org/model"),
        ("openai:http://u:p@h:org/model:tag", "http://u:p@h", "org/model:tag"),
        ("openai:https://u:p%40x@h/api/v1:gpt-4o", "https://u:p%40x@h/api/v1", "gpt-4o"),
        ("openai:http://[::1]:8000/v1:m", "http://[::1]:8000/v1", "m"),
        ("openai:http://u:p@[::1]:8000:m", "http://u:p@[::1]:8000", "m"),
        ("openai:http://h:8000/v1:m@v2", "http://h:8000/v1", "m@v2"),
        ("openai:http://h:8000:123", "http://h:8000", "123"),
        ("openai:http://h:8000/v1/:m", "http://h:8000/v1/", "m"),
    ],
)  # fmt: skip
def test_openai_spec_rule_with_credentials_ports_and_colons_in_models(spec, url, model):
    assert split_openai_spec(spec) == (url, model)


@pytest.mark.parametrize(
    "spec",
    ["openai:http://u:CANARY@h", "openai:http://u:CANARY@h:8000", "openai:ftp://u:CANARY@h:m",
     "openai:http://u:CANARY@:80/v1:m", "openai:http://u:CANARY@[::1:m"],
)  # fmt: skip
def test_bad_openai_specs_never_echo_credentials(spec):
    with pytest.raises(ValueError, match="openai:URL:MODEL") as info:
        make_llm(spec)
    assert "CANARY" not in str(info.value)


def test_credentials_in_the_spec_are_the_api_key_and_leave_every_name():
    llm = make_llm("openai:http://user:CANARY@127.0.0.1:1/v1:org/model:tag")
    try:
        assert llm.base_url == "http://127.0.0.1:1/v1" and llm.model == "org/model:tag"
        assert "CANARY" not in f"{llm.name} {llm!r} {llm.base_url}"
        assert llm._secret is not None and llm._secret.reveal() == "CANARY"
    finally:
        llm.close()
    with pytest.raises(ValueError, match="pass the key once"):
        make_llm("openai:http://user:CANARY@127.0.0.1:1/v1:m", api_key_env="HOME")


_HOST = st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z]{2,5}){0,2}", fullmatch=True)
_USERINFO = st.from_regex(
    r"[A-Za-z0-9._~!$&'()*+,;=%-][A-Za-z0-9._~!$&'()*+,;=%:-]{0,15}", fullmatch=True
)
_PATH = st.from_regex(r"(/[A-Za-z0-9._~-]{1,8}){0,3}", fullmatch=True)
_MODEL = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._/@:-]{0,20}", fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(
    scheme=st.sampled_from(["http", "https"]), userinfo=st.none() | _USERINFO, host=_HOST,
    port=st.none() | st.integers(1, 65535), path=_PATH, model=_MODEL,
)  # fmt: skip
def test_openai_spec_rule_round_trips(scheme, userinfo, host, port, path, model):
    if "@" in model and not path:
        model = model.replace("@", "_")  # the documented rule: '@' in a model needs a path
    if port is None and not path and re.match(r"\d+(?:[:/]|$)", model):
        model = f"m{model}"  # digits right after the host, then ':' or '/', read as a port
    url = f"{scheme}://{'' if userinfo is None else userinfo + '@'}{host}"
    url += f":{port}" if port is not None else ""
    url += path
    assert split_openai_spec(f"openai:{url}:{model}") == (url, model)


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
