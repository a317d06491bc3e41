"""``raggym train sft|dpo|critic|grpo``: LoRA training from episodes, rows or the env itself.

``grpo`` needs no episodes: it rolls the policy out in the environment its flags describe
(``--task``, ``--data-path``, ``--select``, ``--corpus``, ``--retriever``,
``--retriever-options``, ``--k``, ``--env-max-steps``, reward settings) and learns from the
rewards online (see :mod:`raggym.trainers.grpo`).

``--episodes`` takes either an episode JSONL file (records with ``schema_version``, as
``raggym collect`` and the rollout runners write) or a rows JSONL file (``prompt`` /
``completion`` rows for SFT, ``chosen`` / ``rejected`` rows for DPO and the critic, as
:func:`raggym.trainers.datasets.write_jsonl` writes). Episodes are converted with
:mod:`raggym.trainers.datasets`; critic rows need the corpus the episodes retrieved from
(``--task`` with its ``--data-path``, or ``--corpus``) to rebuild what the critic saw.

Every field of the method's config dataclass is a flag, generated from the dataclass with
its help text (``--learning-rate``/``--lr``, ``--num-train-epochs``/``--epochs``,
``--lora-r``, ``--report-to`` ...); an unset flag keeps the default.

``--protocol rag-gym`` converts episodes with the RAG-Gym paper's rules (see
:mod:`raggym.trainers.datasets`; critic rows then need no corpus) and starts from the
settings of the paper's code (``Config.for_protocol``: LoRA on q/k/v, batch, accumulation,
learning rate, epochs, 4,096-token length, evaluation split, and for the critic the
chat-templated input and reward centering); flags given explicitly still win.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from raggym.trainers.config import TrainConfig
from raggym.trainers.critic import CriticTrainConfig, train_critic
from raggym.trainers.datasets import FORMATS, Kind
from raggym.trainers.dpo import DPOTrainConfig, train_dpo
from raggym.trainers.grpo import GRPOTrainConfig, train_grpo
from raggym.trainers.retriever_cli import add_retriever_parser
from raggym.trainers.sft import SFTTrainConfig, train_sft
from raggym.trainers.training import TrainResult
from raggym_env.protocols import DEFAULT_PROTOCOL, PROTOCOLS

__all__ = [
    "METHODS",
    "Method",
    "add_config_arguments",
    "config_from_args",
    "load_training_rows",
    "train_command",
]


@dataclasses.dataclass(frozen=True)
class Method:
    """A ``raggym train`` method: its config class, trainer, row kind and blurb.

    ``kind`` is ``None`` for a method that takes no rows (GRPO: the env is the data).
    """

    config_cls: type[TrainConfig]
    train: Callable[..., TrainResult]
    kind: Kind | None
    help: str
    loader: str


METHODS: dict[str, Method] = {
    "sft": Method(
        SFTTrainConfig,
        train_sft,
        "sft",
        "supervised fine-tuning of the actor on the chosen actions (LoRA)",
        "TransformersLLM",
    ),
    "dpo": Method(
        DPOTrainConfig,
        train_dpo,
        "dpo",
        "direct preference optimisation of the actor on chosen/rejected actions (LoRA)",
        "TransformersLLM",
    ),
    "critic": Method(
        CriticTrainConfig,
        train_critic,
        "reward",
        "train a critic (process reward model) on chosen/rejected state-action texts (LoRA)",
        "RewardModelCritic",
    ),
    "grpo": Method(
        GRPOTrainConfig,
        train_grpo,
        None,
        "online RL of the actor in the environment with GRPO: search/answer tools (LoRA)",
        "TransformersLLM",
    ),
}
"""The methods ``raggym train`` offers."""


def _field_type(hint: Any) -> tuple[Any, bool]:
    """The non-``None`` type of a field annotation and whether it is a tuple of strings."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        hint = args[0]
        origin = typing.get_origin(hint)
    return hint, origin is tuple


def _format_default(value: Any) -> str:
    if isinstance(value, tuple):
        return " ".join(str(v) for v in value)
    return "unset" if value is None else str(value)


def add_config_arguments(parser: argparse.ArgumentParser, config_cls: type[TrainConfig]) -> None:
    """Add one flag per field of ``config_cls``, with the field's help text and default.

    Flags are the field names with dashes (``--lora-r``), preceded by the short spellings
    in the field's ``metadata["flags"]`` (``--lr``); booleans get ``--x/--no-x``; tuples
    take several values. An unset flag is absent from the parsed namespace, so the
    dataclass default applies.
    """
    hints = typing.get_type_hints(config_cls)
    group = parser.add_argument_group(f"{config_cls.__name__} settings")
    for f in dataclasses.fields(config_cls):
        flags = [*f.metadata.get("flags", ()), f"--{f.name.replace('_', '-')}"]
        help_text = str(f.metadata["help"]).replace("%", "%%")
        required = bool(f.metadata.get("required"))
        kwargs: dict[str, Any] = {"dest": f.name, "help": help_text}
        if required:
            kwargs["required"] = True
        else:
            kwargs["default"] = argparse.SUPPRESS
            if "default:" not in help_text:
                kwargs["help"] = f"{help_text} (default: {_format_default(f.default)})"
        base, is_tuple = _field_type(hints[f.name])
        if base is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif is_tuple:
            kwargs.update(nargs="+", metavar="NAME")
        else:
            kwargs["type"] = base if base in (int, float) else str
        if "choices" in f.metadata:
            kwargs["choices"] = f.metadata["choices"]
        group.add_argument(*flags, **kwargs)


