"""Gold evidence mapped into a corpus: each question's gold titles (and ids) to document ids.

Benchmarks name their gold paragraphs by Wikipedia title; a corpus from another source
(DPR passages, FlashRAG's wiki-18, the HotpotQA abstracts dump, MedRAG chunks) may spell a
title differently (case, underscores, HTML entities) or be keyed by id. :func:`map_evidence`
looks each gold title up exactly, then as a document id, then by normalised title
(:func:`normalize_title`), and reports the titles it could not map, so a low
``evidence_recall`` can be told apart from a corpus that lacks the gold pages.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from raggym_env.types import Document, QAExample

__all__ = ["EvidenceMapping", "TitledCorpus", "map_evidence", "normalize_title"]

_SPACES = re.compile(r"[\s_]+")


class TitledCorpus(Protocol):
    """What mapping needs of a corpus: title and id lookups, and one pass over its documents."""

    def ids_for_title(self, title: str) -> tuple[str, ...]:
        """Ids of the documents with exactly this title."""
        ...

    def __contains__(self, item: object) -> bool:
        """Whether a document id is in the corpus."""
        ...

    def __iter__(self) -> Iterator[Document]:
        """The documents, in order."""
        ...


def normalize_title(title: str) -> str:
    """A title in a comparable form: HTML entities decoded, NFKC, case-folded, ``_`` as space."""
    text = unicodedata.normalize("NFKC", html.unescape(title))
    return _SPACES.sub(" ", text).strip().casefold()


@dataclass(frozen=True)
class EvidenceMapping:
    """The result of :func:`map_evidence`: the examples with doc ids, and what did not map.

    Attributes:
        examples: the examples, each with ``evidence.doc_ids`` pointing into the corpus.
        titles: gold titles looked up (unique per question, summed over questions).
        by_title: of those, found as exact titles.
        by_id: found as document ids (a corpus keyed by title, e.g. ``"Paris"``).
        by_normalized_title: found only after :func:`normalize_title`.
        unmapped: ``(question id, title)`` of each gold title found nowhere.
        missing_ids: ``(question id, doc id)`` of given gold doc ids (questions without
            titles) that are not in the corpus.
    """

    examples: tuple[QAExample, ...] = field(repr=False)
    titles: int
    by_title: int
    by_id: int
    by_normalized_title: int
    unmapped: tuple[tuple[str, str], ...]
    missing_ids: tuple[tuple[str, str], ...] = ()

    @property
    def unmapped_count(self) -> int:
        """How many gold titles (per question) map to no document."""
        return len(self.unmapped)

    @property
    def unmapped_titles(self) -> tuple[str, ...]:
        """The distinct unmapped titles, in order of first appearance."""
        return tuple(dict.fromkeys(title for _, title in self.unmapped))

    @property
    def mapped_count(self) -> int:
        """How many gold titles (per question) map to at least one document."""
        return self.titles - self.unmapped_count

    def summary(self) -> str:
        """One line: how many titles mapped and how, and the first few unmapped ones."""
        text = (
            f"{self.mapped_count} of {self.titles} gold titles mapped ({self.by_title} by "
            f"title, {self.by_id} by id, {self.by_normalized_title} by normalised title)"
        )
        if self.unmapped:
            shown = ", ".join(repr(t) for t in self.unmapped_titles[:3])
            more = len(self.unmapped_titles) - 3
            text += f"; {self.unmapped_count} unmapped (e.g. {shown}"
            text += f", {more} more distinct)" if more > 0 else ")"
        if self.missing_ids:
            text += f"; {len(self.missing_ids)} gold doc ids not in the corpus"
        return text


def _examples_of(examples: Iterable[QAExample] | object) -> tuple[QAExample, ...]:
    """The examples of a task (anything with ``.examples``) or an iterable of examples."""
    items = getattr(examples, "examples", examples)
    if not isinstance(items, Iterable):
        raise TypeError(f"expected examples or a task, got {type(examples).__name__}")
    result = tuple(items)
    for item in result:
        if not isinstance(item, QAExample):
            raise TypeError(f"expected QAExample items, got {type(item).__name__}")
    return result


def map_evidence(
    examples: Iterable[QAExample] | object, corpus: TitledCorpus | None = None
) -> EvidenceMapping:
    """Map each question's gold titles to document ids of ``corpus``, reporting what is missing.

    A title is looked up exactly, then as a document id, then by :func:`normalize_title`
    (one pass over the corpus, only when some title is still missing; only the missing
    normalised titles are kept in memory). Questions without gold titles keep the doc ids
    they came with (custom questions); ids not in the corpus are reported.

    Args:
        examples: the questions, or a task (anything with ``.examples``, and ``.corpus``
            when ``corpus`` is omitted).
        corpus: the corpus; by default the task's own.

    Raises:
        TypeError: no corpus given and ``examples`` has none, or the items are not examples.
    """
    chosen = corpus if corpus is not None else getattr(examples, "corpus", None)
    if chosen is None:
        raise TypeError("map_evidence needs a corpus (or a task with one)")
    items = _examples_of(examples)
    found: dict[str, tuple[str, ...]] = {}
    how: dict[str, str] = {}
    pending: list[str] = []
    for example in items:
        for title in example.evidence.titles:
            if title in how or title in found:
                continue
            ids = chosen.ids_for_title(title)
            if ids:
                found[title], how[title] = ids, "title"
            elif title in chosen:
                found[title], how[title] = (title,), "id"
            else:
                found[title], how[title] = (), "none"
                pending.append(title)
    if pending:
        wanted: dict[str, list[str]] = {normalize_title(t): [] for t in pending}
        for doc in chosen:
            matches = wanted.get(normalize_title(doc.title))
            if matches is not None:
                matches.append(doc.id)
        for title in pending:
            if wanted[normalize_title(title)]:
                found[title] = tuple(wanted[normalize_title(title)])
                how[title] = "normalized"
    counts = {"title": 0, "id": 0, "normalized": 0}
    unmapped: list[tuple[str, str]] = []
    missing_ids: list[tuple[str, str]] = []
    attached: list[QAExample] = []
    total = 0
    for example in items:
        titles = tuple(dict.fromkeys(example.evidence.titles))
        if not titles:
            missing_ids.extend(
                (example.id, doc_id) for doc_id in example.evidence.doc_ids if doc_id not in chosen
            )
            attached.append(example)
            continue
        doc_ids: list[str] = []
        for title in titles:
            total += 1
            if how[title] == "none":
                unmapped.append((example.id, title))
            else:
                counts[how[title]] += 1
                doc_ids.extend(found[title])
        attached.append(example.with_evidence_ids(tuple(dict.fromkeys(doc_ids))))
    return EvidenceMapping(
        examples=tuple(attached),
        titles=total,
        by_title=counts["title"],
        by_id=counts["id"],
        by_normalized_title=counts["normalized"],
        unmapped=tuple(unmapped),
        missing_ids=tuple(missing_ids),
    )
