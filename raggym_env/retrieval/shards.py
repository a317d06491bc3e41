"""Resumable corpus encoding: float16 embedding shards on disk, one per chunk of documents.

A large corpus takes hours to encode; a build that dies half-way should not start over.
:func:`encode_to_shards` encodes documents ``[i * shard_size, (i + 1) * shard_size)`` into
``DIR/shard-0000i.npy`` (float16), each written under a temporary name and renamed when
complete, next to a ``plan.json`` recording what the shards are embeddings *of* (corpus
hash, model fingerprint, dimension, shard size, passage format, sequence length). A rerun
with the same plan encodes only the shards that are missing; a rerun with another plan
never mixes the two: it is refused, or the old shards are removed and encoding restarts.
:func:`concatenate_shards` joins them into one memory-mapped array for FAISS, and
:func:`iter_shards` walks them one at a time.

:func:`gpu_batch_size` picks an encoding batch size from free GPU memory.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np

from raggym_env.corpora import BaseCorpus
from raggym_env.progress import progress as progress_bar
from raggym_env.retrieval.base import IndexMismatchError

__all__ = [
    "DEFAULT_SHARD_SIZE",
    "ENCODING_DIR",
    "PLAN_FILE",
    "CorpusRange",
    "EncodingPlan",
    "ShardPlanMismatchError",
    "complete_shards",
    "concatenate_shards",
    "encode_corpus_shards",
    "encode_to_shards",
    "encoding_batch_size",
    "gpu_batch_size",
    "index_encoding_dir",
    "iter_shards",
    "plan_extra",
    "remove_shards",
    "shard_path",
]

logger = logging.getLogger(__name__)

DEFAULT_SHARD_SIZE = 8192
"""Documents per shard unless told otherwise."""
PLAN_FILE = "plan.json"
"""The file in a shard directory recording what its shards hold."""
ENCODING_DIR = ".encoding"
"""Where :func:`~raggym_env.retrieval.dense.load_or_build_dense` keeps shards under an
``index_dir`` until the index is saved."""
EMBEDDINGS_FILE = "embeddings.npy"
_PLAN_FORMAT = "raggym-encoding-plan"
_PLAN_VERSION = 1
_TMP_MARK = ".tmp-"

EncodeRange = Callable[[int, int], np.ndarray]
"""``encode(start, stop)`` returns the ``(stop - start, dim)`` embeddings of those documents."""


class ShardPlanMismatchError(IndexMismatchError):
    """A shard directory holds embeddings of another corpus, model or layout."""


@dataclass(frozen=True)
class EncodingPlan:
    """What a shard directory holds; two builds share shards only with equal plans.

    Attributes:
        corpus_hash: the corpus content hash.
        num_documents: documents in the corpus.
        model_fingerprint: fingerprint of the embedding model.
        dim: embedding dimension.
        shard_size: documents per shard (the last one may hold fewer).
        passage_format: how a document became the embedded text.
        max_seq_length: the encoder's token limit (``None``: the model's default).
        encoder: the encoder spec as sorted JSON (prefixes, pooling, pair input, ...;
            ``""``: the plain default), since it changes the embeddings too.
    """

    corpus_hash: str
    num_documents: int
    model_fingerprint: str
    dim: int
    shard_size: int = DEFAULT_SHARD_SIZE
    passage_format: str = "title: text"
    max_seq_length: int | None = None
    encoder: str = ""

    def __post_init__(self) -> None:
        for name in ("num_documents", "dim", "shard_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")

    @property
    def num_shards(self) -> int:
        """How many shards cover the corpus."""
        return -(-self.num_documents // self.shard_size)

    def shard_range(self, shard: int) -> tuple[int, int]:
        """The ``(start, stop)`` document positions of shard number ``shard``."""
        start = shard * self.shard_size
        return start, min(start + self.shard_size, self.num_documents)

    def differences(self, other: EncodingPlan) -> list[str]:
        """The fields on which ``other`` differs, as ``name: mine != theirs``."""
        return [
            f"{f.name}: {getattr(self, f.name)!r} != {getattr(other, f.name)!r}"
            for f in fields(self)
            if getattr(self, f.name) != getattr(other, f.name)
        ]


def shard_path(directory: str | Path, shard: int) -> Path:
    """The file of shard number ``shard`` in ``directory``."""
    return Path(directory) / f"shard-{shard:05d}.npy"


def _read_plan(directory: Path) -> tuple[EncodingPlan | None, dict[str, Any]]:
    """The plan stored in ``directory`` (``None`` if absent or unreadable) and its extras."""
    path = directory / PLAN_FILE
    if not path.is_file():
        return None, {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != _PLAN_FORMAT or data.get("version") != _PLAN_VERSION:
            return None, {}
        plan = EncodingPlan(**data["plan"])
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None, {}
    return plan, dict(data.get("extra") or {})


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f"{path.name}{_TMP_MARK}{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def _is_ours(path: Path) -> bool:
    name = path.name
    return (
        name == PLAN_FILE
        or name.startswith(EMBEDDINGS_FILE)
        or (name.startswith("shard-") and ".npy" in name)
    )


def _clear(directory: Path) -> None:
    for path in directory.iterdir():
        if _is_ours(path):
            path.unlink()


def _valid_shard(directory: Path, plan: EncodingPlan, shard: int) -> bool:
    path = shard_path(directory, shard)
    if not path.is_file():
        return False
    start, stop = plan.shard_range(shard)
    try:
        array = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return False
    return bool(array.shape == (stop - start, plan.dim) and array.dtype == np.float16)


def complete_shards(directory: str | Path, plan: EncodingPlan) -> list[int]:
    """Numbers of the shards in ``directory`` that are complete for ``plan``."""
    directory = Path(directory)
    stored, _ = _read_plan(directory)
    if stored != plan:
        return []
    return [i for i in range(plan.num_shards) if _valid_shard(directory, plan, i)]


def _save_shard(path: Path, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` under a temporary name, synced, then renamed into place."""
    tmp = path.with_name(f"{path.name}{_TMP_MARK}{os.getpid()}")
    with tmp.open("wb") as handle:
        np.save(handle, array)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def encode_to_shards(
    directory: str | Path,
    plan: EncodingPlan,
    encode: EncodeRange,
    *,
    on_mismatch: Literal["restart", "error"] = "restart",
    extra: dict[str, Any] | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[int]:
    """Encode every shard of ``plan`` missing from ``directory``; return those encoded now.

    Args:
        directory: the shard directory (created if needed).
        plan: what to encode; compared with the directory's ``plan.json``.
        encode: ``encode(start, stop)`` gives the embeddings of documents ``start..stop``.
        on_mismatch: when the directory holds shards of another plan: ``"restart"``
            removes them (with a warning) and starts over, ``"error"`` raises.
        extra: settings stored with a new plan that do not decide compatibility (e.g. the
            batch size, reused on resume); read them back with :func:`plan_extra`.
        progress: called with the number of documents of each shard done (or skipped).

    Raises:
        ShardPlanMismatchError: the directory holds another plan and ``on_mismatch`` is
            ``"error"``.
        FileExistsError: the directory holds files that are not shards.
        ValueError: ``encode`` returned the wrong shape.
    """
    if on_mismatch not in ("restart", "error"):
        raise ValueError(f"on_mismatch must be 'restart' or 'error', got {on_mismatch!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    foreign = sorted(p.name for p in directory.iterdir() if not _is_ours(p))
    if foreign:
        raise FileExistsError(
            f"{directory} holds files that are not embedding shards ({', '.join(foreign[:5])}); "
            "refusing to encode there"
        )
    stored, stored_extra = _read_plan(directory)
    leftovers = any(directory.iterdir())
    if stored != plan and leftovers:
        why = "; ".join(plan.differences(stored)) if stored is not None else "no readable plan.json"
        if on_mismatch == "error":
            raise ShardPlanMismatchError(
                f"{directory} holds embedding shards of another build ({why}); remove it or "
                "rebuild with on_mismatch='restart'"
            )
        logger.warning("discarding the embedding shards in %s (%s)", directory, why)
        _clear(directory)
    if stored != plan or not (directory / PLAN_FILE).is_file():
        stored_extra = dict(extra or {})
        _write_json(
            directory / PLAN_FILE,
            {
                "format": _PLAN_FORMAT,
                "version": _PLAN_VERSION,
                "plan": asdict(plan),
                "extra": stored_extra,
            },
        )
    for path in directory.glob(f"*{_TMP_MARK}*"):  # half-written shards of a killed run
        path.unlink(missing_ok=True)
    encoded: list[int] = []
    for shard in range(plan.num_shards):
        start, stop = plan.shard_range(shard)
        if not _valid_shard(directory, plan, shard):
            vectors = np.asarray(encode(start, stop), dtype=np.float16)
            if vectors.shape != (stop - start, plan.dim):
                raise ValueError(
                    f"encoding documents {start}..{stop} gave shape {vectors.shape}, "
                    f"expected {(stop - start, plan.dim)}"
                )
            _save_shard(shard_path(directory, shard), vectors)
            encoded.append(shard)
        if progress is not None:
            progress(stop - start)
    return encoded


def plan_extra(directory: str | Path) -> dict[str, Any]:
    """The settings stored with the plan of ``directory`` (empty if none)."""
    return _read_plan(Path(directory))[1]


def iter_shards(directory: str | Path, plan: EncodingPlan) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(first document position, float16 memory-mapped shard)`` in corpus order.

    Raises:
        ShardPlanMismatchError: the directory's plan is not ``plan``.
        FileNotFoundError: a shard is missing or incomplete.
    """
    directory = Path(directory)
    stored, _ = _read_plan(directory)
    if stored != plan:
        raise ShardPlanMismatchError(f"{directory} does not hold the shards of this plan")
    for shard in range(plan.num_shards):
        if not _valid_shard(directory, plan, shard):
            raise FileNotFoundError(f"{shard_path(directory, shard)} is missing or incomplete")
        yield plan.shard_range(shard)[0], np.load(shard_path(directory, shard), mmap_mode="r")


def concatenate_shards(
    directory: str | Path, plan: EncodingPlan, out: str | Path | None = None
) -> np.memmap[Any, Any]:
    """Join the shards into one float16 ``.npy`` (default ``DIR/embeddings.npy``), memory-mapped.

    Written under a temporary name and renamed, so a present file is always whole.

    Raises:
        ShardPlanMismatchError, FileNotFoundError: as :func:`iter_shards`.
    """
    directory = Path(directory)
    target = Path(out) if out is not None else directory / EMBEDDINGS_FILE
    tmp = target.with_name(f"{target.name}{_TMP_MARK}{os.getpid()}")
    joined = np.lib.format.open_memmap(
        tmp, mode="w+", dtype=np.float16, shape=(plan.num_documents, plan.dim)
    )
    try:
        for start, array in iter_shards(directory, plan):
            joined[start : start + len(array)] = array
        joined.flush()
        del joined
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    joined_view: np.memmap[Any, Any] = np.load(target, mmap_mode="r")
    return joined_view


def remove_shards(directory: str | Path) -> None:
    """Remove a shard directory (its plan, shards and joined embeddings)."""
    shutil.rmtree(directory, ignore_errors=True)


# -- the dense build's use ---------------------------------------------------------------


def index_encoding_dir(index_dir: str | Path) -> Path:
    """Where a build saved to ``index_dir`` keeps its shards: ``index_dir/.encoding``.

    Raises:
        FileExistsError: ``index_dir`` is a non-empty folder that is not a raggym index
            (checked before any encoding, as saving there would be refused).
    """
    from raggym_env.retrieval.index_dir import is_replaceable

    index_dir = Path(index_dir)
    if index_dir.exists() and not is_replaceable(index_dir):
        raise FileExistsError(
            f"{index_dir} exists and is not a raggym index; refusing to build into it"
        )
    return index_dir / ENCODING_DIR


class CorpusRange:
    """Documents ``[start, stop)`` of a corpus, seen as a corpus of their own.

    Enough of a corpus for an encoder (``len``, ``name``, ``titles_and_texts``), so the
    same function that encodes a whole corpus encodes one shard.
    """

    def __init__(self, corpus: BaseCorpus, start: int, stop: int) -> None:
        self.corpus = corpus
        self.start = start
        self.stop = min(stop, len(corpus))
        self.name = corpus.name

    def __len__(self) -> int:
        return self.stop - self.start

    def titles_and_texts(self, start: int = 0, stop: int | None = None) -> Any:
        """``(title, text)`` pairs of positions ``start..stop`` of this range."""
        end = len(self) if stop is None else min(stop, len(self))
        return self.corpus.titles_and_texts(self.start + start, self.start + end)


EncodeInto = Callable[[CorpusRange, np.ndarray, int], None]
"""``encode_into(documents, out, batch_size)`` writes the embeddings of ``documents`` to ``out``."""


def encode_corpus_shards(
    directory: str | Path,
    corpus: BaseCorpus,
    plan: EncodingPlan,
    encode_into: EncodeInto,
    *,
    batch_size: int,
    encoder: Any = None,
    show_progress: bool | None = None,
) -> np.memmap[Any, Any]:
    """Encode ``corpus`` into the shards of ``plan`` (resuming) and return them joined.

    ``encode_into`` is the dense build's own corpus encoder, so a sharded build embeds each
    document exactly as an unsharded one does. The batch size is
    :func:`encoding_batch_size` of ``batch_size`` (for ``encoder``'s device) for a new plan
    and the recorded one on resume, so a resumed build batches as the first run did.
    ``show_progress`` shows a bar (``None``: as :mod:`raggym_env.progress` decides).
    """
    directory = Path(directory)
    stored, extra = _read_plan(directory)
    if stored == plan and isinstance(extra.get("batch_size"), int):
        batch_size = int(extra["batch_size"])
    elif encoder is not None:
        batch_size = encoding_batch_size(batch_size, encoder, plan.dim)

    def encode(start: int, stop: int) -> np.ndarray:
        out = np.empty((stop - start, plan.dim), dtype=np.float16)
        encode_into(CorpusRange(corpus, start, stop), out, batch_size)
        return out

    total = plan.num_documents
    with progress_bar(total=total, desc="encoding", unit="doc", enabled=show_progress) as bar:
        done = encode_to_shards(
            directory, plan, encode, extra={"batch_size": batch_size}, progress=bar.update
        )
    logger.info(
        "encoded %d of %d shards in %s (the rest were complete)",
        len(done),
        plan.num_shards,
        directory,
    )
    return concatenate_shards(directory, plan)


# -- batch size --------------------------------------------------------------------------

_ACTIVATION_FACTOR = 32
"""Bytes of activations per token and embedding unit kept alive at once (float32 hidden
states, feed-forward expansion, a few copies), a deliberately generous guess."""
_MEMORY_FRACTION = 0.5
_MAX_BATCH = 2048


def gpu_batch_size(
    free_bytes: int, dim: int, seq_length: int, *, fraction: float = _MEMORY_FRACTION
) -> int:
    """A batch size that fits ``fraction`` of ``free_bytes`` of GPU memory.

    One sequence is taken to need ``seq_length * (32 * dim + 4 * seq_length) * 4`` bytes:
    hidden states and feed-forward activations grow with ``seq_length * dim``, attention
    scores with ``seq_length**2``. The result is rounded down to a power of two, at least 1
    and at most 2048.
    """
    if free_bytes < 0 or dim < 1 or seq_length < 1 or not 0 < fraction <= 1:
        raise ValueError(
            f"need free_bytes >= 0, dim >= 1, seq_length >= 1 and 0 < fraction <= 1, got "
            f"{free_bytes}, {dim}, {seq_length}, {fraction}"
        )
    per_sequence = 4 * seq_length * (_ACTIVATION_FACTOR * dim + 4 * seq_length)
    fits = int(free_bytes * fraction) // per_sequence
    if fits < 1:
        return 1
    return int(min(_MAX_BATCH, 1 << (fits.bit_length() - 1)))


def encoding_batch_size(given: int, encoder: Any, dim: int) -> int:
    """``given`` on CPU; on a CUDA device, a size chosen by :func:`gpu_batch_size`."""
    device = str(getattr(encoder, "device", "cpu"))
    if not device.startswith("cuda"):
        return given
    import torch

    free, _ = torch.cuda.mem_get_info(torch.device(device))
    seq_length = int(getattr(encoder, "max_seq_length", None) or 512)
    chosen = gpu_batch_size(int(free), dim, seq_length)
    logger.info("encoding batch size %d from %d free bytes on %s", chosen, free, device)
    return chosen
