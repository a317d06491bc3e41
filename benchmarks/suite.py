"""Benchmark suites: which datasets, agents and settings one leaderboard run covers.

A suite is a TOML file, so a run is reproducible from a file kept with the results. The
runner plays every (dataset, agent) cell of :meth:`Suite.cells` once per seed. Packaged
suites live in ``benchmarks/suites/`` and load by name (:func:`load_suite` ``("smoke")``):

- ``smoke``: the bundled samples of the four benchmarks with the model-free agents;
- ``paper``: the RAG-Gym evaluation protocol (needs the full benchmark files, ``--data-dir``
  and ``--llm``);
- ``custom_example``: a small hand-written question set over its own corpus, the template
  for a user's benchmark.

Schema (``Suite`` fields; every key is optional unless marked *required*)::

    name = "<file stem>"         # [A-Za-z0-9][A-Za-z0-9_.+-]*
    description = ""
    retriever = "bm25"           # bm25, dense, hybrid, hybrid+rerank, remote, fake
    retriever_options = {}       # passed to the retriever builder (its keyword arguments)
    k = 5                        # documents per search (1 to 1_000)
    max_steps = 10               # actions per episode (1 to 1_000)
    seeds = [0]                  # one run of every cell per seed (at most 1_000 distinct
                                 #   ints from 0 to 2**32 - 1)
    batch_size = 32              # episodes live at once (1 to 4_096)

    [llm]
    spec = ""                    # "" = none: the runner's --llm must give it
    options = {}                 # passed to make_llm (e.g. concurrency)

    [[datasets]]                 # required, at least one
    task = "hotpotqa"            # required: hotpotqa, 2wikimultihopqa (2wiki), bamboogle,
                                 #   medqa or custom
    name = "<task>"              # unique within the suite
    path = "hotpotqa/dev.json"   # question file; omitted: the bundled sample (required
                                 #   for custom); "hub" or "hub:REPO[:CONFIG[:SPLIT]]"
    select = "all"               # all, first:N, last:N or sample:N@SEED (N <= 10_000_000)
    corpus = "wiki.jsonl"        # corpus file or folder; omitted: the task's default
    retriever = "<suite's>"      # this dataset's own retriever
    retriever_options = {}       # alone with its own retriever, else merged over the suite's

    [[agents]]                   # required, at least one
    agent = "re2search++"        # required: a name from raggym.agents.registry.agent_names()
    name = "<agent>"             # unique within the suite
    critic = "rm:runs/critic"    # NAME++ agents only (required there): gold, judge, rm:PATH
    n = 10                       # NAME++ agents only: candidates sampled per step (1-1_000)
    options = {}                 # passed to the agent's constructor (its keyword arguments)

Validation reports every problem of a suite in one :class:`SuiteError` (each with its file,
table and key, and "did you mean" for a near-miss key, name or option); option names are
checked against the agent's constructor and the retriever builder's signature.

Paths: ``path`` and ``corpus`` may start with ``${data_dir}`` (the runner's ``--data-dir``)
or ``${suite_dir}`` (the suite file's folder). Other relative paths resolve against
``data_dir`` when one is given, else against the suite file's folder. Nothing is opened
while loading: :meth:`Suite.check_files` lists every missing file at once.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import json
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from raggym.agents.registry import AGENTS, agent_names, agent_option_names, llm_kinds
from raggym_env.protocols import DEFAULT_PROTOCOL, check_protocol
from raggym_env.redaction import find_secrets, redact, redact_text
from raggym_env.retrieval.factory import available_retrievers, retriever_option_names
from raggym_env.tasks import TASK_NAMES, resolve_task_name, select_examples
from raggym_env.tasks.hub import is_hub_path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

__all__ = [
    "SUITES_DIR",
    "AgentConfig",
    "DatasetConfig",
    "LLMConfig",
    "Suite",
    "SuiteError",
    "available_suites",
    "load_suite",
    "parse_suite",
]

SUITES_DIR = Path(__file__).resolve().parent / "suites"
"""The folder of the packaged suite files (``<name>.toml``)."""

DATA_DIR_VAR = "${data_dir}"
SUITE_DIR_VAR = "${suite_dir}"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
_NAME_RULE = "letters, digits and _ . + - (starting with a letter or digit)"
_SELECT = re.compile(r"^(first|last):(\d+)$|^sample:(\d+)@(\d+)$")
_SELECT_RULE = "'all', 'first:N', 'last:N' or 'sample:N@SEED'"
_PLACEHOLDER = re.compile(r"\$\{[^{}$]*\}")  # no nesting: linear on "${${${..."
_LLM_KINDS = ("openai", "hf", "vllm")
_LLM_RULE = "'openai:URL:MODEL', 'hf:PATH', 'vllm:MODEL' or '' (none: give --llm)"
_CRITIC_RULE = "'gold', 'judge' or 'rm:PATH'"

MAX_K = 1_000
"""Upper bound of ``k`` (documents per search)."""
MAX_STEPS = 1_000
"""Upper bound of ``max_steps`` (actions per episode)."""
MAX_BATCH_SIZE = 4_096
"""Upper bound of ``batch_size`` (episodes live at once)."""
MAX_CANDIDATES = 1_000
"""Upper bound of an agent's ``n`` (candidates sampled per step)."""
MAX_SEEDS = 1_000
"""At most this many ``seeds``."""
MAX_SEED = 2**32 - 1
"""Largest seed (what numpy and the samplers accept)."""
MAX_QUESTIONS = 10_000_000
"""Upper bound of the ``N`` of ``select`` and of a ``limit`` override."""

