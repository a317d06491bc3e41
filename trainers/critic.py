"""Critic (process reward model) training: a sequence classifier scoring (state, action) texts.

Rows are pairwise reward rows, as :mod:`raggym.trainers.datasets` writes them: two
:func:`~raggym.agents.critics.base.critic_input` texts of the same state, the better action's and
the worse one's::

    {"chosen": "Question: ...<blank line>Next action: Search: ...",
     "rejected": "Question: ...<blank line>Next action: Answer: ..."}

(an optional ``margin`` column is passed on to TRL's loss). The base model is loaded as
``AutoModelForSequenceClassification`` with one label (a causal LM checkpoint gets a fresh
scalar head), wrapped with LoRA, and the head is trained in full (``modules_to_save``); TRL's
``RewardTrainer`` minimises ``-log sigmoid(r(chosen) - r(rejected))``.

Texts are tokenized here with :func:`raggym.agents.critics.reward_model.critic_token_ids`, the very
function :class:`~raggym.agents.critics.reward_model.RewardModelCritic` scores with (same special
tokens, no end-of-sequence token added, the same truncation of long histories that keeps the
action), so training and inference see the same token ids. A pair whose action alone is
longer than ``max_length`` is dropped. ``RewardModelCritic(result.adapter_dir)`` loads the
trained critic. The defaults are the RAG-Gym paper's: LoRA ``r=256``, ``alpha=512``,
learning rate ``1e-5``, 1 epoch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from raggym.agents.critics.reward_model import critic_token_ids
from raggym.trainers.config import TrainConfig, config_field
from raggym.trainers.datasets import to_dataset
from raggym.trainers.training import (
    TrainingMethod,
    TrainResult,
    load_tokenizer,
    require_module,
    require_rows,
    run_training,
)

__all__ = ["CriticTrainConfig", "train_critic"]


@dataclass
class CriticTrainConfig(TrainConfig):
    """Critic settings; the RAG-Gym paper's defaults: learning rate 1e-5, 1 epoch, LoRA 256/512.

    See :class:`~raggym.trainers.config.TrainConfig` for the shared fields.
    """

    learning_rate: float = config_field(1e-5, "peak learning rate (AdamW)", "--lr")
    num_train_epochs: float = config_field(1.0, "passes over the training rows", "--epochs")
    modules_to_save: tuple[str, ...] = config_field(
        ("score",),
        "modules trained in full and saved with the adapter: the classification head",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.modules_to_save, str):
            self.modules_to_save = (self.modules_to_save,)
        self.modules_to_save = tuple(self.modules_to_save)
        if not all(isinstance(m, str) and m for m in self.modules_to_save):
            raise ValueError(f"modules_to_save must be module names, got {self.modules_to_save!r}")


def _tokenize_pairs(dataset: Any, tokenizer: Any, max_length: int) -> tuple[Any, int]:
    """Token ids of every pair; returns the tokenized dataset and how many pairs were dropped."""
    hf_datasets = require_module("datasets")
    rows: list[dict[str, Any]] = []
    dropped = 0
    has_margin = "margin" in dataset.column_names
    for index, row in enumerate(dataset):
        chosen, rejected = row["chosen"], row["rejected"]
        if not isinstance(chosen, str) or not isinstance(rejected, str):
            raise ValueError(
                f"critic data: row {index} must hold chosen/rejected texts (strings), got "
                f"{type(chosen).__name__}/{type(rejected).__name__}"
            )
        try:
            out: dict[str, Any] = {
                "chosen_ids": critic_token_ids(tokenizer, chosen, max_length),
                "rejected_ids": critic_token_ids(tokenizer, rejected, max_length),
            }
        except ValueError:
            dropped += 1
            continue
        if has_margin:
            margin = row["margin"]
            if isinstance(margin, bool) or not isinstance(margin, (int, float)):
                raise ValueError(f"critic data: row {index} has a non-numeric margin {margin!r}")
            if not math.isfinite(margin):
                raise ValueError(f"critic data: row {index} has a non-finite margin {margin!r}")
            out["margin"] = float(margin)
        rows.append(out)
    if not rows:
        raise ValueError(
            f"critic data: every pair's action alone is longer than max_length={max_length}"
        )
    return hf_datasets.Dataset.from_list(rows), dropped


def train_critic(
    config: CriticTrainConfig, data: Any, *, callbacks: Sequence[Any] | None = None
) -> TrainResult:
    """Train a scalar reward model (LoRA plus a trained head) on chosen/rejected text pairs.

    Args:
        config: the run settings.
        data: reward rows: a list of dicts, a JSONL path or a ``datasets.Dataset``.
        callbacks: ``transformers.TrainerCallback`` objects added to the trainer.

    Returns:
        The :class:`~raggym.trainers.training.TrainResult`; the adapter is in ``output_dir/final``.
        ``metrics["dropped_pairs"]`` counts pairs whose action did not fit ``max_length``.

    Raises:
        TypeError: ``config`` is not a :class:`CriticTrainConfig`, or ``data`` of a bad type.
        ValueError: no rows, rows without chosen/rejected strings, or no pair that fits.
        ImportError: a training library (or the ``report_to`` tracker) is missing.
    """
    if not isinstance(config, CriticTrainConfig):
        raise TypeError(f"config must be a CriticTrainConfig, got {type(config).__name__}")
    dataset = require_rows(to_dataset(data, "reward"), "critic data")
    tokenizer = load_tokenizer(config.model)
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(
            "critic training needs a fast tokenizer (truncation uses offsets); "
            f"{type(tokenizer).__name__} is not one"
        )
    tokenized, dropped = _tokenize_pairs(dataset, tokenizer, config.max_length)
    method = TrainingMethod(
        name="critic",
        auto_model="AutoModelForSequenceClassification",
        trl_config="RewardConfig",
        trl_trainer="RewardTrainer",
        task_type="SEQ_CLS",
        model_kwargs={"num_labels": 1},
        modules_to_save=config.modules_to_save,
        record_extra={"num_labels": 1},
    )
    return run_training(
        method,
        config,
        tokenized,
        tokenizer=tokenizer,
        callbacks=callbacks,
        extra_metrics={"dropped_pairs": dropped},
    )
