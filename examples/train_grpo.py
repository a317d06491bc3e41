"""Online RL in the environment: GRPO with the search and answer tools, LoRA through TRL.

Each question of the task is rolled out several times; the model calls ``search`` (the env
retrieves documents, which come back as the tool result) and ``answer`` (the episode ends
and is scored). The rewards of a question's rollouts are compared (GRPO) and the LoRA
adapter is updated on the tokens the model wrote; the retrieved text is masked out.

Offline by default: a tiny random model with a tool-calling chat template is built on the
spot and trained for a couple of steps on the bundled HotpotQA sample with a word-overlap
retriever, so it runs on a CPU in seconds (it rarely calls a tool, so its rewards mean
nothing). With a GPU, train a real instruct model whose chat template TRL can parse tool
calls from, e.g.

    python examples/train_grpo.py --model Qwen/Qwen3-0.6B --retriever bm25 \
        --questions 200 --max-steps 200 --num-generations 8 --format-weight 0.1

Run: python examples/train_grpo.py [--model NAME] [--max-steps N] [--out DIR]
"""

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

from raggym.testing.tiny import build_tiny_causal_lm
from raggym.trainers.grpo import GRPOTrainConfig, train_grpo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a hub name or local path (default: a tiny local model)")
    parser.add_argument("--max-steps", type=int, default=2, help="optimizer steps (default 2)")
    parser.add_argument("--out", type=Path, help="run directory (default: a temporary one)")
    parser.add_argument("--task", default="hotpotqa", help="the task (default: hotpotqa)")
    parser.add_argument("--questions", type=int, default=4, help="questions used (default 4)")
    parser.add_argument("--retriever", default="fake", help="retriever backend (default: fake)")
    parser.add_argument("--num-generations", type=int, default=2, help="rollouts per question")
    parser.add_argument("--format-weight", type=float, default=0.1, help="format reward weight")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        out = args.out or Path(scratch) / "grpo"
        tiny = args.model is None
        model = args.model or str(build_tiny_causal_lm(Path(scratch) / "tiny", tool_calling=True))
        config = GRPOTrainConfig(
            model=model,
            output_dir=str(out),
            task=args.task,
            select=f"first:{args.questions}",
            retriever=args.retriever,
            k=3,
            env_max_steps=4,
            num_generations=args.num_generations,
            per_device_batch_size=2 * args.num_generations,
            gradient_accumulation_steps=1,
            max_completion_length=48 if tiny else 1024,
            max_steps=args.max_steps,
            logging_steps=1,
            save_strategy="no",
            format_weight=args.format_weight,
            learning_rate=1e-3 if tiny else 1e-6,
            **({"lora_r": 4, "lora_alpha": 8, "gradient_checkpointing": False} if tiny else {}),
        )
        result = train_grpo(config)
        for entry in result.log_history:
            if "reward" in entry:
                print(
                    f"step {entry['step']}: reward {entry['reward']:.3f}, "
                    f"searches {entry.get('env/searches', 0.0):.2f}, "
                    f"answered {entry.get('env/answered', 0.0):.2f}, "
                    f"tool-call failures {entry.get('env/tool_failures', 0.0):.2f}"
                )
        kept = "" if args.out else " (a temporary folder: pass --out to keep it)"
        print(f"adapter written to {result.adapter_dir}{kept}")
        print(
            f"{result.metrics['rollouts']} rollouts scored in {result.metrics['global_step']} steps"
        )


if __name__ == "__main__":
    main()
