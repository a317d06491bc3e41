"""The Search-R1 text protocol: the environment as plain text in, plain text out.

RL frameworks that drive a model as a text generator (veRL, OpenRLHF, verifiers) need the
environment as a text environment: a prompt, then turns of model output answered by
environment text. This module speaks the tag protocol the Search-R1 models are trained on:

- the model may reason in ``<think> ... </think>`` (ignored for the action);
- ``<search> query </search>`` searches; the documents come back as
  ``<information>Doc 1(Title: ...) text ...</information>``;
- ``<answer> text </answer>`` answers and ends the episode.

:func:`parse_search_r1` reads one model turn, :func:`format_information` renders retrieved
documents, and :class:`SearchR1TextEnv` wraps a :class:`~raggym_env.env.RAGEnv` so that
``reset`` returns a prompt and ``step`` takes model text, keeping the whole ``transcript``
and the character spans of the environment's text in it (``information_spans``), which
trainers mask out of the loss.

Tags are case-sensitive (lowercase, as the protocol's models emit them): ``<SEARCH>`` is
not a tag. Parsing scans with ``str.find`` only, so it runs in linear time on any input.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, SupportsFloat, TypeAlias

from raggym_env.actions import Action, Answer, Search
from raggym_env.types import Document, ScoredDocument

if TYPE_CHECKING:
    import gymnasium as gym

__all__ = [
    "INFORMATION_CLOSE",
    "INFORMATION_OPEN",
    "ParsedTextAction",
    "SearchR1TextEnv",
    "format_information",
    "neutralise_tags",
    "parse_search_r1",
]

INFORMATION_OPEN = "<information>"
"""Opens the environment's block of retrieved documents (or feedback) in the transcript."""
INFORMATION_CLOSE = "</information>"
"""Closes the environment's block in the transcript."""

_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"
_ACTION_TAGS = ("search", "answer")
# Every protocol tag, in any letter case: text from documents or questions must not hold one.
_TAG = re.compile(r"</?(?:information|search|answer|think)>", re.IGNORECASE | re.ASCII)
_NO_DOCUMENTS = "No documents matched the search."


