"""Reading benchmark splits from the Hugging Face hub through the optional ``datasets`` package.

Nothing here downloads at import time: ``datasets`` is imported inside :func:`load_hub_rows`
only when a user asks for ``path="hub"`` or ``path="hub:<repo>[:<config>[:<split>]]"``.
The hub's column layouts are converted to the official formats by each task module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raggym_env.availability import install_hint, require
from raggym_env.tasks.records import RecordLocation

__all__ = ["HUB_INSTALL_HINT", "HubSource", "columns_to_rows", "is_hub_path", "load_hub_rows"]

HUB_INSTALL_HINT = install_hint("datasets")
"""How to install the optional hub dependency."""


@dataclass(frozen=True)
class HubSource:
    """A dataset split on the Hugging Face hub.

    Attributes:
        repo: the dataset id, e.g. ``"hotpotqa/hotpot_qa"``.
        config: the configuration (subset) name, or ``None`` for the default one.
        split: the split name, e.g. ``"validation"``.
    """

    repo: str
    config: str | None
    split: str

    @property
    def spec(self) -> str:
        """The ``hub:<repo>:<config>:<split>`` string naming this source (round-trips)."""
        return f"hub:{self.repo}:{self.config or ''}:{self.split}"

    @classmethod
    def parse(cls, spec: str, default: HubSource | None) -> HubSource:
        """Parse ``"hub"`` or ``"hub:<repo>[:<config>[:<split>]]"``, filling gaps from ``default``.

        An omitted config is the default's when the repo is the default repo (else none);
        an omitted split is the default's split.

        Raises:
            ValueError: a malformed spec, or a part that is needed but has no default.
        """
        if not is_hub_path(spec):
            raise ValueError(
                f"not a hub spec: {spec!r} (expected 'hub:<repo>[:<config>[:<split>]]')"
            )
        parts = spec.split(":")[1:]
        if len(parts) > 3:
            raise ValueError(
                f"malformed hub spec {spec!r}: expected 'hub:<repo>[:<config>[:<split>]]'"
            )
        repo = parts[0].strip() if parts else ""
        config = parts[1].strip() if len(parts) > 1 else ""
        split = parts[2].strip() if len(parts) > 2 else ""
        if not repo:
            if default is None:
                raise ValueError(
                    f"hub spec {spec!r} names no dataset and this task has no default hub "
                    "dataset; use 'hub:<repo>[:<config>[:<split>]]'"
                )
            repo = default.repo
        same_repo = default is not None and repo == default.repo
        if not config and len(parts) < 2 and same_repo and default is not None:
            config = default.config or ""
        if not split:
            if default is None:
                raise ValueError(
                    f"hub spec {spec!r} names no split: use 'hub:{repo}:{config}:<split>'"
                )
            split = default.split
        return cls(repo=repo, config=config or None, split=split)


def is_hub_path(path: str | Path | None) -> bool:
    """Whether ``path`` asks for the hub (the string ``"hub"`` or ``"hub:..."``), not a file."""
    return isinstance(path, str) and (path == "hub" or path.startswith("hub:"))


def load_hub_rows(source: HubSource) -> list[dict[str, Any]]:
    """Load one split from the hub as a list of plain dicts (needs network or a warm cache).

    Raises:
        MissingDependencyError: ``datasets`` is not installed (an ``ImportError`` whose
            message gives the install command).
    """
    datasets = require("datasets", feature=f"loading {source.spec}")
    split = datasets.load_dataset(source.repo, source.config, split=source.split)
    return [dict(row) for row in split]


def columns_to_rows(
    value: Any, keys: Sequence[str | Sequence[str]], location: RecordLocation, field: str
) -> list[list[Any]]:
    """Turn the hub's columnar ``{"a": [...], "b": [...]}`` into rows ``[[a0, b0], ...]``.

    Lists are returned unchanged (already in the official row form). Each entry of ``keys``
    is a column name or a tuple of accepted alternatives (e.g. ``("sentences", "content")``).

    Raises:
        ValueError: a column is missing or the columns differ in length (located).
    """
    if isinstance(value, list):
        return value
    if not isinstance(value, Mapping):
        raise location.error(f"field {field!r} must be a list or a mapping of columns")
    columns: list[Sequence[Any]] = []
    for key in keys:
        options = (key,) if isinstance(key, str) else tuple(key)
        found = next((k for k in options if k in value), None)
        if found is None:
            raise location.error(f"field {field!r} has no column {' or '.join(map(repr, options))}")
        columns.append(value[found])
    lengths = {len(column) for column in columns}
    if len(lengths) > 1:
        raise location.error(f"the columns of field {field!r} differ in length")
    return [list(row) for row in zip(*columns, strict=True)]
