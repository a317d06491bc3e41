"""The RAG-Gym protocol's agents: the official action format, history views and fallbacks.

Selected with ``make_agent(name, llm, protocol="rag-gym")`` (or ``protocol = "rag-gym"``
in a suite, ``--protocol rag-gym`` on the command line). Each design keeps what the
official code (RAG-Gym, arXiv 2502.13957) shows the model and how it reads the reply;
``docs/fidelity.md`` lists every choice beside raggym's default.

Output format: markdown sections, the last one ``### Structured Output`` holding a fenced
JSON block with ``generated_query`` and/or ``predicted_answer``
(:func:`read_structured_output`). A reply whose block cannot be read is searched as raw
text: the text after the last ``### Structured Output`` heading becomes the query, as the
official code does, so an unreadable reply costs a search, not an invalid step. Only a
reply that leaves nothing to search (blank) is an invalid step, since a blank query cannot
be searched.

History: ReAct shows every earlier query with all of its documents, untruncated
(``Query: q`` then ``Document [i] (Title: t) text`` lines), and none of its own earlier
reasoning. Search-o1 and Re2Search show ``Query: q`` / ``Answer: a`` pairs, the answer
written by a summariser call per search at temperature 0 (``rag_gym_summarize``), kept
verbatim, reused for a repeated query, and made on its own backend when ``condense_llm``
is given (the official code loads an untuned model for it, so a tuned actor does not
write its own summaries). No step budget and no parse-error feedback appear in prompts.

Last steps: ReAct and Search-o1 are shown a template offering only ``Finish``
(``rag_gym_react_final``) on the last step, and a search they propose on the step before
is not executed (an invalid step): the official pipeline gives them one step fewer and its
environment reads the action at that step as an answer, which a search does not have.
When a design still does not answer on the last step, its latest predicted answer is
given, else the text ``None`` (the official environment records no answer, which its
scorer reads as ``None``).

Multiple choice: the question is shown as the official loader builds it, the question
text followed by its options as a Python dict (``... {'A': '...', 'B': '...'}``).

Word-for-word templates: ``official_prompts=PATH`` reads the prompts from a local checkout
of the official repository at run time (:func:`load_official_prompts`); nothing of it is
shipped here.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from raggym.agents.base import Memory, Observation, Parsed
from raggym.agents.direct import QAAgent
from raggym.agents.llm.base import LLM, Completion, SamplingParams
from raggym.agents.prompting import PromptError, PromptTemplate, load_prompt
from raggym.agents.search_o1 import CondensingAgent
from raggym_env import Action, Answer, Search

__all__ = [
    "RagGymCoTAgent",
    "RagGymDirectAgent",
    "RagGymRAGAgent",
    "RagGymRe2SearchAgent",
    "RagGymReActAgent",
    "RagGymSearchO1Agent",
    "history_with_documents",
    "history_with_summaries",
    "load_official_prompts",
    "protocol_question",
    "read_structured_output",
]

STRUCTURED_HEADING = "### Structured Output"
_FENCE = "```"
_JSON_FENCE = "```json"
_COMMENT = re.compile(r" //[^\n]*")
PENULTIMATE_SEARCH = (
    "a search on the second-to-last step is not executed under the rag-gym protocol "
    "(the official environment reads that action as an answer, and a search has none)"
)
_MAX_OBJECT_CHARS = 100_000


# --------------------------------------------------------------------------- reading replies
def _fenced_objects(text: str) -> list[str]:
    """Every ```` ```json {...} ```` object, as the official pattern finds them, in linear time.

    After the fence and optional whitespace an object starts at ``{`` and ends at the last
    ``}`` before the next triple backtick (or the end of the text); fences without such an
    object are passed over.
    """
    found: list[str] = []
    pos = 0
    while True:
        start = text.find(_JSON_FENCE, pos)
        if start < 0:
            return found
        brace = start + len(_JSON_FENCE)
        while brace < len(text) and text[brace].isspace():
            brace += 1
        if brace >= len(text) or text[brace] != "{":
            pos = start + 1
            continue
        fence = text.find(_FENCE, brace + 1)
        end = text.rfind("}", brace + 1, len(text) if fence < 0 else fence)
        if end < 0:
            pos = start + 1
            continue
        found.append(text[brace : end + 1])
        pos = end + 1


def _braced_spans(text: str) -> list[str]:
    """Every shortest ``{...}`` span, left to right without overlap (linear time)."""
    found: list[str] = []
    pos = 0
    while True:
        start = text.find("{", pos)
        if start < 0:
            return found
        end = text.find("}", start + 1)
        if end < 0:
            return found
        found.append(text[start : end + 1])
        pos = end + 1


def _literal_object(raw: str, none_strings: bool) -> dict[Any, Any] | None:
    """The object a block spells, read as a literal (never executed); ``None`` if unreadable.

    Comments (`` // ...`` to the end of a line) are dropped and ``null`` read as none, as
    the official reader does; Python literals (single quotes, trailing commas) and JSON
    (``true``/``false``) are both accepted. With ``none_strings`` a quoted ``"None"``
    counts as no value (Re2Search's "no query").
    """
    if len(raw) > _MAX_OBJECT_CHARS:
        return None
    text = _COMMENT.sub("", raw).replace("null", "None")
    if none_strings:
        text = text.replace("'None'", "None").replace('"None"', "None")
    value: object = None
    try:
        value = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        try:
            value = json.loads(_COMMENT.sub("", raw))
        except (ValueError, RecursionError):
            return None
    return value if isinstance(value, dict) else None


def read_structured_output(
    text: str, *, sections: bool = True, none_strings: bool = False
) -> dict[Any, Any] | None:
    """The JSON object of a reply's structured output, or ``None`` when there is none.

    Looks after the last ``### Structured Output`` heading (the whole text with
    ``sections=False``) for fenced ```` ```json ```` objects, else for bare ``{...}`` spans,
    and reads the last one found (see :func:`_literal_object`).
    """
    tail = text.rsplit(STRUCTURED_HEADING, 1)[-1] if sections else text
    blocks = _fenced_objects(tail) or _braced_spans(tail)
    if not blocks:
        return None
    return _literal_object(blocks[-1], none_strings)


def _query_value(output: Mapping[Any, Any]) -> object:
    """The query field as the official reader looks it up (``query`` first)."""
    if "query" in output:
        return output["query"]
    if "generated_query" in output:
        return output["generated_query"]
    return output.get("generated_queries")


def _raw_search(text: str, reason: str) -> Parsed:
    """The fallback for an unreadable reply: search the text after the last heading."""
    query = text.rsplit(STRUCTURED_HEADING, 1)[-1].strip()
    fields = {"fallback": "raw text searched", "unreadable": reason}
    if not query:
        return Parsed(None, f"{reason}, and no text is left to search", fields)
    return Parsed(Search(query), None, fields)


def parse_search_or_finish(text: str, *, keep_answer: bool = False) -> Parsed:
    """Read a ReAct/Search-o1 (or, with ``keep_answer``, Re2Search) reply.

    A non-empty query makes a search; otherwise the predicted answer (the text ``None``
    when absent) is the answer. With ``keep_answer`` the predicted answer of a search
    reply is kept in the fields (Re2Search predicts an answer at every step).
    """
    output = read_structured_output(text, none_strings=keep_answer)
    if output is None:
        return _raw_search(text, "no readable JSON object in the structured output")
    query = _query_value(output)
    if isinstance(query, list):
        if not query and not keep_answer:
            return _raw_search(text, "an empty query list")
        query = query[0] if query else None
    answer = output.get("predicted_answer")
    fields: dict[str, str] = {}
    if answer is not None:
        fields["predicted_answer"] = str(answer)
    query_text = str(query) if query is not None else ""
    if query_text:
        fields["query"] = query_text
        if not query_text.strip():
            return Parsed(None, "the generated query is blank", fields)
        return Parsed(Search(query_text), None, fields)
    answer_text = str(answer)
    fields["answer"] = answer_text
    if not answer_text.strip():
        return Parsed(None, "the predicted answer is blank", fields)
    return Parsed(Answer(answer_text), None, fields)


def parse_predicted_answer(text: str, *, sections: bool = True) -> Parsed:
    """Read a Direct/CoT/RAG reply: the JSON ``predicted_answer``, else the text after it.

    As in the official reader, an unreadable reply answers with whatever follows the last
    ``predicted_answer`` in the text (the whole text when the word is absent).
    """
    output = read_structured_output(text, sections=sections)
    if output is not None and "predicted_answer" in output:
        answer = str(output["predicted_answer"])
        fields = {"predicted_answer": answer}
    else:
        answer = text.rsplit("predicted_answer", 1)[-1]
        fields = {"predicted_answer": answer, "fallback": "text after predicted_answer"}
    if not answer.strip():
        return Parsed(None, "the predicted answer is blank", fields)
    return Parsed(Answer(answer), None, fields)


# --------------------------------------------------------------------------- prompt values
def protocol_question(observation: Mapping[str, Any]) -> str:
    """The question as the official loader builds it: text, then options as a Python dict."""
    question = str(observation["question"])
    options = observation.get("options") or ()
    if not options:
        return question.strip()
    mapping = {str(o["letter"]): str(o["text"]) for o in options}
    return f"{question} {mapping!r}".strip()


def _document_line(index: int, doc: Mapping[str, Any]) -> str:
    return f"Document [{index}] (Title: {doc.get('title', '')}) {doc.get('text', '')}"


def history_with_documents(history: Sequence[Mapping[str, Any]]) -> str:
    """Each earlier query with all of its documents in full (ReAct's view)."""
    blocks = []
    for entry in history:
        lines = [f"Query: {entry['query']}"]
        lines += [_document_line(i, doc) for i, doc in enumerate(entry["documents"])]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def history_with_summaries(pairs: Sequence[tuple[str, str]]) -> str:
    """Each earlier query with its summarised answer (Search-o1's and Re2Search's view)."""
    return "\n\n".join(f"Query: {query}\nAnswer: {answer}" for query, answer in pairs)


# --------------------------------------------------------------------------- official templates
_TEMPLATE_FILES: dict[str, tuple[str, str, str]] = {
    # key: (file under rag_gym/agents, system variable, user variable)
    "react": ("react.py", "react_system_prompt", "react_user_template"),
    "react_final": ("react.py", "react_system_prompt", "react_truncated_user_template"),
    "search_o1": ("search_o1.py", "search_o1_system_prompt", "search_o1_user_template"),
    "search_o1_final": (
        "search_o1.py", "search_o1_system_prompt", "search_o1_truncated_user_template",
    ),
    "re2search": ("research.py", "research_system_prompt", "research_user_template"),
    "summarize": ("research.py", "rag_system_prompt", "rag_user_template"),
    "direct": ("direct.py", "direct_system_prompt", "direct_user_template"),
    "cot": ("cot.py", "cot_system_prompt", "cot_user_template"),
    "rag": ("rag.py", "rag_system_prompt", "rag_user_template"),
}  # fmt: skip
"""Which official module variables hold each protocol prompt."""

_LIQUID = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def _string_value(node: ast.AST) -> str | None:
    """A string literal, or the literal inside ``Template('...')``; ``None`` otherwise."""
    if isinstance(node, ast.Call) and len(node.args) == 1 and not node.keywords:
        node = node.args[0]
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _module_strings(path: Path) -> dict[str, str]:
    """Module-level ``NAME = '...'`` / ``NAME = Template('...')`` strings (parsed, not run)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError, ValueError) as exc:
        raise PromptError(f"cannot read official prompts from {str(path)!r}: {exc}") from None
    strings = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            value = _string_value(node.value)
            if isinstance(target, ast.Name) and value is not None:
                strings[target.id] = value
    return strings


def _from_liquid(text: str) -> tuple[str, list[str]]:
    """A Liquid template (``{{ name }}``) as a raggym template (``{name}``) and its names."""
    names: list[str] = []
    parts = []
    pos = 0
    for match in _LIQUID.finditer(text):
        parts.append(text[pos : match.start()].replace("{", "{{").replace("}", "}}"))
        name = match.group(1)
        parts.append("{" + name + "}")
        if name not in names:
            names.append(name)
        pos = match.end()
    parts.append(text[pos:].replace("{", "{{").replace("}", "}}"))
    return "".join(parts), names


_JUDGE_NAMES = {"question": "question", "curr_history": "history", "actions_text": "actions"}


def _official_judge(path: Path) -> PromptTemplate:
    """The annotator's messages in the official reranker, as a template (parsed, not run)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError, ValueError) as exc:
        raise PromptError(f"cannot read the official annotator from {str(path)!r}: {exc}") from None
    found: dict[str, ast.expr] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict) and len(node.keys) == 2:
            keys = [k.value if isinstance(k, ast.Constant) else None for k in node.keys]
            role = node.values[0]
            if keys == ["role", "content"] and isinstance(role, ast.Constant):
                found.setdefault(str(role.value), node.values[1])
    system, user = found.get("system"), found.get("user")
    system_text = _string_value(system) if system is not None else None
    if system_text is None or not isinstance(user, ast.JoinedStr):
        raise PromptError(
            f"{str(path)!r} has no system string and formatted user message to read the "
            "annotator prompt from; is the checkout a different version?"
        )
    parts: list[str] = []
    names: list[str] = []
    for value in user.values:
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            parts.append(value.value.replace("{", "{{").replace("}", "}}"))
        elif (
            isinstance(value, ast.FormattedValue)
            and isinstance(value.value, ast.Name)
            and value.value.id in _JUDGE_NAMES
        ):
            name = _JUDGE_NAMES[value.value.id]
            parts.append("{" + name + "}")
            names.append(name)
        else:
            raise PromptError(f"{str(path)!r}: unexpected expression in the annotator prompt")
    user_text = "".join(parts)
    source = f"{path.name}\n{system_text}\n{ast.unparse(user)}"
    escaped = system_text.replace("{", "{{").replace("}", "}}")
    return PromptTemplate("official:judge", escaped, user_text, tuple(names), source)


