"""Versioned Gymnasium ids for the bundled benchmarks and for a user's own data.

``gym.make("RAGGym/HotpotQA-v0")`` works offline on the bundled sample; keyword arguments
(``data_path``, ``corpus``, ``retriever``, ``k``, ``max_steps``, ``reward``, ...) go to
:class:`raggym_env.env.RAGEnv`. Any change to dynamics or reward bumps the version.
"""

from __future__ import annotations

import gymnasium as gym

__all__ = ["ENV_IDS", "ENV_VERSION", "env_id", "register_envs"]

ENV_VERSION = 0
"""The environment version in every registered id (``-v0``); bumped by any change to
dynamics or reward (see :class:`raggym_env.env.RAGEnv`'s version history)."""

ENTRY_POINT = "raggym_env.env:RAGEnv"


def env_id(name: str) -> str:
    """The registered id of a benchmark name at the current version: ``RAGGym/NAME-vN``."""
    return f"RAGGym/{name}-v{ENV_VERSION}"


#: Registered id -> task name passed to ``RAGEnv(task=...)``.
ENV_IDS: dict[str, str] = {
    env_id("HotpotQA"): "hotpotqa",
    env_id("2WikiMultihopQA"): "2wikimultihopqa",
    env_id("Bamboogle"): "bamboogle",
    env_id("MedQA"): "medqa",
    env_id("Custom"): "custom",
}


def register_envs() -> None:
    """Register every id once; safe to call repeatedly (e.g. in worker processes)."""
    for env_id, task in ENV_IDS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=ENTRY_POINT, kwargs={"task": task})
