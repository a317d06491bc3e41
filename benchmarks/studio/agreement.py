"""Agreement between annotators, and between people and the scorers recorded in episodes.

Two measures, as the RAG-Gym paper reports them for its critic:

* **pairwise ranking accuracy**: over every pair of candidates of a step that both sides
  order strictly (neither ties them), the fraction ordered the same way. A person's order
  comes from their ranking of the step or, failing that, from their good/bad marks of its
  candidates (good above bad); a scorer's from its recorded scores.
* **Cohen's kappa** for good/bad marks between two annotators, over the things both
  marked: ``(p_o - p_e) / (1 - p_e)``, ``None`` when chance agreement is 1 (undefined).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from raggym_env.annotations import Annotation, episode_key, latest_annotations
from raggym_env.episode import EpisodeRecord

__all__ = [
    "AgreementReport",
    "PairAgreement",
    "agreement",
    "cohen_kappa",
    "pairwise_counts",
]

StepKey = tuple[str, int]
Scores = Mapping[int, float]


def pairwise_counts(a: Scores, b: Scores) -> tuple[int, int]:
    """``(same, comparable)``: pairs both sides order strictly, and how many agree."""
    same = comparable = 0
    for i, j in combinations(sorted(set(a) & set(b)), 2):
        da, db = a[i] - a[j], b[i] - b[j]
        if da == 0 or db == 0:
            continue
        comparable += 1
        same += (da > 0) == (db > 0)
    return same, comparable


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float | None:
    """Cohen's kappa of two equally long label sequences; ``None`` if empty or undefined."""
    if len(a) != len(b):
        raise ValueError(f"kappa needs paired labels, got {len(a)} and {len(b)}")
    if not a:
        return None
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    labels = set(a) | set(b)
    expected = sum((a.count(k) / n) * (b.count(k) / n) for k in labels)
    if math.isclose(expected, 1.0):
        return None
    return (observed - expected) / (1 - expected)


def _count(n: int, word: str) -> str:
    """``"1 mark"``, ``"2 marks"``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


@dataclass(frozen=True)
class PairAgreement:
    """How far two judges agree: ranking accuracy over ``pairs`` and kappa over ``items``."""

    a: str
    b: str
    accuracy: float | None = None
    pairs: int = 0
    steps: int = 0
    kappa: float | None = None
    observed: float | None = None
    items: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready mapping."""
        return {
            "a": self.a,
            "b": self.b,
            "accuracy": self.accuracy,
            "pairs": self.pairs,
            "steps": self.steps,
            "kappa": self.kappa,
            "observed": self.observed,
            "items": self.items,
        }


@dataclass(frozen=True)
class AgreementReport:
    """Agreement between every two annotators and between each annotator and each scorer."""

    annotators: dict[str, dict[str, int]] = field(default_factory=dict)
    between_people: list[PairAgreement] = field(default_factory=list)
    with_scorers: list[PairAgreement] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready mapping."""
        return {
            "annotators": {k: dict(v) for k, v in self.annotators.items()},
            "between_people": [p.to_dict() for p in self.between_people],
            "with_scorers": [p.to_dict() for p in self.with_scorers],
        }

    def to_text(self) -> str:
        """A short plain-text table, for the command line."""
        lines = [
            "annotators: "
            + (
                ", ".join(
                    f"{name} ({_count(c['rankings'], 'ranking')}, {_count(c['marks'], 'mark')})"
                    for name, c in self.annotators.items()
                )
                or "none"
            )
        ]
        for title, rows in (
            ("between annotators", self.between_people),
            ("annotators vs scorers", self.with_scorers),
        ):
            lines.append(f"{title}:")
            if not rows:
                lines.append("  (nothing judged in common)")
            for row in rows:
                acc = "-" if row.accuracy is None else f"{row.accuracy:.3f}"
                kappa = "-" if row.kappa is None else f"{row.kappa:.3f}"
                lines.append(
                    f"  {row.a} ~ {row.b}: ranking accuracy {acc} ({row.pairs} pairs, "
                    f"{row.steps} steps); kappa {kappa} ({row.items} marks)"
                )
        return "\n".join(lines)


def _person_scores(items: Iterable[Annotation]) -> dict[StepKey, dict[int, float]]:
    """Step -> candidate scores from one person's rankings (preferred) or candidate marks."""
    ranked: dict[StepKey, dict[int, float]] = {}
    marked: dict[StepKey, dict[int, float]] = defaultdict(dict)
    for item in items:
        key = (item.episode, item.step)
        if item.kind == "rank":
            n = len(item.order)
            ranked[key] = {i: float(n - pos) for pos, i in enumerate(item.order)}
        elif item.candidate is not None:
            marked[key][item.candidate] = 1.0 if item.label == "good" else 0.0
    return {**marked, **ranked}


