"""Dense retriever fine-tuning on mined hard negatives: recall@5/@10 before and after, held out.

For each direction (train on 2WikiMultihopQA, test on HotpotQA; and the reverse) the
bundled all-MiniLM-L6-v2 is fine-tuned on ``(question, gold paragraph, hard negative)``
triplets (:mod:`raggym.trainers.retriever`) and gold-evidence recall@5/@10, with the question as
the query against the pooled paragraphs of the test file, is measured before (bundled
model) and after (fine-tuned model). Two held-out settings per training dataset:

- cross-dataset: train on every question of one file, test on every question of the other;
- in-domain split: train on questions ``[0, split)`` of one file, test on its questions
  ``[split, n)`` against the same pooled corpus (the test questions are never trained on).

Hard negatives are the miner's own mistakes: by default the bundled MiniLM dense retriever
(the model being fine-tuned, so training targets exactly the confusions it makes);
``--miner bm25`` mines lexical near-misses instead.

    python perf/retriever_finetune.py [--quick] [--data-dir DIR] [--out DIR]
                                            [--miner dense|bm25] [--epochs 1] ...

``--quick`` uses the first 30 questions of each file (split 20/10) and a corpus pooled from
their paragraphs only, to finish in a few minutes. Progress goes to stderr, the Markdown
report to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from raggym.trainers.retriever import (
    MinedPairs,
    RetrieverTrainConfig,
    TrainingPair,
    finetune_dense,
    mine_training_pairs,
    recall_at_k,
)
from raggym.trainers.retriever_cli import add_training_flags, training_config
from raggym_env.corpora import Corpus, pooled_corpus, read_json_records
from raggym_env.retrieval.base import Retriever
from raggym_env.tasks import load_task
from raggym_env.types import QAExample

if TYPE_CHECKING:
    from raggym_env.retrieval.dense import DenseRetriever

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
FILES = {
    "hotpotqa": Path("hotpotqa") / "hotpot_dev_distractor_first500.json",
    "2wikimultihopqa": Path("2wikimultihopqa") / "2wiki_dev_sample500.json",
}
SHORT = {"hotpotqa": "HotpotQA", "2wikimultihopqa": "2Wiki"}
DIRECTIONS = (("2wikimultihopqa", "hotpotqa"), ("hotpotqa", "2wikimultihopqa"))
KS = (5, 10)
QUICK_QUESTIONS = 30
QUICK_SPLIT = 20
FULL_SPLIT = 400


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Dataset:
    """One question file: its examples and the pooled corpus they are asked against."""

    name: str
    examples: list[QAExample]
    corpus: Corpus


@dataclass
class Row:
    """One before/after comparison."""

    train: str
    test: str
    pairs: int
    before: dict[int, float]
    after: dict[int, float]
    mine_s: float
    train_s: float
    encode_s: float


def load_dataset(name: str, data_dir: Path, limit: int | None) -> Dataset:
    """Load a file's questions; with ``limit``, pool the corpus from those records only."""
    path = data_dir / FILES[name]
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (set --data-dir)")
    corpus: Corpus | None = None
    if limit is not None:
        records = read_json_records(path)[:limit]
        corpus = pooled_corpus(records, name=f"{name}:first{limit}")
    task = load_task(name, path=path, limit=limit, corpus=corpus)
    return Dataset(name, list(task.examples), task.corpus)


def build_dense(corpus: Corpus, model: Path | None) -> tuple[DenseRetriever, float]:
    """Encode and index ``corpus`` with ``model`` (bundled MiniLM when None); with seconds."""
    from raggym_env.retrieval.dense import DenseRetriever

    tick = time.perf_counter()
    retriever = DenseRetriever.build(corpus, model=model, show_progress=False)
    return retriever, time.perf_counter() - tick


