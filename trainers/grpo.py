"""Online RL in the environment: GRPO through TRL's ``environment_factory``, with LoRA.

The policy talks to :class:`~raggym_env.env.RAGEnv` through two tools, ``search`` and
``answer``, exposed by :class:`RAGToolEnv`. TRL creates one ``RAGToolEnv`` per rollout,
resets it with the dataset row (one row per question of the task), renders the tools into
the chat template, runs the tool-calling loop and scores each finished rollout with
:meth:`RAGToolEnv.get_reward`: the env's outcome metric (EM, F1 or accuracy, as the task
and the env's reward settings define), plus the env's process reward terms and a format
term, each weighted by :class:`GRPOTrainConfig`.

Masking: the tokens of every tool result (the retrieved documents, the confirmation of an
answer, an error string) are added by TRL with ``tool_mask`` 0, so the policy-gradient loss
covers only tokens the model generated.

TRL's ``environment_factory`` (with environment-owned rewards through ``get_reward``) is
marked experimental by TRL; this module needs ``trl>=1.16`` and ``transformers>=5.2``
(``pip install 'raggym[grpo]'``). The model's chat template must be one TRL can parse tool
calls from (Qwen 2.5/3/3.5, Llama 3.1/3.2, GLM-4-MoE, gpt-oss, ...).

Example::

    from raggym.trainers.grpo import GRPOTrainConfig, train_grpo

    result = train_grpo(GRPOTrainConfig(model="Qwen/Qwen3-0.6B", output_dir="runs/grpo",
                                        task="hotpotqa", retriever="bm25", max_steps=200))
    llm = TransformersLLM(result.adapter_dir)  # base + adapter, by path
"""

from __future__ import annotations

import importlib.metadata
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from raggym.trainers.config import TrainConfig, config_field
from raggym.trainers.training import (
    TrainingMethod,
    TrainResult,
    require_module,
    run_training,
)
from raggym_env.actions import Answer, Search
from raggym_env.availability import MissingDependencyError
from raggym_env.cli import parse_options
from raggym_env.env import EnvFactory, RAGEnv, rag_env_of
from raggym_env.types import QAExample

__all__ = [
    "GRPO_INSTRUCTIONS",
    "MIN_TRANSFORMERS",
    "MIN_TRL",
    "VLLM_MODES",
    "GRPOTrainConfig",
    "RAGToolEnv",
    "RAGToolEnvFactory",
    "RewardWeights",
    "RolloutStats",
    "grpo_dataset",
    "rollout_stats_callback",
    "train_grpo",
]

MIN_TRL = "1.16"
"""The oldest TRL whose ``GRPOTrainer`` this adapter is tested with (environment-owned
rewards through ``get_reward`` and per-row ``reset`` kwargs)."""

MIN_TRANSFORMERS = "5.2"
"""What TRL itself asks for when an ``environment_factory`` is given."""

VLLM_MODES = ("colocate", "server")
"""How TRL runs vLLM for generation: inside the training process, or as a separate server."""

GRPO_INSTRUCTIONS = (
    "Answer the question using the tools. Call search with a focused query whenever a fact "
    "is missing; each call returns numbered documents. When the documents support an "
    "answer, call answer once with a short phrase (or the option letter for a "
    "multiple-choice question). The episode ends with the answer."
)
"""The system message of every GRPO prompt (the question follows in the user message)."""

_ENDED = "Error: the episode has ended; no more tool calls are accepted."


