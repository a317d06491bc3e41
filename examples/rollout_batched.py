"""Batched rollouts: many episodes in lockstep, one model call per step for all of them.

Shows ``raggym.agents.rollout.BatchedRunner``: it keeps up to ``batch_size`` environments live,
asks the agent for all their next actions in one batched call, runs all their searches as
one retrieval call, appends each episode to an ``EpisodeStore`` (a JSONL file) the moment
it ends, and refills the freed slot with the next question. ``raggym_env.env.EnvFactory``
builds the environment copies; they share one task and one BM25 index (and the factory is
picklable, for worker processes).

Without ``--llm`` the model is a scripted ReAct stand-in (``MockLLM``, with a 50 ms delay
per call to imitate a server) so that the script runs offline in a second: it searches
the question, then finishes with the best-ranked document the question does not name (or
'yes' to a yes/no question). Compare ``--batch-size 1``. Point it at a real model with
``--llm`` (any design with ``--agent``): an OpenAI-compatible server (vLLM, SGLang, ...) as
``openai:http://127.0.0.1:8000/v1:Qwen/Qwen2.5-7B-Instruct``, or a local transformers
checkpoint as ``hf:/path/to/model``. Episodes go to a temporary file unless ``--store``
names one (a rerun then skips the questions already stored).

Run: python examples/rollout_batched.py [--llm openai:URL:MODEL] [--agent NAME]
"""

import argparse
import re
import tempfile
import time
from pathlib import Path

from raggym.agents.registry import AGENTS, make_agent, make_llm
from raggym.agents.rollout import BatchedRunner
from raggym.testing.llms import MockLLM
from raggym_env.env import EnvFactory
from raggym_env.store import EpisodeStore, final_episodes


def scripted_react(conversation):
    """Stand-in ReAct model: search the question, then finish with a document title."""
    prompt = conversation[-1]["content"]
    question = re.search(r"^Question: (.*)$", prompt, re.MULTILINE).group(1)
    if "Observation 1:" not in prompt:
        return f"Thought: I should look the question up.\nAction: Search[{question}]"
    if question.split()[0].lower() in {"is", "are", "was", "were", "do", "does", "did"}:
        return "Thought: The documents agree.\nAction: Finish[yes]"
    titles = re.findall(r"^\[\d+\] Title: (.*)$", prompt, re.MULTILINE)
    new = [t for t in titles if t.lower() not in question.lower()] or ["unknown"]
    return f"Thought: {new[0]} is what the question asks for.\nAction: Finish[{new[0]}]"


def mean(records, metric):
    """A metric averaged over the episodes (a failed episode counts 0)."""
    return sum(r.metrics.get(metric) or 0.0 for r in records) / max(len(records), 1)


def main(llm_spec=None, agent_name="react", batch_size=8, store_path=None):
    if llm_spec:
        llm = make_llm(llm_spec)
    elif agent_name == "react":
        llm = MockLLM(scripted_react, name="scripted-react", latency_s=0.05)
    else:
        raise SystemExit("the offline stand-in speaks only ReAct; pass --llm for other agents")
    agent = make_agent(agent_name, llm)  # or e.g. raggym.agents.react.ReActAgent(llm)

    factory = EnvFactory("hotpotqa", limit=20, k=3)
    examples = factory().examples
    with tempfile.TemporaryDirectory() as tmp:
        with EpisodeStore(store_path or Path(tmp) / "episodes.jsonl", fsync=False) as store:
            pending = set(store.pending([ex.id for ex in examples]))  # skip stored ones
            todo = [ex for ex in examples if ex.id in pending]
            runner = BatchedRunner(factory, agent, batch_size=batch_size, store=store)
            tick = time.perf_counter()
            records = runner.run(todo)  # in the order the episodes finished
            elapsed = time.perf_counter() - tick
        stored = list(store.read())

    rate = len(records) / max(elapsed, 1e-9)
    print(f"ran {len(records)} episodes of {agent.name}, {batch_size} at a time, in {elapsed:.2f}s")
    print(f"episodes/s: {rate:.1f}")
    print(f"agent calls: {runner.stats['agent_calls']:.0f} for {runner.stats['steps']:.0f} steps")
    episodes = final_episodes(stored)  # one per question, also after resumed runs
    scores = " ".join(f"{name}={mean(episodes, name):.3f}" for name in ("em", "f1"))
    print(f"over the {len(episodes)} stored episodes: {scores}")
    if records:
        print("the first episode to finish:", records[0], sep="\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm", metavar="SPEC", help="openai:URL:MODEL or hf:PATH (default: mock)")
    parser.add_argument("--agent", default="react", choices=sorted(AGENTS), help="agent design")
    parser.add_argument("--batch-size", type=int, default=8, help="episodes live at once")
    parser.add_argument("--store", metavar="PATH", help="JSONL file to keep the episodes in")
    args = parser.parse_args()
    main(args.llm, args.agent, args.batch_size, args.store)
