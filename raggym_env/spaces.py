"""Gymnasium spaces for free text, actions and observations of the environment.

Gymnasium's :class:`~gymnasium.spaces.Text` only contains strings drawn from a declared
character set. Questions and Wikipedia passages hold arbitrary Unicode, so
:class:`FreeText` accepts any string within its length bounds while sampling from a
readable ASCII set (random text is only for smoke tests and checkers).
"""

from __future__ import annotations

import string
from typing import Any

import numpy as np
from gymnasium import spaces

from raggym_env.actions import Answer, Search

__all__ = ["ActionSpace", "FreeText", "observation_space"]

SAMPLE_CHARSET = string.ascii_letters + string.digits + " "
MAX_TEXT_CHARS = 200_000


class FreeText(spaces.Text):
    """A text space whose members are any Unicode string of bounded length.

    Args:
        max_length: longest member, in characters.
        min_length: shortest member (0 allows empty strings).
        sample_max_length: longest string :meth:`sample` draws, so a space meant for whole
            passages does not sample megabytes.
    """

    def __init__(
        self,
        max_length: int = MAX_TEXT_CHARS,
        *,
        min_length: int = 0,
        sample_max_length: int = 64,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__(max_length, min_length=min_length, charset=SAMPLE_CHARSET, seed=seed)
        self.sample_max_length = max(min_length, min(sample_max_length, max_length))

    def contains(self, x: Any) -> bool:
        """Any ``str`` whose length lies within the bounds."""
        return isinstance(x, str) and self.min_length <= len(x) <= self.max_length

    def sample(
        self,
        mask: tuple[int | None, np.ndarray | None] | None = None,
        probability: tuple[int | None, np.ndarray | None] | None = None,
    ) -> str:
        """Draw readable ASCII text of at most ``sample_max_length`` characters."""
        if mask is None and probability is None:
            length = int(self.np_random.integers(self.min_length, self.sample_max_length + 1))
            mask = (length, None)
        return super().sample(mask=mask, probability=probability)

    def __repr__(self) -> str:
        return f"FreeText({self.min_length}, {self.max_length})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, FreeText)
            and self.min_length == other.min_length
            and self.max_length == other.max_length
        )


class ActionSpace(FreeText):
    """Text actions (see :mod:`raggym_env.actions`) plus :class:`Search`/:class:`Answer`.

    :meth:`sample` returns well-formed text actions, half searches and half answers, with
    random ASCII content, so ``env.action_space.sample()`` is a usable random policy.
    """

    def __init__(self, max_length: int = 8192, seed: int | np.random.Generator | None = None):
        super().__init__(max_length, min_length=1, sample_max_length=32, seed=seed)

    def contains(self, x: Any) -> bool:
        """Action objects, or non-empty text within the length bound."""
        return isinstance(x, (Search, Answer)) or super().contains(x)

    def sample(
        self,
        mask: tuple[int | None, np.ndarray | None] | None = None,
        probability: tuple[int | None, np.ndarray | None] | None = None,
    ) -> str:
        """Draw ``"Search: <text>"`` or ``"Answer: <text>"`` with random content."""
        keyword = "Search" if self.np_random.integers(2) == 0 else "Answer"
        content = ""
        while not content.strip():
            content = super().sample(mask=mask, probability=probability)
        return f"{keyword}: {content}"

    def __repr__(self) -> str:
        return f"ActionSpace(max_length={self.max_length})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ActionSpace) and self.max_length == other.max_length


def observation_space(max_steps: int) -> spaces.Dict:
    """The observation layout shared by every registered environment.

    ``question``: the question text; ``options``: the lettered options of a multiple-choice
    question (empty for open QA); ``history``: one entry per successful search with the query
    and the retrieved documents in rank order; ``steps_remaining``: actions left in the budget.
    """
    document = spaces.Dict(
        {"id": FreeText(256), "title": FreeText(4096), "text": FreeText(MAX_TEXT_CHARS)}
    )
    step = spaces.Dict({"query": FreeText(8192), "documents": spaces.Sequence(document)})
    option = spaces.Dict({"letter": FreeText(8, min_length=1), "text": FreeText(8192)})
    return spaces.Dict(
        {
            "question": FreeText(32_768, min_length=1),
            "options": spaces.Sequence(option),
            "history": spaces.Sequence(step),
            "steps_remaining": spaces.Discrete(max_steps + 1),
        }
    )