def load_official_prompts(checkout: str | Path) -> dict[str, PromptTemplate]:
    """Read the protocol's prompts word for word from a local checkout of the official code.

    The module files under ``rag_gym/agents/`` are parsed (never imported or run) and the
    string assigned to each prompt variable is taken; Liquid placeholders become raggym's.
    The returned templates are keyed as in :data:`_TEMPLATE_FILES` (``react``,
    ``react_final``, ``search_o1``, ``search_o1_final``, ``re2search``, ``summarize``,
    ``direct``, ``cot``, ``rag``), plus ``judge`` (the annotator's messages in
    ``rag_gym/rewards/lm_rerank.py``) when that file is there; their hashes go into run
    cards like any prompt's.

    Raises:
        PromptError: the folder is not such a checkout, or a variable is missing.
    """
    root = Path(checkout)
    agents = root / "rag_gym" / "agents"
    if not agents.is_dir():
        raise PromptError(
            f"{str(root)!r} is not a checkout of the official RAG-Gym code "
            "(no rag_gym/agents folder in it)"
        )
    cache: dict[str, dict[str, str]] = {}
    templates = {}
    for key, (filename, system_var, user_var) in _TEMPLATE_FILES.items():
        if filename not in cache:
            cache[filename] = _module_strings(agents / filename)
        strings = cache[filename]
        missing = [v for v in (system_var, user_var) if v not in strings]
        if missing:
            raise PromptError(
                f"official prompt file {str(agents / filename)!r} has no {missing}; "
                "is the checkout a different version?"
            )
        user, names = _from_liquid(strings[user_var])
        system = strings[system_var].replace("{", "{{").replace("}", "}}")
        source = f"{filename}:{system_var}\n{strings[system_var]}\n{user_var}\n{strings[user_var]}"
        templates[key] = PromptTemplate(f"official:{key}", system, user, tuple(names), source)
    judge = root / "rag_gym" / "rewards" / "lm_rerank.py"
    if judge.is_file():
        templates["judge"] = _official_judge(judge)
    return templates


