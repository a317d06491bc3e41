"""raggym as a verifiers environment, in the Search-R1 text protocol.

`verifiers <https://github.com/PrimeIntellect-ai/verifiers>`_ (``verifiers.v1``) drives a
model as a chat agent: an :class:`~verifiers.v1.Agent` runs a task turn by turn through
``agent.interaction(task)``, every model call passes through its interception server (so
the trace records each turn), and the task's ``@vf.reward`` / ``@vf.metric`` hooks score
the finished trace. This module plugs a
:class:`~raggym_env.text_protocol.SearchR1TextEnv` into that loop:

- the episode's prompt (instructions and question) is the task's prompt;
- each model turn goes to :meth:`SearchR1TextEnv.step`; the ``<information>`` block it
  returns is the next user message;
- the exchange ends on ``<answer>`` or when the environment's step budget is spent;
- the reward is the environment's own (its outcome metric: EM or F1 for open questions,
  accuracy for multiple choice, plus any process rewards it was built with), recorded by
  the task's ``@vf.reward`` hook; EM, F1 and the other final metrics are ``@vf.metric``.

The agent's harness is verifiers' tool-less ``null`` chat loop run in-process (one chat
completion per turn, posted to the rollout's interception endpoint), so nothing is
installed or launched per rollout and a local OpenAI-compatible server is all it needs::

    agent = make_search_r1_agent("http://127.0.0.1:8000/v1", "my-model")
    results = asyncio.run(evaluate_search_r1(agent, gym.make("RAGGym/HotpotQA-v0"), [0, 1]))

Needs the ``verifiers`` extra: ``pip install 'raggym[verifiers]'``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from raggym_env.availability import require
from raggym_env.text_protocol import SearchR1TextEnv

if TYPE_CHECKING:
    import gymnasium as gym

__all__ = [
    "INFO_KEY",
    "REWARD_NAME",
    "SearchR1Result",
    "evaluate_search_r1",
    "make_search_r1_agent",
    "run_search_r1_episode",
    "search_r1_task",
    "verifiers_plugin",
]

_FEATURE = "the verifiers adapter"
INFO_KEY = "raggym"
"""The ``trace.info`` key holding the episode's outcome (return, turns, final metrics)."""
REWARD_NAME = "raggym_reward"
"""The name of the verifiers reward: the environment's return over the episode."""
_METRICS = ("em", "f1", "accuracy", "cover_em", "evidence_recall", "num_searches", "steps")


def _vf() -> Any:
    return require("verifiers.v1", feature=_FEATURE)


