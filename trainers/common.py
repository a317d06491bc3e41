"""What the SFT, DPO and critic trainers share: the run config, data loading, LoRA, results.

Every method has one config dataclass (:class:`~raggym.trainers.sft.SFTTrainConfig`,
:class:`~raggym.trainers.dpo.DPOTrainConfig`,
:class:`~raggym.trainers.critic.CriticTrainConfig`) deriving from :class:`TrainConfig`,
whose fields carry their help text (``metadata["help"]``, what ``raggym train`` shows). The
defaults are the RAG-Gym paper's LoRA setting (``r=256``, ``alpha=512``, dropout 0.05 on the
attention projections) with each method's learning rate and epochs; batch size, length and
logging defaults are this package's.

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
import importlib
import importlib.metadata
import importlib.util
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from raggym.agents.llm.hf import TRAIN_RECORD
from raggym.trainers.datasets import read_jsonl

__all__ = [
    "FINAL_DIR",
    "REPORT_TO_CHOICES",
    "SAVE_STRATEGIES",
    "TRAIN_RECORD",
    "Precision",
    "TrainConfig",
    "TrainResult",
    "TrainingMethod",
    "config_field",
    "config_help",
    "load_tokenizer",
    "lora_config",
    "require_module",
    "resolve_precision",
    "run_training",
    "to_dataset",
    "trl_arguments",
]

_INSTALL_HINT = (
    "training needs torch, transformers, trl, peft and datasets: pip install 'raggym[train]'"
)

FINAL_DIR = "final"
"""The sub-folder of ``output_dir`` that receives the final adapter and tokenizer."""

REPORT_TO_CHOICES = ("none", "wandb", "tensorboard")
"""Where training metrics go besides the returned log history."""

SAVE_STRATEGIES = ("no", "steps", "epoch")
"""When intermediate checkpoints are written (``output_dir/checkpoint-<step>``)."""

_TRACKER_HINTS = {
    "wandb": (("wandb",), "pip install 'raggym[track]' (or pip install wandb)"),
    "tensorboard": (("tensorboard", "tensorboardX"), "pip install tensorboard"),
}


def config_field(default: Any, help: str, *flags: str, choices: Sequence[str] | None = None) -> Any:
    """A run-config dataclass field with its help text, extra CLI flag spellings and choices.

    Args:
        default: the default value (tuples for sequences, so it stays immutable).
        help: the help text ``raggym train`` shows.
        *flags: extra spellings of the command-line flag (e.g. ``"--lr"``).
        choices: the allowed values, if restricted.
    """
    metadata: dict[str, Any] = {"help": help}
    if flags:
        metadata["flags"] = flags
    if choices is not None:
        metadata["choices"] = tuple(choices)
    return field(default=default, metadata=metadata)


def _required(help: str, *flags: str) -> Any:
    metadata: dict[str, Any] = {"help": help, "required": True}
    if flags:
        metadata["flags"] = flags
    return field(metadata=metadata)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass
class TrainConfig:
    """Settings every training method shares; subclasses set the method's defaults.

    Every field's help text is in its ``metadata["help"]`` (see :func:`config_help`).

    Raises:
        ValueError: (on construction) a field has an invalid value.
    """

    model: str = _required("base model: a local directory or a hub name")
    output_dir: str = _required(
        "run directory: checkpoints go here, the final adapter to OUTPUT_DIR/final", "--out"
    )
    learning_rate: float = config_field(5e-5, "peak learning rate (AdamW)", "--lr")
    num_train_epochs: float = config_field(1.0, "passes over the training rows", "--epochs")
    max_steps: int = config_field(
        -1, "stop after this many optimizer steps (overrides epochs when > 0)"
    )
    per_device_batch_size: int = config_field(2, "rows per device per forward pass", "--batch-size")
    gradient_accumulation_steps: int = config_field(
        8, "forward passes per optimizer step (effective batch = batch size x this x devices)"
    )
    max_length: int = config_field(
        4096, "most tokens per training sequence (prompt plus completion)"
    )
    warmup_ratio: float = config_field(
        0.0, "fraction of the steps spent warming the learning rate up"
    )
    lr_scheduler_type: str = config_field("linear", "learning-rate schedule (a transformers name)")
    weight_decay: float = config_field(0.0, "AdamW weight decay")
    lora_r: int = config_field(256, "LoRA rank")
    lora_alpha: int = config_field(512, "LoRA scaling numerator (scale = alpha / r)")
    lora_dropout: float = config_field(0.05, "dropout on the LoRA branch")
    lora_target_modules: tuple[str, ...] = config_field(
        ("q_proj", "k_proj", "v_proj", "o_proj"),
        "module names that get LoRA adapters (the attention projections by default)",
    )
    gradient_checkpointing: bool = config_field(
        True, "recompute activations in the backward pass to save memory (slower)"
    )
    logging_steps: int = config_field(10, "log the loss every this many optimizer steps")
    save_strategy: str = config_field(
        "epoch", "when to write checkpoints to OUTPUT_DIR/checkpoint-STEP", choices=SAVE_STRATEGIES
    )
    save_steps: int = config_field(
        500, "checkpoint every this many steps when save_strategy is 'steps'"
    )
    save_total_limit: int | None = config_field(
        None, "keep at most this many checkpoints (default: all)"
    )
    resume_from_checkpoint: str | None = config_field(
        None, "a checkpoint directory to resume training from"
    )
    seed: int = config_field(42, "random seed (LoRA initialisation, data order, dropout)")
    report_to: str = config_field(
        "none",
        "where to send metrics: none, wandb (offline with WANDB_MODE=offline) or tensorboard",
        choices=REPORT_TO_CHOICES,
    )
    run_name: str | None = config_field(None, "run name shown by wandb/tensorboard")
    use_cpu: bool | None = config_field(
        None, "train on the CPU (default: only when CUDA is unavailable)"
    )
    bf16: bool | None = config_field(
        None, "bf16 weights and mixed precision (default: on CUDA when supported, off on CPU)"
    )

    def __post_init__(self) -> None:
        for name in ("model", "output_dir"):
            value = getattr(self, name)
            if isinstance(value, Path):
                setattr(self, name, str(value))
            elif not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty string or path, got {value!r}")
        for name in ("learning_rate", "num_train_epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        for name in ("warmup_ratio", "lora_dropout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
            if not 0 <= value < 1:
                raise ValueError(f"{name} must be in [0, 1), got {value!r}")
        if isinstance(self.weight_decay, bool) or not isinstance(self.weight_decay, (int, float)):
            raise ValueError(f"weight_decay must be a number, got {self.weight_decay!r}")
        for name in (
            "per_device_batch_size",
            "gradient_accumulation_steps",
            "max_length",
            "lora_r",
            "lora_alpha",
            "logging_steps",
            "save_steps",
        ):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not _is_int(self.max_steps) or (self.max_steps < 1 and self.max_steps != -1):
            raise ValueError(f"max_steps must be a positive int or -1, got {self.max_steps!r}")
        if self.save_total_limit is not None and (
            not _is_int(self.save_total_limit) or self.save_total_limit < 1
        ):
            raise ValueError(
                f"save_total_limit must be None or a positive int, got {self.save_total_limit!r}"
            )
        if not _is_int(self.seed):
            raise ValueError(f"seed must be an int, got {self.seed!r}")
        if isinstance(self.lora_target_modules, str):
            self.lora_target_modules = (self.lora_target_modules,)
        self.lora_target_modules = tuple(self.lora_target_modules)
        if not self.lora_target_modules or not all(
            isinstance(m, str) and m for m in self.lora_target_modules
        ):
            raise ValueError(
                "lora_target_modules must be non-empty module names, "
                f"got {self.lora_target_modules!r}"
            )
        if self.save_strategy not in SAVE_STRATEGIES:
            raise ValueError(
                f"save_strategy must be one of {SAVE_STRATEGIES}, got {self.save_strategy!r}"
            )
        if self.report_to not in REPORT_TO_CHOICES:
            raise ValueError(
                f"report_to must be one of {REPORT_TO_CHOICES}, got {self.report_to!r}"
            )
        for name in ("use_cpu", "bf16"):
            if getattr(self, name) not in (None, True, False):
                raise ValueError(
                    f"{name} must be None (auto) or a bool, got {getattr(self, name)!r}"
                )
        for name in ("lr_scheduler_type",):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"{name} must be a non-empty string, got {getattr(self, name)!r}")
        for name in ("run_name", "resume_from_checkpoint"):
            value = getattr(self, name)
            if isinstance(value, Path):
                setattr(self, name, str(value))
            elif value is not None and not isinstance(value, str):
                raise ValueError(f"{name} must be None or a string, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON-ready values (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


def config_help(config_cls: type[TrainConfig]) -> dict[str, str]:
    """Field name -> help text of a run config class (every field has one)."""
    return {f.name: str(f.metadata["help"]) for f in dataclasses.fields(config_cls)}


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
    """Import a training dependency, naming the extra to install when it is missing."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ImportError(f"{_INSTALL_HINT} ({exc})") from exc


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
    modules, hint = _TRACKER_HINTS[report_to]
    if not any(importlib.util.find_spec(m) is not None for m in modules):
        raise ImportError(f"report_to={report_to!r} needs {' or '.join(modules)}: {hint}")


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


