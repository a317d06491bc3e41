"""Direct preference optimisation of the actor, with LoRA through TRL's ``DPOTrainer``.

Rows are TRL preference rows, as :mod:`raggym.trainers.datasets` writes them: the state as chat
messages and the better / worse action sampled there::

    {"prompt": [{"role": "user", ...}],
     "chosen": [{"role": "assistant", "content": "Search: ..."}],
     "rejected": [{"role": "assistant", "content": "Answer: ..."}]}

(implicit-prompt rows, with only ``chosen``/``rejected``, work too). The reference model is
the base model itself (the adapter switched off), so no second copy is loaded. The defaults
are the RAG-Gym paper's: LoRA ``r=256``, ``alpha=512``, learning rate ``2e-6``, 1 epoch,
``beta=0.1``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from raggym.trainers.config import TrainConfig, config_field
from raggym.trainers.datasets import to_dataset
from raggym.trainers.training import (
    TrainingMethod,
    TrainResult,
    require_rows,
    row_groups,
    run_training,
    split_eval,
)

__all__ = ["DPOTrainConfig", "train_dpo"]


@dataclass
class DPOTrainConfig(TrainConfig):
    """DPO settings; the RAG-Gym paper's defaults: learning rate 2e-6, 1 epoch, beta 0.1.

    See :class:`~raggym.trainers.config.TrainConfig` for the shared fields.
    """

    learning_rate: float = config_field(2e-6, "peak learning rate (AdamW)", "--lr")
    num_train_epochs: float = config_field(1.0, "passes over the training rows", "--epochs")
    beta: float = config_field(
        0.1, "DPO temperature: higher keeps the policy closer to the reference"
    )
    sft_weight: float = config_field(
        0.0,
        "weight of a negative log-likelihood term on the chosen completions beside the DPO "
        "loss (0: plain DPO; 1: RPO), which keeps the chosen actions likely: plain DPO can "
        "lower both sides when the chosen ones are not the policy's own",
    )

    RAG_GYM_PRESET: ClassVar[dict[str, Any]] = {
        "learning_rate": 2e-6,
        "num_train_epochs": 1.0,
        "per_device_batch_size": 1,
        "gradient_accumulation_steps": 32,
        "max_length": 4096,  # the paper caps the prompt at 4,096; TRL 1.x caps the whole pair
        "eval_ratio": 0.0,
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if (
            isinstance(self.beta, bool)
            or not isinstance(self.beta, (int, float))
            or not math.isfinite(self.beta)
            or self.beta <= 0
        ):
            raise ValueError(f"beta must be a positive number, got {self.beta!r}")
        weight = self.sft_weight
        if (
            isinstance(weight, bool)
            or not isinstance(weight, (int, float))
            or not math.isfinite(weight)
            or weight < 0
        ):
            raise ValueError(f"sft_weight must be a number >= 0, got {weight!r}")


def train_dpo(
    config: DPOTrainConfig, data: Any, *, callbacks: Sequence[Any] | None = None
) -> TrainResult:
    """Train ``config.model`` with DPO and LoRA on preference rows.

    Args:
        config: the run settings.
        data: DPO rows: a list of dicts, a JSONL path or a ``datasets.Dataset``.
        callbacks: ``transformers.TrainerCallback`` objects added to the trainer.

    Returns:
        The :class:`~raggym.trainers.training.TrainResult`; the adapter is in ``output_dir/final``.

    Raises:
        TypeError: ``config`` is not a :class:`DPOTrainConfig`, or ``data`` of a bad type.
        ValueError: no rows, or rows without chosen/rejected.
        ImportError: a training library (or the ``report_to`` tracker) is missing.
    """
    if not isinstance(config, DPOTrainConfig):
        raise TypeError(f"config must be a DPOTrainConfig, got {type(config).__name__}")
    dataset = require_rows(to_dataset(data, "dpo"), "DPO data")
    dataset, eval_dataset = split_eval(dataset, config.eval_ratio, config.seed, row_groups(data))
    method = TrainingMethod(
        name="dpo",
        auto_model="AutoModelForCausalLM",
        trl_config="DPOConfig",
        trl_trainer="DPOTrainer",
        task_type="CAUSAL_LM",
        trl_extra={
            "beta": float(config.beta),
            **(
                {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, float(config.sft_weight)]}
                if config.sft_weight > 0
                else {}
            ),
        },
    )
    return run_training(method, config, dataset, callbacks=callbacks, eval_dataset=eval_dataset)
