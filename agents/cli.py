r"""``raggym rollout``: play an agent on a benchmark and append episodes to a JSONL file.

Runs through the batched runner (or Ray workers with ``--workers``), resumes a previous
run of the same file (finished questions are skipped; failed ones too unless
``--retry-failed``), and prints a short summary. With no ``--llm`` only the model-free
agents (``heuristic``, ``oracle``) can run.

The settings that change outcomes (data and selection, corpus and index, retriever and
its options, k, max steps, reward, agent and prompt, LLM and sampling, critic, seed) are
recorded in ``FILE.run.json``; a rerun with other settings is refused, naming each
change: ``--fresh`` moves the old episodes aside, or pick another ``--out``. One process
writes a file at a time (``FILE.lock``).

Exit status: 0 all selected questions played without failure, 1 some failed (the last
line gives the retry command), 2 usage error, 130 interrupted (the same command resumes).

Examples::

    raggym rollout --task hotpotqa --agent heuristic --limit 50
    raggym rollout --task hotpotqa --agent react \\
        --llm openai:http://127.0.0.1:8000/v1:Qwen/Qwen2.5-7B-Instruct --batch-size 64
    raggym rollout --task 2wikimultihopqa --agent re2search++ --critic gold --llm ...
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raggym.agents.base import Agent
from raggym.agents.registry import (
    AGENTS,
    LLM_SPEC_HELP,
    agent_names,
    make_agent,
    make_critic,
    make_llm,
)
from raggym.agents.rollout import BatchedRunner
from raggym_env.cli import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    add_option_argument,
    parse_options,
    retry_command,
)
from raggym_env.env import EnvFactory
from raggym_env.episode import EpisodeRecord
from raggym_env.protocols import DEFAULT_PROTOCOL, PROTOCOLS
from raggym_env.registration import ENV_IDS
from raggym_env.runcard import env_fingerprint, make_run_card, run_fingerprint
from raggym_env.runfiles import claim_episode_file
from raggym_env.store import EpisodeStore, ReadStats, final_episodes

__all__ = [
    "AgentRecipe",
    "add_env_arguments",
    "add_llm_arguments",
    "add_resume_arguments",
    "env_factory_from_args",
    "finish_line",
    "llm_options",
    "rollout_command",
    "summary_line",
]

TASKS = sorted(task for task in ENV_IDS.values() if task != "custom")


def rollout_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``raggym rollout``."""
    parser = sub.add_parser(
        "rollout",
        help="play an agent on a benchmark, appending episodes to a JSONL file (resumable)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_env_arguments(parser)
    parser.add_argument("--agent", required=True, choices=agent_names(), help="agent to play")
    add_llm_arguments(parser)
    parser.add_argument(
        "--protocol",
        default=DEFAULT_PROTOCOL,
        choices=PROTOCOLS,
        help="raggym (default) or rag-gym: the RAG-Gym paper's prompts, formats and judge",
    )
    parser.add_argument(
        "--summarizer-llm",
        help="separate backend (same forms as --llm) for Search-o1's and Re2Search's "
        "summaries; default: the agent's own",
    )
    parser.add_argument(
        "--judge-llm",
        help="separate backend (same forms as --llm) for the judge critic; default: the agent's",
    )
    add_official_prompts_argument(parser)
    parser.add_argument("--temperature", type=float, default=0.0, help="sampling temperature")
    parser.add_argument("--critic", help="for NAME++ agents: gold, judge or rm:PATH")
    parser.add_argument("--n", type=int, default=10, help="candidates per step with a critic")
    parser.add_argument("--batch-size", type=int, default=32, help="episodes live at once")
    parser.add_argument("--workers", type=int, default=0, help="Ray workers (0: in-process)")
    parser.add_argument("--out", type=Path, help="episode file (default runs/rollouts/...)")
    add_resume_arguments(parser)
    parser.set_defaults(func=_run)


def add_resume_arguments(
    parser: argparse.ArgumentParser,
    results: str = "the old episode file and its FILE.run.json",
) -> None:
    """``--retry-failed`` and ``--fresh``, shared by ``rollout``, ``collect`` and ``bench``.

    ``results`` names what ``--fresh`` moves aside, for the help text.
    """
    parser.add_argument(
        "--retry-failed", action="store_true", help="play again the questions that failed"
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help=f"move {results} aside (to NAME.old-TIME) and start again; needed when the "
        "settings changed",
    )


def finish_line(args: argparse.Namespace, failed: int, selected: int) -> tuple[str, int]:
    """The last line of a run and its exit status (:data:`EXIT_FAILED` when any failed)."""
    if failed:
        return (
            f"{failed} of {selected} episodes failed; play them again with: {retry_command(args)}",
            EXIT_FAILED,
        )
    return f"all {selected} episodes played without failure", EXIT_OK


def add_env_arguments(parser: argparse.ArgumentParser) -> None:
    """Environment flags shared by ``rollout`` and ``collect`` (read by env_factory_from_args)."""
    parser.add_argument("--task", required=True, choices=TASKS, help="benchmark")
    parser.add_argument("--data", help="dataset file in its official format (default: bundled)")
    parser.add_argument("--corpus", help="corpus file, folder or store (default: the task's own)")
    parser.add_argument("--limit", type=int, help="first N questions")
    parser.add_argument("--select", help="first:N, last:N or sample:N@SEED")
    parser.add_argument("--retriever", default="bm25", help="bm25, dense, hybrid, remote, ...")
    add_option_argument(parser)
    parser.add_argument("--k", type=int, default=5, help="documents per search (default 5)")
    parser.add_argument("--max-steps", type=int, default=10, help="action budget (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed passed to every reset")


def env_factory_from_args(args: argparse.Namespace) -> EnvFactory:
    """The environments :func:`add_env_arguments`' flags describe."""
    return EnvFactory(
        args.task, data_path=args.data, corpus=args.corpus, limit=args.limit,
        select=args.select, retriever=args.retriever,
        retriever_options=parse_options(args.options), k=args.k, max_steps=args.max_steps,
    )  # fmt: skip


def add_llm_arguments(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
    """The backend flags shared by ``rollout`` and ``collect`` (see :func:`llm_options`)."""
    parser.add_argument("--llm", required=required, help=LLM_SPEC_HELP)
    parser.add_argument(
        "--api-key-env", help="environment variable holding the API key (never logged)"
    )
    parser.add_argument("--concurrency", type=int, default=64, help="HTTP requests in flight")


def add_official_prompts_argument(parser: argparse.ArgumentParser) -> None:
    """``--official-prompts PATH``, shared by ``rollout`` and ``collect``."""
    parser.add_argument(
        "--official-prompts",
        metavar="PATH",
        help="with --protocol rag-gym: read the prompts word for word from this local "
        "checkout of the official RAG-Gym code (parsed at run time, never run)",
    )


def official_options(protocol: str, path: str | None) -> dict[str, str]:
    """The agent or judge option for ``--official-prompts`` (refused outside rag-gym)."""
    if path is None:
        return {}
    if protocol != "rag-gym":
        raise ValueError("--official-prompts needs --protocol rag-gym")
    return {"official_prompts": path}


def protocol_settings(**settings: str | None) -> dict[str, str]:
    """The protocol and extra backends for a run fingerprint, left out at their defaults.

    Defaults are left out so that runs recorded before these settings existed still match.
    """
    return {
        key: value
        for key, value in settings.items()
        if value is not None and not (key == "protocol" and value == DEFAULT_PROTOCOL)
    }


def llm_options(spec: str | None, args: argparse.Namespace) -> dict[str, Any]:
    """Constructor options for the backend ``spec`` from :func:`add_llm_arguments`' flags."""
    options: dict[str, Any] = {}
    if spec and spec.startswith("openai:"):
        options["concurrency"] = args.concurrency
        if args.api_key_env:
            options["api_key_env"] = args.api_key_env
    return options


@dataclass(frozen=True)
class AgentRecipe:
    """A picklable description of the agent to build (in this process or a Ray worker)."""

    agent: str
    llm: str | None = None
    llm_options: dict[str, Any] = field(default_factory=dict)
    critic: str | None = None
    n: int = 10
    temperature: float = 0.0
    env_factory: EnvFactory | None = None
    protocol: str = DEFAULT_PROTOCOL
    summarizer_llm: str | None = None
    judge_llm: str | None = None
    official_prompts: str | None = None

    def _options(self, spec: str) -> dict[str, Any]:
        """The HTTP options (concurrency, key variable) for another OpenAI-compatible spec."""
        return dict(self.llm_options) if spec.startswith("openai:") else {}

    def __call__(self) -> Agent:
        """Build the backends, the critic and the agent."""
        llm = make_llm(self.llm, **self.llm_options) if self.llm else None
        critic = None
        if self.critic:
            env = self.env_factory() if self.env_factory is not None else None
            retriever = env.retriever if env is not None else None
            k = env.k if env is not None else 5
            judge = (
                make_llm(self.judge_llm, **self._options(self.judge_llm)) if self.judge_llm else llm
            )
            official = official_options(self.protocol, self.official_prompts)
            critic = make_critic(
                self.critic, llm=judge, retriever=retriever, k=k, protocol=self.protocol,
                **(official if self.critic == "judge" else {}),
            )  # fmt: skip
        summarizer = None
        if self.summarizer_llm:
            summarizer = make_llm(self.summarizer_llm, **self._options(self.summarizer_llm))
        options = None
        if self.agent.rstrip("+") in AGENTS:
            options = {
                "temperature": self.temperature,
                **official_options(self.protocol, self.official_prompts),
            }
        return make_agent(
            self.agent, llm, critic=critic, n=self.n, options=options,
            protocol=self.protocol, summarizer=summarizer,
        )  # fmt: skip


def _run(args: argparse.Namespace) -> int:
    envs = env_factory_from_args(args)
    template = envs()
    recipe = AgentRecipe(
        args.agent, args.llm, llm_options(args.llm, args), args.critic, args.n,
        args.temperature, envs, args.protocol, args.summarizer_llm, args.judge_llm,
        args.official_prompts,
    )  # fmt: skip
    agent = recipe()
    out = args.out or Path("runs/rollouts") / f"{args.task}.{agent.name}.jsonl"
    card = make_run_card(
        config={
            "task": args.task, "agent": agent.describe(), "llm": args.llm, "k": args.k,
            "max_steps": args.max_steps, "retriever": args.retriever, "limit": args.limit,
            "select": args.select, "critic": args.critic,
        },
        corpus_hash=template.corpus.content_hash,
        seeds=args.seed,
    )  # fmt: skip
    fingerprint = run_fingerprint(
        env_fingerprint(template, retriever_options=envs.kwargs.get("retriever_options")),
        agent=agent.describe(), llm=args.llm, llm_options=recipe.llm_options, seed=args.seed,
        command="rollout", critic=args.critic, n=args.n if args.critic else None,
        temperature=args.temperature, **protocol_settings(
            protocol=args.protocol, summarizer_llm=args.summarizer_llm,
            judge_llm=args.judge_llm, official_prompts=args.official_prompts,
        ),
    )  # fmt: skip
    tick = time.perf_counter()
    by_id = {ex.id: ex for ex in template.examples}
    todo: list[Any] = []
    with (
        claim_episode_file(out, fingerprint, fresh=args.fresh),
        EpisodeStore(out, run_card=card) as store,
    ):
        todo = [by_id[i] for i in store.pending(by_id, retry_failed=args.retry_failed)]
        print(
            f"{args.task}: {len(by_id)} questions, {len(by_id) - len(todo)} already done, "
            f"playing {len(todo)} with {agent.name} -> {out}"
        )
        try:
            if args.workers:
                from raggym.agents.distributed import ray_rollout

                ray_rollout(
                    envs, recipe, todo, num_workers=args.workers, batch_size=args.batch_size,
                    store=store, run_card=card, seed=args.seed,
                )  # fmt: skip
            else:
                runner = BatchedRunner(
                    envs, agent, batch_size=args.batch_size, store=store, run_card=card
                )
                runner.run(todo, seed=args.seed)
        except KeyboardInterrupt:
            saved = sum(1 for r in store.read() if r.example_id in by_id)
            print(
                f"\nraggym rollout: interrupted; {saved} episodes are saved in {out} and the "
                "same command resumes from there"
            )
            return EXIT_INTERRUPTED
        skipped = ReadStats()
        episodes = [r for r in final_episodes(store.read(stats=skipped)) if r.example_id in by_id]
    elapsed = time.perf_counter() - tick
    multiple_choice = template.task.multiple_choice
    print(summary_line(episodes, len(by_id), multiple_choice=multiple_choice))
    if skipped.count:
        print(f"{out}: {skipped.describe()}; those questions count as not done")
    print(f"{len(todo)} episodes in {elapsed:.1f}s ({len(todo) / max(elapsed, 1e-9):.1f}/s)")
    failed = sum(e.error is not None for e in episodes) + len(by_id) - len(episodes)
    line, status = finish_line(args, failed, len(by_id))
    print(line)
    return status


def summary_line(
    episodes: list[EpisodeRecord], selected: int, *, multiple_choice: bool = False
) -> str:
    """The headline metrics over ``selected`` questions (missing ones count 0).

    Open QA: EM, F1 and evidence recall; multiple choice (MedQA): accuracy, which is what
    such a task scores. Then searches per question, invalid steps and failures.
    """

    def mean(name: str) -> float:
        return sum(float(e.metrics.get(name) or 0.0) for e in episodes) / max(selected, 1)

    failures = sum(e.error is not None for e in episodes) + selected - len(episodes)
    invalid = sum(s.action_type == "invalid" for e in episodes for s in e.steps)
    searches = sum(e.num_searches for e in episodes) / max(selected, 1)
    if multiple_choice:
        scores = f"accuracy={mean('accuracy'):.3f}"
    else:
        scores = (
            f"EM={mean('em'):.3f} F1={mean('f1'):.3f} evidence_recall={mean('evidence_recall'):.3f}"
        )
    return (
        f"n={selected} {scores} searches/q={searches:.2f} "
        f"invalid_steps={invalid} failures={failures}"
    )
