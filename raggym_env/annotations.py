"""People's judgements of recorded steps: the annotation JSONL schema, its store and reader.

An annotation says what one annotator thinks of one step of one episode: either a
**ranking** of the step's sampled candidates (``order``: candidate indices, best first) or
a **mark** (``label`` ``"good"`` or ``"bad"``) of one candidate or, with ``candidate``
``None``, of the action the step took. Annotations are appended one JSON line each, as
crash-safe as episode records (:mod:`raggym_env.store`); a later annotation by the same
person of the same thing supersedes the earlier one (:func:`latest_annotations`).

:func:`human_scored` turns annotated episodes into episodes whose candidate scores are one
annotator's judgement (scorer ``"human:NAME"``), so the converters that build SFT, DPO and
critic rows from machine-scored episodes build them from people's judgements unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from raggym_env.episode import EpisodeRecord, SchemaError, StepRecord
from raggym_env.sanitize import scrub_surrogates
from raggym_env.store import JsonlAppender, ReadStats

__all__ = [
    "ANNOTATION_SCHEMA_VERSION",
    "HUMAN_SCORER_PREFIX",
    "LABELS",
    "MAX_NOTE_CHARS",
    "Annotation",
    "AnnotationStore",
    "episode_key",
    "human_scored",
    "latest_annotations",
    "read_annotations",
]

ANNOTATION_SCHEMA_VERSION = "1.0"
LABELS = ("good", "bad")
HUMAN_SCORER_PREFIX = "human:"
MAX_NOTE_CHARS = 4000
MAX_NAME_CHARS = 80
MAX_CANDIDATES = 1000

Kind = Literal["rank", "mark"]


def episode_key(record: EpisodeRecord) -> str:
    """A stable id of an episode's content (16 hex digits), the same in every file holding it.

    Example ids repeat across agents and runs; the key tells those episodes apart while
    letting several annotators (and several copies of a file) meet on the same one.
    """
    text = json.dumps(record.to_dict(), sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(scrub_surrogates(text).encode("utf-8")).hexdigest()[:16]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _text(value: Any, what: str, limit: int, *, empty: bool = False) -> str:
    """A string field of bounded length (non-blank unless ``empty``)."""
    if not isinstance(value, str):
        raise SchemaError(f"annotation field {what!r}: expected a string, got {value!r:.60}")
    if not empty and not value.strip():
        raise SchemaError(f"annotation field {what!r} is empty")
    if len(value) > limit:
        raise SchemaError(f"annotation field {what!r} is longer than {limit} characters")
    return value


def _index(value: Any, what: str) -> int:
    """A non-negative integer field (booleans are not integers here)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 10**6:
        raise SchemaError(f"annotation field {what!r}: expected an index, got {value!r:.60}")
    return value


