"""Optional wandb logging of a leaderboard: the table, one row per episode, the run card.

Offline mode works (``WANDB_MODE=offline`` or ``mode="offline"``): the run is written to
the local ``wandb/`` folder and can be synced later with ``wandb sync``.

Without a login (no ``WANDB_API_KEY`` and no ``api.wandb.ai`` entry in the netrc file that
``wandb login`` writes) online logging cannot work, and wandb would fail only after the
whole benchmark had run. :func:`wandb_mode` decides before the run: such a run falls back
to offline mode with a warning, so nothing is lost (``raggym bench --wandb`` calls it
before playing anything).

Credentials never reach wandb: the config is redacted (:func:`raggym_env.redaction.redact`)
and wandb's system metadata, which would record the command line and its ``--llm`` URL,
is off.
"""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from raggym.benchmarks.aggregate import METRIC_COLUMNS
from raggym.benchmarks.leaderboard import Episodes, Leaderboard
from raggym_env.availability import require
from raggym_env.redaction import redact

__all__ = ["episode_rows", "has_wandb_login", "leaderboard_rows", "log_to_wandb", "wandb_mode"]

WandbMode = Literal["online", "offline", "disabled"]
_QUIET_MODES = ("offline", "disabled", "dryrun")

_EPISODE_COLUMNS = (
    "dataset", "agent", "example_id", "question", "answer", "gold", "em", "f1", "accuracy",
    "evidence_recall", "steps", "searches", "error",
)  # fmt: skip


def leaderboard_rows(leaderboard: Leaderboard) -> tuple[list[Any], list[list[Any]]]:
    """Columns and rows of the leaderboard table (one row per dataset x agent)."""
    columns: list[Any] = ["dataset", "agent", "selected", "finished"]
    columns += [key for key, _ in METRIC_COLUMNS]
    rows = [
        [cell.dataset, cell.agent, cell.selected, cell.finished]
        + [cell.metrics.get(key) for key, _ in METRIC_COLUMNS]
        for cell in leaderboard.cells
    ]
    return columns, rows


def episode_rows(episodes: Episodes) -> tuple[list[Any], list[list[Any]]]:
    """Columns and rows of the per-episode table."""
    rows = []
    for (dataset, agent), records in episodes.items():
        for r in records:
            gold = r.gold.get("answer_letter") or " | ".join(r.gold.get("answers", []))
            rows.append(
                [
                    dataset, agent, r.example_id, r.question, r.final_answer, gold,
                    r.metrics.get("em"), r.metrics.get("f1"), r.metrics.get("accuracy"),
                    r.metrics.get("evidence_recall"), len(r.steps), r.num_searches, r.error,
                ]
            )  # fmt: skip
    return list(_EPISODE_COLUMNS), rows


def has_wandb_login() -> bool:
    """Whether wandb has an API key: ``WANDB_API_KEY`` or a netrc entry for its host.

    The host is that of ``WANDB_BASE_URL`` (default ``api.wandb.ai``); the netrc file is
    ``$NETRC`` or ``~/.netrc``, where ``wandb login`` stores the key. Nothing is sent.
    """
    if os.environ.get("WANDB_API_KEY", "").strip():
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname
    path = Path(os.environ.get("NETRC") or Path.home() / ".netrc")
    try:
        entry = netrc.netrc(str(path)).authenticators(host or "api.wandb.ai")
    except (OSError, netrc.NetrcParseError):
        return False
    return entry is not None and bool(entry[2])


def wandb_mode(mode: WandbMode | None = None) -> tuple[WandbMode | None, str | None]:
    """The mode to log in, checked before a run, and a warning to show (or ``None``).

    Checks that wandb is installed (raising
    :class:`~raggym_env.availability.MissingDependencyError` otherwise). An explicit
    ``mode`` or a ``WANDB_MODE`` of offline/disabled is kept; an online run without a login
    (see :func:`has_wandb_login`) becomes ``"offline"``, with a warning saying how to sync.
    """
    require("wandb", feature="wandb logging")
    if mode is not None:
        if mode == "online" and not has_wandb_login():
            return "offline", _NO_LOGIN
        return mode, None
    if os.environ.get("WANDB_MODE", "").strip().lower() in _QUIET_MODES:
        return None, None
    if not has_wandb_login():
        return "offline", _NO_LOGIN
    return None, None


_NO_LOGIN = (
    "wandb: no API key (WANDB_API_KEY or `wandb login`), so the run is logged offline to the "
    "local wandb/ folder; upload it later with `wandb sync wandb/offline-run-*`"
)


def log_to_wandb(
    leaderboard: Leaderboard,
    episodes: Episodes,
    *,
    project: str,
    run_name: str | None = None,
    mode: WandbMode | None = None,
    directory: str | None = None,
) -> str:
    """Log the leaderboard and episodes as wandb tables; return the run's local folder.

    Args:
        leaderboard: as built by :func:`raggym.benchmarks.runner.run_suite`.
        episodes: the records per (dataset, agent).
        project: the wandb project.
        run_name: the run's name (default: the suite name and creation time).
        mode: ``"online"``, ``"offline"`` or ``"disabled"`` (default: wandb's own setting).
        directory: where wandb writes its files (default: wandb's own setting).
    """
    wandb = require("wandb", feature="wandb logging")
    run = wandb.init(
        project=project,
        name=run_name or f"{leaderboard.suite_name or 'benchmark'}-{leaderboard.created_at or ''}",
        config=redact(
            {
                "suite": dict(leaderboard.suite),
                "run_card": leaderboard.run_card.to_dict(),
                "llm": leaderboard.llm,
            }
        ),
        mode=mode,
        dir=directory,
        reinit="finish_previous",
        # wandb's system metadata records the command line, which may carry an LLM URL
        # with credentials; the run card in the config says what ran.
        settings=wandb.Settings(x_disable_meta=True),
    )
    try:
        columns, rows = leaderboard_rows(leaderboard)
        run.log({"leaderboard": wandb.Table(columns=columns, data=rows)})
        columns, rows = episode_rows(episodes)
        run.log({"episodes": wandb.Table(columns=columns, data=rows)})
        for cell in leaderboard.cells:
            for key, value in cell.metrics.items():
                if value is not None:
                    run.summary[f"{cell.dataset}/{cell.agent}/{key}"] = value
        return str(run.dir)
    finally:
        run.finish()