# --------------------------------------------------------------------------- agents
class _ProtocolMixin:
    """What every design of the protocol shares: prompt choice, question, forced answers."""

    protocol: ClassVar[str] = "rag-gym"
    official_key: ClassVar[str] = ""
    final_prompt_name: ClassVar[str | None] = None
    drops_penultimate_search: ClassVar[bool] = False
    template: PromptTemplate
    final_template: PromptTemplate | None

    def _load_templates(
        self,
        prompt: str | Path | PromptTemplate | None,
        final_prompt: str | Path | PromptTemplate | None,
        official: Mapping[str, PromptTemplate] | None,
    ) -> tuple[PromptTemplate | str | Path | None, PromptTemplate | None]:
        """The main prompt (for LLMAgent) and the last-step prompt, official ones if given."""
        if official is not None:
            prompt = prompt or official[self.official_key]
            final_key = f"{self.official_key}_final"
            final_prompt = final_prompt or official.get(final_key)
        final = final_prompt or self.final_prompt_name
        return prompt, load_prompt(final) if final is not None else None

    def messages(self, observation: Observation, memory: Memory) -> list[dict[str, str]]:
        """The main template, or the Finish-only one (when the design has it) on the last step."""
        values = self.render(observation, memory)  # type: ignore[attr-defined]
        if self.final_template is not None and int(observation["steps_remaining"]) <= 1:
            return self.final_template.render(**values)
        return self.template.render(**values)

    def _checked_parse(self, text: str, observation: Observation, memory: Memory) -> Parsed:
        """The base rule, plus the official second-to-last step of ReAct and Search-o1."""
        parsed = super()._checked_parse(text, observation, memory)  # type: ignore[misc]
        last_but_one = int(observation["steps_remaining"]) == 2
        if self.drops_penultimate_search and last_but_one and isinstance(parsed.action, Search):
            fields = {**parsed.fields, "unexecuted_query": parsed.action.query}
            return Parsed(None, PENULTIMATE_SEARCH, fields)
        return parsed

    def forced_answer(self, text: str, parsed: Parsed, memory: Memory) -> Answer:
        """The latest predicted answer (this reply's, else remembered), else ``None``."""
        predicted = parsed.fields.get("predicted_answer") or memory.data.get("predicted_answer")
        if predicted is not None and str(predicted).strip():
            return Answer(str(predicted))
        return Answer("None")

    def describe(self) -> dict[str, Any]:
        """The design's account plus the protocol and the last-step prompt."""
        extra: dict[str, Any] = {"protocol": self.protocol}
        if self.final_template is not None:
            extra["final_prompt"] = self.final_template.name
            extra["final_prompt_sha256"] = self.final_template.sha256
        return {**super().describe(), **extra}  # type: ignore[misc]


