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

__all__ = ["search_shard"]

_jit = numba.njit(cache=True, nogil=True)
_SLACK = 1.0 - 1e-5  # scores are float32 sums: prune only what is clearly below the cut


@_jit
def _read_block(doc_bytes, tf_bytes, doc_pos, tf_pos, first, count, out_docs, out_tfs):  # type: ignore[no-untyped-def]
    doc = np.int64(first)
    for i in range(count):
        value = np.int64(0)
        shift = np.int64(0)
        while True:
            byte = np.int64(doc_bytes[doc_pos])
            doc_pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 128:
                break
            shift += 7
        doc += value
        out_docs[i] = doc
        value = np.int64(0)
        shift = np.int64(0)
        while True:
            byte = np.int64(tf_bytes[tf_pos])
            tf_pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 128:
                break
            shift += 7
        out_tfs[i] = value


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
    block_first,
    block_last,
    block_count,
    block_doc_offset,
    block_tf_offset,
    doc_bytes,
    tf_bytes,
    norm,
    atire,
    k1,
    acc,
    mark,
    touched,
    out_docs,
    out_scores,
):
    """Best ``k`` documents of one shard; returns how many were written to the outputs.

    Args:
        entries: shard term positions of the query terms, canonical order (repeats kept).
        idfs: float32 idf of each entry.
        bounds: float64 upper bound of each entry's contribution in this shard.
        k: results wanted.
        theta_in: a score already reached by ``k`` better-placed documents (-inf if none).
        term_blocks: the shard's block range per term (see ``EncodedPostings``).
        block_first: first document of each block.
        block_last: last document of each block.
        block_count: postings in each block.
        block_doc_offset: byte offset of each block in ``doc_bytes``.
        block_tf_offset: byte offset of each block in ``tf_bytes``.
        doc_bytes: variable-byte document gaps.
        tf_bytes: variable-byte term frequencies.
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
    while i < m:
        if suffix[i] < theta:
            break
        term = entries[i]
        w = idfs[i]
        for blk in range(term_blocks[term], term_blocks[term + 1]):
            cnt = np.int64(block_count[blk])
            _read_block(
                doc_bytes, tf_bytes, block_doc_offset[blk], block_tf_offset[blk],
                block_first[blk], cnt, buf_docs, buf_tfs,
            )  # fmt: skip
            for j in range(cnt):
                d = buf_docs[j]
                tf = np.float32(buf_tfs[j])
                s = w * ((tf * scale) / (norm[d] + tf))
                if mark[d] == 0:
                    mark[d] = 1
                    touched[n] = d
                    n += 1
                acc[d] += s
        i += 1
        if i < m and n >= k:
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
                if block_first[blk] > d:
                    continue
                if loaded != blk:
                    cnt = np.int64(block_count[blk])
                    _read_block(
                        doc_bytes, tf_bytes, block_doc_offset[blk], block_tf_offset[blk],
                        block_first[blk], cnt, buf_docs, buf_tfs,
                    )  # fmt: skip
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
    for x in range(n):
        d = touched[x]
        acc[d] = 0
        mark[d] = 0
    return written
