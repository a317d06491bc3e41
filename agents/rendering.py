"""Observation -> prompt text: the pure rendering helpers every agent design shares.

Each function turns part of an environment observation (or an agent's memory) into the
text a prompt shows, so that all designs present questions, options, documents and
condensed search results the same way. Nothing here calls a model or mutates its input.

Formats::

    Question: <question>            Options:            [1] Title: <title>
                                    A. <option text>    <text, capped at doc_words words>
                                    B. <option text>

    Query 1: <query>
    Answer (from documents): <condensed answer>

Document text is capped at ``doc_words`` whitespace-separated words (agents take a
``doc_words`` constructor argument, 150 by default) because retrieved passages can be long
and a trajectory shows many of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "DEFAULT_DOC_WORDS",
    "answer_format",
    "check_doc_words",
    "documents_excerpt",
    "excerpt",
    "options_map",
    "pair_steps",
    "render_documents",
    "render_options",
    "render_qa_pairs",
    "render_question",
    "render_search_history",
    "render_trajectory",
    "status_note",
    "truncate_words",
]

DEFAULT_DOC_WORDS = 150
"""Words of each document's text shown in a prompt unless an agent is told otherwise."""

_ERROR_CHARS = 200


def check_doc_words(doc_words: int) -> int:
    """Validate a ``doc_words`` argument so a bad cap fails at construction, not mid-run."""
    if isinstance(doc_words, bool) or not isinstance(doc_words, int) or doc_words < 1:
        raise ValueError(f"doc_words must be a positive int, got {doc_words!r}")
    return doc_words


def excerpt(text: str, limit: int = 120) -> str:
    """A short ``repr`` of ``text`` for error messages, so huge outputs stay readable."""
    if len(text) <= limit:
        return repr(text)
    return repr(text[:limit]) + f"... ({len(text)} chars)"


def truncate_words(text: str, max_words: int) -> str:
    """Keep the first ``max_words`` words of ``text`` (whitespace collapsed), marking a cut."""
    words = text.split()
    if len(words) <= max_words:
        return " ".join(words)
    return " ".join(words[:max_words]) + " ..."


def options_map(options: Sequence[Mapping[str, object]]) -> dict[str, str]:
    """The observation's option tuple as ``{letter: text}`` (empty for open questions)."""
    return {str(o["letter"]): str(o["text"]) for o in options}


def render_options(options: Sequence[Mapping[str, object]]) -> str:
    """One ``"A. text"`` line per option."""
    return "\n".join(f"{o['letter']}. {o['text']}" for o in options)


def render_question(observation: Mapping[str, Any]) -> str:
    """The question, followed by its options when it is multiple choice."""
    text = f"Question: {str(observation['question']).strip()}"
    options = observation.get("options") or ()
    if options:
        text += "\nOptions:\n" + render_options(options)
    return text


def answer_format(observation: Mapping[str, Any]) -> str:
    """What the final answer must look like: a short phrase, or an option letter."""
    options = observation.get("options") or ()
    if options:
        letters = [str(o["letter"]) for o in options]
        listed = ", ".join(letters[:-1]) + f" or {letters[-1]}" if len(letters) > 1 else letters[0]
        return f"only the letter of the correct option ({listed})"
    return (
        "a short answer only (an entity, a name, a date, a number, or yes/no), with no explanation"
    )


def render_documents(
    documents: Sequence[Mapping[str, object]], doc_words: int = DEFAULT_DOC_WORDS, start: int = 1
) -> str:
    """Numbered documents with their titles, each text capped at ``doc_words`` words."""
    if not documents:
        return "(no documents were found)"
    blocks = []
    for number, doc in enumerate(documents, start):
        title = " ".join(str(doc.get("title", "")).split()) or "(untitled)"
        blocks.append(
            f"[{number}] Title: {title}\n{truncate_words(str(doc.get('text', '')), doc_words)}"
        )
    return "\n".join(blocks)


def render_search_history(
    history: Sequence[Mapping[str, Any]], doc_words: int = DEFAULT_DOC_WORDS
) -> str:
    """Every search so far with its documents, oldest first."""
    if not history:
        return "(no searches yet)"
    blocks = []
    for number, entry in enumerate(history, 1):
        documents = render_documents(entry["documents"], doc_words)
        blocks.append(f"Search {number}: {entry['query']}\n{documents}")
    return "\n\n".join(blocks)