@dataclass(frozen=True)
class Annotation:
    """One annotator's judgement of one step: a ranking of its candidates or a good/bad mark.

    Attributes:
        annotator: who judged (free text, e.g. a name or an initials-and-role tag).
        episode: :func:`episode_key` of the judged episode.
        example_id: the episode's question id (for people reading the file).
        step: the step's 0-based index.
        kind: ``"rank"`` or ``"mark"``.
        order: for a ranking, every candidate index exactly once, best first.
        candidate: for a mark, the candidate judged; ``None`` means the step's own action.
        label: for a mark, ``"good"`` or ``"bad"``.
        note: an optional free-text remark.
        created_at: ISO-8601 UTC time of the judgement.
    """

    annotator: str
    episode: str
    example_id: str
    step: int
    kind: Kind
    order: tuple[int, ...] = ()
    candidate: int | None = None
    label: str | None = None
    note: str | None = None
    created_at: str = ""

    def __post_init__(self) -> None:
        _text(self.annotator, "annotator", MAX_NAME_CHARS)
        _text(self.episode, "episode", 64)
        _text(self.example_id, "example_id", 1000, empty=True)
        _index(self.step, "step")
        if self.note is not None:
            _text(self.note, "note", MAX_NOTE_CHARS, empty=True)
        if self.kind == "rank":
            if len(self.order) < 2 or len(self.order) > MAX_CANDIDATES:
                raise SchemaError("a ranking orders at least two candidates")
            for i in self.order:
                _index(i, "order")
            if sorted(self.order) != list(range(len(self.order))):
                raise SchemaError(
                    f"a ranking must list each candidate index once, got {list(self.order)}"
                )
        elif self.kind == "mark":
            if self.label not in LABELS:
                raise SchemaError(f"a mark's label must be one of {LABELS}, got {self.label!r}")
            if self.candidate is not None:
                _index(self.candidate, "candidate")
        else:
            raise SchemaError(f"annotation kind must be 'rank' or 'mark', got {self.kind!r}")

    @property
    def target(self) -> tuple[str, int, str, int | None]:
        """What is judged: ``(episode, step, kind, candidate)``; a later judgement replaces it."""
        return (self.episode, self.step, self.kind, self.candidate)

    def fits(self, record: EpisodeRecord) -> bool:
        """Whether the step and candidate indices exist in ``record`` (the episode it names)."""
        if self.step >= len(record.steps):
            return False
        count = len(record.steps[self.step].candidates)
        if self.kind == "rank":
            return len(self.order) == count
        return self.candidate is None or self.candidate < count

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready mapping (the JSONL line, once dumped)."""
        data: dict[str, Any] = {
            "schema_version": ANNOTATION_SCHEMA_VERSION,
            "annotator": self.annotator,
            "episode": self.episode,
            "example_id": self.example_id,
            "step": self.step,
            "kind": self.kind,
        }
        if self.kind == "rank":
            data["order"] = list(self.order)
        else:
            data["candidate"] = self.candidate
            data["label"] = self.label
        data["note"] = self.note
        data["created_at"] = self.created_at
        return data

    @classmethod
    def from_dict(cls, data: Any) -> Annotation:
        """Validate and build an annotation; :class:`SchemaError` names what is wrong."""
        if not isinstance(data, Mapping):
            raise SchemaError(f"an annotation must be an object, got {type(data).__name__}")
        version = data.get("schema_version", ANNOTATION_SCHEMA_VERSION)
        if not isinstance(version, str) or version.split(".", 1)[0] != "1":
            raise SchemaError(f"unsupported annotation schema version {version!r}")
        for key in ("annotator", "episode", "step", "kind"):
            if key not in data:
                raise SchemaError(f"annotation: missing required field {key!r}")
        order = data.get("order", [])
        if not isinstance(order, list):
            raise SchemaError("annotation field 'order': expected an array")
        candidate = data.get("candidate")
        note = data.get("note")
        created = data.get("created_at") or ""
        return cls(
            annotator=data["annotator"],
            episode=data["episode"],
            example_id=data.get("example_id", ""),
            step=data["step"],
            kind=data["kind"],
            order=tuple(order),
            candidate=None if candidate is None else _index(candidate, "candidate"),
            label=data.get("label"),
            note=note if note else None,
            created_at=_text(created, "created_at", 64, empty=True),
        )


def read_annotations(
    path: str | os.PathLike[str], *, stats: ReadStats | None = None
) -> Iterator[Annotation]:
    """Yield the valid annotations of a JSONL file in order; torn or invalid lines are skipped.

    Skipped lines are counted in ``stats`` (line number and reason); a missing file reads
    as empty (no one has annotated yet).
    """
    file = Path(path)
    skipped = stats if stats is not None else ReadStats()
    if not file.exists():
        return
    with file.open("rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                data = json.loads(raw)
                yield Annotation.from_dict(data)
            except (ValueError, RecursionError) as exc:  # JSON, UTF-8 and schema errors
                reason = str(exc) if isinstance(exc, SchemaError) else "not valid JSON"
                skipped.skipped.append((lineno, reason))


def latest_annotations(annotations: Iterable[Annotation]) -> list[Annotation]:
    """The last judgement of each annotator for each thing judged, in first-made order."""
    chosen: dict[tuple[str, tuple[str, int, str, int | None]], Annotation] = {}
    for item in annotations:
        chosen[(item.annotator, item.target)] = item
    return list(chosen.values())


class AnnotationStore:
    """An append-only JSONL file of :class:`Annotation`, written like an episode store.

    Each annotation is one ``write`` of one line on a file opened in append mode (and
    ``fsync``-ed), so a crash tears at most the line being written, and a torn tail is
    followed by a fresh line. Appends are thread-safe.
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self._file = JsonlAppender(self.path)

    def __repr__(self) -> str:
        return f"AnnotationStore(path={str(self.path)!r})"

    def __enter__(self) -> AnnotationStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the file (a later append opens it again)."""
        self._file.close()

    def append(self, annotation: Annotation) -> Annotation:
        """Write ``annotation`` durably (stamping its time if unset) and return what was written."""
        if not annotation.created_at:
            annotation = replace(annotation, created_at=_now())
        line = json.dumps(annotation.to_dict(), ensure_ascii=False)
        self._file.append((scrub_surrogates(line) + "\n").encode("utf-8"), fsync=self.fsync)
        return annotation

    def read(self, *, stats: ReadStats | None = None) -> list[Annotation]:
        """Every valid annotation in the file, in order (see :func:`read_annotations`)."""
        return list(read_annotations(self.path, stats=stats))


def _rank_scores(order: Sequence[int]) -> dict[int, float]:
    """Candidate index -> score from a ranking: the best gets ``len(order)``, the worst 1."""
    return {index: float(len(order) - position) for position, index in enumerate(order)}


def _human_step(
    step: StepRecord, judged: Mapping[tuple[str, int | None], Annotation], name: str
) -> StepRecord:
    """``step`` with candidate scores from one annotator's judgements (unjudged: dropped)."""
    extra = dict(step.extra)
    own = judged.get(("mark", None))
    if own is not None:
        extra["human_label"] = own.label
    ranking = judged.get(("rank", None))
    scores: dict[int, float] = {}
    if ranking is not None and len(ranking.order) == len(step.candidates):
        scores = _rank_scores(ranking.order)
    else:
        for index in range(len(step.candidates)):
            mark = judged.get(("mark", index))
            if mark is not None:
                scores[index] = 1.0 if mark.label == "good" else 0.0
    if not scores:
        return replace(step, candidates=[], extra=extra)
    candidates = [
        replace(c, score=scores.get(i), scorer=HUMAN_SCORER_PREFIX + name, scorer_output=None)
        for i, c in enumerate(step.candidates)
    ]
    best = max(scores, key=lambda i: (scores[i], -i))
    extra["chosen"] = best
    return replace(step, candidates=candidates, extra=extra)