def _official(official_prompts: str | Path | None) -> dict[str, PromptTemplate] | None:
    return load_official_prompts(official_prompts) if official_prompts is not None else None


class RagGymDirectAgent(_ProtocolMixin, QAAgent):
    """Direct under the protocol: the answer as a JSON block, no reasoning, no retrieval."""

    name = "direct"
    prompt_name: ClassVar[str] = "rag_gym_direct"
    official_key: ClassVar[str] = "direct"
    default_max_tokens: ClassVar[int] = 2048
    sections: ClassVar[bool] = False

    def __init__(
        self,
        llm: LLM,
        *,
        prompt: str | Path | PromptTemplate | None = None,
        official_prompts: str | Path | None = None,
        **kwargs: Any,
    ) -> None:
        main, self.final_template = self._load_templates(prompt, None, _official(official_prompts))
        super().__init__(llm, prompt=main, **kwargs)

    def render(self, observation: Observation, memory: Memory) -> dict[str, object]:
        """The question as the official loader writes it."""
        return {"question": protocol_question(observation)}

    def parse(self, text: str, observation: Observation, memory: Memory) -> Parsed:
        """The JSON ``predicted_answer``, else the text after the word."""
        return parse_predicted_answer(text, sections=self.sections)


class RagGymCoTAgent(RagGymDirectAgent):
    """Chain of thought under the protocol: reasoning, then the answer as a JSON block."""

    name = "cot"
    prompt_name: ClassVar[str] = "rag_gym_cot"
    official_key: ClassVar[str] = "cot"
    sections: ClassVar[bool] = True