@dataclass(frozen=True)
class RewardWeights:
    """How :meth:`RAGToolEnv.get_reward` combines its terms.

    Attributes:
        outcome: weight of the env's outcome metric on the answer (0 without an answer).
        process: weight of the sum of the env's process reward terms over the episode
            (evidence gain, search cost, repeated-query and invalid-action penalties; all
            off unless switched on in the env's reward settings).
        format: weight of the format term: 1 when the rollout answered through the
            ``answer`` tool and every tool call it made was valid, else 0.
    """

    outcome: float = 1.0
    process: float = 1.0
    format: float = 0.0

    def __post_init__(self) -> None:
        for name in ("outcome", "process", "format"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"reward weight {name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"reward weight {name} must be finite, got {value!r}")


class RolloutStats:
    """A thread-safe collector of per-rollout records, drained by the logging callback.

    Each finished rollout (scored by :meth:`RAGToolEnv.get_reward`) adds one record:
    ``reward``, ``outcome``, ``process``, ``format``, ``searches``, ``invalid_actions``,
    ``tool_failures``, ``answered``, and the env's ``em``/``f1`` when it answered.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[dict[str, float]] = []
        self.total = 0

    def add(self, record: Mapping[str, float]) -> None:
        """Add one rollout's record."""
        with self._lock:
            self._pending.append(dict(record))
            self.total += 1

    def drain(self) -> list[dict[str, float]]:
        """The records added since the last drain (and forget them)."""
        with self._lock:
            records, self._pending = self._pending, []
        return records

    @staticmethod
    def summarize(records: Sequence[Mapping[str, float]]) -> dict[str, float]:
        """Means of every key over ``records``, as ``env/<key>`` log entries."""
        keys = sorted({key for record in records for key in record})
        summary: dict[str, float] = {}
        for key in keys:
            values = [float(r[key]) for r in records if key in r]
            if values:
                summary[f"env/{key}"] = sum(values) / len(values)
        if records:
            summary["env/rollouts"] = float(len(records))
        return summary


def _format_documents(results: Sequence[Any]) -> str:
    if not results:
        return "No documents found."
    blocks = []
    for rank, document in enumerate(results, 1):
        blocks.append(f"[{rank}] {document['title']}\n{document['text']}")
    return "\n\n".join(blocks)


def _question_text(example: QAExample) -> str:
    lines = [f"Question: {example.question}"]
    for letter, text in (example.options or {}).items():
        lines.append(f"{letter}. {text}")
    return "\n".join(lines)


class RAGToolEnv:
    """One rollout's tools over a :class:`RAGEnv`, in the shape TRL's GRPO expects.

    TRL calls :meth:`reset` with the dataset row, exposes every public method but
    ``reset``/``get_reward`` as a tool (its schema comes from the type hints and the
    docstring), and calls :meth:`get_reward` once the rollout is over. Tool methods never
    raise: misuse (an empty query, a call after the answer, a spent step budget) returns an
    error string the model reads, and is counted as a tool-call failure.

    Args:
        env: the environment (a ``RAGEnv`` or a wrapper around one, e.g. from ``gym.make``).
        weights: how the reward terms are combined.
        stats: where each scored rollout's record goes (for the logging callback).
    """

    def __init__(
        self,
        env: Any,
        weights: RewardWeights | None = None,
        stats: RolloutStats | None = None,
    ) -> None:
        self.env = env
        self.rag_env: RAGEnv = rag_env_of(env)
        self.weights = weights or RewardWeights()
        self.stats = stats
        self._reset_counters()
        self._active = False

    def _reset_counters(self) -> None:
        self.searches = 0
        self.invalid_actions = 0
        self.tool_failures = 0
        self.answered = False
        self.outcome = 0.0
        self.process = 0.0
        self.final_metrics: dict[str, float] = {}
        self._recorded = False

    def reset(self, **kwargs: Any) -> str:
        """Start an episode; return the question text TRL appends to the user message.

        A row's ``example_id`` (else its ``question`` text) selects the question; without
        either the env draws one with its own seeded generator. Other row fields (TRL
        passes the whole row, ``prompt`` included) are ignored.
        """
        options: dict[str, Any] = {}
        example_id = kwargs.get("example_id")
        question = kwargs.get("question")
        if example_id is not None:
            options["example_id"] = str(example_id)
        elif isinstance(question, str):
            for index, candidate in enumerate(self.rag_env.examples):
                if candidate.question == question:
                    options["index"] = index
                    break
        self.env.reset(options=options or None)
        self._reset_counters()
        self._active = True
        example = self.rag_env.current_example
        if example is None:  # RAGEnv.reset always sets it
            raise RuntimeError("the environment did not start an episode")
        return _question_text(example)

    def search(self, query: str) -> str:
        """Search the document collection and return the best-matching documents.

        Args:
            query: what to look for, as a short search-engine query.

        Returns:
            The retrieved documents, numbered, each with its title and text.
        """
        if not self._active:
            self.tool_failures += 1
            return _ENDED
        if not isinstance(query, str) or not query.strip():
            self._invalid_step()
            return "Error: the query is empty; call search with a non-blank query."
        observation, reward, terminated, truncated, info = self.env.step(Search(query))
        self.process += float(reward)
        self._after_step(terminated, truncated, info)
        if info.get("retrieval_error"):
            self.tool_failures += 1
            return f"Error: the search failed ({info['retrieval_error']})."
        self.searches += 1
        history = observation["history"]
        documents = history[-1]["documents"] if history else ()
        text = _format_documents(documents)
        if truncated:
            text += "\n\nThe step budget is spent; the episode has ended without an answer."
        return text

    def answer(self, text: str) -> str:
        """Submit the final answer; this ends the episode.

        Args:
            text: the answer, as a short phrase (or the option letter for multiple choice).

        Returns:
            A confirmation that the answer was recorded.
        """
        if not self._active:
            self.tool_failures += 1
            return _ENDED
        if not isinstance(text, str) or not text.strip():
            self._invalid_step()
            return "Error: the answer is empty; call answer with a non-blank answer."
        _, reward, terminated, truncated, info = self.env.step(Answer(text))
        components = dict(info.get("reward_components") or {})
        self.outcome = float(components.pop("outcome", 0.0))
        self.process += float(reward) - self.outcome
        self.answered = bool(terminated)
        self._after_step(terminated, truncated, info)
        return "Answer recorded. The episode is over."

    def get_reward(self) -> float:
        """The rollout's reward: weighted outcome, process and format terms.

        Outcome and format are 0 for a rollout that never answered; process terms count
        either way. The first call records the rollout's statistics for logging.
        """
        weights = self.weights
        format_ok = float(self.answered and self.tool_failures == 0 and not self.invalid_actions)
        reward = (
            weights.outcome * self.outcome
            + weights.process * self.process
            + weights.format * format_ok
        )
        if not self._recorded and self.stats is not None:
            record = {
                "reward": reward,
                "outcome": self.outcome,
                "process": self.process,
                "format": format_ok,
                "searches": float(self.searches),
                "invalid_actions": float(self.invalid_actions),
                "tool_failures": float(self.tool_failures),
                "answered": float(self.answered),
            }
            for key in ("em", "f1"):
                if key in self.final_metrics:
                    record[key] = self.final_metrics[key]
            self.stats.add(record)
        self._recorded = True
        return float(reward)

    def _invalid_step(self) -> None:
        """Count an unusable call and spend an env step on it (the env scores it invalid)."""
        self.invalid_actions += 1
        self.tool_failures += 1
        _, reward, terminated, truncated, info = self.env.step("")
        self.process += float(reward)
        self._after_step(terminated, truncated, info)

    def _after_step(self, terminated: bool, truncated: bool, info: Mapping[str, Any]) -> None:
        if terminated or truncated:
            self._active = False
            final = info.get("metrics")
            if isinstance(final, Mapping):
                self.final_metrics = {
                    k: float(v) for k, v in final.items() if isinstance(v, (int, float))
                }


class RAGToolEnvFactory:
    """Builds one :class:`RAGToolEnv` per rollout over one shared task, corpus and retriever.

    Args:
        make_env: a callable returning a fresh env (``RAGEnv`` or a wrapper); default an
            :class:`~raggym_env.env.EnvFactory` of ``env_kwargs``, which loads the task
            and index once and shares them with every later env.
        env_id: a registered id (``"RAGGym/HotpotQA-v0"``) built with ``gym.make`` and
            ``env_kwargs`` instead.
        env_kwargs: :class:`RAGEnv` arguments (``task``, ``data_path``, ``select``,
            ``corpus``, ``retriever``, ``retriever_options``, ``k``, ``max_steps``,
            ``reward``); a remote retriever is ``retriever="remote"`` with its URL in
            ``retriever_options``.
        weights: the reward weights of every env.
        stats: the shared collector (default: a new one, as ``self.stats``).
    """

    def __init__(
        self,
        make_env: Callable[[], Any] | None = None,
        *,
        env_id: str | None = None,
        env_kwargs: Mapping[str, Any] | None = None,
        weights: RewardWeights | None = None,
        stats: RolloutStats | None = None,
    ) -> None:
        kwargs = dict(env_kwargs or {})
        if make_env is None:
            make_env = EnvFactory(**kwargs) if env_id is None else _gym_maker(env_id, kwargs)
        elif env_id is not None:
            raise ValueError("give make_env or env_id, not both")
        self.make_env = make_env
        self.weights = weights or RewardWeights()
        self.stats = stats if stats is not None else RolloutStats()
        self._first: RAGToolEnv | None = None

    def __call__(self) -> RAGToolEnv:
        """A new rollout environment."""
        tool_env = RAGToolEnv(self.make_env(), self.weights, self.stats)
        if self._first is None:
            self._first = tool_env
        return tool_env

    @property
    def examples(self) -> tuple[QAExample, ...]:
        """The questions the environments pose."""
        if self._first is None:
            self()
        assert self._first is not None
        return self._first.rag_env.examples


def _gym_maker(env_id: str, kwargs: Mapping[str, Any]) -> Callable[[], Any]:
    """``gym.make`` of ``env_id``; later envs share the first one's task and retriever."""
    import gymnasium as gym

    first: list[RAGEnv] = []

    def make() -> Any:
        if not first:
            env = gym.make(env_id, **kwargs)
            first.append(rag_env_of(env))
            return env
        shared = {k: v for k, v in kwargs.items() if k in ("k", "max_steps", "reward")}
        return gym.make(env_id, task=first[0].task, retriever=first[0].retriever, **shared)

    return make


def grpo_dataset(examples: Sequence[QAExample], instructions: str = GRPO_INSTRUCTIONS) -> Any:
    """One conversational prompt row per question, for ``GRPOTrainer``.

    The user message is empty: :meth:`RAGToolEnv.reset` returns the question and TRL
    appends it. ``example_id`` and ``question`` travel with the row to ``reset``.

    Raises:
        ValueError: no questions.
    """
    if not examples:
        raise ValueError("the task has no questions to train on")
    datasets = require_module("datasets")
    prompt = [{"role": "system", "content": instructions}, {"role": "user", "content": ""}]
    return datasets.Dataset.from_list(
        [{"prompt": prompt, "example_id": ex.id, "question": ex.question} for ex in examples]
    )


def _transformers_callback_base() -> type:
    base: type = require_module("transformers").TrainerCallback
    return base


def _make_callback_class() -> type:
    base = _transformers_callback_base()

    class _Callback(base):  # type: ignore[misc, valid-type]
        edits_logs = True

        def __init__(self, stats: RolloutStats) -> None:
            self.stats = stats
            self.history: list[dict[str, float]] = []

        def on_log(
            self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any
        ) -> Any:
            records = self.stats.drain()
            if not records or logs is None:
                return control
            summary = RolloutStats.summarize(records)
            logs.update(summary)
            entry = state.log_history[-1] if state.log_history else None
            if isinstance(entry, dict) and entry.get("step") == state.global_step:
                entry.update(summary)
            self.history.append({"step": float(state.global_step), **summary})
            return control

    _Callback.__name__ = _Callback.__qualname__ = "RolloutStatsCallback"
    return _Callback


def rollout_stats_callback(stats: RolloutStats) -> Any:
    """A ``transformers.TrainerCallback`` adding the rollouts' means to every log entry.

    (Its class derives from ``TrainerCallback``, so it is built here, when transformers is
    imported, not at module import.)

    At each log it drains ``stats`` and adds ``env/reward``, ``env/outcome``,
    ``env/process``, ``env/format``, ``env/searches``, ``env/invalid_actions``,
    ``env/tool_failures``, ``env/answered``, ``env/em``/``env/f1`` and ``env/rollouts`` to
    the log (and to the trainer's log history). TRL logs its own ``reward``,
    ``rewards/RAGToolEnv/mean`` and ``tools/failure_frequency`` next to them.
    """
    return _make_callback_class()(stats)


@dataclass
class GRPOTrainConfig(TrainConfig):
    """GRPO settings: TRL's online RL in the environment, with LoRA on by default.

    See :class:`~raggym.trainers.config.TrainConfig` for the shared fields. The env fields
    (``task`` ... ``invalid_action_penalty``) build the :class:`RAGEnv` of every rollout.
    ``per_device_batch_size x gradient_accumulation_steps`` rollouts are generated per
    round, so it must be a multiple of ``num_generations``.
    """

    learning_rate: float = config_field(1e-6, "peak learning rate (AdamW)", "--lr")
    per_device_batch_size: int = config_field(
        8, "rollouts per device per forward pass", "--batch-size"
    )
    gradient_accumulation_steps: int = config_field(
        1, "forward passes per optimizer step (rollouts per step = batch size x this x devices)"
    )
    num_generations: int = config_field(
        8, "rollouts per question (the group whose rewards are compared)"
    )
    max_completion_length: int = config_field(
        1024, "most tokens of a whole rollout after the prompt (model turns plus tool results)"
    )
    max_tool_calling_iterations: int | None = config_field(
        None, "most tool-calling rounds per rollout (default: until the env's step budget)"
    )
    beta: float = config_field(
        0.0, "KL penalty towards the base model (0: none and no reference forward pass)"
    )
    temperature: float = config_field(1.0, "sampling temperature of the rollouts")
    use_vllm: bool = config_field(False, "generate with vLLM (GPU only)")
    vllm_mode: str = config_field(
        "colocate",
        "colocate (vLLM inside the training process) or server (a separate trl vllm-serve)",
        choices=VLLM_MODES,
    )
    vllm_server_url: str | None = config_field(
        None, "base URL of the vLLM server in server mode (default: TRL's localhost:8000)"
    )
    env_id: str | None = config_field(
        None, "a registered env id (e.g. RAGGym/HotpotQA-v0) built with gym.make instead of task"
    )
    task: str = config_field(
        "hotpotqa", "questions: hotpotqa, 2wikimultihopqa, bamboogle, medqa or custom"
    )
    data_path: str | None = config_field(
        None, "the task's question file (default: the bundled sample)"
    )
    select: str | None = config_field(
        None, "which questions: first:N, last:N or sample:N@SEED (default: all)"
    )
    corpus: str | None = config_field(
        None, "corpus file or folder (default: the task's pooled context paragraphs)"
    )
    retriever: str = config_field(
        "bm25", "retriever backend (bm25, dense, hybrid, remote, fake...)"
    )
    retriever_options: tuple[str, ...] = config_field(
        (), "retriever options as KEY=VALUE (VALUE parsed as JSON when it can be), e.g. url=..."
    )
    k: int = config_field(5, "documents returned per search")
    env_max_steps: int = config_field(10, "the env's action budget per episode")
    outcome_metric: str = config_field(
        "auto", "the env's outcome reward: auto (EM, accuracy for MCQ), em, f1, cover_em"
    )
    evidence_gain: float = config_field(0.0, "env process reward per new gold-evidence document")
    search_cost: float = config_field(0.0, "env process cost per search")
    repeat_penalty: float = config_field(0.0, "env process penalty for repeating a query")
    invalid_action_penalty: float = config_field(0.0, "env penalty for an unusable tool call")
    outcome_weight: float = config_field(1.0, "weight of the outcome metric in the reward")
    process_weight: float = config_field(1.0, "weight of the env's process terms in the reward")
    format_weight: float = config_field(
        0.0, "reward for answering through the answer tool with only valid tool calls"
    )

    RAG_GYM_PRESET: ClassVar[dict[str, Any]] = {}

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("num_generations", "max_completion_length", "k", "env_max_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.num_generations < 2:
            raise ValueError("num_generations must be at least 2 (GRPO compares a group)")
        rollouts = self.per_device_batch_size * self.gradient_accumulation_steps
        if rollouts % self.num_generations:
            raise ValueError(
                f"per_device_batch_size x gradient_accumulation_steps ({rollouts}) must be a "
                f"multiple of num_generations ({self.num_generations})"
            )
        if self.max_tool_calling_iterations is not None and (
            isinstance(self.max_tool_calling_iterations, bool)
            or not isinstance(self.max_tool_calling_iterations, int)
            or self.max_tool_calling_iterations < 1
        ):
            raise ValueError(
                "max_tool_calling_iterations must be None or a positive int, "
                f"got {self.max_tool_calling_iterations!r}"
            )
        for name in (
            "beta",
            "temperature",
            "evidence_gain",
            "search_cost",
            "repeat_penalty",
            "invalid_action_penalty",
            "outcome_weight",
            "process_weight",
            "format_weight",
        ):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
            ):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if self.beta < 0:
            raise ValueError(f"beta must be >= 0, got {self.beta!r}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature!r}")
        if self.vllm_mode not in VLLM_MODES:
            raise ValueError(f"vllm_mode must be one of {VLLM_MODES}, got {self.vllm_mode!r}")
        if isinstance(self.retriever_options, str):
            self.retriever_options = (self.retriever_options,)
        self.retriever_options = tuple(self.retriever_options)
        self.retriever_option_dict()  # validates

    def retriever_option_dict(self) -> dict[str, Any]:
        """``retriever_options`` as a mapping (values parsed as JSON when they parse).

        Raises:
            ValueError: an option without ``=``.
        """
        return parse_options([str(item) for item in self.retriever_options])

    def env_kwargs(self) -> dict[str, Any]:
        """The :class:`RAGEnv` arguments the env fields describe."""
        kwargs: dict[str, Any] = {
            "retriever": self.retriever,
            "retriever_options": self.retriever_option_dict(),
            "k": self.k,
            "max_steps": self.env_max_steps,
            "reward": {
                "outcome": self.outcome_metric,
                "evidence_gain": float(self.evidence_gain),
                "search_cost": float(self.search_cost),
                "repeat_penalty": float(self.repeat_penalty),
                "invalid_action_penalty": float(self.invalid_action_penalty),
            },
        }
        if self.env_id is None:
            kwargs["task"] = self.task
        for name in ("data_path", "select", "corpus"):
            if getattr(self, name) is not None:
                kwargs[name] = getattr(self, name)
        return kwargs

    def reward_weights(self) -> RewardWeights:
        """The :class:`RewardWeights` of the weight fields."""
        return RewardWeights(
            float(self.outcome_weight), float(self.process_weight), float(self.format_weight)
        )


def _check_versions() -> None:
    """Fail early, naming the extra, when TRL or transformers is older than the adapter needs."""
    from packaging.version import Version

    require_module("trl")
    for package, floor in (("trl", MIN_TRL), ("transformers", MIN_TRANSFORMERS)):
        installed = importlib.metadata.version(package)
        if Version(installed) < Version(floor):
            raise MissingDependencyError(
                package,
                "GRPO training",
                extra="grpo",
                reason=f"needs {package}>={floor}, found {installed}",
            )


def train_grpo(
    config: GRPOTrainConfig,
    *,
    environment_factory: RAGToolEnvFactory | None = None,
    callbacks: Sequence[Any] | None = None,
) -> TrainResult:
    """Train ``config.model`` with GRPO and LoRA, rolling out in the environment.

    Args:
        config: the run settings (the env fields say which env every rollout runs in).
        environment_factory: the rollout envs (default: built from the config's env
            fields); its questions become the training prompts.
        callbacks: ``transformers.TrainerCallback`` objects added to the trainer.

    Returns:
        The :class:`~raggym.trainers.training.TrainResult`; the adapter is in
        ``output_dir/final``. ``metrics["rollouts"]`` counts the scored rollouts and
        ``metrics["env_log"]`` holds the per-log rollout means.

    Raises:
        TypeError: ``config`` is not a :class:`GRPOTrainConfig`.
        ImportError: a training library is missing or too old (``raggym[grpo]``).
        ValueError: the task has no questions, or see the config's checks.
    """
    if not isinstance(config, GRPOTrainConfig):
        raise TypeError(f"config must be a GRPOTrainConfig, got {type(config).__name__}")
    _check_versions()
    factory = environment_factory or RAGToolEnvFactory(
        env_id=config.env_id, env_kwargs=config.env_kwargs(), weights=config.reward_weights()
    )
    dataset = grpo_dataset(factory.examples)
    stats_callback = rollout_stats_callback(factory.stats)
    trl_extra: dict[str, Any] = {
        "num_generations": config.num_generations,
        "max_completion_length": config.max_completion_length,
        "max_tool_calling_iterations": config.max_tool_calling_iterations or config.env_max_steps,
        "beta": float(config.beta),
        "temperature": float(config.temperature),
        "use_vllm": bool(config.use_vllm),
        "vllm_mode": config.vllm_mode,
        "log_completions": False,
    }
    if config.vllm_server_url is not None:
        trl_extra["vllm_server_base_url"] = config.vllm_server_url
    method = TrainingMethod(
        name="grpo",
        auto_model="AutoModelForCausalLM",
        trl_config="GRPOConfig",
        trl_trainer="GRPOTrainer",
        task_type="CAUSAL_LM",
        trl_extra=trl_extra,
        trainer_kwargs={"environment_factory": factory},
        record_extra={"env": {"env_id": config.env_id, **_jsonable_env(config.env_kwargs())}},
    )
    result = run_training(
        method,
        config,
        dataset,
        callbacks=[stats_callback, *(callbacks or ())],
    )
    result.metrics["env_log"] = list(stats_callback.history)
    result.metrics["rollouts"] = factory.stats.total
    return result


def _jsonable_env(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: v if isinstance(v, (str, int, float, bool, dict)) else str(v) for k, v in kwargs.items()
    }