_SUITE_KEYS = (
    "name",
    "description",
    "protocol",
    "summarizer",
    "judge",
    "retriever",
    "retriever_options",
    "k",
    "max_steps",
    "seeds",
    "batch_size",
    "llm",
    "datasets",
    "agents",
)
_DATASET_KEYS = ("name", "task", "path", "select", "corpus", "retriever", "retriever_options")
_AGENT_KEYS = ("name", "agent", "critic", "n", "options")
_LLM_KEYS = ("spec", "options")


class SuiteError(ValueError):
    """A suite file or mapping that does not follow the schema; the message says where."""


def _freeze(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return a read-only copy, so a frozen spec cannot change under a running benchmark."""
    return MappingProxyType(dict(mapping))


def _json_safe(value: Any) -> Any:
    """Convert TOML values (tables, arrays, dates) to plain JSON types."""
    if isinstance(value, Mapping):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    return value


def _options_key(options: Mapping[str, Any]) -> str:
    return json.dumps(_json_safe(options), sort_keys=True)


@dataclass(frozen=True)
class DatasetConfig:
    """One benchmark of a suite: a task, its question file, subset and corpus.

    Attributes:
        name: the dataset's name in results and leaderboards (default: the task).
        task: the canonical task name (``hotpotqa``, ``2wikimultihopqa``, ``bamboogle``,
            ``medqa`` or ``custom``).
        path: the question file as a resolved path, a hub spec (``"hub"``,
            ``"hub:..."``), or ``None`` for the bundled sample.
        select: ``"first:N"``, ``"last:N"``, ``"sample:N@SEED"`` or ``None`` (all).
        corpus: a resolved corpus file or folder, or ``None`` for the task's default.
        retriever: this dataset's retriever, or ``None`` for the suite's.
        retriever_options: options for this dataset's retriever (see
            :meth:`Suite.env_kwargs` for how they combine with the suite's).
    """

    name: str
    task: str
    path: str | None = None
    select: str | None = None
    corpus: str | None = None
    retriever: str | None = None
    retriever_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "retriever_options", _freeze(self.retriever_options))

    def __hash__(self) -> int:
        return hash(
            (
                self.name,
                self.task,
                self.path,
                self.select,
                self.corpus,
                self.retriever,
                _options_key(self.retriever_options),
            )
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready mapping (the schema's keys, with resolved paths)."""
        return {
            "name": self.name,
            "task": self.task,
            "path": self.path,
            "select": self.select,
            "corpus": self.corpus,
            "retriever": self.retriever,
            "retriever_options": _json_safe(self.retriever_options),
        }


@dataclass(frozen=True)
class AgentConfig:
    """One agent of a suite: a registry name with its critic and constructor options.

    Attributes:
        name: the agent's name in results and leaderboards (default: ``agent``).
        agent: a name accepted by :func:`raggym.agents.registry.make_agent`.
        critic: for ``NAME++`` agents, a :func:`raggym.agents.registry.make_critic` spec
            (``gold``, ``judge`` or ``rm:PATH``); ``None`` otherwise.
        n: for ``NAME++`` agents, candidates sampled per step (``None``: the registry's
            default).
        options: keyword arguments for the agent's constructor.
    """

    name: str
    agent: str
    critic: str | None = None
    n: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", _freeze(self.options))

    def __hash__(self) -> int:
        return hash((self.name, self.agent, self.critic, self.n, _options_key(self.options)))

    @property
    def needs_llm(self) -> bool:
        """Whether this agent calls a language model (an LLM agent or a ``NAME++``)."""
        return self.agent in AGENTS or self.agent.endswith("++")

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready mapping (the schema's keys)."""
        return {
            "name": self.name,
            "agent": self.agent,
            "critic": self.critic,
            "n": self.n,
            "options": _json_safe(self.options),
        }


@dataclass(frozen=True)
class LLMConfig:
    """The language-model backend of a suite.

    Attributes:
        spec: an :func:`raggym.agents.registry.make_llm` spec, or ``None`` when the runner's
            ``--llm`` must supply it.
        options: keyword arguments for the backend's constructor.
    """

    spec: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", _freeze(self.options))

    def __hash__(self) -> int:
        return hash((self.spec, _options_key(self.options)))

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready mapping (the schema's keys), credentials masked."""
        spec = redact_text(self.spec) if self.spec is not None else None
        return {"spec": spec, "options": redact(_json_safe(self.options))}


@dataclass(frozen=True)
class Suite:
    """A benchmark suite: datasets x agents under one environment and LLM setting.

    Build one with :func:`load_suite` or :func:`parse_suite`, which validate every field;
    the constructor itself does not.

    Attributes:
        name: the suite's name.
        description: what the suite measures and what it needs.
        datasets: the benchmarks, in file order.
        agents: the agents, in file order.
        llm: the LLM backend (its ``spec`` may be ``None``: see :attr:`needs_llm`).
        retriever: the default retriever of every dataset.
        retriever_options: the default retriever options.
        k: documents per search.
        max_steps: actions per episode.
        seeds: every cell runs once per seed.
        batch_size: episodes live at once.
        source: the suite file, or ``None`` for a suite parsed from text.
        data_dir: the folder relative paths were resolved against, if one was given.
        protocol: ``"raggym"`` (default) or ``"rag-gym"``: which designs the agent names
            build (see :mod:`raggym_env.protocols`).
        summarizer: a separate backend for the condensation calls of Search-o1 and
            Re2Search (its ``spec`` ``None``: the agents' own backend writes them).
        judge: a judge LLM scoring every episode's faithfulness, answer relevance and
            context relevance (:mod:`raggym.agents.judge`); ``spec`` ``None``: no judge.
            Written ``judge = "openai:URL:MODEL"`` or as a ``[judge]`` table with ``spec``
            and ``options``.
    """

    name: str
    description: str
    datasets: tuple[DatasetConfig, ...]
    agents: tuple[AgentConfig, ...]
    llm: LLMConfig = field(default_factory=LLMConfig)
    retriever: str = "bm25"
    retriever_options: Mapping[str, Any] = field(default_factory=dict)
    k: int = 5
    max_steps: int = 10
    seeds: tuple[int, ...] = (0,)
    batch_size: int = 32
    source: str | None = None
    data_dir: str | None = None
    protocol: str = DEFAULT_PROTOCOL
    summarizer: LLMConfig = field(default_factory=LLMConfig)
    judge: LLMConfig = field(default_factory=LLMConfig)

    def __post_init__(self) -> None:
        object.__setattr__(self, "protocol", check_protocol(self.protocol))
        object.__setattr__(self, "datasets", tuple(self.datasets))
        object.__setattr__(self, "agents", tuple(self.agents))
        object.__setattr__(self, "seeds", tuple(self.seeds))
        object.__setattr__(self, "retriever_options", _freeze(self.retriever_options))

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    @property
    def needs_llm(self) -> bool:
        """Whether any agent calls a language model (an LLM agent or a ``NAME++``)."""
        return any(agent.needs_llm for agent in self.agents)

    def cells(self) -> list[tuple[DatasetConfig, AgentConfig]]:
        """Every (dataset, agent) pair, dataset-major, in file order."""
        return [(dataset, agent) for dataset in self.datasets for agent in self.agents]

    def env_kwargs(self, dataset: DatasetConfig) -> dict[str, Any]:
        """Keyword arguments of :class:`raggym_env.env.RAGEnv` for one of the datasets.

        A dataset that names its own ``retriever`` uses its own options only; one that
        does not uses the suite's retriever with the suite's options updated by its own.
        """
        if dataset.retriever is None:
            retriever = self.retriever
            options = {**self.retriever_options, **dataset.retriever_options}
        else:
            retriever = dataset.retriever
            options = dict(dataset.retriever_options)
        return {
            "task": dataset.task,
            "data_path": dataset.path,
            "select": dataset.select,
            "corpus": dataset.corpus,
            "retriever": retriever,
            "retriever_options": options,
            "k": self.k,
            "max_steps": self.max_steps,
        }

    def check_files(self) -> list[str]:
        """List every missing data file or folder as a readable problem (empty: all found).

        Question files and corpora are checked for existence only (hub specs and bundled
        samples are not checked); nothing is read.
        """
        problems: list[str] = []
        if self.data_dir is not None and not Path(self.data_dir).is_dir():
            problems.append(f"--data-dir {self.data_dir}: no such folder")
        for dataset in self.datasets:
            where = f"suite {self.name!r}, dataset {dataset.name!r} ({dataset.task})"
            for label, value, is_file in (
                ("question file", dataset.path, True),
                ("corpus", dataset.corpus, False),
            ):
                if value is None or is_hub_path(value):
                    continue
                path = Path(value)
                found = path.is_file() if is_file else path.exists()
                if not found:
                    problems.append(f"{where}: {label} not found: {value}{self._hint(value)}")
        return problems

    def _hint(self, value: str) -> str:
        """Explain how a missing path was resolved and how to point it elsewhere."""
        if DATA_DIR_VAR in value:
            return f" (the path uses {DATA_DIR_VAR}: pass --data-dir DIR)"
        if self.data_dir is not None:
            return f" (relative paths resolve against --data-dir {self.data_dir})"
        if self.source is not None and Path(value).is_relative_to(Path(self.source).parent):
            return (
                f" (relative paths resolve against the suite's folder {Path(self.source).parent}"
                " when no --data-dir is given: pass --data-dir DIR, the folder holding the "
                "benchmark files)"
            )
        return ""

    def with_overrides(
        self,
        llm: str | LLMConfig | None = None,
        limit: int | None = None,
        judge: str | LLMConfig | None = None,
    ) -> Suite:
        """Return a copy with another LLM and/or each dataset's selection capped at ``limit``.

        Args:
            llm: an LLM spec string (keeps the suite's LLM options) or an ``LLMConfig``;
                ``None`` keeps the suite's.
            limit: a positive cap on every dataset's selection that keeps its kind:
                ``last:1000`` becomes ``last:20`` for ``limit=20``, ``sample:N@S`` becomes
                ``sample:min(N, limit)@S`` (a fresh sample of that size) and an
                unrestricted dataset becomes ``first:limit``. ``None`` changes nothing.
            judge: a judge LLM spec (keeps the suite's judge options) or an ``LLMConfig``;
                ``None`` keeps the suite's.

        Raises:
            SuiteError: a malformed LLM spec or a limit that is not an int from 1 to
                :data:`MAX_QUESTIONS`.
        """
        new_llm = self.llm
        if isinstance(llm, LLMConfig):
            new_llm = llm
        elif llm is not None:
            new_llm = LLMConfig(_check_llm_spec(llm, "with_overrides(llm=...)"), self.llm.options)
        new_judge = self.judge
        if isinstance(judge, LLMConfig):
            new_judge = judge
        elif judge is not None:
            spec = _check_llm_spec(judge, "with_overrides(judge=...)")
            new_judge = LLMConfig(spec, self.judge.options)
        datasets = self.datasets
        if limit is not None:
            if (
                isinstance(limit, bool)
                or not isinstance(limit, int)
                or not 1 <= limit <= MAX_QUESTIONS
            ):
                raise SuiteError(
                    f"with_overrides: limit must be a positive int up to {MAX_QUESTIONS:_}, "
                    f"got {_shown(limit)}"
                )
            datasets = tuple(
                dataclasses.replace(d, select=_cap_select(d.select, limit)) for d in datasets
            )
        return dataclasses.replace(self, llm=new_llm, datasets=datasets, judge=new_judge)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready mapping of the whole suite, with resolved paths (for run cards)."""
        return {
            "name": self.name,
            "description": self.description,
            "retriever": self.retriever,
            "retriever_options": _json_safe(self.retriever_options),
            "k": self.k,
            "max_steps": self.max_steps,
            "seeds": list(self.seeds),
            "batch_size": self.batch_size,
            "llm": self.llm.to_dict(),
            "datasets": [dataset.to_dict() for dataset in self.datasets],
            "agents": [agent.to_dict() for agent in self.agents],
            "source": self.source,
            "data_dir": self.data_dir,
            "protocol": self.protocol,
            "summarizer": self.summarizer.to_dict(),
            "judge": self.judge.to_dict(),
        }


def _cap_select(select: str | None, limit: int) -> str:
    """Cap a selection at ``limit`` questions, keeping its kind (see ``with_overrides``)."""
    if select is None:
        return f"first:{limit}"
    match = _SELECT.match(select)
    if match is None:  # parse_suite validated it; a hand-built spec may not be
        raise SuiteError(f"invalid select {select!r}; allowed: {_SELECT_RULE}")
    kind, count, sample_n, seed = match.groups()
    if kind is not None:
        return f"{kind}:{min(int(count), limit)}"
    return f"sample:{min(int(sample_n), limit)}@{seed}"


# ---------------------------------------------------------------------- validation
_T = TypeVar("_T")
_D = TypeVar("_D")


class _Where:
    """A location in a suite (file and table) whose problems go to a shared list.

    Validation does not stop at the first problem: every check records what is wrong and
    parsing goes on, so :func:`parse_suite` reports all of a suite's errors at once.
    """

    def __init__(self, label: str, problems: list[str]) -> None:
        self.label = label
        self.problems = problems

    def at(self, label: str) -> _Where:
        """A location inside this one (a table), sharing the problem list."""
        return _Where(f"{self.label}: {label}", self.problems)

    def error(self, message: str) -> SuiteError:
        return SuiteError(f"{self.label}: {message}")

    def report(self, message: str) -> None:
        self.problems.append(f"{self.label}: {message}")

    def bad(self, key: str, value: Any, allowed: str) -> SuiteError:
        return self.error(f"key {key!r}: got {_shown(value)}; allowed: {allowed}")

    def get(self, check: Callable[[], _T], default: _D) -> _T | _D:
        """Run one check; on a :class:`SuiteError` record it and return ``default``."""
        try:
            return check()
        except SuiteError as exc:
            self.problems.append(str(exc))
            return default

    def check_keys(self, table: Mapping[str, Any], allowed: Sequence[str]) -> None:
        for key in table:
            if key not in allowed:
                self.report(
                    f"unknown key {key!r}{_did_you_mean(key, allowed)}; "
                    f"allowed keys: {', '.join(allowed)}"
                )

    def text(self, table: Mapping[str, Any], key: str, default: str | None = None) -> str | None:
        value = table.get(key, default)
        if value is not None and not isinstance(value, str):
            raise self.bad(key, value, "a string")
        return value

    def bounded_int(self, table: Mapping[str, Any], key: str, default: int, high: int) -> int:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
            raise self.bad(key, value, f"a positive integer up to {high:_}")
        return value

    def table(self, table: Mapping[str, Any], key: str) -> Mapping[str, Any]:
        value = table.get(key, {})
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise self.bad(key, value, "a table (e.g. {key = value})")
        return value

    def name(self, value: Any, key: str = "name") -> str:
        if not isinstance(value, str) or not _NAME.match(value):
            raise self.bad(key, value, _NAME_RULE)
        return value

    def retriever(self, value: Any) -> str:
        names = available_retrievers()
        if value not in names:
            hint = _did_you_mean(value, names) if isinstance(value, str) else ""
            raise self.error(
                f"key 'retriever': got {_shown(value)}{hint}; allowed: {', '.join(names)}"
            )
        return str(value)

    def options(
        self, options: Mapping[str, Any], key: str, accepted: frozenset[str] | None, whose: str
    ) -> None:
        """Report every option that ``accepted`` lacks (``None``: any option goes)."""
        if accepted is None:
            return
        allowed = sorted(accepted)
        for option in options:
            if option not in accepted:
                self.report(
                    f"key {key!r}: unknown option {option!r} for {whose}"
                    f"{_did_you_mean(option, allowed)}; allowed: {', '.join(allowed) or 'none'}"
                )


def _shown(value: Any, width: int = 80) -> str:
    """``repr(value)``, credentials masked, shortened (a 10**20 must not flood the message)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**width:
        return f"an integer of more than {width} digits"
    text = repr(redact(value))
    return text if len(text) <= width else text[: width - 3] + "..."


def _did_you_mean(value: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for a near miss among ``choices``, else ``""``."""
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _refuse_secrets(where: _Where, data: Mapping[str, Any]) -> None:
    """Refuse credentials written into a suite (a file is shared, committed, stored)."""
    found = find_secrets({key: value for key, value in data.items() if key != "description"})
    if found:
        where.report(
            f"credentials do not belong in a suite file (it is shared and stored with every "
            f"result): {', '.join(found)}. Put the key in an environment variable and give "
            'its name: [llm] options = {api_key_env = "NAME"}, or raggym bench SUITE '
            "--api-key-env NAME"
        )


def _check_llm_spec(spec: Any, where: str) -> str | None:
    """Return a syntactically valid LLM spec (``""`` becomes ``None``), else raise."""
    if not isinstance(spec, str):
        raise SuiteError(f"{where}: key 'spec': got {_shown(spec)}; allowed: {_LLM_RULE}")
    spec = spec.strip()
    if not spec:
        return None
    kind, _, rest = spec.partition(":")
    kinds = llm_kinds()
    if kind not in kinds or not rest.strip():
        installed = "".join(f"'{k}:...', " for k in kinds if k not in _LLM_KINDS)
        rule = _LLM_RULE.replace("'vllm:MODEL' or", f"'vllm:MODEL', {installed}or")
        raise SuiteError(f"{where}: key 'spec': got {_shown(spec)}; allowed: {rule}")
    return spec


def _entries(
    where: _Where, data: Mapping[str, Any], key: str
) -> list[tuple[int, Mapping[str, Any]]]:
    """The numbered tables of ``[[key]]``; problems are recorded, valid tables returned."""
    value = data.get(key)
    table = f"[[{key}]]"
    if value is None:
        where.report(f"no {table} tables: a suite needs at least one")
        return []
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        where.get(lambda: _raise(where.bad(key, value, f"an array of tables ({table})")), None)
        return []
    if not value:
        where.report(f"{table} is empty: a suite needs at least one")
    entries: list[tuple[int, Mapping[str, Any]]] = []
    for index, entry in enumerate(value, 1):
        if isinstance(entry, Mapping):
            entries.append((index, entry))
        else:
            where.report(f"{table} #{index}: got {_shown(entry)}; allowed: a table")
    return entries


def _raise(error: SuiteError) -> None:
    raise error


def _resolve(path: Path, what: str) -> Path:
    """``path.resolve()``, with a symlink loop reported as a :class:`SuiteError`."""
    try:
        return path.resolve()
    except (RuntimeError, OSError) as exc:  # RuntimeError: "Symlink loop" before 3.13
        raise SuiteError(f"{what} {path}: cannot resolve the path ({exc})") from None


def _resolve_path(
    value: str, base: Path | None, data_dir: Path | None, suite_dir: Path | None, what: str
) -> str:
    """Resolve a dataset path: hub specs as given, placeholders substituted, relative joined."""
    if is_hub_path(value):
        return value
    if value.startswith(DATA_DIR_VAR):
        if data_dir is None:
            return value  # reported by Suite.check_files, which names --data-dir
        value = str(data_dir) + value[len(DATA_DIR_VAR) :]
    elif value.startswith(SUITE_DIR_VAR):
        value = str(suite_dir or Path.cwd()) + value[len(SUITE_DIR_VAR) :]
    path = Path(value).expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    return str(_resolve(path, what)) if path.is_absolute() else str(path)


def _parse_path(
    where: _Where,
    entry: Mapping[str, Any],
    key: str,
    base: Path | None,
    data_dir: Path | None,
    suite_dir: Path | None,
) -> str | None:
    value = where.text(entry, key)
    if value is None:
        return None
    if not value.strip():
        raise where.bad(key, value, "a non-empty path (omit the key for the default)")
    unknown = [p for p in _PLACEHOLDER.findall(value) if p not in (DATA_DIR_VAR, SUITE_DIR_VAR)]
    misplaced = [p for p in (DATA_DIR_VAR, SUITE_DIR_VAR) if p in value[1:]]
    if unknown or misplaced:
        raise where.bad(
            key, value, f"a path, optionally starting with {DATA_DIR_VAR} or {SUITE_DIR_VAR}"
        )
    try:
        return _resolve_path(value, base, data_dir, suite_dir, f"key {key!r}:")
    except SuiteError as exc:
        raise where.error(str(exc)) from None


def _parse_select(where: _Where, entry: Mapping[str, Any]) -> str | None:
    select = where.text(entry, "select")
    if select is None:
        return None
    select = select.strip()
    if select == "all":
        return None
    match = _SELECT.match(select)
    if match is None:
        raise where.bad("select", entry["select"], _SELECT_RULE)
    count = match.group(2) or match.group(3)
    if len(count) > len(str(MAX_QUESTIONS)) or int(count) > MAX_QUESTIONS:
        raise where.bad("select", select, f"{_SELECT_RULE} with N up to {MAX_QUESTIONS:_}")
    try:
        select_examples((), select)
    except ValueError:
        raise where.bad("select", entry["select"], _SELECT_RULE) from None
    return select


def _parse_task(where: _Where, entry: Mapping[str, Any]) -> str:
    if "task" not in entry:
        raise where.error("missing required key 'task'")
    task_value = entry["task"]
    try:
        task = resolve_task_name(task_value) if isinstance(task_value, str) else ""
    except ValueError as exc:
        hint = _did_you_mean(task_value, TASK_NAMES)
        raise where.error(f"key 'task': {exc}{hint}") from None
    if not task:
        raise where.bad("task", task_value, "a task name string")
    return task


def _parse_dataset(
    where: _Where,
    entry: Mapping[str, Any],
    base: Path | None,
    data_dir: Path | None,
    suite_dir: Path | None,
    suite_retriever: str,
) -> DatasetConfig | None:
    """One ``[[datasets]]`` table, or ``None`` when it has problems (all recorded)."""
    before = len(where.problems)
    where.check_keys(entry, _DATASET_KEYS)
    task = where.get(lambda: _parse_task(where, entry), "")
    name = where.get(lambda: where.name(entry.get("name", task or "dataset")), "")
    select = where.get(lambda: _parse_select(where, entry), None)
    path = where.get(lambda: _parse_path(where, entry, "path", base, data_dir, suite_dir), None)
    if task == "custom" and path is None and "path" not in entry:
        where.report(
            "task 'custom' needs key 'path': a JSON/JSONL file of {id, question, answers, "
            "[evidence]} records (it has no bundled sample)"
        )
    corpus = where.get(lambda: _parse_path(where, entry, "corpus", base, data_dir, suite_dir), None)
    retriever = where.get(lambda: where.text(entry, "retriever"), None)
    if retriever is not None:
        retriever = where.get(lambda: where.retriever(retriever), None)
    options: Mapping[str, Any] = where.get(lambda: where.table(entry, "retriever_options"), {})
    used = retriever or (suite_retriever if "retriever" not in entry else None)
    if used is not None:
        where.options(options, "retriever_options", retriever_option_names(used), repr(used))
    if len(where.problems) > before:
        return None
    return DatasetConfig(
        name=name,
        task=task,
        path=path,
        select=select,
        corpus=corpus,
        retriever=retriever,
        retriever_options=options,
    )


def _parse_critic(where: _Where, entry: Mapping[str, Any], agent: str) -> str | None:
    critic = where.text(entry, "critic")
    guided = agent.endswith("++")
    if guided and critic is None:
        raise where.error(
            f"agent {agent!r} needs key 'critic' (the critic choosing among its samples); "
            f"allowed: {_CRITIC_RULE}"
        )
    if critic is not None:
        if not guided:
            raise where.error(
                f"key 'critic' applies only to NAME++ agents, not {agent!r} "
                f"(use {agent + '++'!r} if it is an LLM agent)"
            )
        kind, _, rest = critic.partition(":")
        if not (critic in ("gold", "judge") or (kind == "rm" and rest.strip())):
            raise where.bad("critic", critic, _CRITIC_RULE)
    return critic


def _parse_agent(
    where: _Where, entry: Mapping[str, Any], protocol: str = DEFAULT_PROTOCOL
) -> AgentConfig | None:
    """One ``[[agents]]`` table, or ``None`` when it has problems (all recorded)."""
    before = len(where.problems)
    where.check_keys(entry, _AGENT_KEYS)
    agent = entry.get("agent")
    names = agent_names()
    if agent is None:
        where.report("missing required key 'agent'")
    elif agent not in names:
        hint = _did_you_mean(agent, names) if isinstance(agent, str) else ""
        where.report(f"key 'agent': got {_shown(agent)}{hint}; allowed: {', '.join(names)}")
    known = isinstance(agent, str) and agent in names
    name = where.get(lambda: where.name(entry.get("name", agent)), "")
    critic: str | None = None
    if known:
        critic = where.get(lambda: _parse_critic(where, entry, str(agent)), None)
    n: int | None = None
    if "n" in entry and known:
        if not str(agent).endswith("++"):
            where.report(f"key 'n' applies only to NAME++ agents, not {agent!r}")
        n = where.get(lambda: where.bounded_int(entry, "n", 1, MAX_CANDIDATES), None)
    options: Mapping[str, Any] = where.get(lambda: where.table(entry, "options"), {})
    if known:
        where.options(
            options, "options", agent_option_names(str(agent), protocol), f"agent {agent!r}"
        )
    if len(where.problems) > before:
        return None
    return AgentConfig(name=name, agent=str(agent), critic=critic, n=n, options=options)


def _parse_seeds(where: _Where, data: Mapping[str, Any]) -> tuple[int, ...]:
    seeds = data.get("seeds", [0])
    allowed = (
        f"a non-empty array of at most {MAX_SEEDS} distinct integers from 0 to {MAX_SEED:_}, "
        "e.g. [0, 1, 2]"
    )
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence) or not seeds:
        raise where.bad("seeds", seeds, allowed)
    if len(seeds) > MAX_SEEDS:
        raise where.bad("seeds", seeds, allowed)
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            raise where.bad("seeds", seeds, allowed)
    if len(set(seeds)) != len(seeds):
        raise where.bad("seeds", seeds, allowed)
    return tuple(seeds)


def _unique(where: _Where, table: str, names: Sequence[str]) -> None:
    seen: set[str] = set()
    for index, name in enumerate(names, 1):
        if name in seen:
            where.report(
                f"{table} #{index}: duplicate name {name!r}; give each entry a distinct 'name'"
            )
        seen.add(name)


def _combined(problems: Sequence[str], label: str) -> SuiteError:
    """One error for every problem: the message alone for one, a numbered list for more."""
    if len(problems) == 1:
        return SuiteError(problems[0])
    lines = "\n".join(f"  {i}. {problem}" for i, problem in enumerate(problems, 1))
    return SuiteError(f"{label}: {len(problems)} problems:\n{lines}")


def parse_suite(
    text_or_mapping: str | Mapping[str, Any],
    *,
    source: str | Path | None = None,
    data_dir: str | Path | None = None,
) -> Suite:
    """Validate a suite given as TOML text or an already-parsed mapping.

    Args:
        text_or_mapping: TOML text, or a mapping with the schema's keys.
        source: the file it came from: named in errors, the default ``name`` (its stem)
            and the base of relative paths when ``data_dir`` is not given.
        data_dir: the folder holding the benchmark files (the runner's ``--data-dir``);
            relative paths and ``${data_dir}`` resolve against it. It need not exist yet
            (see :meth:`Suite.check_files`).

    Raises:
        SuiteError: malformed or too deeply nested TOML, an unknown key, a wrong type, an
            unknown task, agent, retriever, option or critic, a bad ``select``, a number out
            of its documented bounds, duplicate names, a path in a symlink loop, or no
            datasets or agents. Every problem of the suite is listed in one error, each
            naming the file, the table and the key, what was given and what is allowed
            (with a "did you mean" for near misses).
    """
    label = str(source) if source is not None else "<suite>"
    problems: list[str] = []
    where = _Where(label, problems)
    if isinstance(text_or_mapping, str):
        try:
            data: Mapping[str, Any] = tomllib.loads(text_or_mapping)
        except tomllib.TOMLDecodeError as exc:
            raise where.error(f"not valid TOML: {exc}") from None
        except RecursionError:
            raise where.error("not valid TOML: arrays or tables nested too deeply") from None
    elif isinstance(text_or_mapping, Mapping):
        data = text_or_mapping
    else:
        raise TypeError(
            f"parse_suite takes TOML text or a mapping, got {type(text_or_mapping).__name__}"
        )
    _refuse_secrets(where, data)
    where.check_keys(data, _SUITE_KEYS)
    suite_dir = _resolve(Path(source).expanduser(), "suite file").parent if source else None
    data_path = _resolve(Path(data_dir).expanduser(), "--data-dir") if data_dir else None
    base = data_path or suite_dir

    default_name = Path(source).stem if source is not None else None
    if "name" not in data and default_name is None:
        where.report("missing key 'name' (required when the suite has no file)")
    name = where.get(lambda: where.name(data.get("name", default_name)), "")
    description: str | None = where.get(lambda: where.text(data, "description", ""), "")
    given: str | None = where.get(lambda: where.text(data, "retriever", "bm25"), "bm25")
    retriever = where.get(lambda: where.retriever(given or "bm25"), "bm25")
    retriever_options: Mapping[str, Any] = where.get(
        lambda: where.table(data, "retriever_options"), {}
    )
    if "retriever" not in data or retriever == data.get("retriever"):
        where.options(
            retriever_options,
            "retriever_options",
            retriever_option_names(retriever),
            repr(retriever),
        )
    k = where.get(lambda: where.bounded_int(data, "k", 5, MAX_K), 5)
    max_steps = where.get(lambda: where.bounded_int(data, "max_steps", 10, MAX_STEPS), 10)
    batch_size = where.get(lambda: where.bounded_int(data, "batch_size", 32, MAX_BATCH_SIZE), 32)
    seeds: tuple[int, ...] = where.get(lambda: _parse_seeds(where, data), (0,))

    llm_table: Mapping[str, Any] = where.get(lambda: where.table(data, "llm"), {})
    llm_where = where.at("[llm]")
    llm_where.check_keys(llm_table, _LLM_KEYS)
    llm = LLMConfig(
        spec=llm_where.get(
            lambda: _check_llm_spec(llm_table.get("spec", ""), llm_where.label), None
        ),
        options=llm_where.get(lambda: llm_where.table(llm_table, "options"), {}),
    )
    protocol = where.get(lambda: _parse_protocol(data), DEFAULT_PROTOCOL) or DEFAULT_PROTOCOL
    summarizer_table: Mapping[str, Any] = where.get(lambda: where.table(data, "summarizer"), {})
    summarizer_where = where.at("[summarizer]")
    summarizer_where.check_keys(summarizer_table, _LLM_KEYS)
    summarizer = LLMConfig(
        spec=summarizer_where.get(
            lambda: _check_llm_spec(summarizer_table.get("spec", ""), summarizer_where.label),
            None,
        ),
        options=summarizer_where.get(
            lambda: summarizer_where.table(summarizer_table, "options"), {}
        ),
    )
    judge = where.get(lambda: _parse_judge(where, data), LLMConfig()) or LLMConfig()

    datasets = [
        _parse_dataset(
            where.at(f"[[datasets]] #{i}{_entry_name(e)}"),
            e,
            base,
            data_path,
            suite_dir,
            retriever,
        )
        for i, e in _entries(where, data, "datasets")
    ]
    agents = [
        _parse_agent(where.at(f"[[agents]] #{i}{_entry_name(e)}"), e, protocol)
        for i, e in _entries(where, data, "agents")
    ]
    _unique(where, "[[datasets]]", [d.name for d in datasets if d is not None])
    _unique(where, "[[agents]]", [a.name for a in agents if a is not None])
    if problems:
        raise _combined(problems, label)
    return Suite(
        name=name,
        description=description or "",
        datasets=tuple(d for d in datasets if d is not None),
        agents=tuple(a for a in agents if a is not None),
        llm=llm,
        retriever=retriever,
        retriever_options=retriever_options,
        k=k,
        max_steps=max_steps,
        seeds=seeds,
        batch_size=batch_size,
        source=str(_resolve(Path(source).expanduser(), "suite file")) if source else None,
        data_dir=str(data_path) if data_path is not None else None,
        protocol=protocol,
        summarizer=summarizer,
        judge=judge,
    )


def _parse_judge(where: _Where, data: Mapping[str, Any]) -> LLMConfig:
    """The suite's judge LLM: ``judge = "SPEC"`` or a ``[judge]`` table (default: none)."""
    value = data.get("judge", {})
    if isinstance(value, str):
        return LLMConfig(spec=_check_llm_spec(value, f"{where.label}: key 'judge'"))
    judge_where = where.at("[judge]")
    table = where.table(data, "judge")
    judge_where.check_keys(table, _LLM_KEYS)
    return LLMConfig(
        spec=_check_llm_spec(table.get("spec", ""), judge_where.label),
        options=judge_where.table(table, "options"),
    )


def _parse_protocol(data: Mapping[str, Any]) -> str:
    """The suite's ``protocol`` key (default ``"raggym"``), checked."""
    try:
        return check_protocol(data.get("protocol", DEFAULT_PROTOCOL))
    except ValueError as exc:
        raise SuiteError(f"key 'protocol': {exc}") from None


def _entry_name(entry: Mapping[str, Any]) -> str:
    """`` (name 'x')`` for an entry's error label, from its name, task or agent key."""
    for key in ("name", "task", "agent"):
        value = entry.get(key)
        if isinstance(value, str):
            return f" ({key} {_shown(value)})"
    return ""


def available_suites() -> list[str]:
    """Names of the packaged suites (``benchmarks/suites/<name>.toml``), sorted."""
    return sorted(path.stem for path in SUITES_DIR.glob("*.toml"))


def load_suite(name_or_path: str | Path, *, data_dir: str | Path | None = None) -> Suite:
    """Load a packaged suite by name (``"smoke"``) or a suite file by path.

    A bare name (no ``.toml`` suffix, no folder) is looked up among the packaged suites;
    anything else is a path.

    Args:
        name_or_path: a name from :func:`available_suites` or a TOML file path.
        data_dir: the folder holding the benchmark files (see :func:`parse_suite`).

    Raises:
        FileNotFoundError: no such packaged suite (the message lists them) or file.
        SuiteError: the file does not follow the schema (see :func:`parse_suite`).
    """
    text = str(name_or_path)
    is_name = (
        not isinstance(name_or_path, Path)
        and not text.endswith(".toml")
        and "/" not in text
        and "\\" not in text
    )
    if is_name and text in available_suites():
        path = SUITES_DIR / f"{text}.toml"
    else:
        path = Path(text).expanduser()
        _resolve(path, "suite file")  # a symlink loop is a SuiteError, not "not found"
        if not path.is_file():
            if is_name:
                raise FileNotFoundError(
                    f"no packaged suite named {text!r} and no such file; packaged suites: "
                    f"{', '.join(available_suites())}"
                )
            raise FileNotFoundError(f"{path}: no such suite file")
    try:
        content = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SuiteError(f"{path}: not UTF-8 text ({exc})") from None
    except OSError as exc:
        raise SuiteError(f"{path}: cannot read the suite file ({exc.strerror or exc})") from None
    return parse_suite(content, source=path, data_dir=data_dir)
