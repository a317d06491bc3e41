"""Serve a FAISS index built elsewhere (e.g. Search-R1's ``e5_Flat.index``) without encoding.

Search-R1 and FlashRAG ship a FAISS index over the embeddings of a corpus file such as
``wiki-18.jsonl``: row ``i`` of the index is document ``i`` of the file. Encoding that
corpus again takes GPU-days; :func:`open_faiss_index` instead reads the index (memory-mapped
when FAISS can), pairs it with the corpus and a query encoder, and returns a
:class:`~raggym_env.retrieval.dense.DenseRetriever` that only ever encodes queries.

Checked on opening: the index holds exactly one vector per corpus document, the query
encoder's dimension is the index's, and the metric (inner product or L2) is read from the
index. With L2 the score is the negated distance, so larger is still better.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from raggym_env.availability import require
from raggym_env.corpora import BaseCorpus
from raggym_env.retrieval.base import IndexMismatchError
from raggym_env.retrieval.dense import (
    DenseRetriever,
    _embedding_dim,
    _encoder,
    _resolve_model,
    model_fingerprint,
)

__all__ = ["ImportedFaissRetriever", "open_faiss_index"]

logger = logging.getLogger(__name__)

_FEATURE = "serving a FAISS index"


class _NegatedL2:
    """A FAISS L2 index whose ``search`` returns negated distances (larger is better)."""

    def __init__(self, index: Any) -> None:
        self.index = index
        self.ntotal = index.ntotal
        self.d = index.d

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        distances, ids = self.index.search(queries, k)
        return -distances, ids


class ImportedFaissRetriever(DenseRetriever):
    """A :class:`DenseRetriever` over a FAISS index file it did not build.

    Queries get ``query_prefix`` (e.g. ``"query: "`` for E5 models) before encoding. The
    index is served where it lies; :meth:`save` is not supported.
    """

    def __init__(self, *args: Any, query_prefix: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._query_prefix = query_prefix

    @property
    def index_path(self) -> Path:
        """The FAISS index file served."""
        return Path(self._manifest["imported"]["index_path"])

    @property
    def query_prefix(self) -> str:
        """Text put before every query when encoding it."""
        return self._query_prefix

    def query_texts(self, queries: list[str]) -> list[str]:
        """``query_prefix + query`` for each query (then the parent's spec prefix, if any)."""
        return super().query_texts([self._query_prefix + query for query in queries])

    def save(self, directory: str | Path) -> Path:
        """Not supported: the imported index is served from its own file."""
        raise NotImplementedError(
            f"an index opened from {self.index_path} is served in place; copy that file and "
            "the corpus instead of saving, or build a raggym index with DenseRetriever.build"
        )


def _read_index(path: Path, mmap: bool) -> Any:
    """Read ``path``, memory-mapped when asked and FAISS supports it for this index type."""
    faiss = require("faiss", feature=_FEATURE)
    if mmap:
        for flag_name in ("IO_FLAG_MMAP_IFC", "IO_FLAG_MMAP"):
            flag = getattr(faiss, flag_name, None)
            if flag is None:
                continue
            try:
                return faiss.read_index(str(path), flag)
            except RuntimeError as exc:
                logger.debug("FAISS could not read %s with %s: %s", path, flag_name, exc)
    return faiss.read_index(str(path))


def _index_type(index: Any) -> str:
    """The nearest :class:`DenseConfig` index type (every IVF index counts as ``ivfpq``)."""
    name = type(index).__name__
    if "HNSW" in name:
        return "hnsw"
    if "IVF" in name:
        return "ivfpq"
    return "flat"


def _flat_vectors(index: Any) -> np.ndarray:
    """The stored float32 vectors of a flat index (a view, no copy); empty for other types."""
    faiss = require("faiss", feature=_FEATURE)
    if not hasattr(index, "get_xb") or index.ntotal == 0:
        return np.zeros((0, index.d), dtype=np.float32)
    flat = faiss.rev_swig_ptr(index.get_xb(), index.ntotal * index.d)
    return np.asarray(flat).reshape(index.ntotal, index.d)


def open_faiss_index(
    index_path: str | Path,
    corpus: BaseCorpus | str | Path,
    *,
    model: str | Path | None = None,
    query_prefix: str = "",
    max_seq_length: int | None = None,
    device: str | None = None,
    batch_size: int = 64,
    mmap: bool = True,
    corpus_format: str | None = None,
    nprobe: int | None = None,
    hnsw_ef_search: int | None = None,
) -> ImportedFaissRetriever:
    """Serve the FAISS index at ``index_path`` over ``corpus``, encoding only queries.

    Args:
        index_path: a FAISS index file (e.g. Search-R1's ``e5_Flat.index``); row ``i`` must
            be the embedding of corpus document ``i``.
        corpus: the corpus, or a path given to :func:`raggym_env.corpora.load_corpus` (e.g.
            ``wiki-18.jsonl``, read as ``flashrag-jsonl``).
        model: the query encoder (sentence-transformers hub name or path; ``None``: the
            bundled all-MiniLM-L6-v2). Must be the model the index was built with.
        query_prefix: put before each query, e.g. ``"query: "`` for E5.
        max_seq_length: truncate queries to this many tokens.
        device: torch device for query encoding.
        batch_size: query encoding batch size.
        mmap: memory-map the index file when FAISS supports it for its type (flat
            indexes), instead of reading it into memory.
        corpus_format: the format for :func:`~raggym_env.corpora.load_corpus` when
            ``corpus`` is a path (detected when ``None``).
        nprobe: IVF lists visited per query (an IVF index's stored value when ``None``).
            An imported IVF-PQ index ranks by its compressed codes alone: the exact
            re-ranking of raggym's own IVF-PQ (``DenseConfig.refine_factor``) needs the
            float16 embeddings, which an index file does not hold.
        hnsw_ef_search: HNSW search breadth (the stored value when ``None``).

    Raises:
        FileNotFoundError: ``index_path`` does not exist.
        IndexMismatchError: the index's vector count differs from the corpus size, or its
            dimension from the query encoder's.
        ValueError: the index uses a metric other than inner product or L2.
    """
    faiss = require("faiss", feature=_FEATURE)
    path = Path(index_path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"no FAISS index file at {path}")
    if isinstance(corpus, (str, Path)):
        from raggym_env.corpora import load_corpus

        corpus_source = str(corpus)
        corpus = load_corpus(corpus, format=corpus_format)
    else:
        corpus_source = f"the corpus {corpus.name!r}"
    index = _read_index(path, mmap)
    if nprobe is not None:
        faiss.extract_index_ivf(index).nprobe = nprobe  # raises for a non-IVF index
    if hnsw_ef_search is not None:
        index.hnsw.efSearch = hnsw_ef_search
    if index.ntotal != len(corpus):
        raise IndexMismatchError(
            f"the FAISS index {path} holds {index.ntotal} vectors but {corpus_source} has "
            f"{len(corpus)} documents; row i of the index must be document i of the corpus "
            "(same file, no documents dropped or added)"
        )
    name, location = _resolve_model(model)
    encoder, _ = _encoder(location, device, max_seq_length)
    dim = _embedding_dim(encoder)
    if dim != index.d:
        raise IndexMismatchError(
            f"the FAISS index {path} holds {index.d}-dimensional vectors but the query "
            f"encoder {name!r} gives {dim}-dimensional ones; pass the model the index was "
            "built with"
        )
    if index.metric_type == faiss.METRIC_INNER_PRODUCT:
        metric, served = "inner_product", index
    elif index.metric_type == faiss.METRIC_L2:
        metric, served = "l2", _NegatedL2(index)
    else:
        raise ValueError(
            f"the FAISS index {path} uses metric {index.metric_type}; only inner product "
            "and L2 are supported"
        )
    manifest = {
        "format": "raggym-imported-faiss",
        "format_version": 1,
        "backend": "dense",
        "faiss_version": faiss.__version__,
        "model": {
            "name": name,
            "fingerprint": model_fingerprint(location, encoder),
            "max_seq_length": max_seq_length,
        },
        "embedding_dim": dim,
        "params": {"index_type": _index_type(index), "refine_factor": 1},
        "corpus": {
            "name": corpus.name,
            "content_hash": corpus.content_hash,
            "num_documents": len(corpus),
        },
        "imported": {
            "index_path": str(path.resolve()),
            "faiss_class": type(index).__name__,
            "metric": metric,
            "query_prefix": query_prefix,
            "memory_map": mmap,
        },
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    logger.info(
        "serving FAISS index %s (%s, %d x %d, %s) over %s",
        path,
        type(index).__name__,
        index.ntotal,
        index.d,
        metric,
        corpus_source,
    )
    return ImportedFaissRetriever(
        corpus,
        served,
        _flat_vectors(index),
        manifest,
        location=location,
        device=device,
        batch_size=batch_size,
        query_prefix=query_prefix,
    )
