"""verifiers drives raggym: Search-R1 episodes through verifiers' own agent and scoring.

``raggym.agents.verifiers_adapter`` turns the environment into a verifiers (``verifiers.v1``)
task: verifiers' ``Agent`` plays it turn by turn (``agent.interaction``), every model call
goes through verifiers' interception and lands on its trace, each turn is stepped by
``SearchR1TextEnv`` (the ``<information>`` block comes back as the next user message), and
the task's ``@vf.reward`` hook scores the trace with the environment's reward (EM here).

Without ``--llm-url`` the model is the testing kit's fake OpenAI-compatible server playing
scripted Search-R1 turns (two questions answered right, one wrong after a malformed
turn), over the tiny task, so the script runs offline. Point it at a real server with
``--llm-url http://HOST:PORT/v1 --model NAME`` (the key, if any, in ``OPENAI_API_KEY``).

Run: python examples/verifiers_search_r1.py [--llm-url URL --model NAME]
"""

import argparse
import asyncio
import contextlib
from typing import Any

from raggym.agents.verifiers_adapter import evaluate_search_r1, make_search_r1_agent
from raggym.testing.fake_server import fake_openai_server
from raggym.testing.tasks import make_tiny_env

# The scripted model's turns for each question, keyed by a word of its question.
SCRIPTS = {
    "nationality": [  # one search, then the right answer
        "<search> Scott Derrickson Ed Wood nationality </search>",
        "<think>Both are American.</think>\n<answer> yes </answer>",
    ],
    "rocket": [  # two searches, then the right answer
        "<think>First the probe.</think>\n<search> Uranus probe </search>",
        "<think>Voyager 2 used a Titan IIIE.</think>\n<search> Titan IIIE rocket </search>",
        "<think>Martin Marietta built it.</think>\n<answer> Martin Marietta </answer>",
    ],
    "tower": [  # a malformed turn (unclosed tag) is charged a step, then a wrong answer
        "<search> Eiffel Tower location",
        "<search> Eiffel Tower </search>",
        "<answer> Germany </answer>",
    ],
}


def scripted(messages: list[dict[str, Any]], sample_index: int) -> str:
    """Play the script of the question in the first user message, one turn per reply."""
    question = messages[0]["content"].lower() if messages else ""
    script = next((turns for word, turns in SCRIPTS.items() if word in question), None)
    if script is None:
        return "<answer> unknown </answer>"
    turn = sum(message["role"] == "assistant" for message in messages)
    return script[min(turn, len(script) - 1)]


async def evaluate(url: str, model: str) -> None:
    """Evaluate three questions of the tiny task and print each reward and the mean."""
    env = make_tiny_env(retriever="fake", k=2, max_steps=4)
    agent = make_search_r1_agent(url, model)
    results = await evaluate_search_r1(agent, env, range(len(env.examples)))
    for result in results:
        question = env.examples[result.index].question
        turns = result.trace.num_turns
        status = "ok" if result.ok else "; ".join(result.errors)
        print(
            f"q{result.index} reward={result.reward:.2f} em={result.metrics.get('em')} "
            f"f1={result.metrics.get('f1', 0.0):.2f} turns={turns} [{status}] {question}"
        )
    mean = sum(result.reward for result in results) / len(results)
    print(f"mean reward over {len(results)} questions: {mean:.3f}")


def main() -> None:
    """Parse the arguments; serve the scripted model unless a real server is named."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm-url", help="an OpenAI-compatible base URL (default: scripted)")
    parser.add_argument("--model", default="fake-model", help="the model name to request")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        url = args.llm_url or stack.enter_context(fake_openai_server(scripted)).url
        asyncio.run(evaluate(url, args.model))


if __name__ == "__main__":
    main()
