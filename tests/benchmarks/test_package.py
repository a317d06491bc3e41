"""The raggym.benchmarks namespace: its public names, and an import that stays cheap."""

import subprocess
import sys

import raggym.benchmarks as benchmarks
from raggym.benchmarks import cli, leaderboard, report, runner, suite


def test_the_package_exports_the_names_of_each_step_of_a_run():
    assert benchmarks.load_suite is suite.load_suite
    assert benchmarks.run_suite is runner.run_suite
    assert benchmarks.write_reports is report.write_reports
    assert benchmarks.compare_runs is cli.compare_runs
    assert benchmarks.Leaderboard is leaderboard.Leaderboard
    assert benchmarks.load_leaderboard is leaderboard.load_leaderboard
    assert all(hasattr(benchmarks, name) for name in benchmarks.__all__)


def test_importing_the_package_loads_neither_matplotlib_nor_wandb():
    code = (
        "import sys, raggym.benchmarks\n"
        "print(sorted(m for m in ('matplotlib', 'wandb') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
