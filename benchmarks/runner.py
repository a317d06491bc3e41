"""Run a benchmark suite: every (dataset, agent) cell through the batched runner.

Episodes are appended to ``OUT/episodes/<dataset>/<agent>.jsonl`` as they end (names
escaped so that no two cells share a file), so a rerun of the same suite into the same
folder resumes and plays only what is missing. ``OUT/run.json`` records each cell's
fingerprint (every setting that changes outcomes, see
:func:`raggym_env.runcard.run_fingerprint`) and its wall time summed over resumes: a rerun
with other settings is refused (naming each change) unless ``fresh`` moves the old
episodes aside. ``OUT/run.lock`` keeps a second process from writing the same folder.
Each dataset's retrieval index is kept under ``OUT/indexes/<dataset>`` and reloaded. The
result is a :class:`~raggym.benchmarks.leaderboard.Leaderboard` (one cell result per cell plus
the suite and the run card), written as Markdown, CSV, JSON, a PNG chart and an HTML report.

With a judge LLM (the suite's ``judge`` or ``judge=``), every cell's final episodes are
scored by :class:`raggym.agents.judge.RAGJudge`; the results are kept in
``OUT/judge/<dataset>/<agent>.json`` and reused on a rerun for episodes that are unchanged
and were judged without failure, so a resume judges only what is new or failed before.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from raggym.agents.base import Agent
from raggym.agents.cli import protocol_settings
from raggym.agents.judge import RAGJudge
from raggym.agents.registry import AGENTS, make_agent, make_critic, make_llm
from raggym.agents.rollout import BatchedRunner
from raggym.benchmarks.aggregate import aggregate_cell
from raggym.benchmarks.html_report import document_texts
from raggym.benchmarks.leaderboard import CellResult, Leaderboard
from raggym.benchmarks.suite import AgentConfig, DatasetConfig, Suite
from raggym_env.env import EnvFactory
from raggym_env.episode import EpisodeRecord
from raggym_env.progress import progress_enabled
from raggym_env.protocols import DEFAULT_PROTOCOL
from raggym_env.runcard import env_fingerprint, make_run_card, run_fingerprint
from raggym_env.runfiles import (
    FingerprintMismatchError,
    RunLock,
    check_fingerprint,
    move_aside,
    read_run_json,
    write_run_json,
)
from raggym_env.store import EpisodeStore, ReadStats, final_episodes, read_episodes

__all__ = ["build_agent", "episodes_path", "judge_path", "run_suite", "saved_judgements"]

RUN_FILE = "run.json"
LOCK_FILE = "run.lock"
FRESH_HINT = (
    "pass --fresh to move the old episodes aside and start again, or write to another --out"
)

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


def build_agent(
    spec: AgentConfig,
    llm: Any,
    factory: EnvFactory,
    seed: int | None,
    *,
    protocol: str = DEFAULT_PROTOCOL,
    summarizer: Any = None,
) -> Agent:
    """Build a suite's agent (its critic reads the dataset's retriever when it is ``gold``).

    ``protocol`` picks the designs the names build (and the ``judge`` critic);
    ``summarizer`` is a separate backend for Search-o1's and Re2Search's condensation.
    """
    critic = None
    if spec.critic:
        env = factory()
        critic = make_critic(
            spec.critic, llm=llm, retriever=env.retriever, k=env.k, protocol=protocol
        )
    options = dict(spec.options)
    base_name = spec.agent.removesuffix("++")
    if base_name in AGENTS and seed is not None:
        options.setdefault("seed", seed)
    agent = make_agent(
        spec.agent, llm, critic=critic, n=spec.n or 10,
        options=options if base_name in AGENTS or options else None,
        protocol=protocol, summarizer=summarizer,
    )  # fmt: skip
    agent.name = spec.name
    return agent


def _file_name(name: str) -> str:
    """``name`` as one readable path component; distinct names give distinct components.

    Letters, digits and ``-_.+@`` stay; every other character (and a leading dot) becomes
    ``%XX`` of its UTF-8 bytes, so the mapping is one-to-one.
    """
    out = []
    for i, char in enumerate(name):
        if (char.isascii() and char.isalnum()) or (char in "-_+@" or (char == "." and i)):
            out.append(char)
        else:
            out.append("".join(f"%{byte:02X}" for byte in char.encode("utf-8")))
    return "".join(out) or "%"


def episodes_path(out_dir: str | Path, dataset: str, agent: str) -> Path:
    """A cell's episode file: ``OUT/episodes/<dataset>/<agent>.jsonl`` (names escaped)."""
    return Path(out_dir) / "episodes" / _file_name(dataset) / f"{_file_name(agent)}.jsonl"


