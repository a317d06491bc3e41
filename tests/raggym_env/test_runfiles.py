"""Run fingerprints and writer locks: a run never resumes over results of other settings."""

import json
import subprocess
import sys
import textwrap

import pytest

from raggym.testing.tasks import tiny_examples as _tiny_examples
from raggym_env import RAGEnv
from raggym_env.runcard import (
    env_fingerprint,
    fingerprint_changes,
    hash_examples,
    run_fingerprint,
)
from raggym_env.runfiles import (
    FingerprintMismatchError,
    RunLock,
    RunLockedError,
    claim_episode_file,
)


@pytest.fixture
def tiny_examples():
    return _tiny_examples()


def _fingerprint(tiny_examples, tiny_corpus, **changes):
    env = RAGEnv(examples=tiny_examples, corpus=tiny_corpus, **changes)
    return run_fingerprint(
        env_fingerprint(env), agent={"agent": "heuristic"}, llm=None, seed=0, critic=None
    )


def test_the_fingerprint_covers_what_changes_outcomes(tiny_examples, tiny_corpus):
    base = _fingerprint(tiny_examples, tiny_corpus)
    assert {"questions", "corpus_hash", "retriever", "k", "max_steps", "reward"} <= set(base)
    assert fingerprint_changes(base, _fingerprint(tiny_examples, tiny_corpus)) == []
    assert fingerprint_changes(base, _fingerprint(tiny_examples, tiny_corpus, k=1)) == ["k: 5 -> 1"]
    changed = _fingerprint(tiny_examples[:2], tiny_corpus, max_steps=3, reward={"search_cost": 0.1})
    named = {line.split(":")[0] for line in fingerprint_changes(base, changed)}
    assert named == {"questions", "max_steps", "reward.search_cost"}
    assert hash_examples(tiny_examples[:2]).startswith("2 questions, sha256:")


def test_llm_credentials_never_enter_a_fingerprint():
    spec = "openai:http://user:s3cret@127.0.0.1:8000/v1:model"
    printed = run_fingerprint(
        {}, agent={}, llm=spec, llm_options={"api_key": "s3cret", "temperature": 0.5}
    )
    assert "s3cret" not in json.dumps(printed)
    assert printed["llm"] == "openai:http://***@127.0.0.1:8000/v1:model"
    assert printed["llm_options"] == {"temperature": 0.5}


def test_claim_records_then_refuses_other_settings_and_fresh_moves_aside(tmp_path):
    out = tmp_path / "x.jsonl"
    with claim_episode_file(out, {"k": 5}):
        out.write_text('{"episode": 1}\n')
    assert json.loads((tmp_path / "x.jsonl.run.json").read_text())["fingerprint"] == {"k": 5}
    with claim_episode_file(out, {"k": 5}):  # same settings: resume
        pass
    with pytest.raises(FingerprintMismatchError, match=r"(?s)k: 5 -> 1.*--fresh"):
        claim_episode_file(out, {"k": 1})
    lines = []
    with claim_episode_file(out, {"k": 1}, fresh=True, say=lines.append):
        assert not out.exists()
    assert "moved the old results aside" in lines[0]
    assert len(list(tmp_path.glob("x.jsonl.old-*"))) == 1


def test_episodes_without_a_recorded_configuration_are_refused(tmp_path):
    out = tmp_path / "old.jsonl"
    out.write_text('{"episode": 1}\n')  # written by an older raggym: no sidecar
    with pytest.raises(FingerprintMismatchError, match="without a recorded configuration"):
        claim_episode_file(out, {"k": 5})


def test_two_locks_on_one_file_conflict_and_name_the_pid(tmp_path):
    lock = tmp_path / "run.lock"
    held = RunLock(lock, target="folder X").acquire()
    with pytest.raises(RunLockedError, match=r"folder X .*pid \d+"):
        RunLock(lock, target="folder X").acquire()
    held.release()
    with RunLock(lock):  # released: free again
        pass


def test_a_second_process_cannot_write_a_claimed_file(tmp_path):
    out = tmp_path / "x.jsonl"
    script = textwrap.dedent(
        f"""
        import sys
        from raggym_env.runfiles import RunLockedError, claim_episode_file
        try:
            claim_episode_file({str(out)!r}, {{"k": 5}})
        except RunLockedError as exc:
            print(exc)
            sys.exit(3)
        """
    )
    with claim_episode_file(out, {"k": 5}):
        result = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 3, result.stderr
    assert "another raggym process" in result.stdout and "pid" in result.stdout
