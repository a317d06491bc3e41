"""LLM agents for the RAGGym environments: backends, prompts, designs, critics, runners.

The names most notebooks need are importable from here; backends that need optional
dependencies (``raggym.agents.llm.openai_compat``, ``raggym.agents.llm.hf``,
``raggym.agents.llm.vllm_backend``) and the critics are imported from their modules, or
built by name with :mod:`raggym.agents.registry`.
"""

from raggym.agents.adhoc import ask
from raggym.agents.base import Agent, Decision, LLMAgent, Memory, Parsed, PolicyAgent
from raggym.agents.baselines import (
    CallablePolicy,
    GoldEvidenceOracle,
    QuestionSearchHeuristic,
    ReplayPolicy,
)
from raggym.agents.critic_guided import CriticGuidedAgent
from raggym.agents.direct import CoTAgent, DirectAgent
from raggym.agents.llm.base import LLM, Completion, SamplingParams
from raggym.agents.rag import RAGAgent
from raggym.agents.re2search import Re2SearchAgent
from raggym.agents.react import ReActAgent
from raggym.agents.registry import make_agent, make_critic, make_llm
from raggym.agents.rollout import BatchedRunner, rollout, run_episode
from raggym.agents.search_o1 import SearchO1Agent

__all__ = [
    "LLM",
    "Agent",
    "BatchedRunner",
    "CallablePolicy",
    "CoTAgent",
    "Completion",
    "CriticGuidedAgent",
    "Decision",
    "DirectAgent",
    "GoldEvidenceOracle",
    "LLMAgent",
    "Memory",
    "Parsed",
    "PolicyAgent",
    "QuestionSearchHeuristic",
    "RAGAgent",
    "Re2SearchAgent",
    "ReActAgent",
    "ReplayPolicy",
    "SamplingParams",
    "SearchO1Agent",
    "ask",
    "make_agent",
    "make_critic",
    "make_llm",
    "rollout",
    "run_episode",
]
