"""Run a benchmark suite: every (dataset, agent) cell through the batched runner.

Episodes are appended to ``OUT/episodes/<dataset>.<agent>.jsonl`` as they end, so a
rerun of the same suite into the same folder resumes and plays only what is missing.
Each dataset's retrieval index is kept under ``OUT/indexes/<dataset>`` and reloaded. The
result is a :class:`~raggym.benchmarks.leaderboard.Leaderboard` (one cell result per cell plus
the suite and the run card), written as Markdown, CSV, JSON, a PNG chart and an HTML report.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from raggym.agents.base import Agent
from raggym.agents.registry import AGENTS, make_agent, make_critic, make_llm
from raggym.agents.rollout import BatchedRunner
from raggym.benchmarks.aggregate import aggregate_cell
from raggym.benchmarks.leaderboard import CellResult, Leaderboard
from raggym.benchmarks.suite import AgentConfig, DatasetConfig, Suite
from raggym_env.env import EnvFactory
from raggym_env.episode import EpisodeRecord
from raggym_env.runcard import make_run_card
from raggym_env.store import EpisodeStore, ReadStats, final_episodes, read_episodes

__all__ = ["build_agent", "run_suite"]

Progress = Callable[[str], None]


def _env_factory(suite: Suite, dataset: DatasetConfig, out_dir: Path) -> EnvFactory:
    kwargs = suite.env_kwargs(dataset)
    task = kwargs.pop("task")
    if kwargs.get("select") == "all":
        kwargs["select"] = None
    if kwargs.get("retriever") != "remote":
        options = dict(kwargs.get("retriever_options") or {})
        options.setdefault("index_dir", str(out_dir / "indexes" / dataset.name))
        kwargs["retriever_options"] = options
    return EnvFactory(task, **kwargs)


def build_agent(spec: AgentConfig, llm: Any, factory: EnvFactory, seed: int | None) -> Agent:
    """Build a suite's agent (its critic reads the dataset's retriever when it is ``gold``)."""
    critic = None
    if spec.critic:
        env = factory()
        critic = make_critic(spec.critic, llm=llm, retriever=env.retriever, k=env.k)
    options = dict(spec.options)
    base_name = spec.agent.removesuffix("++")
    if base_name in AGENTS and seed is not None:
        options.setdefault("seed", seed)
    agent = make_agent(
        spec.agent, llm, critic=critic, n=spec.n or 10,
        options=options if base_name in AGENTS or options else None,
    )  # fmt: skip
    agent.name = spec.name
    return agent


def _episodes_path(out_dir: Path, dataset: str, agent: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_.+@" else "_" for c in f"{dataset}.{agent}")
    return out_dir / "episodes" / f"{safe}.jsonl"


def run_suite(
    suite: Suite,
    out_dir: str | Path,
    *,
    llm: str | None = None,
    limit: int | None = None,
    progress: Progress | None = print,
    reports: bool = True,
) -> tuple[Leaderboard, dict[tuple[str, str], list[EpisodeRecord]]]:
    """Run (or resume) every cell of ``suite`` into ``out_dir``; return leaderboard and episodes.

    Args:
        suite: the suite.
        out_dir: the run folder (episodes, indexes, reports).
        llm: an LLM spec overriding the suite's ``[llm] spec``.
        limit: cap each dataset's selection (``last:1000`` -> ``last:LIMIT``).
        progress: where progress lines go (``None``: quiet).
        reports: write the Markdown/CSV/JSON/PNG/HTML reports.

    Raises:
        ValueError: the suite's files are missing, or LLM agents have no backend.
    """
    say = progress or (lambda _line: None)
    out = Path(out_dir)
    suite = suite.with_overrides(llm=llm, limit=limit)
    problems = suite.check_files()
    if problems:
        raise ValueError(f"suite {suite.name!r} cannot run:\n  " + "\n  ".join(problems))
    if suite.needs_llm and not suite.llm.spec:
        needing = [a.name for a in suite.agents if a.agent.removesuffix("++") in AGENTS]
        raise ValueError(
            f"suite {suite.name!r} has LLM agents {needing}: pass --llm openai:URL:MODEL "
            "(or hf:PATH, vllm:MODEL), or set spec in the suite's [llm] table"
        )
    backend = None
    if suite.needs_llm and suite.llm.spec:
        backend = make_llm(suite.llm.spec, **suite.llm.options)
    card = make_run_card(
        config={"suite": suite.to_dict(), "llm": suite.llm.spec},
        seeds=list(suite.seeds),
    )
    cells: list[CellResult] = []
    episodes: dict[tuple[str, str], list[EpisodeRecord]] = {}
    for dataset in suite.datasets:
        tick = time.perf_counter()
        factory = _env_factory(suite, dataset, out)
        template = factory()
        selected = [ex.id for ex in factory.examples]
        say(
            f"{dataset.name}: {len(selected)} questions, {len(template.corpus):,} documents, "
            f"{template.retriever_name} ready in {time.perf_counter() - tick:.1f}s"
        )
        for spec in suite.agents:
            for seed in suite.seeds:
                label = spec.name if len(suite.seeds) == 1 else f"{spec.name}@seed{seed}"
                spec_for_seed = dataclasses.replace(spec, name=label)
                result, records = _run_cell(
                    suite, dataset, spec_for_seed, backend, factory, selected, seed, out, card,
                    say,
                )  # fmt: skip
                cells.append(result)
                episodes[(dataset.name, label)] = records
    leaderboard = Leaderboard.from_cells(
        cells, suite=suite.to_dict(), run_card=card, llm=suite.llm.spec
    )
    if reports:
        from raggym.benchmarks.report import write_reports

        write_reports(leaderboard, episodes, out)
    return leaderboard, episodes


def _run_cell(
    suite: Suite,
    dataset: DatasetConfig,
    spec: AgentConfig,
    backend: Any,
    factory: EnvFactory,
    selected: list[str],
    seed: int,
    out: Path,
    card: Mapping[str, Any],
    say: Progress,
) -> tuple[CellResult, list[EpisodeRecord]]:
    """Play the missing questions of one cell and aggregate all of its episodes."""
    path = _episodes_path(out, dataset.name, spec.name)
    agent = build_agent(spec, backend, factory, seed)
    by_id = {ex.id: ex for ex in factory.examples}
    tick = time.perf_counter()
    with EpisodeStore(path, run_card=card, fsync=False) as store:
        todo = [by_id[i] for i in store.pending(selected)]
        if todo:
            runner = BatchedRunner(
                factory, agent, batch_size=suite.batch_size, store=store, run_card=card,
                on_episode=_progress_printer(spec.name, len(todo), say),
            )  # fmt: skip
            runner.run(todo, seed=seed)
    wall = time.perf_counter() - tick
    skipped = ReadStats()
    records = [
        r for r in final_episodes(read_episodes(path, stats=skipped)) if r.example_id in by_id
    ]
    example = factory.examples[0]
    result = aggregate_cell(
        records, selected, dataset=dataset.name, agent=spec.name, task=dataset.task,
        multiple_choice=example.is_multiple_choice, wall_s=wall if todo else None,
        played=len(todo), episodes_file=str(path.relative_to(out)),
    )  # fmt: skip
    failures = int(result.metrics["failures"] or 0)
    say(
        f"  {spec.name}: {len(todo)} played, {len(selected) - len(todo)} resumed, "
        f"{failures} failed, {wall:.1f}s"
        + (f" ({skipped.describe()} in {path.name})" if skipped.count else "")
    )
    return result, records


def _progress_printer(
    name: str, total: int, say: Progress, every_s: float = 10.0
) -> Callable[[EpisodeRecord], None]:
    """A callback that reports a cell's progress at most every ``every_s`` seconds."""
    done = failed = 0
    start = last = time.perf_counter()

    def report(record: EpisodeRecord) -> None:
        nonlocal done, failed, last
        done += 1
        failed += record.error is not None
        now = time.perf_counter()
        if now - last >= every_s:
            last = now
            rate = done / (now - start)
            left = (total - done) / rate if rate else float("nan")
            say(f"    {name}: {done}/{total} ({failed} failed, {rate:.1f}/s, ~{left:.0f}s left)")

    return report
