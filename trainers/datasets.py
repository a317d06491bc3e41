"""Episode records -> training rows: SFT, DPO pairs and pairwise reward-model data.

Process-supervision collection (a critic-guided agent sampling N candidates per step, a
critic ranking them, the best followed) writes :class:`~raggym_env.episode.EpisodeRecord`
files. The pure functions here turn those records into rows in the formats TRL's trainers
read, write them as JSONL and load them as a ``datasets.Dataset``:

* :func:`sft_rows`: one row per model-decided step of each kept episode, in TRL's
  conversational prompt-completion format::

      {"prompt": [<the exact messages sent to the LLM at that step>],
       "completion": [{"role": "assistant", "content": <the followed model text>}],
       "meta": {...}}

* :func:`dpo_rows`: preference pairs between the best candidate of a step and each
  candidate ranked ``rejected_rank`` or lower (default 3: rank 1 vs rank >= 3, as in the
  RAG-Gym paper), conversational::

      {"prompt": [...], "chosen": [{"role": "assistant", "content": <best text>}],
       "rejected": [{"role": "assistant", "content": <worse text>}], "meta": {...}}

* :func:`reward_rows`: pairwise reward-model (critic) data in TRL's implicit-prompt
  format, plain strings, each the exact text a reward-model critic scores at inference
  (:func:`raggym.agents.critics.base.critic_input` of the rebuilt observation and the action)::

      {"chosen": "Question: ... Next action: Search: ...", "rejected": "...",
       "meta": {...}}

``meta`` says where a row came from (episode, step, scores, ranks, critic name); it is kept in
JSONL and dropped by :func:`to_dataset`, which keeps exactly the columns TRL reads (TRL
treats some column names, e.g. ``tools`` or ``images``, specially, so no extra column is
passed on).

Ranking (:func:`rank_candidates`). A candidate is *usable* when it parsed into a search or
an answer (``action`` set) and its critic gave it a number (``score`` not ``None``, not
NaN). Candidates with the same text are one candidate, ranked once with the highest score
any copy of it received (a text sampled twice is one completion, and counting copies would
push other texts down the ranking). Ranks are 1-based competition ranks over the distinct
usable texts: ties share a rank and the next rank skips (scores ``3, 3, 1`` rank
``1, 1, 3``), so rank ``r`` means ``r - 1`` texts scored strictly higher.

Exclusion (:func:`step_excluded`). A failure is never read as a low score: a step where
the critic failed on any parsed candidate (``score`` ``None`` or NaN; the agent records the
critic's error) gives no training data at all, since the missing candidate might have been
the best or the worst. A candidate that did not parse is merely unusable (it has no action
to prefer or reject). Steps without a model text (scripted steps), without a recorded
prompt, whose followed text was replaced by a forced answer (the budget ran out and the
text was not an answer), without candidates, or with fewer than two distinct scores give no
preference data either. Every skip is counted by reason in :class:`DatasetStats`.

Protocols. Every builder takes ``protocol=`` (:mod:`raggym_env.protocols`). The default
``"raggym"`` is what this docstring describes. ``"rag-gym"`` reproduces the RAG-Gym
paper's code: an episode is used only when :func:`rag_gym_episode_skipped` accepts it
(outcome strictly above 0.75 and the last step an answer the model gave), checked from the
record itself whatever flag collection wrote; a candidate is positive when its recorded
score is above 0.75 and negative when below 0.5 (the paper's judge writes ``1/(1+rank)``
with a 0-based rank: 1.0, 0.5, 0.333...), so SFT imitates the top-ranked candidate and
DPO and reward pairs set it against every candidate ranked third or lower; reward rows are
conversational (the step's prompt plus the full candidate text as the assistant turn).

Duplicates: identical DPO or reward rows (same prompt and texts) are written once; SFT
rows are not de-duplicated (pass :func:`raggym_env.store.final_episodes` output so that a
retried question counts once).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from raggym.agents.critics.base import critic_input
from raggym_env.actions import Action, Answer, Search
from raggym_env.availability import require
from raggym_env.corpora import BaseCorpus
from raggym_env.episode import Candidate, EpisodeRecord, StepRecord
from raggym_env.metrics import paper_outcome
from raggym_env.observation import Observation, build_observation
from raggym_env.protocols import DEFAULT_PROTOCOL, RAG_GYM, check_protocol
from raggym_env.types import Document

if TYPE_CHECKING:
    from datasets import Dataset

__all__ = [
    "COLUMNS",
    "CRITIC_FAILURE",
    "DOCUMENT_MISMATCH",
    "DUPLICATE",
    "EPISODE_FAILED",
    "EPISODE_NOT_KEPT",
    "FORCED_ANSWER",
    "FORMATS",
    "INVALID_ACTION",
    "MISSING_DOCUMENT",
    "NO_CANDIDATES",
    "NO_FINAL_ANSWER",
    "NO_KEPT_FLAG",
    "NO_MODEL_TEXT",
    "NO_POSITIVE",
    "NO_PROMPT",
    "NO_REJECTED",
    "OPTIONAL_COLUMNS",
    "OUTCOME_NOT_ABOVE",
    "RAG_GYM_NEGATIVE_BELOW",
    "RAG_GYM_POSITIVE_ABOVE",
    "RAG_GYM_THRESHOLD",
    "SAME_ACTION",
    "TOO_FEW_SCORES",
    "CorpusMismatchError",
    "DatasetStats",
    "Kind",
    "dpo_rows",
    "observation_at",
    "rag_gym_episode_skipped",
    "rag_gym_outcome",
    "rank_candidates",
    "read_jsonl",
    "reward_rows",
    "sft_rows",
    "step_excluded",
    "to_dataset",
    "write_jsonl",
]

Kind = Literal["sft", "dpo", "reward"]

FORMATS: dict[str, tuple[tuple[str, ...], ...]] = {
    "sft": (("prompt", "completion"), ("messages",), ("text",)),
    "dpo": (("prompt", "chosen", "rejected"), ("chosen", "rejected")),
    "reward": (("chosen", "rejected"),),
}
"""The column sets :func:`to_dataset` accepts for each kind (one of them), first the one
this module writes: exactly the columns TRL's trainers read."""