def human_scored(
    records: Iterable[EpisodeRecord], annotations: Iterable[Annotation], annotator: str
) -> list[EpisodeRecord]:
    """The annotated episodes re-scored by one annotator, ready for the dataset converters.

    Each judged step's candidates carry the person's scores (a ranking: ``n`` for the best
    down to 1; marks: good 1, bad 0).

    Steps the annotator did not judge lose their candidates (no machine score is passed
    off as a person's); a candidate left unmarked in a partly marked step has no score,
    which the converters read as an incomplete judgement and skip. The person's best
    candidate becomes the followed one (``extra["chosen"]``), and a mark of the step's
    own action is kept as ``extra["human_label"]``. Episodes without any judgement by
    ``annotator`` are left out.
    """
    by_step: dict[tuple[str, int], dict[tuple[str, int | None], Annotation]] = {}
    for item in latest_annotations(annotations):
        if item.annotator != annotator:
            continue
        what = ("mark", item.candidate) if item.kind == "mark" else ("rank", None)
        by_step.setdefault((item.episode, item.step), {})[what] = item
    judged_episodes = {episode for episode, _ in by_step}
    result: list[EpisodeRecord] = []
    for record in records:
        key = episode_key(record)
        if key not in judged_episodes:
            continue
        steps = [
            _human_step(step, by_step.get((key, step.index), {}), annotator)
            for step in record.steps
        ]
        extra = {**record.extra, "annotator": annotator}
        result.append(replace(record, steps=steps, extra=extra))
    return result
