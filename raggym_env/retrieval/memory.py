"""Memory planning for dense indexes: estimate FAISS index sizes and pick one that fits.

Pure arithmetic, no heavy imports, so it can run before any model is loaded. The numbers
count the FAISS index resident in RAM (vectors or codes, graph links, centroids and
codebooks). They do not count the embedding model (~100 MB for MiniLM), the corpus text,
or the float16 embeddings a :class:`~raggym_env.retrieval.dense.DenseRetriever` keeps on
disk (``2 * N * d`` bytes, memory-mapped, not resident).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

__all__ = [
    "INDEX_TYPES",
    "IndexPlan",
    "IndexTooLargeError",
    "IndexType",
    "auto_ivf_nlist",
    "auto_pq_m",
    "available_memory_bytes",
    "check_fits",
    "estimate_index_bytes",
    "plan_index",
]

IndexType = Literal["flat", "hnsw", "ivfpq"]
INDEX_TYPES: tuple[str, ...] = ("flat", "hnsw", "ivfpq")
"""The FAISS index types a dense retriever can build."""

MIN_POINTS_PER_CENTROID = 39
"""FAISS warns when k-means gets fewer training points than this per centroid."""
_COMFORT_FRACTION = 0.5
_FLAT_MAX_DOCS = 2_000_000
_SMALL_CORPUS = 50_000


class IndexTooLargeError(ValueError):
    """The requested index would not fit in the memory budget.

    A ``ValueError`` (not ``MemoryError``): it is raised by a pre-flight check on the
    arguments, before anything is allocated, and is fixed by changing them (another index
    type, a larger budget, a smaller corpus); a real allocation failure stays a
    ``MemoryError``.
    """


@dataclass(frozen=True)
class IndexPlan:
    """The recommended index for a corpus size and memory budget.

    Attributes:
        index_type: the recommended type (the smallest one when nothing fits).
        expected_bytes: estimated RAM of that index.
        fits: whether it fits the budget.
        reason: a human-readable justification.
        alternatives: estimated bytes of every index type (default parameters).
        num_docs: number of vectors planned for.
        dim: embedding dimension.
        memory_budget_bytes: the budget the plan was made against.
    """

    index_type: IndexType
    expected_bytes: int
    fits: bool
    reason: str
    alternatives: dict[str, int] = field(default_factory=dict)
    num_docs: int = 0
    dim: int = 0
    memory_budget_bytes: int = 0


def _check_positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return value


def auto_ivf_nlist(num_docs: int) -> int:
    """Default IVF list count: about ``4 * sqrt(N)``, capped so k-means has enough points."""
    _check_positive("num_docs", num_docs)
    nlist = max(1, round(4 * math.sqrt(num_docs)))
    return max(1, min(nlist, num_docs // MIN_POINTS_PER_CENTROID))


def auto_pq_m(dim: int) -> int:
    """Default number of PQ sub-quantizers: the largest divisor of ``dim`` <= ``dim // 4``.

    Four dimensions per 8-bit code: with :class:`DenseConfig`'s exact re-ranking this
    reaches recall@10 >= 0.95 on real and synthetic data where eight per code did not
    (``perf/ann_recall.py``). FAISS's GPU IVF-PQ takes at most 96 code bytes: for a
    768-dimensional model on a GPU pass ``pq_m=96``.
    """
    _check_positive("dim", dim)
    target = max(1, dim // 4)
    return next(m for m in range(target, 0, -1) if dim % m == 0)


def estimate_index_bytes(
    num_docs: int,
    dim: int,
    index_type: str,
    *,
    hnsw_m: int = 32,
    ivf_nlist: int | None = None,
    pq_m: int | None = None,
    pq_nbits: int = 8,
) -> int:
    """Estimate the RAM of a FAISS index of ``num_docs`` float32 vectors of ``dim``.

    ``flat``: ``4*N*d``. ``hnsw``: ``4*N*d + 8*M*N`` (level-0 links: ``2*M`` int32 per
    vector; upper levels are ~``1/M`` of that and ignored). ``ivfpq``: ``N*(pq_m + 8)``
    (codes plus int64 ids) + ``4*nlist*d`` (coarse centroids) + ``4*2**nbits*d``
    (PQ codebooks).

    Raises:
        ValueError: for non-positive sizes or an unknown index type.
    """
    n = _check_positive("num_docs", num_docs)
    d = _check_positive("dim", dim)
    if index_type == "flat":
        return 4 * n * d
    if index_type == "hnsw":
        m = _check_positive("hnsw_m", hnsw_m)
        return 4 * n * d + n * m * 2 * 4
    if index_type == "ivfpq":
        nlist = auto_ivf_nlist(n) if ivf_nlist is None else _check_positive("ivf_nlist", ivf_nlist)
        m = auto_pq_m(d) if pq_m is None else _check_positive("pq_m", pq_m)
        nbits = _check_positive("pq_nbits", pq_nbits)
        return n * (m + 8) + 4 * nlist * d + 4 * (2**nbits) * d
    raise ValueError(f"index_type must be one of {INDEX_TYPES}, got {index_type!r}")


def plan_index(
    num_docs: int, dim: int, memory_budget_bytes: int, *, prefer_exact: bool = True
) -> IndexPlan:
    """Recommend an index type for ``num_docs`` vectors of ``dim`` within a RAM budget.

    ``flat`` (exact) when it takes at most half the budget and the corpus has at most
    2M documents (with ``prefer_exact=False`` only up to 50k documents, where brute force
    is as fast as a graph); else ``hnsw`` when it fits; else ``flat`` when it still fits;
    else ``ivfpq`` (compressed, approximate); ``fits=False`` when not even that fits.

    Raises:
        ValueError: for non-positive arguments.
    """
    n = _check_positive("num_docs", num_docs)
    d = _check_positive("dim", dim)
    budget = _check_positive("memory_budget_bytes", memory_budget_bytes)
    sizes = {kind: estimate_index_bytes(n, d, kind) for kind in INDEX_TYPES}
    gib = 2**30

    def make(kind: IndexType, fits: bool, reason: str) -> IndexPlan:
        return IndexPlan(kind, sizes[kind], fits, reason, dict(sizes), n, d, budget)

    flat_limit = _FLAT_MAX_DOCS if prefer_exact else _SMALL_CORPUS
    if sizes["flat"] <= _COMFORT_FRACTION * budget and n <= flat_limit:
        return make("flat", True, "exact search fits comfortably (<= 50% of the budget)")
    if sizes["hnsw"] <= budget:
        return make("hnsw", True, f"{n} documents: a graph index is fast and fits the budget")
    if sizes["flat"] <= budget:
        return make("flat", True, "only uncompressed exact search fits (tightly) besides ivfpq")
    if sizes["ivfpq"] <= budget:
        return make(
            "ivfpq",
            True,
            f"uncompressed vectors need {sizes['flat'] / gib:.2f} GiB, over the "
            f"{budget / gib:.2f} GiB budget; product quantization fits",
        )
    return make(
        "ivfpq",
        False,
        f"even the compressed ivfpq index ({sizes['ivfpq'] / gib:.3f} GiB) exceeds the "
        f"{budget / gib:.3f} GiB budget; shard the corpus or raise the budget",
    )


def check_fits(plan: IndexPlan) -> IndexPlan:
    """Return ``plan`` if it fits its budget.

    Raises:
        IndexTooLargeError: naming the size, the budget and the reason when it does not.
    """
    if not plan.fits:
        raise IndexTooLargeError(
            f"a {plan.index_type} index of {plan.num_docs} x {plan.dim} vectors needs about "
            f"{plan.expected_bytes:,} bytes but the memory budget is "
            f"{plan.memory_budget_bytes:,} bytes: {plan.reason}"
        )
    return plan


def available_memory_bytes(meminfo: str | Path = "/proc/meminfo") -> int:
    """Physical memory available now: ``SC_AVPHYS_PAGES * SC_PAGE_SIZE`` or MemAvailable.

    Raises:
        OSError: if neither source is readable on this platform.
    """
    path = Path(meminfo)
    if path.is_file():
        for line in path.read_text(encoding="ascii", errors="replace").splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError) as exc:
        raise OSError(
            "cannot determine available memory; pass memory_budget_bytes explicitly"
        ) from exc
