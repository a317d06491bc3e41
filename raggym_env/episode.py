"""The episode record: the versioned, JSON-safe account of one question answered by an agent.

It is the contract between the environment, agents, trainers and benchmarks: rollouts
write it (one JSON line per episode, see :mod:`raggym_env.store`), trainers turn it into
datasets and the benchmark runner aggregates it into leaderboards. Readers accept records
with extra keys (written by newer minor versions) and reject an unknown major version.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from raggym_env.redaction import redact
from raggym_env.types import QAExample

__all__ = [
    "ACTION_TYPES",
    "SCHEMA_VERSION",
    "Candidate",
    "EpisodeRecord",
    "RetrievedDoc",
    "SchemaError",
    "StepRecord",
    "gold_from_example",
]

SCHEMA_VERSION = "1.0"
ACTION_TYPES = frozenset({"search", "answer", "invalid"})


class SchemaError(ValueError):
    """A mapping does not describe a valid episode record of a supported schema version."""


# --------------------------------------------------------------------------------------------
# Field readers: validate one field of a mapping, naming it in the error.
# --------------------------------------------------------------------------------------------


def _require(data: Mapping[str, Any], key: str, what: str) -> Any:
    """Return ``data[key]``, or raise :class:`SchemaError` naming the missing key."""
    if not isinstance(data, Mapping):
        raise SchemaError(f"{what}: expected an object, got {type(data).__name__}")
    if key not in data:
        raise SchemaError(f"{what}: missing required field {key!r}")
    return data[key]


def _opt_str(value: Any, what: str) -> str | None:
    """Check an optional string field."""
    if value is not None and not isinstance(value, str):
        raise SchemaError(f"{what}: expected a string or null, got {type(value).__name__}")
    return value


def _str(value: Any, what: str) -> str:
    """Check a required string field."""
    if not isinstance(value, str):
        raise SchemaError(f"{what}: expected a string, got {type(value).__name__}")
    return value


def _int(value: Any, what: str) -> int:
    """Check an integer field (booleans are not integers here)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise SchemaError(f"{what}: expected an integer, got {value!r}")
    return value


def _opt_float(value: Any, what: str) -> float | None:
    """Check an optional number field (booleans are not numbers here)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SchemaError(f"{what}: expected a number or null, got {type(value).__name__}")
    return float(value)


def _dict(value: Any, what: str) -> dict[str, Any]:
    """Check an object field (``None`` reads as empty) and copy it."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SchemaError(f"{what}: expected an object, got {type(value).__name__}")
    return dict(value)


def _list(value: Any, what: str) -> list[Any]:
    """Check an array field (``None`` reads as empty)."""
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise SchemaError(f"{what}: expected an array, got {type(value).__name__}")
    return list(value)


