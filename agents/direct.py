"""Retrieval-free designs (Direct, chain of thought) and the base every design shares.

:class:`QAAgent` holds what all the RAG-Gym agent designs have in common: the question
(with its options, for multiple choice) and the answer format in the prompt, the budget
sentence with a warning after an unreadable reply, and forced answers that stay option
letters on multiple-choice questions. :class:`DocumentQAAgent` adds the ``doc_words``
cap on each document shown in a prompt.

Output formats asked for here: Direct replies with one line ``Answer: <answer>``; CoT
reasons first and ends with that line. Both are read by
:func:`raggym.agents.parsing.parse_answer` (the last ``Answer:`` line wins); on a
multiple-choice question the answer must name an option, and the action is its letter.
"""

from __future__ import annotations

from typing import Any, ClassVar

from raggym.agents.base import LLMAgent, Memory, Observation, Parsed
from raggym.agents.llm.base import LLM
from raggym.agents.parsing import fallback_answer_text, parse_answer, parse_choice
from raggym.agents.rendering import (
    DEFAULT_DOC_WORDS,
    answer_format,
    check_doc_words,
    options_map,
    render_question,
    status_note,
)
from raggym_env import Answer

__all__ = ["CoTAgent", "DirectAgent", "DocumentQAAgent", "QAAgent"]


class QAAgent(LLMAgent):
    """Shared base of the agent designs: common prompt values and forced answers.

    Every packaged design prompt has the placeholders ``question`` (the question and its
    lettered options), ``answer_format`` (a short answer, or an option letter) and
    ``status`` (the budget sentence, plus a warning when the previous reply could not be
    read); :meth:`common_values` fills them.
    """

    def common_values(self, observation: Observation, memory: Memory) -> dict[str, object]:
        """The ``question``, ``answer_format`` and ``status`` placeholder values."""
        return {
            "question": render_question(observation),
            "answer_format": answer_format(observation),
            "status": status_note(self.budget_note(observation), memory.notes),
        }

    @staticmethod
    def options(observation: Observation) -> dict[str, str]:
        """The observation's options as ``{letter: text}`` (empty for open questions)."""
        return options_map(observation.get("options") or ())

    def forced_answer(self, text: str, parsed: Parsed, memory: Memory) -> Answer:
        """The answer given when the budget ends without one.

        In order: the predicted answer (this output's, else the last one remembered); on
        a multiple-choice question, an option letter read from the text; otherwise the
        last line of the text that is not a search or action line (labels removed), or
        "unknown". On multiple choice a predicted answer is converted to its letter.
        """
        options = dict(memory.example.options or {})
        predicted = parsed.fields.get("predicted_answer") or memory.data.get("predicted_answer")
        if predicted and str(predicted).strip():
            if not options:
                return Answer(str(predicted).strip())
            letter = parse_choice(str(predicted), options)
            if letter is not None:
                return Answer(letter)
        if options:
            letter = parse_choice(text, options)
            if letter is not None:
                return Answer(letter)
        return Answer(fallback_answer_text(text))


class DocumentQAAgent(QAAgent):
    """A design that shows documents, each capped at ``doc_words`` words.

    Args:
        llm: the backend.
        doc_words: most words of each document's text shown in a prompt (default 150);
            retrieved passages can be long and a trajectory shows many of them.
        **kwargs: the :class:`~raggym.agents.base.LLMAgent` arguments (``prompt``,
            ``temperature``, ``top_p``, ``max_tokens``, ``seed``, ``stop``).
    """

    def __init__(self, llm: LLM, *, doc_words: int = DEFAULT_DOC_WORDS, **kwargs: Any) -> None:
        super().__init__(llm, **kwargs)
        self.doc_words = check_doc_words(doc_words)

    def describe(self) -> dict[str, Any]:
        """The base account plus the document cap."""
        return {**super().describe(), "doc_words": self.doc_words}


class DirectAgent(QAAgent):
    """Answer at once from the model's own knowledge: no retrieval, no written reasoning.

    Prompt ``direct``; output ``Answer: <answer>`` (an option letter for multiple choice).
    """

    name = "direct"
    prompt_name: ClassVar[str] = "direct"
    default_max_tokens: ClassVar[int] = 128

    def render(self, observation: Observation, memory: Memory) -> dict[str, object]:
        """The question, the answer format and the status line."""
        return self.common_values(observation, memory)

    def parse(self, text: str, observation: Observation, memory: Memory) -> Parsed:
        """Read the last ``Answer:`` line (see :func:`raggym.agents.parsing.parse_answer`)."""
        return parse_answer(text, self.options(observation))


class CoTAgent(DirectAgent):
    """Reason step by step from the model's own knowledge, then answer; no retrieval.

    Prompt ``cot``; output: reasoning, then a final line ``Answer: <answer>``.
    """

    name = "cot"
    prompt_name: ClassVar[str] = "cot"
    default_max_tokens: ClassVar[int] = 512
