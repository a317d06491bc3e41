"""Rollout throughput: lockstep batches against an LLM server, and per-step overhead.

Usage::

    python perf/rollout_speed.py [--latency-ms 50] [--concurrency 1 8 32 64]
                                       [--episodes 256] [--quick]

A fake OpenAI-compatible server runs in its own process and answers every request after a
fixed delay (``--latency-ms``), playing a three-step ReAct script (search, search, finish).
The ReAct agent talks to it through
:class:`~raggym.agents.llm.openai_compat.OpenAICompatibleLLM` with BM25 over the bundled
HotpotQA corpus. Concurrency 1 is the sequential baseline
(:func:`~raggym.agents.rollout.rollout`, one episode after another); higher levels run
:class:`~raggym.agents.rollout.BatchedRunner` with that many live episodes, i.e. one HTTP
batch of that size per step. Every level runs in this one invocation and is reported as a
ratio to the sequential throughput.

The second table is the cost of the package itself: env + agent (prompt rendering,
parsing, batched BM25, records) per step in microseconds, with a zero-latency in-process
mock backend, sequential and batched.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from raggym.agents.llm.openai_compat import OpenAICompatibleLLM
from raggym.agents.react import ReActAgent
from raggym.agents.rollout import BatchedRunner, rollout
from raggym.testing.llms import MockLLM
from raggym_env.env import EnvFactory
from raggym_env.episode import EpisodeRecord
from raggym_env.types import QAExample

__all__ = ["main", "react_script"]


def react_script(messages: Sequence[Mapping[str, Any]], sample_index: int = 0) -> str:
    """The fake model: search twice (the question, then a follow-up), then finish."""
    prompt = str(messages[-1]["content"])
    question = prompt.strip().splitlines()[0].removeprefix("Question:").strip()
    searches = prompt.count("Search[")
    if searches == 0:
        return f"Thought: I should look this up.\nAction: Search[{question}]"
    if searches == 1:
        return f"Thought: One more fact is needed.\nAction: Search[{question} born]"
    return "Thought: The documents answer it.\nAction: Finish[yes]"


def _start_server(latency_ms: float) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [
            sys.executable, "-m", "raggym.testing.fake_server", "--port", "0",
            "--latency-ms", str(latency_ms), "--respond", "rollout_speed:react_script",
        ],
        stdout=subprocess.PIPE,
        text=True,
        # the server imports react_script from this script's folder
        env={**os.environ, "PYTHONPATH": os.pathsep.join(
            filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")])
        )},
    )  # fmt: skip
    line = process.stdout.readline() if process.stdout else ""
    if not line.startswith("READY "):
        process.kill()
        raise RuntimeError(f"the fake server did not start (printed {line!r})")
    return process, line.split(" ", 1)[1].strip()


def _examples(factory: EnvFactory, count: int) -> list[QAExample]:
    """``count`` questions, cycling through the bundled ones with distinct ids."""
    from dataclasses import replace

    pool = factory().examples
    return [replace(pool[i % len(pool)], id=f"{pool[i % len(pool)].id}#{i}") for i in range(count)]


def _play(
    factory: EnvFactory, agent: ReActAgent, examples: list[QAExample], concurrency: int
) -> tuple[float, list[EpisodeRecord]]:
    tick = time.perf_counter()
    if concurrency == 1:
        records = rollout(factory(), agent, examples)
    else:
        records = BatchedRunner(factory, agent, batch_size=concurrency).run(examples)
    return time.perf_counter() - tick, records


def _check(records: list[EpisodeRecord]) -> tuple[int, float]:
    failures = sum(r.error is not None for r in records)
    steps = sum(len(r.steps) for r in records) / max(len(records), 1)
    return failures, steps


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print both tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency-ms", type=float, default=50.0, help="server delay per request")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--episodes", type=int, default=256, help="episodes per batched level")
    parser.add_argument("--sequential-episodes", type=int, default=24, help="episodes at level 1")
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    args = parser.parse_args(argv)
    if args.quick:
        args.episodes, args.sequential_episodes = 32, 4
    factory = EnvFactory("hotpotqa", k=5, max_steps=10)
    factory()  # build the index before timing
    process, url = _start_server(args.latency_ms)
    print(f"fake OpenAI server at {url}, {args.latency_ms:.0f} ms per request; ReAct, BM25 k=5")
    rows = []
    try:
        for level in args.concurrency:
            count = args.sequential_episodes if level == 1 else args.episodes
            llm = OpenAICompatibleLLM(base_url=url, model="fake", concurrency=max(level, 1))
            agent = ReActAgent(llm)
            _play(factory, agent, _examples(factory, min(count, level * 2)), level)  # warm-up
            wall, records = _play(factory, agent, _examples(factory, count), level)
            llm.close()
            failures, steps = _check(records)
            rows.append((level, count, wall, count / wall, steps, failures))
    finally:
        process.terminate()
        process.wait(timeout=10)
    base = next((r[3] for r in rows if r[0] == 1), rows[0][3])
    print("\n| concurrency | episodes | wall s | episodes/s | x sequential | steps/ep | failures |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for level, count, wall, rate, steps, failures in rows:
        print(
            f"| {level} | {count} | {wall:.2f} | {rate:.1f} | {rate / base:.1f} | "
            f"{steps:.1f} | {failures} |"
        )
    ideal = 1000.0 / (args.latency_ms * 3)
    print(f"(ideal sequential: {ideal:.2f} episodes/s at 3 requests per episode)")

    print("\nPer-step overhead of env + agent, zero-latency in-process mock model:")
    print("| mode | episodes | steps | us/step |")
    print("|---|---:|---:|---:|")
    for mode, level in (("sequential", 1), ("batched x64", 64)):
        agent = ReActAgent(MockLLM(lambda conversation: react_script(conversation)))
        count = 64 if args.quick else 512
        _play(factory, agent, _examples(factory, 16), level)  # warm-up
        wall, records = _play(factory, agent, _examples(factory, count), level)
        total = sum(len(r.steps) for r in records)
        print(f"| {mode} | {count} | {total} | {wall / total * 1e6:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
