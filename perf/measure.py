"""Measurement helpers shared by the benchmark scripts: memory, sizes, machine, workers.

Each script runs every phase in a fresh subprocess (so peak memory belongs to that phase
alone) that prints its result as the last line of JSON on stdout.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "cpu_model",
    "current_rss_mib",
    "dir_size_mib",
    "fmt",
    "peak_rss_mib",
    "run_json_worker",
]


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (``ru_maxrss``), in MiB."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def current_rss_mib() -> float | None:
    """Current resident set size (Linux ``/proc``), in MiB, or None elsewhere."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def dir_size_mib(path: Path) -> float:
    """Size of a file, or of every file under a directory, in MiB."""
    if path.is_file():
        return path.stat().st_size / 2**20
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo``, else what ``platform`` reports."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return model


def run_json_worker(name: str, command: Sequence[str], env: Mapping[str, str]) -> dict[str, Any]:
    """Run one benchmark phase as a subprocess and parse the JSON on its last stdout line."""
    done = subprocess.run(
        list(command), env={**os.environ, **env}, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"worker {name} failed (exit {done.returncode}):\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def fmt(value: float | None, digits: int = 2) -> str:
    """``value`` with thousands separators and ``digits`` decimals (``n/a`` for None)."""
    return "n/a" if value is None else f"{value:,.{digits}f}"
