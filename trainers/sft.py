"""Supervised fine-tuning of the actor on chosen actions, with LoRA through TRL's ``SFTTrainer``.

Rows are TRL prompt-completion rows, as :mod:`raggym.trainers.datasets` writes them::

    {"prompt": [{"role": "system", ...}, {"role": "user", ...}],
     "completion": [{"role": "assistant", "content": "Search: ..."}]}

(``messages`` or plain ``text`` rows work too.) Conversational rows are rendered with the
tokenizer's chat template and the loss is taken on the completion only. The defaults are
the RAG-Gym paper's: LoRA ``r=256``, ``alpha=512``, learning rate ``5e-5``, 3 epochs.

Example::

    from raggym.trainers.sft import SFTTrainConfig, train_sft

    result = train_sft(SFTTrainConfig(model="meta-llama/Llama-3.1-8B-Instruct",
                                    output_dir="runs/sft"), "sft_rows.jsonl")
    llm = TransformersLLM(result.adapter_dir)  # base + adapter, by path
"""

from __future__ import annotations

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

__all__ = ["SFTTrainConfig", "train_sft"]


@dataclass
class SFTTrainConfig(TrainConfig):
    """SFT settings; the RAG-Gym paper's defaults: learning rate 5e-5, 3 epochs, LoRA 256/512.

    See :class:`~raggym.trainers.config.TrainConfig` for the shared fields.
    """

    learning_rate: float = config_field(5e-5, "peak learning rate (AdamW)", "--lr")
    num_train_epochs: float = config_field(3.0, "passes over the training rows", "--epochs")

    RAG_GYM_PRESET: ClassVar[dict[str, Any]] = {
        "learning_rate": 5e-5,
        "num_train_epochs": 3.0,
        "per_device_batch_size": 4,
        "gradient_accumulation_steps": 16,
        "max_length": 4096,
        "eval_ratio": 0.1,
    }


def train_sft(
    config: SFTTrainConfig, data: Any, *, callbacks: Sequence[Any] | None = None
) -> TrainResult:
    """Fine-tune ``config.model`` with LoRA on prompt-completion rows.

    Args:
        config: the run settings.
        data: SFT rows: a list of dicts, a JSONL path or a ``datasets.Dataset``.
        callbacks: ``transformers.TrainerCallback`` objects added to the trainer.

    Returns:
        The :class:`~raggym.trainers.training.TrainResult`; the adapter is in ``output_dir/final``.

    Raises:
        TypeError: ``config`` is not an :class:`SFTTrainConfig`, or ``data`` of a bad type.
        ValueError: no rows, or rows without prompt/completion (or messages, or text).
        ImportError: a training library (or the ``report_to`` tracker) is missing.
    """
    if not isinstance(config, SFTTrainConfig):
        raise TypeError(f"config must be an SFTTrainConfig, got {type(config).__name__}")
    dataset = require_rows(to_dataset(data, "sft"), "SFT data")
    dataset, eval_dataset = split_eval(dataset, config.eval_ratio, config.seed, row_groups(data))
    method = TrainingMethod(
        name="sft",
        auto_model="AutoModelForCausalLM",
        trl_config="SFTConfig",
        trl_trainer="SFTTrainer",
        task_type="CAUSAL_LM",
    )
    return run_training(method, config, dataset, callbacks=callbacks, eval_dataset=eval_dataset)
