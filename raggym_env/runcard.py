"""Run cards: the provenance of a run, stored with every episode record and leaderboard.

A run card says which code (package version, git revision and whether the tree was dirty),
which environment (Python, platform, key library versions), which configuration, corpus,
index, prompts and seeds produced a result, so that any number can be traced and rerun.
Library versions are read from package metadata, never by importing the libraries.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path, PurePath
from typing import Any

import raggym_env
from raggym_env.redaction import redact

__all__ = [
    "LIBRARIES",
    "env_fingerprint",
    "fingerprint_changes",
    "git_revision",
    "hash_examples",
    "hash_file",
    "hash_text",
    "make_run_card",
    "run_fingerprint",
]

# Key libraries recorded when installed: name in the card -> distributions that provide it.
LIBRARIES: dict[str, tuple[str, ...]] = {
    "gymnasium": ("gymnasium",),
    "numpy": ("numpy",),
    "bm25s": ("bm25s",),
    "torch": ("torch",),
    "transformers": ("transformers",),
    "trl": ("trl",),
    "peft": ("peft",),
    "datasets": ("datasets",),
    "vllm": ("vllm",),
    "sentence_transformers": ("sentence-transformers",),
    "faiss": ("faiss-cpu", "faiss-gpu", "faiss-gpu-cu12", "faiss-gpu-cu11", "faiss"),
}
_GIT_TIMEOUT_S = 5.0
_RUN_ID_LENGTH = 12


def hash_text(text: str) -> str:
    """SHA-256 hex digest of ``text`` encoded as UTF-8 (for prompt templates)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def hash_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of a file's bytes, read in chunks (for index and data files)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _package_version() -> str:
    """The installed ``raggym`` distribution's version, else the import package's."""
    try:
        return importlib.metadata.version("raggym")
    except importlib.metadata.PackageNotFoundError:
        return raggym_env.__version__


def _git(args: Sequence[str], cwd: Path) -> str | None:
    """Run ``git`` in ``cwd`` and return its stripped stdout, or ``None`` if that fails."""
    try:
        result = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
        )
    except (OSError, subprocess.SubprocessError):  # git missing, timeout, bad cwd
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def git_revision(
    source_dir: str | os.PathLike[str] | None = None,
) -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the git checkout holding ``source_dir``; ``(None, None)`` if none.

    ``source_dir`` defaults to the directory the ``raggym_env`` package is imported from, so
    the card names the code that actually ran. An installed copy (under ``site-packages``)
    has no revision. ``dirty`` is true when tracked files differ from the commit; untracked
    files (outputs, caches) do not count.
    """
    root = Path(source_dir) if source_dir is not None else Path(raggym_env.__file__).parent.parent
    if {"site-packages", "dist-packages"} & set(root.resolve().parts):
        return None, None
    commit = _git(["rev-parse", "HEAD"], root)
    if not commit:
        return None, None
    status = _git(["status", "--porcelain", "--untracked-files=no"], root)
    return commit, (bool(status) if status is not None else None)


def _library_versions() -> dict[str, str]:
    """Versions of the installed key libraries (absent ones are left out)."""
    versions: dict[str, str] = {}
    for name, distributions in LIBRARIES.items():
        for distribution in distributions:
            try:
                versions[name] = importlib.metadata.version(distribution)
            except importlib.metadata.PackageNotFoundError:
                continue
            break
    return versions


def _jsonable(value: Any, where: str) -> Any:
    """Convert ``value`` to plain JSON data, or raise ``TypeError`` naming ``where``.

    Dataclass instances become dicts of their fields, paths strings, enums their values,
    tuples lists and sets sorted lists; mapping keys must be strings.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, enum.Enum):
        return _jsonable(value.value, where)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _jsonable(getattr(value, f.name), f"{where}.{f.name}")
            for f in dataclasses.fields(value)
        }
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"run card {where}: key {key!r} is not a string")
            out[key] = _jsonable(item, f"{where}.{key}")
        return out
    if isinstance(value, (list, tuple)):
        return [_jsonable(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, (set, frozenset)):
        items = [_jsonable(item, f"{where}{{}}") for item in value]
        try:
            return sorted(items)
        except TypeError:
            return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return _jsonable(value.tolist(), where)  # numpy scalars and arrays
    raise TypeError(
        f"run card {where} = {value!r} of type {type(value).__name__} is not JSON-serializable"
    )


def _seed_list(seeds: Sequence[int] | int | None) -> list[int] | None:
    """Normalize ``seeds`` to a list of ints (``None`` stays ``None``)."""
    if seeds is None:
        return None
    items = [seeds] if isinstance(seeds, int) else list(seeds)
    for seed in items:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"run card seeds: {seed!r} is not an integer")
    return items


