"""Synthetic multi-hop questions with gold evidence from any corpus (``raggym synth``).

:func:`synthesize` turns a corpus and an LLM backend into a question file that
``RAGGym/Custom-v0`` plays directly. Three kinds of candidates are planned
deterministically from the seed:

- ``factual``: one document; a question answered by one of its facts.
- ``bridge``: document A mentions the title of document B (found in one pass over the
  texts with a title index, so linear in the corpus); the question reaches B's fact
  through A without naming B.
- ``comparison``: two documents of the same *type* that both state a year. The type is
  the head noun of the defining phrase of the first sentence (``"X was an American
  film director ..."`` -> ``director``: the last word before the first preposition,
  relative pronoun or punctuation after ``is/was a/an/the``); the LLM picks the
  attribute to compare.

Each candidate is one generation (strict JSON ``{"question", "answer",
"evidence_quotes"}``) followed by filters, each counted under its reason in the report:
``llm_error`` (the request failed; not recorded, retried on a rerun), ``parse_failure``,
``oversized``, ``suspicious_text`` (prompt-injection or markup in the question or answer),
``question_form``, ``answer_form`` (empty, longer than ``max_answer_words``, or a bare
yes/no for factual and bridge questions, whose yes/no versions are guessable half of the
time), ``quote_not_in_documents``, ``answer_not_in_evidence``, ``unsupported`` and
``verdict_unparseable`` (the LLM support check: the reply must be exactly yes or no),
``answerable_from_one_document`` (multi-hop only: the LLM, shown one gold document alone,
gives the gold answer by exact match after raggym's answer normalisation),
``answerable_from_retrieved_document`` (multi-hop only: the same with the retriever's top
non-gold document for the question, a shortcut around the evidence), ``duplicate`` and
``near_duplicate`` (token-set Jaccard of normalised questions at or above the threshold,
candidates found by MinHash banding so the check stays near-linear). Whether one
retrieval with the question already returns every gold document is recorded in
``meta.retrieval_covers_evidence`` (information, not a filter: a question can be easy to
retrieve for and still need both documents to answer).

Every LLM reply and every decision is appended to ``<out stem>.state.jsonl`` as it
arrives, so a rerun skips decided candidates and replays recorded replies instead of
asking again. The output is ``<out>`` (all kept questions, ``meta.split`` set) plus
``<stem>.train.jsonl`` / ``<stem>.eval.jsonl`` (split by a hash of the question id) and
``<stem>.summary.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raggym.agents.llm.base import LLM, Completion, SamplingParams
from raggym.agents.registry import LLM_SPEC_HELP
from raggym.trainers.datasets import write_jsonl
from raggym_env.corpora import BaseCorpus
from raggym_env.metrics import exact_match, normalize_answer
from raggym_env.progress import progress
from raggym_env.retrieval.base import Retriever
from raggym_env.store import JsonlAppender
from raggym_env.types import Document

__all__ = [
    "KINDS",
    "REASONS",
    "Candidate",
    "SynthConfig",
    "SynthReport",
    "output_paths",
    "parse_generation",
    "plan_candidates",
    "synth_command",
    "synthesize",
]

KINDS = ("factual", "bridge", "comparison")
"""The question kinds, in the order candidates are planned."""

REASONS = (
    "llm_error",
    "parse_failure",
    "oversized",
    "suspicious_text",
    "question_form",
    "answer_form",
    "quote_not_in_documents",
    "answer_not_in_evidence",
    "unsupported",
    "verdict_unparseable",
    "answerable_from_one_document",
    "answerable_from_retrieved_document",
    "duplicate",
    "near_duplicate",
)
"""Why a candidate is dropped, in the order the filters run."""

_STATE_VERSION = 1
_MAX_OUTPUT_CHARS = 4000
_YES_NO = frozenset({"yes", "no"})
_SUSPICIOUS = (
    "ignore previous",
    "ignore all",
    "ignore the above",
    "disregard",
    "system prompt",
    "you are now",
    "instructions",
    "task:",
    "###",
    "<script",
    "http://",
    "https://",
    "```",
)

PROMPTS: dict[str, str] = {
    "factual": (
        "Task: synth-factual\n"
        "Read the document below and write one question that it answers with a short fact "
        "(a name, a date, a number or a place). The question must make sense without the "
        "document in front of the reader.\n"
        'Reply with JSON only: {"question": "...", "answer": "...", '
        '"evidence_quotes": ["exact sentence(s) from the document"]}\n'
    ),
    "bridge": (
        "Task: synth-bridge\n"
        "Document 1 mentions the subject of document 2. Write one question whose answer is "
        "a short fact from document 2, reaching it through document 1: describe the "
        "subject of document 2 by its relation to document 1's subject, without naming it.\n"
        'Reply with JSON only: {"question": "...", "answer": "...", '
        '"evidence_quotes": ["exact sentence(s) from both documents"]}\n'
    ),
    "comparison": (
        "Task: synth-comparison\n"
        "The two documents describe things of the same kind. Pick one attribute both "
        "state (a date, a number, a place) and write one question comparing them on it; "
        "the answer is the name of one of the two, or a short value.\n"
        'Reply with JSON only: {"question": "...", "answer": "...", '
        '"evidence_quotes": ["exact sentence(s) from both documents"]}\n'
    ),
    "support": (
        "Task: synth-support\n"
        "Do the documents and quotes below support the answer to the question? Reply with "
        "exactly one word: yes or no.\n"
    ),
    "single": (
        "Task: synth-single\n"
        "Answer the question from this one document only, with a short answer and no "
        "explanation. If the document does not contain the answer, reply: unknown\n"
    ),
}
"""The prompts (the documents, question and answer follow in labelled sections)."""


@dataclass(frozen=True)
class SynthConfig:
    """What to generate and how to filter it.

    Attributes:
        factual: factual (one-document) candidates to plan.
        bridge: bridge (two documents linked by a title mention) candidates to plan.
        comparison: comparison (two documents of one type) candidates to plan.
        seed: seed of the candidate plan (same seed and corpus, same candidates).
        eval_fraction: share of kept questions in the eval split (by a hash of the id).
        max_answer_words: longest accepted answer, in words.
        near_duplicate_threshold: token-set Jaccard at or above which a question is a
            near-duplicate of a kept one.
        retriever: retriever name for the single-document check (``make_retriever``).
        retriever_k: documents retrieved for the check and ``retrieval_covers_evidence``.
        check_retrieved: whether to run the retrieved-document shortcut check.
        max_doc_words: words of each document shown to the LLM.
        batch_size: conversations sent to the LLM per call.
        sampling: sampling parameters of every call.
        price_prompt_per_1k: price of 1,000 prompt tokens (``None``: no cost reported).
        price_completion_per_1k: price of 1,000 completion tokens.
    """

    factual: int = 10
    bridge: int = 10
    comparison: int = 10
    seed: int = 0
    eval_fraction: float = 0.2
    max_answer_words: int = 8
    near_duplicate_threshold: float = 0.8
    retriever: str = "bm25"
    retriever_k: int = 5
    check_retrieved: bool = True
    max_doc_words: int = 250
    batch_size: int = 16
    sampling: SamplingParams = field(default_factory=lambda: SamplingParams(max_tokens=256))
    price_prompt_per_1k: float | None = None
    price_completion_per_1k: float | None = None

    def __post_init__(self) -> None:
        for name in ("factual", "bridge", "comparison"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"SynthConfig.{name} must be an int >= 0, got {value!r}")
        if not 0.0 <= self.eval_fraction <= 1.0:
            raise ValueError(f"eval_fraction must be in [0, 1], got {self.eval_fraction!r}")
        if not 0.0 < self.near_duplicate_threshold <= 1.0:
            raise ValueError(
                f"near_duplicate_threshold must be in (0, 1], got {self.near_duplicate_threshold}"
            )
        for name in ("max_answer_words", "retriever_k", "max_doc_words", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"SynthConfig.{name} must be >= 1, got {getattr(self, name)}")

    def plan_key(self) -> dict[str, Any]:
        """The settings that decide candidates and verdicts (a state file must match them)."""
        return {
            "factual": self.factual,
            "bridge": self.bridge,
            "comparison": self.comparison,
            "seed": self.seed,
            "max_answer_words": self.max_answer_words,
            "near_duplicate_threshold": self.near_duplicate_threshold,
            "max_doc_words": self.max_doc_words,
        }


@dataclass(frozen=True)
class Candidate:
    """One planned generation: its kind and source documents (``key`` identifies it)."""

    kind: str
    doc_ids: tuple[str, ...]

    @property
    def key(self) -> str:
        """A stable id: the kind and the source document ids."""
        return f"{self.kind}:" + "|".join(self.doc_ids)

    @property
    def question_id(self) -> str:
        """The id of the question this candidate becomes (short, stable)."""
        return f"synth-{self.kind}-{zlib.crc32(self.key.encode('utf-8')):08x}"


@dataclass
class SynthReport:
    """What a run produced: counts per kind and reason, tokens, cost, files."""

    planned: dict[str, int] = field(default_factory=dict)
    generated: int = 0
    kept: int = 0
    kept_by_kind: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    train: int = 0
    eval: int = 0
    llm_calls: int = 0
    llm_failures: int = 0
    replayed_calls: int = 0
    resumed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    wall_s: float = 0.0
    paths: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (the ``<stem>.summary.json`` contents)."""
        return dataclasses.asdict(self)

    def table(self) -> str:
        """The summary as aligned text lines."""
        rows: list[tuple[str, str]] = [("planned", str(sum(self.planned.values())))]
        rows.append(("generated", str(self.generated)))
        rows += [(f"  dropped: {r}", str(n)) for r, n in self.dropped.items() if n]
        rows.append(("kept", str(self.kept)))
        rows += [(f"  {k}", str(n)) for k, n in self.kept_by_kind.items()]
        rows += [("train / eval", f"{self.train} / {self.eval}")]
        rows += [("LLM calls (replayed)", f"{self.llm_calls} ({self.replayed_calls})")]
        rows += [("tokens prompt / completion", f"{self.prompt_tokens} / {self.completion_tokens}")]
        rows.append(("cost", "n/a" if self.cost is None else f"{self.cost:.4f}"))
        width = max(len(r[0]) for r in rows)
        return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)