COLUMNS: dict[str, tuple[str, ...]] = {kind: options[0] for kind, options in FORMATS.items()}
"""The columns of the rows this module writes, for each kind."""

OPTIONAL_COLUMNS: dict[str, tuple[str, ...]] = {"reward": ("margin",)}
"""Numeric columns :func:`to_dataset` keeps when the rows have them (TRL's reward margin)."""

# Reasons an episode is skipped.
EPISODE_FAILED = "episode failed"
"""The episode crashed (``error`` set); its steps are not imitated (SFT only)."""
NO_KEPT_FLAG = "episode has no 'kept' flag"
"""``kept_only`` was asked but the record has no ``extra["kept"]`` (not from collection)."""
EPISODE_NOT_KEPT = "episode not kept"
"""``kept_only`` was asked and collection did not keep the episode."""

OUTCOME_NOT_ABOVE = "outcome not above the threshold (rag-gym)"
"""``protocol="rag-gym"``: the outcome (F1, or accuracy) is missing or at most 0.75."""
NO_FINAL_ANSWER = "did not end with a model answer (rag-gym)"
"""``protocol="rag-gym"``: the last step is not an answer the model gave (a search, a
scripted step, an invalid action, or an answer forced when the budget ran out)."""

RAG_GYM_THRESHOLD = 0.75
"""``protocol="rag-gym"``: an episode is used when its outcome is strictly above this."""
RAG_GYM_POSITIVE_ABOVE = 0.75
"""``protocol="rag-gym"``: a candidate whose score is above this is a positive (rank 1)."""
RAG_GYM_NEGATIVE_BELOW = 0.5
"""``protocol="rag-gym"``: a candidate whose score is below this is a negative (rank >= 3)."""

# Reasons a step is skipped.
NO_MODEL_TEXT = "no model text (scripted step)"
"""The step's action came from code, not from the model (``raw_text`` is ``None``)."""
NO_PROMPT = "no prompt recorded"
"""The step has no valid ``extra["prompt"]`` message list to train on."""
INVALID_ACTION = "invalid action"
"""The followed text did not parse into an action (SFT never imitates it)."""
FORCED_ANSWER = "forced answer"
"""The budget ran out and the followed text, not an answer, was replaced by one."""
NO_CANDIDATES = "no candidates"
"""The agent did not sample and score several candidates at this step."""
CRITIC_FAILURE = "critic failure"
"""The critic (reward model, judge, rollouts) failed on a parsed candidate of the step."""
TOO_FEW_SCORES = "fewer than 2 distinct scores"
"""Fewer than two usable candidates with different scores: nothing to prefer."""
NO_REJECTED = "no candidate at the rejected rank"
"""No usable candidate ranked ``rejected_rank`` or lower."""
MISSING_DOCUMENT = "document missing from corpus"
"""A document the episode retrieved before the step is not in the corpus given."""
DOCUMENT_MISMATCH = "document differs from corpus"
"""A retrieved document's title differs from the corpus's: the corpus is not the one used."""
SAME_ACTION = "pairs propose the same action"
"""Reward data: every pair's two texts propose the same action (identical critic inputs)."""
NO_POSITIVE = "no positive candidate (rag-gym)"
"""``protocol="rag-gym"``: no usable candidate scored above 0.75."""
DUPLICATE = "duplicate rows"
"""Every row of the step repeats a row made earlier (same prompt and texts)."""


class CorpusMismatchError(LookupError):
    """A document an episode retrieved is missing from the corpus, or differs from it.

    Attributes:
        reason: :data:`MISSING_DOCUMENT` or :data:`DOCUMENT_MISMATCH`.
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class DatasetStats:
    """What a conversion made and what it skipped, by reason (for CLIs and logs).

    Pass one to :func:`sft_rows`, :func:`dpo_rows` or :func:`reward_rows` as ``stats=``;
    the function adds its counts (so one object can sum over several calls).

    Attributes:
        kind: ``"sft"``, ``"dpo"`` or ``"reward"``.
        episodes: episodes looked at.
        episodes_used: episodes that gave at least one row.
        steps: steps looked at (steps of skipped episodes are not counted).
        steps_used: steps that gave at least one row.
        rows: rows made.
        duplicates: rows dropped because an identical row was already made.
        skipped_episodes: reason -> episodes skipped for it.
        skipped_steps: reason -> steps skipped for it.
    """

    kind: str
    episodes: int = 0
    episodes_used: int = 0
    steps: int = 0
    steps_used: int = 0
    rows: int = 0
    duplicates: int = 0
    skipped_episodes: Counter[str] = field(default_factory=Counter)
    skipped_steps: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready mapping (reasons sorted by count, most frequent first)."""
        return {
            "kind": self.kind,
            "episodes": self.episodes,
            "episodes_used": self.episodes_used,
            "steps": self.steps,
            "steps_used": self.steps_used,
            "rows": self.rows,
            "duplicates": self.duplicates,
            "skipped_episodes": dict(self.skipped_episodes.most_common()),
            "skipped_steps": dict(self.skipped_steps.most_common()),
        }

    def summary(self) -> str:
        """A few readable lines: rows made, then every skip reason with its count."""
        lines = [
            f"{self.kind}: {self.rows} rows from {self.steps_used}/{self.steps} steps of "
            f"{self.episodes_used}/{self.episodes} episodes"
            + (f" ({self.duplicates} duplicate rows dropped)" if self.duplicates else "")
        ]
        for title, counts in (
            ("episodes skipped", self.skipped_episodes),
            ("steps skipped", self.skipped_steps),
        ):
            if counts:
                lines.append(f"  {title}:")
                lines.extend(f"    {n:>6}  {reason}" for reason, n in counts.most_common())
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


# --------------------------------------------------------------------------------------------
# Reading steps
# --------------------------------------------------------------------------------------------


def _action(data: Mapping[str, Any] | None) -> Action | None:
    """The action a recorded ``{"type", "text"}`` mapping describes (``None`` if none)."""
    if not isinstance(data, Mapping):
        return None
    kind, text = data.get("type"), data.get("text")
    if not isinstance(text, str):
        return None
    try:
        if kind == "search":
            return Search(text)
        if kind == "answer":
            return Answer(text)
    except ValueError:  # blank text: not an action the env would take
        return None
    return None


