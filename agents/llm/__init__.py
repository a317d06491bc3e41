"""LLM backends behind one batched protocol (:mod:`raggym.agents.llm.base`).

Backends with optional dependencies are imported from their own modules:
:mod:`~raggym.agents.llm.openai_compat` (any OpenAI-compatible server),
:mod:`~raggym.agents.llm.hf` (transformers) and :mod:`~raggym.agents.llm.vllm_backend`.
Test doubles (mock and scripted backends, a fake server) are in :mod:`raggym.testing`.
"""
