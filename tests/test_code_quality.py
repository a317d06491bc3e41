"""Lint, type-check and layering of the whole tree, as part of the test suite."""

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# repository folder -> the import name it installs as (pyproject.toml, [tool.setuptools])
INSTALLED_AS = {
    "raggym_env": "raggym_env",
    "agents": "raggym.agents",
    "trainers": "raggym.trainers",
    "benchmarks": "raggym.benchmarks",
    "testing": "raggym.testing",
}
# layer -> layers it must never import (DESIGN.md, section 2): raggym_env <- agents <-
# trainers, benchmarks; the testing kit sits beside trainers and benchmarks, and nothing
# of the product imports it (real code never depends on test doubles).
FORBIDDEN = {
    "raggym_env": {"raggym.agents", "raggym.trainers", "raggym.benchmarks", "raggym.testing"},
    "raggym.agents": {"raggym.trainers", "raggym.benchmarks", "raggym.testing"},
    "raggym.benchmarks": {"raggym.trainers", "raggym.testing"},
    "raggym.trainers": {"raggym.benchmarks", "raggym.testing"},
    "raggym.testing": {"raggym.trainers", "raggym.benchmarks"},
}
# names that exist only as repository folders: importing them picks up whatever package of
# that name is installed (the OpenAI Agents SDK installs ``agents``), never raggym's
UNINSTALLED = {"agents", "trainers", "benchmarks", "testing", "perf", "examples", "tests"}


def run(*args: str, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **env},
    )


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every absolute module name ``path`` imports (at any depth, lazy imports included)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
    return found


def python_files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


@pytest.mark.skipif(
    shutil.which("ruff") is None, reason="ruff not installed (pip install -e .[dev])"
)
def test_ruff_lint_and_format():
    lint = run("ruff", "check", ".")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = run("ruff", "format", "--check", ".")
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_mypy(tmp_path):
    """mypy over the installed names: a link tree lays the folders out as they install."""
    pytest.importorskip("mypy", reason="mypy not installed (pip install -e .[dev])")
    (tmp_path / "raggym").mkdir()
    for folder, name in INSTALLED_AS.items():
        (tmp_path / Path(*name.split("."))).symlink_to(ROOT / folder, target_is_directory=True)
    packages = [arg for name in INSTALLED_AS.values() for arg in ("-p", name)]
    result = run(
        sys.executable,
        "-m",
        "mypy",
        "--config-file",
        str(ROOT / "pyproject.toml"),
        "--cache-dir",
        str(ROOT / ".mypy_cache"),
        *packages,
        cwd=tmp_path,
        MYPYPATH=str(tmp_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_layering():
    """Imports flow one way: raggym_env <- agents <- trainers, benchmarks (DESIGN.md, 2)."""
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: imports {module}"
        for folder, layer in INSTALLED_AS.items()
        for path in python_files(folder)
        for line, module in imported_modules(path)
        if any(module == bad or module.startswith(bad + ".") for bad in FORBIDDEN[layer])
    ]
    assert offenders == []


def test_no_code_imports_a_repository_folder_by_its_folder_name():
    """``import agents`` would load another distribution's package, or a second copy."""
    folders = [*INSTALLED_AS, "examples", "tests", "perf"]
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: imports {module}"
        for folder in folders
        for path in python_files(folder)
        for line, module in imported_modules(path)
        if module.split(".")[0] in UNINSTALLED
    ]
    assert offenders == []