def render_qa_pairs(pairs: Sequence[tuple[str, str]]) -> str:
    """Search queries with the answers condensed from their documents, oldest first."""
    if not pairs:
        return "(no searches yet)"
    return "\n\n".join(
        f"Query {number}: {query}\nAnswer (from documents): {answer}"
        for number, (query, answer) in enumerate(pairs, 1)
    )


def status_note(budget: str, notes: Sequence[Mapping[str, Any]]) -> str:
    """The budget sentence, plus a warning when the previous output could not be read."""
    last = notes[-1] if notes else {}
    error = last.get("parse_error")
    if not error:
        return budget
    error_text = str(error)
    if len(error_text) > _ERROR_CHARS:
        error_text = error_text[:_ERROR_CHARS] + "..."
    return (
        f"{budget}\nYour previous reply could not be read ({error_text}). "
        "Follow the output format exactly."
    )


def pair_steps(
    notes: Sequence[Mapping[str, Any]], history: Sequence[Mapping[str, Any]]
) -> list[tuple[Mapping[str, Any], Mapping[str, Any] | None]]:
    """Match each step note to the history entry its search produced (``None`` if none).

    The history holds only successful searches, in order, while notes hold every step
    (searches, unreadable outputs, searches that failed at retrieval). A note whose
    ``query`` equals the next unmatched history query takes that entry; any other note
    gets ``None``. Notes of scripted searches (``{"scripted": "search"}``) take the next
    entry whatever its query.
    """
    out: list[tuple[Mapping[str, Any], Mapping[str, Any] | None]] = []
    cursor = 0
    for note in notes:
        entry: Mapping[str, Any] | None = None
        scripted = note.get("scripted") == "search"
        searched = note.get("action") == "search" and note.get("query") is not None
        if cursor < len(history) and (
            scripted or (searched and history[cursor]["query"] == note.get("query"))
        ):
            entry = history[cursor]
            cursor += 1
        out.append((note, entry))
    return out


def documents_excerpt(documents: Sequence[Mapping[str, object]], max_chars: int = 300) -> str:
    """The opening ``max_chars`` characters of the top documents (``"Title: text | ..."``).

    Used in place of a condensed answer when the condensation call fails.
    """
    if not documents:
        return "(no documents were found)"
    joined = " | ".join(
        " ".join(f"{d.get('title', '')}: {d.get('text', '')}".split()) for d in documents
    )
    if len(joined) <= max_chars:
        return joined
    cut = joined[:max_chars]
    space = cut.rfind(" ")
    return (cut[:space] if space > max_chars // 2 else cut) + " ..."


def render_trajectory(
    notes: Sequence[Mapping[str, Any]],
    history: Sequence[Mapping[str, Any]],
    doc_words: int = DEFAULT_DOC_WORDS,
) -> str:
    """A ReAct trajectory: each earlier step's thought, action and observation.

    The thought is the note's ``thought`` (or ``reasoning``); a search's observation is
    its documents (matched with :func:`pair_steps`); a step whose output could not be read
    shows the parse error as its observation.
    """
    if not notes:
        return "(none yet)"
    blocks = []
    for number, (note, entry) in enumerate(pair_steps(notes, history), 1):
        thought = str(note.get("thought") or note.get("reasoning") or "").strip()
        lines = [f"Thought {number}: {thought or '(none given)'}"]
        query = note.get("query")
        if note.get("scripted") == "search" and entry is not None:
            query = entry["query"]
        if note.get("parse_error"):
            lines.append(f"Action {number}: (unreadable)")
            error = str(note["parse_error"])[:_ERROR_CHARS]
            lines.append(f"Observation {number}: Your reply could not be read: {error}")
        elif query is not None:
            lines.append(f"Action {number}: Search[{query}]")
            if entry is None:
                lines.append(f"Observation {number}: (the search returned no documents)")
            else:
                documents = render_documents(entry["documents"], doc_words)
                lines.append(f"Observation {number}:\n{documents}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
