"""Benchmark loaders, selection, hub conversion and task assembly (all offline)."""

from __future__ import annotations

import json
import subprocess
import sys
import types
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from raggym_env import clear_caches
from raggym_env.availability import MissingDependencyError
from raggym_env.corpora import Corpus, load_corpus, pooled_corpus, read_json_records
from raggym_env.tasks import (
    DATA_DIR,
    TASK_NAMES,
    HubSource,
    MissingEvidenceWarning,
    PlaceholderCorpusWarning,
    Task,
    default_corpus,
    load_bamboogle,
    load_custom,
    load_examples,
    load_hotpotqa,
    load_medqa,
    load_task,
    load_twowiki,
    resolve_task_name,
    sample_path,
    select_examples,
)
from raggym_env.tasks.hotpotqa import hotpotqa_examples
from raggym_env.tasks.twowiki import twowiki_examples
from raggym_env.types import QAExample

HOTPOT = "hotpotqa/hotpot_dev_distractor_first500.json"
TWOWIKI = "2wikimultihopqa/2wiki_dev_sample500.json"
BAMBOOGLE_TSV = "bamboogle/Bamboogle_Prerelease.tsv"
BAMBOOGLE_JSONL = "bamboogle/flashrag_bamboogle_test.jsonl"
MEDQA = "medqa/medqa_us_4options_test.jsonl"
WIKI = "wiki_corpus/wiki_passages_2wiki6119.json"


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    clear_caches()
    yield
    clear_caches()


def as_dicts(examples: list[QAExample] | tuple[QAExample, ...]) -> list[dict[str, Any]]:
    return [ex.to_dict() for ex in examples]


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# --- loaders on the real files -------------------------------------------------------------


def test_hotpotqa_dev_file(shared_data_dir: Path) -> None:
    examples = load_hotpotqa(shared_data_dir / HOTPOT)
    assert len(examples) == 500
    first = examples[0]
    assert first.id == "5a8b57f25542995d1e6f1371"
    assert first.question == "Were Scott Derrickson and Ed Wood of the same nationality?"
    assert first.answers == ("yes",)
    assert first.options is None
    assert first.answer_letter is None
    assert first.evidence.titles == ("Scott Derrickson", "Ed Wood")
    assert first.evidence.sentences == (("Scott Derrickson", 0), ("Ed Wood", 0))
    assert first.evidence.triples == ()
    assert first.evidence.doc_ids == ()
    assert dict(first.meta) == {"type": "comparison", "level": "hard"}
    assert examples[-1].id == "5a8f45ca5542997ba9cb320e"
    assert as_dicts(load_examples("hotpotqa", shared_data_dir / HOTPOT)) == as_dicts(examples)


def test_twowiki_dev_file(shared_data_dir: Path) -> None:
    examples = load_twowiki(shared_data_dir / TWOWIKI)
    assert len(examples) == 500
    first = examples[0]
    assert first.id == "91edc89c0bdc11eba7f7acde48001122"
    assert first.question == "Where does the founder of Les Films Du Losange work at?"
    assert first.answers == ("Cahiers du cinéma",)
    assert first.evidence.titles == ("Les films du losange", "Éric Rohmer")
    assert first.evidence.sentences == (("Les films du losange", 0), ("Éric Rohmer", 2))
    assert first.evidence.triples == (
        ("Les films du losange", "founded by", "Éric Rohmer"),
        ("Éric Rohmer", "employer", "Cahiers du cinéma"),
    )
    assert dict(first.meta) == {"type": "compositional"}
    assert {ex.meta["type"] for ex in examples} == {
        "compositional",
        "comparison",
        "bridge_comparison",
        "inference",
    }
    for alias in ("2wiki", "2WikiMultihopQA", " 2WIKI "):
        loaded = load_examples(alias, shared_data_dir / TWOWIKI)
        assert [ex.id for ex in loaded] == [ex.id for ex in examples]


