"""Every script in examples/ runs as shown."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))

EXPECTED = {
    # every metric the example promises is printed with a value, none of them NaN
    "synthetic_qa.py": (
        "context_precision: ",
        "context_recall: ",
        "faithfulness: ",
        "answer_relevance: ",
        "context_relevance: ",
    ),
}


NEEDS = {"verifiers_search_r1.py": "verifiers"}
"""Examples of an optional extra that not every Python has (verifiers needs 3.11+)."""


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script, tmp_path):
    needed = NEEDS.get(script.name)
    if needed and importlib.util.find_spec(needed) is None:
        pytest.skip(f"{script.name} needs {needed} (pip install 'raggym[{needed}]')")
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip()
    assert "nan" not in result.stdout.lower().split()
    for line in EXPECTED.get(script.name, ()):
        assert line in result.stdout, f"{script.name} did not print {line!r}"
