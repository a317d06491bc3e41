"""Dense retrieval served by Qdrant: the dense retriever's embeddings in a Qdrant collection.

:class:`QdrantRetriever` embeds the corpus with exactly the code dense retrieval uses
(:mod:`raggym_env.retrieval.dense`: the same model resolution, shared encoders,
``passage_format``, encoder specs — prefixes, pooling, a separate query model — and
float16 embeddings), upserts them into a Qdrant
collection in batches (point id = corpus position, payload = document id) and answers
queries by cosine similarity (inner product for a spec with ``normalize=False``, such as
MedCPT's), returning :class:`~raggym_env.types.ScoredDocument` lists
ordered like :class:`~raggym_env.retrieval.dense.DenseRetriever`'s.

Where the collection lives:

- ``location=":memory:"`` (the default) or a local folder: qdrant-client's local mode,
  in this process, searched exhaustively (exact, like a FAISS flat index);
- ``url="http://host:6333"``: a Qdrant server or cluster. The API key is read from the
  environment variable named by ``api_key_env`` (never passed as a value), and the server
  searches its HNSW graph unless ``exact=True``.

A collection records the corpus content hash, the model fingerprints and the encoder spec
in a metadata point (written last, so an interrupted upload is never taken as complete).
Opening an existing collection reuses it without encoding anything when all match, and
refuses it (:class:`~raggym_env.retrieval.base.IndexMismatchError`) when it was built for
another corpus, model, encoder spec or passage format; ``recreate=True`` rebuilds it.

What Qdrant gives over the FAISS backend: a network service that many trainers and
machines share, sharding and replication of one collection across machines, payload
filtering, and incremental upserts without rebuilding an index. What it does not give:
raggym's exact-search guarantees on a server (its HNSW is approximate unless
``exact=True``), an offline single-directory index saved beside its corpus, or the memory
planner that picks and checks a FAISS index type before encoding (Qdrant sizes and
places its own storage).

qdrant-client is imported lazily (``pip install 'raggym[qdrant]'``).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from raggym_env.availability import require
from raggym_env.corpora import BaseCorpus
from raggym_env.retrieval.base import IndexMismatchError, check_search_args
from raggym_env.retrieval.dense import (
    _embedding_dim,
    _encode_corpus,
    _encode_queries,
    _encoder,
    _query_model_entry,
    _resolve_model,
    model_fingerprint,
    passage_text,
)
from raggym_env.retrieval.encoders import EncoderSpec, resolve_encoder_spec
from raggym_env.types import ScoredDocument

if TYPE_CHECKING:
    from qdrant_client import QdrantClient
    from sentence_transformers import SentenceTransformer

__all__ = ["QdrantRetriever"]

logger = logging.getLogger(__name__)

_FEATURE = "the Qdrant retriever"
_FORMAT = "raggym-qdrant-collection"
FORMAT_VERSION = 1
META_POINT_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "raggym/qdrant/metadata"))
"""The id of the point holding a collection's identity (never returned by a search)."""


def _client(location: str | Path, url: str | None, api_key_env: str | None) -> QdrantClient:
    """A qdrant-client for a server ``url``, else local mode at ``location``."""
    qdrant_client = require("qdrant_client", feature=_FEATURE)
    if url is not None:
        api_key = None
        if api_key_env is not None:
            api_key = os.environ.get(api_key_env)
        return qdrant_client.QdrantClient(url=url, api_key=api_key)
    if str(location) == ":memory:":
        return qdrant_client.QdrantClient(location=":memory:")
    return qdrant_client.QdrantClient(path=str(location))


