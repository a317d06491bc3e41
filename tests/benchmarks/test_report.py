"""Benchmark reports: Markdown, CSV, JSON, PNG and HTML, each written atomically."""

import csv
import dataclasses
import json
import sys

import pytest

from raggym.agents.baselines import GoldEvidenceOracle, QuestionSearchHeuristic
from raggym.agents.rollout import rollout
from raggym.benchmarks import report
from raggym.benchmarks.aggregate import METRIC_COLUMNS, aggregate_cell
from raggym.benchmarks.html_report import render_html, report_data
from raggym.benchmarks.leaderboard import FailedItem, Leaderboard, load_leaderboard
from raggym.benchmarks.report import (
    REPORT_FILES,
    format_json,
    format_markdown,
    png_available,
    write_reports,
)
from raggym.benchmarks.tables import format_metric
from raggym_env import RAGEnv

INJECTION = "</script><img src=x onerror=alert(1)>"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def build_run(agents=(("heuristic", QuestionSearchHeuristic), ("oracle", GoldEvidenceOracle))):
    """An open-QA and a multiple-choice dataset, two agents, one crashed item, one odd question."""
    episodes, cells = {}, []
    for dataset, n, mc in (("hotpotqa", 6, False), ("medqa", 4, True)):
        for name, policy in agents:
            records = rollout(RAGEnv(dataset, limit=n), policy())
            if (dataset, name) == ("hotpotqa", "heuristic"):
                records[2] = dataclasses.replace(
                    records[2], error="RuntimeError: boom", final_answer=None, metrics={}
                )
                records[3] = dataclasses.replace(records[3], question="Is this safe? " + INJECTION)
            episodes[(dataset, name)] = records
            cell = aggregate_cell(
                records,
                [r.example_id for r in records],
                dataset=dataset,
                agent=name,
                task=dataset,
                multiple_choice=mc,
                wall_s=0.5,
                played=n,
                episodes_file=f"episodes/{dataset}__{name}.jsonl",
            )
            cells.append(cell)
    leaderboard = Leaderboard.from_cells(
        cells,
        suite={"name": "smoke", "description": "Two tiny offline datasets."},
        run_card={"package_version": "0.1.0", "git_revision": "abc123", "git_dirty": False},
        created_at="2026-11-21T03:50:00+00:00",
    )
    return leaderboard, episodes


@pytest.fixture(scope="module")
def run():
    return build_run()


@pytest.fixture(scope="module")
def leaderboard(run):
    return run[0]


def table_rows(markdown, first_cell):
    """The cells of the Markdown table rows that start with ``first_cell``."""
    return [
        [c.strip() for c in line.strip("|").split(" | ")]
        for line in markdown.splitlines()
        if line.startswith(f"| {first_cell} |")
    ]


def test_writes_every_format_and_leaves_no_temp_files(run, tmp_path):
    leaderboard, episodes = run
    written = write_reports(leaderboard, episodes, tmp_path / "out")
    expected = set(REPORT_FILES) if png_available() else set(REPORT_FILES) - {"png"}
    assert set(written) == expected
    for fmt, path in written.items():
        assert path == tmp_path / "out" / REPORT_FILES[fmt]
        assert path.stat().st_size > 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        REPORT_FILES[f] for f in expected
    )


def test_summary_table_has_headline_columns_an_average_and_marks_the_best(leaderboard):
    markdown = format_markdown(leaderboard)
    assert (
        "| agent | hotpotqa EM | hotpotqa F1 | hotpotqa paper-EM | hotpotqa paper-F1 "
        "| medqa Acc | medqa paper-Acc | avg F1/Acc |"
    ) in markdown
    # Each dataset's mean carries its 95% bootstrap interval; the average (a mean of
    # means) does not. One of six questions right: resamples range over 0/6 .. 3/6.
    assert table_rows(markdown, "heuristic") == [
        ["heuristic", *["0.167 [0.000, 0.500]"] * 4, *["0.000 [0.000, 0.000]"] * 2, "0.083"]
    ]
    assert table_rows(markdown, "oracle") == [
        ["oracle", *["**1.000 [1.000, 1.000]**"] * 6, "**1.000**"]
    ]


