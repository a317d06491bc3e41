"""Re2Search++: Re2Search sampling several outputs per step, a critic choosing among them.

Shows how to wrap ``raggym.agents.re2search.Re2SearchAgent`` in
``raggym.agents.critic_guided.CriticGuidedAgent``: each step samples ``n`` candidate outputs
(10 at temperature 1.0 by default; 4 here), a critic scores the parsed candidates, and the
best-scoring one is taken. Every candidate is kept in the step record with its score. The
critic is your choice:

* ``raggym.agents.critics.gold.GoldEvidenceCritic(env.retriever, k=env.k)``: an oracle that reads
  the gold answer and evidence (a search scores the gold documents it adds, an answer its
  F1). Not deployable: it gives an upper bound, and targets for training a critic.
* ``raggym.agents.critics.reward_model.RewardModelCritic(path)``: a trained reward model (a
  sequence classifier; needs torch and transformers). Pass ``--reward-model PATH``.
* ``raggym.agents.critics.llm_judge.LLMJudgeCritic(llm)``: an LLM ranks the candidates.

The ad-hoc question below uses the LLM judge (on the same backend); the HotpotQA episode
uses the gold-evidence critic, or the reward model given with ``--reward-model``.

Without ``--llm`` the model is a scripted stand-in (``MockLLM``) so that the script runs
offline in a second: its samples search the question or a name it mentions, or, once
something was found, answer with what the condensed result names ('yes' to a yes/no
question); as the judge it prefers searches first and answers after. Point it at a real
model with ``--llm``: an OpenAI-compatible server (vLLM, SGLang, ...) as
``openai:http://127.0.0.1:8000/v1:Qwen/Qwen2.5-7B-Instruct``, or a local transformers
checkpoint as ``hf:/path/to/model``.

Run: python examples/agent_re2search_pp.py [--llm openai:URL:MODEL] [--reward-model PATH]
"""

import argparse
import re

from raggym.agents import ask
from raggym.agents.critic_guided import CriticGuidedAgent
from raggym.agents.critics.gold import GoldEvidenceCritic
from raggym.agents.critics.llm_judge import LLMJudgeCritic
from raggym.agents.critics.reward_model import RewardModelCritic
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
NAMES = re.compile(r"(?<!^)\b[A-Z][\w-]*(?: [A-Z][\w-]*)*")  # capitalised words, not the first


def scripted_model(conversation):
    """Stand-in model for the three calls: judge, condenser, and Re2Search's samples."""
    prompt = conversation[-1]["content"]
    question = re.search(r"Question: (.*)$", prompt, re.MULTILINE).group(1)
    if "Candidate next actions:" in prompt:  # the judge: searches first, answers once searched
        searched = re.search(r"^Search \d+:", prompt, re.MULTILINE) is not None
        numbered = re.findall(r"^(\d+)\. (Search|Answer):", prompt, re.MULTILINE)
        ranked = sorted(numbered, key=lambda item: (item[1] == "Answer") != searched)
        return "Ranking: " + " > ".join(number for number, _ in ranked)
    if "Search query:" in prompt:  # the condensation call: report one document
        docs = re.findall(r"^\[\d+\] Title: (.*)\n(.*)$", prompt, re.MULTILINE)
        title, text = next((d for d in docs if d[0].lower() not in question.lower()), docs[0])
        return f"Answer: {title}: {text.split('. ')[0]}"
    found = re.findall(r"^Answer \(from documents\): (.*)$", prompt, re.MULTILINE)
    queried = re.findall(r"^Query \d+: (.*)$", prompt, re.MULTILINE)
    yes_no = question.split()[0].lower() in {"is", "are", "was", "were", "do", "does", "did"}
    guess = "yes" if yes_no else (found[-1].split(":")[0] if found else "unknown")
    samples = [  # one search per question or name not searched yet ...
        OUTPUT.format("A first guess.", guess, f"the guess {guess} is right", query)
        for query in [question, *NAMES.findall(question)]
        if query not in queried
    ]
    if found:  # ... and, once something was found, an answer
        samples.insert(0, OUTPUT.format(f"The search says: {found[-1]}", guess, "none", "none"))
    return samples  # MockLLM gives sample i the item i % len(samples)


def show_candidates(step):
    """Print every candidate of a step with its critic score; '*' marks the one taken."""
    for j, candidate in enumerate(step.candidates):
        mark = "*" if j == step.extra.get("chosen") else " "
        score = "-" if candidate.score is None else f"{candidate.score:.3g}"  # None: not scored
        action = candidate.action or {"type": "invalid", "text": candidate.error}
        print(f"  {mark} score={score}  {action['type']}: {action['text']}")


def main(llm_spec=None, reward_model=None):
    llm = make_llm(llm_spec) if llm_spec else MockLLM(scripted_model, name="scripted-re2")
    actor = Re2SearchAgent(llm)

    # 1. An ad-hoc question, with an LLM judge as the critic (deployable: no gold needed).
    agent = CriticGuidedAgent(actor, LLMJudgeCritic(llm), n=4)
    record = ask(agent, QUESTION, corpus=CORPUS, answers=["Paris"])
    print(record)
    for step in record.steps:
        print(f"candidates of step {step.index + 1}, ranked by the judge:")
        show_candidates(step)
    print()

    # 2. One episode of the bundled HotpotQA sample (question 0), 3 documents per search,
    #    with the gold-evidence oracle critic: it must search with the env's retriever and k.
    env = RAGEnv("hotpotqa", limit=20, k=3)
    if reward_model:
        critic = RewardModelCritic(reward_model)
    else:
        critic = GoldEvidenceCritic(env.retriever, k=env.k)
    agent = CriticGuidedAgent(actor, critic, n=4)
    record = run_episode(env, agent, options={"index": 0})
    print(record)
    if record.steps:  # (no steps when the model request failed: the record says why)
        print("raw model text of step 1 (the chosen candidate):\n" + record.steps[0].raw_text)
    for step in record.steps:
        print(f"candidates of step {step.index + 1}, scored by {critic.name}:")
        show_candidates(step)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm", metavar="SPEC", help="openai:URL:MODEL or hf:PATH (default: mock)")
    parser.add_argument("--reward-model", metavar="PATH", help="a trained critic checkpoint")
    args = parser.parse_args()
    main(args.llm, args.reward_model)
