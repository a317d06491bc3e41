"""Re2Search agent: reason to an answer, then search for the first claim not yet verified.

Shows how to build ``raggym.agents.re2search.Re2SearchAgent`` on a model backend, answer an ad-hoc
question over a few documents with ``raggym.agents.ask``, and play one episode of the bundled
HotpotQA sample. Each step the model writes four labelled lines::

    Reasoning: ...
    Predicted answer: ...
    Unverified claim: <the first claim the knowledge does not support yet, or none>
    Query: <a search query that would verify it, or none>

The agent searches the query; once the claim is "none" it answers the predicted answer.
As in Search-o1, each search's documents are condensed by a second call to the backend.

Without ``--llm`` the model is a scripted stand-in (``MockLLM``) so that the script runs
offline in a second: it first predicts a blind guess and searches the question to check
it, then predicts what the condensed result names (or 'yes' to a yes/no question) with
nothing left to verify. Point it at a real model with ``--llm``: an OpenAI-compatible
server (vLLM, SGLang, ...) as ``openai:http://127.0.0.1:8000/v1:Qwen/Qwen2.5-7B-Instruct``,
or a local transformers checkpoint as ``hf:/path/to/model``.

Run: python examples/agent_re2search.py [--llm openai:URL:MODEL]
"""

import argparse
import re

from raggym.agents import ask
from raggym.agents.re2search import Re2SearchAgent
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

OUTPUT = "Reasoning: {}\nPredicted answer: {}\nUnverified claim: {}\nQuery: {}"


def scripted_re2search(conversation):
    """Stand-in model: guess and check the guess by searching the question, then answer."""
    prompt = conversation[-1]["content"]
    question = re.search(r"Question: (.*)$", prompt, re.MULTILINE).group(1)
    if "Search query:" in prompt:  # the condensation call: report one document
        docs = re.findall(r"^\[\d+\] Title: (.*)\n(.*)$", prompt, re.MULTILINE)
        title, text = next((d for d in docs if d[0].lower() not in question.lower()), docs[0])
        return f"Answer: {title}: {text.split('. ')[0]}"
    found = re.findall(r"^Answer \(from documents\): (.*)$", prompt, re.MULTILINE)
    yes_no = question.split()[0].lower() in {"is", "are", "was", "were", "do", "does", "did"}
    if not found:
        guess = "yes" if yes_no else "unknown"
        claim, query = f"the answer is {guess}", question
        reasoning = f"My first guess is {guess}."
    else:
        guess = "yes" if yes_no else found[-1].split(":")[0]
        claim = query = "none"
        reasoning = f"The search says: {found[-1]}"
    return OUTPUT.format(reasoning, guess, claim, query)


def main(llm_spec=None):
    llm = make_llm(llm_spec) if llm_spec else MockLLM(scripted_re2search, name="scripted-re2")
    agent = Re2SearchAgent(llm)

    # 1. An ad-hoc question over the documents above (BM25 over them, k=5 by default).
    record = ask(agent, QUESTION, corpus=CORPUS, answers=["Paris"])
    print(record, end="\n\n")

    # 2. One episode of the bundled HotpotQA sample (question 0), 3 documents per search.
    env = RAGEnv("hotpotqa", limit=20, k=3)
    record = run_episode(env, agent, options={"index": 0})
    print(record)
    if record.steps:  # (no steps when the model request failed: the record says why)
        print("raw model text of step 1:\n" + record.steps[0].raw_text)
    for step in record.steps:  # the parsed parts of each output are kept in its step
        fields = step.extra.get("fields", {})
        predicted, claim = fields.get("predicted_answer"), fields.get("claim")
        print(f"step {step.index + 1}: {predicted=} {claim=} -> {step.action_type}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm", metavar="SPEC", help="openai:URL:MODEL or hf:PATH (default: mock)")
    main(parser.parse_args().llm)
