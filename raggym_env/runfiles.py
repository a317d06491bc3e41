"""The files beside a run's episodes: its recorded fingerprint and its writer lock.

A run (a ``raggym bench`` folder, a ``raggym rollout`` or ``raggym collect`` episode file)
records the fingerprint of the settings it was played with (see
:func:`raggym_env.runcard.run_fingerprint`): ``OUT/run.json`` for a bench folder,
``FILE.run.json`` beside an episode file. A rerun resumes only when its fingerprint is
the same; otherwise it is refused with a :class:`FingerprintMismatchError` naming every
changed setting (old -> new) and the way to start afresh (``--fresh`` moves the old
results aside, ``--out`` writes elsewhere). Episodes written without a fingerprint (by
an older raggym) are refused the same way: nobody can tell what settings made them.

One writer at a time: :class:`RunLock` takes a non-blocking ``flock`` on ``OUT/run.lock``
(or ``FILE.lock``); a second process gets a :class:`RunLockedError` naming the other
process's pid.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

from raggym_env.redaction import redact
from raggym_env.runcard import fingerprint_changes

__all__ = [
    "FingerprintMismatchError",
    "RunConflictError",
    "RunLock",
    "RunLockedError",
    "check_fingerprint",
    "claim_episode_file",
    "move_aside",
    "read_run_json",
    "sidecar_path",
    "write_run_json",
]

RUN_FILE_VERSION = 1


class RunConflictError(Exception):
    """A run cannot write where it was asked to (settings differ or another writer)."""


class FingerprintMismatchError(RunConflictError):
    """The recorded results were made with other settings; mixing them would be wrong."""


class RunLockedError(RunConflictError):
    """Another process is writing the same run folder or episode file."""


class RunLock:
    """An exclusive, non-blocking ``flock`` on ``lock_path`` held while a run writes.

    The lock file holds the owner's pid (for the message another writer gets); it is left
    in place on release (removing it would race with a process about to lock it). The
    operating system drops the lock when the process dies, so a crash never leaves a
    stale lock. Where ``fcntl`` is missing (Windows) no lock is taken.

    Args:
        lock_path: the lock file (created with its folder).
        target: what the lock protects, named in the error message.
    """

    def __init__(self, lock_path: str | os.PathLike[str], *, target: str | None = None) -> None:
        self.path = Path(lock_path)
        self.target = target or str(self.path)
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock or raise :class:`RunLockedError` at once."""
        try:
            import fcntl
        except ImportError:  # not POSIX: nothing to lock with
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            owner = os.read(fd, 64).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise RunLockedError(
                f"{self.target} is being written by another raggym process (pid {owner}); "
                "wait for it to end, or write to another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        self._fd = fd
        return self

    def release(self) -> None:
        """Drop the lock (harmless when not held)."""
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self if self._fd is not None else self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


def read_run_json(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The recorded run file, or ``None`` when there is none.

    Raises:
        FingerprintMismatchError: the file is not a JSON object (damaged or foreign).
    """
    file = Path(path)
    if not file.exists():
        return None
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise FingerprintMismatchError(
            f"{file} cannot be read ({exc}); pass --fresh to move the old results aside"
        ) from exc
    if not isinstance(data, dict):
        raise FingerprintMismatchError(
            f"{file} is not a JSON object; pass --fresh to move the old results aside"
        )
    return data


def write_run_json(path: str | os.PathLike[str], data: Mapping[str, Any]) -> None:
    """Write ``data`` atomically (a temporary file renamed over the old one)."""
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(file.name + f".tmp{os.getpid()}")
    text = json.dumps(redact(dict(data)), indent=2, sort_keys=True)  # never a credential
    tmp.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp, file)


def move_aside(*paths: str | os.PathLike[str]) -> list[Path]:
    """Rename each existing path to ``NAME.old-YYYYMMDD-HHMMSS``; return the new names."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    moved = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            continue
        target = path.with_name(f"{path.name}.old-{stamp}")
        suffix = 1
        while target.exists():
            target = path.with_name(f"{path.name}.old-{stamp}-{suffix}")
            suffix += 1
        os.replace(path, target)
        moved.append(target)
    return moved


def check_fingerprint(
    recorded: Mapping[str, Any] | None,
    current: Mapping[str, Any],
    *,
    what: str,
    fresh_hint: str,
) -> None:
    """Raise :class:`FingerprintMismatchError` when ``recorded`` differs from ``current``.

    Args:
        recorded: the fingerprint stored with the results (``None``: results exist but no
            fingerprint was recorded, i.e. they were written by an older raggym).
        current: this run's fingerprint.
        what: the results, as named in the message (a file, or a cell of a folder).
        fresh_hint: how to start afresh, appended to the message.
    """
    if recorded is None:
        raise FingerprintMismatchError(
            f"{what} holds episodes without a recorded configuration (written by an older "
            f"raggym), so they cannot be resumed safely; {fresh_hint}"
        )
    changes = fingerprint_changes(recorded, current)
    if changes:
        raise FingerprintMismatchError(
            f"{what} was played with other settings; resuming would mix results:\n  "
            + "\n  ".join(changes)
            + f"\n{fresh_hint}"
        )


def sidecar_path(path: str | os.PathLike[str], suffix: str) -> Path:
    """``FILE`` + ``suffix`` beside an episode file (``x.jsonl`` -> ``x.jsonl.run.json``)."""
    file = Path(path)
    return file.with_name(file.name + suffix)


def _has_episodes(path: Path) -> bool:
    return path.exists() and path.stat().st_size > 0


def claim_episode_file(
    path: str | os.PathLike[str],
    fingerprint: Mapping[str, Any],
    *,
    fresh: bool = False,
    say: Any = print,
) -> RunLock:
    """Lock an episode file for this run and check (or record) its fingerprint.

    With ``fresh`` the old episodes and their sidecar are moved aside first. Returns the
    held :class:`RunLock` (release it when the run ends, e.g. ``with claim(...):``).

    Raises:
        RunLockedError: another process writes the file.
        FingerprintMismatchError: the file holds episodes of other (or unknown) settings.
    """
    file = Path(path)
    lock = RunLock(sidecar_path(file, ".lock"), target=str(file)).acquire()
    try:
        sidecar = sidecar_path(file, ".run.json")
        if fresh:
            moved = move_aside(file, sidecar)
            if moved:
                say("moved the old results aside: " + ", ".join(str(p) for p in moved))
        if _has_episodes(file):
            recorded = read_run_json(sidecar)
            check_fingerprint(
                recorded.get("fingerprint") if recorded is not None else None,
                fingerprint,
                what=str(file),
                fresh_hint="pass --fresh to move the old episodes aside and start again, "
                "or write to another --out",
            )
        else:  # nothing to mix with: (re)record this run's settings
            write_run_json(sidecar, {"version": RUN_FILE_VERSION, "fingerprint": dict(fingerprint)})
    except BaseException:
        lock.release()
        raise
    return lock
