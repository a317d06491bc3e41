"""The benchmark catalog: task names, where their questions come from, and their corpora.

:func:`load_examples` reads a benchmark's questions from the bundled sample, a user file or
the Hugging Face hub; :func:`load_task` adds the corpus the environment retrieves from and
links each question's gold evidence to document ids. Loaded examples and default corpora
are cached in-process per (file, modification time) or hub spec, because many environment
copies load the same task (:func:`raggym_env.clear_caches` forgets them, e.g. after
editing a file in place).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raggym_env.caches import LRUCache, register_lru
from raggym_env.corpora import (
    BaseCorpus,
    Corpus,
    load_corpus,
    map_evidence,
    pooled_corpus,
    read_json_records,
)
from raggym_env.tasks.bamboogle import (
    BAMBOOGLE_HUB,
    bamboogle_examples,
    bamboogle_record_from_hub,
    read_bamboogle_records,
)
from raggym_env.tasks.custom import custom_examples, custom_record_from_hub
from raggym_env.tasks.hotpotqa import (
    HOTPOTQA_FULLWIKI_HUB,
    HOTPOTQA_HUB,
    hotpotqa_examples,
    hotpotqa_record_from_hub,
)
from raggym_env.tasks.hub import HubSource, is_hub_path, load_hub_rows
from raggym_env.tasks.medqa import MEDQA_HUB, medqa_examples, medqa_record_from_hub
from raggym_env.tasks.paper_csv import (
    hotpotqa_csv_examples,
    medqa_csv_examples,
    read_hotpotqa_csv,
    read_medqa_csv,
)
from raggym_env.tasks.records import RecordLocation
from raggym_env.tasks.selection import select_examples
from raggym_env.tasks.twowiki import TWOWIKI_HUB, twowiki_examples, twowiki_record_from_hub
from raggym_env.types import QAExample

__all__ = [
    "DATA_DIR",
    "TASK_ALIASES",
    "TASK_NAMES",
    "MissingEvidenceWarning",
    "PlaceholderCorpusWarning",
    "Task",
    "default_corpus",
    "load_examples",
    "load_task",
    "resolve_task_name",
    "sample_path",
]

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
"""The package folder holding the bundled benchmark samples and their NOTICE.md."""

TASK_NAMES = ("hotpotqa", "2wikimultihopqa", "bamboogle", "medqa", "hotpotqa-fullwiki", "custom")
"""Canonical task names, as accepted by :func:`load_examples` (case-insensitive)."""

TASK_ALIASES: Mapping[str, str] = {"2wiki": "2wikimultihopqa", "fullwiki": "hotpotqa-fullwiki"}
"""Alternative spellings of task names."""

_FILE_SPLIT = "test"


class PlaceholderCorpusWarning(UserWarning):
    """A task without an offline corpus (Bamboogle, MedQA, custom) searches a placeholder.

    Its scores then say little about the task; pass a real corpus (``corpus=``). Given
    once per process per task.
    """


class MissingEvidenceWarning(UserWarning):
    """Gold evidence titles of the questions are not titles of the corpus.

    Those titles cannot be retrieved, so ``evidence_recall`` counts only the titles found
    (``None`` for a question with none found): usually a typo in a title, or a corpus whose
    titles differ (a ``.txt`` corpus titles its chunks ``"<stem> #k"``). Titles are looked
    up exactly, as document ids and normalised (see
    :func:`~raggym_env.corpora.map_evidence`) before they count as missing.
    """


_WARNED_BOUND = 256
_warned: LRUCache[tuple[Any, ...], bool] = LRUCache("tasks.warnings_given", _WARNED_BOUND)


def _warn_once(key: tuple[Any, ...], message: str, category: type[Warning]) -> None:
    """Warn once per process for ``key`` (many environment copies load the same task)."""
    if _warned.put_new(key, True):
        warnings.warn(message, category, stacklevel=3)


@dataclass(frozen=True)
class _Format:
    """How one task's questions are read and converted."""

    sample: str | None
    hub: HubSource | None
    read: Callable[[Path], list[dict[str, Any]]]
    convert: Callable[[Sequence[Any], str, str], list[QAExample]]
    from_hub: Callable[[Mapping[str, Any], RecordLocation], dict[str, Any]]
    pooled: bool
    multiple_choice: bool | None
    default_select: str | None = None
    has_context: bool = True


