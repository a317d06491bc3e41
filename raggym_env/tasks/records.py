"""Validation of raw dataset records, with errors that name the file, record and format.

Every loader turns malformed input into a ``ValueError`` that says where (file and record
index) and what was expected, instead of a ``KeyError`` deep inside a conversion.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["RecordLocation", "clean_answers"]


@dataclass(frozen=True)
class RecordLocation:
    """Where a record sits (source and index) and which format it should follow.

    Attributes:
        source: the file path or hub spec the record came from.
        index: the record's 0-based position in the source.
        expected: a short description of the expected format, quoted in errors.
    """

    source: str
    index: int
    expected: str

    def error(self, message: str) -> ValueError:
        """Build a ``ValueError`` naming this location, the problem and the expected format."""
        return ValueError(
            f"{self.source}: record {self.index}: {message} (expected {self.expected})"
        )

    def mapping(self, record: Any) -> Mapping[str, Any]:
        """Return ``record`` if it is a mapping, else raise a located error."""
        if not isinstance(record, Mapping):
            raise self.error(f"expected an object, got {type(record).__name__}")
        return record

    def field(self, record: Mapping[str, Any], key: str) -> Any:
        """Return ``record[key]``, raising a located error when the field is missing."""
        if key not in record:
            raise self.error(f"missing field {key!r}")
        return record[key]

    def text(self, record: Mapping[str, Any], key: str, *, allow_empty: bool = False) -> str:
        """Return the text field ``key``, stripped; a located error if absent, not text or empty."""
        value = self.field(record, key)
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise self.error(f"field {key!r} must be a string, got {type(value).__name__}")
        value = str(value).strip()
        if not value and not allow_empty:
            raise self.error(f"field {key!r} is empty")
        return value

    def sequence(self, record: Mapping[str, Any], key: str) -> Sequence[Any]:
        """Return the list field ``key``; a located error if absent or not a list."""
        value = self.field(record, key)
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise self.error(f"field {key!r} must be a list, got {type(value).__name__}")
        return value


def clean_answers(answers: Sequence[Any], location: RecordLocation) -> tuple[str, ...]:
    """Strip answer aliases and drop empty ones and repeats (order kept); one must remain."""
    cleaned: list[str] = []
    for answer in answers:
        if isinstance(answer, bool) or not isinstance(answer, (str, int, float)):
            raise location.error(f"answer {answer!r} is not a string")
        text = str(answer).strip()
        if text and text not in cleaned:
            cleaned.append(text)
    if not cleaned:
        raise location.error("no non-empty gold answer")
    return tuple(cleaned)