def mine(
    dataset: Dataset, base: DenseRetriever, miner: str, k: int, negatives: int
) -> tuple[MinedPairs, float]:
    """Mine triplets for every question of ``dataset``; with the seconds it took."""
    tick = time.perf_counter()
    retriever: Retriever = base
    if miner == "bm25":
        from raggym_env.retrieval.bm25 import BM25Retriever

        retriever = BM25Retriever.build(dataset.corpus)
    pairs = mine_training_pairs(
        dataset.examples, dataset.corpus, retriever, k=k, negatives_per_pair=negatives
    )
    return pairs, time.perf_counter() - tick


def train(config: RetrieverTrainConfig, pairs: Sequence[TrainingPair]) -> float:
    """Fine-tune (the trainer's own prints go to stderr); return the seconds it took."""
    tick = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        finetune_dense(config, pairs)
    return time.perf_counter() - tick


def _span(name: str, start: int, stop: int) -> str:
    return f"{SHORT[name]} q{start}-{stop - 1}"


def run(args: argparse.Namespace, out: Path) -> tuple[list[Row], list[str]]:
    """Every measurement; returns the table rows and the report's notes."""
    limit = QUICK_QUESTIONS if args.quick else None
    split = args.split if args.split is not None else (QUICK_SPLIT if args.quick else FULL_SPLIT)
    data = {name: load_dataset(name, args.data_dir, limit) for name in FILES}
    notes: list[str] = []
    for dataset in data.values():
        if not 0 < split < len(dataset.examples):
            raise ValueError(f"--split {split} must lie inside (0, {len(dataset.examples)})")

    base: dict[str, DenseRetriever] = {}
    for name, dataset in data.items():
        _log(f"encoding {len(dataset.corpus)} {name} paragraphs with the bundled model")
        base[name], seconds = build_dense(dataset.corpus, None)
        notes.append(
            f"{SHORT[name]}: {len(dataset.examples)} questions, {len(dataset.corpus):,} pooled "
            f"paragraphs; bundled-model encoding {seconds:.1f} s "
            f"({len(dataset.corpus) / seconds:.0f} paragraphs/s)"
        )

    mined: dict[str, tuple[MinedPairs, float]] = {}
    for name, dataset in data.items():
        _log(f"mining {args.miner} hard negatives for {name}")
        mined[name] = mine(dataset, base[name], args.miner, args.mine_k, args.negatives)
        stats = mined[name][0].stats
        notes.append(
            f"{SHORT[name]} mining ({args.miner}, top {args.mine_k}): {stats.pairs} pairs from "
            f"{stats.used_examples} questions; skipped {stats.skipped_no_gold} without gold, "
            f"{stats.skipped_no_negative} without a mistake"
        )

    rows: list[Row] = []
    for source, target in DIRECTIONS:
        src, tgt = data[source], data[target]
        pairs, mine_s = mined[source]
        train_ids = {ex.id for ex in src.examples[:split]}
        settings = (
            # (label, training pairs, test dataset, test examples, test label)
            (
                _span(source, 0, len(src.examples)),
                list(pairs),
                tgt,
                tgt.examples,
                _span(target, 0, len(tgt.examples)),
            ),
            (
                _span(source, 0, split),
                [p for p in pairs if p.example_id in train_ids],
                src,
                src.examples[split:],
                _span(source, split, len(src.examples)),
            ),
        )
        for train_label, train_pairs, test_set, test_examples, test_label in settings:
            trained_on = len({p.example_id for p in train_pairs})
            model_dir = out / "models" / f"{source}-{trained_on}q"
            config = training_config(args, model_dir)
            _log(f"fine-tuning on {train_label} ({len(train_pairs)} pairs)")
            train_s = train(config, train_pairs)
            _log(f"encoding {test_set.name} with the model fine-tuned on {train_label}")
            tuned, encode_s = build_dense(test_set.corpus, model_dir)
            if args.save_indexes:
                tuned.save(out / "indexes" / f"{model_dir.name}--{test_set.name}")
            before = recall_at_k(base[test_set.name], test_examples, KS)
            after = recall_at_k(tuned, test_examples, KS)
            _log(f"{train_label} -> {test_label}: before {before}, after {after}")
            used = min(len(train_pairs), args.max_pairs or len(train_pairs))
            rows.append(
                Row(train_label, test_label, used, before, after, mine_s, train_s, encode_s)
            )
    return rows, notes


