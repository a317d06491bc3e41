"""Play episodes: one at a time, or many in lockstep with one model call per step.

:func:`run_episode` plays one episode. :func:`rollout` plays a list of questions one
after another. :class:`BatchedRunner` keeps up to ``batch_size`` environments live at once:
every iteration asks the agent for all their decisions in one batch (one LLM call), steps
them with one batched retrieval call (:func:`raggym_env.env.step_batch`), writes each
episode to the store the moment it ends, and refills the freed slot from the queue.

Every runner steps the environment it was given through its outermost wrapper, so a
user's Gymnasium wrappers (observation, reward, action) apply the same way in
:func:`run_episode` and in :class:`BatchedRunner`; the :class:`~raggym_env.env.RAGEnv`
inside (``env.unwrapped``) is read only for the question, the env id, and the retriever
and ``k`` that group the batched search.

A decision whose model request failed ends its episode with the error recorded, and an
exception raised while playing one question (a bug in an agent, say) is recorded as that
episode's error: either way the item is kept as a failure, never dropped, and the other
episodes go on.
"""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import gymnasium as gym

from raggym.agents.base import Agent, Decision, Memory, PolicyAgent
from raggym.agents.baselines import ScriptedPolicy
from raggym_env.env import ENV_VERSION, RAGEnv, prefetch_searches, rag_env_of
from raggym_env.episode import EpisodeRecord, RetrievedDoc, StepRecord, gold_from_example
from raggym_env.observation import Observation
from raggym_env.progress import Progress, progress
from raggym_env.store import EpisodeStore
from raggym_env.types import QAExample

__all__ = [
    "BatchedRunner",
    "EpisodeBuilder",
    "as_agent",
    "decide_each",
    "rollout",
    "run_episode",
    "step_each",
]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def as_agent(agent: Agent | ScriptedPolicy) -> Agent:
    """Accept an :class:`Agent` or a scripted policy (wrapped in :class:`PolicyAgent`)."""
    if isinstance(agent, Agent):
        return agent
    if isinstance(agent, ScriptedPolicy):
        return PolicyAgent(agent)
    raise TypeError(
        "expected an Agent or a policy with name/begin/act, got " + type(agent).__name__
    )


@dataclass
class EpisodeBuilder:
    """Collects one episode's steps as they happen and assembles its record at the end."""

    env: RAGEnv
    example: QAExample
    memory: Memory
    agent_name: str
    seed: int | None = None
    run_card: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    steps: list[StepRecord] = field(default_factory=list)
    started_at: str = field(default_factory=_now)

    def add_step(self, decision: Decision, reward: float, info: Mapping[str, Any]) -> None:
        """Record one environment step together with the decision that caused it."""
        step_extra = dict(decision.extra)
        if decision.prompt is not None:
            step_extra["prompt"] = [dict(m) for m in decision.prompt]
        self.steps.append(
            StepRecord(
                index=len(self.steps),
                action=info["action"],
                raw_text=decision.raw_text,
                action_error=(
                    decision.parse_error or info["action_error"] or info["retrieval_error"]
                ),
                retrieved=[
                    RetrievedDoc(d["id"], d["title"], d["score"]) for d in info["retrieved"]
                ],
                reward=reward,
                evidence_recall=info["evidence_recall"],
                latency_s=decision.latency_s,
                tokens=dict(decision.tokens),
                candidates=list(decision.candidates),
                extra=step_extra,
            )
        )

    def finish(
        self,
        info: Mapping[str, Any] | None = None,
        *,
        terminated: bool = False,
        truncated: bool = False,
        error: str | None = None,
    ) -> EpisodeRecord:
        """The episode's record; ``error`` marks a crashed or failed episode."""
        info = info or {}
        metrics = dict(info.get("metrics", {}))
        if error is not None and not metrics:
            metrics = {"num_searches": float(sum(s.action_type == "search" for s in self.steps))}
            metrics["steps"] = float(len(self.steps))
        return EpisodeRecord(
            env_id=self.env.env_id,
            env_version=ENV_VERSION,
            example_id=self.example.id,
            question=self.example.question,
            options=dict(self.example.options) if self.example.options else None,
            steps=list(self.steps),
            final_answer=info.get("answer"),
            gold=gold_from_example(self.example),
            metrics=metrics,
            terminated=terminated,
            truncated=truncated,
            error=error,
            seed=self.seed,
            run_card=dict(self.run_card) if self.run_card is not None else None,
            started_at=self.started_at,
            ended_at=_now(),
            extra={"agent": self.agent_name, **self.extra},
        )


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def run_episode(
    env: gym.Env[Any, Any],
    agent: Agent | ScriptedPolicy,
    *,
    seed: int | None = None,
    options: Mapping[str, Any] | None = None,
    run_card: Mapping[str, Any] | None = None,
    on_step: Callable[[StepRecord], None] | None = None,
) -> EpisodeRecord:
    """Play one episode to its end and return its full record (steps, answer, metrics).

    A model request that failed after its retries ends the episode with ``error`` set.
    Exceptions from the agent propagate (use :func:`rollout` to record them instead).
    ``on_step`` receives each step's record as soon as it is played (to stream an episode).
    """
    base = rag_env_of(env)
    actor = as_agent(agent)
    observation, _ = env.reset(seed=seed, options=dict(options) if options else None)
    example = base.current_example
    if example is None:  # reset always sets it; guards the type for the checker
        raise RuntimeError("the environment did not start an episode")
    builder = EpisodeBuilder(base, example, actor.start(example), actor.name, seed, run_card)
    while True:
        decision = actor.act(observation, builder.memory)
        if decision.error is not None:
            return builder.finish(error=decision.error)
        observation, reward, terminated, truncated, info = env.step(decision.env_action())
        builder.add_step(decision, float(reward), info)
        if on_step is not None:
            on_step(builder.steps[-1])
        if terminated or truncated:
            return builder.finish(info, terminated=terminated, truncated=truncated)