def test_twowiki_answer_aliases_and_evidence_ids(tmp_path: Path, shared_data_dir: Path) -> None:
    record = dict(read_json_records(shared_data_dir / TWOWIKI)[0])
    record["answer_aliases"] = ["Cahiers du Cinema", "Cahiers du cinéma", " "]
    record["evidences_id"] = [["Q1", "P112", "Q2"]]
    (example,) = load_twowiki(write_json(tmp_path / "dev.json", [record]))
    assert example.answers == ("Cahiers du cinéma", "Cahiers du Cinema")
    assert example.meta["evidences_id"] == [["Q1", "P112", "Q2"]]


def test_bamboogle_tsv_and_flashrag_agree(shared_data_dir: Path) -> None:
    sheet = load_bamboogle(shared_data_dir / BAMBOOGLE_TSV)
    flashrag = load_bamboogle(shared_data_dir / BAMBOOGLE_JSONL)
    assert len(sheet) == len(flashrag) == 125
    assert [ex.id for ex in sheet] == [f"bamboogle-{i}" for i in range(125)]
    assert [ex.id for ex in flashrag] == [ex.id for ex in sheet]
    assert [ex.question for ex in flashrag] == [ex.question for ex in sheet]
    assert sheet[0].question == (
        "Who was president of the United States in the year that Citibank was founded?"
    )
    assert sheet[0].answers == ("james madison",)
    assert flashrag[0].meta == {"source_id": "test_0"}
    # The one row with a second answer in the authors' sheet (FlashRAG kept only the first).
    assert sheet[47].question == "Who is the mother of the father of George Washington?"
    assert sheet[47].answers == ("Mildred Warner", "Mildred Gale")
    assert flashrag[47].answers == ("Mildred Warner",)
    assert [i for i, ex in enumerate(sheet) if len(ex.answers) > 1] == [47]
    # Answers are stripped ("George VI " in the sheet, "George VI\n" in FlashRAG).
    assert sheet[74].answers == flashrag[74].answers == ("George VI",)
    assert [ex.answers[0] for ex in sheet] == [ex.answers[0] for ex in flashrag]
    assert sheet[116].question.endswith('“Avocado Capital of the World"?')


def test_bamboogle_format_detected_by_content(tmp_path: Path, shared_data_dir: Path) -> None:
    sheet = (shared_data_dir / BAMBOOGLE_TSV).read_text(encoding="utf-8")
    as_txt = tmp_path / "bamboogle.txt"
    as_txt.write_text(sheet, encoding="utf-8")
    assert len(load_bamboogle(as_txt)) == 125
    lines = (shared_data_dir / BAMBOOGLE_JSONL).read_text(encoding="utf-8")
    as_data = tmp_path / "bamboogle.data"
    as_data.write_text(lines, encoding="utf-8")
    assert len(load_examples("bamboogle", as_data)) == 125


def test_truncated_bamboogle_tsv_is_an_error(tmp_path: Path, shared_data_dir: Path) -> None:
    sheet = (shared_data_dir / BAMBOOGLE_TSV).read_bytes()
    assert not sheet.endswith(b"\n")  # the authors' file has no final newline: still fine
    cut = tmp_path / "bamboogle.tsv"
    cut.write_bytes(sheet[: sheet.rindex(b"One World,") + len(b"One World,")])
    with pytest.raises(ValueError, match=r"bamboogle\.tsv:126: the file ends inside this row"):
        load_bamboogle(cut)
    cut.write_bytes(sheet[: sheet.rindex(b"One World,") + len(b"One World,")] + b"\r\n")
    assert load_bamboogle(cut)[-1].answers == ("One World,",)  # a complete (short) row


