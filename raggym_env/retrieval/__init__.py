"""Retrieval backends behind one batched :class:`Retriever` protocol.

The BM25 names load on first use, keeping ``import raggym_env`` light.
"""

import importlib

from raggym_env.retrieval.base import (
    IndexMismatchError,
    RetrievalError,
    Retriever,
    check_search_args,
)
from raggym_env.retrieval.factory import available_retrievers, make_retriever, register_retriever

__all__ = [
    "BM25Config",
    "BM25Retriever",
    "IndexMismatchError",
    "RetrievalError",
    "Retriever",
    "available_retrievers",
    "check_search_args",
    "load_or_build",
    "make_retriever",
    "register_retriever",
]
_BM25_NAMES = {"BM25Config", "BM25Retriever", "load_or_build"}


def __getattr__(name: str) -> object:
    """Import the BM25 names on first use."""
    if name in _BM25_NAMES:
        return getattr(importlib.import_module("raggym_env.retrieval.bm25"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
