"""Answer one ad-hoc question with an agent: the notebook entry point.

:func:`ask` builds a one-question environment over a corpus given inline (or as a file or
a :class:`~raggym_env.corpora.Corpus`), plays the episode with
:func:`~raggym.agents.rollout.run_episode` and returns its record, which prints as a
readable trajectory. It lives beside the runners, not on :class:`~raggym.agents.base.Agent`,
so that the agent contract does not depend on the machinery that plays episodes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

from raggym.agents.base import Agent
from raggym.agents.baselines import ScriptedPolicy
from raggym.agents.rollout import run_episode
from raggym_env.corpora import BaseCorpus, Corpus
from raggym_env.env import RAGEnv
from raggym_env.episode import EpisodeRecord
from raggym_env.types import QAExample

__all__ = ["ask"]

_NO_GOLD = "<no gold answer given>"
_UNSCORED_METRICS = ("num_searches", "steps")


def ask(
    agent: Agent | ScriptedPolicy,
    question: str,
    *,
    corpus: BaseCorpus | str | Path | Sequence[Mapping[str, str]],
    answers: Sequence[str] = (),
    options: Mapping[str, str] | None = None,
    retriever: str = "bm25",
    k: int = 5,
    max_steps: int = 10,
    seed: int | None = None,
) -> EpisodeRecord:
    """Answer one ad-hoc question over ``corpus`` with ``agent`` and return the episode.

    Args:
        agent: the agent (or a scripted policy).
        question: the question to answer.
        corpus: a corpus (:class:`~raggym_env.corpora.Corpus` or
            :class:`~raggym_env.corpora.DiskCorpus`), a corpus file, store or folder, or a
            list of ``{"title", "text"}`` mappings.
        answers: gold answers (aliases); give them to have the answer scored. Without
            them the record keeps only the search and step counts, and no gold.
        options: multiple-choice options by letter (the first answer, when it is one of
            the letters, is the gold letter).
        retriever: the retriever backend to build over ``corpus``.
        k: documents per search.
        max_steps: the step budget.
        seed: the episode's seed.

    Returns:
        The episode record (it prints as the trajectory).
    """
    if not isinstance(corpus, (BaseCorpus, str, Path)):
        corpus = Corpus.from_passages(((d["title"], d["text"]) for d in corpus), "adhoc")
    letter = None
    if options:
        letter = answers[0] if answers and answers[0] in options else next(iter(options))
    example = QAExample(
        id="adhoc-0",
        question=question,
        answers=tuple(answers) or (_NO_GOLD,),
        options=dict(options) if options else None,
        answer_letter=letter,
    )
    env = RAGEnv(
        "custom", examples=[example], corpus=corpus, retriever=retriever, k=k,
        max_steps=max_steps,
    )  # fmt: skip
    record = run_episode(env, agent, seed=seed)
    if not answers:  # nothing to score against: keep only the counts
        kept = {key: v for key, v in record.metrics.items() if key in _UNSCORED_METRICS}
        record = dataclasses.replace(record, metrics=kept, gold={})
    return record