def render(rows: Sequence[Row], notes: Sequence[str], header: str) -> str:
    """The Markdown report: one row per comparison, then the notes."""
    cols = ["train on", "test on (held out)", "pairs"]
    for k in KS:
        cols += [f"R@{k} before", f"R@{k} after", f"ΔR@{k}"]
    cols += ["mine s", "train s", "encode s"]
    lines = [header, "", "| " + " | ".join(cols) + " |"]
    lines.append("|---|---|" + "|".join("---:" for _ in cols[2:]) + "|")
    for row in rows:
        cells = [row.train, row.test, str(row.pairs)]
        for k in KS:
            delta = row.after[k] - row.before[k]
            cells += [f"{row.before[k]:.3f}", f"{row.after[k]:.3f}", f"{delta:+.3f}"]
        cells += [f"{row.mine_s:.1f}", f"{row.train_s:.1f}", f"{row.encode_s:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"- {note}" for note in notes]
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="30 questions per file, a few minutes")
    parser.add_argument(
        "--data-dir", type=Path, default=DEFAULT_DATA, help="folder of the shared data files"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="new or empty folder for the fine-tuned models (default: a temporary folder, "
        "removed at the end)",
    )
    parser.add_argument(
        "--save-indexes", action="store_true", help="also save the fine-tuned indexes to --out"
    )
    parser.add_argument("--miner", choices=("dense", "bm25"), default="dense")
    parser.add_argument("--mine-k", type=int, default=20, help="documents searched for mistakes")
    parser.add_argument("--negatives", type=int, default=1, help="hard negatives per gold doc")
    parser.add_argument(
        "--split", type=int, default=None, help="in-domain train/test split (400; quick: 20)"
    )
    add_training_flags(parser, max_seq_length=128)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the fine-tuning benchmark and print a Markdown report."""
    parser = _parser()
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if args.out is not None and args.out.exists() and any(args.out.iterdir()):
        parser.error(f"--out {args.out} is not empty; pick a new folder")
    out = args.out if args.out is not None else Path(tempfile.mkdtemp(prefix="raggym-rft-"))
    if args.save_indexes and args.out is None:
        parser.error("--save-indexes needs --out")
    started = time.perf_counter()
    try:
        rows, notes = run(args, out)
    finally:
        if args.out is None:
            shutil.rmtree(out, ignore_errors=True)
    import torch

    mode = "quick" if args.quick else "full"
    header = (
        f"### Retriever fine-tuning ({mode}): recall@5/@10 of gold paragraphs, "
        "question as query, held-out questions"
    )
    notes = [
        *notes,
        f"training: MultipleNegativesRankingLoss on (question, gold, hard negative), "
        f"{args.epochs} epoch(s), batch {args.batch_size}, lr {args.learning_rate:g}, "
        f"warm-up {args.warmup_ratio:g}, seed {args.seed}, training token limit "
        f"{args.max_seq_length or 'model default'}, no-duplicates batches",
        "mine s: search + pair building on the training file (its bundled-model index is "
        "shared with the 'before' column); train s: fine-tuning; encode s: encoding and "
        "indexing the test corpus with the fine-tuned model",
        f"machine: {platform.machine()}, {os.cpu_count()} logical CPUs, torch "
        f"{torch.__version__} ({torch.get_num_threads()} threads), python "
        f"{platform.python_version()}; total wall time "
        f"{time.perf_counter() - started:.0f} s",
    ]
    print(render(rows, notes, header))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
