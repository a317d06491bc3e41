"""Running one training method: LoRA through TRL, checkpoints, the final adapter, results.

A run loads the base model, wraps it with LoRA through TRL, trains, keeps the checkpoints
its ``save_strategy`` asks for under ``output_dir``, and saves the final adapter with the
tokenizer to ``output_dir/final`` along with ``raggym_train.json`` (base model, method,
config), so :class:`raggym.agents.llm.hf.TransformersLLM` and
:class:`raggym.agents.critics.reward_model.RewardModelCritic` load it by that path alone.

Device and precision are automatic unless set: no CUDA means CPU and no bf16; CUDA with
bf16 support means bf16 weights and mixed precision. torch, transformers, trl, peft and
datasets are imported lazily (``pip install 'raggym[train]'``).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import math
import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from raggym.agents.llm.hf import TRAIN_RECORD
from raggym.trainers.config import TrainConfig
from raggym_env.availability import (
    MissingDependencyError,
    is_tensorboard_available,
    is_wandb_available,
    require,
)
from raggym_env.redaction import redact

__all__ = [
    "FINAL_DIR",
    "TRAIN_RECORD",
    "Precision",
    "TrainResult",
    "TrainingMethod",
    "load_tokenizer",
    "lora_config",
    "require_module",
    "require_rows",
    "resolve_precision",
    "row_groups",
    "run_training",
    "split_eval",
    "trl_arguments",
]

FINAL_DIR = "final"
"""The sub-folder of ``output_dir`` that receives the final adapter and tokenizer."""

_TRACKERS = {"wandb": is_wandb_available, "tensorboard": is_tensorboard_available}


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced.

    Attributes:
        output_dir: the run directory (checkpoints, model card).
        adapter_dir: ``output_dir/final``: the final adapter, tokenizer and
            ``raggym_train.json``; load it with ``TransformersLLM(adapter_dir)`` or
            ``RewardModelCritic(adapter_dir)``.
        metrics: the trainer's final metrics (``train_loss``, ``train_runtime``, ...) plus
            ``global_step``, ``num_rows`` (rows given), ``rows_used`` (rows left after TRL's
            preprocessing, which drops rows whose prompt alone fills ``max_length``),
            ``losses`` (every logged loss, in order) and ``final_loss`` (the last of them,
            ``None`` if none was logged).
        log_history: every log entry of the run, as the trainer recorded it.
    """

    output_dir: Path
    adapter_dir: Path
    metrics: dict[str, Any]
    log_history: list[dict[str, Any]]

    @property
    def losses(self) -> list[float]:
        """The training losses logged, in order."""
        return list(self.metrics.get("losses", []))

    @property
    def final_loss(self) -> float | None:
        """The last logged training loss (``None`` if none was logged)."""
        value = self.metrics.get("final_loss")
        return None if value is None else float(value)


@dataclass(frozen=True)
class Precision:
    """The resolved device and precision of a run."""

    use_cpu: bool
    bf16: bool

    @property
    def device(self) -> str:
        """``"cpu"`` or ``"cuda"``."""
        return "cpu" if self.use_cpu else "cuda"


def require_module(name: str) -> Any:
    """Import a training dependency, naming the ``train`` extra when it is missing.

    Raises:
        MissingDependencyError: ``name`` cannot be imported (an ``ImportError``).
    """
    return require(name, feature="training", extra="train")


def resolve_precision(config: TrainConfig) -> Precision:
    """Resolve ``use_cpu``/``bf16`` left at ``None``: CPU and no bf16 without CUDA.

    Raises:
        ImportError: torch is not installed.
        ValueError: ``use_cpu=False`` was asked for but CUDA is not available.
    """
    torch = require_module("torch")
    cuda = bool(torch.cuda.is_available())
    use_cpu = (not cuda) if config.use_cpu is None else config.use_cpu
    if not use_cpu and not cuda:
        raise ValueError("use_cpu=False needs a CUDA device and none is available")
    bf16 = config.bf16
    if bf16 is None:
        bf16 = (not use_cpu) and bool(torch.cuda.is_bf16_supported())
    return Precision(use_cpu=use_cpu, bf16=bf16)


def _check_tracker(report_to: str) -> None:
    if report_to == "none":
        return
    if not _TRACKERS[report_to]():
        raise MissingDependencyError(report_to, f"report_to={report_to!r}")