@functools.cache
def _types() -> SimpleNamespace:
    """The verifiers subclasses, built on first use so importing this module needs no verifiers."""
    vf = _vf()
    httpx = require("httpx", feature=_FEATURE, extra="verifiers")
    wire = require("verifiers.v1.dialects.chat", feature=_FEATURE).message_to_wire
    null_harness: Any = require("verifiers.v1.harnesses.null", feature=_FEATURE).NullHarness
    program_result = vf.ProgramResult
    task_data: Any = vf.TaskData

    class SearchR1Data(task_data):
        """Wire data of one episode: which question of the environment it plays."""

        index: int
        example_id: str

    task_base: Any = vf.Task[SearchR1Data, vf.State, vf.TaskConfig]

    class SearchR1Task(task_base):
        """Scores a trace by what the raggym environment recorded in ``trace.info``."""

        @vf.reward
        async def raggym_reward(self, trace: Any) -> float:
            """The environment's return; 0 when the episode never ended."""
            outcome = trace.info.get(INFO_KEY) or {}
            return float(outcome.get("return", 0.0)) if outcome.get("done") else 0.0

        @vf.metric
        async def raggym_metrics(self, trace: Any) -> dict[str, float]:
            """The environment's final metrics (EM, F1, ...), and whether the episode ended."""
            outcome = trace.info.get(INFO_KEY) or {}
            final = outcome.get("metrics") or {}
            values = {name: float(final[name]) for name in _METRICS if name in final}
            values["invalid_turns"] = float(outcome.get("invalid_turns", 0))
            values["episode_done"] = float(bool(outcome.get("done")))
            return values

    class InProcessChatHarness(null_harness):
        """The ``null`` chat loop run in-process: one completion per segment, via the endpoint.

        verifiers allows a harness to run its loop in-process as long as every model call
        goes through the rollout's interception endpoint, which records the turn.
        """

        async def setup(self, runtime: Any) -> None:
            """Nothing to install: the loop runs in this process."""

        async def launch(
            self,
            ctx: Any,
            trace: Any,
            runtime: Any,
            endpoint: str,
            secret: str,
            mcp_urls: dict[str, str],
            data: Any,
            tool_interception_url: str | None = None,
        ) -> Any:
            """Post the conversation once; a failed call is a non-zero exit with its reason."""
            system, prompt = self.resolve_prompt(data)
            messages: list[dict[str, Any]] = []
            if system:
                messages.append({"role": "system", "content": system})
            if isinstance(prompt, str):
                messages.append({"role": "user", "content": prompt})
            else:
                messages.extend(wire(message) for message in prompt or ())
            body = {"model": ctx.model, "messages": messages}
            url = f"{endpoint.rstrip('/')}/chat/completions"
            try:
                async with httpx.AsyncClient(timeout=None) as client:
                    reply = await client.post(
                        url, json=body, headers={"Authorization": f"Bearer {secret}"}
                    )
            except httpx.HTTPError as exc:
                return program_result(1, "", f"model call failed: {type(exc).__name__}: {exc}")
            if reply.status_code != 200:
                return program_result(1, "", f"model call failed: HTTP {reply.status_code}")
            return program_result(0, "", "")

    return SimpleNamespace(
        Data=SearchR1Data, Task=SearchR1Task, Harness=InProcessChatHarness, vf=vf
    )


def make_search_r1_agent(
    base_url: str,
    model: str,
    *,
    api_key_var: str = "OPENAI_API_KEY",
    sampling: Mapping[str, Any] | None = None,
    timeout_s: float | None = None,
) -> Any:
    """A verifiers ``Agent`` that plays Search-R1 episodes against an OpenAI-compatible server.

    Args:
        base_url: the server's OpenAI base URL (``http://host:port/v1``).
        model: the model name sent with each request.
        api_key_var: the environment variable holding the server's key (unset: no key).
        sampling: verifiers sampling settings (``temperature``, ``max_tokens``, ...),
            applied to every request by verifiers' interception.
        timeout_s: the agent's time budget per episode (``None``: no limit).

    Returns:
        A ``verifiers.v1.Agent``; use it as ``async with agent:`` around the episodes.
    """
    if not isinstance(base_url, str) or not base_url:
        raise ValueError(f"base_url must be a non-empty URL, got {base_url!r}")
    if not isinstance(model, str) or not model:
        raise ValueError(f"model must be a non-empty name, got {model!r}")
    types = _types()
    vf = types.vf
    config = vf.AgentConfig(
        model=model,
        client=vf.EvalClientConfig(base_url=base_url, api_key_var=api_key_var),
        harness={"id": "null"},
        runtime=vf.SubprocessConfig(),
        sampling=dict(sampling) if sampling is not None else None,
        timeout={"rollout": timeout_s},
        network_notice=False,
    )
    agent = vf.Agent(config)
    # Same config and id (the null chat loop); only where it runs differs.
    agent.harness = types.Harness(agent.harness.config)
    return agent


def search_r1_task(prompt: str, *, index: int, example_id: str) -> Any:
    """The verifiers task of one episode: ``prompt`` opens it; its hooks score the trace."""
    types = _types()
    return types.Task(types.Data(prompt=prompt, index=index, example_id=example_id))


