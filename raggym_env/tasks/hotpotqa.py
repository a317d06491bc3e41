"""HotpotQA (Yang et al., 2018), distractor and fullwiki settings: loaders for the official JSON.

The fullwiki file (``hotpot_dev_fullwiki_v1.json``) has the distractor file's record layout;
its ``context`` paragraphs are the ones a retriever found, so the gold paragraphs are not
guaranteed to be among them (the questions are meant to be asked against all of Wikipedia,
e.g. the abstracts dump read by :func:`raggym_env.corpora.load_corpus`).

Official record: ``_id, answer, question, supporting_facts [[title, sent_idx]],
context [[title, [sentences]]], type, level``. The hub copy (``hotpotqa/hotpot_qa``,
config ``distractor``) stores ``context`` as ``{"title": [...], "sentences": [[...]]}`` and
``supporting_facts`` as ``{"title": [...], "sent_id": [...]}``; :func:`hotpotqa_record_from_hub`
converts it to the official layout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from raggym_env.corpora import read_json_records
from raggym_env.tasks.hub import HubSource, columns_to_rows
from raggym_env.tasks.records import RecordLocation, clean_answers
from raggym_env.types import Evidence, QAExample

__all__ = [
    "HOTPOTQA_FULLWIKI_HUB",
    "HOTPOTQA_HUB",
    "hotpotqa_examples",
    "hotpotqa_record_from_hub",
    "load_hotpotqa",
    "supporting_evidence",
]

HOTPOTQA_HUB = HubSource(repo="hotpotqa/hotpot_qa", config="distractor", split="validation")
"""The default hub source: the distractor dev set (7,405 questions)."""

HOTPOTQA_FULLWIKI_HUB = HubSource(repo="hotpotqa/hotpot_qa", config="fullwiki", split="validation")
"""The fullwiki dev set on the hub (the same 7,405 questions, retrieved context paragraphs)."""

_EXPECTED = (
    "a HotpotQA record with _id, question, answer, supporting_facts [[title, sent_idx]] "
    "and context [[title, [sentences]]]"
)


def supporting_evidence(
    supporting_facts: Any, location: RecordLocation
) -> tuple[tuple[str, ...], tuple[tuple[str, int], ...]]:
    """Validate ``[[title, sent_idx], ...]`` and return (unique titles in order, pairs)."""
    if isinstance(supporting_facts, (str, bytes)) or not isinstance(supporting_facts, Sequence):
        raise location.error("field 'supporting_facts' must be a list of [title, sent_idx]")
    pairs: list[tuple[str, int]] = []
    for position, fact in enumerate(supporting_facts):
        if (
            isinstance(fact, (str, bytes))
            or not isinstance(fact, Sequence)
            or len(fact) != 2
            or not isinstance(fact[0], str)
            or isinstance(fact[1], bool)
            or not isinstance(fact[1], int)
        ):
            raise location.error(
                f"supporting_facts[{position}] must be a [title, sentence index] pair, got {fact!r}"
            )
        pairs.append((fact[0], fact[1]))
    titles = tuple(dict.fromkeys(title for title, _ in pairs))
    return titles, tuple(pairs)


def _check_context(record: Mapping[str, Any], location: RecordLocation) -> None:
    context = location.sequence(record, "context")
    for position, paragraph in enumerate(context):
        if (
            isinstance(paragraph, (str, bytes))
            or not isinstance(paragraph, Sequence)
            or len(paragraph) != 2
            or not isinstance(paragraph[0], str)
            or not isinstance(paragraph[1], list)
        ):
            raise location.error(f"context[{position}] must be a [title, [sentences]] pair")


def hotpotqa_examples(records: Sequence[Any], source: str) -> list[QAExample]:
    """Convert official-format HotpotQA records to examples (answers, evidence, type/level meta).

    Raises:
        ValueError: a record is malformed; the message names ``source`` and the index.
    """
    examples: list[QAExample] = []
    for index, raw in enumerate(records):
        location = RecordLocation(source, index, _EXPECTED)
        record = location.mapping(raw)
        _check_context(record, location)
        titles, sentences = supporting_evidence(
            location.field(record, "supporting_facts"), location
        )
        meta = {key: record[key] for key in ("type", "level") if key in record}
        examples.append(
            QAExample(
                id=location.text(record, "_id"),
                question=location.text(record, "question"),
                answers=clean_answers([location.field(record, "answer")], location),
                evidence=Evidence(titles=titles, sentences=sentences),
                meta=meta,
            )
        )
    return examples


def load_hotpotqa(path: str | Path) -> list[QAExample]:
    """Load a HotpotQA JSON file in the official format (e.g. ``hotpot_dev_distractor_v1.json``).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file or one of its records is malformed (named in the message).
    """
    return hotpotqa_examples(read_json_records(path), str(path))


def hotpotqa_record_from_hub(row: Mapping[str, Any], location: RecordLocation) -> dict[str, Any]:
    """Convert a hub row (columnar context and supporting facts, ``id``) to the official layout."""
    record = dict(location.mapping(row))
    if "_id" not in record and "id" in record:
        record["_id"] = record.pop("id")
    record["context"] = columns_to_rows(
        location.field(record, "context"), ("title", "sentences"), location, "context"
    )
    record["supporting_facts"] = columns_to_rows(
        location.field(record, "supporting_facts"),
        ("title", "sent_id"),
        location,
        "supporting_facts",
    )
    return record
