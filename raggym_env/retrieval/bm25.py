"""BM25 lexical retrieval on bm25s, with an on-disk index that reloads memory-mapped.

:class:`BM25Retriever` indexes ``title + text`` of every document of a :class:`Corpus`
(title first, so a query naming a page matches it, which matters for HotpotQA) and answers
batched queries with one vectorised bm25s ``retrieve`` call. An index saved with
:meth:`BM25Retriever.save` records the corpus content hash and the parameters in a
``raggym_index.json`` manifest, so it is never silently used with another corpus.
:func:`load_or_build` shares one index between the many environment copies of a process
and, given a directory, between processes and runs.

Scoring defaults follow bm25s: ``method="lucene"`` (Lucene's idf
``log(1 + (N - df + 0.5) / (df + 0.5))`` and term-frequency saturation), ``k1=1.5``,
``b=0.75``. Lucene's own ``BM25Similarity`` uses ``k1=1.2``; Pyserini's default is
``k1=0.9, b=0.4``. Pass them explicitly to reproduce those systems.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import bm25s
import numpy as np

from raggym_env.caches import LRUCache
from raggym_env.corpora import Corpus
from raggym_env.retrieval.base import IndexMismatchError, check_search_args
from raggym_env.retrieval.index_dir import (
    MANIFEST_NAME,
    directory_lock,
    read_manifest_json,
    staged_index_dir,
)
from raggym_env.retrieval.tokenize import STOPWORD_LISTS, Analyzer
from raggym_env.types import ScoredDocument

__all__ = [
    "FORMAT_VERSION",
    "INDEX_CACHE_SIZE",
    "MANIFEST_NAME",
    "BM25Config",
    "BM25Retriever",
    "load_or_build",
    "read_manifest",
]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
"""Version of the on-disk layout; bumped on any incompatible change."""
_FORMAT = "raggym-bm25-index"
_BACKEND = "bm25s"
_BM25S_DIR = "bm25s"
_ANALYZER_FILE = "analyzer.json"
_CORPUS_FILE = "corpus.jsonl"
_BM25S_FILES = (
    "params.index.json",
    "vocab.index.json",
    "data.csc.index.npy",
    "indices.csc.index.npy",
    "indptr.csc.index.npy",
)

BM25Method = Literal["lucene", "robertson", "atire"]
_METHODS: tuple[str, ...] = ("lucene", "robertson", "atire")


@dataclass(frozen=True)
class BM25Config:
    """Everything that determines a BM25 index besides the corpus (hashable, JSON-ready).

    Attributes:
        k1: term-frequency saturation (>= 0).
        b: document-length normalisation, in ``[0, 1]``.
        method: bm25s scoring variant: ``"lucene"``, ``"robertson"`` or ``"atire"``
            (BM25L and BM25+ give every document a non-zero score, so they are not offered).
        stemmer: PyStemmer algorithm name, or ``None`` for no stemming.
        stopwords: a stopword list name (``"en"``, ...), explicit words (stored sorted),
            or ``None``.
    """

    k1: float = 1.5
    b: float = 0.75
    method: BM25Method = "lucene"
    stemmer: str | None = "english"
    stopwords: str | tuple[str, ...] | None = "en"

    def __post_init__(self) -> None:
        if isinstance(self.k1, bool) or not isinstance(self.k1, (int, float)) or self.k1 < 0:
            raise ValueError(f"k1 must be a number >= 0, got {self.k1!r}")
        if isinstance(self.b, bool) or not isinstance(self.b, (int, float)) or not 0 <= self.b <= 1:
            raise ValueError(f"b must be a number in [0, 1], got {self.b!r}")
        if self.method not in _METHODS:
            raise ValueError(f"method must be one of {_METHODS}, got {self.method!r}")
        object.__setattr__(self, "k1", float(self.k1))
        object.__setattr__(self, "b", float(self.b))
        if isinstance(self.stopwords, str):
            if self.stopwords not in STOPWORD_LISTS:
                raise ValueError(
                    f"unknown stopword list {self.stopwords!r}; expected one of "
                    f"{sorted(STOPWORD_LISTS)}, a sequence of words, or None"
                )
        elif self.stopwords is not None:
            words = tuple(sorted({w.lower() for w in self.stopwords}))
            object.__setattr__(self, "stopwords", words)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready mapping (stopword tuples become lists)."""
        data = asdict(self)
        if isinstance(self.stopwords, tuple):
            data["stopwords"] = list(self.stopwords)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BM25Config:
        """Inverse of :meth:`to_dict`."""
        stopwords = data.get("stopwords")
        return cls(
            k1=data["k1"],
            b=data["b"],
            method=data["method"],
            stemmer=data.get("stemmer"),
            stopwords=tuple(stopwords) if isinstance(stopwords, list) else stopwords,
        )

    def analyzer(self) -> Analyzer:
        """A fresh analyzer with these stemming and stopword settings."""
        return Analyzer(stemmer=self.stemmer, stopwords=self.stopwords)


