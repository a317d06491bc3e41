"""A sharded BM25 inverted index built in bounded memory and searched exactly.

Building streams the corpus in batches through worker processes that analyse the text
(:class:`~raggym_env.retrieval.tokenize.Analyzer`), while this process collects postings
into the current shard and writes it to disk when the shard's memory budget is reached.
Shards store term frequencies and document lengths only; scores are computed at search
time from the **global** document frequencies, document count and average length, so an
index cut into any number of shards ranks and scores exactly like a single one.

Search scores the shards one after another, each returning its exact top ``k`` (with the
numba kernel of :mod:`raggym_env.retrieval.bm25_kernels` when numba is installed, numpy
otherwise), and merges them by score, then corpus position.

Directory layout::

    vocabulary/terms.npy     uint8, every term in UTF-8, sorted
    vocabulary/offsets.npy   uint32 (int64 past 4 GiB), where each sorted term starts (+ end)
    vocabulary/ids.npy       uint32, the term id of each sorted term
    df.npy                   uint32, documents holding each term id
    shards/NNNNN/*.npy       one shard's postings (see raggym_env.retrieval.postings)
    shards/NNNNN/lengths.npy uint32, the length of each of its documents
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any, Literal

import numpy as np

from raggym_env.availability import is_numba_available
from raggym_env.corpora import BaseCorpus
from raggym_env.retrieval.base import IndexMismatchError
from raggym_env.retrieval.postings import (
    BLOCK_SIZE,
    PADDING,
    EncodedPostings,
    decode_block,
    encode_postings,
    offset_dtype,
)
from raggym_env.retrieval.tokenize import Analyzer

__all__ = [
    "DEFAULT_MEMORY_BUDGET",
    "BuildStats",
    "InvertedIndex",
    "ShardPlan",
    "Vocabulary",
    "build_index",
    "parse_size",
    "warm_up",
]

logger = logging.getLogger(__name__)

DEFAULT_MEMORY_BUDGET = 256 * 2**20
"""Bytes the postings of the shard being built may take (the index's other memory is small)."""

BYTES_PER_POSTING = 24
"""Peak bytes one buffered posting costs while its shard is sorted and encoded."""

_ANALYSIS_BATCH = 2_000
_PARALLEL_MIN_DOCS = 50_000  # below this, worker processes cost more than they save
_VOCAB_DIR = "vocabulary"
_SHARDS_DIR = "shards"
_LENGTHS = "lengths"


def parse_size(text: str | int) -> int:
    """Parse a byte size such as ``512M``, ``2G``, ``1.5GiB`` or ``1000000`` (bytes).

    Raises:
        ValueError: naming the text and the accepted forms.
    """
    if isinstance(text, int) and not isinstance(text, bool):
        size = text
    else:
        raw = str(text).strip().lower().removesuffix("ib").removesuffix("b")
        units = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
        factor = units.get(raw[-1:], 1)
        number = raw[:-1] if raw[-1:] in units else raw
        try:
            value = float(number)
        except ValueError:
            raise ValueError(
                f"invalid size {text!r}: expected a number of bytes or a number with a unit "
                "K, M, G or T (e.g. 512M, 2G)"
            ) from None
        if not math.isfinite(value):
            raise ValueError(f"invalid size {text!r}: not a finite number")
        size = int(value * factor)
    if size < 1:
        raise ValueError(f"invalid size {text!r}: expected a positive number of bytes")
    return size


# -- vocabulary ------------------------------------------------------------------------------


class Vocabulary:
    """Term -> id lookups on sorted, memory-mapped terms (binary search, no dict in memory).

    Opening is instant at any size; a lookup costs about ``log2(V)`` short comparisons and
    the most recent lookups are cached.
    """

    _CACHE_SIZE = 65_536

    def __init__(self, blob: np.ndarray, offsets: np.ndarray, ids: np.ndarray) -> None:
        self._blob = blob
        self._offsets = offsets
        self._ids = ids
        self._cache: dict[str, int] = {}
        self._lock = threading.Lock()

    @staticmethod
    def write(terms: Sequence[str], directory: Path) -> None:
        """Save ``terms`` (term id = position) sorted, for :meth:`open`."""
        directory.mkdir(parents=True, exist_ok=True)
        order = sorted(range(len(terms)), key=terms.__getitem__)
        encoded = [terms[i].encode("utf-8", "surrogatepass") for i in order]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        np.save(directory / "terms.npy", np.frombuffer(b"".join(encoded), dtype=np.uint8))
        np.save(directory / "offsets.npy", offsets.astype(offset_dtype(int(offsets[-1]))))
        np.save(directory / "ids.npy", np.asarray(order, dtype=np.uint32))

    @classmethod
    def open(cls, directory: Path, *, mmap: bool = True) -> Vocabulary:
        """Open a vocabulary written by :meth:`write`."""
        mode: Literal["r"] | None = "r" if mmap else None
        return cls(
            np.load(directory / "terms.npy", mmap_mode=mode),
            np.load(directory / "offsets.npy", mmap_mode=mode),
            np.load(directory / "ids.npy", mmap_mode=mode),
        )

    def __len__(self) -> int:
        return len(self._ids)

    def _term_at(self, position: int) -> bytes:
        return self._blob[self._offsets[position] : self._offsets[position + 1]].tobytes()

    def get(self, term: str, default: int = -1, /) -> int:
        """The id of ``term``, or ``default`` if the index never saw it."""
        cached = self._cache.get(term)
        if cached is not None:
            return default if cached < 0 else cached
        key = term.encode("utf-8", "surrogatepass")
        lo, hi = 0, len(self._ids)
        while lo < hi:
            mid = (lo + hi) // 2
            if self._term_at(mid) < key:
                lo = mid + 1
            else:
                hi = mid
        found = int(self._ids[lo]) if lo < len(self._ids) and self._term_at(lo) == key else -1
        with self._lock:
            if len(self._cache) >= self._CACHE_SIZE:
                self._cache.clear()
            self._cache[term] = found
        return default if found < 0 else found

    def terms(self) -> Iterator[tuple[str, int]]:
        """Every (term, id) pair in term order."""
        for position in range(len(self._ids)):
            yield self._term_at(position).decode("utf-8", "surrogatepass"), int(self._ids[position])


# -- analysis (runs in worker processes) ----------------------------------------------------


class _BatchAnalyzer:
    """Turns a batch of texts into per-document (term, frequency) postings with local ids."""

    _CACHE_LIMIT = 200_000

    def __init__(self, state: dict[str, Any]) -> None:
        self.analyzer = Analyzer.from_state(state)
        self.stem_of: dict[str, str | None] = {}

    def __call__(
        self, texts: list[str]
    ) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        words = self.analyzer.words
        doc_words = [words(text) for text in texts]
        flat = list(chain.from_iterable(doc_words))
        unique = dict.fromkeys(flat)  # first-seen order: the same term ids in every run
        stem_of = self.stem_of
        if len(stem_of) > self._CACHE_LIMIT:
            stem_of.clear()
        new = [w for w in unique if w not in stem_of]
        if new:
            stopwords = self.analyzer.stopwords
            kept = [w for w in new if w not in stopwords]
            stem_of.update(dict.fromkeys(new))
            stem_of.update(zip(kept, self.analyzer.stem(kept), strict=True))
        local: dict[str, int] = {}
        local_id: dict[str, int] = {}
        for word in unique:
            stem = stem_of[word]
            local_id[word] = -1 if stem is None else local.setdefault(stem, len(local))
        counts = np.fromiter(map(len, doc_words), dtype=np.int64, count=len(doc_words))
        ids = np.array(list(map(local_id.__getitem__, flat)), dtype=np.int64)
        del flat
        docs = np.repeat(np.arange(len(texts), dtype=np.int64), counts)
        keep = ids >= 0
        ids, docs = ids[keep], docs[keep]
        lengths = np.bincount(docs, minlength=len(texts)).astype(np.uint32)
        width = max(len(local), 1)
        keys, tfs = np.unique(docs * width + ids, return_counts=True)
        return (
            list(local),
            lengths,
            (keys // width).astype(np.uint32),
            (keys % width).astype(np.uint32),
            tfs.astype(np.uint32),
        )


_WORKER: _BatchAnalyzer | None = None


def _init_worker(state: dict[str, Any]) -> None:
    global _WORKER
    _WORKER = _BatchAnalyzer(state)


def _analyze_in_worker(
    texts: list[str],
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    assert _WORKER is not None
    return _WORKER(texts)


def _start_method() -> str:
    """``fork`` on Linux, where workers need not re-import the caller's ``__main__``.

    Spawned workers re-run an unguarded script's top level (and fail); the analysis
    workers run only Python and numpy code, which forks safely. Elsewhere fork is
    unavailable or unsafe, so those platforms spawn (scripts need a main guard there).
    """
    return "fork" if sys.platform.startswith("linux") else "spawn"


def _analysed_batches(
    batches: Iterable[list[str]], state: dict[str, Any], n_workers: int
) -> Iterator[tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Analyse batches in order, in ``n_workers`` processes (1: in this process)."""
    if n_workers <= 1:
        analyze = _BatchAnalyzer(state)
        for texts in batches:
            yield analyze(texts)
        return
    context = multiprocessing.get_context(_start_method())
    with context.Pool(n_workers, initializer=_init_worker, initargs=(state,)) as pool:
        pending: list[Any] = []
        for texts in batches:
            pending.append(pool.apply_async(_analyze_in_worker, (texts,)))
            if len(pending) > n_workers:
                yield pending.pop(0).get()
        for result in pending:
            yield result.get()


# -- building ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShardPlan:
    """How the builder cuts shards: fixed documents per shard, or a memory budget."""

    shard_size: int | None = None
    memory_budget: int = DEFAULT_MEMORY_BUDGET

    def __post_init__(self) -> None:
        if self.shard_size is not None and (
            isinstance(self.shard_size, bool)
            or not isinstance(self.shard_size, int)
            or self.shard_size < 1
        ):
            raise ValueError(f"shard_size must be a positive int or None, got {self.shard_size!r}")

    @property
    def max_postings(self) -> int:
        """Postings a shard may buffer under the memory budget."""
        return max(self.memory_budget // BYTES_PER_POSTING, 1)


@dataclass(frozen=True)
class BuildStats:
    """What :func:`build_index` wrote: counts needed by the manifest."""

    num_documents: int
    total_length: int
    vocabulary_size: int
    shards: tuple[dict[str, int | str], ...]
    postings: int


def _sort_and_encode(
    terms: np.ndarray, docs: np.ndarray, tfs: np.ndarray, lengths: np.ndarray
) -> EncodedPostings:
    """Postings in document order -> the encoded shard (compiled when numba is installed)."""
    if len(terms) and is_numba_available():
        from raggym_env.retrieval.bm25_kernels import encode_shard

        (terms_, term_blocks, max_tf, min_length, last, count, offsets, data) = encode_shard(
            terms, docs, tfs, lengths, int(terms.max()) + 1, BLOCK_SIZE, PADDING
        )
        return EncodedPostings(
            terms=terms_,
            term_blocks=term_blocks.astype(offset_dtype(len(last))),
            term_max_tf=max_tf,
            term_min_length=min_length,
            block_last=last,
            block_count=count,
            block_offset=offsets.astype(offset_dtype(len(data) - PADDING)),
            data=data,
        )
    order = np.argsort(terms, kind="stable")  # documents stay ascending within a term
    return encode_postings(terms[order], docs[order], tfs[order], lengths)


class _ShardWriter:
    """Buffers postings of consecutive documents and writes them as shards."""

    def __init__(self, directory: Path, plan: ShardPlan) -> None:
        self.directory = directory
        self.plan = plan
        self.shards: list[dict[str, int | str]] = []
        # Postings of the shard being built, in document order (reused from shard to shard).
        self._terms = self._docs = self._tfs = np.zeros(0, dtype=np.uint32)
        self._reset(0)

    def _reset(self, start: int) -> None:
        self.start = start
        self.docs_in_shard = 0
        self.postings = 0
        self.lengths: list[np.ndarray] = []

    def _reserve(self, extra: int) -> None:
        """Room for ``extra`` more postings in the shard buffers (grown by doubling)."""
        needed = self.postings + extra
        capacity = len(self._terms)
        if needed <= capacity:
            return
        size = max(needed, 2 * capacity, min(self.plan.max_postings, 1 << 20))
        for name in ("_terms", "_docs", "_tfs"):
            grown = np.empty(size, dtype=np.uint32)
            if capacity:
                grown[: self.postings] = getattr(self, name)[: self.postings]
            setattr(self, name, grown)

    def add(
        self, terms: np.ndarray, docs: np.ndarray, tfs: np.ndarray, lengths: np.ndarray
    ) -> None:
        """Add one analysed batch (``docs`` relative to the batch)."""
        offset = 0
        n = len(lengths)
        per_doc = (
            np.cumsum(np.bincount(docs, minlength=n)) if self.plan.shard_size is None else None
        )
        while offset < n:
            take = n - offset
            if per_doc is not None:  # as many documents as the budget's postings allow
                room = self.plan.max_postings - self.postings
                before = int(per_doc[offset - 1]) if offset else 0
                fits = int(np.searchsorted(per_doc, before + room, side="right")) - offset
                take = min(take, max(fits, 1))
            else:
                assert self.plan.shard_size is not None
                take = min(take, self.plan.shard_size - self.docs_in_shard)
            lo = int(np.searchsorted(docs, offset))
            hi = int(np.searchsorted(docs, offset + take))
            self._reserve(hi - lo)
            at = slice(self.postings, self.postings + hi - lo)
            self._terms[at] = terms[lo:hi]
            self._docs[at] = docs[lo:hi].astype(np.int64) + (self.docs_in_shard - offset)
            self._tfs[at] = tfs[lo:hi]
            self.lengths.append(lengths[offset : offset + take])
            self.docs_in_shard += take
            self.postings += int(hi - lo)
            offset += take
            full = (
                self.docs_in_shard >= self.plan.shard_size
                if self.plan.shard_size is not None
                else self.postings >= self.plan.max_postings
            )
            if full:
                self.flush()

    def flush(self) -> None:
        """Sort, encode and save the buffered shard."""
        if self.docs_in_shard == 0:
            return
        n = self.postings
        lengths = np.concatenate(self.lengths)
        self.lengths.clear()
        encoded = _sort_and_encode(self._terms[:n], self._docs[:n], self._tfs[:n], lengths)
        name = f"{len(self.shards):05d}"
        shard_dir = self.directory / _SHARDS_DIR / name
        shard_dir.mkdir(parents=True)
        for stem, array in encoded.arrays().items():
            np.save(shard_dir / f"{stem}.npy", array)
        np.save(shard_dir / f"{_LENGTHS}.npy", lengths)
        self.shards.append(
            {
                "path": f"{_SHARDS_DIR}/{name}",
                "start": self.start,
                "stop": self.start + self.docs_in_shard,
                "postings": self.postings,
            }
        )
        logger.info(
            "wrote shard %s: documents %d-%d, %d postings",
            name, self.start, self.start + self.docs_in_shard, self.postings,
        )  # fmt: skip
        self._reset(self.start + self.docs_in_shard)


def build_index(
    texts: Iterable[list[str]],
    directory: Path,
    analyzer: Analyzer,
    *,
    plan: ShardPlan = ShardPlan(),
    n_workers: int = 1,
    on_batch: Callable[[int], None] | None = None,
) -> BuildStats:
    """Analyse batches of texts into a sharded index under ``directory`` (which must be new).

    Args:
        texts: the documents' texts, in corpus order, in batches.
        directory: where the vocabulary, frequencies and shards are written.
        analyzer: the analysis; its state goes to the worker processes.
        plan: shard size or memory budget.
        n_workers: analysis processes (1: analyse in this process).
        on_batch: called with the number of documents of each batch analysed (a bar).
    """
    directory.mkdir(parents=True, exist_ok=True)
    vocab: dict[str, int] = {}
    df = np.zeros(1024, dtype=np.int64)
    writer = _ShardWriter(directory, plan)
    num_docs = 0
    total_length = 0
    postings = 0
    for local_terms, lengths, docs, local, tfs in _analysed_batches(
        texts, analyzer.state_dict(), n_workers
    ):
        setdefault = vocab.setdefault
        mapping = np.fromiter(
            (setdefault(t, len(vocab)) for t in local_terms),
            dtype=np.uint32,
            count=len(local_terms),
        )
        terms = mapping[local] if len(local) else np.zeros(0, dtype=np.uint32)
        if len(vocab) > len(df):
            df = np.concatenate([df, np.zeros(max(len(vocab), 2 * len(df)) - len(df), np.int64)])
        # One posting per (document, term): the batch's document frequencies are its local
        # counts, added where its terms sit (distinct local terms have distinct ids), so
        # the cost follows the batch, not the vocabulary.
        df[mapping] += np.bincount(local, minlength=len(local_terms))
        writer.add(terms, docs, tfs, lengths)
        num_docs += len(lengths)
        total_length += int(lengths.sum())
        postings += len(terms)
        if on_batch is not None:
            on_batch(len(lengths))
    writer.flush()
    Vocabulary.write(list(vocab), directory / _VOCAB_DIR)
    np.save(directory / "df.npy", df[: len(vocab)].astype(np.uint32))
    return BuildStats(num_docs, total_length, len(vocab), tuple(writer.shards), postings)


def text_batches(corpus: BaseCorpus, batch_size: int = _ANALYSIS_BATCH) -> Iterator[list[str]]:
    """``title + newline + text`` of every document of ``corpus``, in batches, streamed."""
    for start in range(0, len(corpus), batch_size):
        pairs = corpus.titles_and_texts(start, min(start + batch_size, len(corpus)))
        yield [f"{title}\n{text}" for title, text in pairs]


def default_workers(num_documents: int) -> int:
    """Analysis processes for a corpus: all cores for large corpora, none for small ones."""
    if num_documents < _PARALLEL_MIN_DOCS:
        return 1
    return max(os.cpu_count() or 1, 1)


# -- searching -----------------------------------------------------------------------------


def _check_structure(p: EncodedPostings, documents: int, directory: Path) -> None:
    """Check a shard's block tables before any search trusts them (vectorised, at load).

    The compiled search indexes its workspaces with decoded documents and reads bytes at
    the recorded offsets: with these tables consistent, and each block checked against
    them as it is decoded, a damaged or hand-edited index is reported, not read past.

    Raises:
        ValueError: naming the table that is inconsistent.
    """
    n_terms, n_blocks = len(p.terms), len(p.block_count)
    problems = [
        (len(p.term_blocks) != n_terms + 1, "term_blocks has the wrong length"),
        (len(p.term_max_tf) != n_terms or len(p.term_min_length) != n_terms, "term tables"),
        (len(p.block_last) != n_blocks or len(p.block_offset) != n_blocks + 1, "block tables"),
    ]
    if not any(bad for bad, _ in problems):
        term_blocks = np.asarray(p.term_blocks, dtype=np.int64)
        offsets = np.asarray(p.block_offset, dtype=np.int64)
        counts = np.asarray(p.block_count)
        problems += [
            (bool(n_terms) and bool(np.any(np.diff(p.terms.astype(np.int64)) <= 0)), "terms"),
            (term_blocks[0] != 0 or term_blocks[-1] != n_blocks, "term_blocks range"),
            (bool(np.any(np.diff(term_blocks) <= 0)), "term_blocks order"),
            (offsets[0] != 0 or offsets[-1] + PADDING != len(p.data), "block_offset range"),
            (bool(np.any(np.diff(offsets) < 3)), "block_offset order"),
            (bool(n_blocks) and (counts.min() < 1 or counts.max() > BLOCK_SIZE), "block_count"),
            (bool(n_blocks) and int(np.max(p.block_last)) >= documents, "block_last"),
        ]
    bad = [what for failed, what in problems if failed]
    if bad:
        raise ValueError(f"{directory}: inconsistent postings tables ({', '.join(bad)})")


class _Shard:
    """One shard's arrays plus its per-document length normalisation."""

    def __init__(self, directory: Path, start: int, stop: int, *, mmap: bool) -> None:
        mode: Literal["r"] | None = "r" if mmap else None
        self.start = start
        self.stop = stop
        fields = EncodedPostings.__dataclass_fields__
        arrays = {name: np.load(directory / f"{name}.npy", mmap_mode=mode) for name in fields}
        self.directory = directory
        self.postings = EncodedPostings(**arrays)
        self.terms = np.asarray(self.postings.terms)  # a plain view: no memmap overhead
        self.lengths = np.load(directory / f"{_LENGTHS}.npy", mmap_mode=mode)
        if len(self.lengths) != stop - start:
            raise ValueError(
                f"{directory}: {len(self.lengths)} document lengths, expected {stop - start}"
            )
        _check_structure(self.postings, stop - start, directory)
        self.norm = np.zeros(0, dtype=np.float32)

    def set_norm(self, k1: float, b: float, avgdl: float) -> None:
        # Same operation order as bm25s: k1 * ((1 - b) + b * length / avgdl) in float64.
        lengths = np.asarray(self.lengths, dtype=np.float64)
        self.norm = (k1 * ((1 - b) + b * lengths / avgdl)).astype(np.float32)

    def __len__(self) -> int:
        return self.stop - self.start

    def decode(self, position: int) -> tuple[np.ndarray, np.ndarray]:
        """All (document, frequency) postings of the term at ``position`` (numpy)."""
        p = self.postings
        b0, b1 = int(p.term_blocks[position]), int(p.term_blocks[position + 1])
        blocks = []
        for b in range(b0, b1):
            try:
                docs, tfs = decode_block(
                    p.data,
                    int(p.block_offset[b]),
                    int(p.block_count[b]),
                    int(p.block_offset[b + 1]),
                )
            except (ValueError, IndexError) as exc:
                raise IndexMismatchError(f"{self.directory}: damaged postings ({exc})") from exc
            if docs[-1] != int(p.block_last[b]):
                raise IndexMismatchError(
                    f"{self.directory}: damaged postings (block {b} ends at document "
                    f"{docs[-1]}, its header says {int(p.block_last[b])})"
                )
            blocks.append((docs, tfs))
        return np.concatenate([d for d, _ in blocks]), np.concatenate([f for _, f in blocks])


class _Workspace(threading.local):
    """Per-thread scratch arrays for the compiled kernel, sized to the largest shard."""

    def __init__(self) -> None:
        self.size = 0
        self.acc = np.zeros(0, dtype=np.float32)
        self.mark = np.zeros(0, dtype=np.uint8)
        self.touched = np.zeros(0, dtype=np.int64)

    def ensure(self, size: int) -> None:
        if self.size < size:
            self.acc = np.zeros(size, dtype=np.float32)
            self.mark = np.zeros(size, dtype=np.uint8)
            self.touched = np.zeros(size, dtype=np.int64)
            self.size = size


def _load_kernel() -> Callable[..., int] | None:
    """The numba search kernel, or ``None`` without numba (``pip install 'raggym[bm25]'``)."""
    if not is_numba_available():
        return None
    from raggym_env.retrieval.bm25_kernels import search_shard

    return search_shard


class InvertedIndex:
    """A saved index opened for search (memory-mapped by default).

    Args:
        directory: the index directory written by :func:`build_index`.
        shards: the shard records of the manifest.
        num_documents, total_length: global statistics from the manifest.
        k1, b, method: the scoring parameters.
        mmap: map the arrays instead of reading them.
        use_kernel: use the numba kernel when available (``False`` forces numpy).
    """

    def __init__(
        self,
        directory: Path,
        shards: Sequence[dict[str, Any]],
        *,
        num_documents: int,
        total_length: int,
        k1: float,
        b: float,
        method: str,
        mmap: bool = True,
        use_kernel: bool = True,
    ) -> None:
        self.directory = directory
        self.num_documents = num_documents
        self.k1, self.b, self.method = k1, b, method
        self.avgdl = total_length / num_documents if num_documents else 1.0
        self.vocabulary = Vocabulary.open(directory / _VOCAB_DIR, mmap=mmap)
        self.df = np.load(directory / "df.npy", mmap_mode="r" if mmap else None)
        self.shards = [
            _Shard(directory / str(s["path"]), int(s["start"]), int(s["stop"]), mmap=mmap)
            for s in shards
        ]
        expected = 0
        for shard in self.shards:
            if shard.start != expected:
                raise ValueError(f"{directory}: shards do not cover the corpus in order")
            expected = shard.stop
            shard.set_norm(k1, b, max(self.avgdl, 1e-9))
        if expected != num_documents:
            raise ValueError(
                f"{directory}: shards hold {expected} documents, the manifest says {num_documents}"
            )
        self._kernel = _load_kernel() if use_kernel else None
        self._workspace = _Workspace()
        self._largest = max((len(s) for s in self.shards), default=0)

    @property
    def compiled(self) -> bool:
        """Whether searches run the numba kernel (``False``: the numpy path)."""
        return self._kernel is not None

    def idf(self, term_id: int) -> float:
        """The idf of a term (float64) under this index's method."""
        n = self.num_documents
        df = float(self.df[term_id])
        if self.method == "lucene":
            return math.log(1 + (n - df + 0.5) / (df + 0.5))
        if self.method == "robertson":
            return math.log(max((n - df + 0.5) / (df + 0.5), 1.0))
        return math.log(n / df)  # atire

    def _entries(self, term_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """The query's term ids in canonical order (idf desc, then id) and their float32 idf."""
        weights = [(self.idf(t), t) for t in term_ids]
        weights.sort(key=lambda pair: (-pair[0], pair[1]))
        ids = np.asarray([t for _, t in weights], dtype=np.int64)
        idfs = np.asarray([w for w, _ in weights], dtype=np.float32)
        return ids, idfs

    def search(self, term_ids: Sequence[int], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` corpus positions and float32 scores (> 0) for one analysed query."""
        if not term_ids or k < 1:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        ids, idfs = self._entries(term_ids)
        keys = ids.astype(np.uint32)  # the terms' dtype: searchsorted then casts nothing
        found_docs: list[np.ndarray] = []
        found_scores: list[np.ndarray] = []
        theta = -math.inf
        for shard in self.shards:
            positions = np.searchsorted(shard.terms, keys)
            positions = np.minimum(positions, max(len(shard.terms) - 1, 0))
            present = (
                shard.terms[positions] == keys if len(shard.terms) else np.zeros(len(ids), bool)
            )
            if not present.any():
                continue
            entries, weights = positions[present], idfs[present]
            if self._kernel is not None:
                docs, scores = self._search_compiled(shard, entries, weights, k, theta)
            else:
                docs, scores = self._search_numpy(shard, entries, weights, k)
            found_docs.append(docs + shard.start)
            found_scores.append(scores)
            merged = np.concatenate(found_scores)
            if len(merged) >= k:
                theta = float(np.partition(merged, len(merged) - k)[len(merged) - k]) * (1 - 1e-5)
        if not found_docs:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        docs = np.concatenate(found_docs)
        scores = np.concatenate(found_scores)
        order = np.lexsort((docs, -scores))[:k]
        return docs[order], scores[order]

    def _bounds(self, shard: _Shard, entries: np.ndarray, idfs: np.ndarray) -> np.ndarray:
        """An upper bound of each entry's contribution to any document of ``shard``."""
        max_tf = np.asarray(shard.postings.term_max_tf[entries], dtype=np.float64)
        min_len = np.asarray(shard.postings.term_min_length[entries], dtype=np.float64)
        norm = self.k1 * ((1 - self.b) + self.b * min_len / max(self.avgdl, 1e-9))
        part = max_tf / (norm + max_tf)
        if self.method == "atire":
            part *= self.k1 + 1
        return idfs.astype(np.float64) * part * (1 + 1e-5) + 1e-7

    def _search_compiled(
        self, shard: _Shard, entries: np.ndarray, idfs: np.ndarray, k: int, theta: float
    ) -> tuple[np.ndarray, np.ndarray]:
        assert self._kernel is not None
        work = self._workspace
        work.ensure(self._largest)
        out_docs = np.empty(k, dtype=np.int64)
        out_scores = np.empty(k, dtype=np.float32)
        p = shard.postings
        written = self._kernel(
            entries, idfs, self._bounds(shard, entries, idfs), k, theta,
            p.term_blocks, p.block_last, p.block_count, p.block_offset, p.data,
            shard.norm, self.method == "atire", self.k1,
            work.acc, work.mark, work.touched, out_docs, out_scores,
        )  # fmt: skip
        if written < 0:
            raise IndexMismatchError(
                f"{shard.directory}: a postings block does not decode to what its header "
                "records; the index is damaged, rebuild it"
            )
        return out_docs[:written], out_scores[:written]

    def _search_numpy(
        self, shard: _Shard, entries: np.ndarray, idfs: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        acc = np.zeros(len(shard), dtype=np.float32)
        scale = np.float32(self.k1 + 1) if self.method == "atire" else np.float32(1.0)
        for position, weight in zip(entries.tolist(), idfs, strict=True):
            docs, tfs = shard.decode(position)
            tf = tfs.astype(np.float32)
            acc[docs] += weight * ((tf * scale) / (shard.norm[docs] + tf))
        hits = np.flatnonzero(acc > 0)
        if len(hits) > k:
            cut = np.partition(acc[hits], len(hits) - k)[len(hits) - k]
            hits = hits[acc[hits] >= cut]
        order = np.lexsort((hits, -acc[hits]))[:k]
        return hits[order].astype(np.int64), acc[hits[order]]

    def search_many(
        self, queries: Sequence[Sequence[int]], k: int, n_threads: int = 1
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """:meth:`search` for each query; ``n_threads`` > 1 searches queries in parallel."""
        if n_threads <= 1 or len(queries) < 2:
            return [self.search(q, k) for q in queries]
        with ThreadPoolExecutor(min(n_threads, len(queries))) as pool:
            return list(pool.map(lambda q: self.search(q, k), queries))


def warm_up() -> bool:
    """Start numba and load the compiled search kernel now, not in the first search.

    numba's start-up costs about 0.4 s once per process, whatever the index size (the
    analog of Lucene's JVM start); a server can pay it before taking requests. Returns
    whether the compiled kernel is in use (``False`` without numba).
    """
    kernel = _load_kernel()
    if kernel is None:
        return False
    encoded = encode_postings(
        np.zeros(1, np.uint32), np.zeros(1, np.uint32), np.ones(1, np.uint32), np.ones(1, np.uint32)
    )
    arrays = {name: array.copy() for name, array in encoded.arrays().items()}
    for array in arrays.values():
        array.setflags(write=False)  # memory-mapped indexes are read-only: the same types
    kernel(
        np.zeros(1, np.int64), np.ones(1, np.float32), np.ones(1, np.float64), 1, -math.inf,
        arrays["term_blocks"], arrays["block_last"], arrays["block_count"],
        arrays["block_offset"], arrays["data"], np.ones(1, np.float32), False, 1.5,
        np.zeros(1, np.float32), np.zeros(1, np.uint8), np.zeros(1, np.int64),
        np.empty(1, np.int64), np.empty(1, np.float32),
    )  # fmt: skip
    return True