def judge_path(out_dir: str | Path, dataset: str, agent: str) -> Path:
    """A cell's judge results: ``OUT/judge/<dataset>/<agent>.json`` (names escaped)."""
    return Path(out_dir) / "judge" / _file_name(dataset) / f"{_file_name(agent)}.json"


def run_suite(
    suite: Suite,
    out_dir: str | Path,
    *,
    llm: str | None = None,
    judge: str | None = None,
    limit: int | None = None,
    progress: Progress | None = print,
    reports: bool = True,
    fresh: bool = False,
    retry_failed: bool = False,
    show_progress: bool | None = None,
) -> tuple[Leaderboard, dict[tuple[str, str], list[EpisodeRecord]]]:
    """Run (or resume) every cell of ``suite`` into ``out_dir``; return leaderboard and episodes.

    Args:
        suite: the suite.
        out_dir: the run folder (episodes, indexes, reports, ``run.json``, ``run.lock``).
        llm: an LLM spec overriding the suite's ``[llm] spec``.
        judge: a judge LLM spec overriding the suite's ``judge`` (adds the judge metrics).
        limit: cap each dataset's selection (``last:1000`` -> ``last:LIMIT``).
        progress: where progress lines go (``None``: quiet).
        reports: write the Markdown/CSV/JSON/PNG/HTML reports.
        fresh: move the folder's old episodes and ``run.json`` aside first.
        retry_failed: play again the questions whose recorded episode failed.
        show_progress: a bar per cell on stderr (``None``: as :mod:`raggym_env.progress`
            decides); while it shows, the periodic progress lines are left out (the
            per-cell summary lines still go to ``progress``).

    Raises:
        ValueError: the suite's files are missing, or LLM agents have no backend.
        raggym_env.runfiles.FingerprintMismatchError: the folder holds episodes played with
            other settings (each change is named), or by an older raggym.
        raggym_env.runfiles.RunLockedError: another process writes the folder.
    """
    say = progress or (lambda _line: None)
    out = Path(out_dir)
    suite = suite.with_overrides(llm=llm, limit=limit, judge=judge)
    problems = suite.check_files()
    if problems:
        raise ValueError(f"suite {suite.name!r} cannot run:\n  " + "\n  ".join(problems))
    if suite.needs_llm and not suite.llm.spec:
        needing = [a.name for a in suite.agents if a.agent.removesuffix("++") in AGENTS]
        raise ValueError(
            f"suite {suite.name!r} has LLM agents {needing}: pass --llm openai:URL:MODEL "
            "(or hf:PATH, vllm:MODEL), or set spec in the suite's [llm] table"
        )
    with RunLock(out / LOCK_FILE, target=f"run folder {out}"):
        if fresh:
            moved = move_aside(out / "episodes", out / RUN_FILE)
            if moved:
                say("moved the old results aside: " + ", ".join(str(p) for p in moved))
        run_file = _open_run_file(out)
        backend = summarizer = None
        if suite.needs_llm and suite.llm.spec:
            backend = make_llm(suite.llm.spec, **suite.llm.options)
        if suite.needs_llm and suite.summarizer.spec:
            summarizer = make_llm(suite.summarizer.spec, **suite.summarizer.options)
        rag_judge = None
        if suite.judge.spec:
            rag_judge = RAGJudge(make_llm(suite.judge.spec, **suite.judge.options))
        card = make_run_card(
            config={"suite": suite.to_dict(), "llm": suite.llm.spec},
            seeds=list(suite.seeds),
        )
        cells: list[CellResult] = []
        episodes: dict[tuple[str, str], list[EpisodeRecord]] = {}
        texts: dict[str, dict[str, str]] = {}
        for dataset in suite.datasets:
            tick = time.perf_counter()
            factory = _env_factory(suite, dataset, out)
            template = factory()
            selected = [ex.id for ex in factory.examples]
            say(
                f"{dataset.name}: {len(selected)} questions, {len(template.corpus):,} "
                f"documents, {template.retriever_name} ready in "
                f"{time.perf_counter() - tick:.1f}s"
            )
            env_print = env_fingerprint(
                template, retriever_options=factory.kwargs.get("retriever_options")
            )
            plans = []
            for spec in suite.agents:
                for seed in suite.seeds:
                    label = spec.name if len(suite.seeds) == 1 else f"{spec.name}@seed{seed}"
                    spec_for_seed = dataclasses.replace(spec, name=label)
                    agent = build_agent(
                        spec_for_seed, backend, factory, seed,
                        protocol=suite.protocol, summarizer=summarizer,
                    )  # fmt: skip
                    fingerprint = run_fingerprint(
                        env_print, agent=agent.describe(), llm=suite.llm.spec,
                        llm_options=suite.llm.options, seed=seed, agent_spec=spec.agent,
                        agent_options=dict(spec.options), critic=spec.critic, n=spec.n,
                        **protocol_settings(
                            protocol=suite.protocol, summarizer_llm=suite.summarizer.spec
                        ),
                    )  # fmt: skip
                    plans.append((spec_for_seed, agent, seed, fingerprint))
            _check_cells(out, run_file, dataset.name, plans)
            for spec_for_seed, agent, seed, fingerprint in plans:
                result, records = _run_cell(
                    suite, dataset, spec_for_seed, agent, factory, selected, seed, out, card,
                    say, run_file, fingerprint, retry_failed, show_progress,
                    rag_judge, template.corpus,
                )  # fmt: skip
                cells.append(result)
                episodes[(dataset.name, spec_for_seed.name)] = records
                if reports:
                    found = document_texts(records, template.corpus)
                    texts.setdefault(dataset.name, {}).update(found)
        leaderboard = Leaderboard.from_cells(
            cells, suite=suite.to_dict(), run_card=card, llm=suite.llm.spec
        )
        if reports:
            from raggym.benchmarks.report import write_reports

            write_reports(leaderboard, episodes, out, documents=texts)
    return leaderboard, episodes