def _has_score(candidate: Candidate) -> bool:
    return candidate.score is not None and not math.isnan(candidate.score)


def _usable(candidate: Candidate) -> bool:
    """Parsed into a search or an answer and scored with a number."""
    return _has_score(candidate) and _action(candidate.action) is not None


def _critic_failed(candidate: Candidate) -> bool:
    """A parsed candidate the critic gave no number (an unparsed one is merely unusable)."""
    return _action(candidate.action) is not None and not _has_score(candidate)


def _prompt(step: StepRecord) -> list[dict[str, str]] | None:
    """The recorded chat messages of the step (role and content only), if valid."""
    prompt = step.extra.get("prompt")
    if not isinstance(prompt, list) or not prompt:
        return None
    messages = []
    for message in prompt:
        if not isinstance(message, Mapping):
            return None
        role, content = message.get("role"), message.get("content")
        if not isinstance(role, str) or not isinstance(content, str):
            return None
        messages.append({"role": role, "content": content})
    return messages


def _followed(step: StepRecord) -> int | None:
    """Index of the candidate the agent followed (``extra["chosen"]``), if valid."""
    chosen = step.extra.get("chosen")
    if isinstance(chosen, bool) or not isinstance(chosen, int):
        return None
    return chosen if 0 <= chosen < len(step.candidates) else None


def _forced(step: StepRecord) -> bool:
    """Whether the followed text was replaced by a forced answer (budget rule)."""
    fields = step.extra.get("fields")
    return isinstance(fields, Mapping) and str(fields.get("forced_answer", "")).lower() == "true"


def rank_candidates(step: StepRecord) -> list[tuple[int, Candidate, int]]:
    """Rank the usable candidates of a step, best first.

    Usable: parsed into a search or an answer and given a numeric score. Candidates with
    the same text count once, at the highest score any copy received, represented by the
    earliest copy with that score. Ranks are 1-based competition ranks (ties share a rank,
    the next rank skips); within a rank, earlier candidates come first.

    Args:
        step: the recorded step.

    Returns:
        ``(index in step.candidates, candidate, rank)`` for each distinct usable text.
    """
    best: dict[str, tuple[float, int]] = {}
    for index, candidate in enumerate(step.candidates):
        if not _usable(candidate) or candidate.score is None:
            continue
        previous = best.get(candidate.text)
        if previous is None or candidate.score > previous[0]:
            best[candidate.text] = (candidate.score, index)
    ordered = sorted(best.values(), key=lambda entry: (-entry[0], entry[1]))
    ranked: list[tuple[int, Candidate, int]] = []
    for position, (score, index) in enumerate(ordered):
        tied = position > 0 and score == ordered[position - 1][0]
        rank = ranked[-1][2] if tied else position + 1
        ranked.append((index, step.candidates[index], rank))
    return ranked


def step_excluded(step: StepRecord, *, for_policy: bool = True) -> str | None:
    """Why a step gives no preference data, or ``None`` when it gives some.

    Checked in order (the first that applies is returned):

    1. :data:`NO_MODEL_TEXT`, :data:`NO_PROMPT`, :data:`FORCED_ANSWER`: only with
       ``for_policy``, since policy data (DPO) trains on the recorded prompt and texts.
       Reward-model data is built from states and actions, which forced steps have too.
    2. :data:`NO_CANDIDATES`: the agent did not sample candidates.
    3. :data:`CRITIC_FAILURE`: a parsed candidate has no numeric score (a failed judge call,
       a crashed rollout, an unreadable judgment). The whole step is excluded: a failure
       is never counted as a low score.
    4. :data:`TOO_FEW_SCORES`: fewer than two distinct scores among usable candidates.

    Args:
        step: the recorded step.
        for_policy: check what policy training needs (model text, prompt, no forcing).

    Returns:
        One of the reason constants of this module, or ``None``.
    """
    if for_policy:
        if step.raw_text is None:
            return NO_MODEL_TEXT
        if _prompt(step) is None:
            return NO_PROMPT
        if _forced(step):
            return FORCED_ANSWER
    if not step.candidates:
        return NO_CANDIDATES
    if any(_critic_failed(c) for c in step.candidates):
        return CRITIC_FAILURE
    if len({c.score for _, c, _ in rank_candidates(step)}) < 2:
        return TOO_FEW_SCORES
    return None


def _pairs(
    step: StepRecord, rejected_rank: int
) -> list[tuple[tuple[int, Candidate, int], tuple[int, Candidate, int]]]:
    """(best, worse) entries of a step: the best against each text ranked low enough.

    The best is the candidate the agent followed when it is ranked first, else the first
    of the rank-1 texts. Each worse text has ``rank >= rejected_rank`` and a score strictly
    below the best's (implied by the ranking; checked anyway).
    """
    ranked = rank_candidates(step)
    if not ranked:
        return []
    followed = _followed(step)
    followed_text = step.candidates[followed].text if followed is not None else None
    top = [entry for entry in ranked if entry[2] == 1]
    best = next((entry for entry in top if entry[1].text == followed_text), top[0])
    best_score = best[1].score
    if best_score is None:  # usable candidates are scored; keeps the type checker informed
        return []
    return [
        (best, entry)
        for entry in ranked
        if entry[2] >= rejected_rank
        and entry[1].score is not None
        and entry[1].score < best_score
        and entry[1].text != best[1].text
    ]


def _rag_gym_pair_list(
    step: StepRecord,
) -> list[tuple[tuple[int, Candidate, int], tuple[int, Candidate, int]]]:
    """Every (positive, negative) pair of a step under the rag-gym score thresholds."""
    positives, negatives = _rag_gym_pairs(step)
    return [(p, n) for p in positives for n in negatives if p[1].text != n[1].text]


def _check_rank(rejected_rank: int) -> None:
    if isinstance(rejected_rank, bool) or not isinstance(rejected_rank, int) or rejected_rank < 2:
        raise ValueError(f"rejected_rank must be an int >= 2, got {rejected_rank!r}")


def _stats(stats: DatasetStats | None, kind: str) -> DatasetStats:
    if stats is None:
        return DatasetStats(kind)
    if not isinstance(stats, DatasetStats):
        raise TypeError(f"stats must be a DatasetStats, got {type(stats).__name__}")
    if stats.kind != kind:
        raise ValueError(f"stats is for {stats.kind!r} rows, not {kind!r}")
    return stats