def _scorer_scores(records: Iterable[EpisodeRecord]) -> dict[str, dict[StepKey, dict[int, float]]]:
    """Scorer name -> step -> candidate scores, from the candidates recorded in episodes."""
    found: dict[str, dict[StepKey, dict[int, float]]] = defaultdict(dict)
    for record in records:
        key = episode_key(record)
        for step in record.steps:
            for index, candidate in enumerate(step.candidates):
                score = candidate.score
                if score is None or not math.isfinite(score):
                    continue
                name = candidate.scorer or "scorer"
                found[name].setdefault((key, step.index), {})[index] = score
    return dict(found)


def _ranking(
    a_name: str, a: Mapping[StepKey, Scores], b_name: str, b: Mapping[StepKey, Scores]
) -> PairAgreement:
    same = comparable = steps = 0
    for key in sorted(set(a) & set(b)):
        s, c = pairwise_counts(a[key], b[key])
        same, comparable, steps = same + s, comparable + c, steps + (c > 0)
    accuracy = same / comparable if comparable else None
    return PairAgreement(a_name, b_name, accuracy=accuracy, pairs=comparable, steps=steps)


def agreement(
    records: Iterable[EpisodeRecord], annotations: Iterable[Annotation]
) -> AgreementReport:
    """Agreement of every two annotators, and of each annotator with each recorded scorer.

    Only each person's latest judgement of a thing counts (see
    :func:`~raggym_env.annotations.latest_annotations`); judgements of episodes that are not
    in ``records`` still count between people.
    """
    records = list(records)
    people: dict[str, list[Annotation]] = defaultdict(list)
    for item in latest_annotations(annotations):
        people[item.annotator].append(item)
    names = sorted(people)
    counts = {
        name: {
            "rankings": sum(i.kind == "rank" for i in people[name]),
            "marks": sum(i.kind == "mark" for i in people[name]),
        }
        for name in names
    }
    scores = {name: _person_scores(people[name]) for name in names}
    marks = {
        name: {i.target: str(i.label) for i in people[name] if i.kind == "mark"} for name in names
    }
    between: list[PairAgreement] = []
    for a, b in combinations(names, 2):
        ranking = _ranking(a, scores[a], b, scores[b])
        common = sorted(set(marks[a]) & set(marks[b]), key=repr)
        la = [marks[a][t] for t in common]
        lb = [marks[b][t] for t in common]
        observed = (
            sum(x == y for x, y in zip(la, lb, strict=True)) / len(common) if common else None
        )
        between.append(
            PairAgreement(
                a, b, ranking.accuracy, ranking.pairs, ranking.steps,
                kappa=cohen_kappa(la, lb), observed=observed, items=len(common),
            )
        )  # fmt: skip
    scorers = _scorer_scores(records)
    with_scorers = [
        _ranking(name, scores[name], scorer, scorers[scorer])
        for name in names
        for scorer in sorted(scorers)
    ]
    return AgreementReport(counts, between, with_scorers)