def test_medqa_test_file(shared_data_dir: Path) -> None:
    examples = load_medqa(shared_data_dir / MEDQA)
    assert len(examples) == 1273
    first = examples[0]
    assert first.id == "medqa-test-0"
    assert first.question.startswith("A junior orthopaedic surgery resident")
    assert first.answer_letter == "B"
    assert first.answers == ("B", "Tell the attending that he cannot fail to disclose this mistake")
    assert first.options is not None
    assert sorted(first.options) == ["A", "B", "C", "D"]
    assert dict(first.meta) == {"meta_info": "step1"}
    assert examples[-1].id == "medqa-test-1272"
    for ex in examples:
        assert ex.is_multiple_choice
        assert ex.options is not None
        assert list(ex.options) == ["A", "B", "C", "D"]
        assert ex.answers[0] == ex.answer_letter
        assert ex.options[ex.answer_letter] == ex.answers[1]
    letters = {letter: sum(ex.answer_letter == letter for ex in examples) for letter in "ABCD"}
    assert letters == {"A": 353, "B": 309, "C": 346, "D": 265}
    assert load_medqa(shared_data_dir / MEDQA, split="dev")[5].id == "medqa-dev-5"


# --- bundled samples -----------------------------------------------------------------------


def test_bundled_samples_counts_and_content(shared_data_dir: Path) -> None:
    counts = {name: len(load_examples(name)) for name in ("hotpotqa", "2wiki", "bamboogle")}
    counts["medqa"] = len(load_examples("medqa"))
    assert counts == {"hotpotqa": 100, "2wiki": 100, "bamboogle": 125, "medqa": 100}
    assert as_dicts(load_examples("hotpotqa")) == as_dicts(
        load_hotpotqa(shared_data_dir / HOTPOT)[:100]
    )
    assert as_dicts(load_examples("2wikimultihopqa")) == as_dicts(
        load_twowiki(shared_data_dir / TWOWIKI)[:100]
    )
    assert as_dicts(load_examples("bamboogle")) == as_dicts(
        load_bamboogle(shared_data_dir / BAMBOOGLE_TSV)
    )
    assert as_dicts(load_examples("medqa")) == as_dicts(load_medqa(shared_data_dir / MEDQA)[:100])


def test_bundled_files_and_notice() -> None:
    allowed = (".json", ".jsonl", ".tsv", ".md")
    files = sorted(p.name for p in DATA_DIR.iterdir() if p.is_file())
    assert all(name.endswith(allowed) for name in files), files  # package-data globs
    notice = (DATA_DIR / "NOTICE.md").read_text(encoding="utf-8")
    for name in TASK_NAMES:
        if name not in ("custom", "hotpotqa-fullwiki"):  # user questions; fullwiki's file
            assert sample_path(name).is_file()
            assert sample_path(name).name in notice
    for licence in ("CC BY-SA 4.0", "Apache-2.0", "MIT"):
        assert licence in notice
    for author in ("Yang et al.", "Ho et al.", "Press et al.", "Jin et al."):
        assert author in notice


# --- names and selection -------------------------------------------------------------------


def test_task_names_resolve_case_insensitively() -> None:
    assert resolve_task_name("HotpotQA") == "hotpotqa"
    assert resolve_task_name("2WIKI") == "2wikimultihopqa"
    assert resolve_task_name(" medqa ") == "medqa"
    with pytest.raises(ValueError, match=r"unknown task 'nq'; valid names: hotpotqa, 2wikimulti"):
        load_examples("nq")
    with pytest.raises(ValueError, match="2wiki"):
        load_task("musique")


def test_select_semantics() -> None:
    everything = load_examples("hotpotqa")
    ids = [ex.id for ex in everything]

    def chosen(select: str | None = None, limit: int | None = None) -> list[str]:
        return [ex.id for ex in load_examples("hotpotqa", select=select, limit=limit)]

    assert chosen() == ids
    assert chosen("first:10") == ids[:10]
    assert chosen("last:10") == ids[-10:]
    assert chosen("first:0") == chosen("last:0") == chosen(limit=0) == []
    assert chosen("first:1000") == chosen("last:1000") == chosen("sample:1000@3") == ids
    assert chosen(limit=5) == ids[:5]
    assert chosen("last:20", limit=5) == ids[80:85]
    sample = chosen("sample:10@0")
    assert sample == chosen("sample:10@0")  # seeded
    assert sample != chosen("sample:10@1")
    positions = [ids.index(i) for i in sample]
    assert positions == sorted(positions)  # original order kept
    expected = sorted(np.random.default_rng(0).choice(100, size=10, replace=False).tolist())
    assert positions == expected
    assert select_examples([1, 2, 3], " first:2 ") == [1, 2]


