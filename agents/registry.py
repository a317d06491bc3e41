"""Build backends, agents and critics from short names (CLI flags, suite files, notebooks).

- LLMs: ``openai:URL:MODEL`` (any OpenAI-compatible server, e.g.
  ``openai:http://127.0.0.1:8000/v1:Qwen/Qwen2.5-7B-Instruct``), ``hf:PATH`` (transformers),
  ``vllm:MODEL`` (in-process vLLM). See :func:`split_openai_spec` for where the URL ends.
  Installed distributions add kinds through the ``raggym.llms`` entry points
  (:data:`LLM_ENTRY_POINT_GROUP`); raggym's testing kit adds ``scripted:FILE``.
- Agents: ``direct``, ``cot``, ``rag``, ``react``, ``search_o1``, ``re2search`` (LLM agents),
  ``NAME++`` (that agent with a critic choosing among samples; ``re2search++`` is the
  paper's Re2Search++), ``heuristic`` and ``oracle`` (no model).
- Critics: ``rm:PATH`` (a reward model), ``remote:URL:MODEL`` (a reward model served by
  vLLM, e.g. ``remote:http://127.0.0.1:8000:runs/critic/merged``; the URL ends as in
  ``openai:URL:MODEL``), ``judge`` (an LLM judge on the agent's backend), ``gold``
  (gold-evidence oracle critic).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
from collections.abc import Mapping
from typing import Any

from raggym.agents.base import Agent, LLMAgent, PolicyAgent
from raggym.agents.llm.base import LLM
from raggym_env.protocols import DEFAULT_PROTOCOL, RAG_GYM, check_protocol
from raggym_env.redaction import redact_text

__all__ = [
    "AGENTS",
    "BUILTIN_LLM_KINDS",
    "LLM_ENTRY_POINT_GROUP",
    "LLM_SPEC_HELP",
    "POLICIES",
    "RAG_GYM_AGENTS",
    "agent_names",
    "agent_option_names",
    "llm_kinds",
    "make_agent",
    "make_critic",
    "make_llm",
    "split_openai_spec",
]

AGENTS: dict[str, str] = {
    "direct": "raggym.agents.direct:DirectAgent",
    "cot": "raggym.agents.direct:CoTAgent",
    "rag": "raggym.agents.rag:RAGAgent",
    "react": "raggym.agents.react:ReActAgent",
    "search_o1": "raggym.agents.search_o1:SearchO1Agent",
    "re2search": "raggym.agents.re2search:Re2SearchAgent",
}
"""LLM agent names -> ``module:Class``."""

RAG_GYM_AGENTS: dict[str, str] = {
    name: f"raggym.agents.rag_gym:RagGym{cls}Agent"
    for name, cls in (
        ("direct", "Direct"), ("cot", "CoT"), ("rag", "RAG"), ("react", "ReAct"),
        ("search_o1", "SearchO1"), ("re2search", "Re2Search"),
    )
}  # fmt: skip
"""The RAG-Gym protocol's designs under the same names."""

POLICIES: dict[str, str] = {
    "heuristic": "raggym.agents.baselines:QuestionSearchHeuristic",
    "oracle": "raggym.agents.baselines:GoldEvidenceOracle",
}
"""Model-free baseline names -> ``module:Class``."""


def agent_names() -> list[str]:
    """Every name :func:`make_agent` accepts (``NAME++``: ``NAME`` with a critic choosing)."""
    return sorted([*AGENTS, *POLICIES, *(f"{name}++" for name in AGENTS)])


