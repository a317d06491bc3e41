"""ReAct: a thought and an action per step, with the trajectory so far in the prompt.

The prompt shows the question and then, for every earlier step, its thought (kept in
``memory.notes``), its action and the observation it produced: a search's documents (each
capped at ``doc_words`` words) or the reason a reply could not be read. The model writes::

    Thought: <reasoning>
    Action: Search[<query>]      or      Action: Finish[<answer>]

(``Search: q`` and ``Answer: a`` lines are accepted too; see
:func:`raggym.agents.parsing.parse_react`). Generation stops at a newline followed by
``Observation`` so the model does not invent the search results; should a backend ignore
the stop string, the first action still wins.
"""

from __future__ import annotations

from typing import ClassVar

from raggym.agents.base import Memory, Observation, Parsed
from raggym.agents.direct import DocumentQAAgent
from raggym.agents.parsing import parse_react
from raggym.agents.rendering import render_trajectory

__all__ = ["ReActAgent"]


class ReActAgent(DocumentQAAgent):
    """Interleave reasoning and search actions until it finishes with an answer.

    Prompt ``react``; output ``Thought: ...`` and ``Action: Search[q]`` / ``Finish[a]``.
    """

    name = "react"
    prompt_name: ClassVar[str] = "react"
    default_max_tokens: ClassVar[int] = 256
    default_stop: ClassVar[tuple[str, ...]] = ("\nObservation",)

    def render(self, observation: Observation, memory: Memory) -> dict[str, object]:
        """The question, the trajectory of earlier steps and the status line."""
        trajectory = render_trajectory(memory.notes, observation["history"], self.doc_words)
        return {**self.common_values(observation, memory), "trajectory": trajectory}

    def parse(self, text: str, observation: Observation, memory: Memory) -> Parsed:
        """Read the first action (see :func:`raggym.agents.parsing.parse_react`)."""
        return parse_react(text, self.options(observation))