def lora_config(
    config: TrainConfig, task_type: str, modules_to_save: Sequence[str] | None = None
) -> Any:
    """The ``peft.LoraConfig`` of a run.

    Args:
        config: the run config (rank, alpha, dropout, target modules).
        task_type: ``"CAUSAL_LM"`` or ``"SEQ_CLS"``.
        modules_to_save: modules trained in full and saved with the adapter (a
            classification head).

    Raises:
        ImportError: peft is not installed.
    """
    peft = require_module("peft")
    return peft.LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=float(config.lora_dropout),
        target_modules=list(config.lora_target_modules),
        modules_to_save=list(modules_to_save) if modules_to_save else None,
        task_type=task_type,
        bias="none",
    )


def to_dataset(
    data: Any,
    *,
    required: Iterable[Iterable[str]],
    optional: Iterable[str] = (),
    what: str = "training data",
) -> Any:
    """Turn rows into a ``datasets.Dataset`` holding only the columns a trainer reads.

    Args:
        data: a list (or other sequence) of row dicts, a JSONL file path, or a
            ``datasets.Dataset``.
        required: alternative column sets; the data must hold every column of at least one.
        optional: further columns kept when present. Any other column (the ``meta`` of
            :mod:`raggym.trainers.datasets` rows, say) is dropped, since TRL treats some column
            names specially.
        what: how to name the data in errors.

    Returns:
        A non-empty ``datasets.Dataset``.

    Raises:
        ValueError: no rows, rows that are not dicts, a bad JSONL line, or none of the
            column sets present.
        TypeError: ``data`` is of an unsupported type.
        FileNotFoundError: a path that does not exist.
        ImportError: datasets is not installed.
    """
    hf_datasets = require_module("datasets")
    options = [tuple(option) for option in required]
    keep = {name for option in options for name in option} | set(optional)
    rows: list[Any] = []
    if isinstance(data, hf_datasets.Dataset):
        columns = set(data.column_names)
        size = len(data)
    else:
        if isinstance(data, (str, Path)):
            if not Path(data).is_file():
                raise FileNotFoundError(f"{what}: no such file {str(data)!r}")
            rows = read_jsonl(data)
        elif isinstance(data, Sequence) and not isinstance(data, (str, bytes, bytearray)):
            rows = list(data)
        else:
            raise TypeError(
                f"{what} must be a list of row dicts, a JSONL path or a datasets.Dataset, "
                f"got {type(data).__name__}"
            )
        for index, row in enumerate(rows):
            if not isinstance(row, Mapping):
                raise ValueError(f"{what}: row {index} is a {type(row).__name__}, not a dict")
        columns = set().union(*(row.keys() for row in rows))
        size = len(rows)
    if size == 0:
        raise ValueError(f"{what} has no rows")
    if not any(set(option) <= columns for option in options):
        wanted = " or ".join("/".join(option) for option in options)
        raise ValueError(f"{what} needs columns {wanted}; got {sorted(columns)}")
    if isinstance(data, hf_datasets.Dataset):
        extra = sorted(columns - keep)
        return data.remove_columns(extra) if extra else data
    return hf_datasets.Dataset.from_list(
        [{k: v for k, v in row.items() if k in keep} for row in rows]
    )


