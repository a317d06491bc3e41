r"""Process-supervision collection: sample N actions per step, score them, follow the best.

:func:`collect` wraps an LLM agent (the actor) in a
:class:`~raggym.agents.critic_guided.CriticGuidedAgent`: at every step the actor samples ``n``
candidate actions (default 10 at temperature 1.0, as in the RAG-Gym paper), a critic (an
LLM judge, Monte-Carlo rollouts or the gold-evidence critic, see
:mod:`raggym.trainers.critics`) scores all candidates of all live episodes in one call, and the
best is taken. Episodes run through the batched runner and are appended to an
:class:`~raggym_env.store.EpisodeStore` as they end, so an interrupted collection resumes
where it stopped.

Every step records all its candidates with score, critic name (``scorer``), the critic's
raw output and any error, plus the chosen index (``step.extra["chosen"]``). Every episode
is written, marked in ``extra`` before it is written:

* ``kept``: the outcome (token F1, or accuracy for multiple choice) reaches the threshold
  (default 0.75) and the episode did not fail; unkept episodes stay for analysis. Under
  ``protocol="rag-gym"`` the paper's rule applies instead: the outcome is strictly above
  the threshold and the episode ended with an answer the model gave (not a search, not an
  answer forced when the budget ran out), see
  :func:`raggym.trainers.datasets.rag_gym_episode_skipped`;
* ``protocol``: the protocol whose rule set ``kept``;
* ``outcome`` / ``outcome_metric``: the outcome and its metric (``None`` for a failure);
* ``threshold`` and ``scorer``: the rule and the name of the critic that scored;
* ``excluded_steps``: indices of steps where the critic failed on a candidate (score
  ``None`` with an error). Such a step is left out of training data, never read as 0.

Command line::

    raggym collect --task hotpotqa --agent react \
        --llm openai:http://127.0.0.1:8000/v1:Qwen/Qwen2.5-7B-Instruct --critic judge
    raggym collect --task hotpotqa --agent re2search --llm ... --critic mc:4 --limit 500

The settings that change outcomes are recorded in ``FILE.run.json`` (``--protocol`` too,
when it is not the default, so episodes kept under different rules never share a file); a
rerun with other settings is refused, naming each change (``--fresh`` moves the old
episodes aside). Exit status: 0 no failure, 1 some episodes failed (the last line gives
the ``--retry-failed`` command), 2 usage error, 130 interrupted (the same command resumes).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raggym.agents.base import Agent, LLMAgent
from raggym.agents.cli import (
    add_env_arguments,
    add_llm_arguments,
    add_official_prompts_argument,
    add_resume_arguments,
    env_factory_from_args,
    finish_line,
    llm_options,
    official_options,
)
from raggym.agents.critic_guided import CriticGuidedAgent
from raggym.agents.critics.base import Critic
from raggym.agents.registry import AGENTS, make_agent, make_llm
from raggym.agents.rollout import BatchedRunner
from raggym.trainers.critics import make_collection_critic
from raggym.trainers.datasets import rag_gym_episode_skipped, rag_gym_outcome
from raggym_env.cli import EXIT_INTERRUPTED
from raggym_env.env import RAGEnv
from raggym_env.episode import Candidate, EpisodeRecord
from raggym_env.progress import progress_enabled
from raggym_env.protocols import DEFAULT_PROTOCOL, PROTOCOLS, RAG_GYM, check_protocol
from raggym_env.runcard import env_fingerprint, make_run_card, run_fingerprint
from raggym_env.runfiles import claim_episode_file
from raggym_env.store import EpisodeStore, final_episodes
from raggym_env.types import QAExample

__all__ = [
    "CollectConfig",
    "CollectSummary",
    "collect",
    "collect_command",
    "is_critic_failure",
    "mark_episode",
]

Progress = Callable[[str], Any]


@dataclass(frozen=True)
class CollectConfig:
    """Settings of a collection run, with the RAG-Gym paper's defaults.

    Attributes:
        n: candidate actions sampled per step.
        temperature: sampling temperature of the candidates.
        threshold: an episode is kept when its outcome (F1, or accuracy for multiple
            choice) is at least this (strictly above it under ``"rag-gym"``).
        batch_size: episodes live at once (each step samples ``n`` candidates for each).
        seed: seed passed to every environment reset.
        retry_failed: on resume, play again the questions whose episode failed.
        progress_every_s: seconds between progress lines.
        protocol: ``"raggym"`` (default) or ``"rag-gym"``: which rule marks episodes kept.
    """

    n: int = field(default=10, metadata={"help": "candidate actions sampled per step"})
    temperature: float = field(default=1.0, metadata={"help": "candidate sampling temperature"})
    threshold: float = field(
        default=0.75, metadata={"help": "keep episodes whose F1 (MC: accuracy) is at least this"}
    )
    batch_size: int = field(default=16, metadata={"help": "episodes live at once"})
    seed: int | None = field(default=0, metadata={"help": "seed passed to every reset"})
    retry_failed: bool = field(
        default=False, metadata={"help": "on resume, replay questions whose episode failed"}
    )
    progress_every_s: float = field(
        default=10.0, metadata={"help": "seconds between progress lines"}
    )
    protocol: str = field(
        default=DEFAULT_PROTOCOL, metadata={"help": "which rule marks episodes kept"}
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "protocol", check_protocol(self.protocol))
        for name in ("n", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"CollectConfig.{name} must be a positive int, got {value!r}")
        if not 0.0 <= float(self.temperature) <= 5.0:
            raise ValueError(f"CollectConfig.temperature must be in [0, 5], got {self.temperature}")
        if not 0.0 <= float(self.threshold) <= 1.0:
            raise ValueError(f"CollectConfig.threshold must be in [0, 1], got {self.threshold}")
        if float(self.progress_every_s) < 0:
            raise ValueError(
                f"CollectConfig.progress_every_s must be >= 0, got {self.progress_every_s}"
            )


def is_critic_failure(candidate: Candidate) -> bool:
    """Whether the critic failed on a parsed candidate (no score, an error recorded)."""
    return candidate.action is not None and candidate.score is None and candidate.error is not None


def _outcome(record: EpisodeRecord) -> tuple[str, float | None]:
    metric = "accuracy" if record.options is not None else "f1"
    if record.error is not None:
        return metric, None
    value = record.metrics.get(metric)
    return metric, None if value is None else float(value)


def mark_episode(
    record: EpisodeRecord, *, threshold: float, critic: str, protocol: str = DEFAULT_PROTOCOL
) -> EpisodeRecord:
    """A copy of ``record`` with the collection marks in ``extra`` (see the module doc)."""
    protocol = check_protocol(protocol)
    metric, outcome = _outcome(record)
    excluded = [
        step.index for step in record.steps if any(is_critic_failure(c) for c in step.candidates)
    ]
    if protocol == RAG_GYM:
        kept = rag_gym_episode_skipped(record, threshold=threshold) is None
        metric, outcome = "paper_outcome", rag_gym_outcome(record)
    else:
        kept = outcome is not None and outcome >= threshold
    marks = {
        "kept": kept,
        "protocol": protocol,
        "outcome": outcome,
        "outcome_metric": metric,
        "threshold": threshold,
        "scorer": critic,
        "excluded_steps": excluded,
    }
    return dataclasses.replace(record, extra={**record.extra, **marks})


@dataclass(frozen=True)
class CollectSummary:
    """What a collection run produced, over every selected question's final episode.

    Attributes:
        questions: questions selected.
        played: episodes played by this run.
        resumed: questions already done by an earlier run (skipped).
        steps: steps over all episodes.
        candidates: candidates over all steps.
        kept: episodes marked kept.
        critic_failures: parsed candidates the critic could not score (``None`` + error).
        excluded_steps: steps with at least one critic failure (left out of training).
        failed: failed episodes, plus selected questions without any episode.
        wall_s: seconds this run took.
        critic: the critic's name.
        threshold: the keep threshold.
        protocol: the protocol whose rule marked episodes kept.
    """

    questions: int
    played: int
    resumed: int
    steps: int
    candidates: int
    kept: int
    critic_failures: int
    excluded_steps: int
    failed: int
    wall_s: float
    critic: str = ""
    threshold: float = 0.75
    protocol: str = DEFAULT_PROTOCOL

    @classmethod
    def from_records(
        cls,
        records: Iterable[EpisodeRecord],
        *,
        questions: int,
        played: int,
        wall_s: float,
        critic: str,
        threshold: float,
        protocol: str = DEFAULT_PROTOCOL,
    ) -> CollectSummary:
        """Count ``records`` (one final episode per question); unmarked ones are marked."""
        marked = [
            r
            if "kept" in r.extra
            else mark_episode(r, threshold=threshold, critic=critic, protocol=protocol)
            for r in records
        ]
        steps = [step for r in marked for step in r.steps]
        return cls(
            questions=questions,
            played=played,
            resumed=questions - played,
            steps=len(steps),
            candidates=sum(len(s.candidates) for s in steps),
            kept=sum(bool(r.extra["kept"]) for r in marked),
            critic_failures=sum(is_critic_failure(c) for s in steps for c in s.candidates),
            excluded_steps=sum(any(is_critic_failure(c) for c in s.candidates) for s in steps),
            failed=sum(r.error is not None for r in marked) + questions - len(marked),
            wall_s=wall_s,
            critic=critic,
            threshold=threshold,
            protocol=protocol,
        )

    def _rule(self) -> str:
        if self.protocol == RAG_GYM:
            return f"outcome > {self.threshold:g} and a final model answer"
        return f"outcome >= {self.threshold:g}"

    def format(self) -> str:
        """One paragraph: questions, steps, candidates, kept episodes, critic failures."""
        return (
            f"{self.questions} questions ({self.played} played, {self.resumed} resumed, "
            f"{self.failed} failed) scored by {self.critic}: {self.steps} steps, "
            f"{self.candidates} candidates, {self.kept} of {self.questions} episodes kept "
            f"({self._rule()}), {self.critic_failures} critic failures "
            f"excluding {self.excluded_steps} steps from training data; {self.wall_s:.1f}s."
        )


class _Reporter:
    """Prints a progress line at most every ``every_s`` seconds as episodes end."""

    def __init__(self, total: int, say: Progress | None, every_s: float) -> None:
        self.total, self.say, self.every_s = total, say, every_s
        self.done = self.kept = self.failed = self.critic_failures = 0
        self.start = self.last = time.perf_counter()

    def __call__(self, record: EpisodeRecord) -> None:
        self.done += 1
        self.kept += bool(record.extra.get("kept"))
        self.failed += record.error is not None
        self.critic_failures += sum(
            is_critic_failure(c) for step in record.steps for c in step.candidates
        )
        now = time.perf_counter()
        if self.say is None or (now - self.last < self.every_s and self.done < self.total):
            return
        self.last = now
        rate = self.done / max(now - self.start, 1e-9)
        left = (self.total - self.done) / rate if rate else float("nan")
        self.say(
            f"  collect: {self.done}/{self.total} episodes ({self.kept} kept, {self.failed} "
            f"failed, {self.critic_failures} critic failures, {rate:.2f}/s, ~{left:.0f}s left)"
        )


def collect(
    env_factory: Callable[[], RAGEnv],
    actor: LLMAgent,
    critic: Critic,
    examples: Iterable[QAExample],
    *,
    store: EpisodeStore,
    config: CollectConfig | None = None,
    run_card: Mapping[str, Any] | None = None,
    progress: Progress | None = print,
    show_progress: bool | None = None,
) -> CollectSummary:
    """Collect scored, critic-guided episodes for ``examples`` into ``store`` (resumable).

    Questions ``store`` already holds are skipped (failed ones too, unless
    ``config.retry_failed``). Each finished episode is marked (see the module docstring)
    and appended the moment it ends.

    Args:
        env_factory: builds the environments (copies sharing one retriever, e.g. an
            :class:`~raggym_env.env.EnvFactory`).
        actor: the LLM agent proposing candidates.
        critic: scores candidates (built by
            :func:`raggym.trainers.critics.make_collection_critic`).
        examples: the questions.
        store: where episodes are appended (and read on resume).
        config: sampling, keep threshold, batching (default :class:`CollectConfig`).
        run_card: provenance attached to records (else the store's run card is used).
        progress: receives a start line and periodic progress lines (``None``: silent).
        show_progress: a bar of finished episodes on stderr (``None``: as
            :mod:`raggym_env.progress` decides); while it shows, the periodic lines are
            left out.

    Returns:
        The :class:`CollectSummary` over the final episode of every selected question.

    Raises:
        TypeError: ``actor`` is not an LLM agent, ``critic`` has no ``score`` method or an
            example is not a ``QAExample``.
    """
    config = config or CollectConfig()
    agent = CriticGuidedAgent(actor, critic, n=config.n, temperature=config.temperature)
    critic_name = str(getattr(critic, "name", type(critic).__name__))
    selected: dict[str, QAExample] = {}
    for example in examples:
        if not isinstance(example, QAExample):
            raise TypeError(f"examples must be QAExample objects, got {type(example).__name__}")
        selected.setdefault(example.id, example)
    todo = [selected[i] for i in store.pending(selected, retry_failed=config.retry_failed)]
    if progress is not None:
        progress(
            f"collect: {len(selected)} questions, {len(selected) - len(todo)} already done, "
            f"playing {len(todo)} with {agent.name} (n={config.n}, "
            f"temperature={config.temperature:g}), scored by {critic_name} -> {store.path}"
        )
    bar = progress_enabled(show_progress)
    reporter = _Reporter(len(todo), None if bar else progress, config.progress_every_s)

    def write(record: EpisodeRecord) -> None:
        marked = mark_episode(
            record, threshold=config.threshold, critic=critic_name, protocol=config.protocol
        )
        store.append(marked)
        reporter(marked)

    tick = time.perf_counter()
    runner = BatchedRunner(
        env_factory, agent, batch_size=config.batch_size, run_card=run_card, on_episode=write,
        show_progress=bar,
    )  # fmt: skip
    runner.run(todo, seed=config.seed, progress_desc="collect")
    wall = time.perf_counter() - tick
    records = [r for r in final_episodes(store.read()) if r.example_id in selected]
    return CollectSummary.from_records(
        records, questions=len(selected), played=len(todo), wall_s=wall,
        critic=critic_name, threshold=config.threshold, protocol=config.protocol,
    )  # fmt: skip


# ---------------------------------------------------------------------------------- CLI
def collect_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``raggym collect``."""
    defaults = CollectConfig()
    parser = sub.add_parser(
        "collect",
        help="collect process-supervision episodes: N scored candidates per step (resumable)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_env_arguments(parser)
    parser.add_argument(
        "--agent", required=True, choices=sorted(AGENTS), help="the LLM agent proposing actions"
    )
    add_llm_arguments(parser, required=True)
    parser.add_argument(
        "--critic", default="gold", help="gold (default), judge, mc or mc:N (N rollouts)"
    )
    parser.add_argument("--judge-llm", help="a separate backend for the judge (default: --llm)")
    parser.add_argument(
        "--summarizer-llm",
        help="a separate backend for Search-o1's and Re2Search's summaries (default: --llm)",
    )
    add_official_prompts_argument(parser)
    parser.add_argument("--n", type=int, default=defaults.n, help="candidates per step")
    parser.add_argument(
        "--temperature", type=float, default=defaults.temperature,
        help="sampling temperature of candidates and Monte-Carlo rollouts",
    )  # fmt: skip
    parser.add_argument(
        "--threshold", type=float, default=defaults.threshold,
        help="keep episodes whose F1 (multiple choice: accuracy) is at least this",
    )  # fmt: skip
    parser.add_argument(
        "--batch-size", type=int, default=defaults.batch_size, help="episodes live at once"
    )
    parser.add_argument(
        "--protocol", default=defaults.protocol, choices=PROTOCOLS,
        help="which rule marks episodes kept: raggym (outcome >= threshold) or rag-gym "
        "(outcome > threshold and the episode ended with a model answer)",
    )  # fmt: skip
    add_resume_arguments(parser)
    parser.add_argument(
        "--out", type=Path, help="episode file (default runs/collect/TASK.AGENT.CRITIC.jsonl)"
    )
    parser.set_defaults(func=_run)


def _llm_agent(
    name: str,
    llm: Any,
    temperature: float | None = None,
    *,
    protocol: str = DEFAULT_PROTOCOL,
    summarizer: Any = None,
    official: Mapping[str, str] | None = None,
) -> LLMAgent:
    options: dict[str, Any] = {"temperature": temperature} if temperature is not None else {}
    options.update(official or {})
    agent: Agent = make_agent(
        name, llm, options=options or None, protocol=protocol, summarizer=summarizer
    )
    if not isinstance(agent, LLMAgent):
        raise ValueError(f"agent {name!r} is not an LLM agent; collection needs one")
    return agent


def _run(args: argparse.Namespace) -> int:
    config = CollectConfig(
        n=args.n, temperature=args.temperature, threshold=args.threshold,
        batch_size=args.batch_size, seed=args.seed, retry_failed=args.retry_failed,
        protocol=args.protocol,
    )  # fmt: skip
    envs = env_factory_from_args(args)
    template = envs()
    llm = make_llm(args.llm, **llm_options(args.llm, args))
    judge_llm = (
        make_llm(args.judge_llm, **llm_options(args.judge_llm, args)) if args.judge_llm else llm
    )
    summarizer = (
        make_llm(args.summarizer_llm, **llm_options(args.summarizer_llm, args))
        if args.summarizer_llm
        else None
    )
    protocol = config.protocol
    official = official_options(protocol, args.official_prompts)
    actor = _llm_agent(args.agent, llm, protocol=protocol, summarizer=summarizer, official=official)
    rollout_agent = _llm_agent(
        args.agent, llm, args.temperature, protocol=protocol, summarizer=summarizer,
        official=official,
    )  # fmt: skip
    critic = make_collection_critic(
        args.critic, llm=judge_llm, env_factory=envs, retriever=template.retriever,
        k=template.k, rollout_agent=rollout_agent, protocol=protocol, **official,
    )  # fmt: skip
    slug = args.critic.strip().replace(":", "")
    out = args.out or Path("runs/collect") / f"{args.task}.{args.agent}.{slug}.jsonl"
    card = make_run_card(
        config={
            "command": "collect", "task": args.task, "agent": actor.describe(), "llm": args.llm,
            "judge_llm": args.judge_llm, "summarizer_llm": args.summarizer_llm,
            "critic": args.critic, "n": config.n,
            "temperature": config.temperature, "threshold": config.threshold, "k": args.k,
            "max_steps": args.max_steps, "retriever": args.retriever, "limit": args.limit,
            "select": args.select, "protocol": config.protocol,
        },
        corpus_hash=template.corpus.content_hash,
        seeds=args.seed,
    )  # fmt: skip
    fingerprint = run_fingerprint(
        env_fingerprint(template, retriever_options=envs.kwargs.get("retriever_options")),
        agent=actor.describe(), llm=args.llm, llm_options=llm_options(args.llm, args),
        seed=args.seed, command="collect", critic=args.critic,
        judge_llm=args.judge_llm,
        n=config.n, temperature=config.temperature, threshold=config.threshold,
        **({"protocol": config.protocol} if config.protocol != DEFAULT_PROTOCOL else {}),
        **({"summarizer_llm": args.summarizer_llm} if args.summarizer_llm else {}),
        **({"official_prompts": args.official_prompts} if args.official_prompts else {}),
    )  # fmt: skip
    with (
        claim_episode_file(out, fingerprint, fresh=args.fresh),
        EpisodeStore(out, run_card=card) as store,
    ):
        try:
            summary = collect(envs, actor, critic, template.examples, store=store, config=config)
        except KeyboardInterrupt:
            print(
                f"\nraggym collect: interrupted; finished episodes are saved in {out} and "
                "the same command resumes from there"
            )
            return EXIT_INTERRUPTED
    print(summary.format())
    print(f"episodes: {out}")
    line, status = finish_line(args, summary.failed, summary.questions)
    print(line)
    return status