def _open_run_file(out: Path) -> dict[str, Any]:
    """``OUT/run.json`` (a fresh one for a new folder); refuse a folder of an older raggym."""
    data = read_run_json(out / RUN_FILE)
    if data is None:
        old = sorted(p for p in (out / "episodes").rglob("*.jsonl") if p.stat().st_size)
        if (out / "episodes").is_dir() and old:
            raise FingerprintMismatchError(
                f"run folder {out} holds {len(old)} episode files without a recorded "
                f"configuration (written by an older raggym, e.g. {old[0]}), so they cannot "
                f"be resumed safely; {FRESH_HINT}"
            )
        data = {"version": 1, "cells": {}}
    if not isinstance(data.get("cells"), dict):
        raise FingerprintMismatchError(f"{out / RUN_FILE} has no 'cells' table; {FRESH_HINT}")
    return data


def _check_cells(
    out: Path,
    run_file: dict[str, Any],
    dataset: str,
    plans: list[tuple[AgentConfig, Agent, int, dict[str, Any]]],
) -> None:
    """Refuse (naming every changed setting of every cell) before any cell is played."""
    problems = []
    for spec, _agent, _seed, fingerprint in plans:
        path = episodes_path(out, dataset, spec.name)
        entry = run_file["cells"].get(str(path.relative_to(out)))
        if not path.exists() or not path.stat().st_size:
            continue
        recorded = entry.get("fingerprint") if isinstance(entry, dict) else None
        try:
            check_fingerprint(
                recorded, fingerprint, what=f"cell {dataset} x {spec.name} ({path})",
                fresh_hint="",
            )  # fmt: skip
        except FingerprintMismatchError as exc:
            problems.append(str(exc).strip())
    if problems:
        raise FingerprintMismatchError(
            f"run folder {out} cannot be resumed with these settings:\n"
            + "\n".join(problems)
            + f"\n{FRESH_HINT}"
        )


def _run_cell(
    suite: Suite,
    dataset: DatasetConfig,
    spec: AgentConfig,
    agent: Agent,
    factory: EnvFactory,
    selected: list[str],
    seed: int,
    out: Path,
    card: Mapping[str, Any],
    say: Progress,
    run_file: dict[str, Any],
    fingerprint: dict[str, Any],
    retry_failed: bool,
    show_progress: bool | None = None,
    judge: RAGJudge | None = None,
    corpus: Any = None,
) -> tuple[CellResult, list[EpisodeRecord]]:
    """Play the missing questions of one cell and aggregate all of its episodes."""
    path = episodes_path(out, dataset.name, spec.name)
    key = str(path.relative_to(out))
    entry = run_file["cells"].get(key)
    if not isinstance(entry, dict) or not path.exists():
        entry = {"dataset": dataset.name, "agent": spec.name, "wall_s": 0.0, "played": 0}
    entry["fingerprint"] = fingerprint
    run_file["cells"][key] = entry
    write_run_json(out / RUN_FILE, run_file)
    by_id = {ex.id: ex for ex in factory.examples}
    tick = time.perf_counter()
    todo: list[Any] = []
    played = 0

    def count(record: EpisodeRecord) -> None:
        nonlocal played
        played += 1
        printer(record)

    try:
        with EpisodeStore(path, run_card=card, fsync=False) as store:
            todo = [by_id[i] for i in store.pending(selected, retry_failed=retry_failed)]
            bar = progress_enabled(show_progress)
            printer = _progress_printer(spec.name, len(todo), say if not bar else _quiet)
            if todo:
                runner = BatchedRunner(
                    factory, agent, batch_size=suite.batch_size, store=store, run_card=card,
                    on_episode=count, show_progress=bar,
                )  # fmt: skip
                runner.run(todo, seed=seed, progress_desc=f"{dataset.name} x {spec.name}")
    finally:  # keep the cell's totals across resumes, also when interrupted
        wall = time.perf_counter() - tick
        if played or todo:
            entry["wall_s"] = float(entry.get("wall_s") or 0.0) + wall
            entry["played"] = int(entry.get("played") or 0) + played
            write_run_json(out / RUN_FILE, run_file)
    skipped = ReadStats()
    records = [
        r for r in final_episodes(read_episodes(path, stats=skipped)) if r.example_id in by_id
    ]
    judged = None
    if judge is not None:
        judged = _judge_cell(judge, records, corpus, judge_path(out, dataset.name, spec.name))
    example = factory.examples[0]
    total_wall = float(entry.get("wall_s") or 0.0)
    result = aggregate_cell(
        records, selected, dataset=dataset.name, agent=spec.name, task=dataset.task,
        multiple_choice=example.is_multiple_choice, wall_s=total_wall or None,
        played=int(entry.get("played") or 0), episodes_file=str(path.relative_to(out)),
        judged=judged,
    )  # fmt: skip
    failures = int(result.metrics["failures"] or 0)
    if judged is not None:
        say(
            f"  {spec.name}: judged {len(judged)} episodes with {judge.name if judge else ''}, "
            f"{int(result.metrics['judge_failures'] or 0)} failed judgements"
        )
    say(
        f"  {spec.name}: {len(todo)} played, {len(selected) - len(todo)} resumed, "
        f"{failures} failed, {wall:.1f}s"
        + (f" ({skipped.describe()} in {path.name})" if skipped.count else "")
    )
    return result, records


