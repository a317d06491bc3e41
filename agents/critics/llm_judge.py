"""An LLM-as-judge critic: one call per step ranks that step's candidate actions.

:class:`LLMJudgeCritic` shows an LLM the state (:func:`~raggym.agents.critics.base.state_text`)
and the step's *distinct* candidate actions, numbered from 1, using the packaged
``judge`` prompt (or the user's), and asks for a final line such as
``Ranking: 3 > 1 > 2``. Candidates are distinct by their canonical action text
(:func:`~raggym.agents.critics.base.action_text`), so two samples that parse to the same action
are shown once and share the verdict. Every group of a :meth:`~LLMJudgeCritic.score` call
that needs judging goes to the LLM in one batched ``generate`` call.

Scores: the candidate ranked ``r``-th (``r = 0`` for the best) scores ``1 / (1 + r)``:
1, 1/2, 1/3, ... Ties written with ``=`` (``Ranking: 2 = 1 > 3``) share the better rank.
A group with a single distinct candidate needs no call and scores 1.0.

Failures are never read as a score: a candidate the judge left out of its ranking, or
every candidate of a group whose output has no parsable ranking line (a number out of
range or repeated, a word where a number belongs) or whose request failed, gets
``score=None`` with the ``error`` and the judge's raw text in ``output``. The ranking line
is parsed with linear-time regular expressions, never evaluated. The judge's text is
admitted like an agent's reply (:func:`~raggym_env.sanitize.admit_reply`: lone surrogates
replaced, cut at ``max_reply_chars`` with a marker) before it is parsed or stored.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from raggym.agents.critics.base import CriticItem, CriticScore, action_text, state_text
from raggym.agents.llm.base import LLM, Completion, SamplingParams
from raggym.agents.prompting import PromptError, PromptTemplate, load_prompt
from raggym.agents.rendering import excerpt
from raggym_env.sanitize import DEFAULT_MAX_REPLY_CHARS, admit_reply, check_max_chars

__all__ = ["LLMJudgeCritic", "RankingParseError", "parse_ranking"]

_PLACEHOLDERS = frozenset({"state", "candidates", "count"})
# Linear time: no two adjacent parts can match the same characters (each optional group
# carries its own trailing spaces), so a long run of spaces is never split many ways.
_RANKING_LINE = re.compile(r"ranking\W*?:(.*)", re.IGNORECASE | re.ASCII)
_CANDIDATE = re.compile(
    r"(?:(?:candidate|action)\s*)?(?:no\.?\s*)?(?:[#\[(]\s*)?(\d+)\s*[\])]?\.?",
    re.IGNORECASE | re.ASCII,
)
_MAX_DIGITS = 9  # more digits cannot name a shown candidate (and int() refuses 4,300+)
_SHOW_CHARS = 500


class RankingParseError(ValueError):
    """The judge's output holds no well-formed ``Ranking:`` line."""


def parse_ranking(text: str, count: int) -> list[list[int]]:
    """Read the last ``Ranking: a > b = c`` line of ``text`` into tiers of 0-based indices.

    ``>`` separates tiers (a comma is accepted when there is no ``>``), ``=`` joins tied
    candidates, and a number may be written ``2``, ``#2``, ``[2]``, ``(2)`` or
    ``Candidate 2``. Markdown emphasis around the line is ignored. Candidates may be left
    out; the caller decides what that means.

    Args:
        text: the judge's output.
        count: how many candidates were shown (numbered 1..count).

    Returns:
        Tiers best first, each a list of 0-based candidate indices.

    Raises:
        RankingParseError: no ranking line, an empty one, something that is not a
            candidate number, a number outside 1..count, or a number given twice.
    """
    lines = [m.group(1) for line in text.splitlines() if (m := _RANKING_LINE.search(line))]
    if not lines:
        raise RankingParseError("no 'Ranking: a > b > c' line in the judge's output")
    body = lines[-1].strip().strip("*_`").strip().rstrip(".").strip()
    if not body:
        raise RankingParseError("the ranking line is empty")
    separator = ">" if ">" in body else ","
    tiers: list[list[int]] = []
    seen: set[int] = set()
    for part in body.split(separator):
        tier = []
        for token in part.split("="):
            match = _CANDIDATE.fullmatch(token.strip().strip("*_`").strip())
            if match is None:
                raise RankingParseError(
                    f"{excerpt(token.strip())} in the ranking is not a candidate number"
                )
            digits = match.group(1).lstrip("0") or "0"
            if len(digits) > _MAX_DIGITS:
                raise RankingParseError(f"candidate {excerpt(digits)} is not one of 1..{count}")
            number = int(digits)
            if not 1 <= number <= count:
                raise RankingParseError(f"candidate {number} is not one of 1..{count}")
            if number in seen:
                raise RankingParseError(f"candidate {number} appears twice in the ranking")
            seen.add(number)
            tier.append(number - 1)
        tiers.append(tier)
    return tiers