_FORMATS: dict[str, _Format] = {
    "hotpotqa": _Format(
        sample="hotpotqa_dev_distractor_sample100.json",
        hub=HOTPOTQA_HUB,
        read=read_json_records,
        convert=lambda records, source, _split: hotpotqa_examples(records, source),
        from_hub=hotpotqa_record_from_hub,
        pooled=True,
        multiple_choice=False,
    ),
    # The RAG-Gym paper's HotpotQA test set: the last 1,000 fullwiki dev questions.
    "hotpotqa-fullwiki": _Format(
        sample=None,
        hub=HOTPOTQA_FULLWIKI_HUB,
        read=read_json_records,
        convert=lambda records, source, _split: hotpotqa_examples(records, source),
        from_hub=hotpotqa_record_from_hub,
        pooled=True,
        multiple_choice=False,
        default_select="last:1000",
    ),
    "2wikimultihopqa": _Format(
        sample="2wikimultihopqa_dev_sample100.json",
        hub=TWOWIKI_HUB,
        read=read_json_records,
        convert=lambda records, source, _split: twowiki_examples(records, source),
        from_hub=twowiki_record_from_hub,
        pooled=True,
        multiple_choice=False,
    ),
    "bamboogle": _Format(
        sample="bamboogle_prerelease.tsv",
        hub=BAMBOOGLE_HUB,
        read=read_bamboogle_records,
        convert=lambda records, source, _split: bamboogle_examples(records, source),
        from_hub=bamboogle_record_from_hub,
        pooled=False,
        multiple_choice=False,
    ),
    "medqa": _Format(
        sample="medqa_us_4options_test_sample100.jsonl",
        hub=MEDQA_HUB,
        read=read_json_records,
        convert=medqa_examples,
        from_hub=medqa_record_from_hub,
        pooled=False,
        multiple_choice=True,
    ),
    "custom": _Format(
        sample=None,
        hub=None,
        read=read_json_records,
        convert=lambda records, source, _split: custom_examples(records, source),
        from_hub=custom_record_from_hub,
        pooled=False,
        multiple_choice=None,
    ),
}

# The RAG-Gym paper's training files, read instead of the official format when a question
# file of these tasks ends in ``.csv`` (see raggym_env.tasks.paper_csv).
_CSV_FORMATS: dict[str, _Format] = {
    "hotpotqa": _Format(
        sample=None,
        hub=None,
        read=read_hotpotqa_csv,
        convert=lambda records, source, _split: hotpotqa_csv_examples(records, source),
        from_hub=hotpotqa_record_from_hub,
        pooled=True,
        multiple_choice=False,
        has_context=False,
    ),
    "medqa": _Format(
        sample=None,
        hub=None,
        read=read_medqa_csv,
        convert=lambda records, source, _split: medqa_csv_examples(records, source),
        from_hub=medqa_record_from_hub,
        pooled=False,
        multiple_choice=True,
    ),
}

# A file source is keyed by (resolved path, mtime in ns, size); a hub source by its spec.
_SourceKey = tuple[str, int, int] | str


@dataclass(frozen=True)
class Task:
    """A benchmark ready for an environment: its questions and the corpus they are asked against.

    Attributes:
        name: the canonical task name (see :data:`TASK_NAMES`).
        examples: the selected questions, with ``evidence.doc_ids`` pointing into ``corpus``.
        corpus: the documents the environment retrieves from.
        multiple_choice: whether the questions come with lettered options (MedQA).
        source: the file path or hub spec the questions were read from.
    """

    name: str
    examples: tuple[QAExample, ...] = field(repr=False)
    corpus: BaseCorpus
    multiple_choice: bool
    source: str

    def __repr__(self) -> str:
        return (
            f"Task(name={self.name!r}, examples={len(self.examples)}, corpus={self.corpus!r}, "
            f"multiple_choice={self.multiple_choice}, source={self.source!r})"
        )


