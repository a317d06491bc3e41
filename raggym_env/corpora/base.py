"""What every corpus offers, in memory or on disk.

:class:`BaseCorpus` is the read-only ``Sequence[Document]`` the environment, retrievers,
tasks and trainers work with: lookups by id and title, a content hash that indexes and run
cards record, streaming access for indexers, evidence linking and export to JSONL.
:class:`~raggym_env.corpora.memory.Corpus` keeps its documents as Python objects;
:class:`~raggym_env.corpora.store.DiskCorpus` reads them from a store on disk.
"""

from __future__ import annotations

import hashlib
import json
from abc import abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import overload

from raggym_env.types import Document, QAExample

__all__ = ["STREAM_CHUNK", "BaseCorpus", "ContentHasher", "hash_documents"]

STREAM_CHUNK = 4096
"""Documents per chunk when a corpus is walked in order (iteration, export, hashing)."""


class ContentHasher:
    """Incremental corpus content hash: SHA-256 over each id, title and text, NUL-terminated."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()

    def add(self, doc_id: str, title: str, text: str) -> None:
        """Feed one document (in corpus order)."""
        self.add_encoded(doc_id.encode(), title.encode(), text.encode())

    def add_encoded(self, doc_id: bytes, title: bytes, text: bytes) -> None:
        """Feed one document already encoded as UTF-8 (what a store writer has at hand)."""
        h = self._h
        for part in (doc_id, title, text):
            h.update(part)
            h.update(b"\x00")

    def hexdigest(self) -> str:
        """The hash of everything fed so far."""
        return self._h.hexdigest()


def hash_documents(documents: Iterable[Document]) -> str:
    """The content hash of ``documents`` in order (what ``BaseCorpus.content_hash`` returns)."""
    hasher = ContentHasher()
    for doc in documents:
        hasher.add(doc.id, doc.title, doc.text)
    return hasher.hexdigest()


class BaseCorpus(Sequence[Document]):
    """An immutable, ordered collection of documents with unique ids.

    Subclasses provide storage (:meth:`__len__`, :meth:`__getitem__`, :meth:`index_of`,
    :meth:`ids_for_title`, :attr:`content_hash`); lookups, streaming, evidence linking and
    export are shared. Two corpora with equal documents in equal order have equal hashes,
    whatever their storage.
    """

    name: str

    # -- storage ---------------------------------------------------------------------------

    @abstractmethod
    def __len__(self) -> int:
        """Number of documents."""

    @overload
    def __getitem__(self, index: int) -> Document: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Document]: ...

    @abstractmethod
    def __getitem__(self, index: int | slice) -> Document | Sequence[Document]:
        """The document at ``index`` (a slice gives a sequence of documents)."""

    @abstractmethod
    def index_of(self, doc_id: str) -> int:
        """Position of ``doc_id`` in the corpus; ``KeyError`` if absent."""

    @abstractmethod
    def ids_for_title(self, title: str) -> tuple[str, ...]:
        """Ids of every document with exactly this title, in corpus order (empty if none)."""

    @property
    @abstractmethod
    def content_hash(self) -> str:
        """SHA-256 over ids, titles and texts in order: identifies the corpus in run cards."""

    # -- shared ----------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Document]:
        for start in range(0, len(self), STREAM_CHUNK):
            yield from self[start : start + STREAM_CHUNK]

    def __contains__(self, item: object) -> bool:
        if isinstance(item, Document):
            doc_id = item.id
        elif isinstance(item, str):
            doc_id = item
        else:
            return False
        try:
            self.index_of(doc_id)
        except KeyError:
            return False
        return True

    def __repr__(self) -> str:
        kind = type(self).__name__
        return f"{kind}(name={self.name!r}, documents={len(self)}, hash={self.content_hash[:12]})"

    @property
    def documents(self) -> Sequence[Document]:
        """All documents in order (the corpus itself where they are not held in memory)."""
        return self

    def get(self, doc_id: str) -> Document:
        """Return the document with ``doc_id``; ``KeyError`` naming the id if absent."""
        try:
            index = self.index_of(doc_id)
        except KeyError:
            raise KeyError(f"corpus {self.name!r} has no document with id {doc_id!r}") from None
        return self[index]

    def titles_and_texts(self, start: int = 0, stop: int | None = None) -> list[tuple[str, str]]:
        """``(title, text)`` of documents ``start:stop``, for indexers streaming the corpus."""
        return [(doc.title, doc.text) for doc in self[start:stop]]

    def attach_evidence(self, examples: Iterable[QAExample]) -> list[QAExample]:
        """Map each example's gold evidence titles to document ids of this corpus."""
        attached = []
        for ex in examples:
            ids: list[str] = []
            for title in ex.evidence.titles:
                ids.extend(self.ids_for_title(title))
            attached.append(ex.with_evidence_ids(tuple(dict.fromkeys(ids))))
        return attached

    def save_jsonl(self, path: str | Path) -> Path:
        """Write one ``{"id", "title", "text"}`` object per line; returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            for doc in self:
                f.write(json.dumps(doc.to_dict(), ensure_ascii=False) + "\n")
        tmp.replace(path)
        return path
