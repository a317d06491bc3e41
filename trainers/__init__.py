"""Training on recorded episodes: process-supervision collection, datasets, SFT/DPO/critic.

Collect scored candidates with :func:`trainers.collect.collect`, turn the episodes into
rows with :mod:`trainers.datasets`, and train with :func:`train_sft`, :func:`train_dpo`
or :func:`train_critic` (TRL + PEFT LoRA; ``pip install 'raggym[train]'``). The dense
retriever is fine-tuned with :mod:`trainers.retriever`. Importing this package loads no
deep-learning library; they are imported when training starts.
"""

from trainers.collect import CollectConfig, CollectSummary, collect
from trainers.common import TrainResult, TrainRunConfig
from trainers.critic import CriticRunConfig, train_critic
from trainers.datasets import dpo_rows, reward_rows, sft_rows
from trainers.dpo import DPORunConfig, train_dpo
from trainers.sft import SFTRunConfig, train_sft

__all__ = [
    "CollectConfig",
    "CollectSummary",
    "CriticRunConfig",
    "DPORunConfig",
    "SFTRunConfig",
    "TrainResult",
    "TrainRunConfig",
    "collect",
    "dpo_rows",
    "reward_rows",
    "sft_rows",
    "train_critic",
    "train_dpo",
    "train_sft",
]