@pytest.mark.parametrize("select", ["random:5", "first:-1", "sample:5", "first:x", "first", ""])
def test_invalid_select_is_rejected(select: str) -> None:
    with pytest.raises(ValueError, match=r"invalid select .*first:N, last:N, sample:N@SEED"):
        load_examples("hotpotqa", select=select)


def test_invalid_limit_is_rejected() -> None:
    with pytest.raises(ValueError, match="limit must be a non-negative integer"):
        load_examples("hotpotqa", limit=-1)


# --- load_task and corpora -----------------------------------------------------------------


def test_hotpotqa_task_attaches_gold_document_ids() -> None:
    task = load_task("hotpotqa")
    assert isinstance(task, Task)
    assert task.name == "hotpotqa"
    assert not task.multiple_choice
    assert task.source == str(sample_path("hotpotqa"))
    assert len(task.examples) == 100
    assert len(task.corpus) == 991
    for ex in task.examples:
        assert len(ex.evidence.doc_ids) >= 2
        assert len(ex.evidence.doc_ids) == len(ex.evidence.titles)
        assert [task.corpus.get(i).title for i in ex.evidence.doc_ids] == list(ex.evidence.titles)
    assert "examples=100" in repr(task)


def test_default_corpus_pools_every_record_not_just_the_selection() -> None:
    full = load_task("hotpotqa")
    few = load_task("hotpotqa", select="first:5")
    assert len(few.examples) == 5
    assert few.corpus is full.corpus  # cached per (file, mtime)
    assert len(few.corpus) == 991
    assert few.corpus is default_corpus("hotpotqa")


def test_twowiki_task_maps_colliding_titles_to_all_documents(shared_data_dir: Path) -> None:
    task = load_task("2wiki", shared_data_dir / TWOWIKI)
    assert task.name == "2wikimultihopqa"
    assert len(task.corpus) == 3356
    extra = 0
    for ex in task.examples:
        titles = {task.corpus.get(i).title for i in ex.evidence.doc_ids}
        assert titles == set(ex.evidence.titles)
        extra += len(ex.evidence.doc_ids) > len(ex.evidence.titles)
    assert extra == 15  # questions whose gold titles have two paragraphs in this file


def test_bamboogle_and_medqa_get_the_placeholder_corpus(shared_data_dir: Path) -> None:
    bamboogle = load_task("bamboogle")
    medqa = load_task("medqa", shared_data_dir / MEDQA, select="sample:20@7")
    assert bamboogle.corpus is medqa.corpus
    assert bamboogle.corpus.name.startswith("placeholder")
    hotpot = pooled_corpus(sample_path("hotpotqa"))
    twowiki = pooled_corpus(sample_path("2wiki"))
    assert len(medqa.corpus) == len({d.id for d in [*hotpot, *twowiki]})
    assert medqa.multiple_choice
    assert not bamboogle.multiple_choice
    assert len(medqa.examples) == 20
    assert all(ex.evidence.doc_ids == () for ex in medqa.examples)


def test_task_with_a_given_corpus(shared_data_dir: Path) -> None:
    wiki = load_corpus(shared_data_dir / WIKI)
    task = load_task("2wiki", corpus=wiki, limit=3)
    assert task.corpus is wiki
    from_path = load_task("2wiki", corpus=shared_data_dir / WIKI, limit=3)
    assert len(from_path.corpus) == 6119
    assert from_path.corpus is load_task("2wiki", corpus=str(shared_data_dir / WIKI)).corpus
    for ex in from_path.examples:
        assert {from_path.corpus.get(i).title for i in ex.evidence.doc_ids} <= set(
            ex.evidence.titles
        )
    with pytest.raises(TypeError, match="corpus must be a Corpus, a path or None"):
        load_task("2wiki", corpus=42)  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match="no such file or directory"):
        load_task("2wiki", corpus=shared_data_dir / "missing.json")


