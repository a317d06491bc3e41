"""Build a retriever by name, so environments and configs can say ``retriever="bm25"``.

Backends register a builder ``(corpus, **options) -> Retriever`` under a name; the
builder imports its heavy dependencies itself, so naming a backend costs nothing until it
is used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from raggym_env.corpus import Corpus
from raggym_env.retrieval.base import Retriever

__all__ = ["available_retrievers", "make_retriever", "register_retriever"]

RetrieverBuilder = Callable[..., Retriever]
_BUILDERS: dict[str, RetrieverBuilder] = {}


def register_retriever(name: str, builder: RetrieverBuilder, *, overwrite: bool = False) -> None:
    """Make ``make_retriever(name, corpus, **options)`` call ``builder(corpus, **options)``."""
    if name in _BUILDERS and not overwrite:
        raise ValueError(f"a retriever named {name!r} is already registered")
    _BUILDERS[name] = builder


def available_retrievers() -> list[str]:
    """Names accepted by :func:`make_retriever`."""
    return sorted(_BUILDERS)


def make_retriever(name: str, corpus: Corpus, **options: Any) -> Retriever:
    """Build the retriever registered as ``name`` over ``corpus``."""
    try:
        builder = _BUILDERS[name]
    except KeyError:
        raise ValueError(
            f"unknown retriever {name!r}; expected one of {available_retrievers()} "
            "or a Retriever instance"
        ) from None
    return builder(corpus, **options)


def _bm25(corpus: Corpus, **options: Any) -> Retriever:
    from raggym_env.retrieval.bm25 import load_or_build

    return load_or_build(corpus, **options)


def _fake(corpus: Corpus, **options: Any) -> Retriever:
    from raggym_env.retrieval.fake import FakeRetriever

    return FakeRetriever(corpus, **options)


register_retriever("bm25", _bm25)
register_retriever("fake", _fake)
