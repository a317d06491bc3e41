"""Suite runs end to end: cells, resume, failures, LLM agents over HTTP, compare, wandb."""

import dataclasses
import json
import shutil

import pytest

from raggym.benchmarks import runner
from raggym.benchmarks.cli import compare_runs
from raggym.benchmarks.leaderboard import load_leaderboard
from raggym.benchmarks.runner import run_suite
from raggym.benchmarks.suite import load_suite, parse_suite
from raggym.testing.fake_server import fake_openai_server
from raggym_env import Answer
from raggym_env.cli import main
from raggym_env.store import read_episodes


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke")
    board, episodes = run_suite(load_suite("smoke"), out, limit=5, progress=None)
    return out, board, episodes


def test_smoke_suite_fills_every_cell_and_writes_reports(smoke_run):
    out, board, episodes = smoke_run
    cells = board.by_key()
    assert len(cells) == 8 and len(episodes) == 8
    for (dataset, agent), cell in cells.items():
        assert cell.selected == 5 and cell.finished == 5
        assert len(list(read_episodes(out / cell.episodes_file))) == 5
        if agent == "oracle":
            headline = cell.metrics["accuracy" if cell.multiple_choice else "em"]
            assert headline == 1.0, (dataset, agent)
    for name in ("leaderboard.md", "leaderboard.csv", "leaderboard.json", "report.html"):
        assert (out / name).is_file(), name
    assert load_leaderboard(out) == board
    assert board.run_card.fields["config"]["suite"]["name"] == "smoke"


def test_a_rerun_resumes_without_playing_again(smoke_run, capsys):
    out, board, _ = smoke_run
    lines = []
    again, _ = run_suite(load_suite("smoke"), out, limit=5, progress=lines.append)
    assert all("0 played, 5 resumed" in line for line in lines if "played" in line)
    assert [c.metrics["em"] for c in again.cells] == [c.metrics["em"] for c in board.cells]


class Exploding:
    name = "exploding"

    def begin(self, example):
        self.boom = example.id.endswith(("1", "3", "5", "7", "9"))

    def act(self, observation):
        if self.boom:
            raise RuntimeError("agent bug")
        return Answer("yes")


def test_crashed_items_stay_in_the_denominator(tmp_path, monkeypatch):
    from raggym.agents.base import PolicyAgent

    monkeypatch.setattr(runner, "build_agent", lambda *a, **k: PolicyAgent(Exploding()))
    suite = parse_suite(
        {"name": "crash", "datasets": [{"task": "hotpotqa", "select": "first:10"}],
         "agents": [{"agent": "heuristic"}]}
    )  # fmt: skip
    board, episodes = run_suite(suite, tmp_path, progress=None, reports=False)
    (cell,) = board.cells
    crashed = [r for r in episodes[("hotpotqa", "heuristic")] if r.error]
    assert crashed and cell.selected == 10
    assert cell.metrics["failures"] == len(crashed)
    assert cell.finished == 10 - len(crashed)
    assert all("RuntimeError: agent bug" in e.error for e in cell.errors)


def test_llm_agents_need_a_backend(tmp_path):
    suite = parse_suite(
        {"name": "llm", "datasets": [{"task": "hotpotqa"}], "agents": [{"agent": "react"}]}
    )
    with pytest.raises(ValueError, match="--llm openai:URL:MODEL"):
        run_suite(suite, tmp_path, progress=None)


def react_script(messages, index):
    prompt = messages[-1]["content"]
    if "Search[" not in prompt:
        return "Thought: look it up.\nAction: Search[" + prompt.splitlines()[0][:60] + "]"
    return "Thought: done.\nAction: Finish[yes]"


def test_bench_command_with_an_llm_suite_over_http(tmp_path, capsys):
    suite_file = tmp_path / "llm.toml"
    suite_file.write_text(
        'name = "llm"\nbatch_size = 4\n'
        '[[datasets]]\ntask = "hotpotqa"\nselect = "first:6"\n'
        '[[agents]]\nagent = "react"\n[[agents]]\nagent = "heuristic"\n'
    )
    with fake_openai_server(react_script) as server:
        code = main(
            ["bench", str(suite_file), "--llm", f"openai:{server.url}:fake",
             "--out", str(tmp_path / "run")]
        )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "HTML report:" in out and "react" in out
    board = load_leaderboard(tmp_path / "run")
    react = next(c for c in board.cells if c.agent == "react")
    assert react.finished == 6 and react.metrics["tokens_per_q"] > 0
    assert react.metrics["steps"] == 2.0 and react.metrics["latency_step_p95"] > 0
    assert board.llm.endswith(":fake")


