"""The whole loop offline: collect with the gold critic -> DPO -> critic -> critic-guided agent."""

import pytest

pytest.importorskip("torch")

from raggym.agents.critic_guided import CriticGuidedAgent
from raggym.agents.critics.gold import GoldEvidenceCritic
from raggym.agents.critics.reward_model import RewardModelCritic
from raggym.agents.llm.hf import TransformersLLM
from raggym.agents.react import ReActAgent
from raggym.agents.rollout import BatchedRunner
from raggym.testing.llms import MockLLM
from raggym.testing.tiny import build_tiny_causal_lm, build_tiny_classifier
from raggym.trainers.collect import CollectConfig, collect
from raggym.trainers.critic import CriticTrainConfig, train_critic
from raggym.trainers.datasets import dpo_rows, reward_rows
from raggym.trainers.dpo import DPOTrainConfig, train_dpo
from raggym_env.env import EnvFactory
from raggym_env.store import EpisodeStore, read_episodes

SMALL = {
    "lora_r": 4, "lora_alpha": 8, "per_device_batch_size": 4, "gradient_accumulation_steps": 1,
    "logging_steps": 1, "save_strategy": "no", "gradient_checkpointing": False,
}  # fmt: skip


def make_actor(factory):
    """A mock policy whose samples differ: a gold-title search, a useless one, answers."""
    by_question = {ex.question: ex for ex in factory.examples}

    def samples(conversation):
        text = conversation[-1]["content"]
        example = next(ex for q, ex in by_question.items() if q in text)
        if "(none yet)" in text:
            return [
                f"Thought: look up the key page.\nAction: Search[{example.evidence.titles[0]}]",
                "Thought: search anything.\nAction: Search[zzqx unrelated words]",
                "Thought: guess.\nAction: Finish[maybe]",
            ]
        return [
            f"Thought: it is in the page.\nAction: Finish[{example.answers[0]}]",
            "Thought: guess.\nAction: Finish[maybe]",
            "Thought: more.\nAction: Search[zzqx unrelated words]",
        ]

    return ReActAgent(MockLLM(samples), doc_words=20)


def test_collect_train_dpo_and_critic_then_run_the_critic_guided_agent(tmp_path):
    factory = EnvFactory("hotpotqa", limit=8, k=2, max_steps=3)
    template = factory()
    store = EpisodeStore(tmp_path / "collect.jsonl")
    summary = collect(
        factory, make_actor(factory), GoldEvidenceCritic(template.retriever, k=2),
        factory.examples, store=store, config=CollectConfig(n=3, batch_size=8), progress=None,
    )  # fmt: skip
    assert summary.questions == 8 and summary.critic_failures == 0 and summary.kept > 0
    episodes = list(read_episodes(tmp_path / "collect.jsonl"))
    assert all(len(step.candidates) == 3 for e in episodes for step in e.steps)

    preference = dpo_rows(episodes, rejected_rank=2)
    pairs = reward_rows(episodes, template.corpus)
    assert preference and pairs

    lm = build_tiny_causal_lm(tmp_path / "lm", texts=[r["chosen"] for r in pairs])
    dpo = train_dpo(
        DPOTrainConfig(
            model=str(lm), output_dir=str(tmp_path / "dpo"), max_steps=2, max_length=2048,
            learning_rate=1e-3, **SMALL,
        ),
        preference,
    )  # fmt: skip
    assert dpo.losses and all(loss == loss for loss in dpo.losses)  # finite, logged

    classifier = build_tiny_classifier(tmp_path / "cls", texts=[r["chosen"] for r in pairs])
    critic_run = train_critic(
        CriticTrainConfig(
            model=str(classifier), output_dir=str(tmp_path / "critic"), max_steps=4,
            max_length=1024, learning_rate=1e-3, **SMALL,
        ),
        pairs,
    )  # fmt: skip
    assert critic_run.losses

    # The trained critic, loaded by path, chooses among samples of the DPO-tuned actor.
    critic = RewardModelCritic(tmp_path / "critic" / "final")
    actor = ReActAgent(TransformersLLM(tmp_path / "dpo" / "final"), doc_words=20, max_tokens=12)
    agent = CriticGuidedAgent(actor, critic, n=2)
    records = BatchedRunner(factory, agent, batch_size=4).run(factory.examples[:4])
    assert len(records) == 4
    assert all(r.error is None and r.final_answer is not None for r in records)
    scored = [c for r in records for s in r.steps for c in s.candidates if c.action]
    assert all(c.scorer == "reward_model" for c in scored)
    assert all(c.score is not None for c in scored)

    # ... and the same critic with the scripted actor: its choices are recorded with scores.
    guided = CriticGuidedAgent(make_actor(factory), critic, n=3)
    records = BatchedRunner(factory, guided, batch_size=8).run(factory.examples)
    assert all(r.error is None and r.terminated for r in records)
    assert all(len(s.candidates) == 3 for r in records for s in r.steps)
