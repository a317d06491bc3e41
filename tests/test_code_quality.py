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


def module_name(folder: str, path: Path) -> str:
    """The installed module name of ``path`` inside the repository folder ``folder``."""
    parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([INSTALLED_AS[folder], *parts])


def import_targets(path: Path) -> set[str]:
    """The modules an import statement of ``path`` names, at any depth.

    ``import a.b`` names ``a.b``; ``from a import b`` names ``a`` (its ``__init__`` is
    read for ``b``) and also ``a.b`` when ``b`` is a submodule. Relative imports are
    resolved against nothing: the code base uses none (ruff keeps it so).
    """
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            targets.add(node.module)
            targets |= {f"{node.module}.{alias.name}" for alias in node.names}
    return targets


def import_graph() -> dict[str, set[str]]:
    """Our modules -> the other modules of ours that they import."""
    paths = {
        module_name(folder, path): path for folder in INSTALLED_AS for path in python_files(folder)
    }
    return {
        name: {target for target in import_targets(path) if target in paths and target != name}
        for name, path in paths.items()
    }


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_no_import_cycles():
    """No two of our modules import each other, directly or through others.

    Every import statement counts, at any depth (lazy imports inside functions and
    ``TYPE_CHECKING`` blocks too): a lazy import hides a cycle from Python, not from a
    reader. Edges go to the module a statement names (see :func:`import_targets`), not to
    the parent packages Python initialises on the way; so a package ``__init__`` may import
    its submodules, but a submodule that imports names from its own package's
    ``__init__`` (``from raggym.agents import X`` inside ``raggym.agents``) closes a cycle
    and fails here, as does any pair of sibling modules that need each other.
    """
    cycles = [" <-> ".join(group) for group in import_cycles(import_graph())]
    assert cycles == []


def test_the_cycle_finder_finds_cycles():
    """The finder itself: lazy and package-``__init__`` edges both close a cycle."""
    graph = {"p": {"p.a"}, "p.a": {"p.b"}, "p.b": {"p.a"}, "p.c": {"p"}, "q": set()}
    assert import_cycles(graph) == [["p.a", "p.b"]]
    graph["p"] |= {"p.c"}
    assert sorted(import_cycles(graph)) == [["p", "p.c"], ["p.a", "p.b"]]
    assert import_cycles({"p": {"p.a"}, "p.a": set()}) == []


def test_import_targets_count_lazy_and_submodule_imports(tmp_path):
    source = tmp_path / "mod.py"
    source.write_text(
        "import a.b\ndef f():\n    from c import d\nif TYPE_CHECKING:\n    from e.f import G\n"
    )
    assert import_targets(source) == {"a.b", "c", "c.d", "e.f", "e.f.G"}