def _episode_skipped(record: EpisodeRecord, *, kept_only: bool, allow_failed: bool) -> str | None:
    if not isinstance(record, EpisodeRecord):
        raise TypeError(f"expected EpisodeRecord objects, got {type(record).__name__}")
    if record.error is not None and not allow_failed:
        return EPISODE_FAILED
    if kept_only:
        if "kept" not in record.extra:
            return NO_KEPT_FLAG
        if record.extra["kept"] is not True:
            return EPISODE_NOT_KEPT
    return None


def _meta(record: EpisodeRecord, position: int, step: StepRecord) -> dict[str, Any]:
    return {
        "example_id": record.example_id,
        "env_id": record.env_id,
        "agent": record.extra.get("agent"),
        "step": position,
        "action": dict(step.action),
    }


def _pair_meta(
    record: EpisodeRecord,
    position: int,
    step: StepRecord,
    best: tuple[int, Candidate, int],
    worse: tuple[int, Candidate, int],
) -> dict[str, Any]:
    return {
        **_meta(record, position, step),
        "scorer": best[1].scorer,
        "chosen_index": best[0],
        "rejected_index": worse[0],
        "chosen_score": best[1].score,
        "rejected_score": worse[1].score,
        "chosen_rank": best[2],
        "rejected_rank": worse[2],
        "chosen_action": dict(best[1].action or {}),
        "rejected_action": dict(worse[1].action or {}),
    }


def _assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


# --------------------------------------------------------------------------------------------
# Row builders
# --------------------------------------------------------------------------------------------


def _rag_gym_pairs(
    step: StepRecord,
) -> tuple[list[tuple[int, Candidate, int]], list[tuple[int, Candidate, int]]]:
    """Positives (score above 0.75) and negatives (below 0.5) of a step, one per text."""
    ranked = rank_candidates(step)
    positives = [
        e for e in ranked if e[1].score is not None and e[1].score > RAG_GYM_POSITIVE_ABOVE
    ]
    negatives = [
        e for e in ranked if e[1].score is not None and e[1].score < RAG_GYM_NEGATIVE_BELOW
    ]
    return positives, negatives


def _rag_gym_step_skipped(step: StepRecord, *, need_negative: bool) -> str | None:
    """Why a step gives no rag-gym rows (policy checks, candidates, critic, signs)."""
    for reason in (_policy_skipped(step), None if step.candidates else NO_CANDIDATES):
        if reason is not None:
            return reason
    if any(_critic_failed(c) for c in step.candidates):
        return CRITIC_FAILURE
    positives, negatives = _rag_gym_pairs(step)
    if not positives:
        return NO_POSITIVE
    if need_negative and not negatives:
        return NO_REJECTED
    return None


def _policy_skipped(step: StepRecord) -> str | None:
    if step.raw_text is None:
        return NO_MODEL_TEXT
    if _prompt(step) is None:
        return NO_PROMPT
    if _forced(step):
        return FORCED_ANSWER
    return None


def _sft_skipped(step: StepRecord) -> str | None:
    if step.raw_text is None:
        return NO_MODEL_TEXT
    if _prompt(step) is None:
        return NO_PROMPT
    if step.action_type == "invalid":
        return INVALID_ACTION
    if _forced(step):
        return FORCED_ANSWER
    if any(_critic_failed(c) for c in step.candidates):
        return CRITIC_FAILURE
    return None


def rag_gym_outcome(record: EpisodeRecord) -> float | None:
    """The paper's outcome label of an episode (:func:`raggym_env.metrics.paper_outcome`).

    The final answer as given, against the first gold answer (the gold letter for multiple
    choice); ``None`` when the record holds no gold.
    """
    gold = record.gold if isinstance(record.gold, Mapping) else {}
    multiple_choice = record.options is not None
    if multiple_choice:
        target = gold.get("answer_letter")
    else:
        answers = gold.get("answers")
        target = answers[0] if isinstance(answers, list) and answers else None
    if not isinstance(target, str) or not target:
        return None
    return paper_outcome(record.final_answer, target, multiple_choice)


def rag_gym_episode_skipped(
    record: EpisodeRecord, *, threshold: float = RAG_GYM_THRESHOLD
) -> str | None:
    """Why the RAG-Gym paper's episode filter rejects ``record``, or ``None`` if it keeps it.

    The filter, read from the record itself (never from a ``kept`` flag another protocol
    wrote): the episode did not crash (:data:`EPISODE_FAILED`), its outcome as the paper's
    code labels it (token F1 of the final answer against the first gold answer, or exact
    match with the gold letter for multiple choice:
    :func:`raggym_env.metrics.paper_outcome`) is strictly above ``threshold``
    (:data:`OUTCOME_NOT_ABOVE`), and its last step is an answer the model gave, neither a
    search, a scripted or invalid step, nor an answer forced in when the budget ran out
    (:data:`NO_FINAL_ANSWER`).

    Args:
        record: the episode.
        threshold: the outcome an episode must exceed (the paper's 0.75).
    """
    if not isinstance(record, EpisodeRecord):
        raise TypeError(f"expected EpisodeRecord objects, got {type(record).__name__}")
    if record.error is not None:
        return EPISODE_FAILED
    outcome = rag_gym_outcome(record)
    if outcome is None or not outcome > threshold:
        return OUTCOME_NOT_ABOVE
    last = record.steps[-1] if record.steps else None
    if last is None or last.action_type != "answer" or last.raw_text is None or _forced(last):
        return NO_FINAL_ANSWER
    return None


