"""Lint and type-check the whole tree as part of the test suite, so CI enforces both."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(
    shutil.which("ruff") is None, reason="ruff not installed (pip install -e .[dev])"
)
def test_ruff_lint_and_format():
    lint = run("ruff", "check", ".")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = run("ruff", "format", "--check", ".")
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_mypy():
    pytest.importorskip("mypy", reason="mypy not installed (pip install -e .[dev])")
    result = run(sys.executable, "-m", "mypy")
    assert result.returncode == 0, result.stdout + result.stderr


# package -> packages it must never import (DESIGN.md, section 2)
FORBIDDEN = {
    "raggym_env": {"agents", "trainers", "benchmarks"},
    "agents": {"trainers", "benchmarks"},
    "benchmarks": {"trainers"},
}
# Measurement scripts of the training code live with the other benchmark scripts; the
# leaderboard code itself (suites, runner, reports) stays free of trainers.
ALLOWED = {"benchmarks/retriever_finetune.py"}


def test_layering():
    """Imports flow one way: raggym_env <- agents <- trainers, benchmarks (DESIGN.md, 2)."""
    offenders = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for package, forbidden in FORBIDDEN.items()
        for path in (ROOT / package).rglob("*.py")
        if str(path.relative_to(ROOT)) not in ALLOWED
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if line.lstrip().startswith(("import ", "from "))
        and line.split()[1].split(".")[0] in forbidden
    ]
    assert offenders == []
