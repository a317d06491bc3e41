"""Merge a trained LoRA adapter into its base model: one folder vLLM and transformers load.

The trainers write LoRA adapters (``OUT/final``). Serving a critic with vLLM for many
rollout workers (:class:`~raggym.agents.critics.remote.RemoteCritic`, ``vllm serve DIR
--task classify``) or an actor with a server that does not apply adapters needs the
weights merged. :func:`merge_adapter` loads the base model with the head the adapter was
trained with (a one-label classifier for critics, a causal LM for actors), applies the
adapter, merges it, and writes the model, its tokenizer and the adapter's
``raggym_train.json`` (with ``merged_from`` added), so a merged critic still loads with
its input format and length. The folder is written beside ``out`` and renamed into place
when complete, so a crash never leaves a half-written model under that name.

``raggym train-merge ADAPTER --out DIR`` runs it from the command line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from raggym.agents.llm.hf import TRAIN_RECORD, apply_adapter, resolve_adapter_dir
from raggym_env.availability import require

__all__ = ["merge_adapter", "merge_command"]

_FEATURE = "merging a LoRA adapter"


def merge_adapter(adapter: str | Path, out: str | Path) -> Path:
    """Write ``adapter`` merged into its base model to ``out`` and return ``out``.

    Raises:
        ValueError: ``adapter`` is not a trained adapter folder, or ``out`` exists and is
            not an empty folder.
        MissingDependencyError: torch, transformers or peft is missing.
    """
    trained = resolve_adapter_dir(adapter)
    if trained is None:
        raise ValueError(
            f"{str(adapter)!r} is not a trained adapter folder (no adapter_config.json); "
            "expected the OUT/final folder a trainer wrote"
        )
    target = Path(out)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ValueError(f"{str(target)!r} exists and is not empty; choose a new --out folder")
    transformers = require("transformers", feature=_FEATURE)
    require("peft", feature=_FEATURE)
    record: dict[str, Any] = dict(trained.record)
    if record.get("task_type") == "SEQ_CLS":
        num_labels = record.get("num_labels", 1)
        model = transformers.AutoModelForSequenceClassification.from_pretrained(
            trained.base_model, num_labels=num_labels if isinstance(num_labels, int) else 1
        )
    else:
        model = transformers.AutoModelForCausalLM.from_pretrained(trained.base_model)
    merged = apply_adapter(model, trained.path).merge_and_unload()
    source = trained.path if trained.has_tokenizer else trained.base_model
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(source))
    if getattr(merged.config, "pad_token_id", None) is None and tokenizer.pad_token_id is not None:
        merged.config.pad_token_id = tokenizer.pad_token_id
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        merged.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        record["merged_from"] = str(trained.path.resolve())
        (staging / TRAIN_RECORD).write_text(json.dumps(record, indent=2) + "\n", "utf-8")
        if target.exists():
            target.rmdir()
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def merge_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``raggym train-merge``."""
    parser = sub.add_parser(
        "train-merge",
        help="merge a trained LoRA adapter into its base model (for vLLM serving)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("adapter", type=Path, help="the adapter folder a trainer wrote (OUT/final)")
    parser.add_argument("--out", type=Path, required=True, help="the new model folder")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    out = merge_adapter(args.adapter, args.out)
    print(f"merged {args.adapter} into {out}; serve it with: vllm serve {out}")
    return 0