class QdrantRetriever:
    """Dense search over ``corpus`` in a Qdrant collection (see the module docstring).

    Args:
        corpus: the documents; results are taken from it by point id (corpus position).
        model: as for dense retrieval; ``None`` is the bundled all-MiniLM-L6-v2.
        location: ``":memory:"`` or a folder for qdrant-client's local mode.
        url: a Qdrant server or cluster; replaces ``location``.
        api_key_env: the environment variable holding the server's API key (if set).
        collection: the collection name; default ``raggym-<corpus hash>-<model>``.
        client: an existing ``QdrantClient`` to use instead of ``location``/``url``.
        recreate: drop an existing collection and upload again.
        exact: ask a server for exhaustive instead of HNSW search.
        hnsw_ef: a server's HNSW search breadth (its own default when None).
        batch_size: encoding batch size.
        upsert_batch_size: points per upsert request.
        max_seq_length: truncate inputs to this many tokens (model default when None).
        device: torch device for encoding.
        passage_format: how documents become text (see :data:`.dense.PASSAGE_FORMATS`).
        show_progress: show a progress bar while encoding.
        encoder: how texts are encoded, as for dense retrieval: an
            :class:`~raggym_env.retrieval.encoders.EncoderSpec`, a dict of its fields or a
            preset name (``"e5"``, ``"bge"``, ``"medcpt"``); default plain.

    Raises:
        ValueError: for an empty corpus or bad arguments.
        IndexMismatchError: the collection was built for another corpus, model, encoder
            spec or format, or is not a complete raggym collection.
    """

    def __init__(
        self,
        corpus: BaseCorpus,
        *,
        model: str | Path | None = None,
        location: str | Path = ":memory:",
        url: str | None = None,
        api_key_env: str | None = "QDRANT_API_KEY",
        collection: str | None = None,
        client: QdrantClient | None = None,
        recreate: bool = False,
        exact: bool = False,
        hnsw_ef: int | None = None,
        batch_size: int = 64,
        upsert_batch_size: int = 256,
        max_seq_length: int | None = None,
        device: str | None = None,
        passage_format: str = "title: text",
        show_progress: bool = False,
        encoder: EncoderSpec | Mapping[str, Any] | str | None = None,
    ) -> None:
        if len(corpus) == 0:
            raise ValueError(f"cannot index the empty corpus {corpus.name!r} in Qdrant")
        for name, value in (("batch_size", batch_size), ("upsert_batch_size", upsert_batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        passage_text("", "", passage_format)  # checks the name before any work
        self._models = require("qdrant_client.models", feature=_FEATURE)
        self._corpus = corpus
        self._batch_size = batch_size
        self._passage_format = passage_format
        spec = resolve_encoder_spec(encoder)
        self._model_name, self._location = _resolve_model(model)
        self._encoder, self._encode_lock = _encoder(
            self._location, device, max_seq_length, spec.pooling
        )
        self._dim = _embedding_dim(self._encoder)
        self._fingerprint = model_fingerprint(self._location, self._encoder)
        query_entry, query_location = _query_model_entry(spec, device, max_seq_length, self._dim)
        self._query_encoder, self._query_lock = self._encoder, self._encode_lock
        if query_entry is not None and query_location is not None:
            spec = spec.with_query_model(query_entry["name"])
            self._query_encoder, self._query_lock = _encoder(
                query_location, device, max_seq_length, spec.pooling
            )
        self._spec = spec
        self._identity = {
            "format": _FORMAT,
            "format_version": FORMAT_VERSION,
            "corpus_hash": corpus.content_hash,
            "num_documents": len(corpus),
            "model_fingerprint": self._fingerprint,
            "model_name": self._model_name,
            "max_seq_length": max_seq_length,
            "embedding_dim": self._dim,
            "passage_format": passage_format,
            "encoder": spec.to_dict(),
            "query_model_fingerprint": None if query_entry is None else query_entry["fingerprint"],
        }
        self._collection = collection or (
            f"raggym-{corpus.content_hash[:16]}-{self._fingerprint[:12]}"
        )
        self._search_params = self._models.SearchParams(exact=exact, hnsw_ef=hnsw_ef)
        self._owns_client = client is None
        self._client = client if client is not None else _client(location, url, api_key_env)
        self._uploaded = self._open(recreate, upsert_batch_size, show_progress)

    # -- the collection ---------------------------------------------------------------

    def _open(self, recreate: bool, upsert_batch_size: int, show_progress: bool) -> bool:
        """Reuse a matching collection or (re)create and fill it; True when uploaded now."""
        client, name = self._client, self._collection
        if client.collection_exists(name):
            if not recreate:
                self._check_identity()
                logger.info("reusing Qdrant collection %r", name)
                return False
            client.delete_collection(name)
        client.create_collection(
            name,
            vectors_config=self._models.VectorParams(size=self._dim, distance=self._distance()),
        )
        self._upload(upsert_batch_size, show_progress)
        return True

    def _distance(self) -> Any:
        """Cosine for normalised embeddings, else the raw inner product (dense's scores)."""
        distance = self._models.Distance
        return distance.COSINE if self._spec.normalize else distance.DOT

    def _check_identity(self) -> None:
        """Raise :class:`IndexMismatchError` unless the collection was built for this setup."""
        found = self._client.retrieve(self._collection, ids=[META_POINT_ID], with_payload=True)
        where = f"Qdrant collection {self._collection!r}"
        if not found or not found[0].payload or found[0].payload.get("format") != _FORMAT:
            raise IndexMismatchError(
                f"{where} is not a complete raggym collection (no metadata point: another "
                "program's collection, or an interrupted upload); pass recreate=True to rebuild"
            )
        recorded = found[0].payload
        before_specs = {"encoder": EncoderSpec().to_dict(), "query_model_fingerprint": None}
        for key, expected in self._identity.items():
            if key != "model_name" and recorded.get(key, before_specs.get(key)) != expected:
                raise IndexMismatchError(
                    f"{where} was built with {key}={recorded.get(key)!r}, not {expected!r} "
                    f"(corpus {self._corpus.name!r}, model {self._model_name!r}); pass "
                    "recreate=True or another collection name"
                )

    def _upload(self, upsert_batch_size: int, show_progress: bool) -> None:
        """Encode the corpus (dense retrieval's float16 embeddings) and upsert it in batches."""
        models, corpus = self._models, self._corpus
        logger.info("encoding %d documents into Qdrant %r", len(corpus), self._collection)
        workdir = Path(tempfile.mkdtemp(prefix="raggym-qdrant-"))
        try:
            embeddings = np.lib.format.open_memmap(
                workdir / "embeddings.npy",
                mode="w+",
                dtype=np.float16,
                shape=(len(corpus), self._dim),
            )
            _encode_corpus(
                self._encoder, self._encode_lock, corpus, embeddings, self._batch_size,
                show_progress, self._passage_format, self._spec,
            )  # fmt: skip
            for start in range(0, len(corpus), upsert_batch_size):
                stop = min(start + upsert_batch_size, len(corpus))
                self._client.upsert(
                    self._collection,
                    points=models.Batch(
                        ids=list(range(start, stop)),
                        vectors=np.asarray(embeddings[start:stop], dtype=np.float32).tolist(),
                        payloads=[{"doc_id": corpus[i].id} for i in range(start, stop)],
                    ),
                    wait=True,
                )
            del embeddings
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        marker = [1.0] + [0.0] * (self._dim - 1)
        self._client.upsert(
            self._collection,
            points=[models.PointStruct(id=META_POINT_ID, vector=marker, payload=self._identity)],
            wait=True,
        )

    # -- properties -------------------------------------------------------------------

    @property
    def corpus(self) -> BaseCorpus:
        """The indexed corpus; result documents come from it."""
        return self._corpus

    @property
    def collection(self) -> str:
        """The Qdrant collection name."""
        return self._collection

    @property
    def client(self) -> QdrantClient:
        """The qdrant-client in use."""
        return self._client

    @property
    def uploaded(self) -> bool:
        """Whether this retriever encoded and uploaded the corpus (False: reused)."""
        return self._uploaded

    @property
    def model_fingerprint(self) -> str:
        """Fingerprint of the embedding model (see :func:`.dense.model_fingerprint`)."""
        return self._fingerprint

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        return self._dim

    @property
    def encoder(self) -> SentenceTransformer:
        """The document SentenceTransformer, shared with dense retrievers of the same model."""
        return self._encoder

    @property
    def query_encoder(self) -> SentenceTransformer:
        """The SentenceTransformer that encodes queries (:attr:`encoder` when symmetric)."""
        return self._query_encoder

    @property
    def encoder_spec(self) -> EncoderSpec:
        """How queries and passages are encoded (recorded in the collection)."""
        return self._spec

    def __repr__(self) -> str:
        return (
            f"QdrantRetriever(corpus={self._corpus.name!r}, documents={len(self._corpus)}, "
            f"model={self._model_name!r}, collection={self._collection!r})"
        )

    def close(self) -> None:
        """Close the client this retriever opened (frees a local folder for another)."""
        if self._owns_client:
            self._client.close()

    # -- search -----------------------------------------------------------------------

    def encode_queries(self, queries: list[str]) -> np.ndarray:
        """Embed ``queries`` as dense retrieval does: float32, ``(n, dim)``.

        The spec's query model, prefix and normalisation are used.
        """
        spec = self._spec
        return _encode_queries(
            self._query_encoder, self._query_lock, [spec.query_text(q) for q in queries],
            spec.normalize, self._batch_size, self._dim,
        )  # fmt: skip

    def search(self, queries: list[str], k: int) -> list[list[ScoredDocument]]:
        """Return up to ``k`` documents per query, best first (``k`` clamped to the corpus).

        Raises:
            TypeError: if ``queries`` is not a list of str or ``k`` not an int.
            ValueError: if ``k < 1``.
        """
        queries = check_search_args(queries, k)
        if not queries:
            return []
        models, corpus = self._models, self._corpus
        limit = min(int(k), len(corpus))
        skip_meta = models.Filter(must_not=[models.HasIdCondition(has_id=[META_POINT_ID])])
        requests = [
            models.QueryRequest(
                query=vector,
                limit=limit,
                filter=skip_meta,
                params=self._search_params,
                with_payload=False,
            )
            for vector in self.encode_queries(queries).tolist()
        ]
        responses = self._client.query_batch_points(self._collection, requests=requests)
        results: list[list[ScoredDocument]] = []
        for response in responses:
            hits = sorted((-p.score, int(p.id)) for p in response.points)
            results.append([ScoredDocument(document=corpus[i], score=-neg) for neg, i in hits])
        return results