def agent_option_names(name: str, protocol: str = DEFAULT_PROTOCOL) -> frozenset[str]:
    """The ``options`` keys :func:`make_agent` accepts for agent ``name`` under ``protocol``.

    Read from the constructor signatures along the class's bases (a constructor taking
    ``**kwargs`` passes them on to its base's), so a suite can reject a misspelt option
    before anything is built. The LLM itself is not an option.

    Raises:
        ValueError: ``name`` is not an agent name, or ``protocol`` not a protocol.
    """
    table = RAG_GYM_AGENTS if check_protocol(protocol) == RAG_GYM else AGENTS
    base_name = name[:-2] if name.endswith("++") else name
    target = POLICIES.get(name) or table.get(base_name)
    if target is None:
        raise ValueError(f"unknown agent {name!r}; known: {agent_names()}")
    return _accepted(_load(target), policy=name in POLICIES)


def _accepted(cls: type, *, policy: bool = False) -> frozenset[str]:
    """The keyword arguments ``cls`` accepts, following ``**kwargs`` to its bases."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if klass is object:
            break  # object() takes no options
        if init is None:  # inherits its base's constructor
            continue
        params = list(inspect.signature(init).parameters.values())[1:]  # self
        if not policy:
            params = [p for p in params if p.name != "llm"]
        names.update(
            p.name
            for p in params
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        )
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
            break
    return frozenset(names)


_OPENAI_EXAMPLE = "openai:http://127.0.0.1:8000/v1:Qwen/Qwen2.5-7B-Instruct"


def split_openai_spec(spec: str) -> tuple[str, str]:
    """Split ``openai:URL:MODEL`` into ``(URL, MODEL)``; the URL keeps any credentials.

    The rule: the URL is ``http(s)://[USERINFO@]HOST[:PORT][/PATH]`` and ends at the first
    ``:`` after its host and port, so a path never holds ``:`` while a model may
    (``openai:http://h:8000/v1:llama3:8b`` -> model ``llama3:8b``). ``USERINFO`` is
    everything before the last ``@`` ahead of the first ``/``; it may hold ``:``
    (``user:KEY``) but ``/`` and ``@`` must be percent-encoded there. A model holding ``@``
    needs a path in the URL (``openai:http://h:8000/v1:m@v2``). A port is the digits after
    the host's ``:`` when a ``/`` or ``:`` follows them.

    Raises:
        ValueError: ``spec`` is not of that form (the message never shows credentials).
    """

    def bad(why: str) -> ValueError:
        return ValueError(
            f"bad LLM spec {redact_text(spec)!r}: {why}; expected openai:URL:MODEL, e.g. "
            f"{_OPENAI_EXAMPLE}"
        )

    if not spec.startswith("openai:"):
        raise bad("it does not start with 'openai:'")
    rest = spec[len("openai:") :]
    scheme, sep, after = rest.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        raise bad("the URL must start with http:// or https://")
    slash = after.find("/")
    at = (after if slash < 0 else after[:slash]).rfind("@")
    userinfo, after = (after[: at + 1], after[at + 1 :]) if at >= 0 else ("", after)
    if after.startswith("["):  # an IPv6 literal
        end = after.find("]")
        if end < 0:
            raise bad("an IPv6 host has no closing ']'")
        pos = end + 1
    else:
        pos = len(after)
        for stop in (":", "/"):
            found = after.find(stop)
            if 0 <= found < pos:
                pos = found
    if pos == 0 or any(c.isspace() for c in after[:pos]):
        raise bad("the URL has no host")
    host_end = pos
    if after.startswith(":", pos):
        digits = pos + 1
        while digits < len(after) and after[digits].isdigit():
            digits += 1
        if digits > pos + 1 and after.startswith((":", "/"), digits):
            pos = digits
    if after.startswith("/", pos):
        colon = after.find(":", pos)
        pos = len(after) if colon < 0 else colon
    model = after[pos + 1 :].strip()
    if not after.startswith(":", pos) or not model:
        raise bad("no ':MODEL' follows the URL")
    if model.isdigit() and pos == host_end:
        raise bad(f"{model!r} reads as a port, not a model; add ':MODEL'")
    url = f"{scheme}://{userinfo}{after[:pos]}"
    if any(c.isspace() for c in url):
        raise bad("the URL contains whitespace")
    return url, model


def _load(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


BUILTIN_LLM_KINDS: tuple[str, ...] = ("openai", "hf", "vllm")
"""The LLM spec kinds raggym builds itself."""

LLM_SPEC_HELP = (
    "openai:URL:MODEL, hf:PATH, vllm:MODEL, or an installed kind such as scripted:FILE (a "
    "JSON list of replies played in order: offline runs)"
)
"""The ``--llm`` help of every command."""

LLM_ENTRY_POINT_GROUP = "raggym.llms"
"""Installed distributions name more LLM kinds here: ``KIND = "module:builder"``.

``make_llm("KIND:REST", **kwargs)`` calls ``builder(REST, **kwargs)``, imported the first
time the kind is asked for, and it must return an :class:`~raggym.agents.llm.base.LLM`.
"""


def _installed_llms() -> dict[str, importlib.metadata.EntryPoint]:
    found = importlib.metadata.entry_points(group=LLM_ENTRY_POINT_GROUP)
    return {entry.name: entry for entry in found if entry.name not in BUILTIN_LLM_KINDS}


def llm_kinds() -> list[str]:
    """Every kind an LLM spec may start with: the built-in ones, then the installed ones."""
    return [*BUILTIN_LLM_KINDS, *sorted(_installed_llms())]


def _spec_forms() -> str:
    """What an LLM spec may look like, for error messages."""
    installed = [f"{kind}:..." for kind in sorted(_installed_llms())]
    return ", ".join(["openai:URL:MODEL", "hf:PATH", "vllm:MODEL", *installed])


def make_llm(spec: str, **kwargs: Any) -> LLM:
    """Build a backend from ``openai:URL:MODEL``, ``hf:PATH``, ``vllm:MODEL`` or an installed kind.

    ``kwargs`` go to the backend's constructor (e.g. ``concurrency=64``,
    ``api_key_env="OPENAI_API_KEY"``; no key is sent unless one is given). Credentials in
    the URL (``openai:http://user:KEY@host:8000/v1:MODEL``) are taken out of it: the
    password (or a lone user name) is sent as the bearer API key, which is what
    OpenAI-compatible servers such as ``vllm serve --api-key`` check; it never appears in
    the backend's name, ``repr`` or errors. Prefer ``api_key_env``: a spec is often
    printed or typed into shell history.
    """
    if not isinstance(spec, str):
        raise TypeError(f"an LLM spec must be a string, got {type(spec).__name__}")
    kind, _, rest = spec.partition(":")
    if kind == "openai":
        url, model = split_openai_spec(spec)
        from raggym.agents.llm.openai_compat import OpenAICompatibleLLM

        return OpenAICompatibleLLM(base_url=url, model=model, **kwargs)
    if kind == "hf" and rest:
        from raggym.agents.llm.hf import TransformersLLM

        return TransformersLLM(rest, **kwargs)
    if kind == "vllm" and rest:
        from raggym.agents.llm.vllm_backend import VLLMLLM

        return VLLMLLM(rest, **kwargs)
    entry = _installed_llms().get(kind)
    if entry is not None and rest:
        backend = entry.load()(rest, **kwargs)
        if not callable(getattr(backend, "generate", None)):
            raise TypeError(
                f"the {LLM_ENTRY_POINT_GROUP} entry point {kind!r} ({entry.value}) returned "
                f"{type(backend).__name__}, not an LLM with a generate method"
            )
        return backend
    raise ValueError(f"bad LLM spec {redact_text(spec)!r}: expected {_spec_forms()}")


def make_critic(
    spec: str,
    *,
    llm: LLM | None = None,
    retriever: Any = None,
    k: int = 5,
    protocol: str = DEFAULT_PROTOCOL,
    **kwargs: Any,
) -> Any:
    """Build a critic: ``rm:PATH``, ``remote:URL:MODEL``, ``judge`` (needs ``llm``) or ``gold``.

    ``gold`` needs ``retriever``. ``kwargs`` go to the critic's constructor (for
    ``remote``: ``tokenizer``, ``input_format``, ``api_key_env``...). A ``remote`` URL may
    not carry credentials: name the key's environment variable with ``api_key_env``.
    Under ``protocol="rag-gym"`` the ``judge`` is the protocol's annotator
    (:class:`~raggym.agents.critics.rag_gym_judge.RagGymJudgeCritic`).
    """
    protocol = check_protocol(protocol)
    kind, _, rest = spec.partition(":")
    if kind == "judge" and protocol == RAG_GYM:
        if llm is None:
            raise ValueError("the 'judge' critic needs an LLM backend (llm=...)")
        from raggym.agents.critics.rag_gym_judge import RagGymJudgeCritic

        return RagGymJudgeCritic(llm, **kwargs)
    if kind == "rm" and rest:
        from raggym.agents.critics.reward_model import RewardModelCritic

        return RewardModelCritic(rest, **kwargs)
    if kind == "remote" and rest:
        url, model = split_openai_spec("openai:" + rest)
        if "@" in url.split("://", 1)[1].split("/", 1)[0]:
            raise ValueError("a remote critic URL may not carry credentials; pass api_key_env=NAME")
        from raggym.agents.critics.remote import RemoteCritic

        return RemoteCritic(url, model, **kwargs)
    if kind == "judge":
        if llm is None:
            raise ValueError("the 'judge' critic needs an LLM backend (llm=...)")
        from raggym.agents.critics.llm_judge import LLMJudgeCritic

        return LLMJudgeCritic(llm, **kwargs)
    if kind == "gold":
        if retriever is None:
            raise ValueError("the 'gold' critic needs the environment's retriever (retriever=...)")
        from raggym.agents.critics.gold import GoldEvidenceCritic

        return GoldEvidenceCritic(retriever, k=k, **kwargs)
    raise ValueError(
        f"bad critic spec {redact_text(spec)!r}: expected rm:PATH, judge or gold, or "
        "remote:URL:MODEL"
    )


def make_agent(
    name: str,
    llm: LLM | None = None,
    *,
    critic: Any = None,
    n: int = 10,
    options: Mapping[str, Any] | None = None,
    protocol: str = DEFAULT_PROTOCOL,
    summarizer: LLM | None = None,
) -> Agent:
    """Build an agent by name; LLM agents need ``llm``, ``re2search++`` also a ``critic``.

    ``options`` go to the agent's constructor (e.g. ``temperature``, ``prompt``).
    ``protocol="rag-gym"`` builds the RAG-Gym protocol's design of the same name
    (:mod:`raggym.agents.rag_gym`). ``summarizer`` is a separate backend for the
    condensation calls of the designs that make them (Search-o1, Re2Search); the others
    ignore it.
    """
    protocol = check_protocol(protocol)
    extra = dict(options or {})
    if name in POLICIES:
        return PolicyAgent(_load(POLICIES[name])(**extra))
    base_name = name[:-2] if name.endswith("++") else name
    if base_name not in AGENTS:
        raise ValueError(f"unknown agent {name!r}; known: {agent_names()}")
    if llm is None:
        raise ValueError(f"agent {name!r} needs an LLM backend (llm=...)")
    table = RAG_GYM_AGENTS if protocol == RAG_GYM else AGENTS
    cls = _load(table[base_name])
    if summarizer is not None and "condense_llm" in _accepted(cls):
        extra.setdefault("condense_llm", summarizer)
    actor: LLMAgent = cls(llm, **extra)
    if base_name == name:
        return actor
    if critic is None:
        raise ValueError(f"agent {name!r} needs a critic (critic=...)")
    from raggym.agents.critic_guided import CriticGuidedAgent

    return CriticGuidedAgent(actor, critic, n=n, name=name)
