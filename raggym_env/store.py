"""Append-only JSONL storage of episode records, safe against crashes and ready for resume.

One line per episode, written with a single ``write`` on a file opened in append mode (and
``fsync``-ed by default), so a crash can only tear the line being written. Readers skip a
torn or malformed line (one warning per file) and keep every other record; writers never
rewrite existing bytes and start on a fresh line after a torn tail. Runners use
:meth:`EpisodeStore.pending` to skip the questions a previous, interrupted run already
finished.
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any

from raggym_env.caches import LRUCache
from raggym_env.episode import EpisodeRecord, SchemaError
from raggym_env.sanitize import scrub_data, scrub_surrogates

__all__ = [
    "EpisodeStore",
    "JsonlAppender",
    "MalformedRecordWarning",
    "ReadStats",
    "TornLineWarning",
    "final_episodes",
    "read_episodes",
]


class TornLineWarning(UserWarning):
    """A line of an episode file is not valid JSON (usually torn by a crash) and was skipped."""


class MalformedRecordWarning(TornLineWarning):
    """Lines of an episode file were skipped: torn JSON or records that break the schema.

    One warning per file read, with the count and the first line numbers and reasons.
    """


def _example_id(record: EpisodeRecord) -> str:
    """Default resume key: the question's dataset id."""
    return record.example_id


@dataclass
class ReadStats:
    """What :func:`read_episodes` skipped in one file: ``(line, reason)`` per skipped line.

    Pass one to :func:`read_episodes` to learn how many records a summary leaves out.
    """

    skipped: list[tuple[int, str]] = field(default_factory=list)

    @property
    def count(self) -> int:
        """How many lines were skipped."""
        return len(self.skipped)

    def describe(self, limit: int = 3) -> str:
        """``"2 malformed records skipped (line 3: ...; line 7: ...)"``; ``""`` when none."""
        if not self.skipped:
            return ""
        shown = "; ".join(f"line {line}: {reason}" for line, reason in self.skipped[:limit])
        more = f"; {self.count - limit} more" if self.count > limit else ""
        noun = "record" if self.count == 1 else "records"
        return f"{self.count} malformed {noun} skipped ({shown}{more})"


