"""User questions: a JSON list or JSONL of records shaped like ``QAExample.to_dict``.

Each record needs ``question`` and ``answers`` (a list of aliases, the first canonical; a
single ``answer`` string is accepted), and may carry ``id`` (default ``custom-<index>``),
``options`` with ``answer_letter`` for multiple choice, ``evidence`` and ``meta``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from raggym_env.corpora import read_json_records
from raggym_env.tasks.records import RecordLocation, clean_answers
from raggym_env.types import QAExample

__all__ = ["custom_examples", "custom_record_from_hub", "load_custom"]

_EXPECTED = (
    "a question record with question and answers [aliases], optionally id, options with "
    "answer_letter, evidence and meta"
)


def custom_examples(records: Sequence[Any], source: str) -> list[QAExample]:
    """Convert user question records to examples, validating each one.

    Raises:
        ValueError: a record is malformed (named by ``source`` and index).
    """
    examples: list[QAExample] = []
    for index, raw in enumerate(records):
        location = RecordLocation(source, index, _EXPECTED)
        record = dict(location.mapping(raw))
        location.text(record, "question")
        if "answers" not in record and "answer" not in record:
            raise location.error("missing field 'answers'")
        answers = record.get("answers", record.get("answer"))
        if isinstance(answers, str):
            answers = [answers]
        if not isinstance(answers, Sequence):
            raise location.error("field 'answers' must be a list of strings")
        record["answers"] = list(clean_answers(answers, location))
        record.setdefault("id", f"custom-{index}")
        for key in ("options", "evidence", "meta"):
            value = record.get(key)
            if value is not None and not isinstance(value, Mapping):
                raise location.error(f"field {key!r} must be an object")
        try:
            examples.append(QAExample.from_dict(record))
        except (KeyError, TypeError, ValueError) as exc:
            raise location.error(str(exc)) from exc
    return examples


def load_custom(path: str | Path) -> list[QAExample]:
    """Load user questions from a JSON list or JSONL file.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file or one of its records is malformed (named in the message).
    """
    return custom_examples(read_json_records(path), str(path))


def custom_record_from_hub(row: Mapping[str, Any], location: RecordLocation) -> dict[str, Any]:
    """Return a hub row as a plain dict, to be read like a user question record."""
    return dict(location.mapping(row))