def _episode_key(record: EpisodeRecord, judge_name: str) -> str:
    """What a judge result depends on: the judge, the question, answer and retrieval."""
    content: list[object] = [judge_name, record.question, record.final_answer, record.error is None]
    content.append([step.retrieved_ids for step in record.steps])
    return hashlib.sha256(json.dumps(content).encode("utf-8")).hexdigest()[:16]


def _saved_judgements(path: Path) -> tuple[str | None, dict[str, Any]]:
    """A judge file's judge name and its entries by question id (empty when unreadable)."""
    try:
        saved = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except (OSError, ValueError):
        saved = {}  # an unreadable file holds no judgement, never a trusted one
    if not isinstance(saved, dict):
        return None, {}
    name, results = saved.get("judge"), saved.get("results")
    return (name if isinstance(name, str) else None), (results if isinstance(results, dict) else {})


def saved_judgements(
    out_dir: str | Path, dataset: str, agent: str, records: Sequence[EpisodeRecord]
) -> dict[str, dict[str, Any]] | None:
    """The judge results a run saved for a cell, for those of ``records`` they were made for.

    A result counts only where its digest matches the episode as recorded now (the same
    judge, question, answer and retrieval), so a stale judgement never scores another
    episode. ``None`` when the run had no judge for the cell.
    """
    path = judge_path(out_dir, dataset, agent)
    if not path.exists():
        return None
    name, entries = _saved_judgements(path)
    if name is None:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for record in records:
        entry = entries.get(record.example_id)
        result = entry.get("result") if isinstance(entry, dict) else None
        if (
            isinstance(entry, dict)
            and isinstance(result, dict)
            and entry.get("digest") == _episode_key(record, name)
        ):
            out[record.example_id] = result
    return out


def _judge_cell(
    judge: RAGJudge, records: list[EpisodeRecord], corpus: Any, path: Path
) -> dict[str, dict[str, Any]]:
    """Judge results by question id: reused from ``path`` where still valid, new ones saved."""
    _, cache = _saved_judgements(path)  # an unreadable cache is judged again, never trusted
    keys = {r.example_id: _episode_key(r, judge.name) for r in records}
    out: dict[str, dict[str, Any]] = {}
    todo = []
    for record in records:
        entry = cache.get(record.example_id)
        result = entry.get("result") if isinstance(entry, dict) else None
        if (
            isinstance(entry, dict)
            and entry.get("digest") == keys[record.example_id]
            and isinstance(result, dict)
            and not result.get("failures")
        ):
            out[record.example_id] = result
        else:
            todo.append(record)
    if todo:
        texts = {}
        if corpus is not None:
            texts = document_texts(todo, corpus, limit=judge.max_doc_chars)
        for record, result in zip(todo, judge.score(todo, texts), strict=True):
            out[record.example_id] = result
        data = {
            "judge": judge.name,
            "results": {i: {"digest": keys[i], "result": r} for i, r in out.items()},
        }
        write_run_json(path, data)
    return out


def _quiet(_line: str) -> None:
    """A progress sink that drops its lines (the bar reports instead)."""


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
