"""The run configuration every trainer shares, with each field's help text.

Every method has one config dataclass (:class:`~raggym.trainers.sft.SFTTrainConfig`,
:class:`~raggym.trainers.dpo.DPOTrainConfig`,
:class:`~raggym.trainers.critic.CriticTrainConfig`) deriving from :class:`TrainConfig`,
whose fields carry their help text (``metadata["help"]``, what ``raggym train`` shows). The
defaults are the RAG-Gym paper's LoRA setting (``r=256``, ``alpha=512``, dropout 0.05 on the
attention projections) with each method's learning rate and epochs; batch size, length and
logging defaults are this package's.

``Config.for_protocol("rag-gym", **overrides)`` gives the settings of the RAG-Gym paper's
code instead (:data:`RAG_GYM_LORA` plus each method's ``RAG_GYM_PRESET``: batch,
accumulation, learning rate, epochs, length, evaluation split); ``overrides`` win.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from raggym_env.protocols import RAG_GYM, check_protocol

__all__ = [
    "RAG_GYM_LORA",
    "REPORT_TO_CHOICES",
    "SAVE_STRATEGIES",
    "TrainConfig",
    "config_field",
    "config_help",
]

REPORT_TO_CHOICES = ("none", "wandb", "tensorboard")
"""Where training metrics go besides the returned log history."""

SAVE_STRATEGIES = ("no", "steps", "epoch")
"""When intermediate checkpoints are written (``output_dir/checkpoint-<step>``)."""


RAG_GYM_LORA: dict[str, Any] = {
    "lora_r": 256,
    "lora_alpha": 512,
    "lora_dropout": 0.05,
    "lora_target_modules": ("q_proj", "k_proj", "v_proj"),
}
"""The LoRA settings of the RAG-Gym paper's code (its text says all attention projections;
its code adapts ``q``, ``k`` and ``v``)."""

_Config = TypeVar("_Config", bound="TrainConfig")


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
    lora_modules_to_save: tuple[str, ...] = config_field(
        (),
        "modules trained in full beside the adapters and saved with them (e.g. embed_tokens "
        "and lm_head when the tokenizer gained tokens, or a model trained from scratch)",
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
    eval_ratio: float = config_field(
        0.0, "fraction of the rows held out and evaluated after each epoch (0: none)"
    )

    RAG_GYM_PRESET: ClassVar[dict[str, Any]] = {}
    """This method's settings under ``protocol="rag-gym"`` (besides :data:`RAG_GYM_LORA`)."""

    @classmethod
    def for_protocol(cls: type[_Config], protocol: str, **overrides: Any) -> _Config:
        """A config with ``protocol``'s settings; ``overrides`` (e.g. model) win over them.

        ``"raggym"`` gives this class's defaults; ``"rag-gym"`` the paper's code settings.

        Raises:
            ValueError: an unknown protocol, or a value the config rejects.
        """
        values: dict[str, Any] = {}
        if check_protocol(protocol) == RAG_GYM:
            values.update(RAG_GYM_LORA)
            values.update(cls.RAG_GYM_PRESET)
        values.update(overrides)
        return cls(**values)

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
        for name in ("warmup_ratio", "lora_dropout", "eval_ratio"):
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
        if isinstance(self.lora_modules_to_save, str):
            self.lora_modules_to_save = (self.lora_modules_to_save,)
        self.lora_modules_to_save = tuple(self.lora_modules_to_save)
        if not all(isinstance(m, str) and m for m in self.lora_modules_to_save):
            raise ValueError(
                f"lora_modules_to_save must be module names, got {self.lora_modules_to_save!r}"
            )
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