def config_from_args(config_cls: type[TrainConfig], args: argparse.Namespace) -> Any:
    """Build ``config_cls`` from the flags given (the others keep ``--protocol``'s defaults).

    Raises:
        ValueError: a value the config rejects.
    """
    values = vars(args)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(config_cls):
        if f.name in values:
            value = values[f.name]
            kwargs[f.name] = tuple(value) if isinstance(value, list) else value
    return config_cls.for_protocol(getattr(args, "protocol", DEFAULT_PROTOCOL), **kwargs)


def _first_object(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {str(path)!r}")
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not valid JSON ({exc})") from exc
            if not isinstance(data, dict):
                raise ValueError(f"{path}:{number}: expected a JSON object")
            return data
    raise ValueError(f"{str(path)!r} holds no records")


def _corpus(args: argparse.Namespace) -> Any:
    if args.corpus is not None:
        from raggym_env.corpora import load_corpus

        return load_corpus(args.corpus)
    if args.task is not None:
        from raggym_env.tasks import default_corpus

        return default_corpus(args.task, args.data_path)
    raise ValueError(
        "critic rows from episodes need the corpus the episodes retrieved from: pass --task "
        "(with --data-path when the questions did not come from the bundled sample) or --corpus"
    )


def load_training_rows(method: str, args: argparse.Namespace) -> tuple[Any, str]:
    """The training rows of ``--episodes`` for ``method``, and a line saying where they came from.

    An episode file is converted with :mod:`raggym.trainers.datasets` (``--kept-only`` and
    ``--rejected-rank`` are passed on when given); a rows file is returned as its path.

    Raises:
        ValueError: the file is neither, or the conversion made no rows.
        FileNotFoundError: the file (or the corpus) does not exist.
    """
    spec = METHODS[method]
    if spec.kind is None:
        raise ValueError(f"raggym train {method} takes no training rows")
    path = Path(args.episodes)
    first = _first_object(path)
    if "schema_version" not in first:
        if not any(set(option) <= set(first) for option in FORMATS[spec.kind]):
            wanted = " or ".join("/".join(option) for option in FORMATS[spec.kind])
            raise ValueError(
                f"{str(path)!r} is neither an episode file (records with 'schema_version') "
                f"nor {method} rows (columns {wanted}); its first record has {sorted(first)}"
            )
        return path, f"rows file {path}"

    from raggym.trainers import datasets as converters
    from raggym_env.store import final_episodes, read_episodes

    episodes = final_episodes(read_episodes(path))
    stats = converters.DatasetStats(spec.kind)
    protocol = getattr(args, "protocol", DEFAULT_PROTOCOL)
    options: dict[str, Any] = {"stats": stats, "protocol": protocol}
    if args.kept_only is not None:
        options["kept_only"] = args.kept_only
    if args.rejected_rank is not None and method != "sft":
        options["rejected_rank"] = args.rejected_rank
    if method == "sft":
        rows = converters.sft_rows(episodes, **options)
    elif method == "dpo":
        rows = converters.dpo_rows(episodes, **options)
    else:
        corpus = None if protocol != DEFAULT_PROTOCOL else _corpus(args)
        rows = converters.reward_rows(episodes, corpus, **options)
    if not rows:
        raise ValueError(f"the episodes of {str(path)!r} gave no {method} rows\n{stats.summary()}")
    summary = "\n".join(f"  {line}" for line in stats.summary().splitlines())
    return rows, f"episodes {path}\n{summary}"


def _add_data_arguments(parser: argparse.ArgumentParser, method: str) -> None:
    group = parser.add_argument_group("training data")
    parser.add_argument(
        "--protocol",
        default=DEFAULT_PROTOCOL,
        choices=PROTOCOLS,
        help="raggym (default) or rag-gym: the RAG-Gym paper's data rules and training "
        "settings (explicit flags still win)",
    )
    group.add_argument(
        "--episodes",
        required=True,
        metavar="FILE",
        help="an episode JSONL (converted with raggym.trainers.datasets) or a rows JSONL "
        "(prompt/completion rows for sft, chosen/rejected rows for dpo and critic)",
    )
    group.add_argument(
        "--kept-only",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="episodes: use only those collection marked as kept "
        "(default: yes for sft, no for dpo and critic)",
    )
    if method != "sft":
        group.add_argument(
            "--rejected-rank",
            type=int,
            default=None,
            help="episodes: the highest rank a rejected candidate may have "
            "(default: 3 for dpo, 2 for critic)",
        )
    else:
        parser.set_defaults(rejected_rank=None)
    if method == "critic":
        group.add_argument(
            "--task",
            help="episodes: the task whose corpus they retrieved from "
            "(hotpotqa, 2wikimultihopqa, bamboogle, medqa)",
        )
        group.add_argument(
            "--data-path", type=Path, help="episodes: the task's question file (default: bundled)"
        )
        group.add_argument(
            "--corpus", type=Path, help="episodes: the corpus file or folder they retrieved from"
        )


def _summary(method: str, source: str, result: TrainResult) -> str:
    metrics = result.metrics
    final = result.final_loss
    lines = [
        f"raggym train {method}: {metrics.get('num_rows')} rows from {source}",
        f"  steps: {metrics.get('global_step')}, final loss: "
        + ("n/a" if final is None else f"{final:.4f}")
        + (
            f", mean train loss: {metrics['train_loss']:.4f}"
            if isinstance(metrics.get("train_loss"), (int, float))
            else ""
        )
        + (
            f", {metrics['train_runtime']:.1f} s"
            if isinstance(metrics.get("train_runtime"), (int, float))
            else ""
        ),
    ]
    used, given = metrics.get("rows_used"), metrics.get("num_rows")
    if isinstance(used, int) and isinstance(given, int) and used < given:
        lines.append(f"  rows dropped by TRL (prompt fills max_length): {given - used}")
    if metrics.get("dropped_pairs"):
        lines.append(f"  pairs dropped (action longer than max_length): {metrics['dropped_pairs']}")
    lines.append(f"  adapter: {result.adapter_dir}")
    lines.append(f"  load it with {METHODS[method].loader}({str(result.adapter_dir)!r})")
    return "\n".join(lines)


def _grpo_summary(result: TrainResult) -> str:
    metrics = result.metrics
    lines = [f"raggym train grpo: {metrics.get('num_rows')} questions, rolled out in the env"]
    lines.append(
        f"  steps: {metrics.get('global_step')}, rollouts scored: {metrics.get('rollouts')}"
    )
    for entry in metrics.get("env_log", []):
        lines.append(
            f"  step {int(entry['step'])}: reward {entry.get('env/reward', math.nan):.3f}, "
            f"outcome {entry.get('env/outcome', math.nan):.3f}, "
            f"searches {entry.get('env/searches', math.nan):.2f}, "
            f"invalid {entry.get('env/invalid_actions', math.nan):.2f}, "
            f"tool failures {entry.get('env/tool_failures', math.nan):.2f}"
        )
    lines.append(f"  adapter: {result.adapter_dir}")
    lines.append(f"  load it with TransformersLLM({str(result.adapter_dir)!r})")
    return "\n".join(lines)


def _description(name: str, spec: Method) -> str:
    if spec.kind is None:
        return (
            f"{spec.help[0].upper()}{spec.help[1:]}. The environment is the data: each "
            "question of the task is rolled out NUM_GENERATIONS times with the search and "
            "answer tools, scored by the env's outcome metric (plus the weighted process and "
            "format terms), and the retrieved text is masked out of the loss. Needs "
            "raggym[grpo] (TRL >= 1.16) and a chat template TRL can parse tool calls from. "
            "The final adapter goes to OUT/final; load it with TransformersLLM('OUT/final')."
        )
    defaults = spec.config_cls.__dataclass_fields__
    return (
        f"{spec.help[0].upper()}{spec.help[1:]}. Defaults follow the RAG-Gym paper: "
        f"learning rate {defaults['learning_rate'].default:g}, "
        f"{defaults['num_train_epochs'].default:g} epoch(s), LoRA r={defaults['lora_r'].default} "
        f"alpha={defaults['lora_alpha'].default} on the attention projections. The final "
        f"adapter goes to OUT/final; load it with {spec.loader}('OUT/final')."
    )


def _run(args: argparse.Namespace) -> int:
    method = args.method
    spec = METHODS[method]
    config = config_from_args(spec.config_cls, args)
    if spec.kind is None:
        print(_grpo_summary(spec.train(config)))
        return 0
    data, source = load_training_rows(method, args)
    result = spec.train(config, data)
    print(_summary(method, source, result))
    return 0


def train_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``raggym train sft|dpo|critic|grpo|retriever``."""
    parser = sub.add_parser(
        "train",
        help="train an actor (sft, dpo, grpo) or a critic with LoRA, or the dense retriever",
        description=(
            "Fine-tune an actor with SFT or DPO, or train a critic (a reward model), with "
            "LoRA through TRL, from episodes or ready-made rows, or train an actor online in "
            "the environment with GRPO. The final adapter, its "
            "tokenizer and raggym_train.json go to OUT/final; TransformersLLM(OUT/final) or "
            "RewardModelCritic(OUT/final) load it. `raggym train retriever` fine-tunes the "
            "dense retriever on hard negatives mined from a question file instead."
        ),
    )
    methods = parser.add_subparsers(dest="method", required=True, metavar="METHOD")
    for name, spec in METHODS.items():
        method_parser = methods.add_parser(
            name,
            help=spec.help,
            description=_description(name, spec),
        )
        if spec.kind is not None:
            _add_data_arguments(method_parser, name)
        add_config_arguments(method_parser, spec.config_cls)
        method_parser.set_defaults(func=_run)
    add_retriever_parser(methods)
