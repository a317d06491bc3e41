"""Canary: a unique API key goes through every path a key can take; no file or output holds it.

The key travels in the LLM URL (``openai:http://user:KEY@host/v1:model``), through
``--api-key-env``, in a suite file (refused), and in server error replies; it goes through
``raggym bench`` (every report, the episodes, wandb offline files), ``raggym rollout`` and
``raggym collect``. Every file written under the test's folder is then read as bytes and
searched for the key, as is everything printed and logged. The fake server must still
receive the key as ``Authorization: Bearer`` (the key is used, not dropped).
"""

from __future__ import annotations

import base64
import logging
import secrets
import sys
from pathlib import Path

import pytest

pytest.importorskip("httpx")
pytest.importorskip("starlette")

from raggym.testing.fake_server import fake_openai_server
from raggym_env.cli import main
from raggym_env.store import read_episodes

SUITE = """
name = "canary"
batch_size = 4
[[datasets]]
task = "hotpotqa"
select = "first:3"
[[agents]]
agent = "react"
[[agents]]
agent = "heuristic"
"""


def react_script(messages, index):
    prompt = messages[-1]["content"]
    if "Search[" not in prompt:
        return "Thought: look it up.\nAction: Search[" + prompt.splitlines()[0][:60] + "]"
    return "Thought: done.\nAction: Finish[yes]"


def leaks(root: Path, canary: str) -> list[str]:
    """Files under ``root`` holding the canary (raw, as basic auth, or URL-encoded)."""
    needles = [
        canary.encode(),
        base64.b64encode(f"user:{canary}".encode()),
        base64.b64encode(canary.encode())[:-4],
    ]
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            found += [f"{path.relative_to(root)}" for needle in needles if needle in data]
    return found


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """A folder every command writes into (cwd, wandb's dirs), scanned at the end."""
    root = tmp_path / "work"
    root.mkdir()
    monkeypatch.chdir(root)
    for name in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"):
        (root / name.lower()).mkdir()
        monkeypatch.setenv(name, str(root / name.lower()))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    return root


def run(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    """``raggym ARGV`` as a user types it (``sys.argv`` too: wandb records it)."""
    monkeypatch.setattr(sys, "argv", ["raggym", *argv])
    return main(argv)


def test_a_canary_key_never_reaches_a_file_or_the_output(workspace, monkeypatch, capfd, caplog):
    caplog.set_level(logging.DEBUG)
    canary = f"CANARY{secrets.token_hex(12)}"
    suite = workspace / "canary.toml"
    suite.write_text(SUITE)
    with fake_openai_server(react_script) as server:
        url = server.url.replace("http://", f"http://user:{canary}@")
        llm = f"openai:{url}:fake-model"

        # 1. the key inside the URL: bench (reports, episodes, wandb), rollout, collect
        pytest.importorskip("wandb")
        import wandb

        try:
            assert run(["bench", str(suite), "--llm", llm, "--out", "bench",
                        "--wandb", "raggym-canary"], monkeypatch) == 0  # fmt: skip
        finally:
            wandb.teardown()
        play = ["--task", "hotpotqa", "--agent", "react", "--limit", "2", "--llm", llm]
        assert run(["rollout", *play, "--out", "rollout.jsonl"], monkeypatch) == 0
        assert run(["collect", *play, "--n", "2", "--out", "collect.jsonl"], monkeypatch) == 0
        via_url = [h.get("authorization") for h in server.stats.headers]

        # 2. the key in an environment variable named by --api-key-env
        monkeypatch.setenv("RAGGYM_CANARY_KEY", canary)
        plain = f"openai:{server.url}:fake-model"
        assert run(["bench", str(suite), "--llm", plain, "--api-key-env", "RAGGYM_CANARY_KEY",
                    "--out", "bench-env"], monkeypatch) == 0  # fmt: skip
        via_env = [h.get("authorization") for h in list(server.stats.headers)[len(via_url) :]]

        # 3. a server that rejects every call and echoes the key in its error
        server.faults.always(401, message=f"Incorrect API key provided: {canary}")
        run(["rollout", *play, "--out", "failing.jsonl"], monkeypatch)  # any exit status
        failed = list(read_episodes(workspace / "failing.jsonl"))
        server.faults.clear()

    # 4. a server that is down
    down = f"openai:http://user:{canary}@127.0.0.1:9/v1:fake-model"
    play = ["--task", "hotpotqa", "--agent", "react", "--limit", "1", "--llm", down]
    run(["rollout", *play, "--out", "down.jsonl", "--concurrency", "1"], monkeypatch)
    assert all(r.error for r in read_episodes(workspace / "down.jsonl"))

    # 5. a suite file holding the key is refused
    keyed = workspace.parent / "keyed.toml"  # the user's own file, outside the run
    keyed.write_text(SUITE + f'[llm]\nspec = "{plain}"\noptions = {{ api_key = "{canary}" }}\n')
    assert run(["bench", str(keyed), "--out", "keyed"], monkeypatch) == 2

    printed = capfd.readouterr()
    assert "credentials do not belong in a suite file" in printed.err
    assert "--api-key-env" in printed.err
    # the key was used: every request carried it as a bearer token
    assert via_url and set(via_url) == {f"Bearer {canary}"}
    assert via_env and set(via_env) == {f"Bearer {canary}"}
    assert failed and all(r.error and "401" in r.error and "***" in r.error for r in failed)
    assert list((workspace / "wandb_dir").rglob("*.wandb")), "wandb wrote no offline run"
    for name in ("leaderboard.json", "leaderboard.md", "leaderboard.csv", "report.html"):
        assert (workspace / "bench" / name).is_file(), name
    assert not (workspace / "keyed").exists()
    # and it is nowhere else
    assert canary not in printed.out and canary not in printed.err
    assert canary not in caplog.text
    found = leaks(workspace, canary)
    if found:  # show where, for the fix
        for name in found:
            data = (workspace / name).read_bytes()
            at = data.find(canary.encode())
            print(name, data[max(0, at - 300) : at + 50])
    assert found == []