def _steps(
    episodes: Iterable[EpisodeRecord],
    stats: DatasetStats,
    rows: list[dict[str, Any]],
    *,
    kept_only: bool,
    allow_failed: bool,
    protocol: str = DEFAULT_PROTOCOL,
) -> Iterator[tuple[EpisodeRecord, int, StepRecord]]:
    """Every step of the usable episodes, with the episode, step and row counts kept.

    An episode that :func:`_episode_skipped` (or, under ``"rag-gym"``,
    :func:`rag_gym_episode_skipped`) rejects is counted with its reason; an episode whose
    steps added to ``rows`` counts as used; the rows made are added when done.
    """
    for record in episodes:
        stats.episodes += 1
        if protocol == RAG_GYM:
            reason = rag_gym_episode_skipped(record)
        else:
            reason = _episode_skipped(record, kept_only=kept_only, allow_failed=allow_failed)
        if reason is not None:
            stats.skipped_episodes[reason] += 1
            continue
        made = len(rows)
        for position, step in enumerate(record.steps):
            stats.steps += 1
            yield record, position, step
        stats.episodes_used += len(rows) > made
    stats.rows += len(rows)


def _rag_gym_sft(
    record: EpisodeRecord,
    position: int,
    step: StepRecord,
    rows: list[dict[str, Any]],
    stats: DatasetStats,
) -> None:
    """Add the rag-gym SFT rows of one step: every distinct positive candidate text."""
    reason = _rag_gym_step_skipped(step, need_negative=False)
    prompt = _prompt(step)
    if reason is not None or prompt is None:
        stats.skipped_steps[reason or NO_PROMPT] += 1
        return
    positives, _ = _rag_gym_pairs(step)
    for index, candidate, rank in positives:
        meta = _meta(record, position, step)
        meta.update(score=candidate.score, candidate_index=index, rank=rank)
        rows.append({"prompt": prompt, "completion": _assistant(candidate.text), "meta": meta})
    stats.steps_used += 1


def sft_rows(
    episodes: Iterable[EpisodeRecord],
    *,
    kept_only: bool = True,
    stats: DatasetStats | None = None,
    protocol: str = DEFAULT_PROTOCOL,
) -> list[dict[str, Any]]:
    """Supervised fine-tuning rows: the followed model text of every usable step.

    One row per step of each used episode, in TRL's conversational prompt-completion
    format: ``prompt`` is the exact message list the agent sent the LLM at that step and
    ``completion`` the model text it followed (the candidate at ``extra["chosen"]`` when
    the agent sampled several, else the step's ``raw_text``).

    Episodes: crashed ones (:data:`EPISODE_FAILED`) never contribute; with ``kept_only``
    (default) only those collection kept (``extra["kept"] is True``) do, and a record
    without the flag is skipped as :data:`NO_KEPT_FLAG`. Steps are skipped for
    :data:`NO_MODEL_TEXT`, :data:`NO_PROMPT`, :data:`INVALID_ACTION` (unparseable output
    is never imitated), :data:`FORCED_ANSWER` and :data:`CRITIC_FAILURE` (the choice was
    not judged).

    Under ``protocol="rag-gym"`` episodes pass :func:`rag_gym_episode_skipped` instead
    (``kept_only`` is not read) and rows come only from candidate steps: one row per
    distinct usable candidate text scored above 0.75 (the top-ranked one under the paper's
    judge). A step without candidates (:data:`NO_CANDIDATES`), where the critic failed on a
    candidate (:data:`CRITIC_FAILURE`) or with no candidate above 0.75 (:data:`NO_POSITIVE`)
    gives no SFT row under this protocol, even though the agent did take an action there.

    Args:
        episodes: the episode records (e.g. ``final_episodes(read_episodes(path))``).
        kept_only: use only episodes collection marked as kept.
        stats: a :class:`DatasetStats` of kind ``"sft"`` to add counts to.
        protocol: ``"raggym"`` (default) or ``"rag-gym"``.

    Returns:
        ``{"prompt", "completion", "meta"}`` rows; ``meta`` holds ``example_id``,
        ``env_id``, ``agent``, ``step``, ``action`` and the followed ``score``.
    """
    protocol = check_protocol(protocol)
    stats = _stats(stats, "sft")
    rows: list[dict[str, Any]] = []
    for record, position, step in _steps(
        episodes, stats, rows, kept_only=kept_only, allow_failed=False, protocol=protocol
    ):
        if protocol == RAG_GYM:
            _rag_gym_sft(record, position, step, rows, stats)
            continue
        reason = _sft_skipped(step)
        prompt = _prompt(step)
        if reason is not None or prompt is None or step.raw_text is None:
            stats.skipped_steps[reason or NO_PROMPT] += 1
            continue
        followed = _followed(step)
        candidate = step.candidates[followed] if followed is not None else None
        text = candidate.text if candidate is not None else step.raw_text
        meta = _meta(record, position, step)
        meta["score"] = candidate.score if candidate is not None else None
        rows.append({"prompt": prompt, "completion": _assistant(text), "meta": meta})
        stats.steps_used += 1
    return rows


def dpo_rows(
    episodes: Iterable[EpisodeRecord],
    *,
    rejected_rank: int = 3,
    kept_only: bool = False,
    stats: DatasetStats | None = None,
    protocol: str = DEFAULT_PROTOCOL,
) -> list[dict[str, Any]]:
    """DPO preference pairs: each step's best candidate against each one ranked low enough.

    For every step that :func:`step_excluded` accepts, the best candidate (the followed
    one when it ranks first, else the earliest rank-1 text) is paired with every distinct
    usable text ranked ``rejected_rank`` or lower (see :func:`rank_candidates`), whose score
    is strictly below the best's. The default 3 is the paper's rank 1 vs rank >= 3, which
    leaves out near ties. A step with scored candidates but none ranked low enough is
    skipped as :data:`NO_REJECTED`. Identical rows are kept once.

    Episodes: by default every episode contributes, kept or not, crashed or not, because a
    step's preference is the critic's judgment of the candidates at that state and does
    not depend on how the episode ended; ``kept_only=True`` keeps only the episodes
    collection kept (the outcome-filtered variant).

    Under ``protocol="rag-gym"`` only episodes :func:`rag_gym_episode_skipped` accepts are
    used (``kept_only`` and ``rejected_rank`` are not read), and each distinct candidate
    scored above 0.75 is paired with every distinct candidate scored below 0.5; a step
    with no positive (:data:`NO_POSITIVE`) or no negative (:data:`NO_REJECTED`) gives none.

    Args:
        episodes: the episode records.
        rejected_rank: the highest rank (>= 2) a rejected candidate may have.
        kept_only: use only episodes collection marked as kept.
        stats: a :class:`DatasetStats` of kind ``"dpo"`` to add counts to.
        protocol: ``"raggym"`` (default) or ``"rag-gym"``.

    Returns:
        ``{"prompt", "chosen", "rejected", "meta"}`` rows in TRL's conversational
        preference format; ``meta`` adds the critic name (``scorer``), indexes, scores and
        ranks of both.

    Raises:
        ValueError: ``rejected_rank`` is not an int >= 2.
    """
    _check_rank(rejected_rank)
    protocol = check_protocol(protocol)
    stats = _stats(stats, "dpo")
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for record, position, step in _steps(
        episodes, stats, rows, kept_only=kept_only, allow_failed=True, protocol=protocol
    ):
        prompt = _prompt(step)
        if protocol == RAG_GYM:
            reason = _rag_gym_step_skipped(step, need_negative=True)
            pairs = _rag_gym_pair_list(step) if reason is None else []
        else:
            reason = step_excluded(step)
            pairs = _pairs(step, rejected_rank) if reason is None else []
        if reason is not None or prompt is None or not pairs:
            stats.skipped_steps[reason or NO_REJECTED] += 1
            continue
        _add_pair_rows(rows, seen, stats, record, position, step, pairs, prompt)
    return rows


