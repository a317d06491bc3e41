"""The packaged ``paper`` suite end to end on files in the official layouts.

The question files are a few records of each benchmark in its official layout, the corpora
MedRAG-style chunk folders, the LLM an OpenAI-compatible server on 127.0.0.1 that answers
in the RAG-Gym protocol's format (summaries for the summariser, a JSON query first, then
the gold answer). The dense member is the bundled MiniLM (BGE needs a download).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from raggym.benchmarks.runner import run_suite
from raggym.benchmarks.suite import AgentConfig, load_suite
from raggym.testing.fake_server import fake_openai_server
from raggym_env.retrieval.encoders import ENCODER_PRESETS
from raggym_env.store import read_episodes

DATA = resources.files("raggym_env") / "data"


def _chunk(path: Path, docs: list[tuple[str, str]], prefix: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for i, (title, text) in enumerate(docs):
            row = {"id": f"{prefix}_{i}", "title": title, "content": text}
            row["contents"] = f"{title}. {text}"
            out.write(json.dumps(row) + "\n")


def _paragraphs(records: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(title, " ".join(sentences)) for r in records for title, sentences in r["context"]]


def _data_dir(root: Path) -> dict[str, str]:
    """Official-layout files under ``root``; returns question -> gold answer."""
    gold: dict[str, str] = {}
    hotpot = json.loads((DATA / "hotpotqa_dev_distractor_sample100.json").read_text())[:6]
    (root / "hotpotqa").mkdir(parents=True)
    (root / "hotpotqa/hotpot_dev_fullwiki_v1.json").write_text(json.dumps(hotpot))
    _chunk(root / "corpora/wiki_hotpotqa/chunk/wiki_0.jsonl", _paragraphs(hotpot), "hp")
    wiki = json.loads((DATA / "2wikimultihopqa_dev_sample100.json").read_text())[:6]
    (root / "2wikimultihopqa").mkdir()
    (root / "2wikimultihopqa/dev.json").write_text(json.dumps(wiki))
    _chunk(root / "corpora/wikipedia/chunk/wiki_0.jsonl", _paragraphs(wiki), "wk")
    (root / "bamboogle").mkdir()
    lines = (DATA / "bamboogle_prerelease.tsv").read_text(encoding="utf-8").splitlines()
    (root / "bamboogle/Bamboogle_Prerelease.tsv").write_text("\n".join(lines[:4]) + "\n")
    (root / "medqa").mkdir()
    rows = (DATA / "medqa_us_4options_test_sample100.jsonl").read_text().splitlines()[:3]
    (root / "medqa/phrases_no_exclude_test.jsonl").write_text("\n".join(rows) + "\n")
    _chunk(root / "corpora/medtext/textbooks_0.jsonl", [("Anatomy", "The flexor tendon.")], "tb")
    for r in hotpot + wiki:
        gold[r["question"]] = r["answer"]
    for line in lines[1:4]:
        cells = line.split("\t")
        gold[cells[0]] = cells[4]
    for row in rows:
        record = json.loads(row)
        gold[record["question"]] = record["answer_idx"]
    return gold


def _responder(gold: dict[str, str]) -> Any:
    def respond(messages: list[dict[str, str]], index: int) -> str:
        user = messages[-1]["content"]
        if "### Follow-up Query" in user:
            return "The documents mention it."
        question = user.split("### Original Question\n", 1)[-1].split("### Question\n", 1)[-1]
        matches = [(text, answer) for text, answer in gold.items() if text in question]
        if not matches:
            return "no idea"
        text, answer = matches[0]
        if "### Information-seeking History\n\n" in user:  # nothing searched yet
            query = text[:60].replace('"', "'")
            return f'### Step-by-step Reasoning\nFirst look.\n\n### Structured Output\n```json\n{{"generated_query": "{query}"}}\n```'  # noqa: E501
        return f'### Step-by-step Reasoning\nDone.\n\n### Structured Output\n```json\n{{"predicted_answer": "{answer}"}}\n```'  # noqa: E501

    return respond


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_paper_suite_runs_the_protocol_end_to_end(tmp_path: Path) -> None:
    data = tmp_path / "data"
    gold = _data_dir(data)
    suite = load_suite("paper", data_dir=data)
    assert suite.check_files() == []
    dense = {**suite.retriever_options["dense"], "model": None}  # HNSW as the paper's
    options = {**suite.retriever_options, "dense": dense}
    # MedQA's own dense member (MedCPT's two hub models) becomes the bundled model too,
    # with MedCPT's other settings (CLS pooling, title/text pairs, raw inner products)
    medqa = next(d for d in suite.datasets if d.task == "medqa")
    medcpt = {**ENCODER_PRESETS["medcpt"].to_dict(), "query_model": None}
    medqa_dense = {**medqa.retriever_options["dense"], "model": None, "encoder": medcpt}
    datasets = tuple(
        dataclasses.replace(d, retriever_options={"dense": medqa_dense}) if d is medqa else d
        for d in suite.datasets
    )
    suite = dataclasses.replace(
        suite,
        datasets=datasets,
        retriever_options=options,
        agents=(AgentConfig("react", "react"), AgentConfig("re2search", "re2search")),
        batch_size=4,
    )
    with fake_openai_server(_responder(gold)) as server:
        leaderboard, episodes = run_suite(
            suite, tmp_path / "out", llm=f"openai:{server.url}:m", progress=None
        )
    cells = {(c.dataset, c.agent): c for c in leaderboard.cells}
    assert len(cells) == 8
    for (dataset, _agent), cell in cells.items():
        assert not cell.errors
        metrics = cell.metrics
        if dataset == "medqa":
            assert metrics["paper_acc"] == 1.0 and metrics["accuracy"] == 1.0
        else:
            assert metrics["paper_em"] == 1.0 and metrics["paper_f1"] == 1.0
    hotpot = list(read_episodes(tmp_path / "out/episodes/hotpotqa-fullwiki/react.jsonl"))
    assert len(hotpot) == 6
    first = hotpot[0]
    assert [s.action["type"] for s in first.steps] == ["search", "answer"]
    assert first.run_card is not None
    assert first.run_card["config"]["suite"]["protocol"] == "rag-gym"
    prompt = first.steps[1].extra["prompt"][1]["content"]
    assert prompt.startswith("### Information-seeking History\nQuery: ")
    assert "Document [0] (Title: " in prompt
    medqa = list(read_episodes(tmp_path / "out/episodes/medqa/re2search.jsonl"))
    assert "{'A': " in medqa[0].steps[0].extra["prompt"][1]["content"]
    shutil.rmtree(tmp_path / "out")
