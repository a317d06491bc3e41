"""Compact postings: blocks of 128 bit-packed gaps and frequencies, with numpy codecs.

A term's postings in a shard are its (document, term frequency) pairs in document order,
cut into blocks of :data:`BLOCK_SIZE`. Each block records its last document and where its
bytes start, so a search can skip to the block that may hold a document without decoding
the ones before it. A block's bytes are

- its first document as a variable-byte number (seven bits per byte, low bits first, the
  high bit set on every byte but the last);
- one byte ``w``, then the ``count - 1`` gaps between consecutive documents packed in ``w``
  bits each (``w`` = bits of the largest gap; frame of reference, low bits first);
- one byte ``v``, then the ``count`` values ``frequency - 1`` packed in ``v`` bits each.

Most frequencies in passage collections are 1, so most blocks spend one byte on them. The
data array ends with eight zero bytes, so a decoder may always read eight bytes at a time.

Everything here is vectorised numpy, so the index is readable without numba; the numba
kernels in :mod:`raggym_env.retrieval.bm25_kernels` encode and decode the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "BLOCK_SIZE",
    "PADDING",
    "EncodedPostings",
    "bit_width",
    "decode_block",
    "decode_varbytes",
    "encode_postings",
    "encode_varbytes",
    "offset_dtype",
]

BLOCK_SIZE = 128
"""Postings per block: the unit of skipping."""
PADDING = 8
"""Zero bytes after the last block."""

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


def bit_width(values: np.ndarray) -> np.ndarray:
    """Bits needed by each unsigned value (0 for 0), as int64."""
    v = np.asarray(values, dtype=np.uint64).copy()
    width = np.zeros(len(v), dtype=np.int64)
    while True:
        nonzero = v > 0
        if not nonzero.any():
            return width
        width += nonzero
        v >>= np.uint64(1)


def offset_dtype(size: int) -> type[np.unsignedinteger] | type[np.signedinteger]:
    """uint32 offsets while they fit (they almost always do), else int64."""
    return np.uint32 if size < 2**32 else np.int64


@dataclass
class EncodedPostings:
    """The arrays of one shard's postings (see the module docstring for the layout)."""

    terms: np.ndarray  # uint32 [T]: global term ids present in the shard, ascending
    term_blocks: np.ndarray  # uint32 (int64 if huge) [T+1]: block range of each term
    term_max_tf: np.ndarray  # uint32 [T]: largest frequency of the term in the shard
    term_min_length: np.ndarray  # uint32 [T]: shortest document holding the term
    block_last: np.ndarray  # uint32 [B]: last document of each block
    block_count: np.ndarray  # uint8 [B]: postings in the block (1..128)
    block_offset: np.ndarray  # uint32 (int64 if huge) [B+1]: byte offsets into ``data``
    data: np.ndarray  # uint8: the blocks, then PADDING zero bytes

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays by file stem, as saved."""
        return dict(vars(self))


def _pack(bits: np.ndarray, positions: np.ndarray, values: np.ndarray, widths: np.ndarray) -> None:
    """Set, in the bit array ``bits``, the low ``widths`` bits of ``values`` at ``positions``."""
    values = values.astype(np.uint64)
    for j in range(int(widths.max(initial=0))):
        sel = np.flatnonzero(widths > j)
        ones = sel[((values[sel] >> np.uint64(j)) & np.uint64(1)).astype(bool)]
        bits[positions[ones] + j] = 1


def encode_postings(
    terms: np.ndarray, docs: np.ndarray, tfs: np.ndarray, lengths: np.ndarray
) -> EncodedPostings:
    """Encode postings sorted by (term, document) (the reference encoder, numpy only).

    Args:
        terms: global term id of each posting (uint32), ascending.
        docs: shard-local document of each posting, ascending within a term.
        tfs: frequency of the term in the document (>= 1).
        lengths: length of every document of the shard (for :attr:`term_min_length`).
    """
    n = len(terms)
    if n == 0:
        empty32 = np.zeros(0, dtype=np.uint32)
        zero = np.zeros(1, dtype=np.uint32)
        return EncodedPostings(
            empty32, zero, empty32, empty32, empty32, np.zeros(0, np.uint8), zero,
            np.zeros(PADDING, np.uint8),
        )  # fmt: skip
    docs = np.asarray(docs, dtype=np.uint32)
    tfs = np.asarray(tfs, dtype=np.uint32)
    new_term = np.empty(n, dtype=bool)
    new_term[0] = True
    np.not_equal(terms[1:], terms[:-1], out=new_term[1:])
    term_starts = np.flatnonzero(new_term)
    term_counts = np.diff(np.append(term_starts, n))
    rank = np.arange(n, dtype=np.int64) - np.repeat(term_starts, term_counts)
    block_starts = np.flatnonzero((rank % BLOCK_SIZE) == 0)
    counts = np.diff(np.append(block_starts, n))
    block_of = np.repeat(np.arange(len(block_starts)), counts)
    in_block = np.arange(n, dtype=np.int64) - block_starts[block_of]
    blocks_per_term = (term_counts + BLOCK_SIZE - 1) // BLOCK_SIZE
    n_blocks = len(block_starts)
    term_blocks = np.zeros(len(term_starts) + 1, dtype=offset_dtype(n_blocks))
    np.cumsum(blocks_per_term, out=term_blocks[1:])

    gaps = np.zeros(n, dtype=np.uint32)
    np.subtract(docs[1:], docs[:-1], out=gaps[1:])
    gaps[block_starts] = 0
    doc_width = bit_width(np.maximum.reduceat(gaps, block_starts))
    tf_width = bit_width(np.maximum.reduceat(tfs - 1, block_starts))
    first = docs[block_starts]
    first_bytes, first_starts = encode_varbytes(first)
    first_size = np.diff(np.append(first_starts, len(first_bytes)))
    doc_size = ((counts - 1) * doc_width + 7) // 8
    tf_size = (counts * tf_width + 7) // 8
    sizes = first_size + 1 + doc_size + 1 + tf_size
    offsets = np.zeros(n_blocks + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    total = int(offsets[-1])

    data = np.zeros(total + PADDING, dtype=np.uint8)
    at = np.repeat(offsets[:-1] - first_starts, first_size) + np.arange(len(first_bytes))
    data[at] = first_bytes
    doc_head = offsets[:-1] + first_size  # the width byte of the gaps
    tf_head = doc_head + 1 + doc_size  # the width byte of the frequencies
    data[doc_head] = doc_width
    data[tf_head] = tf_width
    bits = np.zeros(8 * len(data), dtype=np.uint8)
    later = np.flatnonzero(in_block > 0)
    b = block_of[later]
    _pack(
        bits,
        8 * (doc_head[b] + 1) + (in_block[later] - 1) * doc_width[b],
        gaps[later],
        doc_width[b],
    )
    _pack(
        bits,
        8 * (tf_head[block_of] + 1) + in_block * tf_width[block_of],
        tfs - 1,
        tf_width[block_of],
    )
    data |= np.packbits(bits, bitorder="little")
    block_ends = np.append(block_starts[1:], n) - 1
    lengths = np.asarray(lengths, dtype=np.uint32)
    return EncodedPostings(
        terms=np.ascontiguousarray(terms[term_starts], dtype=np.uint32),
        term_blocks=term_blocks,
        term_max_tf=np.maximum.reduceat(tfs, term_starts).astype(np.uint32),
        term_min_length=np.minimum.reduceat(lengths[docs], term_starts).astype(np.uint32),
        block_last=docs[block_ends].copy(),
        block_count=counts.astype(np.uint8),
        block_offset=offsets.astype(offset_dtype(total)),
        data=data,
    )


def _unpack(data: np.ndarray, position: int, count: int, width: int) -> tuple[np.ndarray, int]:
    """``count`` values of ``width`` bits from byte ``position``; and the next position."""
    size = (count * width + 7) // 8
    if width == 0 or count == 0:
        return np.zeros(count, dtype=np.int64), position + size
    bits = np.unpackbits(data[position : position + size], bitorder="little")[: count * width]
    weights = np.left_shift(np.int64(1), np.arange(width, dtype=np.int64))
    return bits.reshape(count, width).astype(np.int64) @ weights, position + size


def _width_at(data: np.ndarray, position: int, offset: int) -> int:
    width = int(data[position])
    if width > 32:
        raise ValueError(f"block at byte {offset}: a frame of {width} bits (at most 32)")
    return width


def decode_block(
    data: np.ndarray, offset: int, count: int, end: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The documents and frequencies (int64) of the block in bytes ``offset:end``.

    Raises:
        ValueError: the bytes are not a block of ``count`` postings ending at ``end``.
    """
    position = int(offset)
    first, shift = 0, 0
    for _ in range(5):
        byte = int(data[position])
        position += 1
        first |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
    else:
        raise ValueError(f"block at byte {offset}: the first document is not a varbyte number")
    gap_width = _width_at(data, position, offset)
    gaps, position = _unpack(data, position + 1, count - 1, gap_width)
    tf_width = _width_at(data, position, offset)
    freqs, position = _unpack(data, position + 1, count, tf_width)
    if end is not None and position != end:
        raise ValueError(f"block at byte {offset}: ends at byte {position}, expected {end}")
    docs = np.empty(count, dtype=np.int64)
    docs[0] = first
    np.cumsum(gaps, out=docs[1:])
    docs[1:] += first
    return docs, freqs + 1