_Ranked = tuple[int, Candidate, int]


def _add_pair_rows(
    rows: list[dict[str, Any]],
    seen: set[str],
    stats: DatasetStats,
    record: EpisodeRecord,
    position: int,
    step: StepRecord,
    pairs: Sequence[tuple[_Ranked, _Ranked]],
    prompt: list[dict[str, str]],
    *,
    implicit: bool = False,
) -> None:
    """Append one row per (best, worse) pair, each distinct row once, counting the step.

    Rows are TRL's explicit-prompt preference format (``prompt``, ``chosen``, ``rejected``),
    or with ``implicit`` its implicit-prompt one (the prompt inside both conversations).
    """
    before = len(rows)
    for best, worse in pairs:
        chosen, rejected = _assistant(best[1].text), _assistant(worse[1].text)
        row: dict[str, Any] = (
            {"chosen": prompt + chosen, "rejected": prompt + rejected}
            if implicit
            else {"prompt": prompt, "chosen": chosen, "rejected": rejected}
        )
        key = json.dumps(row, sort_keys=True)
        if key in seen:
            stats.duplicates += 1
            continue
        seen.add(key)
        row["meta"] = _pair_meta(record, position, step, best, worse)
        rows.append(row)
    if len(rows) > before:
        stats.steps_used += 1
    else:
        stats.skipped_steps[DUPLICATE] += 1


def _max_steps(record: EpisodeRecord, max_steps: int | None) -> int | None:
    """The episode's step budget: given, else the run card's config, else known if truncated."""
    if max_steps is not None:
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise ValueError(f"max_steps must be a positive int, got {max_steps!r}")
        return max_steps
    config = (record.run_card or {}).get("config")
    if isinstance(config, Mapping):
        value = config.get("max_steps")
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return len(record.steps) if record.truncated else None


def _retrieval_failed(step: StepRecord) -> bool:
    """A search whose retrieval raised: nothing retrieved and an error recorded.

    The environment adds a search to the history unless its retrieval failed; an empty but
    successful retrieval still adds an entry with no documents.
    """
    return not step.retrieved and step.action_error is not None


def observation_at(
    record: EpisodeRecord,
    step_index: int,
    corpus: BaseCorpus,
    *,
    max_steps: int | None = None,
) -> Observation:
    """Rebuild the observation the environment gave the agent before a step.

    ``question`` and ``options`` come from the record; ``history`` holds the earlier
    search steps whose retrieval succeeded, each with its query and its documents, looked
    up in ``corpus`` by id in the recorded order (as the environment built it);
    ``steps_remaining`` is ``max_steps - step_index``. The budget is ``max_steps`` when
    given, else the run card's ``config["max_steps"]``, else the number of steps of a
    truncated episode; when none is known, the steps the episode actually took from this
    one on (a lower bound). :func:`raggym.agents.critics.base.state_text` does not read it, so
    critic inputs are exact either way.

    Args:
        record: the episode.
        step_index: position of the step in ``record.steps`` (``len(record.steps)`` gives
            the observation after the last step).
        corpus: the corpus the episode retrieved from.
        max_steps: the environment's step budget, if known.

    Returns:
        The :class:`~raggym_env.observation.Observation`, built by the environment's own
        :func:`~raggym_env.observation.build_observation`.

    Raises:
        IndexError: ``step_index`` is out of range.
        CorpusMismatchError: a retrieved document is missing from ``corpus`` or has another
            title there (the wrong corpus).
        ValueError: ``max_steps`` is not a positive int.
    """
    if isinstance(step_index, bool) or not isinstance(step_index, int):
        raise TypeError(f"step_index must be an int, got {type(step_index).__name__}")
    if not 0 <= step_index <= len(record.steps):
        raise IndexError(
            f"step_index {step_index} is out of range for episode {record.example_id!r} "
            f"with {len(record.steps)} steps"
        )
    if not isinstance(corpus, BaseCorpus):
        raise TypeError(f"corpus must be a Corpus or DiskCorpus, got {type(corpus).__name__}")
    budget = _max_steps(record, max_steps)
    history: list[tuple[str, list[Document]]] = []
    for step in record.steps[:step_index]:
        if step.action_type != "search" or _retrieval_failed(step):
            continue
        documents = []
        for retrieved in step.retrieved:
            if retrieved.id not in corpus:
                raise CorpusMismatchError(
                    f"episode {record.example_id!r} step {step.index}: document "
                    f"{retrieved.id!r} is not in corpus {corpus.name!r}",
                    MISSING_DOCUMENT,
                )
            document = corpus.get(retrieved.id)
            if retrieved.title and document.title != retrieved.title:
                raise CorpusMismatchError(
                    f"episode {record.example_id!r} step {step.index}: document "
                    f"{retrieved.id!r} is titled {retrieved.title!r} in the episode but "
                    f"{document.title!r} in corpus {corpus.name!r}",
                    DOCUMENT_MISMATCH,
                )
            documents.append(document)
        history.append((str(step.action["text"]), documents))
    remaining = (budget if budget is not None else len(record.steps)) - step_index
    return build_observation(record.question, record.options, history, remaining)


