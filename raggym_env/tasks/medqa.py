"""MedQA (Jin et al., 2021), USMLE US 4-option questions: loader for the official JSONL.

Official record: ``question, answer, options {A..D}, meta_info, answer_idx,
metamap_phrases``. Examples are multiple choice: ``options`` maps letters to texts,
``answer_letter`` is ``answer_idx`` and ``answers`` is ``(letter, answer text)``. Ids are
``medqa-<split>-<record index>`` because the file has no ids of its own. The hub copy
``GBaker/MedQA-USMLE-4-options`` has the same fields; BigBio-style option lists
``[{"key": "A", "value": ...}]`` are accepted too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from raggym_env.corpora import read_json_records
from raggym_env.tasks.hub import HubSource
from raggym_env.tasks.records import RecordLocation, clean_answers
from raggym_env.types import QAExample

__all__ = ["MEDQA_HUB", "load_medqa", "medqa_examples", "medqa_record_from_hub"]

MEDQA_HUB = HubSource(repo="GBaker/MedQA-USMLE-4-options", config=None, split="test")
"""The default hub source: the US 4-option test set (1,273 questions)."""

_EXPECTED = (
    "a MedQA record with question, answer, options {letter: text} and answer_idx "
    "(one of the option letters)"
)


def _options(value: Any, location: RecordLocation) -> dict[str, str]:
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        pairs = []
        for item in value:
            if not isinstance(item, Mapping) or "key" not in item or "value" not in item:
                raise location.error("option lists must hold {'key', 'value'} objects")
            pairs.append((item["key"], item["value"]))
        value = dict(pairs)
    if not isinstance(value, Mapping) or not value:
        raise location.error("field 'options' must be a non-empty mapping of letter -> text")
    options: dict[str, str] = {}
    for letter, text in value.items():
        if not isinstance(letter, str) or not isinstance(text, str):
            raise location.error(f"option {letter!r} must map a letter to a string")
        options[letter.strip()] = text.strip()
    return options


def medqa_examples(records: Sequence[Any], source: str, split: str = "test") -> list[QAExample]:
    """Convert official-format MedQA records to multiple-choice examples ``medqa-<split>-<i>``.

    Raises:
        ValueError: a record is malformed, or its ``answer_idx`` is not an option letter;
            the message names ``source`` and the index.
    """
    examples: list[QAExample] = []
    for index, raw in enumerate(records):
        location = RecordLocation(source, index, _EXPECTED)
        record = location.mapping(raw)
        options = _options(location.field(record, "options"), location)
        letter = location.text(record, "answer_idx")
        if letter not in options:
            raise location.error(
                f"answer_idx {letter!r} is not one of the options {sorted(options)}"
            )
        answer_text = location.text(record, "answer", allow_empty=True) or options[letter]
        meta: dict[str, Any] = {}
        if "meta_info" in record:
            meta["meta_info"] = record["meta_info"]
        examples.append(
            QAExample(
                id=f"medqa-{split}-{index}",
                question=location.text(record, "question"),
                answers=clean_answers([letter, answer_text], location),
                options=options,
                answer_letter=letter,
                meta=meta,
            )
        )
    return examples


def load_medqa(path: str | Path, split: str = "test") -> list[QAExample]:
    """Load a MedQA US 4-option JSONL file (e.g. ``phrases_no_exclude_test.jsonl``).

    Args:
        path: the JSONL (or JSON list) file.
        split: the split name used in the example ids (``medqa-<split>-<index>``).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file or one of its records is malformed (named in the message).
    """
    return medqa_examples(read_json_records(path), str(path), split)


def medqa_record_from_hub(row: Mapping[str, Any], location: RecordLocation) -> dict[str, Any]:
    """Return a hub row as a plain dict (GBaker's copy has the official fields)."""
    return dict(location.mapping(row))
