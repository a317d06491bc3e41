"""The agent contract: per-episode memory, a decision per step, batched acting.

An :class:`Agent` starts an episode with :meth:`Agent.start` (which returns the episode's
:class:`Memory`) and then, for a batch of live episodes, turns each observation into a
:class:`Decision` with :meth:`Agent.act_batch`. Batching is the point: the runners step
many environments in lockstep and an LLM agent answers all of them with one backend call.

:class:`LLMAgent` is the shared machinery of the LLM agents: render the prompt, sample,
parse without ``eval``, keep the reasoning in memory, and turn failures into data (a parse
failure becomes an invalid step with the raw text recorded; a failed request ends the
episode with its error recorded). Subclasses supply the prompt and the parser.
"""

from __future__ import annotations

import copy
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from raggym.agents.llm.base import LLM, Completion, SamplingParams
from raggym.agents.prompting import PromptTemplate, load_prompt
from raggym_env import Action, Answer, QAExample
from raggym_env.actions import action_to_dict
from raggym_env.episode import Candidate
from raggym_env.observation import Observation
from raggym_env.sanitize import DEFAULT_MAX_REPLY_CHARS, admit_reply, check_max_chars

if TYPE_CHECKING:
    from raggym.agents.baselines import ScriptedPolicy

__all__ = [
    "INVALID_ACTION_TEXT",
    "Agent",
    "Decision",
    "LLMAgent",
    "Memory",
    "Parsed",
    "PolicyAgent",
    "Proposal",
]

Chooser = Callable[
    [Sequence[Observation], Sequence["Memory"], Sequence[Sequence["Proposal"]]],
    list[tuple[int, Sequence[Candidate]]],
]
"""Picks one proposal per episode: returns ``(chosen index, candidates to record)`` each."""

INVALID_ACTION_TEXT = ""
"""What a runner sends the environment for a decision without an action (an invalid step)."""


