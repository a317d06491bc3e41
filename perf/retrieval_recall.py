"""Gold-evidence recall of BM25, dense and hybrid retrieval on the pooled multi-hop corpora.

For every question of a HotpotQA / 2WikiMultihopQA file, the question itself is the query
against the pooled context paragraphs of the whole file. Reported per retriever and k:
recall@k (share of gold documents in the top k, averaged over questions) and all@k (share
of questions with every gold document in the top k: multi-hop completeness).

    python perf/retrieval_recall.py [--hotpotqa PATH] [--twowiki PATH] [--ks 2 5 10 20]

Defaults read ``../shared/data`` beside the repository, else the bundled samples.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

from raggym_env.metrics import evidence_complete, evidence_recall
from raggym_env.retrieval.factory import make_retriever
from raggym_env.tasks import load_task

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DEFAULTS = {
    "hotpotqa": SHARED / "hotpotqa" / "hotpot_dev_distractor_first500.json",
    "2wikimultihopqa": SHARED / "2wikimultihopqa" / "2wiki_dev_sample500.json",
}
RETRIEVERS = ("bm25", "dense", "hybrid")


def evaluate(
    task_name: str, path: Path | None, ks: Sequence[int], retrievers: Sequence[str] = RETRIEVERS
) -> list[dict[str, object]]:
    """Recall rows for one dataset file, one per retriever."""
    task = load_task(task_name, path=path)
    examples = [ex for ex in task.examples if ex.evidence.doc_ids]
    queries = [ex.question for ex in examples]
    rows: list[dict[str, object]] = []
    for name in retrievers:
        tick = time.perf_counter()
        retriever = make_retriever(name, task.corpus, cache=False)
        built = time.perf_counter() - tick
        tick = time.perf_counter()
        results = retriever.search(queries, max(ks))
        searched = time.perf_counter() - tick
        row: dict[str, object] = {
            "dataset": task_name,
            "retriever": name,
            "questions": len(examples),
            "documents": len(task.corpus),
            "build_s": built,
            "search_s": searched,
        }
        for k in ks:
            recalls = [
                evidence_recall([d.id for d in res[:k]], ex.evidence.doc_ids)
                for res, ex in zip(results, examples, strict=True)
            ]
            complete = [
                evidence_complete([d.id for d in res[:k]], ex.evidence.doc_ids)
                for res, ex in zip(results, examples, strict=True)
            ]
            row[f"R@{k}"] = sum(r or 0.0 for r in recalls) / len(examples)
            row[f"all@{k}"] = sum(c or 0.0 for c in complete) / len(examples)
        rows.append(row)
    return rows


def _number(value: object) -> float:
    if not isinstance(value, float):
        raise TypeError(f"expected a float metric, got {value!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the recall benchmark and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--hotpotqa", type=Path, default=None)
    parser.add_argument("--twowiki", type=Path, default=None)
    parser.add_argument("--ks", type=int, nargs="+", default=[2, 5, 10, 20])
    parser.add_argument(
        "--retrievers",
        nargs="+",
        choices=RETRIEVERS,
        default=list(RETRIEVERS),
        help="which retrievers to measure (default: all; dense encoding takes minutes)",
    )
    args = parser.parse_args(argv)
    paths = {
        "hotpotqa": args.hotpotqa or (DEFAULTS["hotpotqa"] if SHARED.is_dir() else None),
        "2wikimultihopqa": args.twowiki
        or (DEFAULTS["2wikimultihopqa"] if SHARED.is_dir() else None),
    }
    rows = [
        row
        for name, path in paths.items()
        for row in evaluate(name, path, args.ks, args.retrievers)
    ]
    cols = ["dataset", "retriever", "questions", "documents"]
    cols += [f"R@{k}" for k in args.ks] + [f"all@{k}" for k in args.ks] + ["build_s", "search_s"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "|".join("---" for _ in cols) + "|")
    for row in rows:
        cells = [f"{row[c]:.3f}" if isinstance(row[c], float) else str(row[c]) for c in cols]
        print("| " + " | ".join(cells) + " |")
    for dataset in paths:
        by_name = {r["retriever"]: r for r in rows if r["dataset"] == dataset}
        for k in (5, 10):
            if k not in args.ks or not {"bm25", "dense", "hybrid"} <= by_name.keys():
                continue
            best_single = max(_number(by_name[n][f"R@{k}"]) for n in ("bm25", "dense"))
            hybrid = _number(by_name["hybrid"][f"R@{k}"])
            verdict = "ok" if hybrid >= best_single else "BELOW the better single retriever"
            print(
                f"{dataset}: hybrid R@{k} {hybrid:.3f} vs best single {best_single:.3f}: {verdict}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
