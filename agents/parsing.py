"""Pure parsers from model text to actions, shared by every agent design.

Nothing here calls ``eval``: text is read with regular expressions and ``json.loads``.
Every ``parse_*`` function returns a :class:`~raggym.agents.base.Parsed` and never raises on any
text: when no action can be read, ``Parsed.action`` is ``None`` and ``Parsed.error`` says
what was expected and what came instead (truncated).

Labelled lines
    A label opens a line: ``Label: value``, case-insensitive, optionally numbered
    (``Thought 2:``), bolded (``**Answer:**``, ``**Answer**:``) or bulleted (``- Query:``);
    spaces, ``_`` and ``-`` between a label's words are interchangeable
    (``Predicted_answer:``). A value runs over the following lines until the next label
    line, so reasoning may span paragraphs. Action values (queries, answers) use the first
    non-empty line of their value; reasoning and claims keep every line.

Which occurrence wins
    * Final answers (:func:`parse_answer`, Direct/CoT/RAG): the **last** ``Answer:`` line,
      because reasoning may float tentative answers before the final one.
    * Actions (:func:`parse_react`, :func:`parse_search_or_answer`) and Re2Search fields
      (:func:`parse_re2search`): the **first** action line or label, because whatever a
      model writes after its first action is a made-up continuation of the trajectory (it
      has not seen that search's results).

Multiple choice
    When ``options`` (``{letter: text}``) is given, an answer must name an option: the
    value is read with :func:`raggym_env.metrics.extract_choice` (``"B"``, ``"(B)"``,
    ``"B. text"``, the option's text, ...) and the action is ``Answer("B")``.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from raggym.agents.base import Parsed
from raggym.agents.rendering import excerpt, truncate_words
from raggym_env import Answer, Search
from raggym_env.actions import ActionParseError, parse_action
from raggym_env.caches import register_lru
from raggym_env.metrics import extract_choice

__all__ = [
    "Labelled",
    "Re2SearchOutput",
    "clean_condensed",
    "fallback_answer_text",
    "find_labels",
    "first_line",
    "is_none",
    "json_object",
    "labelled_fields",
    "parse_answer",
    "parse_choice",
    "parse_re2search",
    "parse_react",
    "parse_search_or_answer",
    "read_action",
    "read_re2search",
]

_ANSWER_LABELS = ("answer", "final answer")
_ACTION_LABELS = ("action", "search", "search query", "answer", "final answer", "finish")
_RE2_LABELS = {
    "reasoning": "reasoning",
    "predicted answer": "predicted_answer",
    "unverified claim": "claim",
    "claim": "claim",
    "query": "query",
    "search query": "query",
}
_RE2_JSON_KEYS = {
    "reasoning": "reasoning",
    "predicted_answer": "predicted_answer",
    "prediction": "predicted_answer",
    "answer": "predicted_answer",
    "unverified_claim": "claim",
    "claim": "claim",
    "query": "query",
    "search_query": "query",
    "search": "query",
}
_ACTION_HEAD = re.compile(r"(search|finish|answer)[ \t]*([\[(:])", re.IGNORECASE | re.ASCII)
_NONE_WORDS = frozenset({"none", "n/a", "na", "null", "nil", "nothing"})
_NONE_PREFIX = re.compile(r"none\s*[(\-,.;:]", re.IGNORECASE | re.ASCII)
_FALLBACK_CHARS = 200


def _normalise_label(label: str) -> str:
    return re.sub(r"[^a-z]", "", label.lower())


@register_lru("agents.label_patterns")
@functools.lru_cache(maxsize=128)
def _label_pattern(labels: tuple[str, ...]) -> re.Pattern[str]:
    """A line pattern matching any of ``labels`` (longest first, so 'search query' wins)."""
    alternatives = "|".join(
        r"[ \t_-]*".join(re.escape(word) for word in label.split())
        for label in sorted(labels, key=len, reverse=True)
    )
    return re.compile(
        r"[ \t]*(?:[-*>#]+[ \t]+)?(\*\*|__)?"
        rf"({alternatives})(?:[ \t]*\d+)?(?:\1)?[ \t]*:(?:\1)?(.*)",
        re.IGNORECASE | re.ASCII,  # ASCII: no Unicode case folding
    )


@dataclass(frozen=True)
class Labelled:
    """One labelled value found in a text.

    Attributes:
        label: the canonical label it matched (as given to :func:`find_labels`).
        value: its text, from after the colon to the next label line, stripped.
        line: the 0-based line where the label stands.
    """

    label: str
    value: str
    line: int


def _lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def find_labels(text: str, labels: Iterable[str]) -> list[Labelled]:
    """Every labelled value in ``text`` for the given labels, in order of appearance."""
    wanted = tuple(dict.fromkeys(labels))
    canonical = {_normalise_label(label): label for label in wanted}
    pattern = _label_pattern(wanted)
    found: list[Labelled] = []
    current: tuple[str, int, list[str]] | None = None
    for number, line in enumerate(_lines(text)):
        match = pattern.match(line)
        if match:
            if current is not None:
                found.append(Labelled(current[0], "\n".join(current[2]).strip(), current[1]))
            current = (canonical[_normalise_label(match.group(2))], number, [match.group(3)])
        elif current is not None:
            current[2].append(line)
    if current is not None:
        found.append(Labelled(current[0], "\n".join(current[2]).strip(), current[1]))
    return found


def labelled_fields(text: str, labels: Iterable[str], *, last: bool = False) -> dict[str, str]:
    """``{label: value}`` for each label present: the first occurrence, or the last one."""
    out: dict[str, str] = {}
    for item in find_labels(text, labels):
        if last or item.label not in out:
            out[item.label] = item.value
    return out


def first_line(value: str) -> str:
    """The first non-blank line of ``value``, stripped ("" when there is none)."""
    for line in _lines(value):
        if line.strip():
            return line.strip()
    return ""


def is_none(value: str) -> bool:
    """Whether a claim or query says there is nothing left to check ("none", "N/A", ...)."""
    stripped = value.strip().strip("\"'`*").strip()
    lowered = stripped.rstrip(".!").lower()
    return lowered in _NONE_WORDS or not lowered or bool(_NONE_PREFIX.match(stripped))


def json_object(text: str) -> dict[str, Any] | None:
    """The JSON object between the first ``{`` and the last ``}`` of ``text``, if it is one."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        obj = json.loads(text[start : end + 1])
    except (ValueError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


def _json_str(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (str, int, float)):
        return str(value).strip()
    return None


def _keyed(obj: Mapping[str, Any], keys: Mapping[str, str]) -> dict[str, str]:
    """Values of ``obj`` whose normalised key is in ``keys``, renamed (first one wins)."""
    out: dict[str, str] = {}
    for key, value in obj.items():
        if not isinstance(key, str):
            continue
        name = keys.get(re.sub(r"[\s\-]+", "_", key.strip().lower()))
        text = _json_str(value)
        if name is not None and text is not None and name not in out:
            out[name] = text
    return out


def parse_choice(text: str, options: Mapping[str, str]) -> str | None:
    """The option letter ``text`` names, or ``None`` when it names none or several."""
    return extract_choice(text, options)


def _answer_action(
    answer: str, options: Mapping[str, str] | None, fields: dict[str, str], source: str
) -> Parsed:
    """``Answer(answer)``, reading an option letter first for multiple choice."""
    if not answer.strip():
        return Parsed(None, f"{source} is empty; expected a non-blank answer", fields)
    if options:
        letter = parse_choice(answer, options)
        if letter is None:
            letters = ", ".join(options)
            return Parsed(
                None,
                f"{source} names no single option; expected one of the letters {letters}, "
                f"got {excerpt(answer)}",
                {**fields, "answer_raw": answer},
            )
        if letter != answer.strip():
            fields = {**fields, "answer_raw": answer}
        answer = letter
    return Parsed(Answer(answer.strip()), None, {**fields, "answer": answer.strip()})


def parse_answer(text: str, options: Mapping[str, str] | None = None) -> Parsed:
    """Read a final answer: the last ``Answer:`` (or ``Final answer:``) line.

    Without such a line, a JSON object with an ``answer`` key is accepted; for multiple
    choice, so is a text that :func:`~raggym_env.metrics.extract_choice` reads as one
    letter as a whole ("The correct option is C."). ``fields``: ``reasoning`` (the text
    before the answer line, when any) and ``answer``.
    """
    lines = _lines(text)
    answers = [a for a in find_labels(text, _ANSWER_LABELS) if first_line(a.value)]
    if answers:
        chosen = answers[-1]
        reasoning = "\n".join(lines[: chosen.line]).strip()
        reasoning = re.sub(r"^\W*reasoning\W*:\s*", "", reasoning, flags=re.IGNORECASE)
        fields = {"reasoning": reasoning} if reasoning else {}
        return _answer_action(first_line(chosen.value), options, fields, "the Answer line")
    obj = json_object(text)
    if obj is not None:
        keyed = _keyed(obj, {"answer": "answer", "final_answer": "answer", "reasoning": "r"})
        if "answer" in keyed:
            fields = {"reasoning": keyed["r"]} if keyed.get("r") else {}
            return _answer_action(keyed["answer"], options, fields, "the JSON answer")
    if options:
        letter = parse_choice(text, options)
        if letter is not None:
            return Parsed(Answer(letter), None, {"reasoning": text.strip(), "answer": letter})
    wanted = "an option letter" if options else "the answer"
    return Parsed(None, f"expected a final line 'Answer: <{wanted}>', got {excerpt(text.strip())}")


def read_action(value: str) -> tuple[str, str] | None:
    """Read ``Search[q]``, ``Finish[a]``, ``Answer[a]`` (or ``(...)``, or ``Search: q``).

    Returns ``("search", query)`` or ``("answer", answer)``, or ``None`` when ``value``
    opens with no action or its content is empty. A bracket closes at the last matching
    bracket of the first line (so titles with brackets survive), or further down when the
    first line has none (its lines are then joined with spaces); an unclosed bracket (a
    stop string cut it) runs to the line's end.
    """
    stripped = value.strip()
    match = _ACTION_HEAD.match(stripped)
    if not match:
        return None
    kind = "search" if match.group(1).lower() == "search" else "answer"
    opener = match.group(2)
    rest = stripped[match.end() :]
    if opener == ":":
        content = first_line(rest)
    else:
        closer = "]" if opener == "[" else ")"
        head = rest.split("\n", 1)[0]
        end = head.rfind(closer)
        if end < 0:
            end = rest.rfind(closer)
        content = rest[:end] if end >= 0 else head
        if "\n" in content:  # a bracket spanning lines: one line, whitespace collapsed
            content = " ".join(content.split())
        content = content.strip()
    return (kind, content) if content else None


def _parse_step(text: str, options: Mapping[str, str] | None, thought_label: str) -> Parsed:
    """Reasoning then one action: the first action in the text decides (see module doc)."""
    items = find_labels(text, (thought_label, *_ACTION_LABELS))
    thoughts = [i for i in items if i.label == thought_label]
    fields: dict[str, str] = {}
    if thoughts:
        fields[thought_label] = thoughts[0].value
    action: tuple[str, str] | None = None
    problem = ""
    for item in items:
        if item.label == thought_label:
            continue
        if item.label == "action":
            action = read_action(item.value)
            if action is None:
                problem = f"the Action line {excerpt(first_line(item.value))} is not one"
        else:
            kind = "search" if item.label.startswith("search") else "answer"
            content = first_line(item.value)
            action = (kind, content) if content else None
            if action is None:
                problem = f"the {item.label.capitalize()} line is empty"
        break
    if action is None and not problem:
        lines = _lines(text)
        for number, line in enumerate(lines):
            action = read_action(line)
            if action is not None:
                if thoughts and thoughts[0].line < number:  # the thought ends at the action
                    head = _label_pattern((thought_label,)).match(lines[thoughts[0].line])
                    kept = [head.group(3) if head else "", *lines[thoughts[0].line + 1 : number]]
                    fields[thought_label] = "\n".join(kept).strip()
                break
    if action is None and not problem and json_object(text) is not None:
        start, end = text.find("{"), text.rfind("}")
        try:
            parsed = parse_action(text[start : end + 1])
        except (ActionParseError, RecursionError):
            parsed = None
        if isinstance(parsed, Search):
            action = ("search", parsed.query.strip())
        elif isinstance(parsed, Answer):
            action = ("answer", parsed.text.strip())
    if action is None:
        lead = f"{problem}; " if problem else ""
        return Parsed(
            None,
            f"{lead}expected 'Action: Search[<query>]' or 'Action: Finish[<answer>]' (or "
            f"'Search: <query>' / 'Answer: <answer>'), got {excerpt(text.strip())}",
            fields,
        )
    kind, content = action
    if kind == "search":
        return Parsed(Search(content), None, {**fields, "action": "search", "query": content})
    return _answer_action(content, options, {**fields, "action": "answer"}, "the answer")


def parse_react(text: str, options: Mapping[str, str] | None = None) -> Parsed:
    """Read a ReAct step: ``Thought: ...`` then ``Action: Search[q]`` or ``Finish[a]``.

    Also accepted: ``Search: q`` / ``Answer: a`` lines, a bare ``Search[q]`` line, and a
    JSON action (``{"search": q}``). ``fields``: ``thought``, ``action`` and ``query`` or
    ``answer``.
    """
    return _parse_step(text, options, "thought")


def parse_search_or_answer(text: str, options: Mapping[str, str] | None = None) -> Parsed:
    """Read a Search-o1 step: ``Reasoning: ...`` then ``Search: q`` or ``Answer: a``.

    The same action forms as :func:`parse_react` are accepted. ``fields``: ``reasoning``,
    ``action`` and ``query`` or ``answer``.
    """
    return _parse_step(text, options, "reasoning")


@dataclass(frozen=True)
class Re2SearchOutput:
    """The four parts of a Re2Search output ("" for a part that is missing).

    Attributes:
        reasoning: the reasoning toward an answer.
        predicted_answer: the answer that reasoning reaches.
        claim: the first claim in the reasoning the history does not yet verify.
        query: an atomic search query that would verify ``claim``.
    """

    reasoning: str = ""
    predicted_answer: str = ""
    claim: str = ""
    query: str = ""

    @property
    def found(self) -> bool:
        """Whether any part was found."""
        return bool(self.reasoning or self.predicted_answer or self.claim or self.query)


def read_re2search(text: str) -> Re2SearchOutput:
    """Read the labelled lines (first occurrence of each), or else a JSON object.

    Labels: ``Reasoning``, ``Predicted answer``, ``Unverified claim`` (or ``Claim``),
    ``Query`` (or ``Search query``). JSON keys: the same with underscores
    (``predicted_answer``, ``unverified_claim``, ``query``; ``answer`` and ``claim`` too).
    """
    values = labelled_fields(text, _RE2_LABELS)
    parts = {_RE2_LABELS[label]: value for label, value in reversed(values.items())}
    if not parts:
        obj = json_object(text)
        parts = _keyed(obj, _RE2_JSON_KEYS) if obj is not None else {}
    return Re2SearchOutput(
        reasoning=parts.get("reasoning", "").strip(),
        predicted_answer=first_line(parts.get("predicted_answer", "")),
        claim=parts.get("claim", "").strip(),
        query=first_line(parts.get("query", "")),
    )


def parse_re2search(text: str, options: Mapping[str, str] | None = None) -> Parsed:
    """Turn a Re2Search output into a search for its unverified claim, or an answer.

    It searches ``query`` unless the query is missing or "none" or the claim is "none"
    (every claim verified); then it answers the predicted answer. ``fields`` holds
    ``reasoning``, ``claim``, ``query`` and ``predicted_answer`` when present (for
    multiple choice the predicted answer is stored as its letter when one can be read), so
    a forced answer at the end of the budget can use the prediction.
    """
    out = read_re2search(text)
    if not out.found:
        return Parsed(
            None,
            "expected labelled lines 'Reasoning:', 'Predicted answer:', 'Unverified claim:' "
            f"and 'Query:' (or a JSON object with those keys), got {excerpt(text.strip())}",
        )
    fields: dict[str, str] = {}
    if out.reasoning:
        fields["reasoning"] = out.reasoning
    if out.claim:
        fields["claim"] = out.claim
    if out.query:
        fields["query"] = out.query
    predicted = out.predicted_answer
    if predicted and not is_none(predicted):
        letter = parse_choice(predicted, options) if options else None
        fields["predicted_answer"] = letter or predicted
    all_verified = bool(out.claim) and is_none(out.claim)
    if out.query and not is_none(out.query) and not all_verified:
        return Parsed(Search(out.query), None, {**fields, "action": "search"})
    if "predicted_answer" in fields:
        return _answer_action(predicted, options, {**fields, "action": "answer"}, "the answer")
    return Parsed(
        None,
        "expected 'Query: <search query>' for an unverified claim, or a 'Predicted answer:' "
        f"with 'Unverified claim: none', got {excerpt(text.strip())}",
        fields,
    )


def clean_condensed(text: str, max_words: int = 120) -> str:
    """A condensation reply as one line: its ``Answer:`` value if labelled, capped in words."""
    labelled = [a for a in find_labels(text, _ANSWER_LABELS) if a.value]
    body = labelled[-1].value if labelled else text
    return truncate_words(body, max_words)


def fallback_answer_text(text: str) -> str:
    """A best-effort answer from a text that gave none (used when the budget forces one).

    The last non-blank line that is not a search or action line, with any leading label
    (``Thought:``, ``Reasoning:``) removed, capped at 200 characters; "unknown" if none.
    """
    skip = ("search", "search query", "query", "action", "unverified claim", "claim")
    keep = ("thought", "reasoning", "answer", "final answer", "predicted answer")
    pattern = _label_pattern(tuple(dict.fromkeys((*skip, *keep))))
    for line in reversed(_lines(text)):
        if not line.strip():
            continue
        match = pattern.match(line)
        if match is None:
            candidate = line.strip()
        elif _normalise_label(match.group(2)) in {_normalise_label(s) for s in skip}:
            continue
        else:
            candidate = match.group(3).strip()
        if candidate and read_action(candidate) is None:
            return candidate[:_FALLBACK_CHARS]
    return "unknown"
