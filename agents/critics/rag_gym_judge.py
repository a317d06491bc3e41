"""The RAG-Gym protocol's process annotator: one ranking call per step, reward 1/(1+rank).

As in the official collection, every sampled candidate of a step is shown (duplicates
too), numbered from 0, as ``[i] Query: q`` or ``[i] Answer: a``, after the original
question and the history as JSON: each earlier query with its documents (``id``, ``title``,
``content``), or with its summarised answer when the actor reads summaries (Search-o1,
Re2Search). The judge ranks them by sufficiency, utility and redundancy (prompt
``rag_gym_judge``) and replies ``{"ranked_indices": [...]}`` in a fenced JSON block; a
candidate at 0-based position ``p`` of the ranking gets the reward ``1 / (1 + p)`` (1.0,
0.5, 0.33, ...), which the protocol's data filters read (> 0.75: the best; < 0.5: third
or lower).

Failures: a failed request, an unreadable reply or a ranking that leaves a candidate out
scores the whole step ``None`` with the error recorded (the official code writes zeros,
which gives the same training data: no candidate above 0.75, so the step is skipped).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Sequence
from pathlib import Path

from raggym.agents.critics.base import CriticItem, CriticScore
from raggym.agents.llm.base import LLM, Completion, SamplingParams
from raggym.agents.prompting import PromptError, PromptTemplate, load_prompt
from raggym.agents.rag_gym import load_official_prompts, protocol_question
from raggym_env.actions import Answer, Search
from raggym_env.sanitize import DEFAULT_MAX_REPLY_CHARS, admit_reply, check_max_chars

__all__ = ["RagGymJudgeCritic", "parse_ranked_indices"]

_PLACEHOLDERS = frozenset({"question", "history", "actions"})


def parse_ranked_indices(text: str) -> list[int]:
    """The ``ranked_indices`` list of a judge reply, read as the official reader finds it.

    The first ```` ```json ```` fence followed by ``{`` opens the object, which ends at the
    first ``}`` after it; the object is read as a literal (never executed).

    Raises:
        ValueError: no such object, or no list of integers under ``ranked_indices``.
    """
    pos = 0
    while True:
        start = text.find("```json", pos)
        if start < 0:
            raise ValueError("no ```json {...} block in the judge's reply")
        brace = start + len("```json")
        while brace < len(text) and text[brace].isspace():
            brace += 1
        end = text.find("}", brace + 1) if brace < len(text) and text[brace] == "{" else -1
        if end >= 0:
            break
        pos = start + 1
    raw = text[brace : end + 1]
    try:
        value = ast.literal_eval(raw)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        try:
            value = json.loads(raw)
        except (ValueError, RecursionError):
            raise ValueError(f"unreadable ranking object {raw[:200]!r}") from None
    ranked = value.get("ranked_indices") if isinstance(value, dict) else None
    if not isinstance(ranked, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in ranked
    ):
        raise ValueError(f"'ranked_indices' is not a list of integers in {raw[:200]!r}")
    return ranked


def _action_line(item: CriticItem) -> str:
    action = item.action
    if isinstance(action, Search):
        return f"Query: {action.query}"
    if isinstance(action, Answer):
        return f"Answer: {action.text}"
    return f"Answer: {None}"


def history_json(item: CriticItem) -> str:
    """The history as the annotator is shown it: documents, or the actor's summaries."""
    if item.summaries:
        entries: list[dict[str, object]] = [
            {"query": query, "answer": answer} for query, answer in item.summaries
        ]
    else:
        entries = [
            {
                "query": str(step["query"]),
                "documents": [
                    {"id": d["id"], "title": d["title"], "content": d["text"]}
                    for d in step["documents"]
                ],
            }
            for step in item.observation["history"]
        ]
    return json.dumps(entries, indent=2)


