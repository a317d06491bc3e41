"""Search-o1 agent: reason, search when a fact is missing, and read results condensed.

Shows how to build ``raggym.agents.search_o1.SearchO1Agent`` on a model backend, answer an ad-hoc
question over a few documents with ``raggym.agents.ask``, and play one episode of the bundled
HotpotQA sample. The model writes ``Reasoning: ...`` then ``Search: <query>`` or
``Answer: <answer>``. After each search a second call to the same backend (the
``search_o1_condense`` prompt) condenses the documents into a short answer to the query,
and the main prompt shows those query/answer pairs instead of the raw documents.

Without ``--llm`` the model is a scripted stand-in (``MockLLM``) so that the script runs
offline in a second: it searches the question once, its "condenser" reports the
best-ranked document the question does not name, and it answers with that (or 'yes' to a
yes/no question). Point it at a real model with ``--llm``: an OpenAI-compatible server
(vLLM, SGLang, ...) as ``openai:http://127.0.0.1:8000/v1:Qwen/Qwen2.5-7B-Instruct``, or a
local transformers checkpoint as ``hf:/path/to/model``.

Run: python examples/agent_search_o1.py [--llm openai:URL:MODEL]
"""

import argparse
import re

from raggym.agents import ask
from raggym.agents.registry import make_llm
from raggym.agents.rollout import run_episode
from raggym.agents.search_o1 import SearchO1Agent
from raggym.testing.llms import MockLLM
from raggym_env import RAGEnv

QUESTION = "Which city is home to the museum where the Mona Lisa hangs?"
CORPUS = [
    {"title": "Mona Lisa", "text": "A portrait by Leonardo da Vinci, in the Louvre since 1797."},
    {"title": "Louvre", "text": "The Louvre, the world's most-visited art museum, is in Paris."},
    {"title": "Paris", "text": "Paris is the capital and largest city of France."},
    {"title": "Prado", "text": "The Prado is the main Spanish national art museum, in Madrid."},
]


def scripted_search_o1(conversation):
    """Stand-in model: search the question, then answer what the condensed result names."""
    prompt = conversation[-1]["content"]
    question = re.search(r"Question: (.*)$", prompt, re.MULTILINE).group(1)
    if "Search query:" in prompt:  # the condensation call: report one document
        docs = re.findall(r"^\[\d+\] Title: (.*)\n(.*)$", prompt, re.MULTILINE)
        title, text = next((d for d in docs if d[0].lower() not in question.lower()), docs[0])
        return f"Answer: {title}: {text.split('. ')[0]}"
    found = re.findall(r"^Answer \(from documents\): (.*)$", prompt, re.MULTILINE)
    if not found:
        return f"Reasoning: I do not know this yet.\nSearch: {question}"
    yes_no = question.split()[0].lower() in {"is", "are", "was", "were", "do", "does", "did"}
    answer = "yes" if yes_no else found[-1].split(":")[0]
    return f"Reasoning: The search says: {found[-1]}\nAnswer: {answer}"


def main(llm_spec=None):
    llm = make_llm(llm_spec) if llm_spec else MockLLM(scripted_search_o1, name="scripted-o1")
    agent = SearchO1Agent(llm)

    # 1. An ad-hoc question over the documents above (BM25 over them, k=5 by default).
    record = ask(agent, QUESTION, corpus=CORPUS, answers=["Paris"])
    print(record)
    for step in record.steps:  # what the condenser made of the previous step's search
        fields = step.extra.get("fields", {})
        if "condensed" in fields:
            print(f"condensed before step {step.index + 1}: {fields['condensed']}")
    print()

    # 2. One episode of the bundled HotpotQA sample (question 0), 3 documents per search.
    env = RAGEnv("hotpotqa", limit=20, k=3)
    record = run_episode(env, agent, options={"index": 0})
    print(record)
    if record.steps:  # (no steps when the model request failed: the record says why)
        print("raw model text of step 1:", repr(record.steps[0].raw_text))
        last = record.steps[-1]
        print("prompt of the last step (user message):\n" + last.extra["prompt"][-1]["content"])
        # A step after a search is charged with its main call and the condensation call.
        print("tokens of the last step:", last.tokens)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm", metavar="SPEC", help="openai:URL:MODEL or hf:PATH (default: mock)")
    main(parser.parse_args().llm)
