"""Training on recorded episodes: process-supervision collection, datasets, SFT/DPO/critic.

Collect scored candidates with :func:`raggym.trainers.collect.collect`, turn the episodes into
rows with :mod:`raggym.trainers.datasets`, and train with :func:`train_sft`, :func:`train_dpo`
or :func:`train_critic` (TRL + PEFT LoRA; ``pip install 'raggym[train]'``), or online in the
environment with :func:`train_grpo` (``pip install 'raggym[grpo]'``). The dense
retriever is fine-tuned with :mod:`raggym.trainers.retriever`. Importing this package loads no
deep-learning library; they are imported when training starts.
"""

from raggym.trainers.collect import CollectConfig, CollectSummary, collect
from raggym.trainers.config import TrainConfig
from raggym.trainers.critic import CriticTrainConfig, train_critic
from raggym.trainers.datasets import dpo_rows, reward_rows, sft_rows
from raggym.trainers.dpo import DPOTrainConfig, train_dpo
from raggym.trainers.grpo import GRPOTrainConfig, train_grpo
from raggym.trainers.sft import SFTTrainConfig, train_sft
from raggym.trainers.training import TrainResult

__all__ = [
    "CollectConfig",
    "CollectSummary",
    "CriticTrainConfig",
    "DPOTrainConfig",
    "GRPOTrainConfig",
    "SFTTrainConfig",
    "TrainConfig",
    "TrainResult",
    "collect",
    "dpo_rows",
    "reward_rows",
    "sft_rows",
    "train_critic",
    "train_dpo",
    "train_grpo",
    "train_sft",
]
