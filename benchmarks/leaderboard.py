"""The leaderboard of a benchmark run as typed, frozen data: built and validated once.

A :class:`Leaderboard` holds the suite, the :class:`RunCard`, the LLM spec and one
:class:`CellResult` per dataset x agent cell, each with its :class:`FailedItem` list. The
runner builds it from the cells (:meth:`Leaderboard.from_cells`); ``leaderboard.json`` is
its :meth:`Leaderboard.to_dict`, and :func:`load_leaderboard` reads that file back through
:meth:`Leaderboard.from_dict`, which is the one place a leaderboard mapping is validated.
Every writer (Markdown, CSV, JSON, PNG, HTML, ``raggym compare``, wandb) reads this model.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from raggym_env.episode import EpisodeRecord
from raggym_env.redaction import redact, redact_text

__all__ = [
    "LEADERBOARD_FILE",
    "LEADERBOARD_SCHEMA",
    "CellResult",
    "Episodes",
    "FailedItem",
    "Leaderboard",
    "RunCard",
    "load_leaderboard",
]

LEADERBOARD_SCHEMA = "1"
"""The ``schema_version`` of ``leaderboard.json`` this package writes and reads."""

LEADERBOARD_FILE = "leaderboard.json"
"""The leaderboard's file name inside a run folder."""

Episodes = Mapping[tuple[str, str], Sequence[EpisodeRecord]]
"""A run's episode records keyed by ``(dataset, agent)``."""

_CELL_FIELDS = ("dataset", "agent", "task", "multiple_choice", "selected", "finished")


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    """``value`` when it is a mapping, else a :class:`ValueError` naming ``where``."""
    if not isinstance(value, Mapping):
        raise ValueError(f"{where} must be a mapping, got {type(value).__name__}")
    return value


def _or_empty(value: Any) -> Any:
    """``value``, or an empty mapping when it is ``None`` (a field left null)."""
    return {} if value is None else value


def _sequence(value: Any, where: str) -> Sequence[Any]:
    """``value`` when it is a list-like sequence (not text), else a :class:`ValueError`."""
    if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
        raise ValueError(f"{where} must be a list, got {type(value).__name__}")
    return value


