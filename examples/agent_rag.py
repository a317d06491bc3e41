"""RAG agent: search the question once, then reason over the retrieved documents and answer.

Shows how to build ``raggym.agents.rag.RAGAgent`` on a model backend, answer an ad-hoc question
over a few documents with ``raggym.agents.ask``, and play one episode of the bundled HotpotQA
sample. Step 1 is a scripted ``Search`` of the question (no model call); from step 2 the
model sees the documents and ends its reply with ``Answer: ...``.

Without ``--llm`` the model is a scripted stand-in (``MockLLM``) so that the script runs
offline in a second: it reads the documents in its prompt and answers 'yes' to yes/no
questions, otherwise the title of the best-ranked document the question does not name.
Point it at a real model with ``--llm``: an OpenAI-compatible server (vLLM, SGLang, ...)
as ``openai:http://127.0.0.1:8000/v1:Qwen/Qwen2.5-7B-Instruct``, or a local transformers
checkpoint as ``hf:/path/to/model``.

Run: python examples/agent_rag.py [--llm openai:URL:MODEL]
"""

import argparse
import re

from raggym.agents import ask
from raggym.agents.rag import RAGAgent
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


def scripted_rag(conversation):
    """Stand-in model: 'yes' to yes/no questions, else the top document the question lacks."""
    prompt = conversation[-1]["content"]
    question = re.search(r"^Question: (.*)$", prompt, re.MULTILINE).group(1)
    titles = re.findall(r"^\[\d+\] Title: (.*)$", prompt, re.MULTILINE)
    if question.split()[0].lower() in {"is", "are", "was", "were", "do", "does", "did"}:
        return f"The documents describe {' and '.join(titles[:2])}.\nAnswer: yes"
    new = [t for t in titles if t.lower() not in question.lower()] or ["unknown"]
    return f"The best document the question does not name is {new[0]}.\nAnswer: {new[0]}"


def main(llm_spec=None):
    llm = make_llm(llm_spec) if llm_spec else MockLLM(scripted_rag, name="scripted-rag")
    agent = RAGAgent(llm, doc_words=100)  # doc_words: words of each document shown

    # 1. An ad-hoc question over the documents above (BM25 over them, k=5 by default).
    record = ask(agent, QUESTION, corpus=CORPUS, answers=["Paris"])
    print(record, end="\n\n")

    # 2. One episode of the bundled HotpotQA sample (question 0), 3 documents per search.
    env = RAGEnv("hotpotqa", limit=20, k=3)
    record = run_episode(env, agent, options={"index": 0})
    print(record)
    for step in record.steps:  # step 1, the scripted search, has no model text (None)
        print(f"raw model text of step {step.index + 1}:", repr(step.raw_text))
    if len(record.steps) > 1:  # every model step keeps the exact messages the model saw
        print("prompt of step 2 (user message):\n" + record.steps[1].extra["prompt"][-1]["content"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm", metavar="SPEC", help="openai:URL:MODEL or hf:PATH (default: mock)")
    main(parser.parse_args().llm)
