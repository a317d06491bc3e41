"""Environment actions and the text grammar that turns a policy's output into one.

An action is either :class:`Search` (retrieve documents for a query) or :class:`Answer`
(end the episode with a prediction). Code passes these objects; text policies pass a
string that :func:`parse_action` reads with this grammar (case-insensitive, surrounding
whitespace ignored, the whole string must be one action)::

    Search: <query>          Answer: <text>
    Search[<query>]          Answer[<text>]        Finish[<text>]   (ReAct style)
    Search(<query>)          Answer(<text>)
    {"search": "<query>"}    {"answer": "<text>"}
    {"action": "search", "query": "<query>"}   {"action": "answer", "answer": "<text>"}

``Finish`` is a synonym of ``Answer``. Keywords and JSON keys are matched in ASCII only
(a long s or a dotted capital I is not a letter of a keyword). An empty query or answer,
or text that matches no form (including JSON nested too deeply or holding a number too
long to read), raises :class:`ActionParseError`; the environment records that in ``info``
and charges a step rather than crashing the rollout. Every pattern runs in linear time.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, TypeAlias

__all__ = ["Action", "ActionParseError", "Answer", "Search", "action_to_dict", "parse_action"]


@dataclass(frozen=True)
class Search:
    """Retrieve documents for ``query`` and append them to the history."""

    query: str

    def __post_init__(self) -> None:
        if not isinstance(self.query, str):
            raise TypeError(f"Search.query must be a str, got {type(self.query).__name__}")
        if not self.query.strip():
            raise ValueError("Search.query is empty; expected a non-blank search query")

    def to_text(self) -> str:
        """The canonical text form, which :func:`parse_action` reads back."""
        return f"Search: {self.query}"


@dataclass(frozen=True)
class Answer:
    """End the episode with ``text`` as the prediction."""

    text: str

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise TypeError(f"Answer.text must be a str, got {type(self.text).__name__}")
        if not self.text.strip():
            raise ValueError("Answer.text is empty; expected a non-blank answer")

    def to_text(self) -> str:
        """The canonical text form, which :func:`parse_action` reads back."""
        return f"Answer: {self.text}"


Action: TypeAlias = Search | Answer


class ActionParseError(ValueError):
    """Text that is not an action under the documented grammar."""


_KEYWORDS: dict[str, type[Search] | type[Answer]] = {
    "search": Search,
    "answer": Answer,
    "finish": Answer,
}
# ASCII: no Unicode case folding, so only the ASCII keywords match (and _KEYWORDS finds them).
_FLAGS = re.IGNORECASE | re.DOTALL | re.ASCII
_COLON = re.compile(r"(search|answer|finish)\s*:(.*)", _FLAGS)
_BRACKET = re.compile(r"(search|answer|finish)\s*(?:\[(.*)\]|\((.*)\))", _FLAGS)


def _ascii_lower(text: str) -> str:
    """``text`` lower-cased when it is ASCII; other text is never a keyword, so kept as is."""
    return text.lower() if text.isascii() else text


def _excerpt(value: object, limit: int = 120) -> str:
    """A bounded, printable account of ``value`` for an error message."""
    if not isinstance(value, str):
        return f"(a JSON {type(value).__name__})"
    shown = repr(value[:limit])
    return shown if len(value) <= limit else f"{shown} (+{len(value) - limit} chars)"


def _build(keyword: str, content: str, text: str) -> Action:
    content = content.strip()
    if not content:
        raise ActionParseError(f"{keyword.capitalize()} has empty content in {_excerpt(text)}")
    return _KEYWORDS[_ascii_lower(keyword)](content)


def _from_json(obj: Any, text: str) -> Action:
    if not isinstance(obj, dict):
        raise ActionParseError(
            f"expected a JSON object with a search or answer, got {_excerpt(text)}"
        )
    keys = {_ascii_lower(k): v for k, v in obj.items() if isinstance(k, str)}
    if "action" in keys:
        kind = _ascii_lower(keys["action"]) if isinstance(keys["action"], str) else ""
        if kind not in _KEYWORDS:
            raise ActionParseError(
                f"unknown action {_excerpt(keys['action'])}; expected 'search' or 'answer'"
            )
        value = keys.get("query") if kind == "search" else keys.get("answer", keys.get("text"))
    else:
        found = [k for k in _KEYWORDS if k in keys]
        if len(found) != 1:
            raise ActionParseError(
                f"expected exactly one of 'search' or 'answer' in the JSON object {_excerpt(text)}"
            )
        kind, value = found[0], keys[found[0]]
    if not isinstance(value, str):
        raise ActionParseError(f"the {kind} in {_excerpt(text)} must be a string")
    return _build(kind, value, text)


def parse_action(text: str) -> Action:
    """Parse one action from text under the module's grammar.

    Raises:
        TypeError: ``text`` is not a string.
        ActionParseError: the text is not exactly one well-formed action.
    """
    if not isinstance(text, str):
        raise TypeError(f"parse_action expects a str, got {type(text).__name__}")
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            obj = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise ActionParseError(f"invalid JSON action {_excerpt(text)}: {exc.msg}") from None
        except (ValueError, RecursionError) as exc:  # a number too long, nesting too deep
            reason = "nested too deeply" if isinstance(exc, RecursionError) else "a number too long"
            raise ActionParseError(f"unreadable JSON action {_excerpt(text)}: {reason}") from None
        return _from_json(obj, text)
    match = _BRACKET.fullmatch(stripped)
    if match:
        content = match.group(2) if match.group(2) is not None else match.group(3)
        return _build(match.group(1), content, text)
    match = _COLON.fullmatch(stripped)
    if match:
        return _build(match.group(1), match.group(2), text)
    raise ActionParseError(
        f"could not parse an action from {_excerpt(text)}; expected 'Search: <query>' or "
        "'Answer: <text>' (or Search[...], Answer[...], Finish[...], JSON)"
    )


def action_to_dict(action: Action | None) -> dict[str, str]:
    """JSON-ready form used in ``info`` and episode records."""
    if isinstance(action, Search):
        return {"type": "search", "text": action.query}
    if isinstance(action, Answer):
        return {"type": "answer", "text": action.text}
    return {"type": "invalid", "text": ""}
