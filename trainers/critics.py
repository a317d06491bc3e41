"""Critics for process-supervision collection: Monte-Carlo rollouts, and critics by name.

Each is a :class:`~raggym.agents.critics.base.Critic`: it scores the candidate actions of
many steps at once. Besides the LLM judge and the gold-evidence critic (both in
:mod:`raggym.agents.critics`), collection can score a candidate by where it leads:

:class:`MonteCarloCritic` rebuilds each step's state in fresh environments, applies the
candidate, lets a rollout agent play to the end several times and scores the candidate by
the mean outcome (token F1 for open questions, accuracy for multiple choice). Every
rollout of every candidate of every step is played in lockstep, so a call with 16 steps
of 10 candidates and 4 rollouts makes one agent batch (one LLM call) per rollout step
across up to 640 live episodes, and one batched retrieval call per step.

:func:`make_collection_critic` builds any of the three from a short spec: ``gold``, ``judge``,
``mc`` or ``mc:N`` (``N`` rollouts per candidate).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from raggym.agents.base import INVALID_ACTION_TEXT, Agent, Decision, LLMAgent, Memory, Proposal
from raggym.agents.baselines import ScriptedPolicy
from raggym.agents.critics.base import Critic, CriticItem, CriticScore
from raggym.agents.critics.gold import UNPARSED_SCORE
from raggym.agents.llm.base import LLM
from raggym.agents.registry import make_critic
from raggym.agents.rollout import as_agent, decide_each, step_each
from raggym_env import Action, Answer, QAExample, Search
from raggym_env.env import RAGEnv, rag_env_of
from raggym_env.metrics import score_answer
from raggym_env.observation import Observation
from raggym_env.protocols import DEFAULT_PROTOCOL

__all__ = ["DEFAULT_ROLLOUTS", "MonteCarloCritic", "make_collection_critic", "outcome_metric"]

DEFAULT_ROLLOUTS = 4
"""Rollouts per candidate of ``mc`` without a count."""

EnvFactoryLike = Callable[[], "RAGEnv | gym.Env[Any, Any]"]


def outcome_metric(example: QAExample) -> str:
    """The outcome metric collection scores by: ``accuracy`` for multiple choice, else ``f1``."""
    return "accuracy" if example.is_multiple_choice else "f1"


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


@dataclass
class _Job:
    """One distinct search candidate of one step, to be played ``rollouts`` times."""

    item: CriticItem
    action: Search
    example: QAExample
    members: list[int] = field(default_factory=list)


@dataclass
class _Rollout:
    """One live rollout: its environment, the rollout agent's memory and its fate."""

    job: int
    env: gym.Env[Any, Any]
    memory: Memory | None = None
    observation: Observation | None = None
    outcome: float | None = None
    answer: str | None = None
    error: str | None = None

    @property
    def done(self) -> bool:
        """Whether the rollout has ended, with an outcome or an error."""
        return self.outcome is not None or self.error is not None

    def state(self) -> tuple[Observation, Memory]:
        """The live rollout's observation and memory (set once it has started)."""
        if self.observation is None or self.memory is None:
            raise RuntimeError("the rollout has not started")
        return self.observation, self.memory


