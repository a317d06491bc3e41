"""Compact postings: variable-byte codes in blocks of 128, encoded and decoded with numpy.

A term's postings in a shard are its (document, term frequency) pairs in document order,
cut into blocks of :data:`BLOCK_SIZE`. Each block records its first and last document and
where its bytes start, so a search can skip to the block that may hold a document without
decoding the ones before it. Documents are stored as gaps from the previous document of
the block (the first gap is 0, relative to the block's first document); frequencies as
they are. Both streams use variable-byte codes: seven bits per byte, low bits first, the
high bit set on every byte but the last. Short lists of frequent terms cost about one byte
per gap and one per frequency.

Everything here is vectorised numpy, so the index is readable without numba; the numba
kernels in :mod:`raggym_env.retrieval.bm25_kernels` decode the same bytes one at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["BLOCK_SIZE", "EncodedPostings", "decode_varbytes", "encode_postings", "encode_varbytes"]

BLOCK_SIZE = 128
"""Postings per block: the unit of skipping."""

_LIMITS = np.array([1 << 7, 1 << 14, 1 << 21, 1 << 28], dtype=np.uint64)


def encode_varbytes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Encode unsigned 32-bit ``values``; return the bytes and each value's byte offset."""
    v = np.asarray(values, dtype=np.uint64)
    nbytes = np.ones(len(v), dtype=np.int64)
    for limit in _LIMITS:
        nbytes += v >= limit
    ends = np.cumsum(nbytes)
    starts = ends - nbytes
    out = np.empty(int(ends[-1]) if len(ends) else 0, dtype=np.uint8)
    for j in range(5):
        sel = np.flatnonzero(nbytes > j)
        if not len(sel):
            break
        byte = (v[sel] >> np.uint64(7 * j)) & np.uint64(0x7F)
        more = (nbytes[sel] > j + 1).astype(np.uint64) << np.uint64(7)
        out[starts[sel] + j] = (byte | more).astype(np.uint8)
    return out, starts


def decode_varbytes(data: np.ndarray) -> np.ndarray:
    """Decode every value of a byte range written by :func:`encode_varbytes` (uint32)."""
    data = np.asarray(data, dtype=np.uint8)
    if not len(data):
        return np.zeros(0, dtype=np.uint32)
    last = (data & 0x80) == 0
    ends = np.flatnonzero(last)
    group = np.zeros(len(data), dtype=np.int64)
    group[1:] = np.cumsum(last[:-1])
    starts = np.empty(len(ends), dtype=np.int64)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    shift = (np.arange(len(data), dtype=np.int64) - starts[group]) * 7
    parts = (data & 0x7F).astype(np.uint64) << shift.astype(np.uint64)
    return np.add.reduceat(parts, starts).astype(np.uint32)


@dataclass
class EncodedPostings:
    """The arrays of one shard's postings (see the module docstring for the layout)."""

    terms: np.ndarray  # uint32 [T]: global term ids present in the shard, ascending
    term_blocks: np.ndarray  # int64 [T+1]: block range of each term
    term_max_tf: np.ndarray  # uint32 [T]: largest frequency of the term in the shard
    term_min_length: np.ndarray  # uint32 [T]: shortest document holding the term
    block_first: np.ndarray  # uint32 [B]: first document of each block
    block_last: np.ndarray  # uint32 [B]: last document of each block
    block_count: np.ndarray  # uint8 [B]: postings in the block (1..128)
    block_doc_offset: np.ndarray  # int64 [B+1]: byte offsets into ``doc_bytes``
    block_tf_offset: np.ndarray  # int64 [B+1]: byte offsets into ``tf_bytes``
    doc_bytes: np.ndarray  # uint8: document gaps
    tf_bytes: np.ndarray  # uint8: term frequencies

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays by file stem, as saved."""
        return dict(vars(self))


def encode_postings(
    terms: np.ndarray, docs: np.ndarray, tfs: np.ndarray, lengths: np.ndarray
) -> EncodedPostings:
    """Encode postings sorted by (term, document).

    Args:
        terms: global term id of each posting (uint32), ascending.
        docs: shard-local document of each posting, ascending within a term.
        tfs: frequency of the term in the document (>= 1).
        lengths: length of every document of the shard (for :attr:`term_min_length`).
    """
    n = len(terms)
    if n == 0:
        empty32 = np.zeros(0, dtype=np.uint32)
        zero = np.zeros(1, dtype=np.int64)
        return EncodedPostings(
            empty32, zero, empty32, empty32, empty32, empty32, np.zeros(0, np.uint8),
            zero, zero, np.zeros(0, np.uint8), np.zeros(0, np.uint8),
        )  # fmt: skip
    docs = np.asarray(docs, dtype=np.uint32)
    tfs = np.asarray(tfs, dtype=np.uint32)
    new_term = np.empty(n, dtype=bool)
    new_term[0] = True
    np.not_equal(terms[1:], terms[:-1], out=new_term[1:])
    term_starts = np.flatnonzero(new_term)
    term_counts = np.diff(np.append(term_starts, n))
    rank = np.arange(n, dtype=np.int64) - np.repeat(term_starts, term_counts)
    new_block = (rank % BLOCK_SIZE) == 0
    del rank
    block_starts = np.flatnonzero(new_block)
    block_ends = np.append(block_starts[1:], n) - 1
    blocks_per_term = (term_counts + BLOCK_SIZE - 1) // BLOCK_SIZE
    term_blocks = np.zeros(len(term_starts) + 1, dtype=np.int64)
    np.cumsum(blocks_per_term, out=term_blocks[1:])

    gaps = np.empty(n, dtype=np.uint32)
    gaps[0] = 0
    np.subtract(docs[1:], docs[:-1], out=gaps[1:])
    gaps[new_block] = 0
    doc_bytes, doc_offsets = encode_varbytes(gaps)
    del gaps
    tf_bytes, tf_offsets = encode_varbytes(tfs)
    block_doc_offset = np.append(doc_offsets[block_starts], len(doc_bytes)).astype(np.int64)
    block_tf_offset = np.append(tf_offsets[block_starts], len(tf_bytes)).astype(np.int64)
    del doc_offsets, tf_offsets
    lengths = np.asarray(lengths, dtype=np.uint32)
    return EncodedPostings(
        terms=np.ascontiguousarray(terms[term_starts], dtype=np.uint32),
        term_blocks=term_blocks,
        term_max_tf=np.maximum.reduceat(tfs, term_starts).astype(np.uint32),
        term_min_length=np.minimum.reduceat(lengths[docs], term_starts).astype(np.uint32),
        block_first=docs[block_starts].copy(),
        block_last=docs[block_ends].copy(),
        block_count=(block_ends - block_starts + 1).astype(np.uint8),
        block_doc_offset=block_doc_offset,
        block_tf_offset=block_tf_offset,
        doc_bytes=doc_bytes,
        tf_bytes=tf_bytes,
    )
