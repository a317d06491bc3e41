"""LLM kinds from installed entry points: the testing kit's ``scripted:FILE`` end to end."""

import json

import pytest

from raggym.agents.llm.base import SamplingParams
from raggym.agents.registry import BUILTIN_LLM_KINDS, llm_kinds, make_llm
from raggym.benchmarks.suite import SuiteError, parse_suite
from raggym.testing.llms import ScriptedLLM
from raggym_env.cli import main
from raggym_env.store import read_episodes

REPLIES = ["Thought: look it up.\nAction: Search[Scott Derrickson]", "Action: Finish[yes]"]


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "replies.json"
    path.write_text(json.dumps(REPLIES))
    return path


def test_installed_kinds_follow_the_built_in_ones(script):
    assert llm_kinds()[:3] == list(BUILTIN_LLM_KINDS) and "scripted" in llm_kinds()
    llm = make_llm(f"scripted:{script}")
    assert isinstance(llm, ScriptedLLM) and llm.name == "scripted"
    conversation = [{"role": "user", "content": "q"}]
    [first] = llm.generate([conversation], SamplingParams(n=3))
    assert list(first.texts) == [REPLIES[0], REPLIES[1], REPLIES[0]]  # in order, cycling


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not JSON"),
        ('{"replies": ["a"]}', "holds a JSON dict"),
        ("[]", "holds an empty list"),
        ('["a", 3]', "reply 1 of .* is a JSON int"),
        (b"\xff\xfe", "is not JSON"),
    ],
)
def test_a_bad_reply_file_is_named_with_what_was_expected(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ValueError, match=message) as error:
        make_llm(f"scripted:{path}")
    assert "expected a JSON list of reply strings" in str(error.value)


def test_unknown_kinds_and_missing_files_are_clear(tmp_path):
    with pytest.raises(ValueError, match=r"vllm:MODEL, scripted:\.\.\."):
        make_llm("bogus:x")
    with pytest.raises(ValueError, match="scripted:"):
        make_llm("scripted:")  # a kind without its argument
    with pytest.raises(FileNotFoundError, match="no reply file"):
        make_llm(f"scripted:{tmp_path / 'absent.json'}")


def test_suites_accept_installed_kinds_and_name_them_in_errors(script):
    base = '[[datasets]]\ntask = "hotpotqa"\n[[agents]]\nagent = "react"\n'
    suite = parse_suite(f'name = "s"\n[llm]\nspec = "scripted:{script}"\n' + base)
    assert suite.llm.spec == f"scripted:{script}"
    with pytest.raises(SuiteError, match=r"'vllm:MODEL', 'scripted:\.\.\.', or"):
        parse_suite('name = "s"\n[llm]\nspec = "bogus:x"\n' + base)


def test_rollout_runs_offline_on_a_scripted_llm(script, tmp_path, capsys):
    out = tmp_path / "react.jsonl"
    args = ["rollout", "--task", "hotpotqa", "--agent", "react", "--limit", "2",
            "--llm", f"scripted:{script}", "--batch-size", "1", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    assert "failures=0" in capsys.readouterr().out
    records = list(read_episodes(out))
    assert len(records) == 2
    assert all([s.action_type for s in r.steps] == ["search", "answer"] for r in records)
    assert all(r.final_answer == "yes" for r in records)