class MonteCarloCritic:
    """Scores each candidate by the mean outcome of rollouts played from it.

    For every search candidate, ``rollouts`` fresh environments from ``env_factory`` are
    reset on the candidate's question (``CriticItem.example``, required), the step's
    search history is replayed (the retriever is deterministic, so the same documents
    come back; the budget is matched with invalid steps, which the observation does not
    show), the candidate's search is applied, and ``rollout_agent`` plays to the end.
    Its memory is rebuilt from the state: each replayed search is a scripted-search note
    (how every LLM agent records a search it did not write), and the candidate's own
    search is committed with its text when the rollout agent parses that text to the same
    action. Agent-specific memory (Search-o1's condensations) starts empty and is rebuilt
    by the agent as usual.

    Scores, higher is better:

    * a search: the mean outcome (token F1, or accuracy for multiple choice) over its
      rollouts; ``output`` is JSON with the metric, each rollout's outcome and answer;
    * an answer: its own outcome, no rollout needed;
    * an unparsed candidate: ``-1.0``;
    * a search whose history does not replay to the same documents, or any of whose
      rollouts failed (a failed LLM request, an exception): ``None`` with the error. A
      failure is never averaged in as 0.

    Candidates of one step proposing the same search share their rollouts and score.
    The rollout agent samples at its own temperature; with greedy or seeded sampling the
    rollouts of a candidate repeat each other.

    Rollouts are stepped through the wrappers of the environments ``env_factory`` builds,
    as :class:`~raggym.agents.rollout.BatchedRunner` steps them, so wrap them as the
    collecting environments were wrapped. The scorer reads the observation's
    ``history`` and ``steps_remaining``: an observation wrapper must keep those keys
    (adding keys is fine), and one that drops them is refused with a ``TypeError``.

    Args:
        env_factory: builds environments sharing the collecting environments' retriever,
            ``k`` and step budget (an :class:`~raggym_env.env.EnvFactory` does).
        rollout_agent: the agent (usually an LLM agent) that plays the rollouts.
        rollouts: rollouts per search candidate.
        seed: the seed passed to every rollout's ``reset``.
        name: the critic name recorded in episodes (the candidates' ``scorer``).

    Raises:
        TypeError: ``env_factory`` is not callable or ``rollout_agent`` is not an agent.
        ValueError: ``rollouts`` is not a positive int.
    """

    def __init__(
        self,
        env_factory: EnvFactoryLike,
        rollout_agent: Agent | ScriptedPolicy,
        *,
        rollouts: int = DEFAULT_ROLLOUTS,
        seed: int | None = 0,
        name: str = "monte_carlo",
    ) -> None:
        if not callable(env_factory):
            raise TypeError(f"env_factory must be callable, got {type(env_factory).__name__}")
        if isinstance(rollouts, bool) or not isinstance(rollouts, int) or rollouts < 1:
            raise ValueError(f"rollouts must be a positive int, got {rollouts!r}")
        self.env_factory = env_factory
        self.rollout_agent = as_agent(rollout_agent)
        self.rollouts = rollouts
        self.seed = seed
        self.name = name
        self._envs: list[gym.Env[Any, Any]] = []

    def __repr__(self) -> str:
        return (
            f"MonteCarloCritic(name={self.name!r}, rollouts={self.rollouts}, "
            f"agent={self.rollout_agent.name!r})"
        )

    # ------------------------------------------------------------------ protocol
    def score(self, groups: Sequence[Sequence[CriticItem]]) -> list[list[CriticScore]]:
        """Score every candidate; all rollouts of all groups are played in lockstep.

        Raises:
            ValueError: a candidate has no ``example`` (rollouts need the question).
            TypeError: ``env_factory`` builds something other than a (wrapped)
                :class:`~raggym_env.env.RAGEnv`, or its wrappers drop the observation keys
                the replay reads.
        """
        verdicts: list[list[CriticScore | None]] = [[None] * len(group) for group in groups]
        jobs: dict[tuple[int, str], _Job] = {}
        for g, group in enumerate(groups):
            for j, item in enumerate(group):
                example = item.example
                if example is None:
                    raise ValueError(
                        f"MonteCarloCritic replays the question: group {g} candidate {j} has "
                        "no example (pass CriticItem(example=...))"
                    )
                if isinstance(item.action, Search):
                    key = (g, item.action.query)
                    jobs.setdefault(key, _Job(item, item.action, example)).members.append(j)
                else:
                    verdicts[g][j] = _direct_verdict(item.action, example)
        for (g, _query), job, verdict in zip(
            jobs, jobs.values(), self._play(list(jobs.values())), strict=True
        ):
            for j in job.members:
                verdicts[g][j] = verdict
        out: list[list[CriticScore]] = []
        for row in verdicts:
            if any(v is None for v in row):  # every slot is filled above
                raise RuntimeError("MonteCarloCritic left a candidate unscored")
            out.append([v for v in row if v is not None])
        return out

    # ------------------------------------------------------------------ lockstep play
    def _play(self, jobs: Sequence[_Job]) -> list[CriticScore]:
        """Play ``rollouts`` episodes per job in lockstep and turn them into verdicts."""
        runs = [
            _Rollout(index, self._env(index * self.rollouts + r))
            for index in range(len(jobs))
            for r in range(self.rollouts)
        ]
        for run in runs:
            self._reset(run, jobs[run.job])
        depth = max((len(job.item.observation["history"]) for job in jobs), default=0)
        for d in range(depth):
            replaying = [
                run
                for run in runs
                if not run.done and len(jobs[run.job].item.observation["history"]) > d
            ]
            self._replay_step(replaying, jobs, d)
        for run in runs:
            if not run.done:
                self._match_budget(run, jobs[run.job])
        live = [run for run in runs if not run.done]
        for run in live:
            self._commit_candidate(run, jobs[run.job])
        self._step(live, [jobs[run.job].action for run in live])
        while live := [run for run in runs if not run.done]:
            acting: list[tuple[_Rollout, Decision]] = []
            for run, decision in zip(live, self._decide(live), strict=True):
                if isinstance(decision, str):
                    run.error = decision
                elif decision.error is not None:
                    run.error = decision.error
                else:
                    acting.append((run, decision))
            self._step([run for run, _ in acting], [d.env_action() for _, d in acting])
        per_job = self.rollouts
        return [
            self._verdict(job, runs[i * per_job : (i + 1) * per_job]) for i, job in enumerate(jobs)
        ]

    def _env(self, index: int) -> gym.Env[Any, Any]:
        """The ``index``-th pooled environment (built on first use, reused across calls)."""
        while len(self._envs) <= index:
            env = self.env_factory()
            rag_env_of(env)  # fails early on anything but a (wrapped) RAGEnv
            self._envs.append(env)
        return self._envs[index]

    def _reset(self, run: _Rollout, job: _Job) -> None:
        """Start the rollout's episode on the job's question; a failure is recorded."""
        try:
            observation, _ = run.env.reset(seed=self.seed, options={"example": job.example})
            memory = self.rollout_agent.start(job.example)
        except Exception as exc:  # noqa: BLE001 - one rollout's failure is recorded as data
            run.error = f"could not start the rollout: {_error_text(exc)}"
            return
        _check_observation(run.env, observation)
        run.observation, run.memory = observation, memory

    def _replay_step(self, runs: Sequence[_Rollout], jobs: Sequence[_Job], d: int) -> None:
        """Replay history search ``d`` of every run and check it retrieves the same ids."""
        entries = [jobs[run.job].item.observation["history"][d] for run in runs]
        infos = self._step(runs, [Search(str(entry["query"])) for entry in entries])
        for run, entry, info in zip(runs, entries, infos, strict=True):
            if run.done:  # the step failed, or the budget ran out during the replay
                if run.error is None:
                    run.outcome = None
                    run.error = (
                        f"the history does not replay: the environment's budget ended at "
                        f"search {d + 1} of {len(jobs[run.job].item.observation['history'])}"
                    )
                continue
            expected = [str(doc["id"]) for doc in entry["documents"]]
            got = [str(doc["id"]) for doc in (info or {}).get("retrieved", [])]
            failure = (info or {}).get("retrieval_error")
            if failure or got != expected:
                run.error = (
                    f"the history does not replay: search {d + 1} {entry['query']!r} "
                    f"retrieved {got} now but {expected} in the episode"
                    + (f" ({failure})" if failure else "")
                )
                continue
            run.state()[1].notes.append({"scripted": "search", "text": str(entry["query"])})

    def _match_budget(self, run: _Rollout, job: _Job) -> None:
        """Spend invalid steps until the steps left equal the step's; record a shortfall."""
        want = int(job.item.observation["steps_remaining"])
        have = int(run.state()[0]["steps_remaining"])
        if have < want or want < 1:
            run.error = (
                "the environment's step budget cannot rebuild the state: "
                f"{have} steps left after the replay, {want} in the episode"
            )
            return
        for _ in range(have - want):
            self._step([run], [INVALID_ACTION_TEXT])

    def _commit_candidate(self, run: _Rollout, job: _Job) -> None:
        """Keep the candidate's text in memory when the rollout agent reads the same action."""
        observation, memory = run.state()
        agent = self.rollout_agent
        if isinstance(agent, LLMAgent):
            parsed = agent.parse(job.item.text, observation, memory)
            if parsed.action == job.action:
                agent.commit(memory, observation, Proposal(job.item.text, parsed))
                return
        memory.notes.append({"scripted": "search", "text": job.action.query})

    def _decide(self, runs: Sequence[_Rollout]) -> list[Decision | str]:
        """One agent batch for every live rollout (a raising one fails alone)."""
        states = [run.state() for run in runs]
        return decide_each(self.rollout_agent, [o for o, _ in states], [m for _, m in states])

    def _step(
        self, runs: Sequence[_Rollout], actions: Sequence[Action | str]
    ) -> list[dict[str, Any] | None]:
        """Step every run after one batched retrieval; a finished run gets its outcome."""
        infos: list[dict[str, Any] | None] = []
        for run, result in zip(runs, step_each([run.env for run in runs], actions), strict=True):
            if isinstance(result, str):
                run.error = result
                infos.append(None)
                continue
            observation, _, terminated, truncated, info = result
            run.observation = observation
            if terminated or truncated:
                example = rag_env_of(run.env).current_example
                metric = outcome_metric(example) if example is not None else "f1"
                run.outcome = float(info["metrics"][metric])
                run.answer = info.get("answer")
            infos.append(info)
        return infos

    def _verdict(self, job: _Job, runs: Sequence[_Rollout]) -> CriticScore:
        """The mean outcome of a job's rollouts, or the failure of any of them."""
        metric = outcome_metric(job.example)
        output = json.dumps(
            {
                "metric": metric,
                "outcomes": [run.outcome for run in runs],
                "answers": [run.answer for run in runs],
            },
            ensure_ascii=False,
        )
        failed = [run.error for run in runs if run.error is not None]
        if failed:
            return CriticScore(
                None,
                output=output,
                error=f"{len(failed)} of {len(runs)} rollouts failed: {failed[0]}",
            )
        outcomes = [run.outcome for run in runs if run.outcome is not None]
        return CriticScore(sum(outcomes) / len(outcomes), output=output)