# ---------------------------------------------------------------------------- planning


def _words(text: str) -> list[str]:
    """Whitespace words with surrounding punctuation stripped (keeps case)."""
    return [w.strip(".,;:!?()[]\"'") for w in text.split()]


def _first_sentence(text: str) -> str:
    end = text.find(". ")
    return text if end < 0 else text[: end + 1]


def _has_year(text: str) -> bool:
    return any(len(w) == 4 and w.isdigit() and w[0] in "12" for w in _words(text))


_STOP_TYPE = frozenset(
    {
        "of",
        "in",
        "on",
        "at",
        "by",
        "from",
        "for",
        "with",
        "who",
        "which",
        "that",
        "whose",
        "where",
        "when",
        "to",
        "as",
        "born",
        "known",
        "based",
        "located",
        "directed",
        "written",
        "produced",
        "released",
        "founded",
        "situated",
        "named",
        "made",
        "created",
        "published",
        "composed",
        "built",
        "starring",
        "featuring",
        "owned",
        "operated",
        "played",
        "set",
    }
)
_COPULA = ("is", "was", "are", "were")
_ARTICLES = ("a", "an", "the")


def document_type(text: str) -> str | None:
    """The head noun of the defining phrase of the first sentence (``None`` when absent)."""
    words = _first_sentence(text).split()
    for i in range(len(words) - 2):
        if words[i].lower() in _COPULA and words[i + 1].lower() in _ARTICLES:
            head: str | None = None
            for raw in words[i + 2 : i + 14]:
                word = raw.strip("\"'()")
                low = word.lower().strip(".,;:")
                if low.isdigit() or (low.endswith("s") and low[:-1].isdigit()):
                    continue  # "a 1927 film", "a 1990s band"
                if low in _STOP_TYPE or not low.replace("-", "").isalpha():
                    break
                head = low
                if word.endswith((",", ".", ";", ":")):
                    break
            return head
    return None