def test_compare_shows_per_cell_and_per_dataset_deltas(smoke_run, tmp_path, capsys):
    out, board, _ = smoke_run
    changed = board.replace_cells(
        [
            dataclasses.replace(c, metrics={**c.metrics, "em": c.metrics["em"] + 0.1})
            if c.agent == "heuristic" and c.metrics["em"] is not None
            else c
            for c in board.cells
        ]
    )
    (tmp_path / "leaderboard.json").write_text(json.dumps(changed.to_dict()))
    shutil.copytree(out / "episodes", tmp_path / "episodes")  # the paired part reads them
    text = compare_runs(board, changed)
    assert "| hotpotqa | heuristic | 5/5 |" in text
    assert "+0.100" in text and "Per-dataset mean delta" in text
    assert main(["compare", str(out), str(tmp_path)]) == 0
    assert "+0.050" in capsys.readouterr().out  # hotpotqa: mean of +0.1 and +0.0


def test_load_leaderboard_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="raggym bench"):
        load_leaderboard(tmp_path)
    (tmp_path / "leaderboard.json").write_text("{}")
    with pytest.raises(ValueError, match="not a raggym leaderboard"):
        load_leaderboard(tmp_path)


def test_wandb_offline_logging(smoke_run, tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason="wandb is not installed (pip install 'raggym[track]')")
    import wandb

    from raggym.benchmarks.tracking import episode_rows, log_to_wandb

    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_MODE", "offline")
    _, board, episodes = smoke_run
    try:
        run_dir = log_to_wandb(
            board, episodes, project="raggym-test", mode="offline", directory=str(tmp_path)
        )
    finally:
        wandb.teardown()  # wandb's process-wide settings must not leak into later tests
    assert (tmp_path / "wandb").is_dir() and run_dir
    offline = list((tmp_path / "wandb").glob("offline-run-*/*.wandb"))
    assert offline, "the offline run file was not written"
    columns, rows = episode_rows(episodes)
    assert len(rows) == 40 and columns[0] == "dataset"


def test_wandb_login_is_read_from_the_environment_or_netrc(tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason="wandb is not installed (pip install 'raggym[track]')")
    from raggym.benchmarks.tracking import has_wandb_login, wandb_mode

    for name in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(tmp_path / ".netrc"))
    assert not has_wandb_login()
    assert wandb_mode()[0] == "offline" and "wandb sync" in str(wandb_mode()[1])
    assert wandb_mode("online")[0] == "offline"
    assert wandb_mode("disabled") == ("disabled", None)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_mode() == (None, None)
    monkeypatch.delenv("WANDB_MODE")
    (tmp_path / ".netrc").write_text("machine api.wandb.ai\n  login user\n  password abc\n")
    (tmp_path / ".netrc").chmod(0o600)
    assert has_wandb_login() and wandb_mode() == (None, None)
    (tmp_path / ".netrc").write_text("machine other.host login u password p\n")
    assert not has_wandb_login()
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    assert has_wandb_login()


