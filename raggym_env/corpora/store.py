"""A corpus kept on disk: Wikipedia-scale passage collections without holding them in memory.

:func:`write_store` streams documents into a directory; :meth:`DiskCorpus.open` maps it
back in well under a second, whatever its size, and reads documents on demand. A store is

- ``text.bin``: every document's id, title and text, UTF-8, back to back, in corpus order;
- ``offsets.u64``: ``3 * count + 1`` little-endian uint64 byte offsets into ``text.bin``
  (where each document's id, title and text start, then the end of the last text);
- ``ids.table`` / ``ids.rows`` and ``titles.table`` / ``titles.rows``: on-disk hash tables
  from the 64-bit BLAKE2b hash of an id (a title) to the rows holding it. A table is an
  array of 16-byte slots ``(key uint64, start uint32, count uint32)`` probed linearly from
  the slot named by the key's top bits, ending at an empty slot (``count == 0``); a slot
  names ``rows[start:start + count]``, the rows (uint32, ascending) whose id (title) has
  that hash. Hashes only narrow the search: the stored id or title is always compared;
- ``manifest.json``: format version, name, count, sizes and the content hash, written last.

Every file but the manifest is read with ``os.pread`` (nothing is loaded or memory-mapped),
so opening costs a few system calls, memory does not grow with the corpus, and a :class:`DiskCorpus`
pickles as its path (for worker processes). The content hash equals that of a
:class:`~raggym_env.corpora.memory.Corpus` with the same documents, so indexes built over
one load with the other.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import struct
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO, overload

import numpy as np

from raggym_env.corpora.base import STREAM_CHUNK, BaseCorpus, ContentHasher
from raggym_env.types import Document

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "CorpusStoreError",
    "DiskCorpus",
    "is_corpus_store",
    "swap_into_place",
    "write_store",
]

FORMAT = "raggym-corpus-store"
"""The ``format`` field of a store manifest."""
FORMAT_VERSION = 1
"""The store layout version this module reads and writes."""

MANIFEST = "manifest.json"
_TEXT = "text.bin"
_OFFSETS = "offsets.u64"
_TABLES = ("ids", "titles")

_SLOT = np.dtype([("key", "<u8"), ("start", "<u4"), ("count", "<u4")])
_PAIR = np.dtype([("key", "<u8"), ("row", "<u4")])
_PART_BITS = 4  # pairs are spilled to 16 partition files by the top bits of their key
_MIN_BITS = _PART_BITS
_MAX_LOAD = 0.6  # at most this fraction of a table's home slots is used
_MAX_DOCUMENTS = 2**32 - 1
_WRITE_CHUNK = 16_384
_PROBE = 8  # slots read per probe step


class CorpusStoreError(ValueError):
    """A corpus store is missing, truncated, corrupt or of another format or version."""


def _key(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def _write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# -- writing --------------------------------------------------------------------------------


class _Writer:
    """Streams documents into a (temporary) store directory, a chunk at a time."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.text = (directory / _TEXT).open("wb")
        self.offsets = (directory / _OFFSETS).open("wb")
        self.parts: dict[str, list[BinaryIO]] = {
            table: [(directory / f".{table}.part{p}").open("wb") for p in range(1 << _PART_BITS)]
            for table in _TABLES
        }
        self.hasher = ContentHasher()
        self.count = 0
        self.position = 0
        self._pieces: list[bytes] = []
        self._offsets: list[int] = []
        self._keys: dict[str, list[int]] = {table: [] for table in _TABLES}

    def add(self, doc: object) -> None:
        """Append one document (its bytes, offsets and hash keys)."""
        if not isinstance(doc, Document):
            raise TypeError(f"document {self.count}: expected a Document, got {type(doc).__name__}")
        if self.count >= _MAX_DOCUMENTS:
            raise ValueError(f"a corpus store holds at most {_MAX_DOCUMENTS} documents")
        doc_id, title, text = doc.id.encode(), doc.title.encode(), doc.text.encode()
        self.hasher.add_encoded(doc_id, title, text)
        offsets = self._offsets
        offsets.append(self.position)
        offsets.append(self.position + len(doc_id))
        offsets.append(self.position + len(doc_id) + len(title))
        self.position += len(doc_id) + len(title) + len(text)
        self._pieces += (doc_id, title, text)
        self._keys["ids"].append(_key(doc_id))
        self._keys["titles"].append(_key(title))
        self.count += 1
        if len(self._keys["ids"]) >= _WRITE_CHUNK:
            self.flush()

    def flush(self) -> None:
        """Write the buffered chunk: text, offsets, and (key, row) pairs by partition."""
        n = len(self._keys["ids"])
        self.text.write(b"".join(self._pieces))
        self.offsets.write(np.asarray(self._offsets, dtype="<u8").tobytes())
        rows = np.arange(self.count - n, self.count, dtype="<u4")
        for table in _TABLES:
            pairs = np.empty(n, dtype=_PAIR)
            pairs["key"] = np.asarray(self._keys[table], dtype=np.uint64)
            pairs["row"] = rows
            part = pairs["key"] >> np.uint64(64 - _PART_BITS)
            for p, file in enumerate(self.parts[table]):
                file.write(pairs[part == p].tobytes())
            self._keys[table].clear()
        self._pieces.clear()
        self._offsets.clear()

    def finish(self, name: str) -> dict[str, Any]:
        """Close the data files, build both tables and return the manifest to write."""
        self.flush()
        self.offsets.write(np.asarray([self.position], dtype="<u8").tobytes())
        self.close()
        tables = {
            table: self._build_table(table, check=table == "ids", name=name) for table in _TABLES
        }
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "name": name,
            "count": self.count,
            "content_hash": self.hasher.hexdigest(),
            "text_bytes": self.position,
            "tables": tables,
        }

    def close(self) -> None:
        """Close every open file (idempotent)."""
        for file in (self.text, self.offsets, *self.parts["ids"], *self.parts["titles"]):
            file.close()

    def _build_table(self, table: str, *, check: bool, name: str) -> dict[str, int]:
        """Group each partition's pairs by key into rows, then lay the groups into slots."""
        groups_files: list[Path] = []
        unique = 0
        with (self.dir / f"{table}.rows").open("wb") as rows_file:
            for p in range(1 << _PART_BITS):
                part_path = self.dir / f".{table}.part{p}"
                pairs = np.fromfile(part_path, dtype=_PAIR)
                part_path.unlink()
                pairs = pairs[np.argsort(pairs["key"], kind="stable")]
                keys = pairs["key"]
                base = _written(rows_file)
                firsts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if len(keys) else keys
                groups = np.empty(len(firsts), dtype=_SLOT)
                groups["key"] = keys[firsts]
                groups["start"] = np.asarray(firsts, dtype=np.int64) + base
                groups["count"] = np.diff(np.r_[firsts, len(keys)])
                if check:
                    self._check_unique(pairs["row"], groups, base, name)
                rows_file.write(pairs["row"].tobytes())
                groups_path = self.dir / f".{table}.groups{p}"
                groups.tofile(groups_path)
                groups_files.append(groups_path)
                unique += len(groups)
        bits = max(_MIN_BITS, math.ceil(math.log2(max(unique, 1) / _MAX_LOAD)))
        per_part = 1 << (bits - _PART_BITS)
        high = 0  # slots written so far
        with (self.dir / f"{table}.table").open("wb") as out:
            for p, groups_path in enumerate(groups_files):
                groups = np.fromfile(groups_path, dtype=_SLOT)
                groups_path.unlink()
                end = (p + 1) * per_part
                if len(groups):
                    # Linear probing, inserting in key order: each group lands on its home
                    # slot or just after the previous one, whichever is later.
                    home = (groups["key"] >> np.uint64(64 - bits)).astype(np.int64)
                    ranks = np.arange(len(groups), dtype=np.int64)
                    slots = ranks + np.maximum(np.maximum.accumulate(home - ranks), high)
                    end = max(end, int(slots[-1]) + 1)
                end = max(end, high)
                segment = np.zeros(end - high, dtype=_SLOT)
                if len(groups):
                    segment[slots - high] = groups
                out.write(segment.tobytes())
                high = end
            out.write(np.zeros(1, dtype=_SLOT).tobytes())  # an empty slot ends every probe
        return {"bits": bits, "slots": high + 1, "keys": unique}

    def _check_unique(self, rows: np.ndarray, groups: np.ndarray, base: int, name: str) -> None:
        """Raise ``ValueError`` for a repeated id (a shared hash alone is no error)."""
        shared = groups[groups["count"] > 1]
        if not len(shared):
            return
        offsets = _File(self.dir / _OFFSETS, 8 * (3 * self.count + 1))
        text = _File(self.dir / _TEXT, self.position)
        try:
            for group in shared:
                start = int(group["start"]) - base
                seen: set[bytes] = set()
                for row in rows[start : start + int(group["count"])].tolist():
                    id_start, id_end = offsets.array(_U8, 3 * row, 2).tolist()
                    doc_id = text.read(id_start, id_end)
                    if doc_id in seen:
                        raise ValueError(
                            f"corpus {name!r}: duplicate document id {doc_id.decode()!r}"
                        )
                    seen.add(doc_id)
        finally:
            offsets.close()
            text.close()


