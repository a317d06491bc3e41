"""LLM agents for the RAGGym environments: backends, prompts, designs, critics, runners.

The names most notebooks need are importable from here; backends that need optional
dependencies (``agents.llm.openai_compat``, ``agents.llm.hf``, ``agents.llm.vllm_backend``)
and the critics are imported from their modules, or built by name with
:mod:`agents.registry`.
"""

from agents.base import Agent, Decision, LLMAgent, Memory, Parsed, PolicyAgent
from agents.baselines import (
    CallablePolicy,
    GoldEvidenceOracle,
    QuestionSearchHeuristic,
    ReplayPolicy,
)
from agents.critic_guided import CriticGuidedAgent
from agents.direct import CoTAgent, DirectAgent
from agents.llm.base import LLM, Completion, SamplingParams
from agents.llm.mock import MockLLM, ScriptedLLM
from agents.rag import RAGAgent
from agents.re2search import Re2SearchAgent
from agents.react import ReActAgent
from agents.registry import make_agent, make_critic, make_llm
from agents.rollout import BatchedRunner, rollout, run_episode
from agents.search_o1 import SearchO1Agent

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
    "MockLLM",
    "Parsed",
    "PolicyAgent",
    "QuestionSearchHeuristic",
    "RAGAgent",
    "Re2SearchAgent",
    "ReActAgent",
    "ReplayPolicy",
    "SamplingParams",
    "ScriptedLLM",
    "SearchO1Agent",
    "make_agent",
    "make_critic",
    "make_llm",
    "rollout",
    "run_episode",
]
