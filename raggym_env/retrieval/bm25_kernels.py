"""Compiled BM25 search over one shard: exact top-k with MaxScore pruning (numba).

Imported only when numba is installed (``pip install 'raggym[bm25]'``); without it
:mod:`raggym_env.retrieval.inverted` scores every posting with numpy and returns the same
documents with the same scores.

The query's terms come in a canonical order (highest idf first), so a document's score is
the same float32 sum whichever shard holds it and whether or not pruning happened. Terms
are scored in full while the terms still to come could lift an unseen document into the
top ``k``; after that only documents already seen are completed, by skipping through the
remaining lists block by block. The bound of a term in a shard uses its largest frequency
and shortest document there; every bound is rounded up, and a document is dropped only when
its score plus the bounds of every remaining term is below the current k-th score, so the
result equals exhaustive scoring.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["encode_shard", "search_shard"]

_jit = numba.njit(cache=True, nogil=True)
_SLACK = 1.0 - 1e-5  # scores are float32 sums: prune only what is clearly below the cut


@_jit
def _first_doc(data, pos):  # type: ignore[no-untyped-def]
    """The first document of the block at byte ``pos`` and the next position (-1: damaged)."""
    value = np.int64(0)
    shift = np.int64(0)
    for _ in range(5):
        byte = np.int64(data[pos])
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 128:
            return value, pos
        shift += 7
    return np.int64(-1), pos


@_jit
def _bits_at(data, bit, mask):  # type: ignore[no-untyped-def]
    """The value of ``mask``'s width stored from bit ``bit`` (reads up to five bytes)."""
    i = bit >> 3
    word = (
        np.int64(data[i])
        | (np.int64(data[i + 1]) << 8)
        | (np.int64(data[i + 2]) << 16)
        | (np.int64(data[i + 3]) << 24)
        | (np.int64(data[i + 4]) << 32)
    )
    return (word >> (bit & 7)) & mask


@_jit
def _read_block(data, pos, end, count, last, out_docs, out_tfs):  # type: ignore[no-untyped-def]
    """Decode the block in bytes ``pos:end`` into ``out_docs`` and ``out_tfs``.

    Returns ``False``, having read nothing outside the block, when the bytes disagree with
    the block's recorded end or last document: a damaged index is reported, never read
    past (every decoded document is then at most ``last``, checked at load to be in the
    shard).
    """
    doc, pos = _first_doc(data, pos)
    if doc < 0 or pos >= end:
        return False
    width = np.int64(data[pos])
    pos += 1
    size = ((count - 1) * width + 7) >> 3
    if width > 32 or pos + size >= end:
        return False
    out_docs[0] = doc
    mask = (np.int64(1) << width) - 1
    bit = pos * 8
    for i in range(1, count):
        doc += _bits_at(data, bit, mask)
        out_docs[i] = doc
        bit += width
    if doc != last:
        return False
    pos += size
    width = np.int64(data[pos])
    pos += 1
    if width > 32 or pos + ((count * width + 7) >> 3) != end:
        return False
    if width == 0:
        for i in range(count):
            out_tfs[i] = 1
        return True
    mask = (np.int64(1) << width) - 1
    bit = pos * 8
    for i in range(count):
        out_tfs[i] = _bits_at(data, bit, mask) + 1
        bit += width
    return True


@_jit
def _clear(acc, mark, touched, n):  # type: ignore[no-untyped-def]
    """Zero the workspaces where the search wrote (they must be clean for the next one)."""
    for x in range(n):
        d = touched[x]
        acc[d] = 0
        mark[d] = 0


@_jit
def _worse(score_a, doc_a, score_b, doc_b):  # type: ignore[no-untyped-def]
    """Whether (score_a, doc_a) ranks below (score_b, doc_b): lower score, then later doc."""
    return score_a < score_b or (score_a == score_b and doc_a > doc_b)


@_jit
def _sift_down(h_scores, h_docs, size, pos):  # type: ignore[no-untyped-def]
    while True:
        left = 2 * pos + 1
        if left >= size:
            return
        child = left
        right = left + 1
        if right < size and _worse(h_scores[right], h_docs[right], h_scores[left], h_docs[left]):
            child = right
        if _worse(h_scores[child], h_docs[child], h_scores[pos], h_docs[pos]):
            h_scores[pos], h_scores[child] = h_scores[child], h_scores[pos]
            h_docs[pos], h_docs[child] = h_docs[child], h_docs[pos]
            pos = child
        else:
            return


