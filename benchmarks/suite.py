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
    retriever_options = {}       # passed to the retriever builder
    k = 5                        # documents per search (positive int)
    max_steps = 10               # actions per episode (positive int)
    seeds = [0]                  # one run of every cell per seed (non-negative ints)
    batch_size = 32              # episodes live at once (positive int)

    [llm]
    spec = ""                    # "" = none: the runner's --llm must give it
    options = {}                 # passed to make_llm (e.g. concurrency)

    [[datasets]]                 # required, at least one
    task = "hotpotqa"            # required: hotpotqa, 2wikimultihopqa (2wiki), bamboogle,
                                 #   medqa or custom
    name = "<task>"              # unique within the suite
    path = "hotpotqa/dev.json"   # question file; omitted: the bundled sample (required
                                 #   for custom); "hub" or "hub:REPO[:CONFIG[:SPLIT]]"
    select = "all"               # all, first:N, last:N or sample:N@SEED
    corpus = "wiki.jsonl"        # corpus file or folder; omitted: the task's default
    retriever = "<suite's>"      # this dataset's own retriever
    retriever_options = {}       # alone with its own retriever, else merged over the suite's

    [[agents]]                   # required, at least one
    agent = "re2search++"        # required: a name from raggym.agents.registry.agent_names()
    name = "<agent>"             # unique within the suite
    critic = "rm:runs/critic"    # NAME++ agents only (required there): gold, judge, rm:PATH
    n = 10                       # NAME++ agents only: candidates sampled per step
    options = {}                 # passed to the agent's constructor

