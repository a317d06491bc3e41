"""The RAG-Gym training loop in one script: collect -> DPO -> critic -> critic-guided agent.

1. Collect process supervision: at every step the actor samples candidates, the
   gold-evidence critic ranks them, the best is followed, every candidate is recorded.
2. Train the actor with DPO on (best, worse) candidate pairs (LoRA).
3. Train a critic (a sequence-classification reward model, LoRA) on the same preferences.
4. Evaluate: the trained critic chooses among the actor's samples (Re2Search++ style).

Offline by default: the actor is a scripted stand-in and the models are tiny ones built
on the spot, so the whole loop runs on a CPU in about a minute (their scores mean
nothing). With a GPU, point it at real models, e.g.

    python examples/train_pipeline.py --limit 200 \
        --llm openai:http://127.0.0.1:8000/v1:Qwen/Qwen2.5-7B-Instruct \
        --model Qwen/Qwen2.5-7B-Instruct --critic-model Qwen/Qwen2.5-7B-Instruct

Run: python examples/train_pipeline.py [--llm SPEC] [--model PATH] [--critic-model PATH]
"""

import argparse
import tempfile
from pathlib import Path

from raggym.agents.critic_guided import CriticGuidedAgent
from raggym.agents.critics.gold import GoldEvidenceCritic
from raggym.agents.critics.reward_model import RewardModelCritic
from raggym.agents.react import ReActAgent
from raggym.agents.registry import make_llm
from raggym.agents.rollout import BatchedRunner
from raggym.testing.llms import MockLLM
from raggym.testing.tiny import build_tiny_causal_lm, build_tiny_classifier
from raggym.trainers.collect import CollectConfig, collect
from raggym.trainers.critic import CriticTrainConfig, train_critic
from raggym.trainers.datasets import dpo_rows, reward_rows
from raggym.trainers.dpo import DPOTrainConfig, train_dpo
from raggym_env.env import EnvFactory
from raggym_env.store import EpisodeStore, read_episodes


def scripted_actor(factory):
    """A stand-in model whose samples differ, so the critic has something to rank."""
    by_question = {ex.question: ex for ex in factory.examples}

    def samples(conversation):
        text = conversation[-1]["content"]
        ex = next(e for q, e in by_question.items() if q in text)
        if "(none yet)" in text:
            return [
                f"Thought: the key page.\nAction: Search[{ex.evidence.titles[0]}]",
                "Thought: anything.\nAction: Search[some unrelated words]",
                "Thought: a guess.\nAction: Finish[maybe]",
            ]
        return [
            f"Thought: it says so.\nAction: Finish[{ex.answers[0]}]",
            "Thought: a guess.\nAction: Finish[maybe]",
        ]

    return MockLLM(samples, name="scripted-actor")


def mean_em(records):
    return sum(r.metrics.get("em") or 0.0 for r in records) / len(records)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--llm", help="actor backend for collection (default: scripted)")
    parser.add_argument("--model", help="causal LM to tune with DPO (default: a tiny one)")
    parser.add_argument("--critic-model", help="base of the critic (default: a tiny one)")
    parser.add_argument("--limit", type=int, default=12, help="HotpotQA questions")
    parser.add_argument("--out", type=Path, help="where everything goes (default: a temp dir)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="raggym-train-"))
    real = args.model is not None
    tuning = {} if real else {
        "lora_r": 4, "lora_alpha": 8, "max_steps": 2, "learning_rate": 1e-3,
        "per_device_batch_size": 4, "gradient_accumulation_steps": 1, "max_length": 2048,
        "logging_steps": 1,
    }  # fmt: skip
    tuning.update(save_strategy="no", gradient_checkpointing=real)

    factory = EnvFactory("hotpotqa", limit=args.limit, k=2, max_steps=4)
    env = factory()
    llm = make_llm(args.llm) if args.llm else scripted_actor(factory)
    actor = ReActAgent(llm, doc_words=40)

    # 1. Process supervision with the free gold-evidence critic.
    store = EpisodeStore(out / "collect.jsonl")
    summary = collect(
        factory, actor, GoldEvidenceCritic(env.retriever, k=env.k), factory.examples,
        store=store, config=CollectConfig(n=3, batch_size=16), progress=None,
    )  # fmt: skip
    print("1. collect:", summary.format())
    episodes = list(read_episodes(out / "collect.jsonl"))
    preferences, pairs = dpo_rows(episodes, rejected_rank=2), reward_rows(episodes, env.corpus)
    print(f"   {len(preferences)} DPO pairs, {len(pairs)} critic pairs")

    # 2. DPO on the actor's preferences.
    texts = [p["chosen"] for p in pairs]  # the tiny tokenizers learn this vocabulary
    model = args.model or str(build_tiny_causal_lm(out / "tiny-lm", texts=texts))
    dpo = train_dpo(DPOTrainConfig(model=model, output_dir=str(out / "dpo"), **tuning), preferences)
    print(f"2. DPO: {len(dpo.losses)} logged losses, adapter at {dpo.adapter_dir}")

    # 3. The critic on pairwise preferences.
    base = args.critic_model or str(build_tiny_classifier(out / "tiny-critic", texts=texts))
    critic_run = train_critic(
        CriticTrainConfig(model=base, output_dir=str(out / "critic"), **tuning), pairs
    )
    print(f"3. critic: final loss {critic_run.final_loss:.4f}, adapter at {critic_run.adapter_dir}")

    # 4. Evaluate: the actor alone vs the actor with the trained critic choosing.
    critic = RewardModelCritic(out / "critic" / "final")
    plain = BatchedRunner(factory, ReActAgent(llm, doc_words=40)).run(factory.examples)
    guided = CriticGuidedAgent(ReActAgent(llm, doc_words=40), critic, n=3)
    chosen = BatchedRunner(factory, guided).run(factory.examples)
    print(
        f"4. EM over {len(plain)} questions: actor {mean_em(plain):.3f}, "
        f"actor + trained critic {mean_em(chosen):.3f}"
    )
    print(
        "   (the DPO adapter loads with TransformersLLM(...) or VLLMLLM(..., adapter=...);"
        " tiny models give meaningless scores)"
    )


if __name__ == "__main__":
    main()