def rollout(
    env: gym.Env[Any, Any],
    agent: Agent | ScriptedPolicy,
    examples: Iterable[QAExample] | None = None,
    *,
    store: EpisodeStore | None = None,
    run_card: Mapping[str, Any] | None = None,
    seed: int | None = None,
    show_progress: bool | None = None,
) -> list[EpisodeRecord]:
    """Play ``examples`` (default: all of the env's questions) one after another.

    Each record is appended to ``store`` as it ends. An exception while playing a question
    is recorded as that episode's ``error`` and the rollout continues. ``show_progress``
    shows a bar on stderr (``None``: as :mod:`raggym_env.progress` decides).
    """
    base = rag_env_of(env)
    actor = as_agent(agent)
    records = []
    todo = list(base.examples if examples is None else examples)
    for example in progress(
        todo, desc=f"rollout {actor.name}", unit="episode", enabled=show_progress
    ):
        try:
            record = run_episode(
                env, actor, seed=seed, options={"example": example}, run_card=run_card
            )
        except Exception as exc:  # noqa: BLE001 - a crashed item is data, recorded below
            builder = EpisodeBuilder(base, example, Memory(example), actor.name, seed, run_card)
            record = builder.finish(error=_error_text(exc))
            record.extra["traceback"] = traceback.format_exc(limit=8)
        if store is not None:
            store.append(record)
        records.append(record)
    return records


@dataclass
class _Slot:
    """One live episode in the batched runner (``env`` as built, wrappers included)."""

    env: gym.Env[Any, Any]
    builder: EpisodeBuilder
    observation: Observation


