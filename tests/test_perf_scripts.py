"""The measurement scripts in perf/ (outside the installed package) keep working."""

import subprocess
import sys
from pathlib import Path

import pytest

PERF = Path(__file__).resolve().parents[1] / "perf"
SCRIPTS = sorted(p for p in PERF.glob("*.py") if p.name != "measure.py")


def test_every_script_is_listed_in_the_perf_readme():
    readme = (PERF / "README.md").read_text()
    assert [s.name for s in SCRIPTS if s.name not in readme] == []


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_imports_and_explains_its_flags(script, tmp_path):
    result = subprocess.run(
        [sys.executable, str(script), "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "usage:" in result.stdout


@pytest.mark.slow
def test_rollout_speed_quick_runs_from_another_folder(tmp_path):
    """The script starts the fake server, which imports its reply function from perf/."""
    result = subprocess.run(
        [sys.executable, str(PERF / "rollout_speed.py"), "--quick", "--concurrency", "1", "8"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "episodes/s" in result.stdout or "ep/s" in result.stdout, result.stdout
