"""ReAct agent: a thought and one action per step, with the trajectory so far in the prompt.

Shows how to build ``raggym.agents.react.ReActAgent`` on a model backend, answer an ad-hoc
question over a few documents with ``raggym.agents.ask``, and play one episode of the bundled
HotpotQA sample. The model writes ``Thought: ...`` then ``Action: Search[query]`` or
``Action: Finish[answer]``; the next prompt shows every earlier thought, action and
observation (the documents a search returned).

Without ``--llm`` the model is a scripted stand-in (``MockLLM``) so that the script runs
offline in a second: on a yes/no question it looks up each name the question mentions and
says yes; otherwise it searches the question and finishes with the best-ranked document
the question does not name. Point it at a real model with ``--llm``: an OpenAI-compatible
server (vLLM, SGLang, ...) as ``openai:http://127.0.0.1:8000/v1:Qwen/Qwen2.5-7B-Instruct``,
or a local transformers checkpoint as ``hf:/path/to/model``.

Run: python examples/agent_react.py [--llm openai:URL:MODEL]
"""

import argparse
import re

from raggym.agents import ask
from raggym.agents.react import ReActAgent
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
NAMES = re.compile(r"(?<!^)\b[A-Z][\w-]*(?: [A-Z][\w-]*)*")  # capitalised words, not the first


def scripted_react(conversation):
    """Stand-in model: look up each name of a yes/no question, else search once and finish."""
    prompt = conversation[-1]["content"]
    question = re.search(r"^Question: (.*)$", prompt, re.MULTILINE).group(1)
    searched = re.findall(r"^Action \d+: Search\[(.*)\]$", prompt, re.MULTILINE)
    if question.split()[0].lower() in {"is", "are", "was", "were", "do", "does", "did"}:
        names = [name for name in NAMES.findall(question) if name not in searched]
        if names:
            return f"Thought: I need facts about {names[0]}.\nAction: Search[{names[0]}]"
        return "Thought: The observations describe both alike.\nAction: Finish[yes]"
    if not searched:
        return f"Thought: I should look the question up.\nAction: Search[{question}]"
    last_observation = prompt.rsplit("Observation", 1)[1]
    titles = re.findall(r"^\[\d+\] Title: (.*)$", last_observation, re.MULTILINE)
    new = [t for t in titles if t.lower() not in question.lower()] or ["unknown"]
    return f"Thought: {new[0]} is what the question asks for.\nAction: Finish[{new[0]}]"


def main(llm_spec=None):
    llm = make_llm(llm_spec) if llm_spec else MockLLM(scripted_react, name="scripted-react")
    agent = ReActAgent(llm, doc_words=25)  # doc_words: words of each document shown

    # 1. An ad-hoc question over the documents above (BM25 over them, k=5 by default).
    record = ask(agent, QUESTION, corpus=CORPUS, answers=["Paris"])
    print(record, end="\n\n")

    # 2. One episode of the bundled HotpotQA sample (question 0), 3 documents per search.
    env = RAGEnv("hotpotqa", limit=20, k=3)
    record = run_episode(env, agent, options={"index": 0})
    print(record)
    if record.steps:  # (no steps when the model request failed: the record says why)
        print("raw model text of step 1:", repr(record.steps[0].raw_text))
        # Every step keeps the exact messages the model saw; the last shows the trajectory.
        print("prompt of the last step (user message):")
        print(record.steps[-1].extra["prompt"][-1]["content"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm", metavar="SPEC", help="openai:URL:MODEL or hf:PATH (default: mock)")
    main(parser.parse_args().llm)
