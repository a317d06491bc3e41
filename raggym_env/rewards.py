"""Reward configuration: the outcome metric plus optional, pluggable process rewards.

The outcome reward is paid on the answering step: exact match for open QA (the RAG-Gym
paper's choice) and accuracy for multiple choice, or any other metric that
:func:`raggym_env.metrics.score_answer` reports. Process rewards shape intermediate steps
and are all off by default, so the default return of an episode is its outcome metric.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = ["OUTCOME_METRICS", "RewardConfig"]

OUTCOME_METRICS = ("auto", "em", "f1", "cover_em", "accuracy")


@dataclass(frozen=True)
class RewardConfig:
    """How the environment pays reward.

    Attributes:
        outcome: metric paid when the agent answers: ``"auto"`` (EM for open QA, accuracy
            for multiple choice), ``"em"``, ``"f1"``, ``"cover_em"`` or ``"accuracy"``.
        evidence_gain: weight of the gold-evidence process reward: a search step earns
            ``evidence_gain * (newly retrieved gold documents / all gold documents)``.
        search_cost: subtracted on every search step (prefer shorter trajectories).
        repeat_penalty: subtracted when a query repeats an earlier one of the episode
            (compared after lower-casing and collapsing whitespace).
        invalid_action_penalty: subtracted when text from the policy is not an action.
    """

    outcome: str = "auto"
    evidence_gain: float = 0.0
    search_cost: float = 0.0
    repeat_penalty: float = 0.0
    invalid_action_penalty: float = 0.0

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOME_METRICS:
            raise ValueError(
                f"unknown outcome reward {self.outcome!r}; expected one of {OUTCOME_METRICS}"
            )
        for name in ("evidence_gain", "search_cost", "repeat_penalty", "invalid_action_penalty"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"RewardConfig.{name} must be a number >= 0, got {value!r}")

    @classmethod
    def coerce(cls, value: RewardConfig | Mapping[str, Any] | str | None) -> RewardConfig:
        """Accept a config, a mapping of its fields, an outcome metric name, or ``None``."""
        if value is None:
            return cls()
        if isinstance(value, RewardConfig):
            return value
        if isinstance(value, str):
            return cls(outcome=value)
        if isinstance(value, Mapping):
            known = {f.name for f in fields(cls)}
            unknown = set(value) - known
            if unknown:
                raise ValueError(
                    f"unknown reward settings {sorted(unknown)}; expected some of {sorted(known)}"
                )
            return cls(**dict(value))
        raise TypeError(
            f"reward must be a RewardConfig, a mapping or a metric name, got {type(value).__name__}"
        )

    def outcome_metric(self, multiple_choice: bool) -> str:
        """The metric actually paid for a question of this kind."""
        if self.outcome == "auto":
            return "accuracy" if multiple_choice else "em"
        if self.outcome == "accuracy" and not multiple_choice:
            raise ValueError("outcome reward 'accuracy' needs multiple-choice questions")
        return self.outcome

    @property
    def has_process_rewards(self) -> bool:
        """Whether any intermediate-step reward is switched on."""
        return any(
            (self.evidence_gain, self.search_cost, self.repeat_penalty, self.invalid_action_penalty)
        )

    def search_reward(self, evidence_gain: float | None, repeated: bool) -> dict[str, float]:
        """Components of a search step's reward (sum them for the step reward)."""
        parts: dict[str, float] = {}
        if self.evidence_gain and evidence_gain is not None:
            parts["evidence_gain"] = self.evidence_gain * evidence_gain
        if self.search_cost:
            parts["search_cost"] = -self.search_cost
        if self.repeat_penalty and repeated:
            parts["repeat_penalty"] = -self.repeat_penalty
        return parts

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for run cards."""
        return asdict(self)