def _check_n_threads(n_threads: int) -> int:
    if isinstance(n_threads, bool) or not isinstance(n_threads, int):
        raise TypeError(f"n_threads must be an int, got {type(n_threads).__name__}")
    if n_threads == -1:
        return os.cpu_count() or 1
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1 or -1 (all cores), got {n_threads}")
    return n_threads


def _identity_hash(manifest: Mapping[str, Any]) -> str:
    """SHA-256 of the manifest without its timestamp: equal for equal corpus and settings."""
    content = {key: value for key, value in manifest.items() if key != "created"}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


class BM25Retriever:
    """Batched BM25 search over a corpus, backed by a bm25s sparse index.

    Create one with :meth:`build`, :meth:`load` or :func:`load_or_build`; the constructor
    is for those. Searching is thread-safe and never mutates the index, so one instance can
    serve every environment copy of a process.

    A document is returned only if it shares at least one term with the query (a positive
    score), so a query made only of stopwords or unknown words returns ``[]``. Equal
    scores are ordered by corpus position.
    """

    def __init__(
        self,
        model: bm25s.BM25,
        analyzer: Analyzer,
        corpus: Corpus,
        manifest: Mapping[str, Any],
        *,
        n_threads: int = 1,
    ) -> None:
        self._model = model
        self._analyzer = analyzer
        self._corpus = corpus
        self._vocab: Mapping[str, int] = model.vocab_dict
        self._manifest = dict(manifest)
        self._params = BM25Config.from_dict(manifest["params"])
        self._index_hash = _identity_hash(manifest)
        self._n_threads = _check_n_threads(n_threads)

    @classmethod
    def build(
        cls,
        corpus: Corpus,
        *,
        k1: float = 1.5,
        b: float = 0.75,
        method: BM25Method = "lucene",
        stemmer: str | None = "english",
        stopwords: str | tuple[str, ...] | None = "en",
        n_threads: int = 1,
    ) -> BM25Retriever:
        """Index the title and then the text of every document of ``corpus``.

        Args:
            corpus: the documents; must not be empty.
            k1: term-frequency saturation.
            b: document-length normalisation.
            method: bm25s scoring variant (see :class:`BM25Config`).
            stemmer: PyStemmer algorithm, or ``None``.
            stopwords: stopword list name, explicit words, or ``None``.
            n_threads: search threads (1 searches in the calling thread; -1 uses all cores).

        Raises:
            ValueError: for an empty corpus, one without any indexable term, or bad params.
        """
        params = BM25Config(k1=k1, b=b, method=method, stemmer=stemmer, stopwords=stopwords)
        return cls._build(corpus, params, n_threads=n_threads)

    @classmethod
    def _build(cls, corpus: Corpus, params: BM25Config, *, n_threads: int) -> BM25Retriever:
        if len(corpus) == 0:
            raise ValueError(f"cannot build a BM25 index over the empty corpus {corpus.name!r}")
        logger.info("building BM25 index over %d documents of %r", len(corpus), corpus.name)
        analyzer = params.analyzer()
        token_ids, vocab = analyzer.fit(f"{doc.title}\n{doc.text}" for doc in corpus)
        if not vocab:
            raise ValueError(
                f"corpus {corpus.name!r} has no indexable terms (every word is a stopword or "
                f"shorter than two characters); check the stopwords setting {params.stopwords!r}"
            )
        model = bm25s.BM25(k1=params.k1, b=params.b, method=params.method, backend="numpy")
        model.index((token_ids, vocab), create_empty_token=False, show_progress=False)
        manifest = {
            "format": _FORMAT,
            "format_version": FORMAT_VERSION,
            "backend": _BACKEND,
            "bm25s_version": bm25s.__version__,
            "params": params.to_dict(),
            "corpus": {
                "name": corpus.name,
                "content_hash": corpus.content_hash,
                "num_documents": len(corpus),
            },
            "vocabulary_size": len(vocab),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        return cls(model, analyzer, corpus, manifest, n_threads=n_threads)

    # -- properties ---------------------------------------------------------------------

    @property
    def corpus(self) -> Corpus:
        """The indexed corpus; result documents come from it."""
        return self._corpus

    @property
    def params(self) -> BM25Config:
        """The scoring and analysis parameters of the index."""
        return self._params

    @property
    def index_hash(self) -> str:
        """SHA-256 of the manifest minus its timestamp: identifies corpus + settings + format."""
        return self._index_hash

    @property
    def manifest(self) -> dict[str, Any]:
        """A copy of the manifest written by :meth:`save`."""
        return json.loads(json.dumps(self._manifest))

    @property
    def n_threads(self) -> int:
        """Threads a search uses (1: the calling thread only)."""
        return self._n_threads

    @property
    def vocabulary_size(self) -> int:
        """Number of distinct index terms."""
        return len(self._vocab)

    def with_threads(self, n_threads: int) -> BM25Retriever:
        """Return a retriever sharing this index (no copy) that searches with ``n_threads``."""
        return type(self)(
            self._model, self._analyzer, self._corpus, self._manifest, n_threads=n_threads
        )

    def __repr__(self) -> str:
        return (
            f"BM25Retriever(corpus={self._corpus.name!r}, documents={len(self._corpus)}, "
            f"vocabulary={self.vocabulary_size}, params={self._params}, "
            f"index_hash={self._index_hash[:12]})"
        )

    # -- search -------------------------------------------------------------------------

    def search(self, queries: list[str], k: int) -> list[list[ScoredDocument]]:
        """Return up to ``k`` documents per query, best first, in one batched bm25s call.

        ``k`` larger than the corpus is clamped to its size.

        Raises:
            TypeError: if ``queries`` is not a list of str or ``k`` not an int.
            ValueError: if ``k < 1``.
        """
        queries = check_search_args(queries, k)
        results: list[list[ScoredDocument]] = [[] for _ in queries]
        encoded = self._analyzer.encode(queries, self._vocab)
        active = [i for i, ids in enumerate(encoded) if ids]
        if not active:
            return results
        top_k = min(int(k), len(self._corpus))
        # One extra hit reveals a tie across the cut, which bm25s would break arbitrarily.
        fetch = min(top_k + 1, len(self._corpus))
        doc_idx, scores = self._model.retrieve(
            [encoded[i] for i in active],
            k=fetch,
            sorted=True,
            return_as="tuple",
            show_progress=False,
            n_threads=0 if self._n_threads == 1 else self._n_threads,
        )
        docs = self._corpus.documents
        for row, query_index in enumerate(active):
            row_docs, row_scores = doc_idx[row], scores[row]
            if fetch > top_k and row_scores[top_k] == row_scores[top_k - 1] > 0:
                row_docs, row_scores = self._tied_cut(encoded[query_index], top_k)
            order = np.lexsort((row_docs, -row_scores))[:top_k]  # score desc, then position
            results[query_index] = [
                ScoredDocument(document=docs[d], score=s)
                for d, s in zip(row_docs[order].tolist(), row_scores[order].tolist(), strict=True)
                if s > 0
            ]
        return results

    def _tied_cut(self, term_ids: list[int], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` of one query when documents tie at the cut: ties go by corpus order."""
        full = np.asarray(self._model.get_scores_from_ids(term_ids))
        cut = np.partition(full, len(full) - k)[len(full) - k]  # the k-th largest score
        above = np.flatnonzero(full > cut)
        tied = np.flatnonzero(full == cut)[: k - len(above)]
        chosen = np.concatenate([above, tied])
        return chosen, full[chosen]

    # -- persistence --------------------------------------------------------------------

    def save(self, directory: str | Path) -> Path:
        """Write the index, analyzer, corpus and manifest to ``directory``; returns it.

        Files are written to a temporary sibling directory that is then renamed into
        place, so a crash never leaves a half-written index under ``directory``. An
        existing index there is replaced; any other non-empty directory is refused.

        Raises:
            FileExistsError: if ``directory`` exists, is not empty and holds no raggym index.
        """
        directory = Path(directory)
        with staged_index_dir(directory, self._manifest) as tmp:
            self._model.save(tmp / _BM25S_DIR, show_progress=False)
            (tmp / _ANALYZER_FILE).write_text(
                json.dumps(self._analyzer.state_dict(), indent=1), encoding="utf-8"
            )
            self._corpus.save_jsonl(tmp / _CORPUS_FILE)
        logger.info("saved BM25 index %s to %s", self._index_hash[:12], directory)
        return directory

    @classmethod
    def load(
        cls,
        directory: str | Path,
        *,
        corpus: Corpus | None = None,
        mmap: bool = True,
        n_threads: int = 1,
    ) -> BM25Retriever:
        """Load an index written by :meth:`save`.

        Args:
            directory: the index directory.
            corpus: the corpus the index is expected to belong to; when given, its content
                hash must equal the manifest's and the saved corpus file is not read (fast
                path for environment copies). When omitted the saved corpus is loaded and
                checked against the manifest.
            mmap: memory-map the score arrays (shared page cache, near-instant load).
            n_threads: search threads (see :meth:`build`).

        Raises:
            FileNotFoundError: if the directory, its manifest or an index file is missing.
            IndexMismatchError: if the manifest is unreadable, of another format version,
                or the corpus does not match the one the index was built from.
        """
        directory = Path(directory)
        manifest = read_manifest(directory)
        expected_hash = manifest["corpus"]["content_hash"]
        required = [directory / _ANALYZER_FILE] + [
            directory / _BM25S_DIR / name for name in _BM25S_FILES
        ]
        if corpus is None:
            required.append(directory / _CORPUS_FILE)
        missing = [str(path.relative_to(directory)) for path in required if not path.is_file()]
        if missing:
            raise FileNotFoundError(
                f"BM25 index at {directory} is incomplete: missing {', '.join(missing)}; "
                "rebuild it with BM25Retriever.build(...).save(...)"
            )
        if corpus is not None:
            if corpus.content_hash != expected_hash:
                raise IndexMismatchError(
                    f"BM25 index at {directory} was built for corpus "
                    f"{manifest['corpus'].get('name')!r} with content hash {expected_hash}, "
                    f"but the corpus given ({corpus.name!r}, {len(corpus)} documents) has "
                    f"content hash {corpus.content_hash}; rebuild the index for this corpus"
                )
        else:
            corpus = Corpus.load_jsonl(
                directory / _CORPUS_FILE, name=str(manifest["corpus"].get("name", "corpus"))
            )
            if corpus.content_hash != expected_hash:
                raise IndexMismatchError(
                    f"{directory / _CORPUS_FILE} has content hash {corpus.content_hash} but "
                    f"the manifest records {expected_hash}: the index directory was modified"
                )
        try:
            analyzer = Analyzer.from_state(
                json.loads((directory / _ANALYZER_FILE).read_text(encoding="utf-8"))
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise IndexMismatchError(
                f"{directory / _ANALYZER_FILE} is not a valid analyzer state: {exc}"
            ) from exc
        model = bm25s.BM25.load(directory / _BM25S_DIR, mmap=mmap, show_progress=False)
        params = BM25Config.from_dict(manifest["params"])
        stored = (model.k1, model.b, model.method, int(model.scores["num_docs"]))
        wanted = (params.k1, params.b, params.method, len(corpus))
        if stored != wanted:
            raise IndexMismatchError(
                f"bm25s index in {directory / _BM25S_DIR} has (k1, b, method, documents) = "
                f"{stored}, but the manifest and corpus say {wanted}"
            )
        logger.info("loaded BM25 index %s from %s (mmap=%s)", manifest["corpus"], directory, mmap)
        return cls(model, analyzer, corpus, manifest, n_threads=n_threads)


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """Read and validate the manifest of a saved index.

    Raises:
        FileNotFoundError: if ``directory`` or its manifest does not exist.
        IndexMismatchError: if the manifest is not valid JSON, or is of another format,
            format version or backend.
    """
    path = Path(directory) / MANIFEST_NAME
    manifest = read_manifest_json(
        directory,
        kind="BM25",
        expected=(_FORMAT, FORMAT_VERSION, _BACKEND),
        writer="BM25Retriever.save",
    )
    try:
        BM25Config.from_dict(manifest["params"])
        str(manifest["corpus"]["content_hash"])
        int(manifest["corpus"]["num_documents"])
    except (KeyError, TypeError, ValueError) as exc:
        raise IndexMismatchError(f"{path} is malformed ({exc!r}); rebuild the index") from exc
    return manifest


INDEX_CACHE_SIZE = 8
"""How many retrievers :func:`load_or_build` keeps (the least recently used goes first).

One index asked for with two ``n_threads`` takes two entries that share their arrays.
:func:`raggym_env.clear_caches` empties the cache.
"""

_CacheKey = tuple[str, BM25Config, int]
_CACHE: LRUCache[_CacheKey, BM25Retriever] = LRUCache("bm25.indexes", INDEX_CACHE_SIZE)
_CACHE_LOCK = threading.RLock()  # held while building, so one index is built once


def _matches(directory: Path, corpus: Corpus, params: BM25Config) -> bool:
    """Whether ``directory`` holds a current-format index for this corpus and params."""
    try:
        manifest = read_manifest(directory)
    except (FileNotFoundError, IndexMismatchError):
        return False
    return (
        manifest["corpus"]["content_hash"] == corpus.content_hash
        and BM25Config.from_dict(manifest["params"]) == params
    )


def load_or_build(
    corpus: Corpus,
    index_dir: str | Path | None = None,
    *,
    k1: float = 1.5,
    b: float = 0.75,
    method: BM25Method = "lucene",
    stemmer: str | None = "english",
    stopwords: str | tuple[str, ...] | None = "en",
    n_threads: int = 1,
    mmap: bool = True,
) -> BM25Retriever:
    """Return a BM25 retriever for ``corpus``, shared with every caller asking the same.

    Retrievers are cached in this process by (corpus content hash, params, n_threads), so
    many environment copies share one index; the cache keeps the :data:`INDEX_CACHE_SIZE`
    most recently used. With ``index_dir``, an index there that
    matches the corpus and params is loaded (memory-mapped when ``mmap``); otherwise one
    is built and saved there, replacing a stale index. Concurrent processes wanting the
    same ``index_dir`` build it once (an exclusive file lock serialises them, on POSIX).

    Raises:
        FileExistsError: if ``index_dir`` is a non-empty directory that is not an index.
    """
    params = BM25Config(k1=k1, b=b, method=method, stemmer=stemmer, stopwords=stopwords)
    n_threads = _check_n_threads(n_threads)
    directory = Path(index_dir) if index_dir is not None else None
    key: _CacheKey = (corpus.content_hash, params, n_threads)
    with _CACHE_LOCK:
        retriever = _CACHE.get(key)
        if retriever is None:
            sibling = next(
                (r for (h, p, _), r in reversed(_CACHE.items()) if (h, p) == key[:2]),
                None,
            )
            if sibling is not None:
                retriever = sibling.with_threads(n_threads)
        if retriever is not None and (directory is None or _matches(directory, corpus, params)):
            _CACHE.put(key, retriever)
            return retriever
        if directory is None:
            retriever = BM25Retriever._build(corpus, params, n_threads=n_threads)
        else:
            with directory_lock(directory):
                if retriever is None and _matches(directory, corpus, params):
                    retriever = BM25Retriever.load(
                        directory, corpus=corpus, mmap=mmap, n_threads=n_threads
                    )
                else:
                    if retriever is None:
                        retriever = BM25Retriever._build(corpus, params, n_threads=n_threads)
                    retriever.save(directory)
        _CACHE.put(key, retriever)
        return retriever
