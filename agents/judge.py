"""RAG quality metrics scored by a judge LLM: faithfulness, answer relevance, context relevance.

Any :class:`~raggym.agents.llm.base.LLM` backend judges (``make_llm("openai:URL:MODEL")``,
``hf:PATH``, ``vllm:MODEL``, or the testing kit's scripted LLMs). Every request of every
episode goes to the backend in batches of ``batch_size`` conversations.

- **faithfulness**: is the final answer supported by the documents the episode retrieved?
  Multi-hop QA answers are short (an entity, a date, yes/no), so the answer, read as the
  answer to its question, is judged as **one claim**: 1.0 supported, 0.0 not. An episode
  that retrieved nothing scores 0.0 without a call (nothing supports its answer).
  RAGAS splits a long answer into claims with an LLM and scores supported / claims; for
  one claim the two agree.
- **answer relevance**: does the answer address the question? The judge grades 1-5, mapped
  to [0, 1] by ``(grade - 1) / 4``. RAGAS instead generates questions from the answer and
  averages their embedding similarity to the real question; ours needs no embedding model
  and does not reward a long answer for restating the question.
- **context relevance**: the fraction of the retrieved documents (distinct, in retrieval
  order, at most ``max_documents``) that the judge marks relevant to the question.

A judge failure (the request failed, e.g. HTTP 500 after retries; a verdict that cannot be
parsed; a refusal) leaves the metric ``None`` (missing, never 0) with its reason in the
result's ``failures``. Metrics that do not apply (an episode that crashed or gave no answer:
faithfulness and answer relevance; nothing retrieved: context relevance) are ``None`` with
the reason in ``skipped``; skipped metrics are not judge failures.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from raggym.agents.llm.base import LLM, Completion, Message, SamplingParams
from raggym_env.episode import EpisodeRecord

__all__ = [
    "JUDGE_METRICS",
    "RAGJudge",
    "failure_counts",
    "judge_episodes",
    "parse_grade",
    "parse_verdict",
]

JUDGE_METRICS: tuple[str, ...] = ("faithfulness", "answer_relevance", "context_relevance")
"""The metric keys each judged episode carries."""

_SYSTEM = (
    "You are a strict evaluator of a question answering system. Judge only from the "
    "material given. End your reply with the requested line and nothing after it."
)

_FAITHFUL = (
    "Documents:\n{documents}\n\nQuestion: {question}\nAnswer: {answer}\n\n"
    "Is the answer to the question fully supported by the documents above (not by your own "
    "knowledge)? Reply with one line: 'Verdict: SUPPORTED' or 'Verdict: UNSUPPORTED'."
)

_RELEVANT_ANSWER = (
    "Question: {question}\nAnswer: {answer}\n\n"
    "How well does the answer address the question (whether or not it is correct)? "
    "1 = not at all or evasive, 5 = directly and completely. Reply with one line: "
    "'Score: N' with N from 1 to 5."
)

_RELEVANT_DOC = (
    "Question: {question}\n\nDocument:\n{document}\n\n"
    "Does this document contain information useful for answering the question? Reply with "
    "one line: 'Verdict: RELEVANT' or 'Verdict: IRRELEVANT'."
)

_VERDICT_LINE = re.compile(r"^\W*verdict\W*[:=]\W*([a-z]+)\W*$")
_GRADE_LINE = re.compile(r"^\W*score\W*[:=]\W*([1-5])(?:\s*/\s*5)?\W*$")
_REFUSAL = re.compile(r"\b(i can(?:no|')t|i am unable|i'm unable|i won't|as an ai|sorry)\b")
_MAX_LINE = 200


_TAIL = 10_000


def _lines(text: str) -> list[str]:
    """The last non-empty lines of ``text`` (its last 10,000 characters), lower-cased, stripped.

    Only the tail is read, since the verdict is the reply's last line; a line cut by that
    tail is dropped, so a cut never fabricates a verdict line.
    """
    lines = text[-_TAIL:].splitlines()
    if len(text) > _TAIL and lines:
        lines = lines[1:]
    return [s for s in (line.strip().lower() for line in lines) if s][-50:]


def _unparsed(text: str, expected: str) -> str:
    """The failure reason for a reply without a verdict: a refusal or an unparseable reply."""
    if _REFUSAL.search(text[:2000].lower()):
        return f"refusal: the judge declined ({_excerpt(text)})"
    return f"unparseable: expected {expected}, got {_excerpt(text)}"


def _excerpt(text: str, width: int = 60) -> str:
    """``text`` on one line, quoted and shortened."""
    flat = " ".join(text[: width * 4].split())
    return repr(flat if len(flat) <= width else flat[: width - 3] + "...")


def parse_verdict(text: str, labels: Mapping[str, float]) -> tuple[float | None, str | None]:
    """The value of the last ``Verdict: LABEL`` line (or a bare label reply) and no error.

    ``labels`` maps lower-case labels to values. Returns ``(None, reason)`` when there is no
    such line (``reason`` starts with ``unparseable`` or ``refusal``). Linear in the text.
    """
    for line in reversed(_lines(text)):
        if len(line) > _MAX_LINE:
            continue
        match = _VERDICT_LINE.match(line)
        word = match.group(1) if match else line.strip(" .!*'\"`")
        if word in labels:
            return labels[word], None
    options = " / ".join(f"'Verdict: {label.upper()}'" for label in labels)
    return None, _unparsed(text, options)


def parse_grade(text: str) -> tuple[float | None, str | None]:
    """The last ``Score: N`` (1-5) line mapped to ``(N - 1) / 4``, or ``(None, reason)``."""
    for line in reversed(_lines(text)):
        if len(line) > _MAX_LINE:
            continue
        match = _GRADE_LINE.match(line)
        if match:
            return (int(match.group(1)) - 1) / 4, None
    return None, _unparsed(text, "'Score: N' with N from 1 to 5")


_SUPPORT = {"supported": 1.0, "unsupported": 0.0}
_RELEVANCE = {"relevant": 1.0, "irrelevant": 0.0}


@dataclass
class _Request:
    """One judge call: which episode and metric it serves and how to read its reply."""

    episode: int
    metric: str
    conversation: list[Message]
    kind: str  # "support", "grade" or "relevance"


class RAGJudge:
    """Scores episodes' faithfulness, answer relevance and context relevance with a judge LLM.

    Args:
        llm: the judge backend.
        sampling: its sampling parameters (default greedy, 64 new tokens; ``n`` must be 1).
        batch_size: conversations per ``generate`` call.
        max_documents: at most this many retrieved documents per episode are shown and
            judged for context relevance (the first retrieved).
        max_doc_chars: each document's text is cut to this many characters.
    """

    def __init__(
        self,
        llm: LLM,
        *,
        sampling: SamplingParams | None = None,
        batch_size: int = 64,
        max_documents: int = 10,
        max_doc_chars: int = 1500,
    ) -> None:
        if not callable(getattr(llm, "generate", None)):
            raise TypeError(f"llm must have a generate method, got {type(llm).__name__}")
        self.llm = llm
        self.sampling = sampling or SamplingParams(temperature=0.0, max_tokens=64)
        if self.sampling.n != 1:
            raise ValueError(f"the judge samples one reply per request, got n={self.sampling.n}")
        for name, value in (
            ("batch_size", batch_size),
            ("max_documents", max_documents),
            ("max_doc_chars", max_doc_chars),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.batch_size = batch_size
        self.max_documents = max_documents
        self.max_doc_chars = max_doc_chars

    @property
    def name(self) -> str:
        """The judge backend's name."""
        return str(getattr(self.llm, "name", type(self.llm).__name__))

    def score(
        self,
        records: Iterable[EpisodeRecord | Mapping[str, Any]],
        documents: Mapping[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """Judge every record; one result per record, in order (see :func:`judge_episodes`).

        A record may be an :class:`EpisodeRecord` or its JSON mapping (validated; a malformed
        one raises :class:`~raggym_env.episode.SchemaError` before any request). ``documents``
        maps a document id to its text; a retrieved document without one is shown by its
        title alone.
        """
        episodes = [
            r if isinstance(r, EpisodeRecord) else EpisodeRecord.from_dict(r) for r in records
        ]
        texts = documents or {}
        results = [self._blank(r) for r in episodes]
        requests: list[_Request] = []
        relevance: list[list[float | None]] = [[] for _ in episodes]
        for i, record in enumerate(episodes):
            requests += self._requests(i, record, results[i], texts)
        replies = self._generate([r.conversation for r in requests])
        for request, (completion, error) in zip(requests, replies, strict=True):
            result = results[request.episode]
            tokens = result["tokens"]
            if completion is not None:
                tokens["prompt"] += completion.prompt_tokens
                tokens["completion"] += completion.completion_tokens
            value, reason = (None, error) if error else self._read(request, completion)
            if request.metric == "context_relevance":
                relevance[request.episode].append(value)
                if reason and "context_relevance" not in result["failures"]:
                    result["failures"]["context_relevance"] = reason
                continue
            result[request.metric] = value
            if reason:
                result["failures"][request.metric] = reason
        for i, verdicts in enumerate(relevance):
            if verdicts and "context_relevance" not in results[i]["failures"]:
                results[i]["context_relevance"] = sum(v or 0.0 for v in verdicts) / len(verdicts)
        return results

    def _blank(self, record: EpisodeRecord) -> dict[str, Any]:
        """A record's result before judging: every metric missing."""
        return {
            "example_id": record.example_id,
            **dict.fromkeys(JUDGE_METRICS),
            "failures": {},
            "skipped": {},
            "tokens": {"prompt": 0, "completion": 0},
        }

    def _documents(self, record: EpisodeRecord, texts: Mapping[str, str]) -> list[str]:
        """The episode's distinct retrieved documents as ``title: text``, first retrieved first."""
        seen: dict[str, str] = {}
        for step in record.steps:
            for doc in step.retrieved:
                if doc.id not in seen and len(seen) < self.max_documents:
                    text = str(texts.get(doc.id, ""))[: self.max_doc_chars]
                    seen[doc.id] = f"{doc.title}: {text}" if text else doc.title or doc.id
        return list(seen.values())

    def _requests(
        self, i: int, record: EpisodeRecord, result: dict[str, Any], texts: Mapping[str, str]
    ) -> list[_Request]:
        """The judge calls one record needs; metrics that need none are set or skipped here."""
        skipped: dict[str, str] = result["skipped"]
        if record.error is not None:
            for metric in JUDGE_METRICS:
                skipped[metric] = "the episode failed"
            return []
        docs = self._documents(record, texts)
        question = record.question
        answer = (record.final_answer or "").strip()
        out: list[_Request] = []

        def ask(metric: str, kind: str, prompt: str) -> None:
            conversation: list[Message] = [
                {"role": "system", "content": _SYSTEM},
                {"role": "user", "content": prompt},
            ]
            out.append(_Request(i, metric, conversation, kind))

        if not answer:
            skipped["faithfulness"] = skipped["answer_relevance"] = "no answer"
        else:
            if docs:
                listing = "\n\n".join(f"[{n}] {d}" for n, d in enumerate(docs, start=1))
                ask(
                    "faithfulness",
                    "support",
                    _FAITHFUL.format(documents=listing, question=question, answer=answer),
                )
            else:
                result["faithfulness"] = 0.0
            ask(
                "answer_relevance",
                "grade",
                _RELEVANT_ANSWER.format(question=question, answer=answer),
            )
        if not docs:
            skipped["context_relevance"] = "nothing retrieved"
        for doc in docs:
            ask(
                "context_relevance",
                "relevance",
                _RELEVANT_DOC.format(question=question, document=doc),
            )
        return out

    def _generate(
        self, conversations: Sequence[list[Message]]
    ) -> list[tuple[Completion | None, str | None]]:
        """Every conversation's completion or failure reason, ``batch_size`` at a time."""
        out: list[tuple[Completion | None, str | None]] = []
        for start in range(0, len(conversations), self.batch_size):
            batch = conversations[start : start + self.batch_size]
            try:
                completions = list(self.llm.generate(batch, self.sampling))
                if len(completions) != len(batch):
                    raise ValueError(
                        f"the backend returned {len(completions)} completions for "
                        f"{len(batch)} conversations"
                    )
            except Exception as exc:  # noqa: BLE001 - a judge failure is data, not a crash
                reason = f"llm_error: {type(exc).__name__}: {exc}"
                out += [(None, reason)] * len(batch)
                continue
            for completion in completions:
                if not completion.ok:
                    error = completion.error or "the backend returned no text"
                    out.append((completion, f"llm_error: {error}"))
                else:
                    out.append((completion, None))
        return out

    @staticmethod
    def _read(request: _Request, completion: Completion | None) -> tuple[float | None, str | None]:
        """Parse one reply according to its request kind."""
        text = completion.texts[0] if completion is not None and completion.texts else ""
        if request.kind == "grade":
            return parse_grade(text)
        return parse_verdict(text, _SUPPORT if request.kind == "support" else _RELEVANCE)


def judge_episodes(
    records: Iterable[EpisodeRecord | Mapping[str, Any]],
    judge: RAGJudge,
    documents: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Per-episode judge metrics, in order: one dict per record.

    Each dict holds ``example_id``, ``faithfulness``, ``answer_relevance`` and
    ``context_relevance`` (a float in [0, 1] or ``None``), ``failures`` (metric -> reason
    for judge failures: ``llm_error: ...``, ``unparseable: ...``, ``refusal: ...``),
    ``skipped`` (metric -> why it does not apply) and the judge's ``tokens``.
    """
    return judge.score(records, documents)


def failure_counts(results: Iterable[Mapping[str, Any]]) -> Counter[str]:
    """Judge failures counted by kind (``llm_error``, ``unparseable``, ``refusal``) and total."""
    counts: Counter[str] = Counter()
    for result in results:
        for reason in (result.get("failures") or {}).values():
            counts[str(reason).split(":", 1)[0]] += 1
            counts["total"] += 1
    return counts