def test_cache_follows_file_changes(tmp_path: Path) -> None:
    records = read_json_records(sample_path("hotpotqa"))
    path = write_json(tmp_path / "dev.json", records[:10])
    first = load_task("hotpotqa", path)
    assert load_task("hotpotqa", path).corpus is first.corpus
    write_json(path, records[:20])
    second = load_task("hotpotqa", path)
    assert len(second.examples) == 20
    assert len(second.corpus) > len(first.corpus)


def test_custom_questions(tmp_path: Path) -> None:
    rows = [
        {"id": "q1", "question": "Who wrote Hamlet?", "answers": ["Shakespeare", "W. S."]},
        {"question": "Capital of France?", "answer": "Paris", "evidence": {"titles": ["Paris"]}},
    ]
    path = write_jsonl(tmp_path / "questions.jsonl", rows)
    examples = load_custom(path)
    assert [ex.id for ex in examples] == ["q1", "custom-1"]
    assert examples[0].answers == ("Shakespeare", "W. S.")
    assert examples[1].answers == ("Paris",)
    corpus = Corpus.from_passages([("Paris", "Paris is the capital of France."), ("X", "y")])
    task = load_task("Custom", path, corpus=corpus)
    assert not task.multiple_choice
    assert task.examples[1].evidence.doc_ids == corpus.ids_for_title("Paris")
    assert as_dicts(load_examples("custom", write_json(tmp_path / "q.json", rows))) == as_dicts(
        examples
    )


def test_custom_multiple_choice_keeps_given_doc_ids(tmp_path: Path) -> None:
    rows = [
        {
            "id": "mc",
            "question": "2 + 2?",
            "answers": ["B", "4"],
            "options": {"A": "3", "B": "4"},
            "answer_letter": "B",
            "evidence": {"doc_ids": ["d9"]},
        }
    ]
    task = load_task("custom", write_json(tmp_path / "mc.json", rows))
    assert task.multiple_choice
    assert task.examples[0].evidence.doc_ids == ("d9",)
    with pytest.raises(ValueError, match="task 'custom' has no bundled sample"):
        load_examples("custom")


# --- errors --------------------------------------------------------------------------------


