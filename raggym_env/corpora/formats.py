"""Corpus builders from benchmark records: pooled HotpotQA / 2WikiMultihopQA paragraphs.

HotpotQA and 2WikiMultihopQA records carry their own context paragraphs; pooling them over a
whole split gives a retrieval corpus whose gold documents are known (see
:func:`pooled_corpus`); ids are content hashes (:func:`~raggym_env.corpora.document_id`),
so the same passage keeps the same id across runs and machines. Users' own collections
(JSON/JSONL passages, plain text, the public Wikipedia dumps) are read by
:func:`~raggym_env.corpora.readers.load_corpus`; it and the file helpers of
:mod:`raggym_env.corpora.files` stay importable from here, where they used to live.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from raggym_env.corpora.files import (
    DEFAULT_CHUNK_OVERLAP,
    DEFAULT_CHUNK_TOKENS,
    DropLog,
    DroppedDocumentsWarning,
    chunk_text,
    iter_json_records,
    read_json_records,
)
from raggym_env.corpora.memory import Corpus
from raggym_env.corpora.readers import load_corpus

__all__ = [
    "DEFAULT_CHUNK_OVERLAP",
    "DEFAULT_CHUNK_TOKENS",
    "DropLog",
    "DroppedDocumentsWarning",
    "chunk_text",
    "iter_json_records",
    "load_corpus",
    "paragraph_text",
    "pooled_corpus",
    "read_json_records",
]

_TWOWIKI_MARKER = "evidences"


def paragraph_text(sentences: Sequence[str], joiner: str = "") -> str:
    """Join a context paragraph's sentences into one passage text, stripped at both ends.

    HotpotQA sentences carry their own leading spaces (``joiner=""`` restores the original
    paragraph); 2WikiMultihopQA sentences do not (``joiner=" "``).
    """
    return joiner.join(sentences).strip()


def _record_joiner(record: Mapping[str, Any]) -> str:
    # 2WikiMultihopQA records (and only they) carry `evidences` triples; their sentences have
    # no leading whitespace, unlike HotpotQA's.
    return " " if _TWOWIKI_MARKER in record else ""


def _context_paragraphs(record: Any, where: str) -> Iterable[tuple[str, Sequence[str]]]:
    if not isinstance(record, Mapping):
        raise ValueError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if "context" not in record:
        raise ValueError(
            f"{where}: missing field 'context' (expected HotpotQA/2WikiMultihopQA records "
            "with context [[title, [sentences]]])"
        )
    context = record["context"]
    if not isinstance(context, list):
        raise ValueError(f"{where}: 'context' must be a list of [title, [sentences]] pairs")
    for position, paragraph in enumerate(context):
        if (
            not isinstance(paragraph, (list, tuple))
            or len(paragraph) != 2
            or not isinstance(paragraph[0], str)
            or not isinstance(paragraph[1], list)
            or not all(isinstance(s, str) for s in paragraph[1])
        ):
            raise ValueError(
                f"{where}: context[{position}] must be a [title, [sentences]] pair of a "
                "string and a list of strings"
            )
        yield paragraph[0], paragraph[1]


def pooled_corpus(
    records_or_path: Iterable[Mapping[str, Any]] | str | Path,
    name: str | None = None,
    *,
    joiner: str | None = None,
) -> Corpus:
    """Pool the context paragraphs of HotpotQA / 2WikiMultihopQA records into one corpus.

    Each ``[title, sentences]`` paragraph becomes a document whose text is the joined
    sentences (see :func:`paragraph_text`) and whose id is ``document_id(title, text)``.
    Identical paragraphs (same title and text) shared by several questions appear once;
    paragraphs with the same title but different text (2Wiki has some) are kept apart, and
    ``Corpus.attach_evidence`` maps the title to all of them. Empty paragraphs are skipped.

    Args:
        records_or_path: official-format records, or a path to a JSON/JSONL file of them.
        name: the corpus name; defaults to the file stem, or ``"pooled"`` for records.
        joiner: string placed between sentences; by default ``" "`` for 2Wiki records
            (they have ``evidences``) and ``""`` for HotpotQA records.

    Raises:
        ValueError: a record has no well-formed ``context``; the message names the record.
    """
    if isinstance(records_or_path, (str, Path)):
        path = Path(records_or_path)
        records: Iterable[Mapping[str, Any]] = read_json_records(path)
        source = str(path)
        default_name = path.stem
    else:
        records = records_or_path
        source = "records"
        default_name = "pooled"

    def passages() -> Iterable[tuple[str, str]]:
        for index, record in enumerate(records):
            where = f"{source}: record {index}"
            sep = joiner if joiner is not None else _record_joiner(record)
            for title, sentences in _context_paragraphs(record, where):
                text = paragraph_text(sentences, sep)
                if text:
                    yield title, text

    return Corpus.from_passages(passages(), name=name or default_name)
