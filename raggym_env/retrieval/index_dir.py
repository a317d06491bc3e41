"""On-disk index directories shared by every backend: manifest, atomic swap, build lock.

An index directory holds a ``raggym_index.json`` manifest next to the backend's files. A
new index is written to a temporary sibling and renamed into place, so a crash never
leaves a half index, and a file lock lets concurrent processes build one index once.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from raggym_env.corpora import BaseCorpus, Corpus, DiskCorpus, is_corpus_store
from raggym_env.corpora.store import swap_into_place
from raggym_env.retrieval.base import IndexMismatchError

__all__ = [
    "CORPUS_FILE",
    "CORPUS_STORE",
    "MANIFEST_NAME",
    "directory_lock",
    "is_replaceable",
    "link_or_copy",
    "load_index_corpus",
    "read_manifest_json",
    "save_index_corpus",
    "saved_corpus_path",
    "staged_index_dir",
    "swap_into_place",
]

MANIFEST_NAME = "raggym_index.json"
"""File name of the manifest that identifies a saved index."""


def is_replaceable(directory: Path) -> bool:
    """Whether ``directory`` may be overwritten: an existing index or an empty folder.

    A folder holding only the ``.encoding`` shards of an interrupted build counts as empty.
    """
    return directory.is_dir() and (
        (directory / MANIFEST_NAME).is_file()
        or all(entry.name == ".encoding" for entry in directory.iterdir())
    )


@contextlib.contextmanager
def staged_index_dir(directory: Path, manifest: Mapping[str, Any]) -> Iterator[Path]:
    """Yield a temporary sibling of ``directory`` for a backend to write its files into.

    When the block ends without error the manifest is written last (a directory with a
    manifest is a complete index) and the folder is renamed into place, replacing an old
    index; on error the temporary folder is removed and ``directory`` is left untouched.

    Raises:
        FileExistsError: ``directory`` is a non-empty folder that holds no raggym index.
    """
    if directory.exists() and not is_replaceable(directory):
        raise FileExistsError(
            f"{directory} exists and is not a raggym index (no {MANIFEST_NAME}); "
            "refusing to overwrite it"
        )
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    done = False
    try:
        yield tmp
        (tmp / MANIFEST_NAME).write_text(
            json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8"
        )
        swap_into_place(tmp, directory)
        done = True
    finally:
        if not done:
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def directory_lock(directory: Path) -> Iterator[None]:
    """Hold an exclusive inter-process lock for building/saving ``directory`` (POSIX only)."""
    try:
        import fcntl
    except ImportError:  # Windows: no cross-process lock; the rename keeps saves atomic.
        yield
        return
    directory.parent.mkdir(parents=True, exist_ok=True)
    lock_path = directory.with_name(f".{directory.name}.lock")
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_manifest_json(
    directory: str | Path, *, kind: str, expected: tuple[str, int, str], writer: str
) -> dict[str, Any]:
    """Read a manifest and check its ``(format, format_version, backend)``.

    Args:
        directory: the index directory.
        kind: what the index is, for messages (``"BM25"``, ``"dense"``).
        expected: the ``(format, format_version, backend)`` the caller can read.
        writer: what writes such an index, for messages (``"BM25Retriever.save"``).

    Raises:
        FileNotFoundError: the directory or its manifest does not exist.
        IndexMismatchError: the manifest is not a JSON object of the expected format.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"no {kind} index at {directory}: the directory does not exist")
    path = directory / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{directory} is not a raggym {kind} index: {MANIFEST_NAME} not found (expected a "
            f"directory written by {writer})"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IndexMismatchError(f"{path} is not valid JSON ({exc}); rebuild the index") from exc
    if not isinstance(manifest, dict):
        raise IndexMismatchError(f"{path} should hold a JSON object, got {type(manifest).__name__}")
    found = (manifest.get("format"), manifest.get("format_version"), manifest.get("backend"))
    if found != expected:
        raise IndexMismatchError(
            f"{path}: expected (format, format_version, backend) = {expected}, found {found}; "
            "rebuild the index with this version of raggym"
        )
    return manifest


CORPUS_FILE = "corpus.jsonl"
"""An index's copy of an in-memory corpus."""
CORPUS_STORE = "corpus"
"""An index's corpus store (the files of a :class:`DiskCorpus`, hard-linked in)."""


def link_or_copy(source: str, target: str) -> None:
    """Hard-link ``source`` to ``target`` (no bytes copied), or copy across filesystems."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def save_index_corpus(corpus: BaseCorpus, directory: Path) -> None:
    """Keep ``corpus`` beside an index: a store's files linked in, else ``corpus.jsonl``.

    Store files are never modified after they are written, so links are safe and cost no
    disk: a 21M-passage store is not copied.
    """
    if isinstance(corpus, DiskCorpus):
        shutil.copytree(corpus.directory, directory / CORPUS_STORE, copy_function=link_or_copy)
    else:
        corpus.save_jsonl(directory / CORPUS_FILE)


def saved_corpus_path(directory: Path) -> Path | None:
    """The corpus an index directory keeps (store or JSONL), if any."""
    for name in (CORPUS_STORE, CORPUS_FILE):
        if (directory / name).exists():
            return directory / name
    return None


def load_index_corpus(directory: Path, name: str) -> BaseCorpus:
    """The corpus kept by :func:`save_index_corpus` (a store opens in about a millisecond)."""
    if is_corpus_store(directory / CORPUS_STORE):
        return DiskCorpus.open(directory / CORPUS_STORE, name=name)
    return Corpus.load_jsonl(directory / CORPUS_FILE, name=name)
