"""The HTML report's data, without a browser: intervals, latency units, configurations, plots."""

import json
import re
import sys

import pytest

from raggym.benchmarks.html_report import (
    cell_configurations,
    document_texts,
    render_html,
    report_data,
)
from raggym.benchmarks.leaderboard import CellResult, Leaderboard
from raggym_env.episode import EpisodeRecord, RetrievedDoc, StepRecord
from raggym_env.types import Document

SUITE = {
    "name": "tiny",
    "retriever": "bm25",
    "retriever_options": {},
    "k": 3,
    "max_steps": 4,
    "seeds": [0, 1],
    "llm": {"spec": "mock:echo", "options": {}},
    "protocol": "raggym",
    "datasets": [{"name": "hotpotqa", "task": "hotpotqa", "retriever": "dense",
                  "retriever_options": {"model": "tiny"}}],
    "agents": [{"name": "react", "agent": "react++", "critic": "gold", "n": 4,
                "options": {"temperature": 0.7}}],
}  # fmt: skip


def cell(agent, **metrics):
    return CellResult(
        dataset="hotpotqa", agent=agent, task="hotpotqa", multiple_choice=False, selected=2,
        finished=2, metrics={"em": 0.5, "f1": 0.6, **metrics},
        ci95={"em": (0.25, 0.75)} if agent.endswith("0") else {},
    )  # fmt: skip


def record(seed, text="Paris"):
    step = StepRecord(
        index=0,
        action={"type": "search", "text": "q"},
        retrieved=[RetrievedDoc("d1", "Doc one", 2.0)],
        evidence_recall=1.0,
    )
    return EpisodeRecord(env_id="RAGGym/HotpotQA-v0", env_version=0, example_id=f"e{seed}",
                         question="?", steps=[step], final_answer=text,
                         gold={"answers": ["Paris"], "evidence_titles": ["Doc one"]},
                         metrics={"em": 1.0}, terminated=True, seed=seed)  # fmt: skip


def board(cells):
    return Leaderboard.from_cells(cells, suite=SUITE, llm="mock:echo", created_at="2026-01-01")


def test_intervals_sit_beside_means_and_only_where_recorded():
    data = report_data(board([cell("react@seed0"), cell("react@seed1")]), {}, charts=False)
    em = data["full"]["columns"].index("EM")
    assert data["full"]["rows"][0][em] == "0.500 [0.250, 0.750]"
    assert data["full"]["rows"][1][em] == "0.500"
    assert data["summary"]["rows"][0][1:3] == ["0.500 [0.250, 0.750]", "0.600"]


@pytest.mark.parametrize(
    ("values", "title", "shown"),
    [((0.0123, 0.5), "ms/q p50", ["12.30", "500.00"]),
     ((0.0004, None), "ms/q p50", ["0.400", "-"]),
     ((0.25, 3.5), "s/q p50", ["0.250", "3.50"])],
)  # fmt: skip
def test_latency_columns_read_in_the_unit_their_title_names(values, title, shown):
    cells = [cell(f"a{i}", latency_q_p50=v, wall_s=62.5) for i, v in enumerate(values)]
    data = report_data(board(cells), {}, charts=False)
    columns = data["full"]["columns"]
    assert title in columns
    c = columns.index(title)
    assert [row[c] for row in data["full"]["rows"]] == shown
    wall = columns.index("wall s")
    assert data["full"]["rows"][0][wall] == "62.50"
    for column in columns:  # no value carries a unit of its own that could contradict a title
        if "/q" in column or "/step" in column or column == "wall s":
            i = columns.index(column)
            assert not any(re.search(r"\d\s*m?s$", row[i]) for row in data["full"]["rows"])


def test_configuration_of_each_cell_comes_from_the_suite_and_the_episodes():
    episodes = {("hotpotqa", "react@seed1"): [record(1)], ("hotpotqa", "extra"): [record(7)]}
    rows = cell_configurations(board([cell("react@seed1")]), episodes)
    assert rows[0] == {
        "dataset": "hotpotqa", "agent": "react@seed1",
        "agent config": "react++ critic=gold n=4 temperature=0.7",
        "retriever": "dense (model=tiny)", "k": "3", "max steps": "4", "LLM": "mock:echo",
        "seed": "1", "env": "RAGGym/HotpotQA-v0",
    }  # fmt: skip
    assert rows[1]["agent"] == "extra" and rows[1]["agent config"] == "-"
    assert rows[1]["seed"] == "0, 1"  # the suite's seeds


def test_document_texts_are_looked_up_clipped_and_missing_ids_skipped():
    class Corpus:
        def get(self, doc_id):
            if doc_id != "d1":
                raise KeyError(doc_id)
            return Document("d1", "Doc one", "x" * 50)

    other = record(0)
    other.steps[0].retrieved.append(RetrievedDoc("gone", "Gone", 1.0))
    texts = document_texts([record(0), other], Corpus(), limit=10)
    assert list(texts) == ["d1"]
    assert texts["d1"].startswith("x" * 10) and "40 more characters" in texts["d1"]


def test_document_text_cannot_close_the_data_element():
    hostile = "</script><script>alert(1)</script>"
    page = render_html(board([cell("react@seed0")]), {("hotpotqa", "react@seed0"): [record(0)]},
                       documents={"hotpotqa": {"d1": hostile}}, charts=False)  # fmt: skip
    assert hostile not in page and page.count("</script>") == 2
    data = page.split('id="report-data">', 1)[1].split("</script>", 1)[0]
    assert json.loads(data)["texts"] == {"hotpotqa": {"d1": hostile}}


def test_without_matplotlib_the_page_says_how_to_get_the_plots(monkeypatch):
    pytest.importorskip("matplotlib")
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    episodes = {("hotpotqa", "react@seed0"): [record(0)]}
    data = report_data(board([cell("react@seed0")]), episodes)
    analysis = data["analysis"]
    assert "chart" not in analysis
    assert "pip install 'raggym[report]'" in analysis["chart_note"]
    (dataset,) = analysis["datasets"]
    assert "img" not in dataset and "pip install 'raggym[report]'" in dataset["note"]
    assert dataset["agents"][0]["outcomes"]["correct"] == 1  # the numbers stay
