"""Benchmarks as question sets: HotpotQA (distractor, fullwiki), 2Wiki, Bamboogle, MedQA, yours.

Start with :func:`load_task` (questions plus the corpus they are asked against) or
:func:`load_examples` (questions only). Each dataset module reads its official format;
samples of every benchmark are bundled (see ``raggym_env/data/NOTICE.md``), and full
splits are read from a user-given path or, with ``datasets`` installed, from the hub.
"""

from raggym_env.tasks.bamboogle import load_bamboogle
from raggym_env.tasks.catalog import (
    DATA_DIR,
    TASK_ALIASES,
    TASK_NAMES,
    MissingEvidenceWarning,
    PlaceholderCorpusWarning,
    Task,
    default_corpus,
    load_examples,
    load_task,
    resolve_task_name,
    sample_path,
)
from raggym_env.tasks.custom import load_custom
from raggym_env.tasks.hotpotqa import load_hotpotqa
from raggym_env.tasks.hub import HubSource
from raggym_env.tasks.medqa import load_medqa
from raggym_env.tasks.paper_csv import load_hotpotqa_csv, load_medqa_csv
from raggym_env.tasks.selection import select_examples
from raggym_env.tasks.twowiki import load_twowiki

__all__ = [
    "DATA_DIR",
    "TASK_ALIASES",
    "TASK_NAMES",
    "HubSource",
    "MissingEvidenceWarning",
    "PlaceholderCorpusWarning",
    "Task",
    "default_corpus",
    "load_bamboogle",
    "load_custom",
    "load_examples",
    "load_hotpotqa",
    "load_hotpotqa_csv",
    "load_medqa",
    "load_medqa_csv",
    "load_task",
    "load_twowiki",
    "resolve_task_name",
    "sample_path",
    "select_examples",
]