def _title_index(corpus: Sequence[Document]) -> tuple[dict[str, str], int]:
    """Lower-cased title (two words or longer than 4 characters) -> first document id."""
    index: dict[str, str] = {}
    longest = 1
    for doc in corpus:
        title = " ".join(_words(doc.title)).lower()
        if (" " in title or len(title) > 4) and title not in index:
            index[title] = doc.id
            longest = max(longest, title.count(" ") + 1)
    return index, min(longest, 8)


def _mentions(doc: Document, index: Mapping[str, str], longest: int) -> Iterator[str]:
    """Ids of other documents whose title ``doc``'s text mentions (capitalised), in order."""
    words = _words(doc.text)
    own = " ".join(_words(doc.title)).lower()
    for i, first in enumerate(words):
        if not first[:1].isupper():
            continue
        for n in range(min(longest, len(words) - i), 0, -1):
            phrase = " ".join(words[i : i + n]).lower()
            target = index.get(phrase)
            if target is not None and target != doc.id and phrase != own:
                yield target
                break


def plan_candidates(corpus: Sequence[Document], config: SynthConfig) -> list[Candidate]:
    """The candidates for ``config``: deterministic for a corpus and seed (see module doc)."""
    rng = random.Random(config.seed)
    order = list(range(len(corpus)))
    rng.shuffle(order)
    plan: list[Candidate] = []
    factual = [corpus[i] for i in order if len(corpus[i].text.split()) >= 8]
    plan += [Candidate("factual", (d.id,)) for d in factual[: config.factual]]
    if config.bridge:
        index, longest = _title_index(corpus)
        seen: set[tuple[str, str]] = set()
        bridges: list[Candidate] = []
        for i in order:
            if len(bridges) >= config.bridge:
                break
            doc = corpus[i]
            for target in _mentions(doc, index, longest):
                if (doc.id, target) not in seen:
                    seen.add((doc.id, target))
                    bridges.append(Candidate("bridge", (doc.id, target)))
                    break
        plan += bridges
    if config.comparison:
        groups: dict[str, list[str]] = {}
        for i in order:
            doc = corpus[i]
            kind = document_type(doc.text)
            if kind is not None and _has_year(_first_sentence(doc.text)):
                groups.setdefault(kind, []).append(doc.id)
        pairs: list[Candidate] = []
        pools = sorted((ids for ids in groups.values() if len(ids) >= 2), key=len, reverse=True)
        position = dict.fromkeys(range(len(pools)), 0)
        while len(pairs) < config.comparison and any(
            position[p] + 1 < len(pools[p]) for p in position
        ):
            for p, ids in enumerate(pools):  # round-robin over the types, two at a time
                if position[p] + 1 < len(ids) and len(pairs) < config.comparison:
                    pairs.append(Candidate("comparison", (ids[position[p]], ids[position[p] + 1])))
                    position[p] += 2
        plan += pairs
    return plan


