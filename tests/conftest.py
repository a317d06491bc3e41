"""Shared pytest fixtures."""

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from raggym.testing import TINY_DOCUMENTS
from raggym_env import Corpus

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA_DIR = ROOT.parent / "shared" / "data"

# ``python -m pytest`` puts the checkout's root on sys.path, where the folders agents/,
# trainers/, ... would import under their folder names. raggym installs them as
# raggym.agents, raggym.trainers, ...: drop the root so that the tests import exactly what
# a user's installation provides, and a packaging mistake fails here too.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != ROOT]
PERF_DIR = ROOT / "perf"


@pytest.fixture(scope="session")
def perf_script() -> Callable[[str], ModuleType]:
    """``perf_script("server_load")`` -> that measurement script loaded as a module.

    The scripts live outside the installed package (``perf/``) and import their helper
    ``measure`` from beside them, so the folder goes on ``sys.path`` first.
    """

    def load(name: str) -> ModuleType:
        if str(PERF_DIR) not in sys.path:
            sys.path.insert(0, str(PERF_DIR))
        spec = importlib.util.spec_from_file_location(f"perf_{name}", PERF_DIR / f"{name}.py")
        if spec is None or spec.loader is None:
            raise FileNotFoundError(PERF_DIR / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The offline benchmark files (``../shared/data``); skips the test when absent."""
    if not SHARED_DATA_DIR.is_dir():
        pytest.skip(f"shared benchmark data not found at {SHARED_DATA_DIR}")
    return SHARED_DATA_DIR


@pytest.fixture(scope="session")
def tiny_corpus() -> Corpus:
    """Four short documents: two people of a comparison question, a city, a planet."""
    return Corpus(TINY_DOCUMENTS[:4], name="tiny")