def read_episodes(
    path: str | os.PathLike[str], *, stats: ReadStats | None = None
) -> Iterator[EpisodeRecord]:
    """Yield the valid records of a JSONL episode file in order, skipping malformed lines.

    Blank lines are ignored. A line that is not valid JSON (a torn write) or not a valid
    record (``{}``, an unknown schema major version, a wrong field type) is skipped, so one
    bad line never hides the rest of the file. After the last line one
    :class:`MalformedRecordWarning` names the file, the number of skipped lines and the
    first few line numbers with their reasons (once while the file is unchanged);
    ``stats`` (when given) receives every one, on every read.
    """
    file = Path(path)
    skipped = stats if stats is not None else ReadStats()
    start = skipped.count
    with file.open("rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                data = _loads(raw)
            except ValueError:  # JSONDecodeError and UnicodeDecodeError
                skipped.skipped.append((lineno, "not valid JSON (probably torn by a crash)"))
                continue
            except RecursionError:
                skipped.skipped.append((lineno, "JSON nested too deeply"))
                continue
            try:
                record = EpisodeRecord.from_dict(data)
            except SchemaError as exc:
                skipped.skipped.append((lineno, str(exc)))
                continue
            yield record
    if skipped.count > start:
        mine = ReadStats(skipped.skipped[start:])
        _warn_once_per_state(file, f"{file}: {mine.describe()}; the other records were read")


_WARNED_BOUND = 1024
_warned: LRUCache[tuple[str, int, int, str], bool] = LRUCache(
    "store.malformed_warnings", _WARNED_BOUND
)


def _warn_once_per_state(file: Path, message: str) -> None:
    """Warn about a file's skipped lines once while the file is unchanged.

    A run reads its episode file several times (resume keys, then the summary); the user
    needs to hear about the same bad lines once.
    """
    try:
        stat = file.stat()
        key = (str(file.resolve()), stat.st_size, stat.st_mtime_ns, message)
    except OSError:
        key = (str(file), -1, -1, message)
    if _warned.put_new(key, True):
        warnings.warn(message, MalformedRecordWarning, stacklevel=4)


def final_episodes(
    records: Iterable[EpisodeRecord], key: Callable[[EpisodeRecord], Hashable] = _example_id
) -> list[EpisodeRecord]:
    """Keep one record per key: the last successful one, else the last failed one.

    A resumed run with ``retry_failed=True`` appends a new record for a question that
    failed before; aggregate over this list so that such a question counts once. Keys keep
    the order in which they first appear.
    """
    chosen: dict[Hashable, EpisodeRecord] = {}
    for record in records:
        k = key(record)
        previous = chosen.get(k)
        if previous is None or record.succeeded or not previous.succeeded:
            chosen[k] = record
    return list(chosen.values())


class EpisodeStore:
    """An append-only JSONL file of :class:`EpisodeRecord`, one line per episode.

    Appends are thread-safe (a batched runner may append from callbacks). Several processes
    should write to separate files: appends from different processes are not coordinated.

    Args:
        path: the ``.jsonl`` file; it and its parent directories are created on first append.
        run_card: filled into every appended record that has none (see
            :func:`raggym_env.runcard.make_run_card`).
        fsync: ``os.fsync`` after each record so that it survives a power loss, not only a
            crash of the process; turn off for speed when that does not matter.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        run_card: Mapping[str, Any] | None = None,
        fsync: bool = True,
    ) -> None:
        self.path = Path(path)
        self.run_card = dict(run_card) if run_card is not None else None
        self.fsync = fsync
        self._file = JsonlAppender(self.path)

    def __repr__(self) -> str:
        return f"EpisodeStore(path={str(self.path)!r}, fsync={self.fsync})"

    def __enter__(self) -> EpisodeStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the file; later appends raise ``ValueError``. Closing twice is harmless."""
        self._file.close(final=True)

    def append(self, record: EpisodeRecord) -> None:
        """Write ``record`` as one JSON line, durably, filling in the store's run card."""
        if not isinstance(record, EpisodeRecord):
            raise TypeError(f"expected an EpisodeRecord, got {type(record).__name__}")
        if record.run_card is None and self.run_card is not None:
            record = replace(record, run_card=self.run_card)
        if not self._file.append(_encode(record), fsync=self.fsync):
            raise ValueError(f"{self!r} is closed")

    def read(self, *, stats: ReadStats | None = None) -> Iterator[EpisodeRecord]:
        """Yield the stored records (none before the first append); see :func:`read_episodes`."""
        if not self.path.exists():
            return iter(())
        return read_episodes(self.path, stats=stats)

    def done_keys(
        self,
        key: Callable[[EpisodeRecord], Any] = _example_id,
        *,
        retry_failed: bool = False,
    ) -> set[Any]:
        """Keys of the episodes already recorded, to skip on resume.

        A crashed episode (``error`` set) counts as done, as a failure, unless
        ``retry_failed`` is true; a key with any successful record is always done.
        """
        return {key(r) for r in self.read() if r.succeeded or not retry_failed}

    def completed(self, example_ids: Iterable[str], *, retry_failed: bool = False) -> set[str]:
        """The subset of ``example_ids`` already recorded (see :meth:`done_keys`)."""
        done = self.done_keys(retry_failed=retry_failed)
        return {i for i in example_ids if i in done}

    def pending(self, example_ids: Iterable[str], *, retry_failed: bool = False) -> list[str]:
        """The ``example_ids`` still to run, in the given order (see :meth:`done_keys`)."""
        done = self.done_keys(retry_failed=retry_failed)
        return [i for i in example_ids if i not in done]


class JsonlAppender:
    """Crash-safe, thread-safe appends of whole lines to one file (the stores' writer).

    Each line is one ``write`` on a descriptor opened in append mode (created with its
    parent folders on first use), optionally ``fsync``-ed, so a crash tears at most the
    line being written; the first append after opening, or after a failed write, starts
    on a fresh line when the file ends torn. Existing bytes are never rewritten.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._check_tail = True
        self._final = False

    def append(self, line: bytes, *, fsync: bool = True) -> bool:
        """Write ``line`` (one JSON line ending in a newline); ``False`` after a final close."""
        with self._lock:
            if self._final:
                return False
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0)
                self._fd = os.open(self.path, flags, 0o644)
                self._check_tail = True
            if self._check_tail:
                if _ends_torn(self._fd):
                    line = b"\n" + line
                self._check_tail = False
            try:
                _write_all(self._fd, line)
                if fsync:
                    os.fsync(self._fd)
            except OSError:
                self._check_tail = True  # a failed write may have left part of the line
                raise
        return True

    def close(self, *, final: bool = False) -> None:
        """Close the descriptor; the next append reopens it unless ``final``. Idempotent."""
        with self._lock:
            self._final = self._final or final
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def _loads(raw: bytes) -> Any:
    """Parse one line; strings escaping lone surrogates (older files) come back scrubbed."""
    data = json.loads(raw)
    return scrub_data(data) if b"\\ud" in raw or b"\\uD" in raw else data


def _encode(record: EpisodeRecord) -> bytes:
    """Serialize a record as one UTF-8 JSON line ending in a newline."""
    payload = record.to_dict()
    try:
        line = json.dumps(payload, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"episode record {record.example_id!r} is not JSON-serializable: {exc}"
        ) from exc
    # Lone surrogates (e.g. a model's \ud800 escape) become U+FFFD: every line is UTF-8.
    return (scrub_surrogates(line) + "\n").encode("utf-8")


def _ends_torn(fd: int) -> bool:
    """Whether the file is non-empty and does not end with a newline (a torn last line)."""
    if os.fstat(fd).st_size == 0:
        return False
    os.lseek(fd, -1, os.SEEK_END)
    return os.read(fd, 1) != b"\n"


def _write_all(fd: int, data: bytes) -> None:
    """Write ``data`` with one ``write`` call, looping only if the OS writes it partially."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
