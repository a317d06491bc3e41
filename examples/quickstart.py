"""Quickstart: play HotpotQA episodes by hand, with text actions and action objects.

Run: python examples/quickstart.py
"""

import gymnasium as gym

import raggym_env  # noqa: F401  (registers the RAGGym ids)
from raggym_env import Answer, Search

env = gym.make("RAGGym/HotpotQA-v0", k=3, render_mode="ansi")
obs, info = env.reset(seed=0)
print("question:", obs["question"])

# A text action, as an LLM would write it; the env parses it.
obs, reward, terminated, truncated, info = env.step(f"Search: {obs['question']}")
for doc in obs["history"][-1]["documents"]:
    print(f"  retrieved: {doc['title']}")
print("gold-evidence recall so far:", info["evidence_recall"])

# Unparseable text is recorded, not raised, and costs a step.
obs, reward, terminated, truncated, info = env.step("let me think...")
print("action error:", info["action_error"])

# An action object ends the episode; gold and metrics appear in info only now.
obs, reward, terminated, truncated, info = env.step(Answer("yes"))
print(env.render())
print("reward:", reward, "metrics:", info["metrics"], "gold:", info["gold"]["answers"])

# Action objects work the same way for searches.
env.reset(options={"index": 1})
_, _, _, _, info = env.step(Search("Kiss and Tell 1945 film"))
print("second episode, first search retrieved:", [d["title"] for d in info["retrieved"]])
