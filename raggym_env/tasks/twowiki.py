"""2WikiMultihopQA (Ho et al., 2020): loader for the official dev JSON.

Official record: ``_id, type, question, context [[title, [sentences]]],
supporting_facts [[title, sent_idx]], evidences [[subject, relation, object]], answer``;
some releases add ``answer_aliases`` and ``evidences_id``, which are kept when present.
Hub copies (e.g. ``framolfese/2WikiMultihopQA``) may store ``context`` and
``supporting_facts`` column-wise; :func:`twowiki_record_from_hub` converts them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from raggym_env.corpora import read_json_records
from raggym_env.tasks.hotpotqa import supporting_evidence
from raggym_env.tasks.hub import HubSource, columns_to_rows
from raggym_env.tasks.records import RecordLocation, clean_answers
from raggym_env.types import Evidence, QAExample

__all__ = ["TWOWIKI_HUB", "load_twowiki", "twowiki_examples", "twowiki_record_from_hub"]

TWOWIKI_HUB = HubSource(repo="framolfese/2WikiMultihopQA", config=None, split="validation")
"""The default hub source: a copy of the official dev set (12,576 questions)."""

_EXPECTED = (
    "a 2WikiMultihopQA record with _id, question, answer, context [[title, [sentences]]], "
    "supporting_facts [[title, sent_idx]] and evidences [[subject, relation, object]]"
)

# Column names used by hub copies that store evidence triples column-wise.
_TRIPLE_COLUMNS = (("subject", "relation", "object"), ("fact", "relation", "entity"))


def _triples(value: Any, location: RecordLocation) -> tuple[tuple[str, str, str], ...]:
    if isinstance(value, Mapping):
        for keys in _TRIPLE_COLUMNS:
            if all(key in value for key in keys):
                value = columns_to_rows(value, keys, location, "evidences")
                break
        else:
            raise location.error("field 'evidences' must be a list of [subject, relation, object]")
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise location.error("field 'evidences' must be a list of [subject, relation, object]")
    triples: list[tuple[str, str, str]] = []
    for position, triple in enumerate(value):
        if (
            isinstance(triple, (str, bytes))
            or not isinstance(triple, Sequence)
            or len(triple) != 3
            or not all(isinstance(part, str) for part in triple)
        ):
            raise location.error(
                f"evidences[{position}] must be a [subject, relation, object] triple of strings"
            )
        triples.append((triple[0], triple[1], triple[2]))
    return tuple(triples)


def twowiki_examples(records: Sequence[Any], source: str) -> list[QAExample]:
    """Convert official-format 2WikiMultihopQA records to examples (evidence triples, type meta).

    Raises:
        ValueError: a record is malformed; the message names ``source`` and the index.
    """
    examples: list[QAExample] = []
    for index, raw in enumerate(records):
        location = RecordLocation(source, index, _EXPECTED)
        record = location.mapping(raw)
        location.sequence(record, "context")
        titles, sentences = supporting_evidence(
            location.field(record, "supporting_facts"), location
        )
        aliases = record.get("answer_aliases") or []
        if isinstance(aliases, str):
            aliases = [aliases]
        answers = clean_answers([location.field(record, "answer"), *aliases], location)
        meta: dict[str, Any] = {}
        if "type" in record:
            meta["type"] = record["type"]
        if "evidences_id" in record:
            meta["evidences_id"] = record["evidences_id"]
        examples.append(
            QAExample(
                id=location.text(record, "_id"),
                question=location.text(record, "question"),
                answers=answers,
                evidence=Evidence(
                    titles=titles,
                    sentences=sentences,
                    triples=_triples(record.get("evidences", []), location),
                ),
                meta=meta,
            )
        )
    return examples


def load_twowiki(path: str | Path) -> list[QAExample]:
    """Load a 2WikiMultihopQA JSON file in the official format (e.g. ``dev.json``).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file or one of its records is malformed (named in the message).
    """
    return twowiki_examples(read_json_records(path), str(path))


def twowiki_record_from_hub(row: Mapping[str, Any], location: RecordLocation) -> dict[str, Any]:
    """Convert a hub row (columnar fields, ``id``) to the official 2WikiMultihopQA layout."""
    record = dict(location.mapping(row))
    if "_id" not in record and "id" in record:
        record["_id"] = record.pop("id")
    record["context"] = columns_to_rows(
        location.field(record, "context"), ("title", ("sentences", "content")), location, "context"
    )
    record["supporting_facts"] = columns_to_rows(
        location.field(record, "supporting_facts"),
        ("title", "sent_id"),
        location,
        "supporting_facts",
    )
    evidences = record.get("evidences", [])
    if isinstance(evidences, Mapping):
        evidences = [list(t) for t in _triples(evidences, location)]
    # The pooled corpus tells 2Wiki records from HotpotQA ones by this key.
    record["evidences"] = evidences
    return record