def resolve_task_name(name: str) -> str:
    """Return the canonical task name for ``name`` (case-insensitive, aliases allowed).

    Raises:
        ValueError: an unknown name; the message lists the valid ones.
    """
    key = name.strip().lower() if isinstance(name, str) else ""
    key = TASK_ALIASES.get(key, key)
    if key not in _FORMATS:
        valid = ", ".join([*TASK_NAMES, *(f"{a} (= {t})" for a, t in TASK_ALIASES.items())])
        raise ValueError(f"unknown task {name!r}; valid names: {valid}")
    return key


def sample_path(name: str) -> Path:
    """Path of the sample of task ``name`` bundled with the package.

    Raises:
        ValueError: an unknown task, or ``custom`` (which has no sample).
    """
    task = resolve_task_name(name)
    sample = _FORMATS[task].sample
    if sample is None:
        hub = " (or path='hub')" if _FORMATS[task].hub is not None else ""
        raise ValueError(
            f"task {task!r} has no bundled sample: pass path= to your question file{hub}"
        )
    return DATA_DIR / sample


def _source_key(task: str, path: str | Path | None) -> _SourceKey:
    if is_hub_path(path):
        return HubSource.parse(str(path), _FORMATS[task].hub).spec
    file = sample_path(task) if path is None else Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"{file}: no such file (questions for task {task!r})")
    file = file.resolve()
    stat = file.stat()
    return (str(file), stat.st_mtime_ns, stat.st_size)


def _format(task: str, key: _SourceKey) -> _Format:
    """The format of a source: the RAG-Gym paper's CSV layout for a ``.csv`` question file."""
    if not isinstance(key, str) and key[0].lower().endswith(".csv") and task in _CSV_FORMATS:
        return _CSV_FORMATS[task]
    return _FORMATS[task]


def _read_records(task: str, key: _SourceKey) -> tuple[list[Any], str, str]:
    """Return (official-format records, source description, split) for a source key."""
    fmt = _format(task, key)
    if isinstance(key, str):
        hub = HubSource.parse(key, None)
        rows = load_hub_rows(hub)
        expected = f"a {task} row from {hub.repo}"
        records = [
            fmt.from_hub(row, RecordLocation(hub.spec, index, expected))
            for index, row in enumerate(rows)
        ]
        return records, hub.spec, hub.split
    path = Path(key[0])
    return fmt.read(path), str(path), _FILE_SPLIT


@register_lru("tasks.examples")
@functools.lru_cache(maxsize=64)
def _cached_examples(task: str, key: _SourceKey) -> tuple[tuple[QAExample, ...], str]:
    records, source, split = _read_records(task, key)
    examples = _format(task, key).convert(records, source, split)
    seen: dict[str, int] = {}
    for index, example in enumerate(examples):
        if example.id in seen:
            raise ValueError(
                f"{source}: record {index}: id {example.id!r} is already used by record "
                f"{seen[example.id]} (question ids must be unique)"
            )
        seen[example.id] = index
    return tuple(examples), source


@register_lru("tasks.pooled_corpora")
@functools.lru_cache(maxsize=16)
def _cached_pooled_corpus(task: str, key: _SourceKey) -> Corpus:
    records, source, split = _read_records(task, key)
    label = split if isinstance(key, str) else Path(source).stem
    return pooled_corpus(records, name=f"{task}:{label}")


@register_lru("tasks.placeholder_corpora")
@functools.lru_cache(maxsize=4)
def _cached_placeholder_corpus(keys: tuple[_SourceKey, ...]) -> Corpus:
    records: list[Any] = []
    for key in keys:
        records.extend(read_json_records(Path(key[0])))
    return pooled_corpus(records, name="placeholder:bundled-hotpotqa-2wiki-samples")


@register_lru("tasks.corpus_files")
@functools.lru_cache(maxsize=16)
def _cached_corpus_file(key: _SourceKey, corpus_format: str | None = None) -> BaseCorpus:
    if isinstance(key, str):
        return load_corpus(key)  # a hub corpus spec
    return load_corpus(Path(key[0]), format=corpus_format)


