"""A tiny corpus and task (six documents, three questions) for fast, offline tests.

The questions are multi-hop with gold evidence, so metrics, evidence recall, critics and
oracles all have something real to measure; BM25 over six documents builds in
milliseconds, and ``retriever="fake"`` (word overlap) needs no index at all.
"""

from __future__ import annotations

from typing import Any

from raggym_env.corpora import Corpus
from raggym_env.env import RAGEnv
from raggym_env.types import Document, Evidence, QAExample

__all__ = ["TINY_DOCUMENTS", "make_tiny_env", "tiny_corpus", "tiny_examples"]

TINY_DOCUMENTS: tuple[Document, ...] = (
    Document("d1", "Scott Derrickson", "Scott Derrickson is an American director."),
    Document("d2", "Ed Wood", "Ed Wood was an American filmmaker."),
    Document("d3", "Paris", "Paris is the capital of France."),
    Document("d4", "Uranus", "Voyager 2 approached Uranus; it launched on a Titan IIIE."),
    Document("d5", "Eiffel Tower", "The Eiffel Tower is a wrought-iron tower in Paris."),
    Document("d6", "Titan IIIE", "The Titan IIIE rocket was built by Martin Marietta."),
)
"""The tiny corpus: two people, a city, a planet, a landmark, a rocket."""


def tiny_corpus() -> Corpus:
    """The :data:`TINY_DOCUMENTS` as a :class:`Corpus` named ``"tiny"``."""
    return Corpus(TINY_DOCUMENTS, name="tiny")


def tiny_examples() -> list[QAExample]:
    """Three two-hop questions over the tiny corpus, each with its gold evidence titles."""
    return [
        QAExample(
            "tiny-1",
            "Were Scott Derrickson and Ed Wood of the same nationality?",
            ("yes",),
            evidence=Evidence(titles=("Scott Derrickson", "Ed Wood")),
        ),
        QAExample(
            "tiny-2",
            "The Eiffel Tower stands in the capital of which country?",
            ("France",),
            evidence=Evidence(titles=("Eiffel Tower", "Paris")),
        ),
        QAExample(
            "tiny-3",
            "Which company built the rocket that launched the probe that approached Uranus?",
            ("Martin Marietta",),
            evidence=Evidence(titles=("Uranus", "Titan IIIE")),
        ),
    ]


def make_tiny_env(**kwargs: Any) -> RAGEnv:
    """A :class:`RAGEnv` on the tiny task (BM25, k=2 unless ``kwargs`` say otherwise).

    Any :class:`RAGEnv` keyword is accepted (``retriever="fake"``, ``max_steps``,
    ``reward``, ...); ``examples`` and ``corpus`` default to the tiny ones.
    """
    kwargs.setdefault("examples", tiny_examples())
    kwargs.setdefault("corpus", tiny_corpus())
    kwargs.setdefault("k", 2)
    return RAGEnv("custom", **kwargs)
