"""Text mode: roll out episodes in the Search-R1 tag protocol, as an RL framework would.

``raggym_env.text_protocol.SearchR1TextEnv`` turns the environment into text in, text out:
``reset`` gives a prompt, ``step`` takes the model's turn (``<think>``, then ``<search>`` or
``<answer>``) and returns the ``<information>`` block to append. This is the loop a veRL,
OpenRLHF or verifiers rollout runs: generate, step, append, until the episode ends. The
transcript and the spans of environment text in it are what a trainer consumes (the spans
are masked out of the loss).

Without ``--llm`` the model is a ``ScriptedLLM`` from the testing kit playing fixed turns
(one of them malformed, to show how an invalid turn is charged), over the testing kit's tiny
task with its word-overlap retriever, so the script runs offline in a second. Point it at a
real model with ``--llm openai:URL:MODEL`` (an OpenAI-compatible server).

Run: python examples/text_protocol_loop.py [--llm openai:URL:MODEL]
"""

import argparse

from raggym.agents.llm.base import SamplingParams
from raggym.agents.registry import make_llm
from raggym.testing.llms import ScriptedLLM
from raggym.testing.tasks import make_tiny_env
from raggym_env.text_protocol import SearchR1TextEnv

SCRIPT = [
    # episode 1: search twice, then answer
    "<think>Who built the rocket? First the probe.</think>\n<search> Uranus probe </search>",
    "<think>Voyager 2 used a Titan IIIE.</think>\n<search> Titan IIIE rocket built </search>",
    "<think>Martin Marietta built it.</think>\n<answer> Martin Marietta </answer>",
    # episode 2: a malformed turn (unclosed tag) costs a step, then a search and an answer
    "<think>Where is the tower?</think>\n<search> Eiffel Tower location",
    "<search> Eiffel Tower </search>",
    "<think>The tower is in Paris, the capital of France.</think><answer> France </answer>",
]


def rollout(env: SearchR1TextEnv, llm, index: int) -> None:
    """One episode: the model continues the transcript until the environment ends it."""
    # A real server would stop at </search> and </answer> and keep the stop string
    # (vLLM: include_stop_str_in_output=True); the parser ignores anything after the
    # first complete block in any case.
    params = SamplingParams(max_tokens=256)
    text, _ = env.reset(options={"index": index})
    done = False
    while not done:
        turn = llm.generate([[{"role": "user", "content": text}]], params)[0].texts[0]
        observation, reward, terminated, truncated, info = env.step(turn)
        text += turn + observation
        done = terminated or truncated
        action = info["text_action"]
        print(f"  {action['type']:8s} {action['text'] or action['error']!r} -> reward {reward}")
    assert text == env.transcript  # the loop's text and the env's transcript agree
    masked = sum(end - start for start, end in env.information_spans)
    print(
        f"  episode over: em={info['metrics']['em']} f1={info['metrics']['f1']:.2f}, "
        f"{len(env.transcript)} transcript chars, {masked} of them environment text "
        f"in {len(env.information_spans)} <information> blocks"
    )


def main(llm_spec: str | None) -> None:
    """Roll out two episodes of the tiny task in text mode and print what happened."""
    llm = make_llm(llm_spec) if llm_spec else ScriptedLLM(SCRIPT)
    env = SearchR1TextEnv(make_tiny_env(retriever="fake", k=2, max_steps=4))
    for index in (2, 1):
        print(f"question {index}:", env.unwrapped.examples[index].question)
        rollout(env, llm, index)
    print("\nthe last transcript:\n" + env.transcript)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--llm", metavar="SPEC", help="openai:URL:MODEL or hf:PATH (default: scripted)"
    )
    main(parser.parse_args().llm)
