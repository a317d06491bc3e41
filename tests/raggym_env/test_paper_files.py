"""The RAG-Gym paper's question files: its training CSVs and the official test selections."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from raggym_env import clear_caches
from raggym_env.corpora import Corpus, read_json_records
from raggym_env.tasks import (
    load_examples,
    load_hotpotqa_csv,
    load_medqa_csv,
    load_task,
    sample_path,
)

HOTPOT_CSV = (
    "_id,question,answer\n"
    "5a8b57f25542995d1e6f1371,Were Scott Derrickson and Ed Wood of the same nationality?,yes\n"
    'id-2,"Which city, north or south, hosts the ""Fête""?",Montréal\n'
    'id-3,"A question\nover two lines?","Rock, Paper"\n'
)

MEDQA_CSV = (
    "index,question,options,answer\n"
    "00018,A 27-year-old female presents to clinic. Which is true?,"
    "\"{'A': 'It may result in corneal vascularization', 'B': \"\"It's prolonged PT\"\", "
    "'C': 'Anemia, macrocytic', 'D': 'None'}\",B\n"
    "00230,\"Which pattern, most likely?\",\"{'A': 'Contact', 'B': 'Ascending'}\",A\n"
)


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    clear_caches()
    yield
    clear_caches()


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- HotpotQA training CSV -----------------------------------------------------------------


def test_hotpotqa_csv_layout(tmp_path: Path) -> None:
    path = write(tmp_path / "hotpotqa_dev_1000.csv", HOTPOT_CSV)
    examples = load_examples("hotpotqa", path=path)
    assert [ex.id for ex in examples] == ["5a8b57f25542995d1e6f1371", "id-2", "id-3"]
    assert examples[0].answers == ("yes",)
    assert examples[1].question == 'Which city, north or south, hosts the "Fête"?'
    assert examples[1].answers == ("Montréal",)
    assert examples[2].question == "A question\nover two lines?"
    assert examples[2].answers == ("Rock, Paper",)
    assert all(ex.options is None and not ex.evidence.titles for ex in examples)
    assert [ex.to_dict() for ex in load_hotpotqa_csv(path)] == [ex.to_dict() for ex in examples]
    assert [ex.id for ex in load_examples("hotpotqa", path=path, select="last:2")] == [
        "id-2",
        "id-3",
    ]


def test_hotpotqa_csv_needs_a_corpus(tmp_path: Path, tiny_corpus: Corpus) -> None:
    path = write(tmp_path / "hotpotqa_dev_1000.csv", HOTPOT_CSV)
    with pytest.raises(ValueError, match=r"no context paragraphs.*pass corpus="):
        load_task("hotpotqa", path=path)
    task = load_task("hotpotqa", path=path, corpus=tiny_corpus)
    assert len(task.examples) == 3
    assert task.corpus is tiny_corpus
    assert not task.multiple_choice


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id,question,answer\nx,q,a\n", r"\.csv:1: expected the CSV header '_id,question,answer'"),
        ("_id,question,answer\nx,q\n", r"\.csv:2: expected 3 columns"),
        ("_id,question,answer\nx,q,a\ny,q,a,extra\n", r"\.csv:3: expected 3 columns"),
        ("_id,question,answer\nx,q, \n", r"\.csv:2: field 'answer' is empty"),
        ('_id,question,answer\nx,"q,a\n', r"\.csv:\d+: malformed CSV"),
        ("_id,question,answer\nx,q,a\nx,r,b\n", r"record 1: id 'x' is already used"),
        ("", r"\.csv:1: expected the CSV header"),
    ],
)
def test_malformed_hotpotqa_csv(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "bad.csv", text)
    with pytest.raises(ValueError, match=message):
        load_examples("hotpotqa", path=path)


# --- MedQA training CSV --------------------------------------------------------------------


def test_medqa_csv_layout(tmp_path: Path) -> None:
    path = write(tmp_path / "medqa_train_1000.csv", MEDQA_CSV)
    examples = load_examples("medqa", path=path)
    first, second = examples
    assert first.id == "medqa-00018"
    assert first.options == {
        "A": "It may result in corneal vascularization",
        "B": "It's prolonged PT",
        "C": "Anemia, macrocytic",
        "D": "None",
    }
    assert first.answer_letter == "B"
    assert first.answers == ("B", "It's prolonged PT")
    assert second.id == "medqa-00230"
    assert second.question == "Which pattern, most likely?"
    assert second.answers == ("A", "Contact")
    assert [ex.to_dict() for ex in load_medqa_csv(path)] == [ex.to_dict() for ex in examples]
    with pytest.warns(UserWarning, match="placeholder"):
        task = load_task("medqa", path=path)
    assert task.multiple_choice


@pytest.mark.parametrize(
    ("options", "answer", "message"),
    [
        ("__import__('os').system('true')", "A", r"bad\.csv:2: field 'options' is not a Python"),
        ("{'A': 'x'", "A", r"bad\.csv:2: field 'options' is not a Python literal"),
        ("['A', 'B']", "A", r"bad\.csv:2: field 'options' is a list, expected"),
        ("{}", "A", r"bad\.csv:2: field 'options' is a dict, expected"),
        ("{'AB': 'x'}", "A", r"bad\.csv:2: option key 'AB' is not a letter"),
        ("{1: 'x'}", "A", r"bad\.csv:2: option key 1 is not a letter"),
        ("{'A': 3}", "A", r"bad\.csv:2: option 'A' is a int, expected text"),
        ("{'A': 'x', 'B': 'y'}", "E", r"bad\.csv:2: answer 'E' is not one of the option"),
        ("{'A': 'x'}", " ", r"bad\.csv:2: field 'answer' is empty"),
    ],
)
def test_malformed_medqa_csv(tmp_path: Path, options: str, answer: str, message: str) -> None:
    cell = '"' + options.replace('"', '""') + '"'
    path = write(tmp_path / "bad.csv", f"index,question,options,answer\n1,q?,{cell},{answer}\n")
    with pytest.raises(ValueError, match=message):
        load_examples("medqa", path=path)


def test_medqa_csv_header_is_checked(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.csv", "question,options,answer\nq,\"{'A': 'x'}\",A\n")
    with pytest.raises(ValueError, match=r"bad\.csv:1: expected the CSV header 'index,question"):
        load_examples("medqa", path=path)


# --- the official test selections, on fixtures in the official layouts -----------------------


def _hotpot_record(index: int) -> dict[str, Any]:
    record = dict(read_json_records(sample_path("hotpotqa"))[0])
    return {**record, "_id": f"fw-{index}"}


def test_fullwiki_last_selection_keeps_file_order(tmp_path: Path) -> None:
    path = tmp_path / "hotpot_dev_fullwiki_v1.json"
    path.write_text(json.dumps([_hotpot_record(i) for i in range(6)]), encoding="utf-8")
    assert [ex.id for ex in load_examples("fullwiki", path=path, select="last:4")] == [
        "fw-2",
        "fw-3",
        "fw-4",
        "fw-5",
    ]
    # The default selection is the paper's last 1,000: here, all six.
    assert len(load_examples("hotpotqa-fullwiki", path=path)) == 6


def test_twowiki_dev_last_selection(tmp_path: Path) -> None:
    record = dict(read_json_records(sample_path("2wiki"))[0])
    rows = [{**record, "_id": f"tw-{i}"} for i in range(5)]
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    assert [ex.id for ex in load_examples("2wiki", path=path, select="last:2")] == [
        "tw-3",
        "tw-4",
    ]


def test_bamboogle_sheet_all_rows(tmp_path: Path) -> None:
    sheet = "Question\t\t\t\tAnswer\tAnswer 2\tcanary: x\n" + "".join(
        f"Who is number {i}?\t\t\t\tPerson {i}\t\t\n" for i in range(3)
    )
    path = write(tmp_path / "Bamboogle_Prerelease.tsv", sheet)
    examples = load_examples("bamboogle", path=path, select="all")
    assert [ex.id for ex in examples] == ["bamboogle-0", "bamboogle-1", "bamboogle-2"]
    assert examples[2].answers == ("Person 2",)


def test_medqa_official_file_name(tmp_path: Path) -> None:
    rows = read_json_records(sample_path("medqa"))[:3]
    path = tmp_path / "phrases_no_exclude_test.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    examples = load_examples("medqa", path=path)
    assert [ex.id for ex in examples] == ["medqa-test-0", "medqa-test-1", "medqa-test-2"]
    assert examples[0].answer_letter == rows[0]["answer_idx"]


def test_official_selections_on_the_real_files(shared_data_dir: Path) -> None:
    bamboogle = load_examples("bamboogle", shared_data_dir / "bamboogle/Bamboogle_Prerelease.tsv")
    assert len(bamboogle) == 125
    assert (bamboogle[0].id, bamboogle[-1].id) == ("bamboogle-0", "bamboogle-124")
    assert bamboogle[0].question.startswith("Who was president of the United States in the year")
    medqa = load_examples("medqa", shared_data_dir / "medqa/medqa_us_4options_test.jsonl")
    assert len(medqa) == 1273
    assert (medqa[0].id, medqa[-1].id) == ("medqa-test-0", "medqa-test-1272")
    assert medqa[0].question.startswith("A junior orthopaedic surgery resident")