def test_missing_file_is_reported(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(FileNotFoundError, match=r"nope\.json: no such file"):
        load_examples("hotpotqa", missing)
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_hotpotqa(missing)
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_bamboogle(tmp_path / "nope.tsv")


def test_hotpotqa_errors_name_file_record_and_format(tmp_path: Path) -> None:
    good = read_json_records(sample_path("hotpotqa"))[0]
    no_answer = {k: v for k, v in good.items() if k != "answer"}
    path = write_json(tmp_path / "bad.json", [good, no_answer])
    with pytest.raises(
        ValueError, match=r"bad\.json: record 1: missing field 'answer' \(expected a HotpotQA"
    ):
        load_examples("hotpotqa", path)
    bad_fact = {**good, "supporting_facts": [["Ed Wood"]]}
    with pytest.raises(ValueError, match=r"record 0: supporting_facts\[0\] must be a \[title, sen"):
        load_hotpotqa(write_json(tmp_path / "fact.json", [bad_fact]))
    empty_question = {**good, "question": "  "}
    with pytest.raises(ValueError, match=r"record 0: field 'question' is empty"):
        load_hotpotqa(write_json(tmp_path / "q.json", [empty_question]))
    duplicated = write_json(tmp_path / "dup.json", [good, good])
    with pytest.raises(ValueError, match=r"dup\.json: record 1: id '5a8b57f25542995d1e6f1371'"):
        load_examples("hotpotqa", duplicated)


def test_wrong_format_is_reported(shared_data_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"record 0: missing field 'context' \(expected a Hotpot"):
        load_examples("hotpotqa", shared_data_dir / MEDQA)
    with pytest.raises(ValueError, match=r"record 0: missing field 'options' \(expected a MedQA"):
        load_examples("medqa", shared_data_dir / HOTPOT)


def test_twowiki_bad_evidences(tmp_path: Path) -> None:
    record = read_json_records(sample_path("2wiki"))[0]
    path = write_json(tmp_path / "bad.json", [{**record, "evidences": [["a", "b"]]}])
    with pytest.raises(ValueError, match=r"evidences\[0\] must be a \[subject, relation, object\]"):
        load_twowiki(path)


def test_bamboogle_errors(tmp_path: Path) -> None:
    header = tmp_path / "sheet.tsv"
    header.write_text("Q\t\t\t\tAnswer\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"sheet\.tsv:1: expected the Bamboogle TSV header"):
        load_bamboogle(header)
    short = tmp_path / "short.tsv"
    short.write_text("Question\t\t\t\tAnswer\tAnswer 2\nWho?\t\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"short\.tsv:2: expected at least 5 tab-separated"):
        load_bamboogle(short)
    no_answer = tmp_path / "noanswer.tsv"
    no_answer.write_text("Question\t\t\t\tAnswer\tAnswer 2\nWho?\t\t\t\t \t\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"record 0: no non-empty gold answer"):
        load_bamboogle(no_answer)
    flashrag = write_jsonl(tmp_path / "b.jsonl", [{"id": "test_0", "question": "Who?"}])
    with pytest.raises(ValueError, match=r"b\.jsonl: record 0: missing field 'golden_answers'"):
        load_bamboogle(flashrag)
    unknown = tmp_path / "b.txt"
    unknown.write_text("what is this\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unrecognised Bamboogle file"):
        load_bamboogle(unknown)


def test_medqa_errors(tmp_path: Path) -> None:
    good = read_json_records(sample_path("medqa"))[0]
    path = write_jsonl(tmp_path / "m.jsonl", [good, {**good, "answer_idx": "E"}])
    with pytest.raises(
        ValueError, match=r"m\.jsonl: record 1: answer_idx 'E' is not one of the options"
    ):
        load_medqa(path)
    path = write_jsonl(tmp_path / "o.jsonl", [{**good, "options": {}}])
    with pytest.raises(ValueError, match="'options' must be a non-empty mapping"):
        load_medqa(path)


def test_custom_errors(tmp_path: Path) -> None:
    no_answers = write_jsonl(tmp_path / "a.jsonl", [{"id": "x", "question": "Why?"}])
    with pytest.raises(ValueError, match=r"a\.jsonl: record 0: missing field 'answers'"):
        load_custom(no_answers)
    bad_letter = [{"question": "Q?", "answers": ["A"], "options": {"A": "a"}, "answer_letter": "Z"}]
    with pytest.raises(ValueError, match=r"record 0: .*answer_letter 'Z' is not one of"):
        load_custom(write_json(tmp_path / "l.json", bad_letter))
    duplicate = [{"id": "q", "question": "A?", "answers": ["a"]}] * 2
    with pytest.raises(ValueError, match=r"record 1: id 'q' is already used by record 0"):
        load_examples("custom", write_json(tmp_path / "d.json", duplicate))


# --- hub (a fake `datasets` module; no network) --------------------------------------------


class FakeHub:
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.calls: list[tuple[str, str | None, str | None]] = []

    def load_dataset(self, repo: str, name: str | None = None, split: str | None = None) -> Any:
        self.calls.append((repo, name, split))
        return list(self.rows)


def fake_datasets(monkeypatch: pytest.MonkeyPatch, rows: list[dict[str, Any]]) -> FakeHub:
    hub = FakeHub(rows)
    module = types.ModuleType("datasets")
    module.load_dataset = hub.load_dataset  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "datasets", module)
    return hub


def columnar(pairs: list[list[Any]], keys: tuple[str, str]) -> dict[str, list[Any]]:
    return {keys[0]: [p[0] for p in pairs], keys[1]: [p[1] for p in pairs]}


def test_hotpotqa_from_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    records = read_json_records(sample_path("hotpotqa"))[:3]
    rows = [
        {
            "id": r["_id"],
            "question": r["question"],
            "answer": r["answer"],
            "type": r["type"],
            "level": r["level"],
            "supporting_facts": columnar(r["supporting_facts"], ("title", "sent_id")),
            "context": columnar(r["context"], ("title", "sentences")),
        }
        for r in records
    ]
    hub = fake_datasets(monkeypatch, rows)
    task = load_task("hotpotqa", "hub")
    assert hub.calls[0] == ("hotpotqa/hotpot_qa", "distractor", "validation")
    assert task.source == "hub:hotpotqa/hotpot_qa:distractor:validation"
    expected = hotpotqa_examples(records, "x")
    assert [ex.id for ex in task.examples] == [ex.id for ex in expected]
    assert [ex.evidence.sentences for ex in task.examples] == [
        ex.evidence.sentences for ex in expected
    ]
    assert [ex.meta for ex in task.examples] == [ex.meta for ex in expected]
    assert task.corpus.content_hash == pooled_corpus(records).content_hash
    assert all(len(ex.evidence.doc_ids) == 2 for ex in task.examples)


def test_twowiki_from_hub_column_variants(monkeypatch: pytest.MonkeyPatch) -> None:
    records = read_json_records(sample_path("2wiki"))[:4]
    rows = []
    for i, r in enumerate(records):
        sentences_key = "sentences" if i % 2 == 0 else "content"
        evidences: Any = r["evidences"]
        if i % 2:
            evidences = {
                "fact": [e[0] for e in r["evidences"]],
                "relation": [e[1] for e in r["evidences"]],
                "entity": [e[2] for e in r["evidences"]],
            }
        rows.append(
            {
                "id": r["_id"],
                "type": r["type"],
                "question": r["question"],
                "answer": r["answer"],
                "context": columnar(r["context"], ("title", sentences_key)),
                "supporting_facts": columnar(r["supporting_facts"], ("title", "sent_id")),
                "evidences": evidences,
            }
        )
    hub = fake_datasets(monkeypatch, rows)
    task = load_task("2wiki", "hub")
    assert hub.calls[0] == ("framolfese/2WikiMultihopQA", None, "validation")
    assert as_dicts(load_examples("2wiki", "hub")) == as_dicts(twowiki_examples(records, "x"))
    assert task.corpus.content_hash == pooled_corpus(records).content_hash


def test_bamboogle_from_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    sheet = load_examples("bamboogle")
    hub = fake_datasets(
        monkeypatch, [{"Question": ex.question, "Answer": ex.answers[0]} for ex in sheet[:5]]
    )
    loaded = load_examples("bamboogle", "hub")
    assert hub.calls == [("chiayewken/bamboogle", None, "test")]
    assert [(ex.id, ex.question, ex.answers) for ex in loaded] == [
        (ex.id, ex.question, ex.answers[:1]) for ex in sheet[:5]
    ]
    rows = [
        {"id": f"test_{i}", "question": ex.question, "golden_answers": list(ex.answers)}
        for i, ex in enumerate(sheet[:3])
    ]
    hub = fake_datasets(monkeypatch, rows)
    flashrag = load_examples("bamboogle", "hub:RUC-NLPIR/FlashRAG_datasets:bamboogle:test")
    assert hub.calls == [("RUC-NLPIR/FlashRAG_datasets", "bamboogle", "test")]
    assert [ex.meta["source_id"] for ex in flashrag] == ["test_0", "test_1", "test_2"]


def test_medqa_from_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    records = read_json_records(sample_path("medqa"))[:3]
    hub = fake_datasets(monkeypatch, records)
    assert as_dicts(load_examples("medqa", "hub")) == as_dicts(load_examples("medqa")[:3])
    assert hub.calls == [("GBaker/MedQA-USMLE-4-options", None, "test")]
    bigbio = [
        {**r, "options": [{"key": k, "value": v} for k, v in r["options"].items()]} for r in records
    ]
    fake_datasets(monkeypatch, bigbio)
    train = load_examples("medqa", "hub:GBaker/MedQA-USMLE-4-options::train")
    assert [ex.id for ex in train] == ["medqa-train-0", "medqa-train-1", "medqa-train-2"]
    assert train[0].options == load_examples("medqa")[0].options


def test_custom_from_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="no default hub dataset"):
        load_examples("custom", "hub")
    hub = fake_datasets(monkeypatch, [{"id": "a", "question": "Q?", "answers": ["x"]}])
    (example,) = load_examples("custom", "hub:me/questions:default:train")
    assert hub.calls == [("me/questions", "default", "train")]
    assert example.id == "a"


def test_hub_without_datasets_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'raggym\[hub\]'"):
        load_examples("hotpotqa", "hub")


def test_hub_spec_parsing() -> None:
    default = HubSource("hotpotqa/hotpot_qa", "distractor", "validation")
    assert HubSource.parse("hub", default) == default
    assert HubSource.parse("hub:hotpotqa/hotpot_qa", default) == default
    assert HubSource.parse("hub:me/hotpot", default) == HubSource("me/hotpot", None, "validation")
    assert HubSource.parse("hub:me/hotpot:fullwiki:train", default) == HubSource(
        "me/hotpot", "fullwiki", "train"
    )
    assert HubSource.parse(default.spec, None) == default
    with pytest.raises(ValueError, match="malformed hub spec"):
        HubSource.parse("hub:a/b:c:d:e", default)
    with pytest.raises(ValueError, match="names no split"):
        HubSource.parse("hub:a/b", None)


def test_importing_tasks_does_not_import_datasets() -> None:
    code = "import sys, raggym_env.tasks; print('datasets' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_placeholder_corpus_warns_once_per_task_also_through_gym_make() -> None:
    import gymnasium as gym

    clear_caches()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_task("bamboogle")
        load_task("bamboogle", limit=3)
        load_task("hotpotqa")  # has its own corpus: no warning
    placeholder = [w for w in caught if w.category is PlaceholderCorpusWarning]
    assert len(placeholder) == 1
    assert str(placeholder[0].message).startswith("bamboogle: no corpus given")
    clear_caches()
    with pytest.warns(PlaceholderCorpusWarning, match=r"medqa: .*pass corpus=PATH"):
        gym.make("RAGGym/MedQA-v0").close()


def test_gold_titles_missing_from_the_corpus_are_counted(tmp_path: Path) -> None:
    corpus = Corpus.from_passages([("Paris", "Paris is the capital of France."), ("Rome", "x")])
    questions = [
        {
            "id": "q1",
            "question": "Capital?",
            "answers": ["Paris"],
            "evidence": {"titles": ["Paris"]},
        },
        {
            "id": "q2",
            "question": "Where?",
            "answers": ["Rome"],
            "evidence": {"titles": ["Rmoe", "Paris"]},
        },
        {"id": "q3", "question": "Who?", "answers": ["x"], "evidence": {"titles": ["Nobody"]}},
    ]
    path = write_json(tmp_path / "q.json", questions)
    clear_caches()
    with pytest.warns(MissingEvidenceWarning) as caught:
        task = load_task("custom", path, corpus=corpus)
    (warning,) = [w for w in caught if w.category is MissingEvidenceWarning]
    assert str(warning.message).startswith(
        "custom: 2 of 4 gold evidence titles of 2 questions are not titles in the corpus"
    )
    assert "'Rmoe' (q2)" in str(warning.message) and "'Nobody' (q3)" in str(warning.message)
    assert [len(ex.evidence.doc_ids) for ex in task.examples] == [1, 1, 0]
