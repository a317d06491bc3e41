"""``raggym compare``: questions paired by id, intervals and p-values, flags and exit codes."""

import json
import shutil

import pytest

from raggym.benchmarks.aggregate import (
    MEAN_METRICS,
    question_values,
    question_values_by_id,
    summarize_seeds,
)
from raggym.benchmarks.cli import compare_paired
from raggym.benchmarks.leaderboard import load_leaderboard
from raggym.benchmarks.report import format_csv, format_json, format_markdown
from raggym.benchmarks.runner import run_suite
from raggym.benchmarks.suite import parse_suite
from raggym_env.cli import main
from raggym_env.store import final_episodes, read_episodes


def small_suite(select="first:6", seeds=(0,), agents=("heuristic", "oracle")):
    return parse_suite(
        {"name": "pair", "seeds": list(seeds),
         "datasets": [{"task": "hotpotqa", "select": select}],
         "agents": [{"agent": name} for name in agents]}
    )  # fmt: skip


@pytest.fixture(scope="module")
def run_a(tmp_path_factory):
    out = tmp_path_factory.mktemp("a")
    board, _ = run_suite(small_suite(), out, progress=None)
    return out, board


def candidate_from(run_a, folder, drop=0):
    """B: A's folder where the heuristic's episodes are the oracle's (less ``drop`` lines)."""
    out, _ = run_a
    shutil.copytree(out, folder)
    oracle = (folder / "episodes" / "hotpotqa" / "oracle.jsonl").read_text().splitlines()
    heuristic = folder / "episodes" / "hotpotqa" / "heuristic.jsonl"
    heuristic.write_text("\n".join(oracle[: len(oracle) - drop]) + "\n")
    return folder


def test_every_mean_has_an_interval_that_round_trips(run_a):
    out, board = run_a
    for cell in board.cells:
        means = {k for k in MEAN_METRICS if cell.metrics.get(k) is not None}
        assert means and set(cell.ci95) == means
        for key, (lo, hi) in cell.ci95.items():
            assert lo <= cell.metrics[key] <= hi, key
        records = final_episodes(read_episodes(out / cell.episodes_file))
        ids = [r.example_id for r in records]
        values = question_values(records, ids)
        assert sum(values["f1"]) / 6 == pytest.approx(cell.metrics["f1"])
        keyed = question_values_by_id(records, ids)  # the same values, keyed by question
        assert {name: list(per_id.values()) for name, per_id in keyed.items()} == values
    saved = json.loads((out / "leaderboard.json").read_text())
    assert saved["cells"][0]["ci95"]["em"] == list(board.cells[0].ci95["em"])
    assert load_leaderboard(out) == board
    assert "em_ci95_lo" in format_csv(board).splitlines()[0]


def test_older_leaderboards_without_intervals_still_read_and_print(run_a):
    out, _ = run_a
    data = json.loads((out / "leaderboard.json").read_text())
    for cell in data["cells"]:
        del cell["ci95"]
    board = load_leaderboard_from(data, out)
    markdown = format_markdown(board)
    assert "| hotpotqa | oracle | 6 | 6 | 1.000 | 1.000 |" in markdown
    assert ",em_ci95_lo," in format_csv(board)  # the columns stay, empty


def load_leaderboard_from(data, out):
    path = out.parent / f"{out.name}-old.json"
    path.write_text(json.dumps(data))
    return load_leaderboard(path)


def test_compare_prints_paired_differences_with_p_values(run_a, tmp_path, capsys):
    out, board = run_a
    b = candidate_from(run_a, tmp_path / "b")
    em_a = board.by_key()[("hotpotqa", "heuristic")].metrics["em"]
    wrong = round((1 - em_a) * 6)  # questions the heuristic missed, the oracle gets right
    assert wrong >= 1
    assert main(["compare", str(out), str(b)]) == 0
    text = capsys.readouterr().out
    assert "Paired by question" in text and "EM p" in text
    paired = compare_paired(board, load_leaderboard(b), out, b)
    cell = next(c for c in paired.cells if c.agent == "heuristic")
    assert cell.same_questions and cell.n == 6
    em = cell.results["em"]
    assert em.test == "mcnemar-exact" and em.diff == pytest.approx(wrong / 6)
    assert em.p_value == pytest.approx(min(1.0, 2 / 2**wrong))  # all discordant pairs favour B
    assert cell.results["f1"].test == "sign-flip-exact"
    oracle = next(c for c in paired.cells if c.agent == "oracle")
    assert oracle.results["em"].diff == 0 and oracle.results["em"].p_value == 1.0
    # Per dataset: each question averaged over the two agents, then the sign-flip test.
    pooled = paired.datasets["hotpotqa"]["em"]
    assert pooled.n == 6 and pooled.diff == pytest.approx(wrong / 12)
    assert main(["compare", str(out), str(b), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["comparable"] and data["cells"][0]["results"]["em"]["p_value"] == em.p_value


def test_differing_question_sets_are_flagged_and_the_intersection_compared(run_a, tmp_path, capsys):
    out, _ = run_a
    b = candidate_from(run_a, tmp_path / "b", drop=2)
    assert main(["compare", str(out), str(b)]) == 0
    text = capsys.readouterr().out
    assert "hotpotqa x heuristic: question sets differ (A 6, B 4); compared on the 4 shared" in text
    assert "| hotpotqa | heuristic | 4 * |" in text


def test_nothing_comparable_exits_non_zero(run_a, tmp_path, capsys):
    out, _ = run_a
    other = tmp_path / "other"
    run_suite(_other_suite(), other, progress=None)
    assert main(["compare", str(out), str(other)]) == 2
    assert "nothing comparable: the runs share no dataset x agent cell" in capsys.readouterr().err
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    shutil.copy(out / "leaderboard.json", lonely / "leaderboard.json")  # no episode files
    assert main(["compare", str(out), str(lonely)]) == 2
    captured = capsys.readouterr()
    assert "no shared cell has a shared question" in captured.err
    assert "not compared: episode file" in captured.out and "is missing" in captured.out


def _other_suite():
    return parse_suite(
        {"name": "other", "datasets": [{"task": "bamboogle", "select": "first:3"}],
         "agents": [{"agent": "heuristic"}]}
    )  # fmt: skip


def test_an_episode_path_outside_the_run_folder_is_refused(run_a, tmp_path):
    out, board = run_a
    data = json.loads((out / "leaderboard.json").read_text())
    data["cells"][0]["episodes_file"] = "../../../etc/passwd"
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "leaderboard.json").write_text(json.dumps(data))
    paired = compare_paired(board, load_leaderboard(evil), out, evil)
    assert "outside the run folder" in paired.cells[0].note and paired.cells[0].n == 0


def test_several_seeds_get_a_mean_and_std_across_seeds(tmp_path):
    board, _ = run_suite(small_suite(select="first:4", seeds=(0, 1), agents=("heuristic",)),
                         tmp_path, progress=None)  # fmt: skip
    assert [c.agent for c in board.cells] == ["heuristic@seed0", "heuristic@seed1"]
    (group,) = summarize_seeds(board)
    assert group.agent == "heuristic" and group.members == ("heuristic@seed0", "heuristic@seed1")
    em = group.metrics["em"]
    assert em.n == 2 and em.mean == pytest.approx(sum(c.metrics["em"] for c in board.cells) / 2)
    assert "## Across seeds" in format_markdown(board)
    saved = json.loads(format_json(board))
    assert saved["across_seeds"][0]["metrics"]["em"]["n"] == 2
    assert load_leaderboard(tmp_path) == board
