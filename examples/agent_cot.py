"""Chain-of-thought agent: reason step by step from the model's own knowledge, then answer.

Shows how to build ``raggym.agents.direct.CoTAgent`` on a model backend, answer an ad-hoc question
with ``raggym.agents.ask``, play one episode of the bundled HotpotQA sample, and answer a
multiple-choice MedQA question: an answer that names an option by its text is read as the
option's letter.

Without ``--llm`` the model is a scripted stand-in (``MockLLM``) so that the script runs
offline in a second: it reads the prompt and replies in CoT's format (reasoning, then a
final ``Answer: ...`` line), but its answers are guesses. Point it at a real model with
``--llm``: an OpenAI-compatible server (vLLM, SGLang, ...) as
``openai:http://127.0.0.1:8000/v1:Qwen/Qwen2.5-7B-Instruct``, or a local transformers
checkpoint as ``hf:/path/to/model``.

Run: python examples/agent_cot.py [--llm openai:URL:MODEL]
"""

import argparse
import re

from raggym.agents import ask
from raggym.agents.direct import CoTAgent
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


def scripted_cot(conversation):
    """Stand-in model: reasons in one line; picks the longest option, or guesses."""
    prompt = conversation[-1]["content"]
    question = re.search(r"^Question: (.*)$", prompt, re.MULTILINE).group(1)
    options = re.findall(r"^([A-Z])\. (.*)$", prompt, re.MULTILINE)
    if options:  # answers with the option's text; the agent reads it as the letter
        longest = max(options, key=lambda option: len(option[1]))[1]
        return f"The most detailed option is usually right.\nAnswer: {longest}"
    if question.split()[0].lower() in {"is", "are", "was", "were", "do", "does", "did"}:
        return "Questions like this are more often true than not.\nAnswer: yes"
    names = re.findall(r"(?<!^)\b[A-Z][\w-]*(?: [A-Z][\w-]*)*", question) or ["unknown"]
    return f"The question is about {names[-1]}, as far as I can tell.\nAnswer: {names[-1]}"


def main(llm_spec=None):
    llm = make_llm(llm_spec) if llm_spec else MockLLM(scripted_cot, name="scripted-cot")
    agent = CoTAgent(llm)

    # 1. An ad-hoc question. CoT never searches: the corpus is only there so that the same
    #    call works for every agent design.
    record = ask(agent, QUESTION, corpus=CORPUS, answers=["Paris"])
    print(record, end="\n\n")

    # 2. One episode of the bundled HotpotQA sample (question 0).
    env = RAGEnv("hotpotqa", limit=20, k=3)
    record = run_episode(env, agent, options={"index": 0})
    print(record)
    if record.steps:  # (no steps when the model request failed: the record says why)
        print("raw model text of step 1:", repr(record.steps[0].raw_text))
        print("parsed fields:", record.steps[0].extra.get("fields"))
    print()

    # 3. Multiple choice (MedQA): an answer must name one option, and the agent records
    #    that option's letter (an answer naming none is an invalid step).
    medqa = RAGEnv("medqa", limit=5)
    accuracy = 0.0
    for index in range(len(medqa.examples)):
        record = run_episode(medqa, agent, options={"index": index})
        fields = record.steps[-1].extra.get("fields", {}) if record.steps else {}
        said = fields.get("answer_raw", record.final_answer)  # the answer as written
        gold = record.gold["answer_letter"]
        print(f"MedQA {index}: {said!r} -> {record.final_answer} (gold {gold})")
        accuracy += (record.metrics.get("accuracy") or 0.0) / len(medqa.examples)
    print(f"MedQA accuracy: {accuracy:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm", metavar="SPEC", help="openai:URL:MODEL or hf:PATH (default: mock)")
    main(parser.parse_args().llm)