def test_summary_leaves_out_paper_columns_that_no_cell_has(leaderboard):
    # Leaderboards of episodes recorded before the paper's scoring existed keep their shape.
    cells = [
        dataclasses.replace(
            cell, metrics={k: v for k, v in cell.metrics.items() if not k.startswith("paper_")}
        )
        for cell in leaderboard.cells
    ]
    old = dataclasses.replace(leaderboard, cells=tuple(cells))
    assert "| agent | hotpotqa EM | hotpotqa F1 | medqa Acc | avg F1/Acc |" in format_markdown(old)


def test_full_table_has_every_metric_formatted_per_kind(leaderboard):
    markdown = format_markdown(leaderboard)
    header = "| dataset | agent | n | finished | " + " | ".join(t for _, t in METRIC_COLUMNS)
    assert header + " |" in markdown
    found = table_rows(markdown, "hotpotqa") + table_rows(markdown, "medqa")
    rows = {(r[0], r[1]): r for r in found}
    assert len(rows) == 4
    column = {key: i + 4 for i, (key, _) in enumerate(METRIC_COLUMNS)}
    hotpot = rows[("hotpotqa", "heuristic")]
    assert hotpot[2:4] == ["6", "5"]
    assert hotpot[column["em"]] == "0.167 [0.000, 0.500]"
    assert hotpot[column["accuracy"]] == "-"
    assert hotpot[column["steps"]] == "2.00 [2.00, 2.00]"
    assert hotpot[column["failures"]] == "1"
    assert hotpot[column["wall_s"]] == "0.50 s"
    assert hotpot[column["tokens_per_q"]] == "-"
    assert hotpot[column["latency_step_p50"]].endswith(" ms")
    assert hotpot[column["paper_em"]] == hotpot[column["paper_f1"]] == "0.167 [0.000, 0.500]"
    assert hotpot[column["paper_acc"]] == "-"
    medqa = rows[("medqa", "oracle")]
    assert medqa[column["accuracy"]] == medqa[column["paper_acc"]] == "1.000 [1.000, 1.000]"
    assert medqa[column["em"]] == medqa[column["f1"]] == "-"
    assert medqa[column["paper_em"]] == medqa[column["paper_f1"]] == "-"


def test_failed_items_are_listed_with_their_errors(run):
    leaderboard, episodes = run
    failed = episodes[("hotpotqa", "heuristic")][2]
    markdown = format_markdown(leaderboard)
    assert "### hotpotqa / heuristic: 1 of 6 failed" in markdown
    assert f"- `{failed.example_id}`: `RuntimeError: boom`" in markdown
    assert markdown.count("failed\n") == 1  # no other cell is listed


def test_failures_beyond_the_first_few_are_counted_and_clean_runs_say_so(leaderboard):
    cells = list(leaderboard.cells)
    cells[0] = dataclasses.replace(
        cells[0],
        errors=tuple(FailedItem(f"q{i}", "TimeoutError: slow") for i in range(8)),
        metrics={**cells[0].metrics, "failures": 8.0},
    )
    markdown = format_markdown(leaderboard.replace_cells(cells))
    assert markdown.count("TimeoutError: slow") == 5
    assert "- … and 3 more (see `episodes/hotpotqa__heuristic.jsonl`)" in markdown
    clean = [c for c in leaderboard.cells if not c.errors]
    assert "None: every selected question ran to its end." in format_markdown(
        leaderboard.replace_cells(clean)
    )


def test_markdown_header_and_escaping(leaderboard):
    cells = [dataclasses.replace(leaderboard.cells[0], agent="a|b")]
    markdown = format_markdown(dataclasses.replace(leaderboard, cells=tuple(cells), llm="openai:m"))
    assert markdown.startswith("# Benchmark: smoke\n\nTwo tiny offline datasets.\n")
    assert "- **raggym**: 0.1.0" in markdown and "- **git**: abc123" in markdown
    assert "- **LLM**: openai:m" in markdown
    assert "| a\\|b |" in markdown


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [
        ("em", 0.5, "0.500"),
        ("accuracy", None, "-"),
        ("f1", float("nan"), "-"),
        ("searches", 1.256, "1.26"),
        ("failures", 3.0, "3"),
        ("latency_q_p50", 0.0123, "12.3 ms"),
        ("latency_step_p99", 0.000004, "0.004 ms"),
        ("latency_q_p95", 2.5, "2.50 s"),
        ("tokens_per_q", 1234.4, "1,234"),
        ("throughput", 3.14159, "3.14"),
    ],
)
def test_format_metric(key, value, shown):
    assert format_metric(key, value) == shown


