"""BM25 lexical retrieval on raggym's sharded inverted index, saved to disk and memory-mapped.

:class:`BM25Retriever` indexes ``title + text`` of every document of a corpus (title first,
so a query naming a page matches it, which matters for HotpotQA) and answers batched
queries exactly (see :mod:`raggym_env.retrieval.inverted`: shards built in bounded memory,
scored with global statistics, searched with a compiled MaxScore kernel when numba is
installed). An index saved with :meth:`BM25Retriever.save` records the corpus content hash
and the parameters in a ``raggym_index.json`` manifest, so it is never silently used with
another corpus. :func:`load_or_build` shares one index between the many environment copies
of a process and, given a directory, between processes and runs.

Scoring follows the bm25s conventions, computed exactly from the analysed tokens and the
true document lengths: ``method="lucene"`` (idf ``log(1 + (N - df + 0.5) / (df + 0.5))``,
frequency part ``tf / (tf + k1 * (1 - b + b * dl / avgdl))``), ``k1=1.5``, ``b=0.75``.
Lucene's own ``BM25Similarity`` uses ``k1=1.2``; Pyserini's default is ``k1=0.9, b=0.4``.
Pass them explicitly to reproduce those systems.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import weakref
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from raggym_env.caches import LRUCache
from raggym_env.corpora import BaseCorpus
from raggym_env.progress import progress
from raggym_env.retrieval.base import IndexMismatchError, check_search_args
from raggym_env.retrieval.index_dir import (
    CORPUS_FILE,
    CORPUS_STORE,
    MANIFEST_NAME,
    directory_lock,
    link_or_copy,
    load_index_corpus,
    read_manifest_json,
    save_index_corpus,
    saved_corpus_path,
    staged_index_dir,
)
from raggym_env.retrieval.inverted import (
    DEFAULT_MEMORY_BUDGET,
    InvertedIndex,
    ShardPlan,
    build_index,
    default_workers,
    parse_size,
    text_batches,
    warm_up,
)
from raggym_env.retrieval.tokenize import STOPWORD_LISTS, Analyzer
from raggym_env.types import ScoredDocument

__all__ = [
    "FORMAT_VERSION",
    "INDEX_CACHE_SIZE",
    "MANIFEST_NAME",
    "BM25Config",
    "BM25Retriever",
    "build_into",
    "load_or_build",
    "read_manifest",
    "warm_up",
]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 2
"""Version of the on-disk layout; bumped on any incompatible change (1 was bm25s-based)."""
_FORMAT = "raggym-bm25-index"
_BACKEND = "raggym-postings"
_ANALYZER_FILE = "analyzer.json"
_INDEX_FILES = (_ANALYZER_FILE, "df.npy", "vocabulary", "shards")

BM25Method = Literal["lucene", "robertson", "atire"]
_METHODS: tuple[str, ...] = ("lucene", "robertson", "atire")


@dataclass(frozen=True)
class BM25Config:
    """Everything that determines a BM25 index besides the corpus (hashable, JSON-ready).

    Attributes:
        k1: term-frequency saturation (>= 0).
        b: document-length normalisation, in ``[0, 1]``.
        method: scoring variant: ``"lucene"``, ``"robertson"`` (idf clipped at 0) or
            ``"atire"`` (idf ``log(N / df)``, frequency part times ``k1 + 1``); BM25L and
            BM25+ give every document a non-zero score, so they are not offered.
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

    def to_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :meth:`BM25Retriever.build` for these parameters."""
        return {
            "k1": self.k1,
            "b": self.b,
            "method": self.method,
            "stemmer": self.stemmer,
            "stopwords": self.stopwords,
        }

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
    """Batched BM25 search over a corpus, backed by a sharded on-disk inverted index.

    Create one with :meth:`build`, :meth:`load` or :func:`load_or_build`; the constructor
    is for those. Searching is thread-safe and never mutates the index, so one instance can
    serve every environment copy of a process.

    A document is returned only if it shares at least one term with the query (a positive
    score), so a query made only of stopwords or unknown words returns ``[]``. Equal
    scores are ordered by corpus position.
    """

    def __init__(
        self,
        index: InvertedIndex,
        analyzer: Analyzer,
        corpus: BaseCorpus,
        manifest: Mapping[str, Any],
        *,
        n_threads: int = 1,
        owned_dir: Path | None = None,
    ) -> None:
        self._index = index
        self._analyzer = analyzer
        self._corpus = corpus
        self._manifest = dict(manifest)
        self._params = BM25Config.from_dict(manifest["params"])
        self._index_hash = _identity_hash(manifest)
        self._n_threads = _check_n_threads(n_threads)
        # A build without a directory owns its temporary files; they go with the object,
        # and a twin from :meth:`with_threads` keeps the owner alive.
        self._owner: BM25Retriever | None = None
        if owned_dir is not None:
            weakref.finalize(self, shutil.rmtree, owned_dir, True)

    @classmethod
    def build(
        cls,
        corpus: BaseCorpus,
        *,
        k1: float = 1.5,
        b: float = 0.75,
        method: BM25Method = "lucene",
        stemmer: str | None = "english",
        stopwords: str | tuple[str, ...] | None = "en",
        n_threads: int = 1,
        shard_size: int | None = None,
        memory_budget: int | str | None = None,
        n_workers: int | None = None,
        show_progress: bool | None = None,
    ) -> BM25Retriever:
        """Index the title and then the text of every document of ``corpus``.

        The index is written to a temporary directory that lives as long as the retriever;
        :meth:`save` copies it, :func:`load_or_build` builds straight into its directory.

        Args:
            corpus: the documents; must not be empty.
            k1: term-frequency saturation.
            b: document-length normalisation.
            method: scoring variant (see :class:`BM25Config`).
            stemmer: PyStemmer algorithm, or ``None``.
            stopwords: stopword list name, explicit words, or ``None``.
            n_threads: search threads (1 searches in the calling thread; -1 uses all cores).
            shard_size: documents per shard; by default ``memory_budget`` decides.
            memory_budget: bytes (or ``"512M"``, ``"2G"``) the shard being built may use.
            n_workers: analysis processes (default: all cores for large corpora).
            show_progress: show a bar of documents indexed (``None``: as
                :mod:`raggym_env.progress` decides).

        Raises:
            ValueError: for an empty corpus, one without any indexable term, or bad params.
        """
        params = BM25Config(k1=k1, b=b, method=method, stemmer=stemmer, stopwords=stopwords)
        plan = _plan(shard_size, memory_budget)
        tmp = Path(tempfile.mkdtemp(prefix="raggym-bm25-"))
        try:
            manifest = _build_files(
                corpus, params, tmp, plan=plan, n_workers=n_workers, show_progress=show_progress
            )
            index = _open_index(tmp, manifest, mmap=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return cls(index, params.analyzer(), corpus, manifest, n_threads=n_threads, owned_dir=tmp)

    # -- properties ---------------------------------------------------------------------

    @property
    def corpus(self) -> BaseCorpus:
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
        return len(self._index.vocabulary)

    @property
    def num_shards(self) -> int:
        """Number of shards the index is cut into."""
        return len(self._index.shards)

    @property
    def compiled(self) -> bool:
        """Whether searches use the compiled (numba) kernel."""
        return self._index.compiled

    def with_threads(self, n_threads: int) -> BM25Retriever:
        """Return a retriever sharing this index (no copy) that searches with ``n_threads``."""
        twin = type(self)(
            self._index, self._analyzer, self._corpus, self._manifest, n_threads=n_threads
        )
        twin._owner = self._owner or self  # the files live while a twin does
        return twin

    def __repr__(self) -> str:
        return (
            f"BM25Retriever(corpus={self._corpus.name!r}, documents={len(self._corpus)}, "
            f"vocabulary={self.vocabulary_size}, shards={self.num_shards}, "
            f"params={self._params}, index_hash={self._index_hash[:12]})"
        )

    # -- search -------------------------------------------------------------------------

    def search(self, queries: list[str], k: int) -> list[list[ScoredDocument]]:
        """Return up to ``k`` documents per query, best first.

        ``k`` larger than the corpus is clamped to its size.

        Raises:
            TypeError: if ``queries`` is not a list of str or ``k`` not an int.
            ValueError: if ``k < 1``.
        """
        queries = check_search_args(queries, k)
        encoded = self._analyzer.encode(queries, self._index.vocabulary)
        top_k = min(int(k), len(self._corpus))
        hits = self._index.search_many(encoded, top_k, n_threads=self._n_threads)
        corpus = self._corpus
        return [
            [
                ScoredDocument(document=corpus[d], score=s)
                for d, s in zip(docs.tolist(), scores.tolist(), strict=True)
            ]
            for docs, scores in hits
        ]

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
        source = self._index.directory
        if directory.resolve() == source.resolve():
            return directory
        with staged_index_dir(directory, self._manifest) as tmp:
            for name in _INDEX_FILES:  # written once, never changed: links suffice
                path = source / name
                if path.is_dir():
                    shutil.copytree(path, tmp / name, copy_function=link_or_copy)
                elif path.is_file():
                    link_or_copy(str(path), str(tmp / name))
            save_index_corpus(self._corpus, tmp)
        logger.info("saved BM25 index %s to %s", self._index_hash[:12], directory)
        return directory

    @classmethod
    def load(
        cls,
        directory: str | Path,
        *,
        corpus: BaseCorpus | None = None,
        mmap: bool = True,
        n_threads: int = 1,
    ) -> BM25Retriever:
        """Load an index written by :meth:`save` or :func:`load_or_build`.

        Args:
            directory: the index directory.
            corpus: the corpus the index is expected to belong to; when given, its content
                hash must equal the manifest's and the saved corpus is not read (fast
                path for environment copies). When omitted the saved corpus is opened and
                checked against the manifest.
            mmap: memory-map the index arrays (shared page cache, near-instant load).
            n_threads: search threads (see :meth:`build`).

        Raises:
            FileNotFoundError: if the directory, its manifest or an index file is missing.
            IndexMismatchError: if the manifest is unreadable, of another format version,
                or the corpus does not match the one the index was built from.
        """
        directory = Path(directory)
        manifest = read_manifest(directory)
        expected_hash = manifest["corpus"]["content_hash"]
        missing = [
            name
            for name in (_ANALYZER_FILE, "df.npy", "vocabulary")
            if not (directory / name).exists()
        ]
        if corpus is None and saved_corpus_path(directory) is None:
            missing.append(f"{CORPUS_FILE} or {CORPUS_STORE}/")
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
            corpus = load_index_corpus(directory, str(manifest["corpus"].get("name", "corpus")))
            if corpus.content_hash != expected_hash:
                raise IndexMismatchError(
                    f"the corpus saved in {directory} has content hash {corpus.content_hash} "
                    f"but the manifest records {expected_hash}: the index directory was modified"
                )
        try:
            analyzer = Analyzer.from_state(
                json.loads((directory / _ANALYZER_FILE).read_text(encoding="utf-8"))
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise IndexMismatchError(
                f"{directory / _ANALYZER_FILE} is not a valid analyzer state: {exc}"
            ) from exc
        if int(manifest["corpus"]["num_documents"]) != len(corpus):
            raise IndexMismatchError(
                f"BM25 index at {directory} holds {manifest['corpus']['num_documents']} "
                f"documents but the corpus has {len(corpus)}"
            )
        index = _open_index(directory, manifest, mmap=mmap)
        logger.info("loaded BM25 index %s from %s (mmap=%s)", manifest["corpus"], directory, mmap)
        return cls(index, analyzer, corpus, manifest, n_threads=n_threads)


def _plan(shard_size: int | None, memory_budget: int | str | None) -> ShardPlan:
    budget = DEFAULT_MEMORY_BUDGET if memory_budget is None else parse_size(memory_budget)
    return ShardPlan(shard_size=shard_size, memory_budget=budget)


def _build_files(
    corpus: BaseCorpus,
    params: BM25Config,
    directory: Path,
    *,
    plan: ShardPlan,
    n_workers: int | None,
    show_progress: bool | None = None,
) -> dict[str, Any]:
    """Write the index files of ``corpus`` into ``directory``; return the manifest."""
    if len(corpus) == 0:
        raise ValueError(f"cannot build a BM25 index over the empty corpus {corpus.name!r}")
    logger.info("building BM25 index over %d documents of %r", len(corpus), corpus.name)
    analyzer = params.analyzer()
    workers = default_workers(len(corpus)) if n_workers is None else max(int(n_workers), 1)
    with progress(total=len(corpus), desc="BM25 index", unit="doc", enabled=show_progress) as bar:
        stats = build_index(
            text_batches(corpus), directory, analyzer, plan=plan, n_workers=workers,
            on_batch=bar.update,
        )  # fmt: skip
    if stats.vocabulary_size == 0:
        raise ValueError(
            f"corpus {corpus.name!r} has no indexable terms (every word is a stopword or "
            f"shorter than two characters); check the stopwords setting {params.stopwords!r}"
        )
    (directory / _ANALYZER_FILE).write_text(
        json.dumps(analyzer.state_dict(), indent=1), encoding="utf-8"
    )
    return {
        "format": _FORMAT,
        "format_version": FORMAT_VERSION,
        "backend": _BACKEND,
        "params": params.to_dict(),
        "corpus": {
            "name": corpus.name,
            "content_hash": corpus.content_hash,
            "num_documents": len(corpus),
        },
        "vocabulary_size": stats.vocabulary_size,
        "total_length": stats.total_length,
        "postings": stats.postings,
        "shards": list(stats.shards),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _open_index(directory: Path, manifest: Mapping[str, Any], *, mmap: bool) -> InvertedIndex:
    params = BM25Config.from_dict(manifest["params"])
    try:
        return InvertedIndex(
            directory,
            manifest["shards"],
            num_documents=int(manifest["corpus"]["num_documents"]),
            total_length=int(manifest["total_length"]),
            k1=params.k1,
            b=params.b,
            method=params.method,
            mmap=mmap,
        )
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"BM25 index at {directory} is incomplete ({exc}); rebuild it"
        ) from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise IndexMismatchError(
            f"BM25 index at {directory} is damaged ({exc}); rebuild it"
        ) from exc


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


def _matches(directory: Path, corpus: BaseCorpus, params: BM25Config) -> bool:
    """Whether ``directory`` holds a current-format index for this corpus and params."""
    try:
        manifest = read_manifest(directory)
    except (FileNotFoundError, IndexMismatchError):
        return False
    return (
        manifest["corpus"]["content_hash"] == corpus.content_hash
        and BM25Config.from_dict(manifest["params"]) == params
    )


def build_into(
    corpus: BaseCorpus,
    directory: str | Path,
    params: BM25Config | None = None,
    *,
    shard_size: int | None = None,
    memory_budget: int | str | None = None,
    n_workers: int | None = None,
    n_threads: int = 1,
    mmap: bool = True,
    show_progress: bool | None = None,
) -> BM25Retriever:
    """Build an index of ``corpus`` straight into ``directory`` (staged, then renamed).

    Unlike ``build(...).save(directory)`` nothing is written twice, which matters at
    millions of documents. ``directory`` may hold an older index (it is replaced) or be
    empty; any other non-empty directory is refused. ``show_progress`` as in
    :meth:`BM25Retriever.build`.
    """
    params = params or BM25Config()
    directory = Path(directory)
    plan = _plan(shard_size, memory_budget)
    manifest: dict[str, Any] = {}
    with staged_index_dir(directory, manifest) as tmp:
        manifest.update(
            _build_files(
                corpus, params, tmp, plan=plan, n_workers=n_workers, show_progress=show_progress
            )
        )
        save_index_corpus(corpus, tmp)
    return BM25Retriever.load(directory, corpus=corpus, mmap=mmap, n_threads=n_threads)


def load_or_build(
    corpus: BaseCorpus,
    index_dir: str | Path | None = None,
    *,
    k1: float = 1.5,
    b: float = 0.75,
    method: BM25Method = "lucene",
    stemmer: str | None = "english",
    stopwords: str | tuple[str, ...] | None = "en",
    n_threads: int = 1,
    mmap: bool = True,
    shard_size: int | None = None,
    memory_budget: int | str | None = None,
    n_workers: int | None = None,
    show_progress: bool | None = None,
) -> BM25Retriever:
    """Return a BM25 retriever for ``corpus``, shared with every caller asking the same.

    Retrievers are cached in this process by (corpus content hash, params, n_threads), so
    many environment copies share one index; the cache keeps the :data:`INDEX_CACHE_SIZE`
    most recently used. With ``index_dir``, an index there that matches the corpus and
    params is loaded (memory-mapped when ``mmap``); otherwise one is built into it,
    replacing a stale index. Concurrent processes wanting the same ``index_dir`` build it
    once (an exclusive file lock serialises them, on POSIX). ``shard_size``,
    ``memory_budget``, ``n_workers`` and ``show_progress`` shape a build (see
    :meth:`BM25Retriever.build`) and never the results.

    Raises:
        FileExistsError: if ``index_dir`` is a non-empty directory that is not an index.
    """
    params = BM25Config(k1=k1, b=b, method=method, stemmer=stemmer, stopwords=stopwords)
    n_threads = _check_n_threads(n_threads)
    _plan(shard_size, memory_budget)  # checked even when a cached index makes a build moot
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
            retriever = BM25Retriever.build(
                corpus,
                **params.to_kwargs(),
                n_threads=n_threads,
                shard_size=shard_size,
                memory_budget=memory_budget,
                n_workers=n_workers,
                show_progress=show_progress,
            )
        else:
            with directory_lock(directory):
                if retriever is None and _matches(directory, corpus, params):
                    retriever = BM25Retriever.load(
                        directory, corpus=corpus, mmap=mmap, n_threads=n_threads
                    )
                elif retriever is None:
                    retriever = build_into(
                        corpus,
                        directory,
                        params,
                        n_threads=n_threads,
                        mmap=mmap,
                        shard_size=shard_size,
                        memory_budget=memory_budget,
                        n_workers=n_workers,
                        show_progress=show_progress,
                    )
                else:
                    retriever.save(directory)
        _CACHE.put(key, retriever)
        return retriever
