"""Re2Search: reason to an answer, then search for the first claim not yet verified.

Each step the model writes four labelled lines (or a JSON object with those keys)::

    Reasoning: <reasoning toward an answer, using the verified knowledge>
    Predicted answer: <the answer that reasoning reaches>
    Unverified claim: <the first claim the knowledge does not support yet, or none>
    Query: <an atomic search query to verify it, or none>

It searches the query; when the claim or the query is "none" (everything verified) it
answers the predicted answer. The history is shown as in Search-o1 (query/answer pairs
condensed from each search's documents by a separate batched call, shared through
:class:`~raggym.agents.search_o1.CondensingAgent`). The predicted answer is kept in the parsed
fields and in ``memory.data``, so when the budget ends on a search the forced answer is
the latest prediction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from raggym.agents.base import Parsed
from raggym.agents.parsing import parse_re2search
from raggym.agents.search_o1 import CondensingAgent

__all__ = ["Re2SearchAgent"]


class Re2SearchAgent(CondensingAgent):
    """Reason, predict, and verify the first unsupported claim by search before answering.

    Prompt ``re2search``; output the four labelled lines (see the module docstring).
    """

    name = "re2search"
    prompt_name: ClassVar[str] = "re2search"
    default_max_tokens: ClassVar[int] = 512

    def read_output(self, text: str, options: Mapping[str, str]) -> Parsed:
        """Read the structured output (see :func:`raggym.agents.parsing.parse_re2search`)."""
        return parse_re2search(text, options)