def _rag_gym_reward_rows(
    episodes: Iterable[EpisodeRecord], stats: DatasetStats
) -> list[dict[str, Any]]:
    """Conversational critic pairs under the rag-gym protocol (see :func:`reward_rows`)."""
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for record, position, step in _steps(
        episodes, stats, rows, kept_only=True, allow_failed=False, protocol=RAG_GYM
    ):
        reason = _rag_gym_step_skipped(step, need_negative=True)
        prompt = _prompt(step)
        if reason is not None or prompt is None:
            stats.skipped_steps[reason or NO_PROMPT] += 1
            continue
        pairs = _rag_gym_pair_list(step)
        _add_pair_rows(rows, seen, stats, record, position, step, pairs, prompt, implicit=True)
    return rows


def reward_rows(
    episodes: Iterable[EpisodeRecord],
    corpus: BaseCorpus | None = None,
    *,
    rejected_rank: int = 2,
    kept_only: bool = False,
    stats: DatasetStats | None = None,
    protocol: str = DEFAULT_PROTOCOL,
) -> list[dict[str, Any]]:
    """Pairwise reward-model (critic) data: the best action of a step against worse ones.

    Pairs are chosen as in :func:`dpo_rows` (default ``rejected_rank`` 2: the best against
    every strictly worse candidate) from the steps :func:`step_excluded` accepts with
    ``for_policy=False`` (no prompt or model text is needed, and forced answers are kept:
    the critic scored the forced actions). Each side is
    :func:`~raggym.agents.critics.base.critic_input` of the observation rebuilt by
    :func:`observation_at` and the candidate's action, the exact string a
    :class:`~raggym.agents.critics.reward_model.RewardModelCritic` scores at inference. Two texts
    proposing the same action give the same string, so such pairs are dropped, and
    identical rows are kept once. A step whose history names a document missing from
    ``corpus`` (or titled differently there) is skipped as :data:`MISSING_DOCUMENT` (or
    :data:`DOCUMENT_MISMATCH`). Episodes are used as in :func:`dpo_rows`.

    Under ``protocol="rag-gym"`` episodes, steps and pairs are chosen as in
    :func:`dpo_rows` under that protocol, no corpus is needed, and each side is the step's
    recorded prompt followed by the full candidate text as the assistant message (TRL's
    conversational implicit-prompt format), what a critic with
    ``input_format="rag-gym"`` scores at inference::

        {"chosen": [...prompt, {"role": "assistant", "content": <best text>}],
         "rejected": [...prompt, {"role": "assistant", "content": <worse text>}]}

    Args:
        episodes: the episode records.
        corpus: the corpus the episodes retrieved from (documents are looked up by id);
            not needed under ``"rag-gym"``.
        rejected_rank: the highest rank (>= 2) a rejected candidate may have.
        kept_only: use only episodes collection marked as kept.
        stats: a :class:`DatasetStats` of kind ``"reward"`` to add counts to.
        protocol: ``"raggym"`` (default) or ``"rag-gym"``.

    Returns:
        ``{"chosen", "rejected", "meta"}`` rows (plain strings, or message lists under
        ``"rag-gym"``: TRL's implicit-prompt preference format); ``meta`` as in
        :func:`dpo_rows`.

    Raises:
        ValueError: ``rejected_rank`` is not an int >= 2.
    """
    _check_rank(rejected_rank)
    protocol = check_protocol(protocol)
    if protocol == RAG_GYM:
        return _rag_gym_reward_rows(episodes, _stats(stats, "reward"))
    if not isinstance(corpus, BaseCorpus):
        raise TypeError(f"corpus must be a Corpus or DiskCorpus, got {type(corpus).__name__}")
    stats = _stats(stats, "reward")
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for record, position, step in _steps(
        episodes, stats, rows, kept_only=kept_only, allow_failed=True
    ):
        reason = step_excluded(step, for_policy=False)
        pairs = _pairs(step, rejected_rank) if reason is None else []
        if reason is not None or not pairs:
            stats.skipped_steps[reason or NO_REJECTED] += 1
            continue
        try:
            observation = observation_at(record, position, corpus)
        except CorpusMismatchError as exc:
            stats.skipped_steps[exc.reason] += 1
            continue
        before, repeated = len(rows), False
        for best, worse in pairs:
            chosen = critic_input(observation, _action(best[1].action), best[1].text)
            rejected = critic_input(observation, _action(worse[1].action), worse[1].text)
            if chosen == rejected:
                continue
            if (chosen, rejected) in seen:
                stats.duplicates += 1
                repeated = True
                continue
            seen.add((chosen, rejected))
            meta = _pair_meta(record, position, step, best, worse)
            rows.append({"chosen": chosen, "rejected": rejected, "meta": meta})
        if len(rows) > before:
            stats.steps_used += 1
        else:
            stats.skipped_steps[DUPLICATE if repeated else SAME_ACTION] += 1
    return rows


# --------------------------------------------------------------------------------------------
# Files and datasets
# --------------------------------------------------------------------------------------------


def _encode(row: Mapping[str, Any], number: int) -> bytes:
    try:
        line = json.dumps(row, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"row {number} is not JSON-serializable: {exc}") from exc
    try:
        return (line + "\n").encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from model output: keep them as \u escapes
        return (json.dumps(row) + "\n").encode("ascii")