def test_csv_has_one_row_per_cell_and_every_metric_column(run, tmp_path):
    leaderboard, episodes = run
    path = write_reports(leaderboard, episodes, tmp_path, formats=["csv"])["csv"]
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        fields = reader.fieldnames
    assert len(rows) == len(leaderboard.cells) == 4
    for name in ("dataset", "agent", "task", "selected", "finished"):
        assert name in fields
    assert all(key in fields for key, _ in METRIC_COLUMNS)
    for row, cell in zip(rows, leaderboard.cells, strict=True):
        assert (row["dataset"], row["agent"], int(row["selected"])) == (
            cell.dataset,
            cell.agent,
            cell.selected,
        )
        for key, _ in METRIC_COLUMNS:
            value = cell.metrics[key]
            if value is None:
                assert row[key] == ""
            else:
                assert float(row[key]) == value


def test_json_round_trips(run, tmp_path):
    leaderboard, episodes = run
    path = write_reports(leaderboard, episodes, tmp_path, formats=("json",))["json"]
    text = path.read_text()
    assert json.loads(text) == leaderboard.to_dict()
    assert text == json.dumps(leaderboard.to_dict(), sort_keys=True, indent=2) + "\n"
    assert load_leaderboard(tmp_path) == leaderboard == Leaderboard.from_dict(json.loads(text))
    assert format_json(load_leaderboard(path)) == text


def test_the_model_is_frozen_and_built_from_its_cells(leaderboard):
    assert leaderboard.datasets == ["hotpotqa", "medqa"]
    assert leaderboard.agents == ["heuristic", "oracle"]
    assert [c.key for c in leaderboard.failed_cells()] == [("hotpotqa", "heuristic")]
    assert leaderboard.run_card.git_revision == "abc123" and leaderboard.suite_name == "smoke"
    with pytest.raises(dataclasses.FrozenInstanceError):
        leaderboard.cells[0].selected = 0  # type: ignore[misc]


def test_png_is_a_real_png(run, tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib not installed")
    leaderboard, episodes = run
    path = write_reports(leaderboard, episodes, tmp_path, formats=["png"])["png"]
    assert path.read_bytes().startswith(PNG_MAGIC)


def test_png_is_skipped_without_matplotlib(run, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert not png_available()
    leaderboard, episodes = run
    written = write_reports(leaderboard, episodes, tmp_path)
    assert "png" not in written and "md" in written
    assert not (tmp_path / "leaderboard.png").exists()


def test_a_failed_write_keeps_the_old_file_and_no_temp_file(run, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib", reason="matplotlib not installed")
    leaderboard, episodes = run
    old = write_reports(leaderboard, episodes, tmp_path, formats=["png"])["png"].read_bytes()

    def broken(leaderboard, handle):
        handle.write(b"half a chart")
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(report, "plot_leaderboard", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_reports(leaderboard, episodes, tmp_path, formats=["png"])
    assert (tmp_path / "leaderboard.png").read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["leaderboard.png"]


def test_bad_arguments_are_rejected(leaderboard, tmp_path):
    with pytest.raises(ValueError, match="unknown report formats"):
        write_reports(leaderboard, {}, tmp_path, formats=["md", "pdf"])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"suite": {}}, "cells"),
        ({"cells": "abc"}, "cells"),
        ({"cells": [{"dataset": "d"}]}, "lacks the fields"),
        ({"cells": [{"dataset": "d", "agent": "a", "task": "t", "multiple_choice": False,
                     "selected": -1, "finished": 0}]}, "selected"),
        ({"cells": [{"dataset": "d", "agent": "a", "task": "t", "multiple_choice": False,
                     "selected": 1, "finished": 0, "metrics": {"em": "high"}}]}, "metric 'em'"),
        ({"cells": [], "run_card": []}, "run_card"),
    ],
)  # fmt: skip
def test_malformed_leaderboards_are_rejected_once_when_read(data, message):
    with pytest.raises(ValueError, match=message):
        Leaderboard.from_dict(data)


