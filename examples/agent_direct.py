"""Direct agent: answer at once from the model's own knowledge (no retrieval, no reasoning).

Shows how to build ``raggym.agents.direct.DirectAgent`` on a model backend, answer an ad-hoc
question with ``raggym.agents.ask``, play one episode of the bundled HotpotQA sample, and answer a
multiple-choice MedQA question (the answer is an option letter).

Without ``--llm`` the model is a scripted stand-in (``MockLLM``) so that the script runs
offline in a second: it reads the prompt and replies in Direct's format (``Answer: ...``),
but its answers are blind guesses. Point it at a real model with ``--llm``: an
OpenAI-compatible server (vLLM, SGLang, ...) as
``openai:http://127.0.0.1:8000/v1:Qwen/Qwen2.5-7B-Instruct``, or a local transformers
checkpoint as ``hf:/path/to/model``.

Run: python examples/agent_direct.py [--llm openai:URL:MODEL]
"""

import argparse
import re

from raggym.agents import ask
from raggym.agents.direct import DirectAgent
from raggym.agents.registry import make_llm
from raggym.agents.rollout import run_episode
from raggym.testing.llms import MockLLM
from raggym_env import RAGEnv

QUESTION = "Which city is home to the museum where the Mona Lisa hangs?"
CORPUS = [
    {"title": "Mona Lisa", "text": "A portrait by Leonardo da Vinci, in the Louvre since 1797."},
    {"title": "Louvre", "text": "The Louvre, the world's most-visited art museum, is in Paris."},
    {"title": "Paris", "text": "Paris is the capital and largest city of France."},
    {"title": "Prado", "text": "The Prado is the main Spanish national art museum, in Madrid."},
]


def scripted_direct(conversation):
    """Stand-in model: 'yes' to yes/no questions, option A, else the question's last name."""
    prompt = conversation[-1]["content"]
    question = re.search(r"^Question: (.*)$", prompt, re.MULTILINE).group(1)
    if "\nOptions:\n" in prompt:
        return "Answer: A"
    if question.split()[0].lower() in {"is", "are", "was", "were", "do", "does", "did"}:
        return "Answer: yes"
    names = re.findall(r"(?<!^)\b[A-Z][\w-]*(?: [A-Z][\w-]*)*", question)
    return f"Answer: {names[-1] if names else 'unknown'}"


def main(llm_spec=None):
    llm = make_llm(llm_spec) if llm_spec else MockLLM(scripted_direct, name="scripted-direct")
    agent = DirectAgent(llm)

    # 1. An ad-hoc question. Direct never searches: the corpus is only there so that the
    #    same call works for every agent design.
    record = ask(agent, QUESTION, corpus=CORPUS, answers=["Paris"])
    print(record, end="\n\n")

    # 2. One episode of the bundled HotpotQA sample (question 0).
    env = RAGEnv("hotpotqa", limit=20, k=3)
    record = run_episode(env, agent, options={"index": 0})
    print(record)
    if record.steps:  # (no steps when the model request failed: the record says why)
        print("raw model text of step 1:", repr(record.steps[0].raw_text))
    print()

    # 3. Multiple choice: the prompt lists the options and the answer is an option letter;
    #    the metric is accuracy.
    medqa = RAGEnv("medqa", limit=5)
    record = run_episode(medqa, agent, options={"index": 0})
    print(record)
    if record.steps:  # every step keeps the exact messages the model saw
        print("prompt of step 1 (user message):\n" + record.steps[0].extra["prompt"][-1]["content"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm", metavar="SPEC", help="openai:URL:MODEL or hf:PATH (default: mock)")
    main(parser.parse_args().llm)