def trl_arguments(config_cls: type, config: TrainConfig, precision: Precision, **extra: Any) -> Any:
    """Build a TRL config (``SFTConfig``, ``DPOConfig``, ``RewardConfig``) from a run config.

    Args:
        config_cls: the TRL config class.
        config: the run config.
        precision: the resolved device and precision.
        **extra: method-specific TRL fields (e.g. ``beta``).

    Returns:
        An instance of ``config_cls``.
    """
    known = {f.name for f in dataclasses.fields(config_cls)}
    kwargs: dict[str, Any] = {
        "output_dir": config.output_dir,
        "learning_rate": float(config.learning_rate),
        "num_train_epochs": float(config.num_train_epochs),
        "max_steps": config.max_steps,
        "per_device_train_batch_size": config.per_device_batch_size,
        "gradient_accumulation_steps": config.gradient_accumulation_steps,
        "max_length": config.max_length,
        "lr_scheduler_type": config.lr_scheduler_type,
        "weight_decay": float(config.weight_decay),
        "logging_steps": config.logging_steps,
        "logging_first_step": True,
        "save_strategy": config.save_strategy,
        "save_steps": config.save_steps,
        "save_total_limit": config.save_total_limit,
        "seed": config.seed,
        "report_to": config.report_to,
        "run_name": config.run_name,
        "use_cpu": precision.use_cpu,
        "bf16": precision.bf16,
        "fp16": False,
        "dataloader_pin_memory": not precision.use_cpu,
    }
    # transformers 5.x renamed the warmup ratio to a fractional warmup_steps and
    # gradient_checkpointing to activation_checkpointing (the old names still warn).
    if "warmup_ratio" in known:
        kwargs["warmup_ratio"] = config.warmup_ratio
    else:
        kwargs["warmup_steps"] = config.warmup_ratio
    if "activation_checkpointing" in known:
        kwargs["activation_checkpointing"] = config.gradient_checkpointing
        kwargs["gradient_checkpointing"] = None
    else:
        kwargs["gradient_checkpointing"] = config.gradient_checkpointing
    kwargs.update(extra)
    return config_cls(**{k: v for k, v in kwargs.items() if k in known})


TIED_MODULES = frozenset({"embed_tokens", "lm_head"})
"""Module names of the input embeddings and the output layer that a model may tie."""


def lora_config(
    config: TrainConfig,
    task_type: str,
    modules_to_save: Sequence[str] | None = None,
    *,
    tied_embeddings: bool = False,
) -> Any:
    """The ``peft.LoraConfig`` of a run.

    Args:
        config: the run config (rank, alpha, dropout, target modules).
        task_type: ``"CAUSAL_LM"`` or ``"SEQ_CLS"``.
        modules_to_save: modules trained in full and saved with the adapter (a
            classification head).
        tied_embeddings: the model ties its output layer to its input embeddings. When the
            embeddings (or the output layer) are trained in full or adapted, peft is asked to
            keep the two tied (``ensure_weight_tying``, peft 0.18+); otherwise the adapter
            would train two copies that no longer agree, and the merged model would lose one.

    Raises:
        ImportError: peft is not installed.
    """
    peft = require_module("peft")
    saved = [*(modules_to_save or ()), *config.lora_modules_to_save]
    extra: dict[str, Any] = {}
    touched = {name.rsplit(".", 1)[-1] for name in [*saved, *config.lora_target_modules]}
    fields = getattr(peft.LoraConfig, "__dataclass_fields__", {})
    if tied_embeddings and touched & TIED_MODULES and "ensure_weight_tying" in fields:
        extra["ensure_weight_tying"] = True
    return peft.LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=float(config.lora_dropout),
        target_modules=list(config.lora_target_modules),
        modules_to_save=saved or None,
        task_type=task_type,
        bias="none",
        **extra,
    )


@dataclass(frozen=True)
class TrainingMethod:
    """How one method builds its model and trainer (internal plumbing of the trainers).

    Attributes:
        name: ``"sft"``, ``"dpo"``, ``"critic"`` or ``"grpo"``.
        auto_model: the transformers auto class name that loads the base model.
        trl_config: the TRL config class name.
        trl_trainer: the TRL trainer class name.
        task_type: the PEFT task type.
        model_kwargs: extra ``from_pretrained`` arguments (e.g. ``num_labels``).
        trl_extra: method-specific TRL config fields.
        modules_to_save: modules trained in full and saved with the adapter.
        record_extra: extra keys written to ``raggym_train.json``.
        trainer_kwargs: extra arguments of the TRL trainer (e.g. GRPO's
            ``environment_factory``).
    """

    name: str
    auto_model: str
    trl_config: str
    trl_trainer: str
    task_type: str
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)
    trl_extra: Mapping[str, Any] = field(default_factory=dict)
    modules_to_save: tuple[str, ...] = ()
    record_extra: Mapping[str, Any] = field(default_factory=dict)
    trainer_kwargs: Mapping[str, Any] = field(default_factory=dict)