@dataclass
class Memory:
    """What an agent keeps about one episode between steps.

    Attributes:
        example: the episode's question. Only oracles may read its gold fields.
        notes: one entry per step the agent took (its reasoning, parsed fields, errors),
            used to show the model its own earlier thoughts.
        data: agent-specific state (Search-o1's condensed documents, a predicted answer).
        usage: tokens and seconds spent so far on the current step by preparatory calls;
            :meth:`LLMAgent.act_batch` adds them to the step's decision and clears them.
    """

    example: QAExample
    notes: list[dict[str, Any]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    usage: dict[str, float] = field(default_factory=dict)

    def charge(self, completion: Completion) -> None:
        """Add a preparatory call's tokens and latency to the current step's usage."""
        self.usage["prompt"] = self.usage.get("prompt", 0) + completion.prompt_tokens
        self.usage["completion"] = self.usage.get("completion", 0) + completion.completion_tokens
        self.usage["latency_s"] = self.usage.get("latency_s", 0.0) + completion.latency_s


@dataclass(frozen=True)
class Parsed:
    """What a parser read from one model text.

    Attributes:
        action: the action, or ``None`` when the text had none the agent could read.
        error: why no action could be read (recorded in the step).
        fields: the named parts the parser found (``reasoning``, ``query``, ``answer``,
            ``predicted_answer``, ``claim``, ...), kept in the step's ``extra``.
    """

    action: Action | None
    error: str | None = None
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Proposal:
    """One sampled text with its parse, before a choice is made among several.

    ``messages`` are the chat messages the text answered (critics that score the actor's
    own prompt, such as the RAG-Gym protocol's reward model, read them).
    """

    text: str
    parsed: Parsed
    messages: tuple[dict[str, str], ...] = ()


@dataclass(frozen=True)
class Decision:
    """What an agent decided at one step, with everything worth recording about it.

    Attributes:
        action: the action to take; ``None`` makes the step invalid (recorded, costs a step).
        raw_text: the model text the action came from (``None`` for code policies).
        prompt: the exact messages sent to the model for this decision.
        parse_error: why ``raw_text`` gave no action, when it did not.
        error: a failed request (``"ErrorType: message"`` from the backend): the runner
            ends the episode with it.
        candidates: every sampled candidate with its score, when the agent sampled several.
        tokens: token usage of the step (``{"prompt": ..., "completion": ...}``).
        latency_s: time the decision took (model calls included).
        extra: parsed fields and notes (JSON-safe), kept in the step record.
    """

    action: Action | None
    raw_text: str | None = None
    prompt: tuple[dict[str, str], ...] | None = None
    parse_error: str | None = None
    error: str | None = None
    candidates: tuple[Candidate, ...] = ()
    tokens: dict[str, int] = field(default_factory=dict)
    latency_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def env_action(self) -> Action | str:
        """The action to pass to ``env.step`` (an always-invalid text when there is none)."""
        return self.action if self.action is not None else INVALID_ACTION_TEXT


class Agent(ABC):
    """Turns observations into decisions, many episodes at a time."""

    name: str = "agent"

    def start(self, example: QAExample) -> Memory:
        """Begin an episode on ``example`` and return its memory."""
        return Memory(example=example)

    @abstractmethod
    def act_batch(
        self, observations: Sequence[Observation], memories: Sequence[Memory]
    ) -> list[Decision]:
        """Decide the next action of every live episode (one memory per observation)."""

    def act(self, observation: Observation, memory: Memory) -> Decision:
        """Decide one episode's next action."""
        return self.act_batch([observation], [memory])[0]

    def describe(self) -> dict[str, Any]:
        """A JSON-safe account of the agent's configuration, for run cards."""
        return {"agent": self.name, "class": type(self).__name__}


class PolicyAgent(Agent):
    """Runs a :class:`~raggym.agents.baselines.ScriptedPolicy` as an agent, one copy per episode.

    Policies keep per-episode state (the oracle's query list), so each episode gets its
    own deep copy of the template policy, which lets many episodes run in one batch.
    """

    def __init__(self, policy: ScriptedPolicy) -> None:
        self.policy = policy
        self.name = policy.name

    def start(self, example: QAExample) -> Memory:
        """Copy the policy for this episode and tell it the question."""
        memory = Memory(example=example)
        policy = copy.deepcopy(self.policy)
        policy.begin(example)
        memory.data["policy"] = policy
        return memory

    def act_batch(
        self, observations: Sequence[Observation], memories: Sequence[Memory]
    ) -> list[Decision]:
        """Ask each episode's policy copy for its action."""
        from raggym_env.actions import ActionParseError, parse_action

        decisions = []
        for observation, memory in zip(observations, memories, strict=True):
            tick = time.perf_counter()
            out = memory.data["policy"].act(observation)
            latency = time.perf_counter() - tick
            if isinstance(out, str):
                try:
                    decisions.append(Decision(parse_action(out), raw_text=out, latency_s=latency))
                except ActionParseError as exc:
                    decisions.append(
                        Decision(None, raw_text=out, parse_error=str(exc), latency_s=latency)
                    )
            else:
                decisions.append(Decision(out, latency_s=latency))
        return decisions

    def describe(self) -> dict[str, Any]:
        """The policy's name and class."""
        return {"agent": self.name, "class": type(self.policy).__name__}


class LLMAgent(Agent):
    """Shared machinery of the prompt -> sample -> parse agents.

    Subclasses set :attr:`prompt_name` and implement :meth:`render` (the prompt values for
    an observation) and :meth:`parse`; they may override :meth:`prepare` (batched calls
    before the main one, e.g. Search-o1's document condensation), :meth:`scripted_action`
    (a step needing no model, e.g. RAG's first search) and :meth:`forced_answer`.

    Budget rule: when one step remains the prompt says so (``budget_note``) and any
    non-answer the model gives is replaced by :meth:`forced_answer`, so an episode always
    ends with an answer. Parse-failure rule: the step is sent as an invalid action (it
    costs a step, the raw text and the error are recorded) and the next prompt tells the
    model its last output could not be read.

    Reply rule: every text the backend returns is admitted with
    :func:`~raggym_env.sanitize.admit_reply` before anything reads it: lone surrogates
    become U+FFFD and a text over ``max_reply_chars`` characters is cut, ending with a
    marker such as ``…[truncated 19,968,000 chars]``. The parse, the stored raw text and
    everything fed back into later prompts come from the admitted text, so one runaway
    reply cannot blow up an episode file or the next prompt.

    Args:
        llm: the backend.
        prompt: a packaged prompt name or a prompt file path (default :attr:`prompt_name`).
        temperature: sampling temperature of the main call.
        top_p: nucleus sampling mass of the main call.
        max_tokens: most tokens the main call generates (default :attr:`default_max_tokens`).
        seed: sampling seed of the main call.
        stop: stop strings of the main call (default :attr:`default_stop`).
        max_reply_chars: most characters kept of each reply (default
            :data:`~raggym_env.sanitize.DEFAULT_MAX_REPLY_CHARS`, 32,000).
    """

    prompt_name: ClassVar[str] = ""
    default_max_tokens: ClassVar[int] = 512
    default_stop: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        llm: LLM,
        *,
        prompt: str | Path | PromptTemplate | None = None,
        temperature: float = 0.0,
        top_p: float = 1.0,
        max_tokens: int | None = None,
        seed: int | None = None,
        stop: Sequence[str] | None = None,
        max_reply_chars: int = DEFAULT_MAX_REPLY_CHARS,
    ) -> None:
        if not hasattr(llm, "generate"):
            raise TypeError(f"llm must implement the LLM protocol, got {type(llm).__name__}")
        self.llm = llm
        self.template = load_prompt(prompt if prompt is not None else self.prompt_name)
        self.params = SamplingParams(
            n=1,
            temperature=temperature,
            top_p=top_p,
            max_tokens=max_tokens or self.default_max_tokens,
            stop=tuple(self.default_stop if stop is None else stop),
            seed=seed,
        )
        self.max_reply_chars = check_max_chars(max_reply_chars)

    # ------------------------------------------------------------------ hooks
    def prepare(self, observations: Sequence[Observation], memories: Sequence[Memory]) -> None:
        """Batched work before the main call (default: nothing). Charge calls to ``memory``."""

    def scripted_action(self, observation: Observation, memory: Memory) -> Action | None:
        """An action taken without the model at this step, or ``None`` (default)."""
        return None

    @abstractmethod
    def render(self, observation: Observation, memory: Memory) -> dict[str, object]:
        """The values of the prompt's placeholders for this observation."""

    @abstractmethod
    def parse(self, text: str, observation: Observation, memory: Memory) -> Parsed:
        """Read the action (and named fields) from a model text; never raises on bad text."""

    def forced_answer(self, text: str, parsed: Parsed, memory: Memory) -> Answer:
        """The answer given when the budget ends and the model did not answer."""
        predicted = parsed.fields.get("predicted_answer") or memory.data.get("predicted_answer")
        if predicted:
            return Answer(str(predicted))
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return Answer(lines[-1][:200] if lines else "unknown")

    def commit(self, memory: Memory, observation: Observation, proposal: Proposal) -> None:
        """Remember the chosen output (default: its fields and any parse error as a note)."""
        note: dict[str, Any] = dict(proposal.parsed.fields)
        if proposal.parsed.error:
            note["parse_error"] = proposal.parsed.error
        if "predicted_answer" in proposal.parsed.fields:
            memory.data["predicted_answer"] = proposal.parsed.fields["predicted_answer"]
        memory.notes.append(note)

    # ------------------------------------------------------------------ machinery
    def admit(self, text: str) -> str:
        """A backend's text as the agent keeps it (see the reply rule in the class doc)."""
        return admit_reply(text, self.max_reply_chars)

    def messages(self, observation: Observation, memory: Memory) -> list[dict[str, str]]:
        """The exact chat messages for this observation."""
        return self.template.render(**self.render(observation, memory))

    def history_view(
        self, observation: Observation, memory: Memory
    ) -> list[tuple[str, str]] | None:
        """The history as (query, answer) pairs when the prompt shows it so, else ``None``.

        Designs that read each search through a condensed answer (Search-o1, Re2Search)
        return those pairs, so a judge can be shown what the actor saw.
        """
        return None

    def budget_note(self, observation: Observation) -> str:
        """The sentence telling the model about its remaining budget."""
        left = int(observation["steps_remaining"])
        if left <= 1:
            return "This is your last step: you must give your final answer now."
        return f"You have {left} steps left."

    def sample(
        self,
        observations: Sequence[Observation],
        memories: Sequence[Memory],
        params: SamplingParams,
    ) -> list[tuple[list[dict[str, str]], Completion, list[Proposal]]]:
        """One batched call: messages, completion and parsed proposals for each episode."""
        conversations = [self.messages(o, m) for o, m in zip(observations, memories, strict=True)]
        completions = self.llm.generate(conversations, params) if conversations else []
        if len(completions) != len(conversations):
            raise RuntimeError(
                f"backend {getattr(self.llm, 'name', '?')!r} returned {len(completions)} "
                f"completions for {len(conversations)} conversations"
            )
        out = []
        for observation, memory, messages, completion in zip(
            observations, memories, conversations, completions, strict=True
        ):
            texts = [self.admit(text) for text in completion.texts]
            shown = tuple(messages)
            proposals = [
                Proposal(text, self._checked_parse(text, observation, memory), shown)
                for text in texts
            ]
            out.append((messages, completion, proposals))
        return out

    def _checked_parse(self, text: str, observation: Observation, memory: Memory) -> Parsed:
        parsed = self.parse(text, observation, memory)
        if int(observation["steps_remaining"]) <= 1 and not isinstance(parsed.action, Answer):
            answer = self.forced_answer(text, parsed, memory)
            fields = {**parsed.fields, "forced_answer": "true"}
            return Parsed(answer, parsed.error, fields)
        return parsed

    def act_batch(
        self, observations: Sequence[Observation], memories: Sequence[Memory]
    ) -> list[Decision]:
        """Prepare, then one backend call for every episode the model must decide."""
        return self.decide_batch(observations, memories, self.params)

    def decide_batch(
        self,
        observations: Sequence[Observation],
        memories: Sequence[Memory],
        params: SamplingParams,
        choose: Chooser | None = None,
    ) -> list[Decision]:
        """The step machinery: prepare, scripted steps, one sampling call, choice, commit.

        ``choose`` picks among each episode's sampled proposals and returns the chosen
        index with the candidates to record (default: the first sample, no candidates);
        the critic-guided wrapper passes its critic-based chooser here.
        """
        tick = time.perf_counter()
        for memory in memories:
            memory.usage.clear()
        self.prepare(observations, memories)
        decisions: list[Decision | None] = [None] * len(observations)
        pending: list[int] = []
        for i, (observation, memory) in enumerate(zip(observations, memories, strict=True)):
            scripted = self.scripted_action(observation, memory)
            if scripted is not None:
                action = action_to_dict(scripted)
                memory.notes.append({"scripted": action["type"], "text": action["text"]})
                decisions[i] = self.finish(memory, scripted, latency=0.0)
            else:
                pending.append(i)
        sampled = self.sample(
            [observations[i] for i in pending], [memories[i] for i in pending], params
        )
        ok = [j for j, (_, completion, _) in enumerate(sampled) if completion.ok]
        picks = (choose or _first)(
            [observations[pending[j]] for j in ok],
            [memories[pending[j]] for j in ok],
            [sampled[j][2] for j in ok],
        )
        chosen_by_slot = dict(zip(ok, picks, strict=True))
        elapsed = time.perf_counter() - tick
        for j, (i, (messages, completion, proposals)) in enumerate(
            zip(pending, sampled, strict=True)
        ):
            memory = memories[i]
            if j not in chosen_by_slot:
                decisions[i] = self.failed(memory, messages, completion, elapsed)
                continue
            index, candidates = chosen_by_slot[j]
            chosen = proposals[index]
            self.commit(memory, observations[i], chosen)
            decision = self.finish(
                memory, chosen.parsed.action, latency=elapsed, proposal=chosen,
                messages=messages, completion=completion, candidates=candidates,
            )  # fmt: skip
            if candidates:
                decision.extra["chosen"] = index
            decisions[i] = decision
        return [d for d in decisions if d is not None]

    def failed(
        self,
        memory: Memory,
        messages: list[dict[str, str]],
        completion: Completion,
        latency: float,
    ) -> Decision:
        """The decision for a request that failed after its retries (ends the episode)."""
        usage = self._usage(memory, completion)
        return Decision(
            None,
            prompt=tuple(messages),
            error=completion.error or "LLMError: the backend returned no text",
            tokens=usage,
            latency_s=latency,
        )

    def finish(
        self,
        memory: Memory,
        action: Action | None,
        *,
        latency: float,
        proposal: Proposal | None = None,
        messages: list[dict[str, str]] | None = None,
        completion: Completion | None = None,
        candidates: Sequence[Candidate] = (),
    ) -> Decision:
        """Assemble the step's decision, adding preparatory usage to the main call's."""
        extra: dict[str, Any] = {}
        if "latency_s" in memory.usage:
            extra["prepare_latency_s"] = memory.usage["latency_s"]
        usage = self._usage(memory, completion)
        if proposal is not None and proposal.parsed.fields:
            extra["fields"] = dict(proposal.parsed.fields)
        return Decision(
            action,
            raw_text=proposal.text if proposal is not None else None,
            prompt=tuple(messages) if messages is not None else None,
            parse_error=proposal.parsed.error if proposal is not None else None,
            candidates=tuple(candidates),
            tokens=usage,
            latency_s=latency,
            extra=extra,
        )

    @staticmethod
    def _usage(memory: Memory, completion: Completion | None) -> dict[str, int]:
        prompt = int(memory.usage.get("prompt", 0))
        generated = int(memory.usage.get("completion", 0))
        if completion is not None:
            prompt += completion.prompt_tokens
            generated += completion.completion_tokens
        memory.usage.clear()
        return {"prompt": prompt, "completion": generated} if prompt or generated else {}

    def describe(self) -> dict[str, Any]:
        """Name, class, backend, sampling settings and the prompt's hash."""
        return {
            "agent": self.name,
            "class": type(self).__name__,
            "llm": getattr(self.llm, "name", type(self.llm).__name__),
            "prompt": self.template.name,
            "prompt_sha256": self.template.sha256,
            "temperature": self.params.temperature,
            "top_p": self.params.top_p,
            "max_tokens": self.params.max_tokens,
            "seed": self.params.seed,
            "max_reply_chars": self.max_reply_chars,
        }


def _first(
    observations: Sequence[Observation],
    memories: Sequence[Memory],
    proposals: Sequence[Sequence[Proposal]],
) -> list[tuple[int, Sequence[Candidate]]]:
    """The default choice: the first sample, with no candidates recorded."""
    return [(0, ()) for _ in proposals]
