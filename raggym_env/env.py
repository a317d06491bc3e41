"""The Gymnasium environment: one episode answers one question, searching as needed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, SupportsFloat, cast

import gymnasium as gym
from gymnasium import spaces

import raggym_env.metrics as metrics
from raggym_env.actions import (
    Action,
    ActionParseError,
    Answer,
    Search,
    action_to_dict,
    parse_action,
)
from raggym_env.corpora import BaseCorpus
from raggym_env.observation import (
    FinalInfo,
    Observation,
    ResetInfo,
    RetrievedInfo,
    StepInfo,
    build_observation,
)
from raggym_env.registration import ENV_IDS, ENV_VERSION, env_id
from raggym_env.retrieval.base import RetrievalError, Retriever
from raggym_env.retrieval.factory import make_retriever
from raggym_env.rewards import RewardConfig
from raggym_env.spaces import ActionSpace, observation_space
from raggym_env.tasks import Task, load_task
from raggym_env.types import QAExample, ScoredDocument

__all__ = [
    "ENV_VERSION",
    "EnvFactory",
    "RAGEnv",
    "prefetch_searches",
    "rag_env_of",
    "step_batch",
]


class RAGEnv(gym.Env[Observation, Any]):
    """Multi-hop question answering with a search tool.

    ## Description
    Each episode poses one question from a benchmark (HotpotQA, 2WikiMultihopQA, Bamboogle,
    MedQA) or from a user's own file. At every step the agent either searches the corpus
    with a query, and the retrieved documents join the history it observes, or answers,
    which ends the episode and scores the answer against the gold aliases. This is the
    RAG-Gym formulation (arXiv 2502.13957) as a standard ``gymnasium.Env``.

    ## Action Space
    :class:`~raggym_env.spaces.ActionSpace`: a :class:`~raggym_env.actions.Search` or
    :class:`~raggym_env.actions.Answer` object, or text in the grammar of
    :mod:`raggym_env.actions` (``"Search: ..."``, ``"Answer: ..."``, ``Search[...]``, JSON).
    Text that does not parse is recorded in ``info["action_error"]`` and still uses a step;
    an object of any other type raises ``TypeError``.

    ## Observation Space
    A ``Dict`` (typed as :class:`~raggym_env.observation.Observation`, built by
    :func:`~raggym_env.observation.build_observation`) with ``question`` (str), ``options``
    (tuple of ``{"letter", "text"}``, empty for open QA), ``history`` (tuple of
    ``{"query", "documents"}``, each document an ``{"id", "title", "text"}`` mapping in
    rank order) and ``steps_remaining`` (int). Gold answers and evidence are never
    observed; they appear in ``info`` once the episode ends.

    ## Rewards
    On the answering step, the outcome metric: exact match (open QA, the paper's choice)
    or accuracy (multiple choice) by default, configurable through ``reward``. Searches
    earn 0 unless process rewards (gold-evidence gain, search cost, repeated-query penalty,
    invalid-action penalty) are switched on in :class:`~raggym_env.rewards.RewardConfig`.
    EM, F1 and cover-EM (and accuracy for multiple choice) are always in the final ``info``.

    ## Info
    ``reset`` returns a :class:`~raggym_env.observation.ResetInfo`, every ``step`` a
    :class:`~raggym_env.observation.StepInfo` (the action, its parse or retrieval error,
    the retrieved documents with scores, evidence recall, the reward's components), and
    the step that ends the episode a :class:`~raggym_env.observation.FinalInfo`, which adds
    the answer, the gold answers and evidence, and the metrics.

    ## Starting State
    ``reset(seed=...)`` draws a question uniformly with ``self.np_random``; the same seed
    gives the same question. ``options={"index": i}``, ``{"example_id": id}`` or
    ``{"example": QAExample}`` choose one explicitly. The history starts empty.

    ## Episode End
    Terminated when the agent answers. Truncated when ``max_steps`` actions (default 10,
    as in the paper) have been taken without an answer; the answer then counts as empty.
    Stepping a finished episode raises ``RuntimeError`` until ``reset`` is called.

    ## Arguments
    - ``task``: ``"hotpotqa"``, ``"2wikimultihopqa"``, ``"bamboogle"``, ``"medqa"`` or
      ``"custom"``, or a loaded :class:`~raggym_env.tasks.Task` (questions + corpus) to share.
    - ``data_path``: the dataset file in its official format (default: the bundled sample),
      or ``"hub"`` to load through ``datasets`` when online.
    - ``examples``: questions given directly (a sequence of ``QAExample``); overrides
      ``data_path``.
    - ``limit`` / ``select``: keep the first ``limit`` questions, or ``"first:N"``,
      ``"last:N"``, ``"sample:N@SEED"``.
    - ``corpus``: a :class:`~raggym_env.corpora.Corpus` or
      :class:`~raggym_env.corpora.DiskCorpus`, or a corpus file, store or folder (default:
      the task's pooled context paragraphs).
    - ``retriever``: a backend name (``"bm25"``, ...) or any object with the ``Retriever``
      protocol; ``retriever_options`` go to the backend builder (e.g. ``index_dir``).
    - ``k``: documents returned per search (default 5; the paper returned 32).
    - ``max_steps``: action budget per episode (default 10).
    - ``reward``: a ``RewardConfig``, a mapping of its fields, or an outcome metric name.
    - ``render_mode``: ``None`` or ``"ansi"``.

    ## Version History
    - v0: initial release.
    """

    metadata: dict[str, Any] = {"render_modes": ["ansi"], "render_fps": 1}  # noqa: RUF012

    def __init__(
        self,
        task: str | Task = "hotpotqa",
        *,
        data_path: str | Path | None = None,
        examples: Sequence[QAExample] | None = None,
        limit: int | None = None,
        select: str | None = None,
        corpus: BaseCorpus | str | Path | None = None,
        retriever: str | Retriever = "bm25",
        retriever_options: Mapping[str, Any] | None = None,
        k: int = 5,
        max_steps: int = 10,
        reward: RewardConfig | Mapping[str, Any] | str | None = None,
        render_mode: str | None = None,
    ) -> None:
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int (documents per search), got {k!r}")
        if not isinstance(max_steps, int) or max_steps < 1:
            raise ValueError(f"max_steps must be a positive int, got {max_steps!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.task: Task = _resolve_task(task, data_path, examples, limit, select, corpus)
        if not self.task.examples:
            raise ValueError(
                f"task {self.task.name!r} selected no questions (limit={limit}, {select=})"
            )
        self.k = k
        self.max_steps = max_steps
        self.render_mode = render_mode
        self.reward_config = RewardConfig.coerce(reward)
        self.reward_config.outcome_metric(self.task.multiple_choice)  # validates early
        if isinstance(retriever, str):
            self.retriever: Retriever = make_retriever(
                retriever, self.task.corpus, **dict(retriever_options or {})
            )
        elif isinstance(retriever, Retriever):
            self.retriever = retriever
        else:
            raise TypeError(
                "retriever must be a backend name or an object with a "
                f"search(queries, k) method, got {type(retriever).__name__}"
            )
        self.retriever_name = retriever if isinstance(retriever, str) else type(retriever).__name__
        self._example_index = {ex.id: i for i, ex in enumerate(self.task.examples)}
        self.action_space = ActionSpace()
        # the Dict space's members are dicts with exactly the Observation keys
        self.observation_space = cast("spaces.Space[Observation]", observation_space(max_steps))
        self._example: QAExample | None = None
        self._history: list[tuple[str, list[ScoredDocument]]] = []
        self._retrieved_ids: set[str] = set()
        self._queries: set[str] = set()
        self._steps = 0
        self._done = True
        self._answer: str | None = None
        self._last_error: str | None = None
        self._prefetched: tuple[str, list[ScoredDocument]] | None = None

    def accept_prefetched(self, query: str, results: Sequence[ScoredDocument]) -> None:
        """Hand over the results of a search done for this env's next step elsewhere.

        Batched runners search the queries of many environments in one retriever call
        (:func:`prefetch_searches`) and give each environment its results here. The next
        ``step`` uses them if it searches exactly ``query``; any other next step discards
        them and behaves as usual (a wrapper that rewrites the action simply makes the
        environment search for itself). ``results`` must come from this environment's
        retriever with its ``k``, or the episode would differ from an unbatched one.

        Raises:
            TypeError: ``query`` is not text or ``results`` holds non-``ScoredDocument``s.
            RuntimeError: no episode is running.
        """
        if self._done:
            raise RuntimeError("no episode is running; call reset() before accept_prefetched()")
        if not isinstance(query, str):
            raise TypeError(f"query must be a str, got {type(query).__name__}")
        kept = list(results)
        if not all(isinstance(r, ScoredDocument) for r in kept):
            raise TypeError("results must be ScoredDocument objects, as Retriever.search returns")
        self._prefetched = (query, kept)

    # ------------------------------------------------------------------ properties
    @property
    def examples(self) -> tuple[QAExample, ...]:
        """Every question this environment can pose, in dataset order."""
        return self.task.examples

    @property
    def corpus(self) -> BaseCorpus:
        """The corpus searched by the retriever."""
        return self.task.corpus

    @property
    def current_example(self) -> QAExample | None:
        """The question of the current episode (``None`` before the first reset)."""
        return self._example

    @property
    def env_id(self) -> str:
        """The registered id (``gym.make`` accepts it), also when built directly.

        A task with no id of its own (a user's data) reads ``RAGGym/Custom-v0``.
        """
        if self.spec is not None:
            return self.spec.id
        for registered, task in ENV_IDS.items():
            if task == self.task.name:
                return registered
        return env_id("Custom")

    # ------------------------------------------------------------------ gymnasium API
    # Gymnasium types ``info`` as ``dict[str, Any]``; ours are dicts with declared keys.
    def reset(  # type: ignore[override]
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, ResetInfo]:
        """Start an episode on a seeded random question or the one ``options`` names."""
        super().reset(seed=seed)
        self._example = self._choose_example(options or {})
        self._history = []
        self._retrieved_ids = set()
        self._queries = set()
        self._steps = 0
        self._done = False
        self._answer = None
        self._last_error = None
        self._prefetched = None
        info: ResetInfo = {
            "example_id": self._example.id,
            "multiple_choice": self._example.is_multiple_choice,
            "max_steps": self.max_steps,
            "k": self.k,
        }
        return self._observation(), info

    def step(  # type: ignore[override]
        self, action: Action | str
    ) -> tuple[Observation, SupportsFloat, bool, bool, StepInfo]:
        """Apply one search or answer; see the class docstring for the dynamics.

        The ``info`` of the step that ends the episode is a
        :class:`~raggym_env.observation.FinalInfo`.
        """
        if self._done or self._example is None:
            raise RuntimeError(
                "the episode has ended (or never started); call reset() before step()"
            )
        example = self._example
        parsed, action_error = _coerce_action(action)
        prefetched, self._prefetched = self._prefetched, None  # good for this step only
        self._steps += 1
        info: StepInfo = {
            "example_id": example.id,
            "step": self._steps,
            "action": action_to_dict(parsed),
            "action_error": action_error,
            "retrieval_error": None,
            "retrieved": [],
            "evidence_recall": None,
            "reward_components": {},
        }
        components: dict[str, float] = {}
        terminated = False
        if parsed is None:
            if self.reward_config.invalid_action_penalty:
                components["invalid_action_penalty"] = -self.reward_config.invalid_action_penalty
        elif isinstance(parsed, Search):
            components = self._search(parsed.query, info, prefetched)
        else:
            self._answer = parsed.text
            terminated = True
            outcome = self._score(example, parsed.text)
            components["outcome"] = outcome[
                self.reward_config.outcome_metric(example.is_multiple_choice)
            ]
        self._last_error = action_error or info["retrieval_error"]
        truncated = not terminated and self._steps >= self.max_steps
        info["evidence_recall"] = metrics.evidence_recall(
            self._retrieved_ids, example.evidence.doc_ids
        )
        info["reward_components"] = components
        if terminated or truncated:
            self._done = True
            info = self._final_info(example, info)
        reward = float(sum(components.values()))
        return self._observation(), reward, terminated, truncated, info

    def render(self) -> str | None:
        """With ``render_mode="ansi"``, the question and trajectory so far as text."""
        if self.render_mode != "ansi":
            return None
        if self._example is None:
            return "(no episode: call reset())"
        lines = [f"Q [{self._example.id}]: {self._example.question}"]
        for letter, text in (self._example.options or {}).items():
            lines.append(f"  {letter}. {text}")
        for i, (query, docs) in enumerate(self._history, 1):
            titles = ", ".join(d.document.title for d in docs) or "(nothing found)"
            lines.append(f"  search {i}: {query!r} -> {titles}")
        if self._last_error:
            lines.append(f"  last action error: {self._last_error}")
        if self._answer is not None:
            lines.append(f"  answer: {self._answer!r}")
        lines.append(f"  steps remaining: {self.max_steps - self._steps}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ internals
    def _choose_example(self, options: Mapping[str, Any]) -> QAExample:
        unknown = set(options) - {"index", "example_id", "example"}
        if unknown:
            raise ValueError(
                f"unknown reset options {sorted(unknown)}; expected 'index', 'example_id' "
                "or 'example'"
            )
        if "example" in options:
            example = options["example"]
            if not isinstance(example, QAExample):
                raise TypeError(
                    f"options['example'] must be a QAExample, got {type(example).__name__}"
                )
            return example
        if "example_id" in options:
            try:
                return self.task.examples[self._example_index[str(options["example_id"])]]
            except KeyError:
                raise KeyError(
                    f"no question with id {options['example_id']!r} in task {self.task.name!r}"
                ) from None
        if "index" in options:
            index = options["index"]
            if not isinstance(index, int) or not 0 <= index < len(self.task.examples):
                raise IndexError(
                    f"options['index'] must be an int in [0, {len(self.task.examples)}), "
                    f"got {index!r}"
                )
            return self.task.examples[index]
        return self.task.examples[int(self.np_random.integers(len(self.task.examples)))]

    def _search(
        self,
        query: str,
        info: StepInfo,
        prefetched: tuple[str, list[ScoredDocument]] | None,
    ) -> dict[str, float]:
        example = self._example
        if example is None:  # unreachable: step() checks first
            raise RuntimeError("no active episode")
        try:
            if prefetched is not None and prefetched[0] == query:
                results = prefetched[1]
            else:
                results = self.retriever.search([query], self.k)[0]
        except RetrievalError as exc:
            info["retrieval_error"] = f"{type(exc).__name__}: {exc}"
            results = []
        else:
            self._history.append((query, list(results)))
        info["retrieved"] = [
            RetrievedInfo(id=r.document.id, title=r.document.title, score=float(r.score))
            for r in results
        ]
        gold = example.evidence.doc_ids
        before = len(self._retrieved_ids.intersection(gold))
        self._retrieved_ids.update(r.document.id for r in results)
        gain = (len(self._retrieved_ids.intersection(gold)) - before) / len(gold) if gold else None
        key = " ".join(query.lower().split())
        repeated = key in self._queries
        self._queries.add(key)
        return self.reward_config.search_reward(gain, repeated)

    def _score(self, example: QAExample, prediction: str | None) -> dict[str, float]:
        return metrics.score_answer(
            prediction,
            example.answers,
            options=example.options,
            answer_letter=example.answer_letter,
        )

    def _final_info(self, example: QAExample, info: StepInfo) -> FinalInfo:
        scores = self._score(example, self._answer)
        scores.update(paper_metrics(example, self._answer))
        gold_ids = example.evidence.doc_ids
        return {
            **info,
            "answer": self._answer,
            "gold": {
                "answers": list(example.answers),
                "answer_letter": example.answer_letter,
                "evidence_titles": list(example.evidence.titles),
                "evidence_doc_ids": list(gold_ids),
            },
            "metrics": {
                **scores,
                "evidence_recall": metrics.evidence_recall(self._retrieved_ids, gold_ids),
                "evidence_complete": metrics.evidence_complete(self._retrieved_ids, gold_ids),
                "num_searches": float(len(self._history)),
                "steps": float(self._steps),
            },
        }

    def _observation(self) -> Observation:
        example = self._example
        if example is None:
            raise RuntimeError("no active episode")
        return build_observation(
            example.question,
            example.options,
            ((query, (r.document for r in docs)) for query, docs in self._history),
            self.max_steps - self._steps,
        )


def paper_metrics(example: QAExample, answer: str | None) -> dict[str, float]:
    """``paper_em``/``paper_f1`` (and ``paper_acc`` for multiple choice) of a final answer.

    Scored by :func:`raggym_env.metrics.paper_score` against what the official question files
    store, to compare with the RAG-Gym paper's numbers: the FIRST gold answer, or the gold
    letter for multiple choice.
    """
    multiple_choice = example.is_multiple_choice
    gold = (
        example.answer_letter if multiple_choice and example.answer_letter else example.answers[0]
    )
    scores = metrics.paper_score(answer, gold, multiple_choice=multiple_choice)
    paper = {"paper_em": scores["em"], "paper_f1": scores["f1"]}
    if multiple_choice:
        paper["paper_acc"] = scores["acc"]
    return paper


class EnvFactory:
    """A picklable recipe for identical environments that share one task and retriever.

    Calling it builds a :class:`RAGEnv`; the first call in a process loads the questions,
    corpus and index, later calls reuse them, so a batched runner's many copies (or a Ray
    worker's) cost one index. Pickling sends the recipe only, never the loaded index:
    each process builds (or reloads from ``retriever_options["index_dir"]``) its own.

    Args:
        task: the task name, as for :class:`RAGEnv`.
        **kwargs: any other :class:`RAGEnv` argument.
    """

    def __init__(self, task: str = "hotpotqa", **kwargs: Any) -> None:
        self.task = task
        self.kwargs = dict(kwargs)
        self._template: RAGEnv | None = None

    def __call__(self) -> RAGEnv:
        """A fresh environment (the first one of the process loads everything)."""
        if self._template is None:
            self._template = RAGEnv(self.task, **self.kwargs)
            return self._template
        shared = {
            key: value
            for key, value in self.kwargs.items()
            if key in ("k", "max_steps", "reward", "render_mode")
        }
        return RAGEnv(self._template.task, retriever=self._template.retriever, **shared)

    @property
    def examples(self) -> tuple[QAExample, ...]:
        """The questions every built environment poses (loads them on first use)."""
        if self._template is None:
            self._template = RAGEnv(self.task, **self.kwargs)
        return self._template.examples

    def __getstate__(self) -> dict[str, Any]:
        return {"task": self.task, "kwargs": self.kwargs, "_template": None}

    def __repr__(self) -> str:
        args = "".join(f", {k}={v!r}" for k, v in self.kwargs.items())
        return f"EnvFactory({self.task!r}{args})"


StepResult = tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]
"""What ``step`` returns, for an environment that may be wrapped."""


def rag_env_of(env: gym.Env[Any, Any]) -> RAGEnv:
    """The :class:`RAGEnv` inside ``env``'s wrappers, to read; step through ``env`` itself.

    Raises:
        TypeError: ``env`` is not a :class:`RAGEnv`, wrapped or not.
    """
    base = env.unwrapped
    if not isinstance(base, RAGEnv):
        raise TypeError(
            "expected RAGEnv instances: a RAGGym environment is needed, got "
            f"{type(base).__name__} (in {env})"
        )
    return base


def step_batch(
    envs: Sequence[gym.Env[Any, Any]], actions: Sequence[Action | str]
) -> list[StepResult]:
    """Step many environments at once with one retrieval call per shared retriever.

    Equivalent to ``[env.step(a) for env, a in zip(envs, actions)]`` (same observations,
    rewards and infos), except that the searches of all environments sharing a retriever
    object and ``k`` go to it as one batched ``search`` call (:func:`prefetch_searches`),
    which is what makes lockstep rollouts of many episodes fast. Each environment may be
    wrapped: it is stepped through its outermost wrapper, so user wrappers apply.
    """
    prefetch_searches(envs, actions)
    return [env.step(action) for env, action in zip(envs, actions, strict=True)]


def prefetch_searches(envs: Sequence[gym.Env[Any, Any]], actions: Sequence[Action | str]) -> int:
    """Run the searches ``actions`` will make as one batched call per shared retriever.

    Each environment receives its results through :meth:`RAGEnv.accept_prefetched` for
    its next ``step`` with that query; stepping is left to the caller (so one failing step
    can be isolated). Environments may be wrapped: the :class:`RAGEnv` inside
    (``env.unwrapped``) gives the retriever and ``k`` and keeps the results; if a wrapper
    rewrites the action, the query differs and the environment searches for itself. If
    a batched call fails with ``RetrievalError``, those environments search on their own
    when stepped, so the error is recorded only where it occurs. Returns the number of
    retriever calls made.

    Raises:
        ValueError: ``envs`` and ``actions`` differ in length.
        TypeError: an environment is not a (wrapped) :class:`RAGEnv`.
    """
    if len(envs) != len(actions):
        raise ValueError(f"got {len(envs)} environments but {len(actions)} actions")
    groups: dict[tuple[int, int], list[tuple[RAGEnv, str]]] = {}
    for env, action in zip(envs, actions, strict=True):
        base = rag_env_of(env)
        if base._done:
            continue  # step() raises the usual error
        parsed = action if isinstance(action, (Search, Answer)) else None
        if isinstance(action, str):
            parsed, _ = _coerce_action(action)
        if isinstance(parsed, Search):
            key = (id(base.retriever), base.k)
            groups.setdefault(key, []).append((base, parsed.query))
    for members in groups.values():
        queries = list(dict.fromkeys(query for _, query in members))
        try:
            found = members[0][0].retriever.search(queries, members[0][0].k)
        except RetrievalError:
            continue  # each env retries alone and records its own error
        by_query = dict(zip(queries, found, strict=True))
        for base, query in members:
            base.accept_prefetched(query, by_query[query])
    return len(groups)


def _coerce_action(action: Any) -> tuple[Action | None, str | None]:
    """Turn what ``step`` received into an action, or a recorded parse error for text."""
    if isinstance(action, (Search, Answer)):
        return action, None
    if isinstance(action, str):
        try:
            return parse_action(action), None
        except ActionParseError as exc:
            return None, str(exc)
    raise TypeError(
        "step() expects a Search, an Answer, or action text such as 'Search: <query>', "
        f"got {type(action).__name__}"
    )


def _resolve_task(
    task: str | Task,
    data_path: str | Path | None,
    examples: Sequence[QAExample] | None,
    limit: int | None,
    select: str | None,
    corpus: BaseCorpus | str | Path | None,
) -> Task:
    """Load the task, or wrap directly given questions with their corpus."""
    if isinstance(task, Task):
        return task
    if examples is None:
        if task.lower() == "custom" and (data_path is None or corpus is None):
            raise ValueError(
                "the custom task needs your questions (data_path=... a JSON/JSONL file, or "
                "examples=[QAExample, ...]) and corpus=... (a Corpus, file or folder)"
            )
        return load_task(task, path=data_path, limit=limit, select=select, corpus=corpus)
    if not all(isinstance(ex, QAExample) for ex in examples):
        raise TypeError("examples must be a sequence of raggym_env.QAExample")
    if corpus is None:
        raise ValueError("examples=... needs corpus=... (a Corpus, or a corpus file or folder)")
    resolved = _load_corpus(corpus)
    chosen = list(examples)[:limit] if limit is not None else list(examples)
    with_ids = [ex if ex.evidence.doc_ids else resolved.attach_evidence([ex])[0] for ex in chosen]
    return Task(
        name=task,
        examples=tuple(with_ids),
        corpus=resolved,
        multiple_choice=any(ex.is_multiple_choice for ex in with_ids),
        source="examples",
    )


def _load_corpus(corpus: BaseCorpus | str | Path) -> BaseCorpus:
    if isinstance(corpus, BaseCorpus):
        return corpus
    from raggym_env.corpora import load_corpus

    return load_corpus(corpus)
