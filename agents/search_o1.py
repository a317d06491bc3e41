"""Search-o1: reason, search when a fact is missing, and read results as condensed answers.

After every search a separate model call (prompt ``search_o1_condense``) reads that
search's documents and condenses them into a short answer to the query, given the main
question. :class:`CondensingAgent` makes these calls in :meth:`~CondensingAgent.prepare`,
for all live episodes together in one ``llm.generate`` batch per step, charges each call
to its episode's step, and keeps the results in ``memory.data["condensed"]`` (one entry
per history search: ``query``, ``answer`` (one line, at most 120 words), ``source`` and,
after a failure, ``error``).
The main prompt shows the history as ``Query: ... / Answer (from documents): ...`` pairs
instead of raw documents. Re2Search (:mod:`raggym.agents.re2search`) shares this base.

Condensation fallback: when the condensation request fails or returns empty text, the
answer becomes the first ``fallback_chars`` (300) characters of the top documents
(``source="fallback"``); a search that returned no documents needs no call
(``source="empty"``). The step's parsed fields (kept in the step record and in the memory
note) carry ``condensed`` (the new answer), ``condense_source`` and, after a failure,
``condense_error``.

Search-o1's output: ``Reasoning: ...`` then one line ``Search: <query>`` or
``Answer: <answer>`` (read by :func:`raggym.agents.parsing.parse_search_or_answer`).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from raggym.agents.base import Memory, Observation, Parsed
from raggym.agents.direct import DocumentQAAgent
from raggym.agents.llm.base import LLM, Completion, SamplingParams
from raggym.agents.parsing import clean_condensed, parse_search_or_answer
from raggym.agents.prompting import PromptTemplate, load_prompt
from raggym.agents.rendering import (
    DEFAULT_DOC_WORDS,
    documents_excerpt,
    render_documents,
    render_qa_pairs,
    render_question,
)
from raggym_env.observation import SearchStep

__all__ = ["CondensingAgent", "SearchO1Agent"]

_EMPTY_ANSWER = "The search returned no documents."


class CondensingAgent(DocumentQAAgent):
    """Base of designs that see each search as a query with an answer condensed from its documents.

    Subclasses set ``name`` and ``prompt_name`` and implement :meth:`read_output`; their
    prompt has the placeholders ``question``, ``answer_format``, ``knowledge`` (the
    query/answer pairs) and ``status``.

    Args:
        llm: the backend of the main call (and of the condensation calls unless
            ``condense_llm`` is given).
        condense_llm: a separate backend for the condensation calls, e.g. an untuned model
            beside a fine-tuned actor, so the actor does not write its own summaries.
        condense_prompt: the condensation prompt, a packaged name or a file path (default
            ``search_o1_condense``; placeholders ``question``, ``query``, ``documents``).
        condense_max_tokens: most tokens of a condensed answer.
        fallback_chars: characters of the top documents used when condensation fails.
        doc_words: most words of each document's text shown to the condenser.
        **kwargs: the :class:`~raggym.agents.base.LLMAgent` arguments for the main call.
    """

    condense_prompt_name: ClassVar[str] = "search_o1_condense"
    condensed_words: ClassVar[int] = 120
    reuse_repeated_queries: ClassVar[bool] = False
    """Give a repeated query of an episode the answer condensed the first time."""

    def __init__(
        self,
        llm: LLM,
        *,
        condense_prompt: str | Path | PromptTemplate | None = None,
        condense_llm: LLM | None = None,
        condense_max_tokens: int = 256,
        fallback_chars: int = 300,
        doc_words: int = DEFAULT_DOC_WORDS,
        **kwargs: Any,
    ) -> None:
        super().__init__(llm, doc_words=doc_words, **kwargs)
        if isinstance(fallback_chars, bool) or not isinstance(fallback_chars, int):
            raise ValueError(f"fallback_chars must be a positive int, got {fallback_chars!r}")
        if fallback_chars < 1:
            raise ValueError(f"fallback_chars must be a positive int, got {fallback_chars!r}")
        if condense_llm is not None and not hasattr(condense_llm, "generate"):
            raise TypeError(
                f"condense_llm must implement the LLM protocol, got {type(condense_llm).__name__}"
            )
        self.condense_llm = condense_llm
        self.fallback_chars = fallback_chars
        self.condense_template = load_prompt(
            condense_prompt if condense_prompt is not None else self.condense_prompt_name
        )
        self.condense_params = SamplingParams(
            n=1,
            temperature=self.params.temperature,
            top_p=self.params.top_p,
            max_tokens=condense_max_tokens,
            seed=self.params.seed,
        )

    # ------------------------------------------------------------------ condensation
    def condense_messages(
        self, observation: Observation, entry: Mapping[str, Any]
    ) -> list[dict[str, str]]:
        """The condensation prompt for one history search."""
        return self.condense_template.render(
            question=render_question(observation),
            query=entry["query"],
            documents=render_documents(entry["documents"], self.doc_words),
        )

    def prepare(self, observations: Sequence[Observation], memories: Sequence[Memory]) -> None:
        """Condense every search not condensed yet, all episodes in one batched call."""
        pending: list[tuple[Memory, SearchStep, dict[str, str]]] = []
        conversations: list[list[dict[str, str]]] = []
        for observation, memory in zip(observations, memories, strict=True):
            condensed: list[dict[str, str]] = memory.data.setdefault("condensed", [])
            memory.data["condensed_now"] = []
            for entry in list(observation["history"])[len(condensed) :]:
                record = {"query": str(entry["query"])}
                condensed.append(record)
                memory.data["condensed_now"].append(record)
                if not entry["documents"]:
                    record.update(answer=_EMPTY_ANSWER, source="empty")
                    continue
                earlier = self._earlier_answer(condensed[:-1], record["query"])
                if earlier is not None:
                    record.update(answer=earlier, source="repeated")
                    continue
                pending.append((memory, entry, record))
                conversations.append(self.condense_messages(observation, entry))
        if not conversations:
            return
        backend = self.condense_llm or self.llm
        completions = backend.generate(conversations, self.condense_params)
        if len(completions) != len(conversations):
            raise RuntimeError(
                f"backend {getattr(backend, 'name', '?')!r} returned {len(completions)} "
                f"completions for {len(conversations)} condensation requests"
            )
        for (memory, entry, record), completion in zip(pending, completions, strict=True):
            memory.charge(completion)
            record.update(self._condensed(entry, completion))

    def _earlier_answer(self, earlier: Sequence[Mapping[str, str]], query: str) -> str | None:
        """A model answer already condensed for ``query`` (only with reuse switched on)."""
        if not self.reuse_repeated_queries:
            return None
        for record in earlier:
            if record.get("query") == query and record.get("source") == "model":
                return record.get("answer")
        return None

    def _condensed(self, entry: Mapping[str, Any], completion: Completion) -> dict[str, str]:
        """The condensed answer of one completion, or the documents' opening on failure."""
        reply = self.admit(completion.texts[0]) if completion.ok else ""
        text = clean_condensed(reply, self.condensed_words) if reply else ""
        if text:
            return {"answer": text, "source": "model"}
        error = completion.error or "the condensation reply was empty"
        fallback = documents_excerpt(entry["documents"], self.fallback_chars)
        return {"answer": fallback, "source": "fallback", "error": error}

    def knowledge(self, observation: Observation, memory: Memory) -> list[tuple[str, str]]:
        """Query/answer pairs for the history (the documents' opening where not condensed)."""
        condensed: list[dict[str, str]] = memory.data.get("condensed", [])
        pairs = []
        for i, entry in enumerate(observation["history"]):
            if i < len(condensed) and "answer" in condensed[i]:
                pairs.append((str(entry["query"]), condensed[i]["answer"]))
            else:
                excerpt = documents_excerpt(entry["documents"], self.fallback_chars)
                pairs.append((str(entry["query"]), excerpt))
        return pairs

    def history_view(
        self, observation: Observation, memory: Memory
    ) -> list[tuple[str, str]] | None:
        """The condensed (query, answer) pairs this design shows instead of documents."""
        return self.knowledge(observation, memory)

    # ------------------------------------------------------------------ prompt and parse
    def render(self, observation: Observation, memory: Memory) -> dict[str, object]:
        """The question, the condensed query/answer pairs and the status line."""
        knowledge = render_qa_pairs(self.knowledge(observation, memory))
        return {**self.common_values(observation, memory), "knowledge": knowledge}

    @abstractmethod
    def read_output(self, text: str, options: Mapping[str, str]) -> Parsed:
        """Read the design's output format into an action and fields."""

    def parse(self, text: str, observation: Observation, memory: Memory) -> Parsed:
        """Read the output, adding this step's condensation record to the fields."""
        parsed = self.read_output(text, self.options(observation))
        new: list[dict[str, str]] = memory.data.get("condensed_now", [])
        if not new:
            return parsed
        fields = dict(parsed.fields)
        fields["condensed"] = "\n".join(r.get("answer", "") for r in new)
        fields["condense_source"] = ",".join(r.get("source", "") for r in new)
        errors = [r["error"] for r in new if "error" in r]
        if errors:
            fields["condense_error"] = "; ".join(errors)
        return Parsed(parsed.action, parsed.error, fields)

    def describe(self) -> dict[str, Any]:
        """The base account plus the condensation prompt and settings (and backend if separate)."""
        separate: dict[str, Any] = {}
        if self.condense_llm is not None:
            name = getattr(self.condense_llm, "name", type(self.condense_llm).__name__)
            separate["condense_llm"] = name
        return {
            **super().describe(),
            **separate,
            "condense_temperature": self.condense_params.temperature,
            "condense_prompt": self.condense_template.name,
            "condense_prompt_sha256": self.condense_template.sha256,
            "condense_max_tokens": self.condense_params.max_tokens,
            "fallback_chars": self.fallback_chars,
        }


class SearchO1Agent(CondensingAgent):
    """Reason and search as needed; each search's documents come back condensed.

    Prompt ``search_o1``; output ``Reasoning: ...`` then ``Search: q`` or ``Answer: a``.
    """

    name = "search_o1"
    prompt_name: ClassVar[str] = "search_o1"
    default_max_tokens: ClassVar[int] = 512

    def read_output(self, text: str, options: Mapping[str, str]) -> Parsed:
        """Read the first action (see :func:`raggym.agents.parsing.parse_search_or_answer`)."""
        return parse_search_or_answer(text, options)