@_jit
def _sift_up(h_scores, h_docs, pos):  # type: ignore[no-untyped-def]
    while pos > 0:
        parent = (pos - 1) // 2
        if _worse(h_scores[pos], h_docs[pos], h_scores[parent], h_docs[parent]):
            h_scores[pos], h_scores[parent] = h_scores[parent], h_scores[pos]
            h_docs[pos], h_docs[parent] = h_docs[parent], h_docs[pos]
            pos = parent
        else:
            return


@_jit
def _top_k(acc, docs, count, k, h_scores, h_docs):  # type: ignore[no-untyped-def]
    """Fill the heap with the best ``k`` of ``docs[:count]``; return its size (worst at 0)."""
    size = 0
    for x in range(count):
        d = docs[x]
        s = acc[d]
        if size < k:
            h_scores[size] = s
            h_docs[size] = d
            _sift_up(h_scores, h_docs, size)
            size += 1
        elif _worse(h_scores[0], h_docs[0], s, d):
            h_scores[0] = s
            h_docs[0] = d
            _sift_down(h_scores, h_docs, size, 0)
    return size


@_jit
def search_shard(  # type: ignore[no-untyped-def]
    entries,
    idfs,
    bounds,
    k,
    theta_in,
    term_blocks,
    block_last,
    block_count,
    block_offset,
    data,
    norm,
    atire,
    k1,
    acc,
    mark,
    touched,
    out_docs,
    out_scores,
):
    """Best ``k`` documents of one shard; returns how many were written (-1: damaged data).

    Args:
        entries: shard term positions of the query terms, canonical order (repeats kept).
        idfs: float32 idf of each entry.
        bounds: float64 upper bound of each entry's contribution in this shard.
        k: results wanted.
        theta_in: a score already reached by ``k`` better-placed documents (-inf if none).
        term_blocks: the shard's block range per term (see ``EncodedPostings``).
        block_last: last document of each block.
        block_count: postings in each block.
        block_offset: byte offset of each block in ``data``.
        data: the encoded blocks (see :mod:`raggym_env.retrieval.postings`).
        norm: float32 ``k1 * (1 - b + b * length / avgdl)`` per document.
        atire: whether the frequency part carries the ``(k1 + 1)`` factor.
        k1: the saturation parameter (for ``atire``).
        acc: zeroed float32 score workspace of the shard's size; left zeroed.
        mark: zeroed uint8 workspace of the shard's size; left zeroed.
        touched: int64 workspace of the shard's size (documents scored).
        out_docs: receives the result documents, best first (ties: lower document first).
        out_scores: receives their float32 scores.
    """
    m = len(entries)
    suffix = np.zeros(m + 1, dtype=np.float64)
    for i in range(m - 1, -1, -1):
        suffix[i] = suffix[i + 1] + bounds[i]
    buf_docs = np.empty(128, dtype=np.int64)
    buf_tfs = np.empty(128, dtype=np.int64)
    h_scores = np.empty(k, dtype=np.float32)
    h_docs = np.empty(k, dtype=np.int64)
    scale = np.float32(k1 + 1.0) if atire else np.float32(1.0)
    n = 0
    theta = theta_in
    i = 0
    best = np.float32(0.0)
    while i < m:
        if suffix[i] < theta:
            break
        term = entries[i]
        w = idfs[i]
        for blk in range(term_blocks[term], term_blocks[term + 1]):
            cnt = np.int64(block_count[blk])
            if not _read_block(
                data, np.int64(block_offset[blk]), np.int64(block_offset[blk + 1]), cnt,
                np.int64(block_last[blk]), buf_docs, buf_tfs,
            ):  # fmt: skip
                _clear(acc, mark, touched, n)
                return -1
            for j in range(cnt):
                d = buf_docs[j]
                tf = np.float32(buf_tfs[j])
                s = w * ((tf * scale) / (norm[d] + tf))
                if mark[d] == 0:
                    mark[d] = 1
                    touched[n] = d
                    n += 1
                acc[d] += s
                if acc[d] > best:
                    best = acc[d]
        i += 1
        # The k-th score is at most the best one: while the terms to come could add more
        # than that, no document can be ruled out, so the top k is not worth computing.
        if i < m and n >= k and suffix[i] < best:
            size = _top_k(acc, touched, n, k, h_scores, h_docs)
            if size == k:
                theta = max(theta, np.float64(h_scores[0]) * _SLACK)
    final = touched
    count = n
    if i < m:
        cand = np.empty(n, dtype=np.int64)
        count = 0
        for x in range(n):
            d = touched[x]
            if acc[d] + suffix[i] >= theta:
                cand[count] = d
                count += 1
        cand = np.sort(cand[:count])
        for j in range(i, m):
            term = entries[j]
            w = idfs[j]
            blk = term_blocks[term]
            end = term_blocks[term + 1]
            loaded = -1
            cnt = np.int64(0)
            p = 0
            for x in range(count):
                d = cand[x]
                while blk < end and block_last[blk] < d:
                    blk += 1
                if blk == end:
                    break
                if loaded != blk:
                    if _first_doc(data, np.int64(block_offset[blk]))[0] > d:
                        continue
                    cnt = np.int64(block_count[blk])
                    if not _read_block(
                        data, np.int64(block_offset[blk]), np.int64(block_offset[blk + 1]),
                        cnt, np.int64(block_last[blk]), buf_docs, buf_tfs,
                    ):  # fmt: skip
                        _clear(acc, mark, touched, n)
                        return -1
                    loaded = blk
                    p = 0
                while p < cnt and buf_docs[p] < d:
                    p += 1
                if p < cnt and buf_docs[p] == d:
                    tf = np.float32(buf_tfs[p])
                    acc[d] += w * ((tf * scale) / (norm[d] + tf))
            if j + 1 < m and count > k:
                size = _top_k(acc, cand, count, k, h_scores, h_docs)
                if size == k:
                    theta = max(theta, np.float64(h_scores[0]) * _SLACK)
                kept = 0
                for x in range(count):
                    d = cand[x]
                    if acc[d] + suffix[j + 1] >= theta:
                        cand[kept] = d
                        kept += 1
                count = kept
        final = cand
    size = _top_k(acc, final, count, k, h_scores, h_docs)
    written = 0
    while size > 0:  # pop worst first, write from the back
        size -= 1
        h_scores[0], h_scores[size] = h_scores[size], h_scores[0]
        h_docs[0], h_docs[size] = h_docs[size], h_docs[0]
        _sift_down(h_scores, h_docs, size, 0)
    for x in range(min(count, k)):
        if h_scores[x] > 0:
            out_docs[written] = h_docs[x]
            out_scores[written] = h_scores[x]
            written += 1
    _clear(acc, mark, touched, n)
    return written