@dataclass(frozen=True)
class TrainingMethod:
    """How one method builds its model and trainer (internal plumbing of the trainers).

    Attributes:
        name: ``"sft"``, ``"dpo"`` or ``"critic"``.
        auto_model: the transformers auto class name that loads the base model.
        trl_config: the TRL config class name.
        trl_trainer: the TRL trainer class name.
        task_type: the PEFT task type.
        model_kwargs: extra ``from_pretrained`` arguments (e.g. ``num_labels``).
        trl_extra: method-specific TRL config fields.
        modules_to_save: modules trained in full and saved with the adapter.
        record_extra: extra keys written to ``raggym_train.json``.
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


def run_training(
    spec: TrainingMethod,
    config: TrainConfig,
    dataset: Any,
    *,
    tokenizer: Any | None = None,
    callbacks: Sequence[Any] | None = None,
    num_rows: int | None = None,
    extra_metrics: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Load the base model, train it with LoRA through TRL and save the final adapter.

    Args:
        spec: the method's plumbing.
        config: the run config.
        dataset: the prepared ``datasets.Dataset``.
        tokenizer: the tokenizer (default: loaded from ``config.model``).
        callbacks: ``transformers.TrainerCallback`` objects added to the trainer.
        num_rows: rows trained on, for the metrics (default ``len(dataset)``).
        extra_metrics: method-specific metrics added to the result and the record.

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
    auto_model = getattr(transformers, spec.auto_model)
    dtype = torch.bfloat16 if precision.bf16 and not precision.use_cpu else torch.float32
    model = auto_model.from_pretrained(config.model, dtype=dtype, **dict(spec.model_kwargs))
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    args = trl_arguments(getattr(trl, spec.trl_config), config, precision, **spec.trl_extra)
    transformers.set_seed(config.seed)  # LoRA initialisation happens in the trainer
    trainer = getattr(trl, spec.trl_trainer)(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=lora_config(config, spec.task_type, spec.modules_to_save),
        callbacks=list(callbacks) if callbacks else None,
    )
    rows_used = len(trainer.train_dataset)
    if rows_used == 0:
        raise ValueError(
            f"none of the {len(dataset)} {spec.name} rows is left after TRL's preprocessing "
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
    _write_record(adapter_dir, spec, config, precision, metrics)
    if config.report_to == "wandb":
        _finish_wandb()
    return TrainResult(output_dir, adapter_dir, metrics, log_history)


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
    spec: TrainingMethod,
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
        "method": spec.name,
        "base_model": _base_model_id(config.model),
        "task_type": spec.task_type,
        "max_length": config.max_length,
        **dict(spec.record_extra),
        "device": precision.device,
        "bf16": precision.bf16,
        "config": config.to_dict(),
        "metrics": _jsonable({k: v for k, v in metrics.items() if k != "losses"}),
        "versions": versions,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    (adapter_dir / TRAIN_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def _finish_wandb() -> None:
    """Close the wandb run the trainer opened, so its files are complete."""
    wandb = require_module("wandb")
    if getattr(wandb, "run", None) is not None:
        wandb.finish()