class RagGymRAGAgent(RagGymDirectAgent):
    """RAG under the protocol: search the question once, then answer from its documents."""

    name = "rag"
    prompt_name: ClassVar[str] = "rag_gym_rag"
    official_key: ClassVar[str] = "rag"
    sections: ClassVar[bool] = True

    def scripted_action(self, observation: Observation, memory: Memory) -> Action | None:
        """Search the question (as the official loader writes it) on the first step."""
        if memory.data.get("searched") or int(observation["steps_remaining"]) <= 1:
            return None
        memory.data["searched"] = True
        return Search(protocol_question(observation))

    def render(self, observation: Observation, memory: Memory) -> dict[str, object]:
        """The first search's documents, in full, and the question."""
        history = list(observation["history"])
        docs = history[0]["documents"] if history else []
        lines = [_document_line(i, doc) for i, doc in enumerate(docs)]
        return {"documents": "\n".join(lines), "question": protocol_question(observation)}


class RagGymReActAgent(_ProtocolMixin, QAAgent):
    """ReAct under the protocol: every earlier query with its full documents, no thoughts."""

    name = "react"
    prompt_name: ClassVar[str] = "rag_gym_react"
    final_prompt_name: ClassVar[str | None] = "rag_gym_react_final"
    official_key: ClassVar[str] = "react"
    drops_penultimate_search: ClassVar[bool] = True
    default_max_tokens: ClassVar[int] = 2048

    def __init__(
        self,
        llm: LLM,
        *,
        prompt: str | Path | PromptTemplate | None = None,
        final_prompt: str | Path | PromptTemplate | None = None,
        official_prompts: str | Path | None = None,
        **kwargs: Any,
    ) -> None:
        official = _official(official_prompts)
        main, self.final_template = self._load_templates(prompt, final_prompt, official)
        super().__init__(llm, prompt=main, **kwargs)

    def render(self, observation: Observation, memory: Memory) -> dict[str, object]:
        """The documents history and the question."""
        return {
            "history": history_with_documents(observation["history"]),
            "question": protocol_question(observation),
        }

    def parse(self, text: str, observation: Observation, memory: Memory) -> Parsed:
        """A query makes a search, else the predicted answer; unreadable text is searched."""
        return parse_search_or_finish(text)


