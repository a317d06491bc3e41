"""``raggym train retriever``: fine-tune the dense retriever on hard negatives from a question file.

The questions are any ``RAGGym/Custom-v0`` question file (JSON list or JSONL of
``{id, question, answers, evidence, meta}``), e.g. one generated from your corpus; the
corpus is anything :func:`raggym_env.corpora.load_corpus` reads. The run splits the
questions (``meta.split``, else seeded), mines hard negatives on the training split, fine-tunes
the dense encoder and prints held-out recall@k before and after
(:func:`raggym.trainers.retriever.finetune_on_questions`). OUT receives the model
(``OUT/model``, a ``model=`` path for the ``dense`` retriever) and ``OUT/report.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

from raggym.trainers.retriever import MINERS, RetrieverTrainConfig, finetune_on_questions

__all__ = ["add_retriever_parser", "add_training_flags", "run_retriever", "training_config"]

MODEL_SUBDIR = "model"
REPORT_NAME = "report.json"


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except unset (None) ones."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


def add_retriever_parser(methods: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``retriever`` method to ``raggym train``."""
    parser = methods.add_parser(
        "retriever",
        help="fine-tune the dense retriever on hard negatives mined from a question file",
        description=(
            "Fine-tune the dense retriever's encoder on (question, gold document, hard "
            "negative) triplets mined from a question file, and measure gold-evidence "
            "recall@k on its held-out questions before and after. Questions are split by "
            "their meta.split (train / eval), else at random with --seed. The model goes to "
            "OUT/model (use it with --retriever dense --option model=OUT/model) and the "
            "figures to OUT/report.json."
        ),
        formatter_class=_Formatter,
    )
    data = parser.add_argument_group("data")
    data.add_argument(
        "--questions",
        required=True,
        type=Path,
        metavar="FILE",
        help="RAGGym/Custom-v0 question file (JSON list or JSONL) with gold evidence",
    )
    data.add_argument(
        "--corpus",
        required=True,
        type=Path,
        metavar="PATH",
        help="the corpus the questions' evidence points into (any format load_corpus reads)",
    )
    data.add_argument(
        "--out", required=True, type=Path, metavar="DIR", help="new or empty output folder"
    )
    data.add_argument(
        "--eval-fraction",
        type=float,
        default=0.2,
        help="held-out share when the questions carry no meta.split",
    )
    mining = parser.add_argument_group("mining and measurement")
    mining.add_argument(
        "--miner", choices=MINERS, default="dense", help="retriever whose mistakes are negatives"
    )
    mining.add_argument(
        "--mine-k", type=int, default=20, help="documents searched per question for mistakes"
    )
    mining.add_argument("--negatives", type=int, default=1, help="hard negatives per gold document")
    mining.add_argument(
        "--k", dest="ks", type=int, nargs="+", default=[5, 10], help="recall cut-offs"
    )
    train = parser.add_argument_group("training")
    add_training_flags(train)
    train.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bars while encoding (default: on a terminal)",
    )
    parser.set_defaults(func=run_retriever)


def add_training_flags(
    group: argparse._ArgumentGroup | argparse.ArgumentParser, *, max_seq_length: int | None = None
) -> None:
    """The encoder-training flags, for this command and the measurement scripts alike.

    Read them back with :func:`training_config`. ``max_seq_length`` is the default token
    limit while training (``None`` or 0: the model's own).
    """
    group.add_argument("--model", default=None, help="base model (default: the bundled MiniLM)")
    group.add_argument("--epochs", type=int, default=1, help="passes over the triplets")
    group.add_argument("--batch-size", type=int, default=16, help="triplets per step")
    group.add_argument(
        "--learning-rate", "--lr", type=float, default=2e-5, help="peak AdamW learning rate"
    )
    group.add_argument("--warmup-ratio", type=float, default=0.1, help="warm-up share of steps")
    group.add_argument("--seed", type=int, default=0, help="seed of the split and training")
    group.add_argument("--max-pairs", type=int, default=None, help="cap on triplets (seeded)")
    group.add_argument(
        "--max-seq-length",
        type=int,
        default=max_seq_length,
        help="token limit while training only (0: the model's own); encoding uses the model's",
    )
    group.add_argument("--device", default=None, help="torch device (default: auto)")


def training_config(args: argparse.Namespace, output_dir: Path) -> RetrieverTrainConfig:
    """The :class:`RetrieverTrainConfig` the flags of :func:`add_training_flags` ask for."""
    return RetrieverTrainConfig(
        output_dir=output_dir,
        model=args.model,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        warmup_ratio=args.warmup_ratio,
        seed=args.seed,
        max_pairs=args.max_pairs,
        max_seq_length=args.max_seq_length or None,
        device=args.device,
    )


def run_retriever(args: argparse.Namespace) -> int:
    """Run ``raggym train retriever``; print the table and where the model is.

    Raises:
        FileNotFoundError: the question file or corpus is missing.
        FileExistsError: OUT is not a new or empty folder.
        ValueError: a malformed question file or settings that cannot work.
    """
    from raggym_env.corpora import load_corpus
    from raggym_env.tasks import load_custom

    out: Path = args.out
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"--out {out} exists and is not an empty folder; pick a new one")
    examples = load_custom(args.questions)
    if not examples:
        raise ValueError(f"{args.questions} holds no questions")
    corpus = load_corpus(args.corpus)
    config = training_config(args, out / MODEL_SUBDIR)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    with contextlib.redirect_stdout(sys.stderr):  # the trainer prints its own metrics
        report = finetune_on_questions(
            examples,
            corpus,
            config,
            miner=args.miner,
            ks=args.ks,
            mine_k=args.mine_k,
            negatives_per_pair=args.negatives,
            eval_fraction=args.eval_fraction,
            show_progress=args.progress,
        )
    report_path = out / REPORT_NAME
    report_path.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    stats = report.mining
    print(
        f"raggym train retriever: {report.train_questions} training and "
        f"{report.eval_questions} held-out questions (split by {report.split_source}) "
        f"over {len(corpus):,} documents"
    )
    print(f"  evidence: {report.evidence}")
    if report.eval_without_gold:
        print(
            f"  held-out questions without gold in the corpus (left out): "
            f"{report.eval_without_gold}"
        )
    print(
        f"  mining ({report.miner}, top {args.mine_k}): {stats.pairs} pairs from "
        f"{stats.used_examples} questions; skipped {stats.skipped_no_gold} without gold, "
        f"{stats.skipped_no_negative} without a mistake"
    )
    print(
        f"  trained on {report.pairs} pairs for {report.epochs} epoch(s) in "
        f"{report.seconds['train']:.1f} s"
    )
    print()
    print(report.table())
    print()
    print(f"  model: {config.output_dir}")
    print(f"  use it with: --retriever dense --option model={config.output_dir}")
    print(f"  report: {report_path}")
    return 0
