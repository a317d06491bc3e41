"""Core value types shared by every layer: documents, questions and gold evidence.

They are frozen dataclasses so they can be hashed, cached and sent across processes, and
each has a ``to_dict``/``from_dict`` pair for the JSONL files the package reads and writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["Document", "Evidence", "QAExample", "ScoredDocument"]


@dataclass(frozen=True)
class Document:
    """One retrievable passage: a stable id, a title (often a Wikipedia page) and its text."""

    id: str
    title: str
    text: str

    def to_dict(self) -> dict[str, str]:
        """Return a JSON-ready mapping."""
        return {"id": self.id, "title": self.title, "text": self.text}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Document:
        """Build from a mapping with ``id``, ``title`` and ``text`` keys."""
        return cls(id=str(data["id"]), title=str(data.get("title", "")), text=str(data["text"]))


@dataclass(frozen=True)
class ScoredDocument:
    """A document returned by a retriever with its score (higher is better)."""

    document: Document
    score: float

    @property
    def id(self) -> str:
        """The document's id."""
        return self.document.id


@dataclass(frozen=True)
class Evidence:
    """Gold supporting evidence of a question.

    Attributes:
        titles: titles of the gold supporting paragraphs, in dataset order, unique.
        sentences: ``(title, sentence index)`` pairs (HotpotQA and 2Wiki supporting facts).
        triples: ``(subject, relation, object)`` facts (2WikiMultihopQA ``evidences``).
        doc_ids: ids of the gold documents in the corpus the question is asked against;
            filled in when a corpus is attached (see ``Corpus.attach_evidence``).
    """

    titles: tuple[str, ...] = ()
    sentences: tuple[tuple[str, int], ...] = ()
    triples: tuple[tuple[str, str, str], ...] = ()
    doc_ids: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready mapping."""
        return {
            "titles": list(self.titles),
            "sentences": [list(s) for s in self.sentences],
            "triples": [list(t) for t in self.triples],
            "doc_ids": list(self.doc_ids),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Evidence:
        """Inverse of :meth:`to_dict`."""
        return cls(
            titles=tuple(data.get("titles", ())),
            sentences=tuple((str(t), int(i)) for t, i in data.get("sentences", ())),
            triples=tuple((str(s), str(r), str(o)) for s, r, o in data.get("triples", ())),
            doc_ids=tuple(data.get("doc_ids", ())),
        )


@dataclass(frozen=True)
class QAExample:
    """One benchmark question.

    Attributes:
        id: the dataset's own id (stable across loads).
        question: the question text.
        answers: every accepted gold answer (aliases); the first is the canonical one.
            For multiple choice this holds the correct option's letter and text.
        options: option letter -> option text for multiple-choice questions, else ``None``.
        answer_letter: the correct option's letter for multiple choice, else ``None``.
        evidence: gold supporting evidence (empty when the dataset has none).
        meta: dataset-specific extras (question type, level, ...).
    """

    id: str
    question: str
    answers: tuple[str, ...]
    options: Mapping[str, str] | None = None
    answer_letter: str | None = None
    evidence: Evidence = field(default_factory=Evidence)
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.question.strip():
            raise ValueError(f"QAExample {self.id!r}: the question is empty")
        if not self.answers:
            raise ValueError(f"QAExample {self.id!r}: expected at least one gold answer")
        if self.options is not None and self.answer_letter not in self.options:
            raise ValueError(
                f"QAExample {self.id!r}: answer_letter {self.answer_letter!r} is not one of "
                f"the options {sorted(self.options)}"
            )

    @property
    def is_multiple_choice(self) -> bool:
        """Whether the question comes with lettered options."""
        return self.options is not None

    def with_evidence_ids(self, doc_ids: tuple[str, ...]) -> QAExample:
        """Return a copy whose evidence points at ``doc_ids`` in a corpus."""
        return replace(self, evidence=replace(self.evidence, doc_ids=doc_ids))

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready mapping."""
        return {
            "id": self.id,
            "question": self.question,
            "answers": list(self.answers),
            "options": dict(self.options) if self.options is not None else None,
            "answer_letter": self.answer_letter,
            "evidence": self.evidence.to_dict(),
            "meta": dict(self.meta),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QAExample:
        """Inverse of :meth:`to_dict`; also the format of user question files."""
        answers = data.get("answers", data.get("answer"))
        if isinstance(answers, str):
            answers = [answers]
        if not answers:
            raise ValueError(f"question record {data.get('id')!r} has no 'answers' field")
        options = data.get("options")
        return cls(
            id=str(data["id"]),
            question=str(data["question"]),
            answers=tuple(str(a) for a in answers),
            options=dict(options) if options else None,
            answer_letter=data.get("answer_letter"),
            evidence=Evidence.from_dict(data.get("evidence") or {}),
            meta=dict(data.get("meta") or {}),
        )