def _written(file: BinaryIO) -> int:
    """Rows already written to a rows file (4 bytes each)."""
    return file.tell() // 4


def swap_into_place(tmp: Path, directory: Path) -> None:
    """Rename the finished ``tmp`` directory to ``directory``, replacing what was there."""
    if not directory.exists():
        os.replace(tmp, directory)
        return
    old = directory.with_name(f".{directory.name}.old-{uuid.uuid4().hex[:8]}")
    os.replace(directory, old)
    os.replace(tmp, directory)
    # Processes that opened or mapped the old files keep them until they close them.
    shutil.rmtree(old, ignore_errors=True)


def write_store(
    documents: Iterable[Document], directory: str | Path, *, name: str | None = None
) -> DiskCorpus:
    """Stream ``documents`` into a corpus store at ``directory`` and open it.

    Memory stays bounded (a chunk of documents plus one sixteenth of the hash keys at a
    time), so a generator over a 21M-passage file can be written on a small machine. The
    store is written to a temporary sibling and renamed into place; an existing store at
    ``directory`` is replaced, other non-empty folders are refused.

    Args:
        documents: the documents in corpus order (any iterable, consumed once).
        directory: where the store goes.
        name: the corpus name (default: ``documents.name`` if it has one, else the
            directory's name).

    Raises:
        ValueError: for a duplicate document id (as :class:`Corpus` does).
        TypeError: for an item that is not a :class:`Document`.
        FileExistsError: if ``directory`` is a non-empty folder that is not a corpus store.
    """
    directory = Path(directory)
    if directory.exists() and not (
        is_corpus_store(directory) or (directory.is_dir() and not any(directory.iterdir()))
    ):
        raise FileExistsError(
            f"{directory} exists and is not a corpus store or an empty folder; "
            "choose another directory"
        )
    if name is None:
        name = getattr(documents, "name", None) or directory.name
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.with_name(f".{directory.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        writer = _Writer(tmp)
        try:
            for doc in documents:
                writer.add(doc)
            manifest = writer.finish(str(name))
        finally:
            writer.close()
        _write_manifest(tmp / MANIFEST, manifest)
        swap_into_place(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return DiskCorpus.open(directory)


# -- reading --------------------------------------------------------------------------------


def is_corpus_store(path: str | Path) -> bool:
    """Whether ``path`` is a folder holding a corpus store manifest (contents unchecked)."""
    manifest = Path(path) / MANIFEST
    try:
        with manifest.open(encoding="utf-8") as f:
            data = json.loads(f.read(1 << 20))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("format") == FORMAT


def _read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: no such corpus store directory")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CorpusStoreError(
            f"{directory} is not a corpus store: {MANIFEST} is missing (write one with "
            "write_store or Corpus.to_store)"
        ) from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CorpusStoreError(
            f"{path}: not valid JSON ({exc}); expected a store manifest"
        ) from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CorpusStoreError(f"{path}: expected a JSON object with format {FORMAT!r}")
    if data.get("version") != FORMAT_VERSION:
        raise CorpusStoreError(
            f"{path}: store format version {data.get('version')!r}, this raggym reads version "
            f"{FORMAT_VERSION}; rewrite the store with this version"
        )
    try:
        count, text_bytes = int(data["count"]), int(data["text_bytes"])
        content_hash, name = str(data["content_hash"]), str(data.get("name", directory.name))
        tables = {
            table: {field: int(data["tables"][table][field]) for field in ("bits", "slots", "keys")}
            for table in _TABLES
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise CorpusStoreError(
            f"{path}: malformed manifest ({exc!r}); expected count, text_bytes, content_hash "
            "and tables.ids/titles with bits, slots and keys"
        ) from exc
    if count < 0 or text_bytes < 0 or len(content_hash) != 64:
        raise CorpusStoreError(f"{path}: count, text_bytes or content_hash out of range")
    for table, info in tables.items():
        if not _MIN_BITS <= info["bits"] <= 40 or info["slots"] < (1 << info["bits"]) + 1:
            raise CorpusStoreError(f"{path}: table {table!r} has impossible bits/slots {info}")
    return {
        "count": count,
        "text_bytes": text_bytes,
        "content_hash": content_hash,
        "name": name,
        "tables": tables,
    }


def _check_size(path: Path, expected: int, what: str) -> None:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise CorpusStoreError(f"{path} is missing; expected {what} ({expected} bytes)") from None
    if size != expected:
        raise CorpusStoreError(
            f"{path} has {size} bytes; expected {expected} ({what}): the store is truncated "
            "or corrupt, rewrite it"
        )


class _File:
    """A read-only file read with ``os.pread`` (no memory map: memory stays flat)."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size
        self.fd: int | None = os.open(path, os.O_RDONLY)

    def read(self, start: int, end: int) -> bytes:
        """Bytes ``start:end``; a short read means the file shrank after it was opened."""
        if self.fd is None:
            raise ValueError(f"{self.path} is closed")
        data = os.pread(self.fd, end - start, start)
        if len(data) != end - start:
            raise CorpusStoreError(
                f"{self.path}: read {len(data)} of {end - start} bytes at {start}; the store "
                "is truncated"
            )
        return data

    def array(self, dtype: np.dtype[Any], first: int, count: int) -> np.ndarray:
        """Items ``first:first + count`` of ``dtype`` (clamped to the file)."""
        size = dtype.itemsize
        end = min((first + count) * size, self.size)
        start = min(first * size, end)
        return np.frombuffer(self.read(start, end), dtype=dtype)

    def close(self) -> None:
        """Close the descriptor (idempotent)."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


_U8 = np.dtype("<u8")
_SLOT_STRUCT = struct.Struct("<QII")
_ROW_OFFSETS = struct.Struct("<4Q")


def _reopen(directory: str, name: str) -> DiskCorpus:
    """Unpickle a :class:`DiskCorpus` by opening its store again."""
    return DiskCorpus.open(directory, name=name)


class DiskCorpus(BaseCorpus):
    """A corpus read from a store written by :func:`write_store`; see the module docs.

    Open one with :meth:`open`. Documents are read on demand (``os.pread``), lookups by id
    and title probe the on-disk hash tables, and nothing held in memory grows with the
    corpus (the operating system's page cache does the caching). Pickles as its path.
    """

    def __init__(self, directory: Path, manifest: dict[str, Any], name: str) -> None:
        """Use :meth:`open`; this wires up an already validated store."""
        self.directory = directory
        self.name = name
        self._count: int = manifest["count"]
        self._hash: str = manifest["content_hash"]
        self._text_bytes: int = manifest["text_bytes"]
        self._text = _File(directory / _TEXT, self._text_bytes)
        self._offsets = _File(directory / _OFFSETS, 8 * (3 * self._count + 1))
        self._tables = {
            table: (
                _File(directory / f"{table}.table", _SLOT.itemsize * info["slots"]),
                _File(directory / f"{table}.rows", 4 * self._count),
                info["bits"],
                info["slots"],
            )
            for table, info in manifest["tables"].items()
        }

    @classmethod
    def open(cls, directory: str | Path, name: str | None = None) -> DiskCorpus:
        """Open the store at ``directory`` (its name from the manifest unless ``name``).

        Checks the manifest and every file's size against it, and the first and last
        offsets, in constant time; reads that meet damage further in raise too.

        Raises:
            FileNotFoundError: if ``directory`` does not exist.
            CorpusStoreError: for a missing manifest, another format or version, or a
                missing, truncated or inconsistent file (named in the message).
        """
        directory = Path(directory).expanduser().resolve()
        manifest = _read_manifest(directory)
        count = manifest["count"]
        _check_size(directory / _TEXT, manifest["text_bytes"], "the text of every document")
        _check_size(directory / _OFFSETS, 8 * (3 * count + 1), f"{3 * count + 1} uint64 offsets")
        for table, info in manifest["tables"].items():
            _check_size(directory / f"{table}.rows", 4 * count, f"{count} uint32 rows")
            _check_size(
                directory / f"{table}.table",
                _SLOT.itemsize * info["slots"],
                f"{info['slots']} slots",
            )
        corpus = cls(directory, manifest, name or manifest["name"])
        first = int(corpus._offsets.array(_U8, 0, 1)[0])
        last = int(corpus._offsets.array(_U8, 3 * count, 1)[0])
        if first != 0 or last != manifest["text_bytes"]:
            raise CorpusStoreError(
                f"{directory / _OFFSETS}: offsets run from {first} to {last}; expected 0 to "
                f"{manifest['text_bytes']} (the size of {_TEXT}): the store is corrupt"
            )
        for table, (slots, _, _, size) in corpus._tables.items():
            if int(slots.array(_SLOT, size - 1, 1)[0]["count"]) != 0:
                raise CorpusStoreError(
                    f"{directory / (table + '.table')}: the last slot is not empty; the table "
                    "is corrupt"
                )
        return corpus

    def close(self) -> None:
        """Close the store's files (a closed corpus cannot be read)."""
        files = [self._text, self._offsets]
        for slots, rows, _, _ in self._tables.values():
            files += (slots, rows)
        for file in files:
            file.close()

    def __del__(self) -> None:
        # No module globals here: at interpreter exit they may already be gone.
        try:  # noqa: SIM105 - contextlib may be gone at interpreter exit
            self.close()
        except Exception:  # noqa: BLE001 - a finaliser must never raise
            pass

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return _reopen, (str(self.directory), self.name)

    # -- storage -----------------------------------------------------------------------

    def __len__(self) -> int:
        return self._count

    @property
    def content_hash(self) -> str:
        """SHA-256 over ids, titles and texts in order (recorded when the store was written)."""
        return self._hash

    @overload
    def __getitem__(self, index: int) -> Document: ...

    @overload
    def __getitem__(self, index: slice) -> list[Document]: ...

    def __getitem__(self, index: int | slice) -> Document | list[Document]:
        if isinstance(index, slice):
            start, stop, step = index.indices(self._count)
            if step == 1:
                return self._read_range(start, max(start, stop), with_ids=True)[0]
            return [self[i] for i in range(start, stop, step)]
        index = int(index)
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError(f"document index {index} out of range for {self._count} documents")
        return self._row(index, 3)

    def _row(self, row: int, fields: int) -> Document:
        """Row ``row`` read with two preads; ``fields`` 2 leaves the text empty (lookups)."""
        bounds = _ROW_OFFSETS.unpack(self._offsets.read(24 * row, 24 * row + 32))
        a, b, c, d = bounds
        end = bounds[fields]
        if not a <= b <= c <= d <= self._text_bytes:
            raise CorpusStoreError(
                f"{self.directory / _OFFSETS}: offsets of row {row} are {list(bounds)}; expected "
                f"ascending offsets within the {self._text_bytes} bytes of {_TEXT}: the store "
                "is corrupt"
            )
        data = self._text.read(a, end)
        try:
            return Document(
                id=str(data[: b - a], "utf-8"),
                title=str(data[b - a : c - a], "utf-8"),
                text=str(data[c - a : d - a], "utf-8") if fields == 3 else "",
            )
        except UnicodeDecodeError as exc:
            raise CorpusStoreError(
                f"{self.directory / _TEXT}: row {row} is not valid UTF-8 ({exc}); the store "
                "is corrupt"
            ) from exc

    def titles_and_texts(self, start: int = 0, stop: int | None = None) -> list[tuple[str, str]]:
        """``(title, text)`` of documents ``start:stop``, in one read (ids not decoded)."""
        start, stop, _ = slice(start, stop).indices(self._count)
        return self._read_range(start, max(start, stop), with_ids=False)[1]

    def _read_range(
        self, start: int, stop: int, *, with_ids: bool
    ) -> tuple[list[Document], list[tuple[str, str]]]:
        """Documents (or titles and texts) of rows ``start:stop``, in one read."""
        if stop <= start:
            return [], []
        bounds = self._offsets.array(_U8, 3 * start, 3 * (stop - start) + 1)
        if bounds[0] > bounds[-1] or (len(bounds) > 2 and bool(np.any(bounds[1:] < bounds[:-1]))):
            raise CorpusStoreError(
                f"{self.directory / _OFFSETS}: offsets of rows {start}..{stop - 1} decrease; "
                "expected ascending offsets: the store is corrupt"
            )
        offs = bounds.tolist()
        base = offs[0]
        if offs[-1] > self._text_bytes:
            raise CorpusStoreError(
                f"{self.directory / _OFFSETS}: rows {start}..{stop - 1} end at {offs[-1]}, past "
                f"the {self._text_bytes} bytes of {_TEXT}: the store is corrupt"
            )
        data = memoryview(self._text.read(base, offs[-1]))
        docs: list[Document] = []
        pairs: list[tuple[str, str]] = []
        try:
            for i in range(0, len(offs) - 1, 3):
                a, b, c, d = (
                    offs[i] - base,
                    offs[i + 1] - base,
                    offs[i + 2] - base,
                    offs[i + 3] - base,
                )
                title = str(data[b:c], "utf-8")
                text = str(data[c:d], "utf-8")
                if with_ids:
                    docs.append(Document(id=str(data[a:b], "utf-8"), title=title, text=text))
                else:
                    pairs.append((title, text))
        except UnicodeDecodeError as exc:
            raise CorpusStoreError(
                f"{self.directory / _TEXT}: rows {start}..{stop - 1} are not valid UTF-8 "
                f"({exc}); the store is corrupt"
            ) from exc
        return docs, pairs

    def _rows(self, table: str, value: str) -> list[int]:
        """Rows whose id (title) hashes like ``value``, ascending (confirm by comparing)."""
        slots, rows, bits, size = self._tables[table]
        key = _key(value.encode())
        slot = key >> (64 - bits)
        while slot < size:
            data = slots.read(16 * slot, 16 * min(slot + _PROBE, size))
            for found, start, count in _SLOT_STRUCT.iter_unpack(data):
                if count == 0:
                    return []
                if found == key:
                    if start + count > self._count:
                        raise CorpusStoreError(
                            f"{slots.path}: a slot names rows {start}..{start + count - 1} of "
                            f"{self._count}; the table is corrupt"
                        )
                    return list(
                        struct.unpack(f"<{count}I", rows.read(4 * start, 4 * (start + count)))
                    )
            slot += _PROBE
        raise CorpusStoreError(
            f"{self.directory / (table + '.table')}: probe for {value!r} ran off the table; "
            "the table is corrupt"
        )

    def get(self, doc_id: str) -> Document:
        """Return the document with ``doc_id``; ``KeyError`` naming the id if absent."""
        for row in self._rows("ids", doc_id):
            doc = self._row(row, 3)
            if doc.id == doc_id:
                return doc
        raise KeyError(f"corpus {self.name!r} has no document with id {doc_id!r}")

    def index_of(self, doc_id: str) -> int:
        """Position of ``doc_id`` in the corpus; ``KeyError`` if absent."""
        for row in self._rows("ids", doc_id):
            if self._row(row, 1).id == doc_id:
                return row
        raise KeyError(doc_id)

    def ids_for_title(self, title: str) -> tuple[str, ...]:
        """Ids of every document with exactly this title, in corpus order (empty if none)."""
        heads = (self._row(row, 2) for row in self._rows("titles", title))
        return tuple(head.id for head in heads if head.title == title)

    def verify(self) -> None:
        """Re-read every document and check the content hash (linear; for after a copy).

        Raises:
            CorpusStoreError: if any file is damaged or the hash differs from the manifest's.
        """
        hasher = ContentHasher()
        for start in range(0, self._count, STREAM_CHUNK):
            for doc in self[start : start + STREAM_CHUNK]:
                hasher.add(doc.id, doc.title, doc.text)
        if hasher.hexdigest() != self._hash:
            raise CorpusStoreError(
                f"{self.directory / _TEXT}: content hash {hasher.hexdigest()} differs from the "
                f"manifest's {self._hash}; the store is corrupt"
            )
