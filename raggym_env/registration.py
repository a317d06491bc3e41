"""Versioned Gymnasium ids for the bundled benchmarks and for a user's own data.

``gym.make("RAGGym/HotpotQA-v0")`` works offline on the bundled sample; keyword arguments
(``data_path``, ``corpus``, ``retriever``, ``k``, ``max_steps``, ``reward``, ...) go to
:class:`raggym_env.env.RAGEnv`. Any change to dynamics or reward bumps the version.
"""

from __future__ import annotations

import gymnasium as gym

__all__ = ["ENV_IDS", "register_envs"]

ENTRY_POINT = "raggym_env.env:RAGEnv"

#: Registered id -> task name passed to ``RAGEnv(task=...)``.
ENV_IDS: dict[str, str] = {
    "RAGGym/HotpotQA-v0": "hotpotqa",
    "RAGGym/2WikiMultihopQA-v0": "2wikimultihopqa",
    "RAGGym/Bamboogle-v0": "bamboogle",
    "RAGGym/MedQA-v0": "medqa",
    "RAGGym/Custom-v0": "custom",
}


def register_envs() -> None:
    """Register every id once; safe to call repeatedly (e.g. in worker processes)."""
    for env_id, task in ENV_IDS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=ENTRY_POINT, kwargs={"task": task})