def test_bench_wandb_without_login_falls_back_to_offline_before_the_run(
    tmp_path, monkeypatch, capsys
):
    pytest.importorskip("wandb", reason="wandb is not installed (pip install 'raggym[track]')")
    import wandb

    for name in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(tmp_path / ".netrc"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.chdir(tmp_path)
    try:
        code = main(
            ["bench", "smoke", "--limit", "1", "--out", str(tmp_path / "run"),
             "--wandb", "raggym-test"]
        )  # fmt: skip
    finally:
        wandb.teardown()
    assert code == 0
    err = capsys.readouterr().err
    assert "warning: wandb: no API key" in err
    assert (tmp_path / "run" / "leaderboard.json").is_file()
    assert list((tmp_path / "wandb").glob("offline-run-*/*.wandb"))


def test_progress_lines_report_counts_failures_and_rate():
    import dataclasses as dc

    from raggym.benchmarks.runner import _progress_printer

    lines = []
    report = _progress_printer("react", 3, lines.append, every_s=0.0)
    env = __import__("raggym_env").RAGEnv("hotpotqa", limit=1)
    from raggym.agents.baselines import GoldEvidenceOracle
    from raggym.agents.rollout import run_episode

    record = run_episode(env, GoldEvidenceOracle(), options={"index": 0})
    report(record)
    report(dc.replace(record, error="RuntimeError: x"))
    assert lines[0].startswith("    react: 1/3 (0 failed")
    assert lines[1].startswith("    react: 2/3 (1 failed") and "left)" in lines[1]


# ----------------------------------------------------------------- run integrity
def _suite_file(tmp_path, name="k", k=3, extra=""):
    path = tmp_path / f"{name}{k}.toml"
    path.write_text(
        f'name = "{name}"\nk = {k}\n{extra}'
        '[[datasets]]\ntask = "hotpotqa"\nselect = "first:12"\n'
        '[[agents]]\nagent = "heuristic"\n'
    )
    return path


def test_a_rerun_with_another_k_is_refused_naming_k(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main(["bench", str(_suite_file(tmp_path, k=3)), "--out", out]) == 0
    k3 = load_leaderboard(tmp_path / "run").cells[0].metrics
    capsys.readouterr()
    assert main(["bench", str(_suite_file(tmp_path, k=1)), "--out", out]) == 2
    err = capsys.readouterr().err
    assert "k: 3 -> 1" in err and "--fresh" in err and "heuristic" in err
    assert load_leaderboard(tmp_path / "run").cells[0].metrics == k3  # nothing mixed
    assert main(["bench", str(_suite_file(tmp_path, k=1)), "--out", out, "--fresh"]) == 0
    assert "12 played, 0 resumed" in capsys.readouterr().out
    assert (
        load_leaderboard(tmp_path / "run").cells[0].metrics["evidence_recall"]
        != (k3["evidence_recall"])
    )
    assert list((tmp_path / "run").glob("episodes.old-*"))


def test_a_folder_of_an_older_raggym_is_refused(tmp_path, capsys):
    old = tmp_path / "run" / "episodes" / "hotpotqa.heuristic.jsonl"
    old.parent.mkdir(parents=True)
    old.write_text('{"schema_version": "1.0"}\n')
    assert main(["bench", str(_suite_file(tmp_path)), "--out", str(tmp_path / "run")]) == 2
    assert "without a recorded configuration" in capsys.readouterr().err


def test_a_second_writer_of_a_run_folder_is_refused(tmp_path, capsys):
    from raggym_env.runfiles import RunLock

    out = tmp_path / "run"
    with RunLock(out / "run.lock"):  # another open file description: flock conflicts
        assert main(["bench", str(_suite_file(tmp_path)), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"run folder {out} is being written by another raggym process (pid" in err
    assert not (out / "episodes").exists()


def test_dotted_names_never_share_an_episode_file(tmp_path):
    suite = parse_suite(
        {"name": "dots",
         "datasets": [{"task": "hotpotqa", "select": "first:10"},
                      {"name": "hotpotqa.x", "task": "hotpotqa", "select": "first:10"}],
         "agents": [{"name": "x.oracle", "agent": "heuristic"},
                    {"name": "oracle", "agent": "oracle"}]}
    )  # fmt: skip
    board, _ = run_suite(suite, tmp_path, progress=None, reports=False)
    files = {cell.episodes_file for cell in board.cells}
    assert len(files) == 4
    cells = board.by_key()
    assert cells[("hotpotqa.x", "oracle")].metrics["em"] == 1.0
    assert cells[("hotpotqa", "x.oracle")].metrics["em"] < 1.0
    for cell in board.cells:  # one cell's episodes per file, none appended twice
        assert len(list(read_episodes(tmp_path / cell.episodes_file))) == 10


def test_wall_time_and_throughput_survive_a_resume(tmp_path):
    suite = load_suite("smoke")
    first, _ = run_suite(suite, tmp_path, limit=3, progress=None, reports=False)
    again, _ = run_suite(suite, tmp_path, limit=3, progress=None, reports=False)
    for before, after in zip(first.cells, again.cells, strict=True):
        assert after.metrics["wall_s"] is not None and after.metrics["throughput"] is not None
        assert after.metrics["wall_s"] == pytest.approx(before.metrics["wall_s"])


def _react_suite(tmp_path):
    suite_file = tmp_path / "llm.toml"
    suite_file.write_text(
        'name = "llm"\nbatch_size = 3\n'
        '[[datasets]]\ntask = "hotpotqa"\nselect = "first:3"\n'
        '[[agents]]\nagent = "react"\n'
    )
    return suite_file


def test_failures_exit_1_then_retry_failed_plays_them_again(tmp_path, capsys):
    from raggym.testing.fake_server import FaultPlan

    out = str(tmp_path / "run")
    faults = FaultPlan().always(400, message="rejected")
    with fake_openai_server(react_script, faults=faults) as server:
        args = ["bench", str(_react_suite(tmp_path)), "--llm", f"openai:{server.url}:fake",
                "--out", out]  # fmt: skip
        assert main(args) == 1
        printed = capsys.readouterr().out
        assert (
            printed.rstrip()
            .splitlines()[-1]
            .startswith("3 of 3 episodes failed; play them again with: raggym bench ")
        )
        assert printed.rstrip().endswith("--retry-failed")
        (cell,) = load_leaderboard(tmp_path / "run").cells
        assert cell.metrics["em"] == 0.0 and cell.metrics["f1"] == 0.0  # not "-"
        assert cell.failures == 3
        server.faults.clear()
        assert main(args) == 1  # failures are kept on a plain resume
        assert "0 played, 3 resumed, 3 failed" in capsys.readouterr().out
        assert main([*args, "--retry-failed"]) == 0
    printed = capsys.readouterr().out
    assert "3 played, 0 resumed, 0 failed" in printed
    assert "all 3 episodes played without failure" in printed
    (cell,) = load_leaderboard(tmp_path / "run").cells
    assert cell.failures == 0 and cell.finished == 3


def test_switching_the_llm_is_another_run(tmp_path, capsys):
    out = str(tmp_path / "run")
    with fake_openai_server(react_script) as good, fake_openai_server(react_script) as other:
        suite = str(_react_suite(tmp_path))
        assert main(["bench", suite, "--llm", f"openai:{good.url}:fake", "--out", out]) == 0
        capsys.readouterr()
        code = main(["bench", suite, "--llm", f"openai:{other.url}:fake", "--out", out])
    assert code == 2
    err = capsys.readouterr().err
    assert f"llm: openai:{good.url}:fake -> openai:{other.url}:fake" in err


def test_ctrl_c_says_what_was_saved_and_exits_130(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    suite_file = tmp_path / "slow.toml"
    suite_file.write_text(
        'name = "slow"\nbatch_size = 1\n'
        '[[datasets]]\ntask = "hotpotqa"\nselect = "first:40"\n[[agents]]\nagent = "react"\n'
    )
    out = tmp_path / "run"
    with fake_openai_server(react_script, latency_s=0.2) as server:
        proc = subprocess.Popen(
            # a job started with & in a non-interactive shell (CI) inherits SIGINT ignored:
            # give the child the handler a terminal's Ctrl-C meets
            [sys.executable, "-c", "import signal, sys; from raggym_env.cli import main; "
             "signal.signal(signal.SIGINT, signal.default_int_handler); sys.exit(main())",
             "bench", str(suite_file), "--llm", f"openai:{server.url}:fake", "--out", str(out)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy(),
        )  # fmt: skip
        episodes = out / "episodes" / "hotpotqa" / "react.jsonl"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
            episodes.exists() and episodes.read_text().count("\n") >= 2
        ):
            time.sleep(0.1)
        finished_early = proc.poll() is not None  # the run outpaced the polling: no Ctrl-C
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    assert not finished_early, f"the run ended before the interrupt: {stdout[-500:]}{stderr}"
    assert proc.returncode == 130, stdout[-500:] + stderr
    assert "Traceback" not in stderr
    assert "interrupted" in stderr and "same command resumes" in stderr
    saved = json.loads((out / "run.json").read_text())["cells"]["episodes/hotpotqa/react.jsonl"]
    assert saved["wall_s"] > 0 and saved["played"] >= 2
