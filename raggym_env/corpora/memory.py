"""The document collection an environment retrieves from.

A :class:`Corpus` is an ordered, de-duplicated tuple of :class:`Document` with lookups by id
and by title and a content hash that indexes and run cards record, so an index built for
one corpus is never silently used with another.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import overload

from raggym_env.corpora.base import BaseCorpus, hash_documents
from raggym_env.corpora.store import DiskCorpus, write_store
from raggym_env.types import Document

__all__ = ["Corpus", "document_id"]


def document_id(title: str, text: str) -> str:
    """Stable id of a passage: a short hash of its title and text, independent of order."""
    digest = hashlib.sha1(f"{title}\n{text}".encode()).hexdigest()
    return digest[:16]


class Corpus(BaseCorpus):
    """An immutable, ordered collection of documents with unique ids, held in memory.

    For corpora too large for memory, :meth:`to_store` writes a
    :class:`~raggym_env.corpora.store.DiskCorpus` with the same documents and hash.

    Args:
        documents: the documents; duplicate ids are an error (use :meth:`from_passages`
            to de-duplicate raw passages).
        name: a short human-readable name, recorded in run cards.
    """

    def __init__(self, documents: Iterable[Document], name: str = "corpus") -> None:
        self._docs: tuple[Document, ...] = tuple(documents)
        self.name = name
        self._by_id: dict[str, int] = {}
        self._by_title: dict[str, list[int]] = {}
        for i, doc in enumerate(self._docs):
            if doc.id in self._by_id:
                raise ValueError(f"corpus {name!r}: duplicate document id {doc.id!r}")
            self._by_id[doc.id] = i
            self._by_title.setdefault(doc.title, []).append(i)
        self._hash: str | None = None

    @classmethod
    def from_passages(cls, passages: Iterable[tuple[str, str]], name: str = "corpus") -> Corpus:
        """Build from ``(title, text)`` pairs, dropping exact duplicates, ids from content."""
        seen: set[str] = set()
        docs: list[Document] = []
        for title, text in passages:
            doc_id = document_id(title, text)
            if doc_id in seen:
                continue
            seen.add(doc_id)
            docs.append(Document(id=doc_id, title=title, text=text))
        return cls(docs, name=name)

    def __len__(self) -> int:
        return len(self._docs)

    @overload
    def __getitem__(self, index: int) -> Document: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[Document, ...]: ...

    def __getitem__(self, index: int | slice) -> Document | tuple[Document, ...]:
        return self._docs[index]

    def __iter__(self) -> Iterator[Document]:
        return iter(self._docs)

    def __contains__(self, item: object) -> bool:
        if isinstance(item, Document):
            return item.id in self._by_id
        return isinstance(item, str) and item in self._by_id

    @property
    def documents(self) -> tuple[Document, ...]:
        """All documents in order."""
        return self._docs

    def get(self, doc_id: str) -> Document:
        """Return the document with ``doc_id``; ``KeyError`` naming the id if absent."""
        try:
            return self._docs[self._by_id[doc_id]]
        except KeyError:
            raise KeyError(f"corpus {self.name!r} has no document with id {doc_id!r}") from None

    def index_of(self, doc_id: str) -> int:
        """Position of ``doc_id`` in the corpus."""
        return self._by_id[doc_id]

    def ids_for_title(self, title: str) -> tuple[str, ...]:
        """Ids of every document with exactly this title (empty if none)."""
        return tuple(self._docs[i].id for i in self._by_title.get(title, ()))

    @property
    def content_hash(self) -> str:
        """SHA-256 over ids, titles and texts in order: identifies the corpus in run cards."""
        if self._hash is None:
            self._hash = hash_documents(self._docs)
        return self._hash

    def titles_and_texts(self, start: int = 0, stop: int | None = None) -> list[tuple[str, str]]:
        """``(title, text)`` of documents ``start:stop``, for indexers streaming the corpus."""
        return [(doc.title, doc.text) for doc in self._docs[start:stop]]

    def to_store(self, directory: str | Path) -> DiskCorpus:
        """Write this corpus as a disk store and open it (same documents, order and hash)."""
        return write_store(self._docs, directory, name=self.name)

    @classmethod
    def load_jsonl(cls, path: str | Path, name: str | None = None) -> Corpus:
        """Read a file written by :meth:`save_jsonl` (documents with explicit ids)."""
        path = Path(path)
        docs = []
        with path.open(encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    docs.append(Document.from_dict(json.loads(line)))
                except (json.JSONDecodeError, KeyError) as exc:
                    raise ValueError(
                        f"{path}:{lineno}: expected a JSON object with 'id', 'title', 'text' "
                        f"({exc})"
                    ) from exc
        return cls(docs, name=name or path.stem)
