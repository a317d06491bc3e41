"""Run one episode of a policy in an environment and keep it as an episode record."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import gymnasium as gym

from agents.baselines import ScriptedPolicy
from raggym_env.env import ENV_VERSION, RAGEnv
from raggym_env.episode import EpisodeRecord, RetrievedDoc, StepRecord, gold_from_example

__all__ = ["run_episode"]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def run_episode(
    env: gym.Env[Any, Any],
    policy: ScriptedPolicy,
    *,
    seed: int | None = None,
    options: Mapping[str, Any] | None = None,
) -> EpisodeRecord:
    """Play one episode to its end and return its full record (steps, answer, metrics)."""
    base = env.unwrapped
    if not isinstance(base, RAGEnv):
        raise TypeError(f"run_episode needs a RAGGym environment, got {type(base).__name__}")
    started = _now()
    observation, _ = env.reset(seed=seed, options=dict(options) if options else None)
    example = base.current_example
    if example is None:  # reset always sets it; guards the type for the checker
        raise RuntimeError("the environment did not start an episode")
    policy.begin(example)
    steps: list[StepRecord] = []
    done = False
    info: dict[str, Any] = {}
    terminated = truncated = False
    while not done:
        tick = time.perf_counter()
        action = policy.act(observation)
        latency = time.perf_counter() - tick
        observation, reward, terminated, truncated, info = env.step(action)
        steps.append(
            StepRecord(
                index=len(steps),
                action=info["action"],
                raw_text=action if isinstance(action, str) else None,
                action_error=info["action_error"] or info["retrieval_error"],
                retrieved=[
                    RetrievedDoc(d["id"], d["title"], d["score"]) for d in info["retrieved"]
                ],
                reward=float(reward),
                evidence_recall=info["evidence_recall"],
                latency_s=latency,
            )
        )
        done = terminated or truncated
    return EpisodeRecord(
        env_id=base.env_id,
        env_version=ENV_VERSION,
        example_id=example.id,
        question=example.question,
        options=dict(example.options) if example.options else None,
        steps=steps,
        final_answer=info.get("answer"),
        gold=gold_from_example(example),
        metrics=dict(info.get("metrics", {})),
        terminated=terminated,
        truncated=truncated,
        seed=seed,
        started_at=started,
        ended_at=_now(),
        extra={"policy": policy.name},
    )