_REPLAY_KEYS = ("history", "steps_remaining")


def _check_observation(env: gym.Env[Any, Any], observation: object) -> None:
    """Refuse an environment whose wrappers hide what the replay reads, naming them."""
    missing = (
        list(_REPLAY_KEYS)
        if not isinstance(observation, Mapping)
        else [key for key in _REPLAY_KEYS if key not in observation]
    )
    if missing:
        raise TypeError(
            f"MonteCarloCritic reads {', '.join(repr(key) for key in _REPLAY_KEYS)} from "
            f"observations, but {env} returns one without "
            f"{', '.join(repr(key) for key in missing)}; keep the environment's "
            "observation keys in your ObservationWrapper (adding keys is fine) or give the "
            "scorer an env_factory without that wrapper"
        )


def _direct_verdict(action: Action | None, example: QAExample) -> CriticScore:
    """The score of a candidate needing no rollout: an answer's outcome, or unparsed."""
    if isinstance(action, Answer):
        metric = outcome_metric(example)
        scores = score_answer(
            action.text, example.answers, options=example.options,
            answer_letter=example.answer_letter,
        )  # fmt: skip
        output = json.dumps(
            {"metric": metric, "outcomes": [scores[metric]], "answers": [action.text]}
        )
        return CriticScore(float(scores[metric]), output=output)
    return CriticScore(UNPARSED_SCORE, output="unparsed action")