@_jit
def _varbyte_size(value):  # type: ignore[no-untyped-def]
    size = 1
    while value >= 128:
        value >>= 7
        size += 1
    return size


@_jit
def _put_varbyte(out, pos, value):  # type: ignore[no-untyped-def]
    while value >= 128:
        out[pos] = np.uint8((value & 0x7F) | 0x80)
        value >>= 7
        pos += 1
    out[pos] = np.uint8(value)
    return pos + 1


@_jit
def _width(value):  # type: ignore[no-untyped-def]
    width = 0
    while value > 0:
        value >>= 1
        width += 1
    return width


@_jit
def _put_bits(out, bit, value, width):  # type: ignore[no-untyped-def]
    """OR ``value``'s low ``width`` bits into ``out`` (zeroed) from bit ``bit``."""
    while width > 0:
        i = bit >> 3
        shift = bit & 7
        take = min(8 - shift, width)
        out[i] |= np.uint8((value & ((1 << take) - 1)) << shift)
        value >>= take
        bit += take
        width -= take


@_jit
def _block_widths(docs, tfs, order, start, stop):  # type: ignore[no-untyped-def]
    gap_max = np.int64(0)
    tf_max = np.int64(0)
    for i in range(start, stop):
        if i > start:
            gap_max = max(gap_max, np.int64(docs[order[i]]) - np.int64(docs[order[i - 1]]))
        tf_max = max(tf_max, np.int64(tfs[order[i]]) - 1)
    return _width(gap_max), _width(tf_max)