def write_jsonl(rows: Iterable[Mapping[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Write rows as JSON lines, atomically: a reader sees the old file or the whole new one.

    The rows go to a temporary file in the same directory, which is flushed to disk and
    then renamed over ``path``; on any error the temporary file is removed and ``path`` is
    left as it was. Parent directories are created.

    Args:
        rows: JSON-serializable mappings (e.g. from :func:`sft_rows`).
        path: the ``.jsonl`` file to write.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        TypeError: a row is not a mapping or not JSON-serializable.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            for number, row in enumerate(rows):
                if not isinstance(row, Mapping):
                    raise TypeError(f"row {number} is a {type(row).__name__}, not a mapping")
                handle.write(_encode(row, number))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, target)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
    return target


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read the rows of a JSON-lines file (blank lines are ignored).

    Args:
        path: a file written by :func:`write_jsonl` (or any JSONL of objects).

    Returns:
        The rows in file order.

    Raises:
        ValueError: a line is not valid JSON or not a JSON object (file and line named).
    """
    source = Path(path)
    rows: list[dict[str, Any]] = []
    with source.open("rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
                raise ValueError(f"{source}:{lineno}: not a valid JSON line ({exc})") from exc
            if not isinstance(row, dict):
                raise ValueError(
                    f"{source}:{lineno}: expected a JSON object, got {type(row).__name__}"
                )
            rows.append(row)
    return rows


def _messages(value: Any, where: str) -> list[dict[str, str]]:
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError(f"{where}: expected a non-empty list of messages, got {value!r:.80}")
    out = []
    for message in value:
        role = message.get("role") if isinstance(message, Mapping) else None
        content = message.get("content") if isinstance(message, Mapping) else None
        if not isinstance(role, str) or not isinstance(content, str):
            raise ValueError(
                f"{where}: expected messages with string 'role' and 'content', got {message!r:.80}"
            )
        out.append({"role": role, "content": content})
    return out


def _format_names(kind: Kind) -> str:
    return " or ".join("/".join(option) for option in FORMATS[kind])


def _rows_of(data: Any) -> list[Any]:
    """The rows of a list of rows or of a JSONL file."""
    if isinstance(data, (str, os.PathLike)):
        if not Path(data).is_file():
            raise FileNotFoundError(f"no such file {os.fspath(data)!r}")
        return list(read_jsonl(data))
    if isinstance(data, Sequence) and not isinstance(data, (bytes, bytearray)):
        return list(data)
    raise TypeError(
        "data must be a list of row dicts, a JSONL path or a datasets.Dataset, "
        f"got {type(data).__name__}"
    )


def _pick_format(kind: Kind, columns: Iterable[str], where: str) -> tuple[str, ...]:
    """The first column set of ``kind`` that ``columns`` hold all of."""
    present = set(columns)
    for option in FORMATS[kind]:
        if set(option) <= present:
            return option
    if len(FORMATS[kind]) == 1:
        missing = next(name for name in FORMATS[kind][0] if name not in present)
        raise ValueError(f"{where}: missing column {missing!r} for {kind} data")
    raise ValueError(
        f"{where}: {kind} data needs columns {_format_names(kind)}; got {sorted(present)}"
    )


def to_dataset(data: Any, kind: Kind) -> Dataset:
    """Load rows into a ``datasets.Dataset`` with exactly the columns TRL reads for ``kind``.

    The column sets accepted (:data:`FORMATS`; the first is what this module writes):

    * ``"sft"``: ``prompt`` and ``completion``, or ``messages``, or ``text``
      (``SFTTrainer``'s prompt-completion and language-modeling formats).
    * ``"dpo"``: ``prompt``, ``chosen`` and ``rejected`` (explicit prompt, what
      :func:`dpo_rows` writes), or ``chosen`` and ``rejected`` alone (implicit prompt:
      TRL's ``DPOTrainer`` takes the shared leading part of both as the prompt).
    * ``"reward"``: ``chosen`` and ``rejected`` strings, and optionally a numeric
      ``margin`` (``RewardTrainer``'s implicit-prompt format).

    Every row must hold the column set of the first row. A column holds either strings
    (standard format) or non-empty lists of ``{"role", "content"}`` messages
    (conversational), the same in every column of a row (reward rows too: the rag-gym
    critic reads whole conversations). Other
    keys (``meta``) are dropped, as are message keys other than role and content, since TRL
    treats some column names (``tools``, ``images``) specially. An empty list of rows gives
    an empty dataset with the first column set; trainers refuse it.

    Args:
        data: rows (from :func:`sft_rows`, :func:`dpo_rows`, :func:`reward_rows`), a JSONL
            file of rows (:func:`write_jsonl`), or a ``datasets.Dataset`` (its columns are
            checked and the others removed; values are not checked).
        kind: ``"sft"``, ``"dpo"`` or ``"reward"``.

    Returns:
        The dataset.

    Raises:
        MissingDependencyError: ``datasets`` is not installed (an ``ImportError`` naming
            the extra).
        ValueError: an unknown ``kind``, a row that is not a mapping, lacks a column or has
            a value of the wrong type.
        TypeError: ``data`` is of an unsupported type.
        FileNotFoundError: a path that does not exist.
    """
    if kind not in FORMATS:
        raise ValueError(f"kind must be one of {sorted(FORMATS)}, got {kind!r}")
    datasets = require("datasets", feature="to_dataset", extra="train")
    optional = OPTIONAL_COLUMNS.get(kind, ())
    if isinstance(data, datasets.Dataset):
        chosen = _pick_format(kind, data.column_names, "dataset")
        keep = set(chosen) | set(optional)
        extra = [name for name in data.column_names if name not in keep]
        return data.remove_columns(extra) if extra else data
    rows = _rows_of(data)
    for number, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ValueError(f"row {number}: expected a mapping, got {type(row).__name__}")
    columns = _pick_format(kind, rows[0], "row 0") if rows else FORMATS[kind][0]
    names = columns + tuple(name for name in optional if rows and name in rows[0])
    values: dict[str, list[Any]] = {name: [] for name in names}
    conversational = not isinstance(rows[0][columns[0]], str) if rows else kind != "reward"
    for number, row in enumerate(rows):
        for name in names:
            if name not in row:
                raise ValueError(f"row {number}: missing column {name!r} for {kind} data")
            value = row[name]
            where = f"row {number} column {name!r}"
            if name in optional:
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ValueError(f"{where}: expected a number, got {value!r:.80}")
                values[name].append(float(value))
            elif conversational:
                values[name].append(_messages(value, where))
            elif not isinstance(value, str):
                raise ValueError(f"{where}: expected a string, got {type(value).__name__}")
            else:
                values[name].append(value)
    text: Any = datasets.Value("string")
    messages = datasets.List(
        {"role": datasets.Value("string"), "content": datasets.Value("string")}
    )
    features = datasets.Features(
        {
            name: datasets.Value("float64")
            if name in optional
            else (messages if conversational else text)
            for name in names
        }
    )
    return datasets.Dataset.from_dict(values, features=features)