def make_run_card(
    *,
    config: Mapping[str, Any] | None = None,
    corpus_hash: str | None = None,
    index_hash: str | None = None,
    prompt_hashes: Mapping[str, str] | None = None,
    seeds: Sequence[int] | int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Describe the current run as a JSON-ready dict.

    ``run_id`` is a short hash of the card's content without its timestamp: two runs of the
    same code, environment and configuration share it, any difference changes it.
    Credentials in ``config`` and ``extra`` are masked (:func:`raggym_env.redaction.redact`)
    before anything is hashed or stored.

    Raises:
        TypeError: a config or extra value is not JSON-serializable (the key is named).
    """
    revision, dirty = git_revision()
    card: dict[str, Any] = {
        "package": "raggym",
        "package_version": _package_version(),
        "git_revision": revision,
        "git_dirty": dirty,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "libraries": _library_versions(),
        "config": redact(_jsonable(dict(config), "config")) if config is not None else {},
        "corpus_hash": corpus_hash,
        "index_hash": index_hash,
        "prompt_hashes": _jsonable(dict(prompt_hashes or {}), "prompt_hashes"),
        "seeds": _seed_list(seeds),
        "extra": redact(_jsonable(dict(extra), "extra")) if extra is not None else {},
    }
    canonical = json.dumps(card, sort_keys=True, separators=(",", ":"))
    card["run_id"] = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:_RUN_ID_LENGTH]
    card["created_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return card


# ------------------------------------------------------------------------ fingerprints
# A fingerprint is a flat mapping ``setting -> JSON value`` of everything that changes the
# outcome of an episode. A run folder or file records the fingerprint it was written with;
# a rerun whose fingerprint differs must not add to it (see raggym_env.runfiles).

_IGNORED_RETRIEVER_OPTIONS = frozenset({"index_dir", "device", "batch_size", "n_threads"})
_IGNORED_LLM_OPTIONS = frozenset(
    {
        "api_key",
        "api_key_env",
        "concurrency",
        "timeout_s",
        "timeout",
        "max_retries",
        "retries",
        "backoff_s",
        "headers",
    }
)


def hash_examples(examples: Sequence[Any]) -> str:
    """``"N questions, sha256:HASH"``: the selected questions' ids, text, answers and gold.

    Two selections hash alike only when they pose the same questions in the same order
    with the same gold, whatever file or selection rule produced them.
    """
    digest = hashlib.sha256()
    for example in examples:
        item = [
            getattr(example, "id", None),
            getattr(example, "question", None),
            list(getattr(example, "answers", ()) or ()),
            getattr(example, "options", None),
            getattr(example, "evidence", None),
        ]
        digest.update(json.dumps(_jsonable(item, "example"), sort_keys=True).encode("utf-8"))
        digest.update(b"\n")
    return f"{len(examples)} questions, sha256:{digest.hexdigest()[:16]}"


def env_fingerprint(
    env: Any, *, retriever_options: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The outcome-relevant settings of a built :class:`~raggym_env.env.RAGEnv`.

    Covers the task, the selected questions (content hash), the corpus and index hashes,
    the retriever and its options (paths and speed-only options left out: the index hash
    stands for the index), ``k``, ``max_steps`` and the reward configuration.
    """
    options = {
        key: value
        for key, value in dict(retriever_options or {}).items()
        if key not in _IGNORED_RETRIEVER_OPTIONS
    }
    index_hash = getattr(env.retriever, "index_hash", None)
    return {
        "task": env.task.name,
        "questions": hash_examples(env.examples),
        "corpus_hash": env.corpus.content_hash,
        "index_hash": index_hash if isinstance(index_hash, str) else None,
        "retriever": env.retriever_name,
        "retriever_options": _jsonable(options, "retriever_options"),
        "k": env.k,
        "max_steps": env.max_steps,
        "reward": _jsonable(env.reward_config, "reward"),
    }


def run_fingerprint(
    env: Mapping[str, Any],
    *,
    agent: Any,
    llm: str | None = None,
    llm_options: Mapping[str, Any] | None = None,
    seed: int | Sequence[int] | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """A run's fingerprint: :func:`env_fingerprint` plus agent, LLM, seed and ``settings``.

    ``agent`` is the agent's description (``Agent.describe()``: class, sampling settings,
    prompt hash). LLM options that do not change outcomes (keys, concurrency, timeouts,
    retries) are left out, and the whole fingerprint is redacted, so the LLM spec or any
    other value loses its credentials. ``settings`` are any
    other outcome-relevant values (critic, ``n``, temperature, threshold, ...).
    """
    options = {
        key: value
        for key, value in dict(llm_options or {}).items()
        if key not in _IGNORED_LLM_OPTIONS
    }
    fingerprint = {
        **dict(env),
        "agent": _jsonable(agent, "agent"),
        "llm": llm,
        "llm_options": _jsonable(options, "llm_options"),
        "seed": _jsonable(seed, "seed"),
    }
    fingerprint.update({key: _jsonable(value, key) for key, value in settings.items()})
    redacted: dict[str, Any] = redact(fingerprint)  # stored as run.json: no credentials
    return redacted


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= 120 else text[:117] + "..."


def fingerprint_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """``"setting: old -> new"`` for every setting that differs, nested ones as ``a.b``.

    A setting one side lacks reads ``(absent)``.
    """
    changes: list[str] = []

    def walk(before: Any, after: Any, where: str) -> None:
        if isinstance(before, Mapping) and isinstance(after, Mapping):
            for key in sorted(set(before) | set(after)):
                walk(
                    before.get(key, "(absent)"),
                    after.get(key, "(absent)"),
                    f"{where}.{key}" if where else str(key),
                )
            return
        if json.dumps(before, sort_keys=True) != json.dumps(after, sort_keys=True):
            changes.append(f"{where}: {_short(before)} -> {_short(after)}")

    walk(old, new, "")
    return changes