def _base_model_id(model: str) -> str:
    """An absolute path for a local base model (so loaders find it from anywhere)."""
    path = Path(model).expanduser()
    return str(path.resolve()) if path.exists() else model


def load_tokenizer(model: str) -> Any:
    """The base model's tokenizer, with ``pad = eos`` when it has no pad token.

    Raises:
        ValueError: the tokenizer has neither a pad nor an eos token.
    """
    transformers = require_module("transformers")
    tokenizer = transformers.AutoTokenizer.from_pretrained(model)
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ValueError(f"the tokenizer of {model!r} has neither a pad nor an eos token")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def require_rows(dataset: Any, what: str) -> Any:
    """Return ``dataset``, or raise ``ValueError`` naming ``what`` when it has no rows."""
    if len(dataset) == 0:
        raise ValueError(f"{what} has no rows")
    return dataset


def row_groups(data: Any) -> list[str] | None:
    """The question (``meta["example_id"]``) of each row of a row list or JSONL file.

    ``None`` when ``data`` is a ``datasets.Dataset`` or some row names no question: the
    evaluation split then falls back to single rows.
    """
    if isinstance(data, (str, os.PathLike)):
        from raggym.trainers.datasets import read_jsonl

        rows: Sequence[Any] = read_jsonl(data) if Path(data).is_file() else []
    elif isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        rows = data
    else:
        return None
    keys = []
    for row in rows:
        meta = row.get("meta") if isinstance(row, Mapping) else None
        key = meta.get("example_id") if isinstance(meta, Mapping) else None
        if not isinstance(key, str):
            return None
        keys.append(key)
    return keys


def split_eval(
    dataset: Any, ratio: float, seed: int, groups: Sequence[str] | None = None
) -> tuple[Any, Any | None]:
    """Hold out about ``ratio`` of the rows for evaluation, whole questions at a time.

    With ``groups`` (one question key per row), the questions are shuffled with ``seed``
    and the first ``round(ratio * questions)`` go to evaluation with all their rows, so no
    question is on both sides (as the RAG-Gym code splits); without, single rows are.

    Returns:
        ``(train, eval)``; ``eval`` is ``None`` when ``ratio`` is 0 or nothing would be held
        out (or nothing left to train on).
    """
    if ratio <= 0 or len(dataset) < 2:
        return dataset, None
    keys = list(groups) if groups is not None and len(groups) == len(dataset) else None
    if keys is None:
        keys = [str(i) for i in range(len(dataset))]
    questions = sorted(set(keys))
    random.Random(seed).shuffle(questions)
    held = set(questions[: round(len(questions) * ratio)])
    if not held or len(held) == len(questions):
        return dataset, None
    train = [i for i, key in enumerate(keys) if key not in held]
    evaluate = [i for i, key in enumerate(keys) if key in held]
    return dataset.select(train), dataset.select(evaluate)