# ---------------------------------------------------------------------------- parsing


def _clip(text: str, words: int) -> str:
    parts = text.split()
    return " ".join(parts[:words]) + (" ..." if len(parts) > words else "")


def _documents_block(docs: Sequence[Document], words: int) -> str:
    return "".join(
        f"### Document {i}: {doc.title}\n{_clip(doc.text, words)}\n\n"
        for i, doc in enumerate(docs, 1)
    )


def parse_generation(text: str) -> tuple[dict[str, Any] | None, str | None]:
    """Parse a generation reply into ``{"question", "answer", "evidence_quotes"}``.

    Takes the outermost ``{...}`` span (one linear scan for the braces, then ``json``), so
    a reply wrapped in prose or a code fence still parses. Returns the fields, or ``None``
    and the drop reason (``oversized`` or ``parse_failure``).
    """
    if len(text) > _MAX_OUTPUT_CHARS:
        return None, "oversized"
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        return None, "parse_failure"
    try:
        data = json.loads(text[start : end + 1])
    except (ValueError, RecursionError):
        return None, "parse_failure"
    if not isinstance(data, dict):
        return None, "parse_failure"
    question, answer = data.get("question"), data.get("answer")
    quotes = data.get("evidence_quotes", [])
    if isinstance(answer, (int, float)) and not isinstance(answer, bool):
        answer = str(answer)
    if not isinstance(question, str) or not isinstance(answer, str):
        return None, "parse_failure"
    if not isinstance(quotes, list) or not all(isinstance(q, str) for q in quotes):
        return None, "parse_failure"
    try:  # a lone surrogate (JSON "\\ud800") cannot be written out as UTF-8
        "".join([question, answer, *quotes]).encode("utf-8")
    except UnicodeEncodeError:
        return None, "parse_failure"
    return {"question": question.strip(), "answer": answer, "evidence_quotes": quotes}, None


def normalize_answer_form(answer: str) -> str:
    """The answer as stored: whitespace collapsed, quotes and trailing punctuation stripped."""
    text = " ".join(answer.split()).strip().strip("\"'`").strip()
    return text.rstrip(".!,;:").strip()


def _squash(text: str) -> str:
    """Lower-case words joined by single spaces, for substring checks."""
    return " ".join(normalize_answer(text).split())


def _form_problem(item: Mapping[str, Any], kind: str, config: SynthConfig) -> str | None:
    """The first form rule a parsed generation breaks (``None``: it passes)."""
    question, answer = str(item["question"]), str(item["answer"])
    both = f"{question} {answer}".lower()
    if any(marker in both for marker in _SUSPICIOUS):
        return "suspicious_text"
    words = len(question.split())
    if not question.endswith("?") or not 4 <= words <= 60:
        return "question_form"
    if not answer or not _squash(answer):
        return "answer_form"
    if len(answer.split()) > config.max_answer_words:
        return "answer_form"
    if kind != "comparison" and _squash(answer) in _YES_NO:
        return "answer_form"
    if f" {_squash(answer)} " in f" {_squash(question)} " and kind != "comparison":
        return "question_form"  # the question gives its answer away
    return None


def _evidence_problem(item: Mapping[str, Any], docs: Sequence[Document]) -> str | None:
    """Whether the quotes come from the documents and the answer from the evidence."""
    texts = [_squash(d.text) for d in docs]
    for quote in item["evidence_quotes"]:
        q = _squash(quote)
        if not q or not any(q in t for t in texts):
            return "quote_not_in_documents"
    answer = _squash(item["answer"])
    sources = (
        texts + [_squash(d.title) for d in docs] + [_squash(q) for q in item["evidence_quotes"]]
    )
    if answer in _YES_NO or any(f" {answer} " in f" {s} " for s in sources):
        return None
    return "answer_not_in_evidence"


def parse_verdict(text: str) -> bool | None:
    """A strict yes/no verdict: one word, any case, optional final period; else ``None``."""
    word = text.strip().rstrip(".").strip().lower()
    return True if word == "yes" else False if word == "no" else None