@dataclass(frozen=True)
class ParsedTextAction:
    """One model turn read under the protocol: an action, or why there is none.

    Attributes:
        action: the :class:`~raggym_env.actions.Search` or
            :class:`~raggym_env.actions.Answer` the turn asks for; ``None`` when invalid.
        error: why the turn holds no valid action (``None`` when valid).
        end: the index just past the closing tag that decided the action (0 when invalid);
            a framework that generates without stop strings can cut the turn there.
    """

    action: Action | None
    error: str | None = None
    end: int = 0

    @property
    def valid(self) -> bool:
        """Whether the turn holds a search or an answer."""
        return self.action is not None

    @property
    def kind(self) -> str:
        """``"search"``, ``"answer"`` or ``"invalid"``."""
        if isinstance(self.action, Search):
            return "search"
        if isinstance(self.action, Answer):
            return "answer"
        return "invalid"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as recorded in ``info["text_action"]``."""
        if isinstance(self.action, Search):
            return {"type": "search", "text": self.action.query, "error": None}
        if isinstance(self.action, Answer):
            return {"type": "answer", "text": self.action.text, "error": None}
        return {"type": "invalid", "text": "", "error": self.error}


def _invalid(reason: str) -> ParsedTextAction:
    return ParsedTextAction(action=None, error=reason)


def parse_search_r1(text: str) -> ParsedTextAction:
    """Read the action of one model turn; invalid text gives a reason, never an exception.

    The first complete ``<search>`` or ``<answer>`` block outside ``<think>`` blocks
    decides (generation stops at its closing tag under the protocol); anything after it is
    ignored, and tags inside a think block are not actions. Content is stripped of
    surrounding whitespace. A turn is invalid when it has no action tag, its first action
    tag (or a think block before it) is never closed, the content is empty, or the content
    holds another action tag (a nested block is ambiguous, so it is refused).

    Raises:
        TypeError: ``text`` is not a string (a caller's bug, not model output).
    """
    if not isinstance(text, str):
        raise TypeError(f"parse_search_r1 expects a str, got {type(text).__name__}")
    # Next index of each opener at or after ``pos``; a cached index is searched again only
    # once ``pos`` has passed it, so each opener's scans cover disjoint stretches: linear.
    openers = {"think": _THINK_OPEN, **{tag: f"<{tag}>" for tag in _ACTION_TAGS}}
    found = {name: text.find(opener) for name, opener in openers.items()}
    pos = 0
    while True:
        for name, opener in openers.items():
            if 0 <= found[name] < pos:
                found[name] = text.find(opener, pos)
        present = [(index, name) for name, index in found.items() if index >= 0]
        if not present:
            return _invalid("no <search> or <answer> block outside <think>")
        start, name = min(present)
        body = start + len(openers[name])
        if name == "think":
            close = text.find(_THINK_CLOSE, body)
            if close < 0:
                return _invalid("<think> is never closed, so no action follows it")
            pos = close + len(_THINK_CLOSE)
            continue
        closer = f"</{name}>"
        close = text.find(closer, body)
        if close < 0:
            return _invalid(f"<{name}> is never closed with {closer}")
        content = text[body:close]
        nested = [tag for tag in _ACTION_TAGS if f"<{tag}>" in content]
        if nested:
            return _invalid(f"<{nested[0]}> is nested inside <{name}>")
        content = content.strip()
        if not content:
            return _invalid(f"<{name}> is empty")
        action: Action = Search(content) if name == "search" else Answer(content)
        return ParsedTextAction(action=action, end=close + len(closer))


def neutralise_tags(text: str) -> str:
    """``text`` with every protocol tag's angle brackets written as ``&lt;``/``&gt;``.

    Applied to documents and questions before they enter the transcript, so that retrieved
    text cannot forge an ``<information>`` boundary or an action. Tags are matched in any
    letter case; other ``<`` and ``>`` are kept as they are.
    """
    return _TAG.sub(lambda m: f"&lt;{m.group(0)[1:-1]}&gt;", text)


DocumentLike: TypeAlias = Document | ScoredDocument | Mapping[str, Any]
"""A document to render: a :class:`Document`, a search result, or an observation's mapping."""


def _title_and_text(document: DocumentLike) -> tuple[str, str]:
    if isinstance(document, ScoredDocument):
        document = document.document
    if isinstance(document, Document):
        return document.title, document.text
    if isinstance(document, Mapping):
        return str(document.get("title", "")), str(document.get("text", ""))
    raise TypeError(
        f"expected a Document, ScoredDocument or title/text mapping, got {type(document).__name__}"
    )


def format_information(documents: Iterable[DocumentLike]) -> str:
    """Retrieved documents as one ``<information>`` block, one ``Doc i(Title: t) text`` a line.

    This is the layout Search-R1 models read results in. Titles and texts pass through
    :func:`neutralise_tags`, so the block always ends at its own closing tag; no documents
    give a block that says so.
    """
    lines = [
        f"Doc {i}(Title: {neutralise_tags(title)}) {neutralise_tags(text)}"
        for i, (title, text) in enumerate(map(_title_and_text, documents), 1)
    ]
    return f"{INFORMATION_OPEN}{chr(10).join(lines) or _NO_DOCUMENTS}{INFORMATION_CLOSE}"


DEFAULT_INSTRUCTIONS = (
    "You are answering a question with the help of a search engine over a document "
    "collection. Work in turns. You may reason first, inside <think> and </think>. To look "
    "something up, write a query between <search> and </search> and stop; the results will "
    "be shown to you between <information> and </information>. Search again whenever a "
    "result leaves a gap, with at most {max_steps} searches and answers in all. Once you "
    "know, give only the final answer, a few words at most, between <answer> and </answer>, "
    "for example <answer> Lisbon </answer>."
)
"""The prompt's instructions; ``{max_steps}`` is filled with the episode's action budget."""

_CHOICE_NOTE = " The question has lettered options: answer with the letter of the right one."


class SearchR1TextEnv:
    """A :class:`~raggym_env.env.RAGEnv` driven by text in the Search-R1 tag protocol.

    ``reset`` returns a prompt (instructions and the question); ``step`` takes one model
    turn, parses it with :func:`parse_search_r1`, and steps the environment with the
    search or answer it holds. A search returns its documents as an ``<information>``
    block; an answer returns ``""``; reward, ``terminated``, ``truncated`` and ``info`` are
    the environment's own. A turn without a valid action reaches the environment as text
    it cannot parse, so the environment's rules for invalid actions apply unchanged (a step
    is charged, the optional penalty given, the budget may run out); ``info["action_error"]``
    then holds the protocol's reason and the observation is an ``<information>`` block
    saying what went wrong. Every step's ``info["text_action"]`` is
    :meth:`ParsedTextAction.to_dict` of the turn.

    The observation text ``step`` returns is exactly what it appends to :attr:`transcript`
    after the model's turn (the block with a newline either side), so a rollout loop that
    keeps its own text by ``text += turn + observation`` holds the same transcript.

    This is a plain class rather than a ``gymnasium.Wrapper``: free text has no faithful
    gymnasium space (``spaces.Text`` needs a finite character set), and a Wrapper would
    advertise spaces its values do not belong to.

    Args:
        env: a :class:`~raggym_env.env.RAGEnv`, or a wrapper of one that leaves its
            observations as they are (they give the retrieved documents).
        instructions: the prompt's instructions instead of :data:`DEFAULT_INSTRUCTIONS`
            (``{max_steps}`` is filled in when present).
    """

    def __init__(self, env: gym.Env[Any, Any], *, instructions: str | None = None) -> None:
        from raggym_env.env import rag_env_of

        rag_env_of(env)  # TypeError unless a RAGEnv is inside
        self.env = env
        self.instructions = DEFAULT_INSTRUCTIONS if instructions is None else instructions
        self._transcript: list[str] = []
        self._length = 0
        self._spans: list[tuple[int, int]] = []
        self._history_length = 0
        self.prompt_text = ""
        """The prompt of the current episode (the transcript's start)."""
        self.last_parsed: ParsedTextAction | None = None
        """The parse of the latest model turn (``None`` before the first step)."""

    # ------------------------------------------------------------------ transcript
    @property
    def transcript(self) -> str:
        """The episode as text so far: prompt, model turns and environment blocks."""
        return "".join(self._transcript)

    @property
    def information_spans(self) -> list[tuple[int, int]]:
        """``(start, end)`` character spans of the ``<information>`` blocks in the transcript.

        ``transcript[start:end]`` is one whole block, tags included: the environment's text,
        which trainers leave out of the loss.
        """
        return list(self._spans)

    @property
    def unwrapped(self) -> gym.Env[Any, Any]:
        """The innermost environment (the :class:`~raggym_env.env.RAGEnv`)."""
        return self.env.unwrapped

    def _append(self, text: str, *, information: bool = False) -> None:
        if information:
            self._spans.append((self._length, self._length + len(text)))
        self._transcript.append(text)
        self._length += len(text)

    # ------------------------------------------------------------------ episode
    def prompt(self, observation: Mapping[str, Any], max_steps: int) -> str:
        """The opening text for an observation: instructions, then the question (and options)."""
        instructions = self.instructions.replace("{max_steps}", str(max_steps))
        options = observation.get("options") or ()
        if options:
            instructions += _CHOICE_NOTE
        lines = [instructions, "", f"Question: {neutralise_tags(str(observation['question']))}"]
        lines += [f"{o['letter']}. {neutralise_tags(str(o['text']))}" for o in options]
        return "\n".join(lines) + "\n"

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Start an episode (``seed``, ``options`` as for ``RAGEnv.reset``); return its prompt."""
        observation, info = self.env.reset(seed=seed, options=options)
        observation = _checked(observation)
        max_steps = int(info.get("max_steps", observation["steps_remaining"]))
        self._transcript, self._length, self._spans = [], 0, []
        self._history_length = len(observation["history"])
        self.last_parsed = None
        text = self.prompt_text = self.prompt(observation, max_steps)
        self._append(text)
        return text, dict(info)

    def step(self, model_text: str) -> tuple[str, SupportsFloat, bool, bool, dict[str, Any]]:
        """Apply one model turn; return the text to append, and the env's reward and flags.

        Raises:
            TypeError: ``model_text`` is not a string.
            RuntimeError: no episode is running (from the environment).
        """
        if not isinstance(model_text, str):
            raise TypeError(f"step expects the model's text, got {type(model_text).__name__}")
        parsed = parse_search_r1(model_text)
        # "" never parses under the environment's grammar: it takes the invalid-action path
        observation, reward, terminated, truncated, info = self.env.step(parsed.action or "")
        observation = _checked(observation)
        info = dict(info)
        info["text_action"] = parsed.to_dict()
        self.last_parsed = parsed
        self._append(model_text)
        history = observation["history"]
        if parsed.action is None:
            info["action_error"] = parsed.error
            block = _feedback(parsed.error or "no valid action")
        elif isinstance(parsed.action, Search):
            grew = len(history) > self._history_length
            block = format_information(history[-1]["documents"] if grew else ())
        else:
            block = ""
        self._history_length = len(history)
        if not block:
            return "", reward, terminated, truncated, info
        self._append("\n")
        self._append(block, information=True)
        self._append("\n")
        return f"\n{block}\n", reward, terminated, truncated, info

    def render(self) -> Any:
        """The environment's rendering (see ``RAGEnv.render``)."""
        return self.env.render()

    def close(self) -> None:
        """Close the environment."""
        self.env.close()

    def __repr__(self) -> str:
        return f"SearchR1TextEnv({self.env})"


def _feedback(reason: str) -> str:
    """The block answering a turn without a valid action: what went wrong, what is expected."""
    plain = reason.replace("<", "").replace(">", "")  # tag names read better bare here
    note = (
        f"Your last turn held no valid action ({plain}). Write a query between search tags "
        "to look something up, or the final answer between answer tags."
    )
    return f"{INFORMATION_OPEN}{neutralise_tags(note)}{INFORMATION_CLOSE}"


def _checked(observation: Any) -> Mapping[str, Any]:
    if not isinstance(observation, Mapping) or "history" not in observation:
        raise TypeError(
            "SearchR1TextEnv needs the RAGEnv's dict observations (question, history, ...); "
            f"got {type(observation).__name__} from a wrapper that changes them"
        )
    return observation
