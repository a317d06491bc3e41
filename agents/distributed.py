"""The batched runner across Ray workers: each worker holds its own environments and agent.

The driver splits the questions into chunks, hands them to a pool of Ray actors (each a
:class:`~raggym.agents.rollout.BatchedRunner` built from the factories you pass), and appends
each chunk's episodes to the store as soon as that chunk comes back, so a run that dies
keeps every finished chunk. Models are shared through an OpenAI-compatible server (give
the workers an agent factory that builds an ``OpenAICompatibleLLM``) and retrieval runs
in each worker or through the retrieval server (``retriever="remote"``).

Every wait has a timeout: a run that makes no progress for ``timeout_s`` raises
``TimeoutError`` (what finished is already stored). A chunk whose worker died is recorded
as failed episodes carrying the error, never dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from raggym.agents.base import Agent
from raggym.agents.baselines import ScriptedPolicy
from raggym.agents.rollout import BatchedRunner, EpisodeBuilder
from raggym_env.availability import require
from raggym_env.env import RAGEnv, rag_env_of
from raggym_env.episode import EpisodeRecord
from raggym_env.store import EpisodeStore
from raggym_env.types import QAExample

__all__ = ["ray_rollout"]


class _Worker:
    """One Ray actor: a batched runner over its own environment copies and agent."""

    def __init__(
        self,
        env_factory: Callable[[], RAGEnv],
        agent_factory: Callable[[], Agent | ScriptedPolicy],
        batch_size: int,
        run_card: Mapping[str, Any] | None,
    ) -> None:
        self.runner = BatchedRunner(
            env_factory, agent_factory(), batch_size=batch_size, run_card=run_card
        )

    def run(self, examples: list[QAExample], seed: int | None) -> list[dict[str, Any]]:
        """Play a chunk of questions; records travel back as plain dicts."""
        return [record.to_dict() for record in self.runner.run(examples, seed=seed)]


def ray_rollout(
    env_factory: Callable[[], RAGEnv],
    agent_factory: Callable[[], Agent | ScriptedPolicy],
    examples: Sequence[QAExample],
    *,
    num_workers: int = 2,
    batch_size: int = 32,
    chunk_size: int | None = None,
    store: EpisodeStore | None = None,
    run_card: Mapping[str, Any] | None = None,
    seed: int | None = None,
    timeout_s: float = 600.0,
    worker_options: Mapping[str, Any] | None = None,
) -> list[EpisodeRecord]:
    """Play ``examples`` on ``num_workers`` Ray actors; records return as chunks finish.

    Ray must be initialised by the caller (``ray.init(...)``) or is started locally with
    defaults. The factories are shipped to the workers (cloudpickle), so they may be
    closures; each worker calls ``agent_factory`` once and ``env_factory`` up to
    ``batch_size`` times.

    Args:
        env_factory: builds one environment in a worker.
        agent_factory: builds the agent in a worker.
        examples: the questions.
        num_workers: Ray actors to start.
        batch_size: live episodes per worker.
        chunk_size: questions per task (default ``batch_size``): smaller chunks store
            results sooner and balance load better.
        store: where each finished episode is appended (by the driver).
        run_card: provenance attached to every record.
        seed: the seed passed to every ``reset``.
        timeout_s: the longest wait for the next chunk before ``TimeoutError``.
        worker_options: Ray actor options (e.g. ``{"num_cpus": 1}``).

    Returns:
        The records, in the order chunks finished.
    """
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1:
        raise ValueError(f"num_workers must be a positive int, got {num_workers!r}")
    size = chunk_size or batch_size
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
    ray = require("ray", feature="ray_rollout")
    if not ray.is_initialized():
        ray.init(num_cpus=num_workers, include_dashboard=False, log_to_driver=False)
    remote_worker = ray.remote(_Worker).options(**dict(worker_options or {"num_cpus": 1}))
    workers = [
        remote_worker.remote(env_factory, agent_factory, batch_size, run_card)
        for _ in range(num_workers)
    ]
    chunks = [list(examples[i : i + size]) for i in range(0, len(examples), size)]
    pending = {
        workers[n % num_workers].run.remote(chunk, seed): chunk for n, chunk in enumerate(chunks)
    }
    records: list[EpisodeRecord] = []
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=timeout_s)
            if not ready:
                raise TimeoutError(
                    f"no chunk finished within {timeout_s} s; {len(pending)} of {len(chunks)} "
                    "chunks still running (finished episodes are already stored)"
                )
            chunk = pending.pop(ready[0])
            try:
                finished = [EpisodeRecord.from_dict(d) for d in ray.get(ready[0], timeout=60)]
            except ray.exceptions.RayError as exc:
                finished = _failed_chunk(env_factory, agent_factory, chunk, exc, seed, run_card)
            for record in finished:
                if store is not None:
                    store.append(record)
                records.append(record)
    finally:
        for worker in workers:
            ray.kill(worker)
    return records


def _failed_chunk(
    env_factory: Callable[[], RAGEnv],
    agent_factory: Callable[[], Agent | ScriptedPolicy],
    chunk: Sequence[QAExample],
    exc: BaseException,
    seed: int | None,
    run_card: Mapping[str, Any] | None,
) -> list[EpisodeRecord]:
    """One failed record per question of a chunk whose worker died."""
    from raggym.agents.base import Memory
    from raggym.agents.rollout import as_agent

    env = rag_env_of(env_factory())
    name = as_agent(agent_factory()).name
    error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return [
        EpisodeBuilder(env, example, Memory(example), name, seed, run_card).finish(error=error)
        for example in chunk
    ]
