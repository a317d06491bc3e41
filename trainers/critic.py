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

Rows may instead be conversations (``reward_rows(..., protocol="rag-gym")``): the actor's
prompt messages plus the candidate as the assistant turn. They are tokenized with
:func:`raggym.agents.critics.reward_model.conversation_token_ids` (chat template, no extra
special tokens, the last ``max_length`` tokens kept), what
``RewardModelCritic(..., input_format="rag-gym")`` scores; the format goes into the
trained critic's record, so ``RewardModelCritic(result.adapter_dir)`` reads it back.
``CriticTrainConfig.for_protocol("rag-gym", ...)`` adds the paper's
``center_rewards_coefficient=0.01`` and its batch, length and evaluation settings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from raggym.agents.critics.reward_model import conversation_token_ids, critic_token_ids
from raggym.trainers.config import TrainConfig, config_field
from raggym.trainers.datasets import to_dataset
from raggym.trainers.training import (
    TrainingMethod,
    TrainResult,
    load_tokenizer,
    require_module,
    require_rows,
    row_groups,
    run_training,
    split_eval,
)
from raggym_env.protocols import PROTOCOLS, RAG_GYM, RAGGYM, check_protocol

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
    input_format: str | None = config_field(
        None,
        "what the critic reads: raggym (state-action text) or rag-gym (chat-templated prompt "
        "plus candidate); default: from the rows (strings or conversations)",
        choices=PROTOCOLS,
    )
    center_rewards_coefficient: float | None = config_field(
        None, "weight of the loss term pulling rewards towards zero (TRL; unset: none)"
    )

    RAG_GYM_PRESET: ClassVar[dict[str, Any]] = {
        "learning_rate": 1e-5,
        "num_train_epochs": 1.0,
        "per_device_batch_size": 1,
        "gradient_accumulation_steps": 2,
        "max_length": 4096,
        "eval_ratio": 0.1,
        "center_rewards_coefficient": 0.01,
        "input_format": RAG_GYM,
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.input_format is not None:
            self.input_format = check_protocol(self.input_format)
        coefficient = self.center_rewards_coefficient
        if coefficient is not None and (
            isinstance(coefficient, bool)
            or not isinstance(coefficient, (int, float))
            or not math.isfinite(coefficient)
            or coefficient < 0
        ):
            raise ValueError(
                f"center_rewards_coefficient must be None or a number >= 0, got {coefficient!r}"
            )
        if isinstance(self.modules_to_save, str):
            self.modules_to_save = (self.modules_to_save,)
        self.modules_to_save = tuple(self.modules_to_save)
        if not all(isinstance(m, str) and m for m in self.modules_to_save):
            raise ValueError(f"modules_to_save must be module names, got {self.modules_to_save!r}")


def _rows_format(dataset: Any) -> str:
    """``"rag-gym"`` for conversational rows, ``"raggym"`` for text rows."""
    if len(dataset) and not isinstance(dataset[0]["chosen"], str):
        return RAG_GYM
    return RAGGYM


def _token_ids(tokenizer: Any, value: str | list[Any], max_length: int) -> list[int]:
    """The ids a critic scores for one side: a critic text, or a conversation (rag-gym)."""
    if isinstance(value, str):
        return critic_token_ids(tokenizer, value, max_length)
    return conversation_token_ids(tokenizer, value, max_length)


def _tokenize_pairs(
    dataset: Any, tokenizer: Any, max_length: int, input_format: str = RAGGYM
) -> tuple[Any, int]:
    """Token ids of every pair; returns the tokenized dataset and how many pairs were dropped."""
    hf_datasets = require_module("datasets")
    rows: list[dict[str, Any]] = []
    dropped = 0
    has_margin = "margin" in dataset.column_names
    wanted, kind = (list, "conversations") if input_format == RAG_GYM else (str, "texts (strings)")
    for index, row in enumerate(dataset):
        chosen, rejected = row["chosen"], row["rejected"]
        if not isinstance(chosen, wanted) or not isinstance(rejected, wanted):
            raise ValueError(
                f"critic data: row {index} must hold chosen/rejected {kind} for input format "
                f"{input_format!r}, got {type(chosen).__name__}/{type(rejected).__name__}"
            )
        try:
            out: dict[str, Any] = {
                "chosen_ids": _token_ids(tokenizer, chosen, max_length),
                "rejected_ids": _token_ids(tokenizer, rejected, max_length),
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
        ValueError: no rows, rows not of the input format (strings, or conversations under
            ``"rag-gym"``), or no pair that fits.
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
    input_format = config.input_format or _rows_format(dataset)
    train_rows, eval_rows = split_eval(dataset, config.eval_ratio, config.seed, row_groups(data))
    tokenized, dropped = _tokenize_pairs(train_rows, tokenizer, config.max_length, input_format)
    eval_tokenized = None
    if eval_rows is not None:
        try:
            eval_tokenized, _ = _tokenize_pairs(
                eval_rows, tokenizer, config.max_length, input_format
            )
        except ValueError:  # no held-out pair fits: train without evaluation
            eval_tokenized = None
    trl_extra: dict[str, Any] = {}
    if config.center_rewards_coefficient is not None:
        trl_extra["center_rewards_coefficient"] = float(config.center_rewards_coefficient)
    method = TrainingMethod(
        name="critic",
        auto_model="AutoModelForSequenceClassification",
        trl_config="RewardConfig",
        trl_trainer="RewardTrainer",
        task_type="SEQ_CLS",
        model_kwargs={"num_labels": 1},
        modules_to_save=config.modules_to_save,
        trl_extra=trl_extra,
        record_extra={"num_labels": 1, "input_format": input_format},
    )
    return run_training(
        method,
        config,
        tokenized,
        tokenizer=tokenizer,
        callbacks=callbacks,
        extra_metrics={"dropped_pairs": dropped},
        eval_dataset=eval_tokenized if eval_tokenized is not None and len(eval_tokenized) else None,
    )