@dataclass
class SearchR1Result:
    """One episode as verifiers scored it.

    Attributes:
        index: the question's index in the environment.
        example_id: the question's id.
        reward: the trace's total reward (the environment's return when the episode ended).
        metrics: verifiers' metrics of the trace (``em``, ``f1``, ``steps``, ...).
        ok: whether the rollout finished without error.
        errors: the rollout's errors (``type: message``), e.g. a failed model call.
        trace: the ``verifiers.v1.Trace`` itself.
    """

    index: int
    example_id: str
    reward: float
    metrics: dict[str, float | None] = field(default_factory=dict)
    ok: bool = True
    errors: list[str] = field(default_factory=list)
    trace: Any = None


def _index_of(text_env: SearchR1TextEnv, example_id: str) -> int:
    examples = getattr(text_env.unwrapped, "examples", ())
    return next((i for i, example in enumerate(examples) if example.id == example_id), -1)


def _text_env(env: SearchR1TextEnv | gym.Env[Any, Any]) -> SearchR1TextEnv:
    return env if isinstance(env, SearchR1TextEnv) else SearchR1TextEnv(env)


async def _play(agent: Any, text_env: SearchR1TextEnv, task: Any) -> Any:
    """The exchange on a freshly reset ``text_env``: model turns in, information blocks out."""
    outcome: dict[str, Any] = {"done": False, "return": 0.0, "invalid_turns": 0, "turns": []}
    async with agent.interaction(task) as interaction:
        interaction.trace.info[INFO_KEY] = outcome
        segment = await interaction.turn()
        while not segment.terminated:
            observation, reward, terminated, truncated, step_info = text_env.step(
                segment.last_reply
            )
            outcome["return"] += float(reward)
            outcome["turns"].append(step_info["text_action"])
            outcome["invalid_turns"] += step_info["text_action"]["type"] == "invalid"
            if terminated or truncated:
                outcome.update(
                    done=True,
                    terminated=bool(terminated),
                    truncated=bool(truncated),
                    answer=step_info.get("answer"),
                    metrics=dict(step_info.get("metrics") or {}),
                )
                break
            segment = await interaction.turn(observation.strip())
    return interaction.trace


async def run_search_r1_episode(
    agent: Any,
    env: SearchR1TextEnv | gym.Env[Any, Any],
    *,
    index: int | None = None,
    seed: int | None = None,
) -> SearchR1Result:
    """Play one episode through verifiers' ``agent.interaction`` and return how it scored.

    The agent must be entered (``async with agent:``). A failed model call ends the
    episode as a rollout error on the trace (reward 0), never an exception here.

    Args:
        agent: a ``verifiers.v1.Agent``, e.g. from :func:`make_search_r1_agent` (one of
            an env's ``agents`` works too).
        env: a :class:`SearchR1TextEnv`, or a ``RAGEnv`` (wrapped in one).
        index: the question to play (``None``: the environment's own choice under ``seed``).
        seed: passed to ``reset``.
    """
    text_env = _text_env(env)
    options = None if index is None else {"index": index}
    prompt, info = text_env.reset(seed=seed, options=options)
    example_id = str(info["example_id"])
    played = index if index is not None else _index_of(text_env, example_id)
    task = search_r1_task(prompt, index=played, example_id=example_id)
    trace = await _play(agent, text_env, task)
    return SearchR1Result(
        index=played,
        example_id=example_id,
        reward=float(trace.reward),
        metrics=dict(trace.metrics),
        ok=bool(trace.ok),
        errors=[f"{error.type}: {error.message}" for error in trace.errors],
        trace=trace,
    )


async def evaluate_search_r1(
    agent: Any,
    env: SearchR1TextEnv | gym.Env[Any, Any],
    indices: Iterable[int],
) -> list[SearchR1Result]:
    """Play the questions at ``indices`` one after another with ``agent``; one result each.

    Enters ``agent`` for the run (pass one that is not entered yet). Episodes share
    ``env``, so they run in turn; for concurrency, give each its own environment and
    gather :func:`run_search_r1_episode` calls inside ``async with agent:``.
    """
    text_env = _text_env(env)
    order: Sequence[int] = list(indices)
    async with agent:
        return [await run_search_r1_episode(agent, text_env, index=i) for i in order]