def test_html_is_self_contained_and_its_data_cannot_close_the_script(run):
    leaderboard, episodes = run
    page = render_html(leaderboard, episodes)
    assert page.count("</script>") == 2  # the data element's and the code's own
    assert INJECTION not in page and "http://" not in page and "https://" not in page
    start = page.index('id="report-data">') + len('id="report-data">')
    data = json.loads(page[start : page.index("</script>", start)])
    assert data == json.loads(json.dumps(report_data(leaderboard, episodes)))
    assert len(data["episodes"]) == sum(len(r) for r in episodes.values())
    assert INJECTION in [e["q"].removeprefix("Is this safe? ") for e in data["episodes"]]
    statuses = [e["st"] for e in data["episodes"]]
    assert statuses.count("failed") == 1


def test_html_leaves_out_prompts_and_shortens_long_outputs(run):
    leaderboard, episodes = run
    record = episodes[("hotpotqa", "oracle")][0]
    step = dataclasses.replace(
        record.steps[0],
        raw_text="x" * 10_000,
        extra={"prompt": [{"role": "user", "content": "SECRET PROMPT"}], "fields": {"a": 1}},
    )
    record = dataclasses.replace(record, steps=[step, *record.steps[1:]])
    page = render_html(leaderboard, {("hotpotqa", "oracle"): [record]})
    assert "SECRET PROMPT" not in page
    assert "x" * 4000 + "… [6,000 more characters]" in page
    assert "x" * 4001 not in page


def test_a_stored_nan_metric_gives_strict_json_with_null(tmp_path):
    env = RAGEnv("hotpotqa", limit=2)
    records = rollout(env, GoldEvidenceOracle())
    data = records[0].to_dict()
    data["metrics"]["em"] = float("nan")
    path = tmp_path / "e.jsonl"
    path.write_text(json.dumps(data) + "\n" + json.dumps(records[1].to_dict()) + "\n")
    assert "NaN" in path.read_text()
    from raggym_env.store import read_episodes

    stored = list(read_episodes(path))
    cell = aggregate_cell(
        stored, [r.example_id for r in records], dataset="d", agent="a", task="hotpotqa",
        multiple_choice=False,
    )  # fmt: skip
    assert cell.metrics["em"] == pytest.approx(0.5)
    # Even a NaN that reaches a cell directly is written as null, never as a bare token.
    broken = dataclasses.replace(cell, metrics={**cell.metrics, "f1": float("nan")})
    cells = [cell, dataclasses.replace(broken, agent="b")]
    text = format_json(Leaderboard.from_cells(cells, suite={"name": "s"}))
    assert "NaN" not in text and "Infinity" not in text
    loaded = json.loads(text, parse_constant=lambda token: pytest.fail(f"bare {token}"))
    assert [c["metrics"]["f1"] for c in loaded["cells"]][1] is None


def test_lone_surrogates_in_an_older_episode_file_break_no_report(run, tmp_path):
    from raggym_env.store import read_episodes

    leaderboard, episodes = run
    key = ("hotpotqa", "oracle")
    old = tmp_path / "old.jsonl"  # as older versions wrote it: \ud800 escapes
    bad = [
        dataclasses.replace(r, question=r.question + " \ud800", final_answer="x \udfff")
        for r in episodes[key]
    ]
    old.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in bad), encoding="ascii")
    assert "\\ud800" in old.read_text(encoding="ascii")
    reread = {**episodes, key: list(read_episodes(old))}
    written = write_reports(leaderboard, reread, tmp_path / "out")
    assert "html" in written and "\ufffd" in written["html"].read_text(encoding="utf-8")
    # in-memory strings with lone surrogates (any caller's records) render too
    written = write_reports(leaderboard, {**episodes, key: bad}, tmp_path / "out2")
    for fmt, path in written.items():
        if fmt != "png":
            path.read_bytes().decode("utf-8")  # strict UTF-8 everywhere
