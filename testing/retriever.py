"""A deterministic, dependency-free retriever for tests.

:class:`FakeRetriever` scores documents by how many distinct lowercase words they share
with the query, records every batch it is asked, and can be told to fail, so tests can
assert batching and exercise error paths without building a real index.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from raggym_env.corpora import BaseCorpus, Corpus
from raggym_env.retrieval.base import check_search_args
from raggym_env.types import Document, ScoredDocument

__all__ = ["FakeRetriever", "build_fake_retriever"]

_WORD = re.compile(r"\w+")


def _words(text: str) -> frozenset[str]:
    return frozenset(_WORD.findall(text.lower()))


class FakeRetriever:
    """Word-overlap retriever with call recording and injectable failures.

    The score of a document is the number of distinct lowercase words its title and text
    share with the query; documents sharing none are not returned; ties keep corpus order.

    Args:
        corpus: the documents to search (a corpus or any iterable of documents).
        mapping: optional fixed answers, query -> document ids (best first); a mapped query
            returns those documents with scores ``n, n-1, ..., 1`` instead of overlap.
        fail_on: an exception raised by every ``search`` call, or a mapping query ->
            exception raised when a batch contains that query. The batch is recorded first.

    Attributes:
        calls: every batch of queries received, in order (copies).
    """

    def __init__(
        self,
        corpus: BaseCorpus | Iterable[Document],
        *,
        mapping: Mapping[str, Sequence[str]] | None = None,
        fail_on: BaseException | Mapping[str, BaseException] | None = None,
    ) -> None:
        self.corpus: BaseCorpus = (
            corpus if isinstance(corpus, BaseCorpus) else Corpus(corpus, name="fake")
        )
        self.mapping = {query: list(ids) for query, ids in (mapping or {}).items()}
        for query, ids in self.mapping.items():
            unknown = [doc_id for doc_id in ids if doc_id not in self.corpus]
            if unknown:
                raise ValueError(f"mapping for query {query!r} names unknown ids {unknown}")
        self.fail_on = fail_on
        self.calls: list[list[str]] = []
        self._doc_words = [_words(f"{doc.title} {doc.text}") for doc in self.corpus]

    def search(self, queries: list[str], k: int) -> list[list[ScoredDocument]]:
        """Return up to ``k`` overlapping (or mapped) documents per query, best first.

        Raises:
            TypeError: if ``queries`` is not a list of str or ``k`` not an int.
            ValueError: if ``k < 1``.
        """
        queries = check_search_args(queries, k)
        self.calls.append(list(queries))
        if isinstance(self.fail_on, BaseException):
            raise self.fail_on
        if self.fail_on is not None:
            for query in queries:
                if query in self.fail_on:
                    raise self.fail_on[query]
        return [self._search_one(query, k) for query in queries]

    def _search_one(self, query: str, k: int) -> list[ScoredDocument]:
        if query in self.mapping:
            ids = self.mapping[query][:k]
            return [
                ScoredDocument(self.corpus.get(doc_id), float(len(ids) - rank))
                for rank, doc_id in enumerate(ids)
            ]
        query_words = _words(query)
        scored = [
            (len(query_words & words), position) for position, words in enumerate(self._doc_words)
        ]
        ranked = sorted((item for item in scored if item[0] > 0), key=lambda s: (-s[0], s[1]))
        return [
            ScoredDocument(self.corpus[position], float(overlap))
            for overlap, position in ranked[:k]
        ]

    def __repr__(self) -> str:
        return f"FakeRetriever(corpus={self.corpus.name!r}, documents={len(self.corpus)})"


def build_fake_retriever(
    corpus: BaseCorpus,
    *,
    mapping: Mapping[str, Sequence[str]] | None = None,
    fail_on: BaseException | Mapping[str, BaseException] | None = None,
) -> FakeRetriever:
    """``make_retriever("fake", corpus, **options)`` (the ``raggym.retrievers`` entry point)."""
    return FakeRetriever(corpus, mapping=mapping, fail_on=fail_on)
