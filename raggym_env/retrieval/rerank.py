"""Cross-encoder reranking of another retriever's candidates.

:class:`RerankedRetriever` takes the top ``top_n`` documents of a base retriever, scores
every ``(query, "title: text")`` pair of the whole batch with one sentence-transformers
``CrossEncoder.predict`` call, and returns the best ``k`` by cross-encoder score.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from raggym_env.availability import require
from raggym_env.caches import LRUCache
from raggym_env.retrieval.base import Retriever, check_search_args
from raggym_env.types import Document, ScoredDocument

__all__ = ["MODEL_CACHE_SIZE", "PairScorer", "RerankedRetriever", "load_cross_encoder"]


@runtime_checkable
class PairScorer(Protocol):
    """Anything scoring ``(query, passage)`` pairs like ``CrossEncoder.predict``."""

    def predict(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        """Return one relevance score per pair (higher is more relevant)."""
        ...


MODEL_CACHE_SIZE = 4
"""How many cross-encoders :func:`load_cross_encoder` keeps (least recently used goes first);
:func:`raggym_env.clear_caches` empties the cache."""

_MODELS: LRUCache[tuple[str, str | None, int | None], PairScorer] = LRUCache(
    "rerank.cross_encoders", MODEL_CACHE_SIZE
)
_MODELS_LOCK = threading.Lock()  # held while loading, so one model is loaded once


def load_cross_encoder(
    model: str | Path, *, device: str | None = None, max_length: int | None = 512
) -> PairScorer:
    """Load a sentence-transformers ``CrossEncoder`` once per process and settings.

    The :data:`MODEL_CACHE_SIZE` most recently used models stay loaded.

    Args:
        model: a local directory or a Hugging Face hub name (resolved by
            sentence-transformers; set ``HF_HUB_OFFLINE=1`` to forbid downloads).
        device: a torch device such as ``"cpu"`` or ``"cuda"`` (default: the best available).
        max_length: truncate pairs to this many tokens.

    Raises:
        MissingDependencyError: if sentence-transformers is not installed (an
            ``ImportError`` naming the extra).
    """
    key = (str(model), device, max_length)
    with _MODELS_LOCK:
        scorer = _MODELS.get(key)
        if scorer is None:
            sentence_transformers = require("sentence_transformers", feature="reranking")
            scorer = sentence_transformers.CrossEncoder(
                str(model), device=device, max_length=max_length
            )
            _MODELS.put(key, scorer)
        return scorer


def _passage(document: Document) -> str:
    return f"{document.title}: {document.text}" if document.title else document.text


def _check_positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


class RerankedRetriever:
    """Rerank a base retriever's top ``top_n`` with a cross-encoder.

    The base is asked once per batch for ``max(top_n, k)`` candidates per query; all
    pairs of the batch go to one ``predict`` call (``batch_size`` pairs per forward pass);
    each query's candidates are sorted by cross-encoder score (ties keep the base order)
    and cut to ``k``. Returned scores are the cross-encoder's (after its activation, a
    sigmoid for the usual single-logit rerankers). Models are shared between instances
    loading the same path with the same settings.

    Args:
        base: the first-stage retriever.
        model: path or hub name of a single-score cross-encoder, or a loaded object with
            a ``predict(pairs, batch_size=..., show_progress_bar=...)`` method.
        top_n: candidates taken from the base per query (>= 1).
        batch_size: pairs per cross-encoder forward pass (>= 1).
        device: torch device for a model loaded from a path.
        max_length: token limit of a pair for a model loaded from a path.

    Raises:
        ImportError: if ``model`` is a path and sentence-transformers is not installed.
    """

    def __init__(
        self,
        base: Retriever,
        model: str | Path | PairScorer,
        *,
        top_n: int = 50,
        batch_size: int = 32,
        device: str | None = None,
        max_length: int | None = 512,
    ) -> None:
        if not isinstance(base, Retriever):
            raise TypeError(f"base has no search(queries, k) method: {type(base).__name__}")
        self._base = base
        self._top_n = _check_positive("top_n", top_n)
        self._batch_size = _check_positive("batch_size", batch_size)
        if max_length is not None:
            _check_positive("max_length", max_length)
        if isinstance(model, (str, Path)):
            self._model_name = str(model)
            self._scorer = load_cross_encoder(model, device=device, max_length=max_length)
        elif isinstance(model, PairScorer):
            self._model_name = type(model).__name__
            self._scorer = model
        else:
            raise TypeError(
                f"model must be a path, a hub name or an object with predict(), "
                f"got {type(model).__name__}"
            )

    @property
    def base(self) -> Retriever:
        """The first-stage retriever."""
        return self._base

    @property
    def scorer(self) -> PairScorer:
        """The cross-encoder (or other pair scorer) in use."""
        return self._scorer

    @property
    def top_n(self) -> int:
        """Candidates reranked per query (at least ``k``)."""
        return self._top_n

    def __repr__(self) -> str:
        return (
            f"RerankedRetriever({self._base!r}, model={self._model_name!r}, "
            f"top_n={self._top_n}, batch_size={self._batch_size})"
        )

    def search(self, queries: list[str], k: int) -> list[list[ScoredDocument]]:
        """Return the best ``k`` of each query's base candidates by cross-encoder score.

        Raises:
            TypeError: if ``queries`` is not a list of str or ``k`` not an int.
            ValueError: if ``k < 1``, or if the model returns other than one score per pair.
        """
        queries = check_search_args(queries, k)
        if not queries:
            return []
        candidates = self._base.search(queries, max(self._top_n, int(k)))
        if len(candidates) != len(queries):
            raise ValueError(
                f"{type(self._base).__name__}.search returned {len(candidates)} result lists "
                f"for {len(queries)} queries"
            )
        pairs = [
            (query, _passage(hit.document))
            for query, hits in zip(queries, candidates, strict=True)
            for hit in hits
        ]
        if not pairs:
            return [[] for _ in queries]
        scores = self._predict(pairs)
        results: list[list[ScoredDocument]] = []
        start = 0
        for hits in candidates:
            row = scores[start : start + len(hits)]
            start += len(hits)
            order = sorted(range(len(hits)), key=lambda i: (-row[i], i))[: int(k)]
            results.append([ScoredDocument(hits[i].document, row[i]) for i in order])
        return results

    def _predict(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        raw = self._scorer.predict(
            list(pairs), batch_size=self._batch_size, show_progress_bar=False
        )
        scores = np.asarray(raw, dtype=np.float64)
        if scores.ndim == 2 and scores.shape[1] == 1:
            scores = scores[:, 0]
        if scores.shape != (len(pairs),):
            raise ValueError(
                f"the reranker returned scores of shape {scores.shape} for {len(pairs)} pairs; "
                "expected one score per pair (a cross-encoder with num_labels=1)"
            )
        return [float(score) for score in scores]