def _optional_text(value: Any, where: str) -> str | None:
    """``value`` as text, or ``None`` when it is missing."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{where} must be text or null, got {type(value).__name__}")
    return value


def _count(value: Any, where: str) -> int:
    """``value`` when it is a non-negative int (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{where} must be a non-negative integer, got {value!r}")
    return value


def _metric(value: Any, where: str) -> float | None:
    """``value`` as a float, or ``None`` (a missing metric); non-numbers are rejected."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where} must be a number or null, got {value!r}")
    return value  # kept as written, so that a leaderboard.json round-trips unchanged


def _interval(value: Any, where: str) -> tuple[float, float]:
    """A ``[lo, hi]`` pair of finite numbers with ``lo <= hi``."""
    pair = _sequence(value, where)
    if len(pair) != 2 or not all(_is_finite_number(v) for v in pair) or pair[0] > pair[1]:
        raise ValueError(f"{where} must be [lo, hi] with finite numbers lo <= hi, not {value!r}")
    return (float(pair[0]), float(pair[1]))


def _is_finite_number(value: Any) -> bool:
    """A real int or float (not a bool) that is finite."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class FailedItem:
    """A selected question of a cell that has no finished episode, and why.

    Attributes:
        example_id: the question's id.
        error: the recorded error (``"ErrorType: message"``, or ``no episode recorded``).
    """

    example_id: str
    error: str

    def to_dict(self) -> dict[str, str]:
        """A JSON-ready mapping."""
        return {"example_id": self.example_id, "error": self.error}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FailedItem:
        """Inverse of :meth:`to_dict`; missing fields read ``?`` and an empty error."""
        return cls(str(data.get("example_id", "?")), str(data.get("error", "")))


@dataclass(frozen=True)
class CellResult:
    """One leaderboard row: a dataset x agent cell of a suite run.

    Attributes:
        dataset: the dataset's name in the suite.
        agent: the agent's name in the suite.
        task: the task the dataset loads as (``hotpotqa``, ``medqa``, ...).
        multiple_choice: whether accuracy (not EM/F1) is the headline metric.
        selected: questions the suite selected (the denominator of every average).
        finished: questions with an episode that ran to its end.
        metrics: see :data:`raggym.benchmarks.aggregate.METRIC_COLUMNS` (``None`` where a
            metric does not apply).
        errors: the failed questions (at most 50 are kept; ``metrics["failures"]`` counts
            all of them).
        episodes_file: the cell's episode JSONL, relative to the run folder.
        ci95: a 95% bootstrap interval ``(lo, hi)`` over questions for each mean in
            :attr:`metrics` that has one (written as ``"ci95": {"em": [lo, hi], ...}``);
            empty for runs written before intervals existed.
    """

    dataset: str
    agent: str
    task: str
    multiple_choice: bool
    selected: int
    finished: int
    metrics: Mapping[str, float | None] = field(default_factory=dict)
    errors: tuple[FailedItem, ...] = ()
    episodes_file: str = ""
    ci95: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        """``(dataset, agent)``: the cell's place in the leaderboard."""
        return (self.dataset, self.agent)

    @property
    def failures(self) -> int:
        """How many selected questions failed (the count, not just the kept errors)."""
        counted = self.metrics.get("failures")
        if counted is not None and math.isfinite(counted):
            return int(counted)
        return len(self.errors)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "dataset": self.dataset,
            "agent": self.agent,
            "task": self.task,
            "multiple_choice": self.multiple_choice,
            "selected": self.selected,
            "finished": self.finished,
            "metrics": dict(self.metrics),
            "errors": [error.to_dict() for error in self.errors],
            "episodes_file": self.episodes_file,
            "ci95": {name: [lo, hi] for name, (lo, hi) in self.ci95.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "cell") -> CellResult:
        """Inverse of :meth:`to_dict`, checking every field.

        Raises:
            ValueError: a required field is missing or a field has the wrong type.
        """
        data = _mapping(data, where)
        missing = [name for name in _CELL_FIELDS if name not in data]
        if missing:
            raise ValueError(f"{where} lacks the fields {missing}")
        metrics = _mapping(data.get("metrics", {}), f"{where} metrics")
        errors = _sequence(data.get("errors", []), f"{where} errors")
        return cls(
            dataset=str(data["dataset"]),
            agent=str(data["agent"]),
            task=str(data["task"]),
            multiple_choice=bool(data["multiple_choice"]),
            selected=_count(data["selected"], f"{where} selected"),
            finished=_count(data["finished"], f"{where} finished"),
            metrics={str(k): _metric(v, f"{where} metric {k!r}") for k, v in metrics.items()},
            errors=tuple(
                FailedItem.from_dict(_mapping(e, f"{where} error {i}"))
                for i, e in enumerate(errors)
            ),
            episodes_file=str(data.get("episodes_file") or ""),
            ci95={
                str(k): _interval(v, f"{where} ci95 {k!r}")
                for k, v in _mapping(data.get("ci95") or {}, f"{where} ci95").items()
            },
        )


@dataclass(frozen=True)
class RunCard:
    """The provenance of a run (see :func:`raggym_env.runcard.make_run_card`).

    The fields reports show are typed; :attr:`fields` keeps the whole card as recorded so
    that it round-trips unchanged.

    Attributes:
        package_version: the raggym version that ran.
        git_revision: the source revision, when run from a git checkout.
        git_dirty: whether that checkout had uncommitted changes.
        python_version: the Python version.
        fields: every entry of the card (config, seeds, library versions, ...).
    """

    package_version: str | None = None
    git_revision: str | None = None
    git_dirty: bool = False
    python_version: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The card as recorded (a JSON-ready mapping)."""
        return dict(self.fields)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunCard:
        """Read a card mapping; entries it lacks read ``None``."""
        data = _mapping(data, "run_card")
        return cls(
            package_version=_optional_text(data.get("package_version"), "run card version"),
            git_revision=_optional_text(data.get("git_revision"), "run card git revision"),
            git_dirty=bool(data.get("git_dirty")),
            python_version=_optional_text(data.get("python_version"), "run card python"),
            fields=dict(data),
        )


@dataclass(frozen=True)
class Leaderboard:
    """A run's results: the suite, its provenance, and one :class:`CellResult` per cell.

    Attributes:
        suite: the suite as :meth:`raggym.benchmarks.suite.Suite.to_dict` gives it.
        run_card: the run's provenance.
        created_at: when the leaderboard was built (ISO 8601), if known.
        llm: the LLM spec the run used (``None`` without one).
        cells: the cells in the suite's order (datasets, then agents).
        schema_version: the ``leaderboard.json`` schema.
    """

    suite: Mapping[str, Any]
    run_card: RunCard
    created_at: str | None
    llm: str | None
    cells: tuple[CellResult, ...]
    schema_version: str = LEADERBOARD_SCHEMA

    @classmethod
    def from_cells(
        cls,
        cells: Sequence[CellResult],
        *,
        suite: Mapping[str, Any],
        run_card: RunCard | Mapping[str, Any] | None = None,
        llm: str | None = None,
        created_at: str | None = None,
    ) -> Leaderboard:
        """Build the leaderboard of ``cells`` (``created_at`` defaults to now, UTC).

        Credentials in ``suite``, ``run_card`` and ``llm`` are masked (they are written to
        every report).
        """
        fields = run_card.to_dict() if isinstance(run_card, RunCard) else run_card or {}
        card = RunCard.from_dict(redact(fields))
        when = created_at or datetime.now(timezone.utc).isoformat(timespec="seconds")
        spec = redact_text(llm) if llm is not None else None
        return cls(redact(suite), card, when, spec, tuple(cells))

    @property
    def suite_name(self) -> str | None:
        """The suite's name, if it has one."""
        name = self.suite.get("name")
        return str(name) if name not in (None, "") else None

    @property
    def suite_description(self) -> str | None:
        """The suite's description, if it has one."""
        text = self.suite.get("description")
        return str(text) if text not in (None, "") else None

    @property
    def datasets(self) -> list[str]:
        """The datasets in order of first appearance (the suite's order)."""
        return list(dict.fromkeys(cell.dataset for cell in self.cells))

    @property
    def agents(self) -> list[str]:
        """The agents in order of first appearance (the suite's order)."""
        return list(dict.fromkeys(cell.agent for cell in self.cells))

    def by_key(self) -> dict[tuple[str, str], CellResult]:
        """The cells keyed by ``(dataset, agent)``."""
        return {cell.key: cell for cell in self.cells}

    def is_multiple_choice(self, dataset: str) -> bool:
        """Whether ``dataset``'s cells are scored by accuracy (its first cell decides)."""
        return next(c.multiple_choice for c in self.cells if c.dataset == dataset)

    def failed_cells(self) -> list[CellResult]:
        """The cells with at least one failed question."""
        return [cell for cell in self.cells if cell.errors or cell.failures]

    def replace_cells(self, cells: Sequence[CellResult]) -> Leaderboard:
        """The same run with other cells (a filtered or edited view)."""
        return dataclasses.replace(self, cells=tuple(cells))

    def to_dict(self) -> dict[str, Any]:
        """The ``leaderboard.json`` mapping."""
        return {
            "schema_version": self.schema_version,
            "suite": dict(self.suite),
            "run_card": self.run_card.to_dict(),
            "created_at": self.created_at,
            "llm": self.llm,
            "cells": [cell.to_dict() for cell in self.cells],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Leaderboard:
        """Read and check a leaderboard mapping (the inverse of :meth:`to_dict`).

        Raises:
            ValueError: ``cells`` is missing or not a list, a cell lacks a required field,
                or a field has the wrong type.
        """
        data = _mapping(data, "leaderboard")
        raw = data.get("cells")
        if not isinstance(raw, Sequence) or isinstance(raw, (str, bytes)):
            raise ValueError("leaderboard['cells'] must be a list of cell mappings")
        cells = tuple(
            CellResult.from_dict(item, f"leaderboard cell {i}") for i, item in enumerate(raw)
        )
        return cls(
            suite=dict(_mapping(_or_empty(data.get("suite")), "leaderboard suite")),
            run_card=RunCard.from_dict(_or_empty(data.get("run_card"))),
            created_at=_optional_text(data.get("created_at"), "leaderboard created_at"),
            llm=_optional_text(data.get("llm"), "leaderboard llm"),
            cells=cells,
            schema_version=str(data.get("schema_version", LEADERBOARD_SCHEMA)),
        )


def load_leaderboard(run: str | Path) -> Leaderboard:
    """Read ``leaderboard.json`` from a run folder (or the file itself).

    Raises:
        FileNotFoundError: there is no leaderboard there.
        ValueError: the file is not a leaderboard of :data:`LEADERBOARD_SCHEMA`.
    """
    path = Path(run)
    if path.is_dir():
        path = path / LEADERBOARD_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"no leaderboard at {str(path)!r}: expected a `raggym bench` output folder "
            f"or its {LEADERBOARD_FILE}"
        )
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("schema_version") != LEADERBOARD_SCHEMA:
        raise ValueError(
            f"{str(path)!r} is not a raggym leaderboard (schema {LEADERBOARD_SCHEMA} expected)"
        )
    return Leaderboard.from_dict(data)