class BatchedRunner:
    """Play many episodes in lockstep: one agent batch and one retrieval batch per step.

    Args:
        env_factory: builds one environment (called ``batch_size`` times; the copies should
            share one retriever object so their searches batch together, which
            :class:`~raggym_env.env.RAGEnv` given the same ``retriever`` instance does).
            It may return a wrapped environment: episodes are stepped through the
            wrappers, exactly as :func:`run_episode` steps them.
        agent: the agent (or a scripted policy).
        batch_size: most episodes live at once.
        store: where each finished episode is appended.
        run_card: provenance attached to every record.
        on_episode: called with each finished record (progress bars, live metrics).
        show_progress: show a bar of finished episodes on stderr (``None``: as
            :mod:`raggym_env.progress` decides); :meth:`run` can override it per call.
    """

    def __init__(
        self,
        env_factory: Callable[[], RAGEnv | gym.Env[Any, Any]],
        agent: Agent | ScriptedPolicy,
        *,
        batch_size: int = 32,
        store: EpisodeStore | None = None,
        run_card: Mapping[str, Any] | None = None,
        on_episode: Callable[[EpisodeRecord], None] | None = None,
        show_progress: bool | None = None,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.env_factory = env_factory
        self.agent = as_agent(agent)
        self.batch_size = batch_size
        self.store = store
        self.run_card = run_card
        self.on_episode = on_episode
        self.show_progress = show_progress
        self._bar: Progress[Any] | None = None
        self._failed = 0
        self._envs: list[gym.Env[Any, Any]] = []
        self.stats: dict[str, float] = {"agent_calls": 0, "steps": 0, "episodes": 0}

    def _env(self, index: int) -> gym.Env[Any, Any]:
        while len(self._envs) <= index:
            env = self.env_factory()
            rag_env_of(env)  # fails early on anything but a (wrapped) RAGEnv
            self._envs.append(env)
        return self._envs[index]

    def _emit(self, record: EpisodeRecord, records: list[EpisodeRecord]) -> None:
        if self.store is not None:
            self.store.append(record)
        records.append(record)
        self.stats["episodes"] += 1
        if self._bar is not None:
            self._bar.update()
            if record.error is not None:
                self._failed += 1
                self._bar.set_postfix(failed=self._failed)
        if self.on_episode is not None:
            self.on_episode(record)

    def _start(
        self, env: gym.Env[Any, Any], example: QAExample, seed: int | None
    ) -> _Slot | EpisodeRecord:
        """Reset ``env`` on ``example``; a failure to start becomes a failed record."""
        memory = Memory(example)
        builder = EpisodeBuilder(
            rag_env_of(env), example, memory, self.agent.name, seed, self.run_card
        )
        try:
            observation, _ = env.reset(seed=seed, options={"example": example})
            builder.memory = self.agent.start(example)
        except Exception as exc:  # noqa: BLE001 - a crashed item is data
            return builder.finish(error=_error_text(exc))
        return _Slot(env, builder, observation)

    def run(
        self,
        examples: Iterable[QAExample],
        *,
        seed: int | None = None,
        show_progress: bool | None = None,
        progress_desc: str | None = None,
    ) -> list[EpisodeRecord]:
        """Play every question; records come back in the order episodes finished.

        ``show_progress`` overrides the runner's own setting for this call;
        ``progress_desc`` labels the bar (default: ``rollout AGENT``).
        """
        queue = list(examples)[::-1]
        enabled = self.show_progress if show_progress is None else show_progress
        desc = progress_desc or f"rollout {self.agent.name}"
        with progress(total=len(queue), desc=desc, unit="episode", enabled=enabled) as bar:
            self._bar, self._failed = bar, 0
            try:
                return self._run(queue, seed)
            finally:
                self._bar = None

    def _run(self, queue: list[QAExample], seed: int | None) -> list[EpisodeRecord]:
        """The lockstep loop of :meth:`run` over ``queue`` (reversed: the next is last)."""
        records: list[EpisodeRecord] = []
        free = list(range(self.batch_size))[::-1]
        live: dict[int, _Slot] = {}
        while queue or live:
            while queue and free:
                index = free.pop()
                slot = self._start(self._env(index), queue.pop(), seed)
                if isinstance(slot, EpisodeRecord):
                    self._emit(slot, records)
                    free.append(index)
                else:
                    live[index] = slot
            if not live:
                continue
            order = sorted(live)
            slots = [live[i] for i in order]
            acting: list[tuple[int, Decision]] = []
            for index, decision in zip(order, self._decide(slots), strict=True):
                if isinstance(decision, Decision) and decision.error is None:
                    acting.append((index, decision))
                    continue
                error = decision if isinstance(decision, str) else decision.error
                self._emit(live.pop(index).builder.finish(error=error), records)
                free.append(index)
            envs = [live[i].env for i, _ in acting]
            actions = [d.env_action() for _, d in acting]
            results = step_each(envs, actions)
            for (index, decision), result in zip(acting, results, strict=True):
                if isinstance(result, str):
                    self._emit(live.pop(index).builder.finish(error=result), records)
                    free.append(index)
                    continue
                observation, reward, terminated, truncated, info = result
                slot = live[index]
                slot.builder.add_step(decision, float(reward), info)
                slot.observation = observation
                self.stats["steps"] += 1
                if terminated or truncated:
                    live.pop(index)
                    free.append(index)
                    record = slot.builder.finish(info, terminated=terminated, truncated=truncated)
                    self._emit(record, records)
        return records

    def _decide(self, slots: Sequence[_Slot]) -> list[Decision | str]:
        """One agent batch for all live episodes (see :func:`decide_each`)."""
        self.stats["agent_calls"] += 1
        return decide_each(
            self.agent, [s.observation for s in slots], [s.builder.memory for s in slots]
        )


def decide_each(
    agent: Agent, observations: Sequence[Observation], memories: Sequence[Memory]
) -> list[Decision | str]:
    """One ``act_batch`` for every episode; if it raises, ask each alone so only the culprit fails.

    Returns one decision per episode, or the ``"ErrorType: message"`` of an episode whose
    decision raised.
    """
    try:
        decisions: list[Decision | str] = list(agent.act_batch(observations, memories))
    except Exception:  # noqa: BLE001 - isolate the culprit episode by episode
        decisions = []
        for observation, memory in zip(observations, memories, strict=True):
            try:
                decisions.append(agent.act_batch([observation], [memory])[0])
            except Exception as exc:  # noqa: BLE001 - a crashed item is data
                decisions.append(_error_text(exc))
    if len(decisions) != len(observations):
        raise RuntimeError(
            f"agent {agent.name!r} returned {len(decisions)} decisions for "
            f"{len(observations)} observations"
        )
    return decisions


def step_each(envs: Sequence[gym.Env[Any, Any]], actions: Sequence[Any]) -> list[Any]:
    """Step every env after one batched retrieval; a step that raises fails alone.

    Environments may be wrapped; each is stepped through its wrappers (see
    :func:`raggym_env.env.prefetch_searches`). Returns each env's ``(observation, reward,
    terminated, truncated, info)``, or the ``"ErrorType: message"`` of a step that raised.
    """
    # If the batched search fails, step() searches alone and records its own error.
    with contextlib.suppress(Exception):
        prefetch_searches(envs, actions)
    out: list[Any] = []
    for env, action in zip(envs, actions, strict=True):
        try:
            out.append(env.step(action))
        except Exception as exc:  # noqa: BLE001 - a crashed item is data
            out.append(_error_text(exc))
    return out
