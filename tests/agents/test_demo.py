import json
import warnings

import pytest

from raggym_env.cli import main


def test_demo_runs_writes_episodes_and_resumes(tmp_path, capsys):
    args = ["demo", "--task", "hotpotqa", "--task", "medqa", "--limit", "10"]
    args += ["--out", str(tmp_path)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "| hotpotqa | heuristic | 10 |" in out
    assert "| medqa | oracle | 10 | 1.000 |" in out
    assert "BM25 index built" in out
    lines = (tmp_path / "hotpotqa.heuristic.jsonl").read_text().splitlines()
    assert len(lines) == 10
    record = json.loads(lines[0])
    assert record["run_card"]["config"]["policy"] == "heuristic"
    assert record["run_card"]["corpus_hash"]

    # a crash mid-write leaves a torn last line; the rerun warns, keeps the rest, resumes
    path = tmp_path / "hotpotqa.heuristic.jsonl"
    path.write_text("\n".join(lines[:9]) + "\n" + lines[9][:40])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(args) == 0
    assert any("not valid JSON" in str(w.message) for w in caught)
    out = capsys.readouterr().out
    assert "BM25 index reloaded" in out
    assert "heuristic: ran 1 episodes (9 resumed)" in out
    assert "oracle: ran 0 episodes (10 resumed)" in out


def test_index_command_builds_and_reports(tmp_path, capsys):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        "\n".join(json.dumps({"title": f"T{i}", "text": f"passage number {i}"}) for i in range(5))
    )
    assert main(["index", "--corpus", str(corpus), "--out", str(tmp_path / "idx")]) == 0
    assert "built BM25 index of 5 documents" in capsys.readouterr().out
    assert (tmp_path / "idx" / "raggym_index.json").exists()


def test_cli_user_errors_are_one_line(tmp_path, capsys):
    code = main(["index", "--corpus", str(tmp_path / "missing.json"), "--out", str(tmp_path)])
    assert code == 2
    assert "raggym index: error:" in capsys.readouterr().err


def test_cli_rejects_unknown_task():
    with pytest.raises(SystemExit):
        main(["demo", "--task", "nope"])
