"""What the wheel installs: only ``raggym*`` import names, beside other distributions.

The repository's folders (agents/, trainers/, ...) install inside the ``raggym``
namespace, so raggym never collides with another distribution's top-level package (the
OpenAI Agents SDK installs ``agents``). These tests build the real wheel and use it.
"""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"raggym_env": "raggym_env", "agents": "raggym/agents", "trainers": "raggym/trainers"}
FOLDERS |= {"benchmarks": "raggym/benchmarks", "testing": "raggym/testing"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from a copy of the sources (an in-tree build/ could hold stale files)."""
    source = tmp_path_factory.mktemp("source") / "raggym"
    skip = ("build", "dist", "*.egg-info", ".git", "__pycache__", "runs", ".*_cache")
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*skip), symlinks=True)
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (built,) = out.glob("raggym-*.whl")
    return built


@pytest.fixture(scope="module")
def site(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel unpacked as pip would lay it into site-packages."""
    target = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(target)
    return target


def names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def test_wheel_installs_only_raggym_names(wheel: Path):
    top = {name.split("/")[0] for name in names(wheel)}
    assert top == {"raggym", "raggym_env", f"{wheel.name.split('-py')[0]}.dist-info"}
    inside = {name.split("/")[1] for name in names(wheel) if name.startswith("raggym/")}
    assert inside == {"agents", "trainers", "benchmarks", "testing"}
    assert "raggym/__init__.py" not in names(wheel)  # a namespace: other raggym-* may join


def test_wheel_holds_every_module_and_no_measurement_script(wheel: Path):
    """Every .py of the package folders is in the wheel, under its installed name."""
    expected = {
        f"{installed}/{path.relative_to(ROOT / folder).as_posix()}"
        for folder, installed in FOLDERS.items()
        for path in (ROOT / folder).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    modules = {name for name in names(wheel) if name.endswith(".py")}
    assert modules == expected
    for script in (ROOT / "perf").glob("*.py"):
        assert not any(name.endswith(f"/{script.name}") for name in modules), script.name


def test_wheel_holds_its_data_files(wheel: Path):
    files = set(names(wheel))
    for required in [
        "raggym_env/py.typed",
        "raggym_env/data/NOTICE.md",
        "raggym/agents/prompts/react.txt",
        "raggym/benchmarks/suites/smoke.toml",
        "raggym/benchmarks/suites/custom_example/corpus.jsonl",
        "raggym/testing/py.typed",
    ]:
        assert required in files


def test_test_doubles_live_only_in_the_testing_kit(wheel: Path):
    doubles = ["class MockLLM", "class ScriptedLLM", "class FakeRetriever", "class FaultPlan"]
    doubles += ["def create_fake_openai_app", "def build_tiny_causal_lm"]
    with zipfile.ZipFile(wheel) as archive:
        defined = {
            name: [d for d in doubles if d in archive.read(name).decode()]
            for name in archive.namelist()
            if name.endswith(".py")
        }
    outside = {name: found for name, found in defined.items() if found}
    assert all(name.startswith("raggym/testing/") for name in outside), outside
    assert sorted(d for found in outside.values() for d in found) == sorted(doubles)


def test_entry_points_name_installed_modules(wheel: Path, site: Path):
    (info,) = site.glob("raggym-*.dist-info")
    parser = configparser.ConfigParser()
    parser.read(info / "entry_points.txt")
    assert parser["console_scripts"]["raggym"] == "raggym_env.cli:main"
    assert parser["pytest11"]["raggym"] == "raggym.testing.pytest_plugin"
    targets = [
        value.split(":")[0] for section in parser.sections() for value in parser[section].values()
    ]
    for module in targets:
        assert module.split(".")[0] in {"raggym", "raggym_env"}, module
        assert (site / Path(*module.split("."))).with_suffix(".py").is_file(), module


def run_python(code: str, *path: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in path)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_raggym_imports_beside_a_distribution_that_installs_agents(site: Path, tmp_path: Path):
    """A stand-in for the OpenAI Agents SDK owns ``agents``; both import and work."""
    other = tmp_path / "other-site"
    (other / "agents").mkdir(parents=True)
    (other / "agents" / "__init__.py").write_text('OWNER = "openai-agents"\n')
    code = """
        import agents
        import raggym.agents
        from raggym.agents import ReActAgent, run_episode
        from raggym.testing import ScriptedLLM, make_tiny_env

        assert agents.OWNER == "openai-agents", agents.__file__
        assert raggym.agents.__file__.startswith(SITE), raggym.agents.__file__
        llm = ScriptedLLM(["Action: Search[Ed Wood]", "Action: Finish[yes]"])
        record = run_episode(make_tiny_env(), ReActAgent(llm), options={"index": 0})
        print("EM", record.metrics["em"], "agents from", agents.__file__)
    """
    result = run_python(f"SITE = {str(site)!r}\n{textwrap.dedent(code)}", other, site, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("EM 1.0"), result.stdout


def test_a_user_project_tests_its_agent_with_the_plugin_fixtures(tmp_path: Path):
    """After ``pip install raggym``, a project's own test uses the kit's fixtures offline."""
    project = tmp_path / "my_project"
    project.mkdir()
    (project / "test_my_agent.py").write_text(
        textwrap.dedent(
            """
            from raggym.agents import ReActAgent, run_episode


            def test_my_agent_answers(raggym_env, scripted_llm):
                llm = scripted_llm(["Action: Search[Eiffel Tower]", "Action: Finish[France]"])
                record = run_episode(raggym_env, ReActAgent(llm), options={"index": 1})
                assert record.metrics["em"] == 1.0
                assert record.steps[0].action["type"] == "search"


            def test_my_agent_against_a_server(fake_openai_server):
                assert fake_openai_server.url.startswith("http://127.0.0.1:")
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_DISABLE_PLUGIN_AUTOLOAD"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(project)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout, result.stdout