def run_training(
    method: TrainingMethod,
    config: TrainConfig,
    dataset: Any,
    *,
    tokenizer: Any | None = None,
    callbacks: Sequence[Any] | None = None,
    num_rows: int | None = None,
    extra_metrics: Mapping[str, Any] | None = None,
    eval_dataset: Any | None = None,
) -> TrainResult:
    """Load the base model, train it with LoRA through TRL and save the final adapter.

    Args:
        method: how the method builds its model and trainer.
        config: the run config.
        dataset: the prepared ``datasets.Dataset``.
        tokenizer: the tokenizer (default: loaded from ``config.model``).
        callbacks: ``transformers.TrainerCallback`` objects added to the trainer.
        num_rows: rows trained on, for the metrics (default ``len(dataset)``).
        extra_metrics: method-specific metrics added to the result and the record.
        eval_dataset: rows evaluated after each epoch (see :func:`split_eval`).

    Returns:
        The :class:`TrainResult`.

    Raises:
        ImportError: a training library, or the tracker of ``report_to``, is missing.
        ValueError: no row is left after TRL's preprocessing, or see
            :func:`resolve_precision`.
    """
    _check_tracker(config.report_to)
    precision = resolve_precision(config)
    torch = require_module("torch")
    transformers = require_module("transformers")
    trl = require_module("trl")
    if tokenizer is None:
        tokenizer = load_tokenizer(config.model)
    auto_model = getattr(transformers, method.auto_model)
    dtype = torch.bfloat16 if precision.bf16 and not precision.use_cpu else torch.float32
    model = auto_model.from_pretrained(config.model, dtype=dtype, **dict(method.model_kwargs))
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    trl_extra = dict(method.trl_extra)
    if eval_dataset is not None:
        trl_extra.update(
            eval_strategy="epoch", per_device_eval_batch_size=config.per_device_batch_size
        )
    args = trl_arguments(getattr(trl, method.trl_config), config, precision, **trl_extra)
    transformers.set_seed(config.seed)  # LoRA initialisation happens in the trainer
    trainer = getattr(trl, method.trl_trainer)(
        model=model,
        args=args,
        train_dataset=dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        peft_config=lora_config(
            config,
            method.task_type,
            method.modules_to_save,
            tied_embeddings=method.task_type == "CAUSAL_LM"
            and bool(getattr(model.config, "tie_word_embeddings", False)),
        ),
        callbacks=list(callbacks) if callbacks else None,
        **dict(method.trainer_kwargs),
    )
    _log_editors_first(trainer)
    rows_used = len(trainer.train_dataset)
    if rows_used == 0:
        raise ValueError(
            f"none of the {len(dataset)} {method.name} rows is left after TRL's preprocessing "
            f"(rows whose prompt alone fills max_length={config.max_length} tokens are "
            "dropped); raise max_length"
        )
    output = trainer.train(resume_from_checkpoint=config.resume_from_checkpoint)

    output_dir = Path(config.output_dir)
    adapter_dir = output_dir / FINAL_DIR
    trainer.save_model(str(adapter_dir))
    tokenizer.save_pretrained(str(adapter_dir))
    log_history = [dict(entry) for entry in trainer.state.log_history]
    losses = [float(e["loss"]) for e in log_history if isinstance(e.get("loss"), (int, float))]
    metrics: dict[str, Any] = dict(output.metrics)
    metrics.update(
        global_step=int(trainer.state.global_step),
        num_rows=len(dataset) if num_rows is None else num_rows,
        rows_used=rows_used,
        losses=losses,
        final_loss=losses[-1] if losses else None,
    )
    metrics.update(extra_metrics or {})
    _write_record(adapter_dir, method, config, precision, metrics)
    if config.report_to == "wandb":
        _finish_wandb()
    return TrainResult(output_dir, adapter_dir, metrics, log_history)


def _log_editors_first(trainer: Any) -> None:
    """Run callbacks that add entries to the logs (``edits_logs = True``) before the others.

    The trainer appends user callbacks after its reporters (wandb, tensorboard); moved to
    the front, what they add to a log entry is reported too.
    """
    handler = getattr(trainer, "callback_handler", None)
    callbacks = getattr(handler, "callbacks", None)
    if not isinstance(callbacks, list):
        return
    editors = [cb for cb in callbacks if getattr(cb, "edits_logs", False)]
    if editors:
        callbacks[:] = editors + [cb for cb in callbacks if cb not in editors]


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


def _write_record(
    adapter_dir: Path,
    method: TrainingMethod,
    config: TrainConfig,
    precision: Precision,
    metrics: Mapping[str, Any],
) -> None:
    versions: dict[str, str] = {}
    for package in ("raggym", "torch", "transformers", "trl", "peft"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    record = {
        "format": 1,
        "method": method.name,
        "base_model": _base_model_id(config.model),
        "task_type": method.task_type,
        "max_length": config.max_length,
        **redact(dict(method.record_extra)),
        "device": precision.device,
        "bf16": precision.bf16,
        "config": redact(config.to_dict()),
        "metrics": _jsonable({k: v for k, v in metrics.items() if k != "losses"}),
        "versions": versions,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    (adapter_dir / TRAIN_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def _finish_wandb() -> None:
    """Close the wandb run the trainer opened, so its files are complete."""
    wandb = require("wandb", feature="report_to='wandb'")
    if getattr(wandb, "run", None) is not None:
        wandb.finish()