# ---------------------------------------------------------------------------- near-duplicates

_BANDS, _ROWS = 8, 2


def _shingles(question: str) -> frozenset[str]:
    return frozenset(normalize_answer(question).split())


class _DedupIndex:
    """Exact and near-duplicate detection over kept questions (MinHash banding + Jaccard)."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.exact: set[str] = set()
        self.sets: list[frozenset[str]] = []
        self.buckets: dict[tuple[int, int], list[int]] = {}

    def _bands(self, tokens: frozenset[str]) -> list[tuple[int, int]]:
        encoded = [t.encode("utf-8") for t in tokens] or [b""]
        mins = [min(zlib.crc32(t, salt) for t in encoded) for salt in range(_BANDS * _ROWS)]
        return [(b, hash(tuple(mins[b * _ROWS : (b + 1) * _ROWS]))) for b in range(_BANDS)]

    def check(self, question: str) -> str | None:
        """``duplicate``, ``near_duplicate`` or ``None`` for a question not yet kept."""
        if _squash(question) in self.exact:
            return "duplicate"
        tokens = _shingles(question)
        seen: set[int] = set()
        for band in self._bands(tokens):
            for j in self.buckets.get(band, ()):
                if j in seen:
                    continue
                seen.add(j)
                other = self.sets[j]
                union = len(tokens | other)
                if union and len(tokens & other) / union >= self.threshold:
                    return "near_duplicate"
        return None

    def add(self, question: str) -> None:
        """Remember a kept question."""
        self.exact.add(_squash(question))
        tokens = _shingles(question)
        self.sets.append(tokens)
        for band in self._bands(tokens):
            self.buckets.setdefault(band, []).append(len(self.sets) - 1)


# ---------------------------------------------------------------------------- state file


def output_paths(out_path: str | Path) -> dict[str, Path]:
    """The files a run writes for ``out_path`` (``questions.jsonl`` -> ``questions.*``)."""
    out = Path(out_path)
    stem = out.with_suffix("") if out.suffix == ".jsonl" else out
    return {
        "all": out,
        "train": stem.with_name(stem.name + ".train.jsonl"),
        "eval": stem.with_name(stem.name + ".eval.jsonl"),
        "summary": stem.with_name(stem.name + ".summary.json"),
        "state": stem.with_name(stem.name + ".state.jsonl"),
    }


class _State:
    """The crash-safe log of replies and decisions (one JSON object per line, appended)."""

    def __init__(self, path: Path, plan_key: dict[str, Any], resume: bool) -> None:
        self.path = path
        self.calls: dict[str, dict[str, Any]] = {}
        self.decisions: dict[str, dict[str, Any]] = {}
        if resume and path.exists():
            self._load(plan_key)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("", encoding="utf-8")
        self._file = JsonlAppender(path)
        if not self.calls and not self.decisions and path.stat().st_size == 0:
            self._write({"type": "header", "version": _STATE_VERSION, "plan": plan_key})

    def _load(self, plan_key: dict[str, Any]) -> None:
        raw = self.path.read_bytes()
        if raw and not raw.endswith(b"\n"):  # a torn last line: cut it off and go on
            raw = raw[: raw.rfind(b"\n") + 1]
            self.path.write_bytes(raw)
        for lineno, line in enumerate(raw.decode("utf-8", "replace").splitlines(), 1):
            try:
                record = json.loads(line)
            except ValueError:
                raise ValueError(
                    f"{self.path}:{lineno}: not a JSON line; rerun with --no-resume to start over"
                ) from None
            kind = record.get("type") if isinstance(record, dict) else None
            if kind not in ("header", "call", "decision") or (
                kind != "header"
                and not isinstance(record.get("id" if kind == "call" else "key"), str)
            ):
                raise ValueError(
                    f"{self.path}:{lineno}: not a synth state record; rerun with --no-resume "
                    "to start over"
                )
            if kind == "header":
                if record.get("plan") != plan_key:
                    raise ValueError(
                        f"{self.path} was written with other settings ({record.get('plan')}); "
                        "rerun with --no-resume to start over, or use another --out"
                    )
            elif kind == "call":
                self.calls[str(record["id"])] = record
            elif kind == "decision":
                self.decisions[str(record["key"])] = record

    def _write(self, record: Mapping[str, Any]) -> None:
        # ASCII (json.dumps escapes): replies may hold lone surrogates
        if not self._file.append((json.dumps(record) + "\n").encode("ascii")):
            raise ValueError(f"the synth state {self.path} is closed")

    def call(self, call_id: str, completion: Completion) -> dict[str, Any]:
        """Record one successful reply."""
        record = {
            "type": "call",
            "id": call_id,
            "text": completion.texts[0][: _MAX_OUTPUT_CHARS + 1],  # enough to judge it oversized
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
        }
        self._write(record)
        self.calls[call_id] = record
        return record

    def decide(self, key: str, kept: bool, reason: str | None, record: Any = None) -> None:
        """Record the final decision on one candidate."""
        entry = {"type": "decision", "key": key, "kept": kept, "reason": reason, "record": record}
        self._write(entry)
        self.decisions[key] = entry

    def close(self) -> None:
        """Close the log."""
        self._file.close(final=True)


# ---------------------------------------------------------------------------- the pipeline


class _Caller:
    """Sends conversations in batches, replaying recorded replies and counting usage."""

    def __init__(self, llm: LLM, state: _State, config: SynthConfig, report: SynthReport) -> None:
        self.llm, self.state, self.config, self.report = llm, state, config, report

    def ask(self, requests: Sequence[tuple[str, str]]) -> dict[str, str | None]:
        """``(call id, prompt)`` -> reply text (``None`` when the request failed)."""
        replies: dict[str, str | None] = {}
        todo = []
        for call_id, prompt in requests:
            if call_id in self.state.calls:
                replies[call_id] = str(self.state.calls[call_id]["text"])
                self.report.replayed_calls += 1
            else:
                todo.append((call_id, prompt))
        size = self.config.batch_size
        for start in range(0, len(todo), size):
            chunk = todo[start : start + size]
            conversations = [[{"role": "user", "content": p}] for _, p in chunk]
            completions = self.llm.generate(conversations, self.config.sampling)
            for (call_id, _), completion in zip(chunk, completions, strict=True):
                self.report.llm_calls += 1
                if completion.ok:
                    replies[call_id] = str(self.state.call(call_id, completion)["text"])
                else:
                    self.report.llm_failures += 1
                    replies[call_id] = None
        return replies


def _gen_prompt(cand: Candidate, docs: Sequence[Document], config: SynthConfig) -> str:
    return PROMPTS[cand.kind] + "\n" + _documents_block(docs, config.max_doc_words)


def _support_prompt(item: Mapping[str, Any], docs: Sequence[Document], words: int) -> str:
    quotes = "".join(f"- {q}\n" for q in item["evidence_quotes"]) or "- (none)\n"
    return (
        PROMPTS["support"]
        + f"\nQuestion: {item['question']}\nAnswer: {item['answer']}\nQuotes:\n{quotes}\n"
        + _documents_block(docs, words)
    )


def _single_prompt(question: str, doc: Document, words: int) -> str:
    return PROMPTS["single"] + f"\nQuestion: {question}\n\n" + _documents_block([doc], words)


def _question_record(
    cand: Candidate, item: Mapping[str, Any], docs: Sequence[Document], split: str, covers: bool
) -> dict[str, Any]:
    return {
        "id": cand.question_id,
        "question": item["question"],
        "answers": [item["answer"]],
        "evidence": {
            "titles": list(dict.fromkeys(d.title for d in docs)),
            "doc_ids": [d.id for d in docs],
        },
        "meta": {
            "kind": cand.kind,
            "split": split,
            "source_doc_ids": [d.id for d in docs],
            "evidence_quotes": list(item["evidence_quotes"]),
            "retrieval_covers_evidence": covers,
        },
    }


def _split_of(question_id: str, eval_fraction: float) -> str:
    share = zlib.crc32(("split:" + question_id).encode("utf-8")) / 2**32
    return "eval" if share < eval_fraction else "train"


def _corpus_lookup(corpus: BaseCorpus | Sequence[Document]) -> dict[str, Document]:
    return {doc.id: doc for doc in corpus}


def synthesize(
    corpus: BaseCorpus | Sequence[Document],
    llm: LLM,
    config: SynthConfig | None = None,
    out_path: str | Path = "synth.jsonl",
    *,
    resume: bool = True,
    retriever: Retriever | None = None,
    show_progress: bool | None = None,
) -> SynthReport:
    """Generate, filter and write synthetic questions; see the module docstring.

    Args:
        corpus: the documents (any corpus :func:`~raggym_env.corpora.load_corpus` returns).
        llm: any backend of the LLM protocol (``make_llm(spec)``, a testing-kit double).
        config: what to generate (defaults: 10 of each kind).
        out_path: the question file; its siblings hold the splits, summary and state.
        resume: continue from the state file when it exists (``False`` starts over).
        retriever: the retriever for the shortcut check (default: ``config.retriever``
            built over ``corpus``).
        show_progress: progress bar on/off (``None``: decided by :mod:`raggym_env.progress`).

    Raises:
        ValueError: the corpus is empty, or the state file was written with other settings.
    """
    config = config or SynthConfig()
    started = time.perf_counter()
    docs_by_id = _corpus_lookup(corpus)
    if not docs_by_id:
        raise ValueError("synthesize needs a non-empty corpus")
    documents = list(docs_by_id.values()) if not isinstance(corpus, Sequence) else corpus
    plan = plan_candidates(documents, config)
    paths = output_paths(out_path)
    report = SynthReport(planned={k: sum(c.kind == k for c in plan) for k in KINDS})
    state = _State(paths["state"], config.plan_key(), resume)
    caller = _Caller(llm, state, config, report)
    dedup = _DedupIndex(config.near_duplicate_threshold)
    for cand in plan:  # a resumed run compares new questions with those already kept
        decision = state.decisions.get(cand.key)
        if decision is not None and decision["kept"]:
            dedup.add(str(decision["record"]["question"]))
    multi_hop = [c for c in plan if c.kind != "factual"]
    if retriever is None and multi_hop and isinstance(corpus, BaseCorpus):
        from raggym_env.retrieval import make_retriever

        retriever = make_retriever(config.retriever, corpus)
    try:
        with progress(total=len(plan), desc="synth", unit="cand", enabled=show_progress) as bar:
            for start in range(0, len(plan), config.batch_size):
                batch = plan[start : start + config.batch_size]
                _run_batch(batch, docs_by_id, caller, state, dedup, retriever, config, report)
                bar.update(len(batch))
                bar.set_postfix(kept=sum(d["kept"] for d in state.decisions.values()))
    finally:
        state.close()
    _finish(plan, state, paths, config, report)
    report.wall_s = round(time.perf_counter() - started, 3)
    report.paths = {name: str(p) for name, p in paths.items()}
    paths["summary"].write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    return report


def _run_batch(
    batch: Sequence[Candidate],
    docs_by_id: Mapping[str, Document],
    caller: _Caller,
    state: _State,
    dedup: _DedupIndex,
    retriever: Retriever | None,
    config: SynthConfig,
    report: SynthReport,
) -> None:
    """Take one batch of candidates through generation and every filter."""
    pending = [c for c in batch if c.key not in state.decisions]
    report.resumed += len(batch) - len(pending)
    alive: dict[str, dict[str, Any]] = {}
    sources = {c.key: [docs_by_id[i] for i in c.doc_ids] for c in pending}
    replies = caller.ask(
        [(f"{c.key}#gen", _gen_prompt(c, sources[c.key], config)) for c in pending]
    )
    for cand in pending:
        text = replies[f"{cand.key}#gen"]
        if text is None:
            report.dropped["llm_error"] += 1
            continue
        item, reason = parse_generation(text)
        if item is not None:
            item["answer"] = normalize_answer_form(item["answer"])
            reason = _form_problem(item, cand.kind, config) or _evidence_problem(
                item, sources[cand.key]
            )
        if reason is not None or item is None:
            state.decide(cand.key, False, reason or "parse_failure")
            continue
        alive[cand.key] = item
    words = config.max_doc_words
    verdicts = caller.ask(
        [
            (f"{key}#support", _support_prompt(item, sources[key], words))
            for key, item in alive.items()
        ]
    )
    for key in list(alive):
        text = verdicts[f"{key}#support"]
        if text is None:
            report.dropped["llm_error"] += 1
            del alive[key]
            continue
        verdict = parse_verdict(text)
        if verdict is not True:
            state.decide(key, False, "unsupported" if verdict is False else "verdict_unparseable")
            del alive[key]
    multi = [c for c in pending if c.key in alive and c.kind != "factual"]
    covers: dict[str, bool] = {}
    shortcut: dict[str, Document] = {}
    if multi and retriever is not None:
        hits = retriever.search([alive[c.key]["question"] for c in multi], config.retriever_k)
        for cand, ranked in zip(multi, hits, strict=True):
            ids = [h.id for h in ranked]
            covers[cand.key] = all(i in ids for i in cand.doc_ids)
            other = next((i for i in ids if i not in cand.doc_ids), None)
            if config.check_retrieved and other is not None and other in docs_by_id:
                shortcut[cand.key] = docs_by_id[other]
    single_requests: list[tuple[str, str]] = []
    for cand in multi:
        question = alive[cand.key]["question"]
        for doc in sources[cand.key]:
            single_requests.append(
                (f"{cand.key}#single:{doc.id}", _single_prompt(question, doc, words))
            )
        if cand.key in shortcut:
            doc = shortcut[cand.key]
            single_requests.append(
                (f"{cand.key}#retrieved:{doc.id}", _single_prompt(question, doc, words))
            )
    answers = caller.ask(single_requests)
    for cand in multi:
        gold = [alive[cand.key]["answer"]]
        mine = {cid: text for cid, text in answers.items() if cid.startswith(cand.key + "#")}
        if any(text is None for text in mine.values()):
            report.dropped["llm_error"] += 1
            del alive[cand.key]
            continue
        reason = None
        for cid, text in mine.items():
            if text is not None and exact_match(normalize_answer_form(text), gold) == 1.0:
                reason = (
                    "answerable_from_one_document"
                    if "#single:" in cid
                    else "answerable_from_retrieved_document"
                )
                break
        if reason is not None:
            state.decide(cand.key, False, reason)
            del alive[cand.key]
    for cand in pending:  # in plan order, so the kept set is the same however runs split
        if cand.key not in alive:
            continue
        item = alive[cand.key]
        reason = dedup.check(item["question"])
        if reason is not None:
            state.decide(cand.key, False, reason)
            continue
        dedup.add(item["question"])
        split = _split_of(cand.question_id, config.eval_fraction)
        record = _question_record(cand, item, sources[cand.key], split, covers.get(cand.key, False))
        state.decide(cand.key, True, None, record)


def _finish(
    plan: Sequence[Candidate],
    state: _State,
    paths: Mapping[str, Path],
    config: SynthConfig,
    report: SynthReport,
) -> None:
    """Count the decisions, write the question files (atomically) and the usage."""
    kept: list[dict[str, Any]] = []
    for cand in plan:
        decision = state.decisions.get(cand.key)
        if decision is None:
            continue
        report.generated += 1
        if decision["kept"]:
            kept.append(decision["record"])
            report.kept_by_kind[cand.kind] = report.kept_by_kind.get(cand.kind, 0) + 1
        else:
            report.dropped[str(decision["reason"])] = (
                report.dropped.get(str(decision["reason"]), 0) + 1
            )
    report.generated += report.dropped["llm_error"]
    report.kept = len(kept)
    for call in state.calls.values():
        report.prompt_tokens += int(call.get("prompt_tokens") or 0)
        report.completion_tokens += int(call.get("completion_tokens") or 0)
    if config.price_prompt_per_1k is not None or config.price_completion_per_1k is not None:
        report.cost = round(
            report.prompt_tokens / 1000 * (config.price_prompt_per_1k or 0.0)
            + report.completion_tokens / 1000 * (config.price_completion_per_1k or 0.0),
            6,
        )
    by_split = {"train": [r for r in kept if r["meta"]["split"] == "train"]}
    by_split["eval"] = [r for r in kept if r["meta"]["split"] == "eval"]
    report.train, report.eval = len(by_split["train"]), len(by_split["eval"])
    write_jsonl(kept, paths["all"])
    write_jsonl(by_split["train"], paths["train"])
    write_jsonl(by_split["eval"], paths["eval"])


# ---------------------------------------------------------------------------- command line


def synth_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``raggym synth``."""
    parser = sub.add_parser(
        "synth",
        help="generate multi-hop questions with gold evidence from a corpus with an LLM",
        description=(
            "Generate factual, bridge and comparison questions from a corpus with an LLM, "
            "filter them, and write a question file RAGGym/Custom-v0 plays (data_path=OUT, "
            "with OUT.train.jsonl / OUT.eval.jsonl splits and OUT.summary.json)."
        ),
    )
    parser.add_argument("--corpus", required=True, help="corpus file or folder (load_corpus)")
    parser.add_argument("--llm", required=True, help=LLM_SPEC_HELP)
    parser.add_argument("--out", required=True, help="question file to write (JSONL)")
    defaults = SynthConfig()
    for kind in KINDS:
        parser.add_argument(f"--{kind}", type=int, default=getattr(defaults, kind), metavar="N")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--eval-fraction", type=float, default=defaults.eval_fraction)
    parser.add_argument("--max-answer-words", type=int, default=defaults.max_answer_words)
    parser.add_argument("--retriever", default=defaults.retriever)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--price-prompt", type=float, default=None, help="price per 1k tokens")
    parser.add_argument("--price-completion", type=float, default=None)
    parser.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    parser.set_defaults(func=_run_synth)


def _run_synth(args: argparse.Namespace) -> int:
    from raggym.agents.registry import make_llm
    from raggym_env.corpora import load_corpus

    corpus = load_corpus(args.corpus)
    llm = make_llm(args.llm)
    config = SynthConfig(
        factual=args.factual,
        bridge=args.bridge,
        comparison=args.comparison,
        seed=args.seed,
        eval_fraction=args.eval_fraction,
        max_answer_words=args.max_answer_words,
        retriever=args.retriever,
        batch_size=args.batch_size,
        price_prompt_per_1k=args.price_prompt,
        price_completion_per_1k=args.price_completion,
    )
    report = synthesize(
        corpus, llm, config, args.out, resume=args.resume, show_progress=args.progress
    )
    print(report.table())
    print(f"wrote {report.paths['all']} (summary: {report.paths['summary']})")
    if report.llm_calls and report.llm_failures == report.llm_calls:
        print("raggym synth: every LLM call failed", file=sys.stderr)
        return 1
    return 0