class RagGymJudgeCritic:
    """Ranks all candidates of a step in one LLM call and scores them ``1 / (1 + rank)``.

    Args:
        llm: the annotator's backend (GPT-4o in the paper), separate from the actor's.
        prompt: a packaged prompt name, a file path or a template using ``question``,
            ``history`` and ``actions`` (default ``rag_gym_judge``).
        max_tokens: the annotator's token budget (the official call set none; 2048 here).
        temperature: sampling temperature (0, as the official call).
        name: the critic name recorded in episodes.
        max_reply_chars: most characters kept of each reply.
        official_prompts: a local checkout of the official code to read the annotator's
            prompt from word for word (see :func:`~raggym.agents.rag_gym.load_official_prompts`).
    """

    def __init__(
        self,
        llm: LLM,
        *,
        prompt: str | Path | PromptTemplate = "rag_gym_judge",
        max_tokens: int = 2048,
        temperature: float = 0.0,
        name: str = "rag_gym_judge",
        max_reply_chars: int = DEFAULT_MAX_REPLY_CHARS,
        official_prompts: str | Path | None = None,
    ) -> None:
        if not isinstance(llm, LLM):
            raise TypeError(f"llm must implement the LLM protocol, got {type(llm).__name__}")
        self.llm = llm
        if official_prompts is not None:
            official = load_official_prompts(official_prompts)
            if "judge" not in official:
                raise PromptError(
                    f"{str(official_prompts)!r} has no rag_gym/rewards/lm_rerank.py to read "
                    "the annotator prompt from"
                )
            prompt = official["judge"]
        self.template = load_prompt(prompt)
        if set(self.template.placeholders) != _PLACEHOLDERS:
            raise PromptError(
                f"judge prompt {self.template.name!r} must use exactly the placeholders "
                f"{sorted(_PLACEHOLDERS)}, not {sorted(self.template.placeholders)}"
            )
        self.params = SamplingParams(n=1, temperature=temperature, max_tokens=max_tokens)
        self.name = name
        self.max_reply_chars = check_max_chars(max_reply_chars)

    def __repr__(self) -> str:
        return f"RagGymJudgeCritic(name={self.name!r}, llm={getattr(self.llm, 'name', '?')!r})"

    def messages(self, group: Sequence[CriticItem]) -> list[dict[str, str]]:
        """The annotator conversation for one step's candidates (all of them, in order)."""
        if not group:
            raise ValueError("a judge group needs at least one candidate")
        actions = "\n".join(f"[{i}] {_action_line(item)}" for i, item in enumerate(group))
        return self.template.render(
            question=protocol_question(group[0].observation),
            history=history_json(group[0]),
            actions=actions,
        )

    def score(self, groups: Sequence[Sequence[CriticItem]]) -> list[list[CriticScore]]:
        """Score every candidate; all steps share one ``generate`` call."""
        asks = [g for g, group in enumerate(groups) if group]
        results: list[list[CriticScore]] = [[] for _ in groups]
        if not asks:
            return results
        completions = self.llm.generate([self.messages(groups[g]) for g in asks], self.params)
        if len(completions) != len(asks):
            raise RuntimeError(
                f"LLM {getattr(self.llm, 'name', '?')!r} returned {len(completions)} "
                f"completions for {len(asks)} conversations"
            )
        for g, completion in zip(asks, completions, strict=True):
            results[g] = self._verdicts(completion, len(groups[g]))
        return results

    def _verdicts(self, completion: Completion, count: int) -> list[CriticScore]:
        if completion.error is not None or not completion.texts:
            error = f"judge request failed: {completion.error or 'the backend returned no text'}"
            return [CriticScore(None, error=error)] * count
        raw = admit_reply(completion.texts[0], self.max_reply_chars)
        try:
            ranked = parse_ranked_indices(raw)
        except ValueError as exc:
            return [CriticScore(None, output=raw, error=f"RankingParseError: {exc}")] * count
        position: dict[int, int] = {}
        for place, index in enumerate(ranked):
            position.setdefault(index, place)
        missing = [i for i in range(count) if i not in position]
        if missing:
            error = f"RankingParseError: the ranking leaves out candidate(s) {missing}"
            return [CriticScore(None, output=raw, error=error)] * count
        return [CriticScore(1.0 / (1 + position[i]), output=raw) for i in range(count)]