def _env_factory(path: str) -> Any:
    """The callable ``pkg.module:function`` names (a clear error when it names nothing)."""
    import importlib

    module_name, _, name = path.partition(":")
    if not module_name or not name:
        raise ValueError(f"make_env must be 'pkg.module:function', got {path!r}")
    try:
        factory = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"make_env {path!r} names no importable function ({exc})") from exc
    if not callable(factory):
        raise TypeError(f"make_env {path!r} is not callable")
    return factory


@functools.cache
def verifiers_plugin() -> tuple[type, type, type]:
    """The ``Taskset``, ``Env`` and ``Harness`` classes of a verifiers plugin module.

    verifiers loads a taskset by id as a top-level module exporting these through
    ``__all__``; a one-file module anywhere on ``sys.path`` makes raggym one::

        # raggym_search_r1.py
        from raggym.agents.verifiers_adapter import verifiers_plugin

        SearchR1Taskset, SearchR1Env, SearchR1Harness = verifiers_plugin()
        __all__ = ["SearchR1Env", "SearchR1Harness", "SearchR1Taskset"]

    after which the taskset id ``raggym_search_r1`` runs under verifiers' own env
    machinery (``load_environment``, ``Env.run_episode``, the eval runner). The taskset's
    config names the environment: ``make_env`` (``"pkg.module:function"`` returning a
    ``RAGEnv``), ``env_kwargs`` for it, and ``indices`` (default: every question). Each
    concurrent episode steps its own environment, built by ``make_env`` when none is free.
    """
    types = _types()
    vf = types.vf
    taskset_config_base: Any = vf.TasksetConfig
    env_config_base: Any = vf.EnvConfig

    class SearchR1TasksetConfig(taskset_config_base):
        """Which raggym environment and questions the taskset plays."""

        make_env: str = ""
        env_kwargs: dict[str, Any] = {}  # noqa: RUF012 - pydantic copies field defaults
        indices: list[int] | None = None
        instructions: str | None = None

    taskset_base: Any = vf.Taskset[types.Task, SearchR1TasksetConfig]

    class SearchR1Taskset(taskset_base):
        """One task per question; its prompt is the Search-R1 opening of that question."""

        def new_env(self) -> SearchR1TextEnv:
            """A fresh text environment from the config's factory."""
            if not self.config.make_env:
                raise ValueError("the taskset needs make_env ('pkg.module:function')")
            env = _env_factory(self.config.make_env)(**self.config.env_kwargs)
            return SearchR1TextEnv(env, instructions=self.config.instructions)

        def load(self) -> Iterable[Any]:
            """Reset a fresh environment on each question to read its prompt."""
            text_env = self.new_env()
            count = len(getattr(text_env.unwrapped, "examples", ()))
            indices = self.config.indices if self.config.indices is not None else range(count)
            for index in indices:
                prompt, info = text_env.reset(options={"index": index})
                example_id = str(info["example_id"])
                yield search_r1_task(prompt, index=index, example_id=example_id)

    class SearchR1EnvConfig(env_config_base):
        """One ``agent`` seat, run in-process by default (no sandbox is needed)."""

        agent: Any = vf.AgentConfig(runtime=vf.SubprocessConfig(), network_notice=False)

    env_base: Any = vf.Env[SearchR1EnvConfig]

    class SearchR1Env(env_base):
        """Plays each task's question on a raggym environment, turn by turn."""

        def __init__(self, config: Any) -> None:
            super().__init__(config)
            self._free: list[SearchR1TextEnv] = []

        async def run(self, task: Any, agents: Any) -> None:
            """Reset a free environment on the task's question and play the exchange."""
            text_env = self._free.pop() if self._free else self.taskset.new_env()
            try:
                text_env.reset(options={"index": task.data.index})
                await _play(agents.agent, text_env, task)
            finally:
                self._free.append(text_env)

    harness_base: Any = types.Harness

    class SearchR1Harness(harness_base):
        """The in-process chat loop, exported so the taskset's seats default to it."""

    return SearchR1Taskset, SearchR1Env, SearchR1Harness
