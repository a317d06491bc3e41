"""RAG: search the question once, then reason over the documents and answer.

Step 1 is :meth:`RAGAgent.scripted_action`, a ``Search`` of the question text that needs no
model call. From step 2 on the model sees the retrieved documents (each capped at
``doc_words`` words), reasons step by step and ends with ``Answer: <answer>`` (an option
letter for multiple choice), read by :func:`raggym.agents.parsing.parse_answer`. If the reply
cannot be read, the next step asks again with the same documents; the question is never
searched twice.
"""

from __future__ import annotations

from typing import Any, ClassVar

from raggym.agents.base import Memory, Observation, Parsed
from raggym.agents.direct import DocumentQAAgent
from raggym.agents.parsing import parse_answer
from raggym.agents.rendering import render_documents
from raggym_env import Action, Search

__all__ = ["RAGAgent"]


class RAGAgent(DocumentQAAgent):
    """Retrieve with the question once, then answer with chain of thought over the results.

    Prompt ``rag``; output: reasoning, then a final line ``Answer: <answer>``.
    """

    name = "rag"
    prompt_name: ClassVar[str] = "rag"
    default_max_tokens: ClassVar[int] = 512

    def scripted_action(self, observation: Observation, memory: Memory) -> Action | None:
        """Search the question on the first step (unless only the answering step is left)."""
        if memory.data.get("searched") or int(observation["steps_remaining"]) <= 1:
            return None
        memory.data["searched"] = True
        return Search(str(observation["question"]))

    def render(self, observation: Observation, memory: Memory) -> dict[str, object]:
        """The question, the retrieved documents (deduplicated, rank order) and the status."""
        seen: set[str] = set()
        documents: list[Any] = []
        for entry in observation["history"]:
            for doc in entry["documents"]:
                if doc["id"] not in seen:
                    seen.add(doc["id"])
                    documents.append(doc)
        return {
            **self.common_values(observation, memory),
            "documents": render_documents(documents, self.doc_words),
        }

    def parse(self, text: str, observation: Observation, memory: Memory) -> Parsed:
        """Read the last ``Answer:`` line (see :func:`raggym.agents.parsing.parse_answer`)."""
        return parse_answer(text, self.options(observation))
