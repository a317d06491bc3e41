"""The example notebooks run top to bottom, offline, and show what their text promises."""

import json
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))


def _text(cell: nbformat.NotebookNode) -> str:
    """Everything a code cell printed or displayed as text."""
    parts = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", ""))
        parts.append(output.get("data", {}).get("text/plain", ""))
    return "".join(parts)


def _execute(path: Path, tmp_path: Path) -> nbformat.NotebookNode:
    notebook = nbformat.read(path, as_version=4)
    work = tmp_path / "work"
    work.mkdir()
    client = NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(work)}}
    )
    try:
        client.execute()
    except CellExecutionError as exc:
        pytest.fail(f"{path.name} failed:\n{exc}")
    return notebook


def test_there_is_a_notebook_and_it_is_committed_without_outputs():
    assert EXAMPLES / "quickstart.ipynb" in NOTEBOOKS
    for path in NOTEBOOKS:
        notebook = json.loads(path.read_text(encoding="utf-8"))
        nbformat.validate(nbformat.from_dict(notebook))
        for cell in notebook["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None, path.name


def test_quickstart_notebook_runs_and_shows_its_results(tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    # A copy, so that nothing the run writes lands beside the committed notebook.
    path = tmp_path / "quickstart.ipynb"
    shutil.copy(EXAMPLES / "quickstart.ipynb", path)
    notebook = _execute(path, tmp_path)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code)
    everything = "\n".join(_text(cell) for cell in code)
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    # 1. the environment: a question, a search with documents, a scored answer
    assert "question: When was the American lawyer" in everything
    assert "retrieved: [" in everything and "reward: 1.0 terminated: True" in everything
    # 2. the scripted agent answers its question
    assert "answer: France | EM: 1.0" in everything
    # 3. the batched rollout needs one agent call per step for all episodes
    assert "3 episodes, 2 batched agent calls, 2 LLM calls" in everything
    # 4. pandas and datasets
    assert "num_rows: 3" in everything and "tiny-3" in everything
    # 5. a figure was drawn
    assert any("image/png" in o.get("data", {}) for c in code for o in c.outputs)
    # 6. the leaderboard: both datasets, both agents, the oracle scoring 1.0
    board = next(c for c in code if "leaderboard.cells" in c.source)
    table = _text(board)
    for name in ("hotpotqa", "2wikimultihopqa", "heuristic", "oracle"):
        assert name in table
    oracle_rows = [line for line in table.splitlines() if " oracle " in line]
    assert len(oracle_rows) == 2 and all("1.000000  1.000000" in r for r in oracle_rows)
