"""``raggym demo``: build BM25 indexes for the bundled benchmarks and run non-LLM policies.

It is the package's out-of-the-box job: no model, no network. For each benchmark it builds
(or reloads) a BM25 index on disk, plays every bundled question with the question-search
heuristic and the gold-evidence oracle, appends each episode to a JSONL file as it ends
(a rerun resumes), and prints retrieval and answer metrics.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from pathlib import Path

import gymnasium as gym

from raggym.agents.baselines import GoldEvidenceOracle, QuestionSearchHeuristic, ScriptedPolicy
from raggym.agents.rollout import run_episode
from raggym_env.env import RAGEnv
from raggym_env.episode import EpisodeRecord
from raggym_env.registration import ENV_IDS
from raggym_env.runcard import make_run_card
from raggym_env.store import EpisodeStore, final_episodes

__all__ = ["demo_command", "run_demo", "summarize"]

TASK_TO_ID = {task: env_id for env_id, task in ENV_IDS.items() if task != "custom"}
POLICIES: dict[str, type[QuestionSearchHeuristic] | type[GoldEvidenceOracle]] = {
    "heuristic": QuestionSearchHeuristic,
    "oracle": GoldEvidenceOracle,
}

COLUMNS = (
    ("task", "{}"),
    ("policy", "{}"),
    ("n", "{}"),
    ("EM", "{:.3f}"),
    ("F1", "{:.3f}"),
    ("cover-EM", "{:.3f}"),
    ("Acc", "{:.3f}"),
    ("R@k(q)", "{:.3f}"),
    ("ev.recall", "{:.3f}"),
    ("all-gold", "{:.3f}"),
    ("searches/q", "{:.2f}"),
)


def demo_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``raggym demo``."""
    parser = sub.add_parser(
        "demo",
        help="run non-LLM policies on the bundled benchmarks and print metrics",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--task",
        action="append",
        choices=sorted(TASK_TO_ID),
        help="benchmark to run (repeatable; default: all four)",
    )
    parser.add_argument(
        "--policy",
        action="append",
        choices=sorted(POLICIES),
        help="policy to run (repeatable; default: both)",
    )
    parser.add_argument("--k", type=int, default=5, help="documents per search (default 5)")
    parser.add_argument("--limit", type=int, help="first N questions of each benchmark")
    parser.add_argument(
        "--out", type=Path, default=Path("runs/demo"), help="episodes and indexes go here"
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    rows = run_demo(
        tasks=args.task or list(TASK_TO_ID),
        policies=args.policy or list(POLICIES),
        k=args.k,
        limit=args.limit,
        out=args.out,
    )
    print()
    print(format_table(rows))
    print(
        "\nR@k(q): gold-evidence recall of a search with the question as the query; "
        "ev.recall / all-gold: recall of gold documents over the whole episode / share of "
        "questions with every gold document found. Bamboogle and MedQA have no gold "
        "evidence and use a placeholder corpus (pass corpus=... for a real one)."
    )
    print(f"episodes: {args.out}/<task>.<policy>.jsonl")
    return 0


def run_demo(
    *,
    tasks: Sequence[str],
    policies: Sequence[str],
    k: int,
    limit: int | None,
    out: Path,
) -> list[dict[str, object]]:
    """Run every (task, policy) pair, resuming from existing episode files; return rows."""
    rows: list[dict[str, object]] = []
    for task in tasks:
        tick = time.perf_counter()
        index_dir = out / "indexes" / task
        reused = (index_dir / "raggym_index.json").exists()
        env = gym.make(
            TASK_TO_ID[task], k=k, limit=limit, retriever_options={"index_dir": index_dir}
        )
        base = env.unwrapped
        if not isinstance(base, RAGEnv):
            raise TypeError(f"{TASK_TO_ID[task]} did not build a RAGEnv")
        print(
            f"{task}: {len(base.examples)} questions, corpus of {len(base.corpus):,} documents, "
            f"BM25 index {'reloaded' if reused else 'built'} in "
            f"{time.perf_counter() - tick:.2f}s ({index_dir})"
        )
        for name in policies:
            policy: ScriptedPolicy = POLICIES[name]()
            card = make_run_card(
                config={"task": task, "policy": name, "k": k, "limit": limit, "retriever": "bm25"},
                corpus_hash=base.corpus.content_hash,
            )
            path = out / f"{task}.{name}.jsonl"
            tick = time.perf_counter()
            with EpisodeStore(path, run_card=card, fsync=False) as store:
                pending = store.pending(ex.id for ex in base.examples)
                for example_id in pending:
                    store.append(run_episode(env, policy, options={"example_id": example_id}))
                ids = {ex.id for ex in base.examples}
                episodes = [r for r in final_episodes(store.read()) if r.example_id in ids]
            print(
                f"  {name}: ran {len(pending)} episodes ({len(ids) - len(pending)} resumed) in "
                f"{time.perf_counter() - tick:.2f}s"
            )
            rows.append({"task": task, "policy": name, **summarize(episodes, len(ids))})
        env.close()
    return rows


def _mean(values: Sequence[float | None], denominator: int) -> float:
    """Mean over ``denominator`` items (missing ones count 0); NaN if no item has a value."""
    present = [v for v in values if v is not None]
    if not present:
        return math.nan
    return sum(present) / denominator


def summarize(episodes: Sequence[EpisodeRecord], selected: int) -> dict[str, float]:
    """Average metrics over the ``selected`` questions; absent or crashed ones count 0."""

    def metric(name: str) -> list[float | None]:
        return [e.metrics.get(name) for e in episodes]

    first_search = [
        next(
            (
                s.evidence_recall
                for s in e.steps
                if s.action == {"type": "search", "text": e.question}
            ),
            None,
        )
        for e in episodes
    ]
    return {
        "n": selected,
        "EM": _mean(metric("em"), selected),
        "F1": _mean(metric("f1"), selected),
        "cover-EM": _mean(metric("cover_em"), selected),
        "Acc": _mean(metric("accuracy"), selected),
        "R@k(q)": _mean(first_search, selected),
        "ev.recall": _mean(metric("evidence_recall"), selected),
        "all-gold": _mean(metric("evidence_complete"), selected),
        "searches/q": _mean([float(e.num_searches) for e in episodes], selected),
    }


def format_table(rows: Sequence[dict[str, object]]) -> str:
    """A Markdown table of the rows (NaN shown as a dash)."""

    def cell(fmt: str, value: object) -> str:
        if isinstance(value, float) and math.isnan(value):
            return "-"
        return fmt.format(value)

    lines = [
        "| " + " | ".join(name for name, _ in COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(cell(fmt, row[name]) for name, fmt in COLUMNS) + " |")
    return "\n".join(lines)