def _show(item: CriticItem) -> str:
    text = " ".join(action_text(item.action, item.text).split())
    if len(text) > _SHOW_CHARS:
        text = text[: _SHOW_CHARS - 3] + "..."
    return text if item.action is not None else f"(not a valid action) {text}"


class LLMJudgeCritic:
    """Ranks each step's distinct candidates with one LLM call per step.

    Args:
        llm: any :class:`~raggym.agents.llm.base.LLM` backend.
        prompt: a packaged prompt name, a prompt file path or a loaded template; it may use
            the placeholders ``state``, ``candidates`` (the numbered list) and ``count``.
        max_tokens: the judge's token budget (room for reasoning and the ranking line).
        temperature: sampling temperature (0: greedy, reproducible).
        name: the critic name recorded in episodes.
        max_reply_chars: most characters kept of each judge reply (default
            :data:`~raggym_env.sanitize.DEFAULT_MAX_REPLY_CHARS`, 32,000).

    Raises:
        TypeError: ``llm`` is not an LLM backend.
        ValueError: a bad sampling argument, or a prompt declaring other placeholders.
    """

    def __init__(
        self,
        llm: LLM,
        *,
        prompt: str | Path | PromptTemplate = "judge",
        max_tokens: int = 256,
        temperature: float = 0.0,
        name: str = "llm_judge",
        max_reply_chars: int = DEFAULT_MAX_REPLY_CHARS,
    ) -> None:
        if not isinstance(llm, LLM):
            raise TypeError(f"llm must implement the LLM protocol, got {type(llm).__name__}")
        self.llm = llm
        self.template = load_prompt(prompt)
        unknown = set(self.template.placeholders) - _PLACEHOLDERS
        if unknown:
            raise PromptError(
                f"judge prompt {self.template.name!r} uses placeholders {sorted(unknown)}; "
                f"a judge prompt may use only {sorted(_PLACEHOLDERS)}"
            )
        self.params = SamplingParams(n=1, temperature=temperature, max_tokens=max_tokens)
        self.name = name
        self.max_reply_chars = check_max_chars(max_reply_chars)

    def __repr__(self) -> str:
        return f"LLMJudgeCritic(name={self.name!r}, llm={getattr(self.llm, 'name', '?')!r})"

    def messages(self, group: Sequence[CriticItem]) -> tuple[list[dict[str, str]], list[int]]:
        """The judge conversation for one group, and each candidate's 0-based distinct index.

        Raises:
            ValueError: the group is empty.
        """
        if not group:
            raise ValueError("a judge group needs at least one candidate")
        keys: dict[str, int] = {}
        shown: list[str] = []
        slots = []
        for item in group:
            key = action_text(item.action, item.text)
            if key not in keys:
                keys[key] = len(shown)
                shown.append(_show(item))
            slots.append(keys[key])
        values = {
            "state": state_text(group[0].observation),
            "candidates": "\n".join(f"{k}. {text}" for k, text in enumerate(shown, 1)),
            "count": len(shown),
        }
        rendered = self.template.render(**{k: values[k] for k in self.template.placeholders})
        return rendered, slots

    def score(self, groups: Sequence[Sequence[CriticItem]]) -> list[list[CriticScore]]:
        """Score every candidate; all groups needing a verdict share one ``generate`` call."""
        results: list[list[CriticScore]] = [[] for _ in groups]
        asks: list[tuple[int, list[int]]] = []
        conversations: list[list[dict[str, str]]] = []
        for g, group in enumerate(groups):
            if not group:
                continue
            conversation, slots = self.messages(group)
            if max(slots) == 0:
                results[g] = [CriticScore(1.0) for _ in group]
                continue
            asks.append((g, slots))
            conversations.append(conversation)
        if not conversations:
            return results
        completions = self.llm.generate(conversations, self.params)
        if len(completions) != len(conversations):
            raise RuntimeError(
                f"LLM {getattr(self.llm, 'name', '?')!r} returned {len(completions)} "
                f"completions for {len(conversations)} conversations"
            )
        for (g, slots), completion in zip(asks, completions, strict=True):
            results[g] = self._verdicts(completion, slots)
        return results

    def _verdicts(self, completion: Completion, slots: list[int]) -> list[CriticScore]:
        if completion.error is not None or not completion.texts:
            error = f"judge request failed: {completion.error or 'the backend returned no text'}"
            return [CriticScore(None, error=error) for _ in slots]
        raw = admit_reply(completion.texts[0], self.max_reply_chars)
        count = max(slots) + 1
        try:
            tiers = parse_ranking(raw, count)
        except RankingParseError as exc:
            return [CriticScore(None, output=raw, error=f"RankingParseError: {exc}") for _ in slots]
        rank: dict[int, int] = {}
        better = 0
        for tier in tiers:
            for index in tier:
                rank[index] = better
            better += len(tier)
        verdicts = []
        for slot in slots:
            if slot in rank:
                verdicts.append(CriticScore(1.0 / (1 + rank[slot]), output=raw))
            else:
                error = f"the judge left candidate {slot + 1} out of its ranking"
                verdicts.append(CriticScore(None, output=raw, error=error))
        return verdicts
