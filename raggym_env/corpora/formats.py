"""Corpus builders: pooled benchmark paragraphs, user passage files and chunked plain text.

HotpotQA and 2WikiMultihopQA records carry their own context paragraphs; pooling them over a
whole split gives a retrieval corpus whose gold documents are known (see
:func:`pooled_corpus`). Users bring their own collection as JSON/JSONL passages or plain text
files (see :func:`~raggym_env.corpora.readers.load_corpus`, which lives in
:mod:`raggym_env.corpora.readers` with the public corpus formats and is still importable
from here). Every builder returns a :class:`~raggym_env.corpora.Corpus`
whose ids are content hashes (:func:`~raggym_env.corpora.document_id`) unless the file gives
explicit ids, so the same passage keeps the same id across runs and machines.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raggym_env.corpora.memory import Corpus

if TYPE_CHECKING:
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

DEFAULT_CHUNK_TOKENS = 400
"""Default window size, in whitespace tokens, when chunking plain text files."""

DEFAULT_CHUNK_OVERLAP = 50
"""Default number of tokens shared by consecutive windows when chunking plain text."""

_TWOWIKI_MARKER = "evidences"


class DroppedDocumentsWarning(UserWarning):
    """A corpus file had passages that became no document (empty text, exact duplicates).

    A dropped passage cannot be retrieved, so a gold title that only it carried makes
    ``evidence_recall`` lower or ``None``; the warning counts each reason.
    """


class DropLog:
    """Counts passages that became no document, by reason, keeping the first few places.

    Memory stays bounded (a count and at most :attr:`SHOWN` places per reason), so a reader
    streaming a corpus of millions of lines can report every drop in one warning.
    """

    SHOWN = 3
    """How many places of each reason the warning names."""

    def __init__(self, reasons: Iterable[str] = ()) -> None:
        self._counts: dict[str, int] = dict.fromkeys(reasons, 0)
        self._where: dict[str, list[str]] = {reason: [] for reason in self._counts}

    def add(self, reason: str, where: str) -> None:
        """Count one dropped passage for ``reason`` found at ``where`` (e.g. ``file:12``)."""
        self._counts[reason] = self._counts.get(reason, 0) + 1
        shown = self._where.setdefault(reason, [])
        if len(shown) < self.SHOWN:
            shown.append(where)

    @property
    def total(self) -> int:
        """How many passages were dropped, over all reasons."""
        return sum(self._counts.values())

    def count(self, reason: str) -> int:
        """How many passages were dropped for ``reason``."""
        return self._counts.get(reason, 0)

    def counts(self) -> dict[str, int]:
        """Dropped passages per reason (reasons with none left out)."""
        return {reason: n for reason, n in self._counts.items() if n}

    def message(self, source: str, total: int) -> str | None:
        """The warning text (how many of ``total`` were dropped, why, where); None if none."""
        parts = []
        for reason, n in self._counts.items():
            if not n:
                continue
            where = self._where[reason]
            more = f", {n - len(where)} more" if n > len(where) else ""
            parts.append(f"{n} {reason} ({', '.join(where)}{more})")
        if not parts:
            return None
        return f"{source}: {self.total} of {total} passages dropped: {'; '.join(parts)}"

    def warn(self, source: str, total: int, stacklevel: int = 3) -> None:
        """Give one :class:`DroppedDocumentsWarning` when anything was dropped."""
        text = self.message(source, total)
        if text is not None:
            warnings.warn(text, DroppedDocumentsWarning, stacklevel=stacklevel + 1)


def _warn_dropped(source: str, total: int, reasons: Mapping[str, list[str]]) -> None:
    """One warning for a corpus file: how many passages were dropped, why, and which."""
    log = DropLog(reasons)
    for reason, where in reasons.items():
        for place in where:
            log.add(reason, place)
    log.warn(source, total, stacklevel=3)


def read_json_records(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSON list of objects or a JSONL file (one object per line) into dicts.

    The format is detected from the content (a leading ``[`` means a JSON list), so both
    ``.json`` and ``.jsonl`` files of either shape are accepted.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the content is not valid JSON, or not a list/sequence of objects; the
            message names the file and the offending record or line.
    """
    return list(iter_json_records(path))


def _first_char(path: Path) -> str:
    """The first non-whitespace character of a UTF-8 file ('' when blank)."""
    with path.open(encoding="utf-8-sig") as f:
        while chunk := f.read(1 << 16):
            stripped = chunk.lstrip()
            if stripped:
                return stripped[0]
    return ""


def iter_json_records(path: str | Path) -> Iterator[dict[str, Any]]:
    """Stream the objects of a JSON list or JSONL file (JSONL line by line, in bounded memory).

    Same input and errors as :func:`read_json_records`; a JSON list is parsed whole (the
    format needs it), JSONL is read one line at a time.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        first = _first_char(path)
        if not first:
            raise ValueError(f"{path}: the file is empty (expected a JSON list or JSONL records)")
        if first == "[":
            yield from _json_list(path)
            return
        with path.open(encoding="utf-8-sig") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                yield _jsonl_object(path, lineno, line)
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc})") from exc


def _json_list(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of objects")
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            raise ValueError(
                f"{path}: record {index}: expected a JSON object, got {type(item).__name__}"
            )
    return data


def _jsonl_object(path: Path, lineno: int, line: str) -> dict[str, Any]:
    try:
        item = json.loads(line)
    except json.JSONDecodeError as exc:
        hint = ""
        if lineno == 1 and _is_single_object(path.read_text(encoding="utf-8-sig")):
            hint = " (the file holds one JSON object; expected a list or one object per line)"
        raise ValueError(f"{path}:{lineno}: invalid JSON line: {exc.msg}{hint}") from exc
    if not isinstance(item, dict):
        raise ValueError(
            f"{path}:{lineno}: expected a JSON object per line, got {type(item).__name__}"
        )
    return item


def _is_single_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except json.JSONDecodeError:
        return False


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


def _check_window(size: int, overlap: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise ValueError(f"chunk size must be a positive integer, got {size!r}")
    if isinstance(overlap, bool) or not isinstance(overlap, int) or overlap < 0:
        raise ValueError(f"chunk overlap must be a non-negative integer, got {overlap!r}")
    if overlap >= size:
        raise ValueError(f"chunk overlap ({overlap}) must be smaller than the chunk size ({size})")


def chunk_text(
    text: str, size: int = DEFAULT_CHUNK_TOKENS, overlap: int = DEFAULT_CHUNK_OVERLAP
) -> list[str]:
    """Split text into windows of ``size`` whitespace tokens, consecutive ones sharing ``overlap``.

    Windows start every ``size - overlap`` tokens; the last window ends at the last token
    (it may be shorter), and no window lies wholly inside the previous one. Tokens are
    re-joined with single spaces. Empty or blank text gives no chunks.

    Raises:
        ValueError: ``size`` is not positive, or ``overlap`` is negative or not below ``size``.
    """
    _check_window(size, overlap)
    tokens = text.split()
    chunks: list[str] = []
    step = size - overlap
    start = 0
    while start < len(tokens):
        chunks.append(" ".join(tokens[start : start + size]))
        if start + size >= len(tokens):
            break
        start += step
    return chunks


def __getattr__(name: str) -> Any:
    """``load_corpus`` moved to :mod:`raggym_env.corpora.readers`; still importable from here."""
    if name == "load_corpus":
        from raggym_env.corpora import readers

        return readers.load_corpus
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