class _SummarisingAgent(_ProtocolMixin, CondensingAgent):
    """Search-o1 and Re2Search under the protocol: summaries as the official module writes them."""

    condense_prompt_name: ClassVar[str] = "rag_gym_summarize"
    reuse_repeated_queries: ClassVar[bool] = True
    default_max_tokens: ClassVar[int] = 2048
    keep_answer: ClassVar[bool] = False

    def __init__(
        self,
        llm: LLM,
        *,
        prompt: str | Path | PromptTemplate | None = None,
        final_prompt: str | Path | PromptTemplate | None = None,
        condense_prompt: str | Path | PromptTemplate | None = None,
        condense_max_tokens: int = 2048,
        official_prompts: str | Path | None = None,
        **kwargs: Any,
    ) -> None:
        official = _official(official_prompts)
        main, self.final_template = self._load_templates(prompt, final_prompt, official)
        if official is not None and condense_prompt is None:
            condense_prompt = official["summarize"]
        super().__init__(
            llm, prompt=main, condense_prompt=condense_prompt,
            condense_max_tokens=condense_max_tokens, **kwargs,
        )  # fmt: skip
        self.condense_params = SamplingParams(
            n=1, temperature=0.0, max_tokens=condense_max_tokens, seed=self.params.seed
        )

    def condense_messages(
        self, observation: Observation, entry: Mapping[str, Any]
    ) -> list[dict[str, str]]:
        """The summariser prompt: titled documents, the original question, the query."""
        documents = "\n".join(
            f"(Title: {doc.get('title', '')}) {doc.get('text', '')}" for doc in entry["documents"]
        )
        context = f"Original question:\n{protocol_question(observation)}"
        return self.condense_template.render(
            documents=documents, context=context, query=entry["query"]
        )

    def _condensed(self, entry: Mapping[str, Any], completion: Completion) -> dict[str, str]:
        """The summary verbatim; the documents' opening when the call failed."""
        reply = self.admit(completion.texts[0]).strip() if completion.ok else ""
        if reply:
            return {"answer": reply, "source": "model"}
        return super()._condensed(entry, completion)

    def render(self, observation: Observation, memory: Memory) -> dict[str, object]:
        """The query/summary history and the question."""
        return {
            "history": history_with_summaries(self.knowledge(observation, memory)),
            "question": protocol_question(observation),
        }

    def read_output(self, text: str, options: Mapping[str, str]) -> Parsed:
        """See :func:`parse_search_or_finish`."""
        return parse_search_or_finish(text, keep_answer=self.keep_answer)


class RagGymSearchO1Agent(_SummarisingAgent):
    """Search-o1 under the protocol: ReAct's format over summarised searches."""

    name = "search_o1"
    prompt_name: ClassVar[str] = "rag_gym_react"
    final_prompt_name: ClassVar[str | None] = "rag_gym_react_final"
    official_key: ClassVar[str] = "search_o1"
    drops_penultimate_search: ClassVar[bool] = True


class RagGymRe2SearchAgent(_SummarisingAgent):
    """Re2Search under the protocol: an answer and a verifying query in one JSON block."""

    name = "re2search"
    prompt_name: ClassVar[str] = "rag_gym_re2search"
    official_key: ClassVar[str] = "re2search"
    keep_answer: ClassVar[bool] = True