def _file_key(path: str | Path) -> _SourceKey:
    if isinstance(path, str) and path.startswith("hub:"):
        return path
    file = Path(path).expanduser()
    if not file.exists():
        raise FileNotFoundError(f"{file}: no such file or directory (corpus)")
    file = file.resolve()
    stat = file.stat()
    return (str(file), stat.st_mtime_ns, stat.st_size)


def load_examples(
    name: str,
    path: str | Path | None = None,
    limit: int | None = None,
    select: str | None = None,
) -> list[QAExample]:
    """Load a benchmark's questions.

    Args:
        name: ``"hotpotqa"``, ``"hotpotqa-fullwiki"`` (alias ``"fullwiki"``; no bundled
            sample), ``"2wikimultihopqa"`` (alias ``"2wiki"``), ``"bamboogle"``, ``"medqa"``
            or ``"custom"``, case-insensitive.
        path: ``None`` for the bundled sample; a file in the dataset's official format (for
            ``hotpotqa`` and ``medqa`` also the RAG-Gym paper's training CSV files,
            ``hotpotqa_dev_1000.csv`` and ``medqa_train_1000.csv``, read by a ``.csv``
            suffix; see :mod:`raggym_env.tasks.paper_csv`); or
            ``"hub"`` / ``"hub:<repo>[:<config>[:<split>]]"`` to read through ``datasets``
            from the Hugging Face hub (missing parts default to the task's usual source).
        limit: keep at most the first ``limit`` examples (after ``select``).
        select: ``"all"``, ``"first:N"``, ``"last:N"`` or ``"sample:N@SEED"`` (see
            :func:`~raggym_env.tasks.selection.select_examples`); ``None`` is the task's
            default, all questions except for ``hotpotqa-fullwiki``, whose default is
            the RAG-Gym paper's ``"last:1000"``.

    Raises:
        ValueError: an unknown task, a malformed file or record (named in the message),
            duplicate question ids, or an invalid ``select``/``limit``.
        FileNotFoundError: ``path`` does not exist.
        ImportError: a hub source without ``datasets`` installed.
    """
    task = resolve_task_name(name)
    select = _FORMATS[task].default_select if select is None else select
    select_examples((), select, limit)  # validate the selection before any loading
    examples, _ = _cached_examples(task, _source_key(task, path))
    return select_examples(examples, select, limit)


def default_corpus(name: str, path: str | Path | None = None) -> Corpus:
    """The corpus :func:`load_task` uses for task ``name`` when none is given.

    HotpotQA and 2WikiMultihopQA: the pooled context paragraphs of every record of the
    question source (not only the selected ones), so retrieval is not trivially easy.
    HotpotQA fullwiki pools its retrieved paragraphs the same way; they need not hold the
    gold ones (a :class:`MissingEvidenceWarning` counts those missing), so pass the
    Wikipedia abstracts corpus for the paper's setting.
    The RAG-Gym paper's HotpotQA training CSV has no paragraphs to pool: a ``ValueError``
    asks for a corpus.
    Bamboogle, MedQA and custom questions have no corpus available offline; they get a
    *placeholder*, the pooled paragraphs of the bundled HotpotQA and 2Wiki samples. (The
    RAG-Gym paper used Wikipedia for Bamboogle and textbooks plus StatPearls for MedQA;
    pass such a corpus to :func:`load_task` as ``corpus=``.)
    """
    task = resolve_task_name(name)
    if _FORMATS[task].pooled:
        key = _source_key(task, path)
        if not _format(task, key).has_context:
            raise ValueError(
                f"{key[0]}: this {task} question file has no context paragraphs, so no "
                "corpus can be pooled from it; pass corpus= (e.g. a Wikipedia corpus file)"
            )
        return _cached_pooled_corpus(task, key)
    keys = tuple(_source_key(t, None) for t in ("hotpotqa", "2wikimultihopqa"))
    return _cached_placeholder_corpus(keys)