@_jit
def encode_shard(terms, docs, tfs, lengths, vocabulary_size, block_size, padding):  # type: ignore[no-untyped-def]
    """Sort a shard's postings by term (counting sort, documents stay in order) and encode them.

    The input postings come in document order; the output arrays are exactly those of
    :func:`raggym_env.retrieval.postings.encode_postings` on the term-sorted postings (with
    int64 offsets; the caller narrows them).
    """
    n = len(terms)
    counts = np.zeros(vocabulary_size + 1, dtype=np.int64)
    for i in range(n):
        counts[terms[i] + 1] += 1
    present = 0
    for t in range(vocabulary_size):
        if counts[t + 1] > 0:
            present += 1
        counts[t + 1] += counts[t]
    # A stable counting sort by term; the postings are read through ``order`` rather than
    # copied, which keeps the peak at 4 extra bytes a posting.
    fill = counts[:-1].copy()
    order = np.empty(n, dtype=np.uint32)
    for i in range(n):
        t = terms[i]
        order[fill[t]] = i
        fill[t] += 1
    out_terms = np.empty(present, dtype=np.uint32)
    term_blocks = np.zeros(present + 1, dtype=np.int64)
    term_max_tf = np.zeros(present, dtype=np.uint32)
    term_min_length = np.zeros(present, dtype=np.uint32)
    n_blocks = 0
    p = 0
    for t in range(vocabulary_size):
        c = counts[t + 1] - counts[t]
        if c > 0:
            out_terms[p] = t
            n_blocks += (c + block_size - 1) // block_size
            term_blocks[p + 1] = n_blocks
            p += 1
    block_last = np.empty(n_blocks, dtype=np.uint32)
    block_count = np.empty(n_blocks, dtype=np.uint8)
    block_offset = np.zeros(n_blocks + 1, dtype=np.int64)
    size = 0
    for p in range(present):  # sizes first, so the data is allocated once
        lo = counts[out_terms[p]]
        hi = counts[out_terms[p] + 1]
        for start in range(lo, hi, block_size):
            stop = min(start + block_size, hi)
            doc_width, tf_width = _block_widths(docs, tfs, order, start, stop)
            count = stop - start
            size += _varbyte_size(np.int64(docs[order[start]])) + 2
            size += ((count - 1) * doc_width + 7) // 8 + (count * tf_width + 7) // 8
    data = np.zeros(size + padding, dtype=np.uint8)
    pos = 0
    block = 0
    for p in range(present):
        lo = counts[out_terms[p]]
        hi = counts[out_terms[p] + 1]
        max_tf = np.uint32(0)
        min_length = np.uint32(0xFFFFFFFF)
        for start in range(lo, hi, block_size):
            stop = min(start + block_size, hi)
            count = stop - start
            doc_width, tf_width = _block_widths(docs, tfs, order, start, stop)
            block_last[block] = docs[order[stop - 1]]
            block_count[block] = np.uint8(count)
            block_offset[block] = pos
            pos = _put_varbyte(data, pos, np.int64(docs[order[start]]))
            data[pos] = np.uint8(doc_width)
            pos += 1
            bit = pos * 8
            for i in range(start + 1, stop):
                _put_bits(
                    data, bit, np.int64(docs[order[i]]) - np.int64(docs[order[i - 1]]), doc_width
                )
                bit += doc_width
            pos += ((count - 1) * doc_width + 7) // 8
            data[pos] = np.uint8(tf_width)
            pos += 1
            bit = pos * 8
            for i in range(start, stop):
                _put_bits(data, bit, np.int64(tfs[order[i]]) - 1, tf_width)
                bit += tf_width
                max_tf = max(max_tf, tfs[order[i]])
                min_length = min(min_length, lengths[docs[order[i]]])
            pos += (count * tf_width + 7) // 8
            block += 1
        term_max_tf[p] = max_tf
        term_min_length[p] = min_length
    block_offset[n_blocks] = pos
    return (
        out_terms, term_blocks, term_max_tf, term_min_length, block_last, block_count,
        block_offset, data,
    )  # fmt: skip
