"""Evaluation protocols: raggym's own defaults, or a reproduction of the RAG-Gym paper's.

A protocol fixes everything around the model that moves the numbers: prompt structure and
action format, what the history shows, how unreadable output is handled, which episodes
and pairs become training data, the critic's input, and the training hyperparameters.
Agents, collection, the trainers and benchmark suites take ``protocol=``; the default is
``"raggym"``. ``"rag-gym"`` follows the official RAG-Gym code (arXiv 2502.13957);
``docs/fidelity.md`` lists every choice, where it comes from and what raggym does instead.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["DEFAULT_PROTOCOL", "PROTOCOLS", "RAGGYM", "RAG_GYM", "Protocol", "check_protocol"]

Protocol = Literal["raggym", "rag-gym"]

RAGGYM: Protocol = "raggym"
"""raggym's own defaults."""

RAG_GYM: Protocol = "rag-gym"
"""The RAG-Gym paper's protocol, as its official code runs it."""

PROTOCOLS: tuple[Protocol, ...] = (RAGGYM, RAG_GYM)
"""Every protocol name, default first."""

DEFAULT_PROTOCOL: Protocol = RAGGYM

_ALIASES = {"rag_gym": RAG_GYM, "raggym-paper": RAG_GYM, "paper": RAG_GYM}


def check_protocol(name: object) -> Protocol:
    """The canonical protocol name for ``name``; a clear ``ValueError`` for anything else."""
    if isinstance(name, str):
        key = name.strip().lower()
        key = _ALIASES.get(key, key)
        for protocol in PROTOCOLS:
            if key == protocol:
                return protocol
    raise ValueError(f"unknown protocol {name!r}; expected one of {list(PROTOCOLS)}")