def _attach(corpus: BaseCorpus, examples: Sequence[QAExample], task: str) -> list[QAExample]:
    """Link gold titles to document ids, warning once about titles the corpus lacks."""
    # Examples without gold titles keep any doc ids they came with (custom questions).
    mapping = map_evidence(examples, corpus)
    missing = mapping.unmapped
    if missing:
        questions = len({example_id for example_id, _ in missing})
        shown = "; ".join(f"{title!r} ({example_id})" for example_id, title in missing[:3])
        _warn_once(
            ("evidence", task, corpus.content_hash, len(missing), tuple(missing[:3])),
            f"{task}: {len(missing)} of {mapping.titles} gold evidence titles of {questions} "
            f"questions are not titles in the corpus {corpus.name!r} (e.g. {shown}); "
            "evidence_recall counts only the titles found (None for a question with none)",
            MissingEvidenceWarning,
        )
    return list(mapping.examples)


def load_task(
    name: str,
    path: str | Path | None = None,
    limit: int | None = None,
    select: str | None = None,
    corpus: BaseCorpus | str | Path | None = None,
    corpus_format: str | None = None,
) -> Task:
    """Load a benchmark's questions with the corpus they are asked against.

    Args:
        name: the task name (see :func:`load_examples`).
        path: the question source (see :func:`load_examples`).
        limit: keep at most the first ``limit`` examples (after ``select``).
        select: a subset spec (see :func:`load_examples`).
        corpus: a :class:`~raggym_env.corpora.Corpus` or
            :class:`~raggym_env.corpora.DiskCorpus`, a corpus file, store or directory, or a
            ``"hub:<dataset>..."`` corpus spec (read by
            :func:`~raggym_env.corpora.load_corpus`), or ``None`` for
            :func:`default_corpus`.
        corpus_format: the format of a corpus path (a key of
            :data:`~raggym_env.corpora.CORPUS_FORMATS`); ``None`` detects it.

    Returns:
        A :class:`Task` whose examples have ``evidence.doc_ids`` set from their gold
        titles in the corpus. Warns (once per process) with a
        :class:`PlaceholderCorpusWarning` when a task without an offline corpus gets the
        placeholder, and with a :class:`MissingEvidenceWarning` counting the gold titles
        the corpus lacks.

    Raises:
        ValueError, FileNotFoundError, ImportError: as :func:`load_examples` and
            :func:`~raggym_env.corpora.load_corpus`.
        TypeError: ``corpus`` is of an unsupported type.
    """
    task = resolve_task_name(name)
    select = _FORMATS[task].default_select if select is None else select
    select_examples((), select, limit)
    if corpus_format is not None and not isinstance(corpus, (str, Path)):
        raise ValueError("corpus_format applies to a corpus path; pass corpus=PATH with it")
    key = _source_key(task, path)
    all_examples, source = _cached_examples(task, key)
    examples = select_examples(all_examples, select, limit)
    chosen: BaseCorpus
    if corpus is None:
        chosen = default_corpus(task, path)
        if not _format(task, key).pooled:
            _warn_once(
                ("placeholder", task),
                f"{task}: no corpus given, so it searches a placeholder (the bundled HotpotQA "
                "and 2Wiki sample paragraphs), which holds little about its questions; "
                "pass corpus=PATH (suite key 'corpus', CLI --corpus) for meaningful scores",
                PlaceholderCorpusWarning,
            )
    elif isinstance(corpus, BaseCorpus):
        chosen = corpus
    elif isinstance(corpus, (str, Path)):
        chosen = _cached_corpus_file(_file_key(corpus), corpus_format)
    else:
        raise TypeError(f"corpus must be a Corpus, a path or None, got {type(corpus).__name__}")
    multiple_choice = _format(task, key).multiple_choice
    if multiple_choice is None:
        multiple_choice = bool(examples) and all(ex.is_multiple_choice for ex in examples)
    return Task(
        name=task,
        examples=tuple(_attach(chosen, examples, task)),
        corpus=chosen,
        multiple_choice=multiple_choice,
        source=source,
    )