def _check_version(version: Any) -> str:
    """Accept any ``1.x`` schema version; reject other majors with an upgrade hint."""
    text = _str(version, "episode record field 'schema_version'")
    major = text.split(".", 1)[0]
    supported = SCHEMA_VERSION.split(".", 1)[0]
    if major != supported:
        raise SchemaError(
            f"episode record has schema version {text!r}; this version of raggym reads "
            f"{supported}.x records only (upgrade raggym to read newer records)"
        )
    return text


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A candidate action sampled at a step, with the score a scorer (critic, judge) gave it.

    Attributes:
        text: the raw model text of the candidate.
        action: the parsed action (``{"type": ..., "text": ...}``), ``None`` if unparseable.
        score: the scorer's score (higher is better), ``None`` if unscored.
        scorer: which scorer produced ``score`` (e.g. ``"critic"``, ``"llm_judge"``, ``"mc"``).
        scorer_output: the scorer's raw output (a judge's text), when there is one.
        error: why parsing or scoring failed, when it did.
    """

    text: str
    action: dict[str, Any] | None = None
    score: float | None = None
    scorer: str | None = None
    scorer_output: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready mapping."""
        return {
            "text": self.text,
            "action": dict(self.action) if self.action is not None else None,
            "score": self.score,
            "scorer": self.scorer,
            "scorer_output": self.scorer_output,
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Candidate:
        """Inverse of :meth:`to_dict`; extra keys are ignored."""
        what = "candidate"
        action = data.get("action") if isinstance(data, Mapping) else None
        return cls(
            text=_str(_require(data, "text", what), f"{what} field 'text'"),
            action=_dict(action, f"{what} field 'action'") if action is not None else None,
            score=_opt_float(data.get("score"), f"{what} field 'score'"),
            scorer=_opt_str(data.get("scorer"), f"{what} field 'scorer'"),
            scorer_output=_opt_str(data.get("scorer_output"), f"{what} field 'scorer_output'"),
            error=_opt_str(data.get("error"), f"{what} field 'error'"),
        )


@dataclass(frozen=True)
class RetrievedDoc:
    """A document a search step retrieved: its corpus id, title and retriever score."""

    id: str
    title: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready mapping."""
        return {"id": self.id, "title": self.title, "score": self.score}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RetrievedDoc:
        """Inverse of :meth:`to_dict`; extra keys are ignored."""
        what = "retrieved document"
        score = _opt_float(_require(data, "score", what), f"{what} field 'score'")
        if score is None:
            raise SchemaError(f"{what} field 'score': expected a number, got null")
        return cls(
            id=_str(_require(data, "id", what), f"{what} field 'id'"),
            title=_str(data.get("title", ""), f"{what} field 'title'"),
            score=score,
        )


@dataclass(frozen=True)
class StepRecord:
    """One environment step: the action taken, what it retrieved, its reward and its cost.

    Attributes:
        index: 0-based step number within the episode.
        action: ``{"type": "search" | "answer" | "invalid", "text": ...}``.
        raw_text: the model text the action was parsed from (``None`` for code policies).
        action_error: why the text could not be parsed, for ``invalid`` actions.
        retrieved: documents the search returned, best first (empty for answers).
        reward: the step reward the environment returned.
        evidence_recall: cumulative gold-evidence recall after the step (``None`` without gold).
        latency_s: wall time the agent took to decide, in seconds.
        tokens: token usage of the decision, e.g. ``{"prompt": 812, "completion": 35}``.
        candidates: sampled candidate actions with their scores, when the agent sampled.
        extra: anything else worth keeping (free-form, JSON-safe).
    """

    index: int
    action: dict[str, Any]
    raw_text: str | None = None
    action_error: str | None = None
    retrieved: list[RetrievedDoc] = field(default_factory=list)
    reward: float = 0.0
    evidence_recall: float | None = None
    latency_s: float | None = None
    tokens: dict[str, int] = field(default_factory=dict)
    candidates: list[Candidate] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        kind = self.action.get("type") if isinstance(self.action, Mapping) else None
        if kind not in ACTION_TYPES:
            raise SchemaError(
                f"step {self.index}: action type must be one of {sorted(ACTION_TYPES)}, "
                f"got {kind!r}"
            )

    @property
    def action_type(self) -> str:
        """``"search"``, ``"answer"`` or ``"invalid"``."""
        return str(self.action["type"])

    @property
    def retrieved_ids(self) -> list[str]:
        """Ids of the retrieved documents, best first."""
        return [doc.id for doc in self.retrieved]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready mapping."""
        return {
            "index": self.index,
            "action": dict(self.action),
            "raw_text": self.raw_text,
            "action_error": self.action_error,
            "retrieved": [doc.to_dict() for doc in self.retrieved],
            "reward": self.reward,
            "evidence_recall": self.evidence_recall,
            "latency_s": self.latency_s,
            "tokens": dict(self.tokens),
            "candidates": [c.to_dict() for c in self.candidates],
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StepRecord:
        """Inverse of :meth:`to_dict`; extra keys are ignored."""
        index = _int(_require(data, "index", "step"), "step field 'index'")
        what = f"step {index}"
        tokens = _dict(data.get("tokens"), f"{what} field 'tokens'")
        if any(isinstance(v, bool) or not isinstance(v, int) for v in tokens.values()):
            raise SchemaError(f"{what} field 'tokens': expected integer counts, got {tokens!r}")
        reward = _opt_float(data.get("reward", 0.0), f"{what} field 'reward'")
        return cls(
            index=index,
            action=_dict(_require(data, "action", what), f"{what} field 'action'"),
            raw_text=_opt_str(data.get("raw_text"), f"{what} field 'raw_text'"),
            action_error=_opt_str(data.get("action_error"), f"{what} field 'action_error'"),
            retrieved=[
                RetrievedDoc.from_dict(d)
                for d in _list(data.get("retrieved"), f"{what} field 'retrieved'")
            ],
            reward=0.0 if reward is None else reward,
            evidence_recall=_opt_float(
                data.get("evidence_recall"), f"{what} field 'evidence_recall'"
            ),
            latency_s=_opt_float(data.get("latency_s"), f"{what} field 'latency_s'"),
            tokens=tokens,
            candidates=[
                Candidate.from_dict(c)
                for c in _list(data.get("candidates"), f"{what} field 'candidates'")
            ],
            extra=_dict(data.get("extra"), f"{what} field 'extra'"),
        )


def gold_from_example(example: QAExample) -> dict[str, Any]:
    """Build an episode record's ``gold`` field from a question (the keys ``info`` uses)."""
    return {
        "answers": list(example.answers),
        "answer_letter": example.answer_letter,
        "evidence_titles": list(example.evidence.titles),
        "evidence_doc_ids": list(example.evidence.doc_ids),
    }


def _short(text: object, width: int = 80) -> str:
    """Quote ``text`` on one line, shortened to about ``width`` characters."""
    if text is None:
        return "None"
    flat = " ".join(str(text).split())
    return repr(flat if len(flat) <= width else flat[: width - 3] + "...")


def _format_metric(value: float | None) -> str:
    """Format a metric value compactly (``None`` and NaN read as ``-``)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.3g}"


@dataclass(frozen=True, kw_only=True, repr=False)
class EpisodeRecord:
    """Everything about one episode: the question, every step, the answer, gold and metrics.

    Attributes:
        schema_version: the record format version (:data:`SCHEMA_VERSION` when written).
        env_id: the registered environment id, e.g. ``"RAGGym/HotpotQA-v0"``.
        env_version: the environment's version number (its dynamics and reward).
        example_id: the dataset id of the question.
        question: the question text.
        options: option letter -> text for multiple choice, else ``None``.
        steps: the steps in order.
        final_answer: the answer given, ``None`` when the episode ended without one.
        gold: ground truth: ``answers``, ``answer_letter``, ``evidence_titles``,
            ``evidence_doc_ids`` (see :func:`gold_from_example`).
        metrics: outcome and process metrics (``em``, ``f1``, ``evidence_recall``, ...).
        terminated: the agent answered.
        truncated: the step budget ran out first.
        error: ``"ErrorType: message"`` when the episode crashed; such a record still counts
            as a failure in every average, it is never dropped.
        seed: the seed passed to ``reset``.
        run_card: provenance of the run (see :func:`raggym_env.runcard.make_run_card`).
        started_at: ISO-8601 UTC start time.
        ended_at: ISO-8601 UTC end time.
        extra: anything else worth keeping (agent name, model, ...).
    """

    schema_version: str = SCHEMA_VERSION
    env_id: str
    env_version: int
    example_id: str
    question: str
    options: dict[str, str] | None = None
    steps: list[StepRecord] = field(default_factory=list)
    final_answer: str | None = None
    gold: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float | None] = field(default_factory=dict)
    terminated: bool = False
    truncated: bool = False
    error: str | None = None
    seed: int | None = None
    run_card: dict[str, Any] | None = None
    started_at: str | None = None
    ended_at: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_searches(self) -> int:
        """How many search actions the agent took."""
        return sum(1 for step in self.steps if step.action_type == "search")

    @property
    def succeeded(self) -> bool:
        """Whether the episode ran to its end without crashing (a wrong answer still succeeds)."""
        return self.error is None

    @property
    def retrieved_ids(self) -> list[str]:
        """Distinct ids of every document retrieved in the episode, in first-seen order."""
        return list(dict.fromkeys(i for step in self.steps for i in step.retrieved_ids))

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready mapping (the JSONL line, once dumped)."""
        return {
            "schema_version": self.schema_version,
            "env_id": self.env_id,
            "env_version": self.env_version,
            "example_id": self.example_id,
            "question": self.question,
            "options": dict(self.options) if self.options is not None else None,
            "steps": [step.to_dict() for step in self.steps],
            "final_answer": self.final_answer,
            "gold": dict(self.gold),
            "metrics": dict(self.metrics),
            "terminated": self.terminated,
            "truncated": self.truncated,
            "error": self.error,
            "seed": self.seed,
            "run_card": redact(self.run_card) if self.run_card is not None else None,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EpisodeRecord:
        """Validate and build a record; raises :class:`SchemaError` on a malformed mapping.

        Extra keys (from a newer minor version) are ignored; a different major version is
        rejected. A non-finite metric (a stored ``NaN`` or ``Infinity``) reads as ``None``.
        """
        what = "episode record"
        version = _check_version(_require(data, "schema_version", what))
        example_id = _str(_require(data, "example_id", what), f"{what} field 'example_id'")
        what = f"episode record {example_id!r}"
        env_version = _int(_require(data, "env_version", what), f"{what} field 'env_version'")
        options = data.get("options")
        seed = data.get("seed")
        metrics = _dict(data.get("metrics"), f"{what} field 'metrics'")
        for name, value in metrics.items():
            number = _opt_float(value, f"{what} metric {name!r}")
            # A stored NaN/inf (Python's json reads the bare tokens) is no measurement.
            metrics[name] = number if number is None or math.isfinite(number) else None
        run_card = data.get("run_card")
        return cls(
            schema_version=version,
            env_id=_str(_require(data, "env_id", what), f"{what} field 'env_id'"),
            env_version=env_version,
            example_id=example_id,
            question=_str(_require(data, "question", what), f"{what} field 'question'"),
            options=_dict(options, f"{what} field 'options'") if options is not None else None,
            steps=[StepRecord.from_dict(s) for s in _list(data.get("steps"), f"{what} 'steps'")],
            final_answer=_opt_str(data.get("final_answer"), f"{what} field 'final_answer'"),
            gold=_dict(data.get("gold"), f"{what} field 'gold'"),
            metrics=metrics,
            terminated=bool(data.get("terminated", False)),
            truncated=bool(data.get("truncated", False)),
            error=_opt_str(data.get("error"), f"{what} field 'error'"),
            seed=None if seed is None else _int(seed, f"{what} field 'seed'"),
            run_card=_dict(run_card, f"{what} field 'run_card'") if run_card is not None else None,
            started_at=_opt_str(data.get("started_at"), f"{what} field 'started_at'"),
            ended_at=_opt_str(data.get("ended_at"), f"{what} field 'ended_at'"),
            extra=_dict(data.get("extra"), f"{what} field 'extra'"),
        )

    def summary(self) -> str:
        """A few readable lines: question, each step's action and titles, answer vs gold."""
        if self.error is not None:
            status = f"FAILED ({self.error})"
        elif self.terminated:
            status = "answered"
        else:
            status = "truncated" if self.truncated else "unfinished"
        lines = [f"Episode {self.example_id} [{self.env_id} v{self.env_version}] {status}"]
        lines.append(f"  Q: {_short(self.question, 200)}")
        if self.options:
            lines.append("  options: " + " | ".join(f"{k}) {v}" for k, v in self.options.items()))
        for step in self.steps:
            shown = step.action.get("text") if step.action_type != "invalid" else step.raw_text
            line = f"  {step.index + 1}. {step.action_type} {_short(shown)}"
            if step.retrieved:
                line += " -> " + "; ".join(doc.title or doc.id for doc in step.retrieved)
            if step.action_error:
                line += f" [{step.action_error}]"
            lines.append(line)
        gold_answers = self.gold.get("answers") or []
        gold = " / ".join(str(a) for a in gold_answers) or "?"
        if self.gold.get("answer_letter"):
            gold = f"{self.gold['answer_letter']} ({gold})"
        lines.append(f"  answer: {_short(self.final_answer)}  gold: {gold}")
        titles = self.gold.get("evidence_titles") or []
        if titles:
            lines.append("  gold evidence: " + "; ".join(str(t) for t in titles))
        if self.metrics:
            lines.append(
                "  metrics: "
                + " ".join(f"{k}={_format_metric(v)}" for k, v in self.metrics.items())
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        scores = " ".join(f"{k}={_format_metric(v)}" for k, v in self.metrics.items())
        return (
            f"EpisodeRecord(example_id={self.example_id!r}, env_id={self.env_id!r}, "
            f"question={_short(self.question, 60)}, steps={len(self.steps)}, "
            f"searches={self.num_searches}, answer={_short(self.final_answer, 40)}, "
            f"gold={self.gold.get('answers', [])[:1]}"
            + (f", {scores}" if scores else "")
            + (f", error={self.error!r}" if self.error is not None else "")
            + ")"
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython display: the multi-line summary."""
        printer.text(self.summary())
