"""The RAG-Gym paper's training question files: HotpotQA and MedQA as CSV.

The official RAG-Gym repository trains on two CSV files of 1,000 questions each:

- ``hotpotqa_dev_1000.csv``, header ``_id,question,answer``: HotpotQA questions with their
  ids and one gold answer, but no supporting facts and no context paragraphs. A corpus
  cannot be pooled from it, so :func:`~raggym_env.tasks.load_task` needs ``corpus=``.
- ``medqa_train_1000.csv``, header ``index,question,options,answer``: MedQA training
  questions, ``options`` a Python dict literal (``{'A': '...', 'B': '...'}``, read with
  :func:`ast.literal_eval`, never evaluated as code) and ``answer`` the gold letter.

Both are real CSV (quoted commas, doubled quotes, newlines inside quotes), read with the
:mod:`csv` module. A malformed row is a ``ValueError`` naming the file, the line on which
the row ends and what was expected.
"""

from __future__ import annotations

import ast
import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from raggym_env.tasks.records import RecordLocation, clean_answers
from raggym_env.types import QAExample

__all__ = [
    "HOTPOTQA_CSV_HEADER",
    "MEDQA_CSV_HEADER",
    "hotpotqa_csv_examples",
    "load_hotpotqa_csv",
    "load_medqa_csv",
    "medqa_csv_examples",
    "read_hotpotqa_csv",
    "read_medqa_csv",
]

HOTPOTQA_CSV_HEADER = ("_id", "question", "answer")
"""The header of ``hotpotqa_dev_1000.csv``."""

MEDQA_CSV_HEADER = ("index", "question", "options", "answer")
"""The header of ``medqa_train_1000.csv``."""

_OPTIONS_EXPECTED = "options as a dict literal of single capital letters to text, e.g. {'A': '...'}"


def _read_rows(path: str | Path, header: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """Read a CSV file with exactly ``header``; return (line number, row) for each data row."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    expected = ",".join(header)
    rows: list[tuple[int, dict[str, str]]] = []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, strict=True)
        try:
            first = next(reader, None)
            if first is None or tuple(cell.strip() for cell in first) != header:
                raise ValueError(
                    f"{path}:1: expected the CSV header {expected!r}, got {','.join(first or [])!r}"
                )
            for row in reader:
                if not row or not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    raise ValueError(
                        f"{path}:{reader.line_num}: expected {len(header)} columns "
                        f"({expected}), got {len(row)}"
                    )
                rows.append((reader.line_num, dict(zip(header, row, strict=True))))
        except csv.Error as exc:
            raise ValueError(
                f"{path}:{reader.line_num}: malformed CSV ({exc}); expected rows of {expected}"
            ) from exc
    return rows


def _required(path: Path, line: int, row: dict[str, str], key: str) -> str:
    """The stripped field ``key``; a located error when it is empty."""
    value = row[key].strip()
    if not value:
        raise ValueError(f"{path}:{line}: field {key!r} is empty (expected a non-empty {key})")
    return value


def read_hotpotqa_csv(path: str | Path) -> list[dict[str, Any]]:
    """Read ``hotpotqa_dev_1000.csv`` into ``{"_id", "question", "answer", "line"}`` records.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: a wrong header, a row with another number of columns or an empty field;
            the message names the file and line.
    """
    path = Path(path)
    records: list[dict[str, Any]] = []
    for line, row in _read_rows(path, HOTPOTQA_CSV_HEADER):
        record: dict[str, Any] = {key: _required(path, line, row, key) for key in row}
        record["line"] = line
        records.append(record)
    return records


def _parse_options(path: Path, line: int, text: str) -> dict[str, str]:
    """Parse the ``options`` cell as a literal and check it maps capital letters to text."""
    where = f"{path}:{line}"
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as exc:
        raise ValueError(
            f"{where}: field 'options' is not a Python literal ({type(exc).__name__}); "
            f"expected {_OPTIONS_EXPECTED}"
        ) from None
    if not isinstance(value, dict) or not value:
        raise ValueError(
            f"{where}: field 'options' is a {type(value).__name__}, expected {_OPTIONS_EXPECTED}"
        )
    options: dict[str, str] = {}
    for key, option in value.items():
        if not (isinstance(key, str) and len(key) == 1 and "A" <= key <= "Z"):
            raise ValueError(f"{where}: option key {key!r} is not a letter A-Z")
        if not isinstance(option, str):
            raise ValueError(f"{where}: option {key!r} is a {type(option).__name__}, expected text")
        options[key] = option.strip()
    return options


def read_medqa_csv(path: str | Path) -> list[dict[str, Any]]:
    """Read ``medqa_train_1000.csv`` into records with parsed, validated ``options``.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: a wrong header or column count, an empty field, ``options`` that is not a
            dict literal of letters to text, or an ``answer`` that is not one of its letters;
            the message names the file and line.
    """
    path = Path(path)
    records: list[dict[str, Any]] = []
    for line, row in _read_rows(path, MEDQA_CSV_HEADER):
        options = _parse_options(path, line, _required(path, line, row, "options"))
        answer = _required(path, line, row, "answer")
        if answer not in options:
            raise ValueError(
                f"{path}:{line}: answer {answer!r} is not one of the option letters "
                f"{sorted(options)}"
            )
        records.append(
            {
                "index": _required(path, line, row, "index"),
                "question": _required(path, line, row, "question"),
                "options": options,
                "answer": answer,
                "line": line,
            }
        )
    return records


def hotpotqa_csv_examples(records: Sequence[dict[str, Any]], source: str) -> list[QAExample]:
    """Examples from :func:`read_hotpotqa_csv` records: id, question, the one gold answer.

    The CSV has no supporting facts, so the examples carry no gold evidence.
    """
    expected = "a row of " + ",".join(HOTPOTQA_CSV_HEADER)
    return [
        QAExample(
            id=record["_id"],
            question=record["question"],
            answers=clean_answers([record["answer"]], RecordLocation(source, index, expected)),
        )
        for index, record in enumerate(records)
    ]


def medqa_csv_examples(records: Sequence[dict[str, Any]], source: str) -> list[QAExample]:
    """Multiple-choice examples ``medqa-<index>`` from :func:`read_medqa_csv` records.

    ``<index>`` is the file's own ``index`` column; ``answers`` is (letter, option text).
    """
    expected = "a row of " + ",".join(MEDQA_CSV_HEADER)
    examples: list[QAExample] = []
    for position, record in enumerate(records):
        options: dict[str, str] = record["options"]
        letter: str = record["answer"]
        location = RecordLocation(source, position, expected)
        examples.append(
            QAExample(
                id=f"medqa-{record['index']}",
                question=record["question"],
                answers=clean_answers([letter, options[letter]], location),
                options=options,
                answer_letter=letter,
                meta={"index": record["index"]},
            )
        )
    return examples


def load_hotpotqa_csv(path: str | Path) -> list[QAExample]:
    """Load the paper's HotpotQA training CSV (``hotpotqa_dev_1000.csv``) as examples."""
    return hotpotqa_csv_examples(read_hotpotqa_csv(path), str(path))


def load_medqa_csv(path: str | Path) -> list[QAExample]:
    """Load the paper's MedQA training CSV (``medqa_train_1000.csv``) as examples."""
    return medqa_csv_examples(read_medqa_csv(path), str(path))
