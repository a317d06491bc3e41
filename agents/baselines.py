"""Non-LLM policies: a question-search heuristic and a gold-evidence oracle.

They need no model, so they run anywhere in seconds. The heuristic is a floor any LLM
agent should beat; the oracle searches the gold titles and answers the gold answer, which
bounds what the environment and retriever allow (its evidence recall is the retriever's
ceiling for title queries).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from raggym_env import Action, Answer, QAExample, Search
from raggym_env.episode import EpisodeRecord
from raggym_env.store import final_episodes, read_episodes

__all__ = [
    "CallablePolicy",
    "GoldEvidenceOracle",
    "QuestionSearchHeuristic",
    "ReplayPolicy",
    "ScriptedPolicy",
]

_YES_NO_OPENERS = (
    "is", "are", "was", "were", "do", "does", "did", "can", "could", "has", "have", "had",
    "will", "would", "should",
)  # fmt: skip
_WORD = re.compile(r"\w+")


@runtime_checkable
class ScriptedPolicy(Protocol):
    """A policy that maps an observation to an action, told each episode's question first."""

    name: str

    def begin(self, example: QAExample) -> None:
        """Called after ``reset`` with the episode's question (oracles read its gold)."""
        ...

    def act(self, observation: Mapping[str, Any]) -> Action | str:
        """Return the next action (an object or action text)."""
        ...


def _drop_parenthetical(title: str) -> str:
    """``title`` without a closing parenthetical: "Paris (film)" -> "Paris".

    Found with two scans from the right (linear time on any title): the last ``)`` must end
    the title, and the parenthetical opens at the first ``(`` after the ``)`` before it.
    """
    stripped = title.rstrip()
    if not stripped.endswith(")"):
        return title
    end = len(stripped) - 1
    start = stripped.find("(", stripped.rfind(")", 0, end) + 1, end)
    return title if start < 0 else stripped[:start].rstrip()


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if len(w) > 2}


class QuestionSearchHeuristic:
    """Search the question once, then answer from the retrieved documents by a fixed rule.

    Rule: a yes/no question (it opens with an auxiliary verb) is answered "yes"; a
    multiple-choice question gets the option sharing most words with the retrieved text;
    otherwise the answer is the title of the best-ranked document the question does not
    already name (multi-hop answers are often a bridge entity's page).
    """

    name = "heuristic"

    def begin(self, example: QAExample) -> None:
        """Nothing to prepare: the heuristic sees only observations."""

    def act(self, observation: Mapping[str, Any]) -> Action:
        """Search the question first, answer on the next step."""
        question: str = observation["question"]
        if not observation["history"]:
            return Search(question)
        documents: Sequence[Mapping[str, str]] = observation["history"][-1]["documents"]
        if observation["options"]:
            return Answer(self._best_option(observation["options"], documents))
        if question.lower().split(" ", 1)[0] in _YES_NO_OPENERS:
            return Answer("yes")
        lowered = question.lower()
        for doc in documents:
            title = _drop_parenthetical(doc["title"]).strip()
            if title and title.lower() not in lowered:
                return Answer(title)
        first = _drop_parenthetical(documents[0]["title"]).strip() if documents else ""
        return Answer(first or "unknown")

    @staticmethod
    def _best_option(
        options: Sequence[Mapping[str, str]], documents: Sequence[Mapping[str, str]]
    ) -> str:
        context = _words(" ".join(d["text"] for d in documents))
        best = max(options, key=lambda o: len(_words(o["text"]) & context))
        return best["letter"]


class GoldEvidenceOracle:
    """Search every gold evidence title, then answer the gold answer.

    It reads the gold of the question it is given in :meth:`begin`, so it measures the
    environment, not an agent: the answer metrics are the ceiling of the metric code, and
    the evidence recall is what title queries can retrieve with this retriever and ``k``.
    """

    name = "oracle"

    def __init__(self) -> None:
        self._queries: list[str] = []
        self._answer = ""

    def begin(self, example: QAExample) -> None:
        """Read the question's gold titles and answer."""
        self._queries = list(example.evidence.titles)
        self._answer = example.answer_letter or example.answers[0]

    def act(self, observation: Mapping[str, Any]) -> Action:
        """The next unsearched gold title, or the gold answer once all are searched."""
        done = len(observation["history"])
        budget_left = int(observation["steps_remaining"])
        if done < len(self._queries) and budget_left > 1:
            return Search(self._queries[done])
        return Answer(self._answer)


class CallablePolicy:
    """A policy from a function of the observation (a mock LLM policy in one line).

    ``fn(observation)`` returns an action or action text (``"Search: ..."``); text that
    does not parse becomes an invalid step, as a model's would.
    """

    def __init__(
        self, fn: Callable[[Mapping[str, Any]], Action | str], *, name: str = "callable"
    ) -> None:
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        self.fn = fn
        self.name = name

    def begin(self, example: QAExample) -> None:
        """Nothing to prepare: the function sees only observations."""

    def act(self, observation: Mapping[str, Any]) -> Action | str:
        """Call the function."""
        return self.fn(observation)


class ReplayPolicy:
    """Replays the actions of recorded episodes, question by question.

    Each step sends the recorded raw model text when there is one (so parse failures
    replay as such), else the recorded action. When the recording runs out, the policy
    answers the recorded final answer. A question with no recorded episode is an error.

    Args:
        episodes: episode records, or the path of an episode JSONL file (the last record
            of each question is used).
        name: the policy's name (default ``"replay"``).
    """

    def __init__(
        self, episodes: Iterable[EpisodeRecord] | str | Path, *, name: str = "replay"
    ) -> None:
        if isinstance(episodes, (str, Path)):
            records = final_episodes(read_episodes(episodes))
        else:
            records = list(episodes)
        self._by_id = {record.example_id: record for record in records}
        self.name = name
        self._queue: list[Action | str] = []
        self._final = ""

    def begin(self, example: QAExample) -> None:
        """Load the recorded steps of this question."""
        record = self._by_id.get(example.id)
        if record is None:
            raise KeyError(
                f"no recorded episode for question {example.id!r}; recorded: "
                f"{sorted(self._by_id)[:5]}{' ...' if len(self._by_id) > 5 else ''}"
            )
        self._queue = []
        for step in record.steps:
            if step.raw_text is not None:
                self._queue.append(step.raw_text)
            elif step.action_type == "search":
                self._queue.append(Search(str(step.action["text"])))
            elif step.action_type == "answer":
                self._queue.append(Answer(str(step.action["text"])))
            else:
                self._queue.append("")
        self._final = record.final_answer or ""
        self._queue.reverse()

    def act(self, observation: Mapping[str, Any]) -> Action | str:
        """The next recorded action, or the recorded final answer once they run out."""
        return self._queue.pop() if self._queue else Answer(self._final)
