"""Shared pieces of corpus file reading: JSON records, word-window chunking, dropped passages.

The builders of :mod:`raggym_env.corpora.formats` and the readers of
:mod:`raggym_env.corpora.readers` both use them: :func:`read_json_records` /
:func:`iter_json_records` for JSON lists and JSONL, :func:`chunk_text` for plain text, and
:class:`DropLog` for the one :class:`DroppedDocumentsWarning` per source that counts the
passages that became no document.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_CHUNK_OVERLAP",
    "DEFAULT_CHUNK_TOKENS",
    "DropLog",
    "DroppedDocumentsWarning",
    "check_window",
    "chunk_text",
    "iter_json_records",
    "read_json_records",
]

DEFAULT_CHUNK_TOKENS = 400
"""Default window size, in whitespace tokens, when chunking plain text files."""

DEFAULT_CHUNK_OVERLAP = 50
"""Default number of tokens shared by consecutive windows when chunking plain text."""


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


def check_window(size: int, overlap: int) -> None:
    """Check a word window: ``size`` positive, ``overlap`` non-negative and below ``size``."""
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
    check_window(size, overlap)
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
