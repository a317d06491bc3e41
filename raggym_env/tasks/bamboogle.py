"""Bamboogle (Press et al., 2023): 125 compositional questions that web search alone misses.

Two file formats are read, detected by extension and then by content:

- the authors' sheet exported as TSV: header ``Question, <3 empty>, Answer, Answer 2,
  canary``; the answers are ``Answer`` plus ``Answer 2`` when non-empty;
- FlashRAG's JSONL: ``id, question, golden_answers``.

Examples get ids ``bamboogle-<row index>`` in both cases, so runs on either file line up.
The hub copy ``chiayewken/bamboogle`` has ``Question`` and ``Answer`` columns.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from raggym_env.corpora import read_json_records
from raggym_env.tasks.hub import HubSource
from raggym_env.tasks.records import RecordLocation, clean_answers
from raggym_env.types import QAExample

__all__ = [
    "BAMBOOGLE_HUB",
    "bamboogle_examples",
    "bamboogle_record_from_hub",
    "load_bamboogle",
    "read_bamboogle_records",
    "read_bamboogle_tsv",
]

BAMBOOGLE_HUB = HubSource(repo="chiayewken/bamboogle", config=None, split="test")
"""The default hub source (the authors' 125 questions)."""

_EXPECTED = (
    "a Bamboogle row with Question and Answer (authors' sheet) or question and "
    "golden_answers (FlashRAG)"
)


def read_bamboogle_tsv(path: str | Path) -> list[dict[str, str]]:
    """Read the authors' TSV sheet into ``{"Question", "Answer", "Answer 2"}`` rows.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the header does not start with ``Question`` or lacks an ``Answer``
            column, a row is too short, or the file ends inside a row (truncated: a last
            row with fewer columns than the header and no final newline); the message
            names the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        text = handle.read()
    rows = list(csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows or not rows[0] or rows[0][0].strip() != "Question":
        raise ValueError(
            f"{path}:1: expected the Bamboogle TSV header starting with 'Question' "
            "(columns Question, 3 empty, Answer, Answer 2, canary)"
        )
    header = [cell.strip() for cell in rows[0]]
    if "Answer" not in header:
        raise ValueError(f"{path}:1: the Bamboogle TSV header has no 'Answer' column")
    answer_col = header.index("Answer")
    second_col = header.index("Answer 2") if "Answer 2" in header else None
    _check_not_truncated(path, text, rows, len(header))
    records: list[dict[str, str]] = []
    for lineno, row in enumerate(rows[1:], 2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= answer_col:
            raise ValueError(
                f"{path}:{lineno}: expected at least {answer_col + 1} tab-separated columns "
                f"(Question ... Answer), got {len(row)}"
            )
        record = {"Question": row[0], "Answer": row[answer_col]}
        if second_col is not None and len(row) > second_col:
            record["Answer 2"] = row[second_col]
        records.append(record)
    return records


def _check_not_truncated(path: Path, text: str, rows: list[list[str]], columns: int) -> None:
    """Reject a sheet cut off inside its last row (a partial download or copy).

    The authors' file ends without a newline after a complete last row, so a missing final
    newline alone proves nothing; a last row that also has fewer columns than the header
    was cut short ("One World, One Dream" read as "One World,"), and its answer is wrong.
    """
    if len(rows) < 2 or text.endswith(("\n", "\r")):
        return
    last = rows[-1]
    if any(cell.strip() for cell in last) and len(last) < columns:
        lineno = len(text.splitlines())
        raise ValueError(
            f"{path}:{lineno}: the file ends inside this row ({len(last)} of {columns} "
            "tab-separated columns, no final newline): it looks truncated; download or copy "
            "the Bamboogle TSV again"
        )


def read_bamboogle_records(path: str | Path) -> list[dict[str, Any]]:
    """Read Bamboogle rows from the authors' TSV or a FlashRAG JSON/JSONL file.

    ``.tsv`` means the sheet, ``.json``/``.jsonl`` FlashRAG; any other extension is decided
    by the content (a first line starting with ``Question`` is the sheet).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the format is not recognised or the content is malformed.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".tsv":
        return list(read_bamboogle_tsv(path))
    if suffix in (".json", ".jsonl"):
        return read_json_records(path)
    with path.open(encoding="utf-8-sig", errors="replace") as handle:
        head = handle.readline().lstrip()
    if head.startswith("Question"):
        return list(read_bamboogle_tsv(path))
    if head.startswith(("{", "[")):
        return read_json_records(path)
    raise ValueError(
        f"{path}: unrecognised Bamboogle file: expected the authors' TSV (header starting with "
        "'Question') or FlashRAG JSONL (id, question, golden_answers)"
    )


def bamboogle_examples(records: Sequence[Any], source: str) -> list[QAExample]:
    """Convert sheet-style or FlashRAG-style Bamboogle rows to examples ``bamboogle-<index>``.

    Raises:
        ValueError: a row is malformed; the message names ``source`` and the index.
    """
    examples: list[QAExample] = []
    for index, raw in enumerate(records):
        location = RecordLocation(source, index, _EXPECTED)
        record = location.mapping(raw)
        meta: dict[str, Any] = {}
        if "golden_answers" in record or "question" in record:
            question = location.text(record, "question")
            golden = location.field(record, "golden_answers")
            if isinstance(golden, str):
                golden = [golden]
            if not isinstance(golden, Sequence):
                raise location.error("field 'golden_answers' must be a list of strings")
            answers = clean_answers(golden, location)
            if "id" in record:
                meta["source_id"] = str(record["id"])
        else:
            question = location.text(record, "Question")
            candidates = [location.field(record, "Answer"), record.get("Answer 2") or ""]
            answers = clean_answers(candidates, location)
        examples.append(
            QAExample(id=f"bamboogle-{index}", question=question, answers=answers, meta=meta)
        )
    return examples


def load_bamboogle(path: str | Path) -> list[QAExample]:
    """Load Bamboogle from the authors' TSV or FlashRAG's JSONL (detected automatically).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file or one of its rows is malformed (named in the message).
    """
    return bamboogle_examples(read_bamboogle_records(path), str(path))


def bamboogle_record_from_hub(row: Mapping[str, Any], location: RecordLocation) -> dict[str, Any]:
    """Return a hub row as a plain dict (sheet and FlashRAG columns are both understood)."""
    return dict(location.mapping(row))
