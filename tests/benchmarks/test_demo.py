"""``raggym demo`` is ``raggym bench smoke`` under another name."""

import argparse
import importlib
from pathlib import Path

import pytest

from raggym.benchmarks.cli import DEMO_NOTE, bench_command

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _command(name: str) -> object:
    """The registration function pyproject.toml declares for a ``raggym`` command."""
    commands = tomllib.loads(PYPROJECT.read_text())["project"]["entry-points"]["raggym.commands"]
    module, _, attr = commands[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def _run(register: object, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="raggym")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)  # type: ignore[operator]
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_demo_runs_the_smoke_suite_and_says_so(tmp_path, capsys):
    demo = _command("demo")
    assert _command("bench") is bench_command
    assert demo.__module__ == "raggym.benchmarks.cli"  # type: ignore[attr-defined]
    assert _run(demo, ["demo", "--limit", "2", "--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == DEMO_NOTE
    assert (
        _run(bench_command, ["bench", "smoke", "--limit", "2", "--out", str(tmp_path / "b")]) == 0
    )
    bench_out = capsys.readouterr().out
    episodes = sorted(p.name for p in (tmp_path / "demo" / "episodes").iterdir())
    assert episodes == sorted(p.name for p in (tmp_path / "b" / "episodes").iterdir())
    assert "| heuristic |" in out and "| oracle |" in out
    assert (tmp_path / "demo" / "report.html").exists() and "report.html" in bench_out
