"""The optional-dependency table, its errors, and the call sites that use it."""

from __future__ import annotations

import importlib.abc
import importlib.metadata
import importlib.util
import pickle
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from raggym_env import Corpus, Document
from raggym_env.availability import (
    OPTIONAL_DEPENDENCIES,
    MissingDependencyError,
    clear_availability_cache,
    install_hint,
    is_available,
    is_matplotlib_available,
    is_tensorboard_available,
    require,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
HINT = re.compile(r"pip install 'raggym\[([a-z0-9_-]+)\]'")


def _extras() -> dict[str, list[str]]:
    with (ROOT / "pyproject.toml").open("rb") as handle:
        return dict(tomllib.load(handle)["project"]["optional-dependencies"])


EXTRAS = _extras()


def distributions(extra: str) -> set[str]:
    """The canonical distribution names ``extra`` installs, through nested raggym[...]."""
    found: set[str] = set()
    for line in EXTRAS[extra]:
        requirement = Requirement(line)
        if canonicalize_name(requirement.name) == "raggym":
            for nested in requirement.extras:
                found |= distributions(nested)
        else:
            found.add(canonicalize_name(requirement.name))
    return found


def hide(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Make ``names`` (and their loaded submodules) unimportable, even where installed."""
    for name in names:
        for loaded in [m for m in sys.modules if m.startswith(name + ".")]:
            monkeypatch.setitem(sys.modules, loaded, None)
        monkeypatch.setitem(sys.modules, name, None)


def hinted_extra(error: BaseException) -> str:
    match = HINT.search(str(error))
    assert match is not None, f"no install hint in {error}"
    return match.group(1)


# --- the table against pyproject.toml ----------------------------------------------------


def test_distributions_expands_nested_extras():
    assert {"torch", "transformers", "peft", "faiss-cpu", "trl"} <= distributions("train")
    assert distributions("testing") >= distributions("serve")


@pytest.mark.parametrize("package", sorted(OPTIONAL_DEPENDENCIES))
def test_every_hint_names_an_extra_that_installs_the_package(package):
    dependency = OPTIONAL_DEPENDENCIES[package]
    assert dependency.extra in EXTRAS, f"{package}: no extra {dependency.extra!r}"
    assert hinted_extra(MissingDependencyError(package, "x")) == dependency.extra
    listed = distributions(dependency.extra)
    if dependency.via is None:
        assert canonicalize_name(dependency.distribution) in listed
        return
    # Not listed itself: the extra lists a distribution that requires it.
    assert canonicalize_name(dependency.via) in listed
    try:
        requires = importlib.metadata.requires(dependency.via) or []
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"{dependency.via} is not installed; cannot read its requirements")
    unconditional = {
        canonicalize_name(r.name) for r in map(Requirement, requires) if r.marker is None
    }
    assert canonicalize_name(dependency.distribution) in unconditional


@pytest.mark.parametrize("package", sorted(OPTIONAL_DEPENDENCIES))
def test_the_extra_is_the_smallest_that_installs_the_package(package):
    dependency = OPTIONAL_DEPENDENCIES[package]
    name = canonicalize_name(dependency.via or dependency.distribution)
    sizes = {extra: len(distributions(extra)) for extra in EXTRAS if name in distributions(extra)}
    assert sizes[dependency.extra] == min(sizes.values()), sizes


def test_install_hint():
    assert install_hint("faiss") == "pip install 'raggym[dense]'"
    assert install_hint("vllm.lora.request") == "pip install 'raggym[vllm]'"
    assert install_hint("torch", extra="train") == "pip install 'raggym[train]'"
    with pytest.raises(ValueError, match="not a known optional dependency"):
        install_hint("numpyy")


# --- require and the error ----------------------------------------------------------------


def test_require_returns_the_module():
    httpx = pytest.importorskip("httpx")
    assert require("httpx", feature="x") is httpx


def test_require_refuses_an_unknown_package():
    with pytest.raises(ValueError, match="'json' is not a known optional dependency"):
        require("json", feature="x")


@pytest.mark.parametrize("package", sorted(OPTIONAL_DEPENDENCIES))
def test_require_on_a_hidden_package_names_the_feature_package_and_extra(monkeypatch, package):
    hide(monkeypatch, package)
    with pytest.raises(MissingDependencyError) as caught:
        require(package, feature="the frobnicator")
    error = caught.value
    dependency = OPTIONAL_DEPENDENCIES[package]
    assert isinstance(error, ImportError)
    assert str(error).startswith(f"the frobnicator needs {dependency.distribution}")
    assert hinted_extra(error) == dependency.extra
    assert error.name == package and error.package == package
    assert isinstance(error.__cause__, ImportError)
    assert str(error.__cause__) in str(error)


def test_require_a_submodule_uses_the_top_level_hint(monkeypatch):
    hide(monkeypatch, "vllm")
    with pytest.raises(MissingDependencyError, match=r"VLLMLLM needs vllm: .*raggym\[vllm\]"):
        require("vllm.lora.request", feature="VLLMLLM")


def test_extra_override(monkeypatch):
    hide(monkeypatch, "torch")
    with pytest.raises(MissingDependencyError) as caught:
        require("torch", feature="training", extra="train")
    assert hinted_extra(caught.value) == "train" and caught.value.extra == "train"


class _Blocker(importlib.abc.MetaPathFinder):
    """A meta-path finder that refuses one top-level package."""

    def __init__(self, name: str) -> None:
        self.name = name

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        if fullname.partition(".")[0] == self.name:
            raise ModuleNotFoundError(f"No module named {fullname!r} (blocked)", name=fullname)
        return None


def test_require_behind_a_meta_path_blocker(monkeypatch):
    for loaded in [m for m in sys.modules if m == "httpx" or m.startswith("httpx.")]:
        monkeypatch.delitem(sys.modules, loaded)
    monkeypatch.setattr(sys, "meta_path", [_Blocker("httpx"), *sys.meta_path])
    clear_availability_cache()
    try:
        assert not is_available("httpx")
        with pytest.raises(
            MissingDependencyError, match=r"needs httpx: pip install 'raggym\[llm\]'"
        ):
            require("httpx", feature="a client")
    finally:
        clear_availability_cache()


def test_the_error_survives_pickling():
    error = MissingDependencyError("ray", "distributed rollouts", reason="No module named 'ray'")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is MissingDependencyError
    assert str(copy) == str(error) and copy.extra == "dist" and copy.name == "ray"


def test_alternatives_are_named_and_accepted(monkeypatch):
    message = str(MissingDependencyError("tensorboard", "report_to='tensorboard'"))
    assert "needs tensorboard or tensorboardX: pip install 'raggym[track]'" in message
    hide(monkeypatch, "tensorboard", "tensorboardX")
    assert not is_tensorboard_available()


def test_is_available_follows_sys_modules(monkeypatch):
    assert is_available("httpx") == (importlib.util.find_spec("httpx") is not None)
    hide(monkeypatch, "matplotlib")
    assert not is_matplotlib_available()
    with pytest.raises(ValueError):
        is_available("not_a_dependency")


def test_importing_the_module_imports_nothing_heavy():
    code = (
        "import sys, raggym_env.availability as a; a.is_torch_available(); "
        "heavy = {'torch', 'transformers', 'datasets', 'faiss', 'sentence_transformers', "
        "'httpx', 'starlette', 'matplotlib', 'vllm', 'ray', 'wandb'} & set(sys.modules); "
        "print(sorted(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# --- call sites, one or more per layer ----------------------------------------------------


def _corpus() -> Corpus:
    return Corpus([Document("d1", "Paris", "Paris is in France.")], name="tiny")


def _dense() -> None:
    from raggym_env.retrieval.dense import DenseRetriever

    DenseRetriever.build(_corpus(), model=str(ROOT / "no-such-model-dir"))


def _rerank() -> None:
    from raggym_env.retrieval.rerank import load_cross_encoder

    load_cross_encoder(ROOT / "no-such-cross-encoder")


def _remote() -> None:
    from raggym_env.retrieval.remote import RemoteRetriever

    RemoteRetriever("http://127.0.0.1:9")


def _retrieval_server() -> None:
    from raggym_env.retrieval.server import create_app

    create_app(lambda: None)  # type: ignore[arg-type, return-value]


def _hub() -> None:
    from raggym_env.tasks.hub import HubSource, load_hub_rows

    load_hub_rows(HubSource(repo="me/questions", config=None, split="train"))


def _openai() -> None:
    from raggym.agents.llm.openai_compat import OpenAICompatibleLLM

    OpenAICompatibleLLM(base_url="http://127.0.0.1:9/v1", model="m")


def _transformers_llm() -> None:
    from raggym.agents.llm.hf import TransformersLLM

    TransformersLLM("anything")


def _vllm() -> None:
    from raggym.agents.llm.vllm_backend import VLLMLLM

    VLLMLLM("some/model")


def _ray() -> None:
    from raggym.agents.distributed import ray_rollout

    ray_rollout(lambda: None, lambda: None, [])  # type: ignore[arg-type, return-value]


def _fake_server() -> None:
    from raggym.testing.fake_server import create_fake_openai_app

    create_fake_openai_app()


def _tiny() -> None:
    from raggym.testing.tiny import build_tiny_tokenizer

    build_tiny_tokenizer()


def _to_dataset() -> None:
    from raggym.trainers.datasets import to_dataset

    to_dataset([], "sft")


def _trainer_module() -> None:
    from raggym.trainers.training import require_module

    require_module("trl")


def _finetune_dense() -> None:
    from raggym.trainers.retriever import RetrieverTrainConfig, TrainingPair, finetune_dense

    out = Path(tempfile.gettempdir()) / "raggym-no-such-dir" / "never-created"
    pair = TrainingPair("q", "p", "n", "e", "d1", "d2")
    finetune_dense(RetrieverTrainConfig(output_dir=out), [pair])


def _png() -> None:
    import io

    from raggym.benchmarks.report import plot_leaderboard

    plot_leaderboard({"cells": []}, io.BytesIO())


def _wandb() -> None:
    from raggym.benchmarks.tracking import log_to_wandb

    log_to_wandb({"suite": {"name": "s"}, "cells": []}, {}, project="p", mode="disabled")


# (label, call, hidden packages, extra the hint must name, packages imported before hiding:
# the ones the call site imports before the hidden one, which must not be first imported
# while it is hidden, or they cache its absence for the rest of the session)
CALL_SITES: list[tuple[str, Callable[[], None], tuple[str, ...], str, tuple[str, ...]]] = [
    ("dense retriever", _dense, ("sentence_transformers",), "dense", ()),
    ("reranker", _rerank, ("sentence_transformers",), "dense", ()),
    ("remote retriever", _remote, ("httpx",), "llm", ()),
    ("retrieval server", _retrieval_server, ("starlette",), "serve", ()),
    ("hub loader", _hub, ("datasets",), "hub", ()),
    ("OpenAI-compatible client", _openai, ("httpx",), "llm", ()),
    ("transformers backend", _transformers_llm, ("transformers",), "hf", ("torch",)),
    ("vLLM backend", _vllm, ("vllm",), "vllm", ()),
    ("Ray rollouts", _ray, ("ray",), "dist", ()),
    ("fake OpenAI server", _fake_server, ("starlette",), "serve", ()),
    ("tiny models", _tiny, ("tokenizers",), "hf", ("transformers",)),
    ("to_dataset", _to_dataset, ("datasets",), "train", ()),
    ("trainers", _trainer_module, ("trl",), "train", ()),
    ("retriever fine-tuning", _finetune_dense, ("sentence_transformers",), "train", ("datasets",)),
    ("report PNG", _png, ("matplotlib",), "report", ()),
    ("wandb logging", _wandb, ("wandb",), "track", ()),
]


@pytest.mark.parametrize(
    ("call", "hidden", "extra", "preload"),
    [pytest.param(*site[1:], id=site[0]) for site in CALL_SITES],
)
def test_call_sites_raise_the_error_with_an_extra_that_installs_the_dependency(
    monkeypatch, call, hidden, extra, preload
):
    for name in preload:
        if is_available(name):
            importlib.import_module(name)
    hide(monkeypatch, *hidden)
    with pytest.raises(MissingDependencyError) as caught:
        call()
    assert caught.value.package.partition(".")[0] in hidden
    assert hinted_extra(caught.value) == extra
    for name in hidden:
        dependency = OPTIONAL_DEPENDENCIES[name]
        listed = canonicalize_name(dependency.via or dependency.distribution)
        assert listed in distributions(extra), f"{extra!r} does not install {name}"