Paths: ``path`` and ``corpus`` may start with ``${data_dir}`` (the runner's ``--data-dir``)
or ``${suite_dir}`` (the suite file's folder). Other relative paths resolve against
``data_dir`` when one is given, else against the suite file's folder. Nothing is opened
while loading: :meth:`Suite.check_files` lists every missing file at once.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from raggym.agents.registry import AGENTS, agent_names
from raggym_env.retrieval.factory import available_retrievers
from raggym_env.tasks import resolve_task_name, select_examples
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
_PLACEHOLDER = re.compile(r"\$\{[^}]*\}")
_LLM_KINDS = ("openai", "hf", "vllm")
_LLM_RULE = "'openai:URL:MODEL', 'hf:PATH', 'vllm:MODEL' or '' (none: give --llm)"
_CRITIC_RULE = "'gold', 'judge' or 'rm:PATH'"

_SUITE_KEYS = (
    "name",
    "description",
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
        """Return a JSON-ready mapping (the schema's keys)."""
        return {"spec": self.spec, "options": _json_safe(self.options)}


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

    def __post_init__(self) -> None:
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

    def with_overrides(self, llm: str | LLMConfig | None = None, limit: int | None = None) -> Suite:
        """Return a copy with another LLM and/or each dataset's selection capped at ``limit``.

        Args:
            llm: an LLM spec string (keeps the suite's LLM options) or an ``LLMConfig``;
                ``None`` keeps the suite's.
            limit: a positive cap on every dataset's selection that keeps its kind:
                ``last:1000`` becomes ``last:20`` for ``limit=20``, ``sample:N@S`` becomes
                ``sample:min(N, limit)@S`` (a fresh sample of that size) and an
                unrestricted dataset becomes ``first:limit``. ``None`` changes nothing.

        Raises:
            SuiteError: a malformed LLM spec or a limit that is not a positive int.
        """
        new_llm = self.llm
        if isinstance(llm, LLMConfig):
            new_llm = llm
        elif llm is not None:
            new_llm = LLMConfig(_check_llm_spec(llm, "with_overrides(llm=...)"), self.llm.options)
        datasets = self.datasets
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise SuiteError(f"with_overrides: limit must be a positive int, got {limit!r}")
            datasets = tuple(
                dataclasses.replace(d, select=_cap_select(d.select, limit)) for d in datasets
            )
        return dataclasses.replace(self, llm=new_llm, datasets=datasets)

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
class _Where:
    """A location in a suite (file and table) that builds errors naming it."""

    def __init__(self, label: str) -> None:
        self.label = label

    def error(self, message: str) -> SuiteError:
        return SuiteError(f"{self.label}: {message}")

    def bad(self, key: str, value: Any, allowed: str) -> SuiteError:
        return self.error(f"key {key!r}: got {value!r}; allowed: {allowed}")

    def check_keys(self, table: Mapping[str, Any], allowed: Sequence[str]) -> None:
        unknown = [key for key in table if key not in allowed]
        if unknown:
            raise self.error(
                f"unknown key(s) {', '.join(repr(k) for k in unknown)}; "
                f"allowed keys: {', '.join(allowed)}"
            )

    def text(self, table: Mapping[str, Any], key: str, default: str | None = None) -> str | None:
        value = table.get(key, default)
        if value is not None and not isinstance(value, str):
            raise self.bad(key, value, "a string")
        return value

    def positive_int(self, table: Mapping[str, Any], key: str, default: int) -> int:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.bad(key, value, "a positive integer")
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

    def retriever(self, value: Any) -> None:
        names = available_retrievers()
        if value not in names:
            raise self.bad("retriever", value, ", ".join(names))


def _check_llm_spec(spec: Any, where: str) -> str | None:
    """Return a syntactically valid LLM spec (``""`` becomes ``None``), else raise."""
    if not isinstance(spec, str):
        raise SuiteError(f"{where}: key 'spec': got {spec!r}; allowed: {_LLM_RULE}")
    spec = spec.strip()
    if not spec:
        return None
    kind, _, rest = spec.partition(":")
    if kind not in _LLM_KINDS or not rest.strip():
        raise SuiteError(f"{where}: key 'spec': got {spec!r}; allowed: {_LLM_RULE}")
    return spec


def _entries(where: _Where, data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = data.get(key)
    table = f"[[{key}]]"
    if value is None:
        raise where.error(f"no {table} tables: a suite needs at least one")
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise where.bad(key, value, f"an array of tables ({table})")
    if not value:
        raise where.error(f"{table} is empty: a suite needs at least one")
    for index, entry in enumerate(value, 1):
        if not isinstance(entry, Mapping):
            raise where.error(f"{table} #{index}: got {entry!r}; allowed: a table")
    return list(value)


def _resolve_path(
    value: str, base: Path | None, data_dir: Path | None, suite_dir: Path | None
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
    return str(path.resolve()) if path.is_absolute() else str(path)


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
    return _resolve_path(value, base, data_dir, suite_dir)


def _parse_dataset(
    where: _Where,
    entry: Mapping[str, Any],
    base: Path | None,
    data_dir: Path | None,
    suite_dir: Path | None,
) -> DatasetConfig:
    where.check_keys(entry, _DATASET_KEYS)
    if "task" not in entry:
        raise where.error("missing required key 'task'")
    task_value = entry["task"]
    try:
        task = resolve_task_name(task_value) if isinstance(task_value, str) else ""
    except ValueError as exc:
        raise where.error(f"key 'task': {exc}") from None
    if not task:
        raise where.bad("task", task_value, "a task name string")
    name = where.name(entry.get("name", task))
    select = where.text(entry, "select")
    if select is not None:
        select = select.strip()
        if select == "all":
            select = None
        else:
            try:
                select_examples((), select)
            except ValueError:
                raise where.bad("select", entry["select"], _SELECT_RULE) from None
    path = _parse_path(where, entry, "path", base, data_dir, suite_dir)
    if task == "custom" and path is None:
        raise where.error(
            "task 'custom' needs key 'path': a JSON/JSONL file of {id, question, answers, "
            "[evidence]} records (it has no bundled sample)"
        )
    corpus = _parse_path(where, entry, "corpus", base, data_dir, suite_dir)
    retriever = where.text(entry, "retriever")
    if retriever is not None:
        where.retriever(retriever)
    return DatasetConfig(
        name=name,
        task=task,
        path=path,
        select=select,
        corpus=corpus,
        retriever=retriever,
        retriever_options=where.table(entry, "retriever_options"),
    )


def _parse_agent(where: _Where, entry: Mapping[str, Any]) -> AgentConfig:
    where.check_keys(entry, _AGENT_KEYS)
    if "agent" not in entry:
        raise where.error("missing required key 'agent'")
    agent = entry["agent"]
    names = agent_names()
    if agent not in names:
        raise where.bad("agent", agent, ", ".join(names))
    name = where.name(entry.get("name", agent))
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
    n: int | None = None
    if "n" in entry:
        if not guided:
            raise where.error(f"key 'n' applies only to NAME++ agents, not {agent!r}")
        n = where.positive_int(entry, "n", 1)
    return AgentConfig(
        name=name, agent=agent, critic=critic, n=n, options=where.table(entry, "options")
    )


def _parse_seeds(where: _Where, data: Mapping[str, Any]) -> tuple[int, ...]:
    seeds = data.get("seeds", [0])
    allowed = "a non-empty array of distinct non-negative integers, e.g. [0, 1, 2]"
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence) or not seeds:
        raise where.bad("seeds", seeds, allowed)
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise where.bad("seeds", seeds, allowed)
    if len(set(seeds)) != len(seeds):
        raise where.bad("seeds", seeds, allowed)
    return tuple(seeds)


def _unique(where: _Where, table: str, names: Sequence[str]) -> None:
    seen: set[str] = set()
    for index, name in enumerate(names, 1):
        if name in seen:
            raise where.error(
                f"{table} #{index}: duplicate name {name!r}; give each entry a distinct 'name'"
            )
        seen.add(name)


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
        SuiteError: malformed TOML, an unknown key, a wrong type, an unknown task, agent,
            retriever or critic, a bad ``select``, a non-positive ``k``/``max_steps``/
            ``batch_size``, duplicate names, or no datasets or agents. The message names
            the file, the table and the key, what was given and what is allowed.
    """
    label = str(source) if source is not None else "<suite>"
    where = _Where(label)
    if isinstance(text_or_mapping, str):
        try:
            data: Mapping[str, Any] = tomllib.loads(text_or_mapping)
        except tomllib.TOMLDecodeError as exc:
            raise where.error(f"not valid TOML: {exc}") from None
    elif isinstance(text_or_mapping, Mapping):
        data = text_or_mapping
    else:
        raise TypeError(
            f"parse_suite takes TOML text or a mapping, got {type(text_or_mapping).__name__}"
        )
    where.check_keys(data, _SUITE_KEYS)
    suite_dir = Path(source).expanduser().resolve().parent if source is not None else None
    data_path = Path(data_dir).expanduser().resolve() if data_dir is not None else None
    base = data_path or suite_dir

    default_name = Path(source).stem if source is not None else None
    if "name" not in data and default_name is None:
        raise where.error("missing key 'name' (required when the suite has no file)")
    name = where.name(data.get("name", default_name))
    description = where.text(data, "description", "") or ""
    retriever = where.text(data, "retriever", "bm25") or "bm25"
    where.retriever(retriever)
    retriever_options = where.table(data, "retriever_options")
    k = where.positive_int(data, "k", 5)
    max_steps = where.positive_int(data, "max_steps", 10)
    batch_size = where.positive_int(data, "batch_size", 32)
    seeds = _parse_seeds(where, data)

    llm_table = where.table(data, "llm")
    llm_where = _Where(f"{label}: [llm]")
    llm_where.check_keys(llm_table, _LLM_KEYS)
    llm = LLMConfig(
        spec=_check_llm_spec(llm_table.get("spec", ""), llm_where.label),
        options=llm_where.table(llm_table, "options"),
    )

    datasets = [
        _parse_dataset(
            _Where(f"{label}: [[datasets]] #{i}{_entry_name(e)}"), e, base, data_path, suite_dir
        )
        for i, e in enumerate(_entries(where, data, "datasets"), 1)
    ]
    agents = [
        _parse_agent(_Where(f"{label}: [[agents]] #{i}{_entry_name(e)}"), e)
        for i, e in enumerate(_entries(where, data, "agents"), 1)
    ]
    _unique(where, "[[datasets]]", [d.name for d in datasets])
    _unique(where, "[[agents]]", [a.name for a in agents])
    return Suite(
        name=name,
        description=description,
        datasets=tuple(datasets),
        agents=tuple(agents),
        llm=llm,
        retriever=retriever,
        retriever_options=retriever_options,
        k=k,
        max_steps=max_steps,
        seeds=seeds,
        batch_size=batch_size,
        source=str(Path(source).expanduser().resolve()) if source is not None else None,
        data_dir=str(data_path) if data_path is not None else None,
    )


def _entry_name(entry: Mapping[str, Any]) -> str:
    """`` (name 'x')`` for an entry's error label, from its name, task or agent key."""
    for key in ("name", "task", "agent"):
        value = entry.get(key)
        if isinstance(value, str):
            return f" ({key} {value!r})"
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
    return parse_suite(content, source=path, data_dir=data_dir)
