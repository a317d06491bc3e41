"""raggym_env: multi-hop question answering as a Gymnasium environment.

Importing the package registers the ``RAGGym/...-v0`` ids with Gymnasium. It costs
gymnasium and numpy; retrieval backends load their dependencies when first used.
:func:`clear_caches` empties every process-wide cache (loaded tasks, indexes, models).
"""

from raggym_env.actions import Action, ActionParseError, Answer, Search, parse_action
from raggym_env.caches import clear_caches
from raggym_env.corpora import (
    BaseCorpus,
    Corpus,
    CorpusStoreError,
    DiskCorpus,
    is_corpus_store,
    write_store,
)
from raggym_env.observation import (
    FinalInfo,
    Observation,
    ResetInfo,
    StepInfo,
    build_observation,
)
from raggym_env.registration import ENV_IDS, register_envs
from raggym_env.rewards import RewardConfig
from raggym_env.text_protocol import (
    ParsedTextAction,
    SearchR1TextEnv,
    format_information,
    parse_search_r1,
)
from raggym_env.types import Document, Evidence, QAExample, ScoredDocument

__version__ = "0.1.0"

__all__ = [
    "ENV_IDS",
    "Action",
    "ActionParseError",
    "Answer",
    "BaseCorpus",
    "Corpus",
    "CorpusStoreError",
    "DiskCorpus",
    "Document",
    "Evidence",
    "FinalInfo",
    "Observation",
    "ParsedTextAction",
    "QAExample",
    "RAGEnv",
    "ResetInfo",
    "RewardConfig",
    "ScoredDocument",
    "Search",
    "SearchR1TextEnv",
    "StepInfo",
    "__version__",
    "build_observation",
    "clear_caches",
    "format_information",
    "is_corpus_store",
    "parse_action",
    "parse_search_r1",
    "write_store",
]

register_envs()


def __getattr__(name: str) -> object:
    """Import the environment class on first use, keeping ``import raggym_env`` light."""
    if name == "RAGEnv":
        from raggym_env.env import RAGEnv

        return RAGEnv
    raise AttributeError(f"module 'raggym_env' has no attribute {name!r}")