def make_collection_critic(
    spec: str,
    *,
    llm: LLM | None = None,
    env_factory: EnvFactoryLike | None = None,
    retriever: Any = None,
    k: int = 5,
    rollout_agent: Agent | ScriptedPolicy | None = None,
    protocol: str = DEFAULT_PROTOCOL,
    **judge_options: Any,
) -> Critic:
    """Build a collection critic from ``gold``, ``judge`` or ``mc`` / ``mc:N``.

    Args:
        spec: ``gold`` (gold-evidence critic, needs ``retriever`` and ``k``), ``judge``
            (LLM judge, needs ``llm``), ``mc`` or ``mc:N`` (Monte-Carlo critic with ``N``
            rollouts per candidate, default 4; needs ``env_factory`` and ``rollout_agent``).
        llm: the judge's backend.
        env_factory: builds the rollout environments (share the collecting retriever).
        retriever: the environment's retriever, for ``gold``.
        k: documents per search, for ``gold`` (the environment's ``k``).
        rollout_agent: the agent playing Monte-Carlo rollouts.
        protocol: under ``"rag-gym"`` the ``judge`` is the protocol's annotator.
        **judge_options: more arguments of the judge (e.g. ``official_prompts``).

    Raises:
        ValueError: an unknown spec, a bad rollout count or a missing ingredient.
    """
    if not isinstance(spec, str):
        raise TypeError(f"a critic spec must be a string, got {type(spec).__name__}")
    kind, colon, rest = spec.strip().partition(":")
    if kind in ("gold", "judge") and not colon:
        extra = judge_options if kind == "judge" else {}
        critic: Critic = make_critic(
            kind, llm=llm, retriever=retriever, k=k, protocol=protocol, **extra
        )
        return critic
    if kind == "mc":
        rollouts = DEFAULT_ROLLOUTS
        if colon:
            if not rest.isdigit() or int(rest) < 1:
                raise ValueError(f"bad critic spec {spec!r}: mc:N needs a positive rollout count")
            rollouts = int(rest)
        if env_factory is None or rollout_agent is None:
            raise ValueError(
                "the 'mc' critic needs env_factory=... and rollout_agent=... to play rollouts"
            )
        return MonteCarloCritic(env_factory, rollout_agent, rollouts=rollouts)
    raise ValueError(f"bad critic spec {spec!r}: expected gold, judge, mc or mc:N")
