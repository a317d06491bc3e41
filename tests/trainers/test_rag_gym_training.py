"""protocol="rag-gym" training: presets, the chat-templated critic input, train = inference."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("peft")
pytest.importorskip("trl")
pytest.importorskip("datasets")

from raggym.agents.critics.base import CriticItem  # noqa: E402
from raggym.agents.critics.reward_model import (  # noqa: E402
    RewardModelCritic,
    conversation_token_ids,
    critic_messages,
)
from raggym.agents.llm.hf import TRAIN_RECORD  # noqa: E402
from raggym.testing.tiny import build_tiny_causal_lm, build_tiny_classifier  # noqa: E402
from raggym.trainers import datasets as td  # noqa: E402
from raggym.trainers.critic import CriticTrainConfig, _tokenize_pairs, train_critic  # noqa: E402
from raggym.trainers.dpo import DPOTrainConfig  # noqa: E402
from raggym.trainers.sft import SFTTrainConfig  # noqa: E402
from raggym.trainers.training import split_eval  # noqa: E402
from raggym_env.cli import main  # noqa: E402
from raggym_env.episode import Candidate, EpisodeRecord, StepRecord  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")

PROMPT = [
    {"role": "system", "content": "You answer questions by searching."},
    {"role": "user", "content": "Question: Which river flows through Salzburg?"},
]
TINY = {
    "lora_r": 4,
    "lora_alpha": 8,
    "max_length": 256,
    "logging_steps": 1,
    "save_strategy": "no",
    "gradient_checkpointing": False,
    "learning_rate": 1e-3,
    "max_steps": 2,
}


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory):
    return build_tiny_classifier(tmp_path_factory.mktemp("rm"), num_labels=1, seed=3)


def ranked_step(texts, kind="search"):
    candidates = [
        Candidate(t, {"type": kind, "text": t}, 1.0 / (1 + r), "judge") for r, t in enumerate(texts)
    ]
    return StepRecord(
        index=0,
        action=dict(candidates[0].action),
        raw_text=texts[0],
        candidates=candidates,
        extra={"prompt": PROMPT, "chosen": 0},
    )


def episodes(count=4):
    return [
        EpisodeRecord(
            env_id="RAGGym/HotpotQA-v0",
            env_version=0,
            example_id=f"q{i}",
            question="Which river?",
            steps=[
                ranked_step(["Search: Salzburg river", "Search: Mozart", "Search: pizza", "Oops"]),
                ranked_step(["Answer: the Salzach", "Answer: Danube", "Answer: Nile"], "answer"),
            ],
            final_answer="the Salzach",
            gold={"answers": ["Salzach"]},
            metrics={"f1": 1.0},
        )
        for i in range(count)
    ]


# --------------------------------------------------------------------------------- presets
def test_presets_are_the_papers_code_settings_and_overrides_win():
    sft = SFTTrainConfig.for_protocol("rag-gym", model="m", output_dir="o")
    dpo = DPOTrainConfig.for_protocol("rag-gym", model="m", output_dir="o")
    critic = CriticTrainConfig.for_protocol("rag-gym", model="m", output_dir="o")
    for config in (sft, dpo, critic):
        assert (config.lora_r, config.lora_alpha, config.lora_dropout) == (256, 512, 0.05)
        assert config.lora_target_modules == ("q_proj", "k_proj", "v_proj")
        assert config.max_length == 4096
    batch = lambda c: (c.per_device_batch_size, c.gradient_accumulation_steps)  # noqa: E731
    assert (sft.learning_rate, sft.num_train_epochs, batch(sft), sft.eval_ratio) == (
        5e-5, 3.0, (4, 16), 0.1,
    )  # fmt: skip
    assert (dpo.learning_rate, dpo.num_train_epochs, batch(dpo), dpo.eval_ratio) == (
        2e-6, 1.0, (1, 32), 0.0,
    )  # fmt: skip
    assert (critic.learning_rate, critic.num_train_epochs, batch(critic)) == (1e-5, 1.0, (1, 2))
    assert (critic.eval_ratio, critic.center_rewards_coefficient) == (0.1, 0.01)
    assert critic.input_format == "rag-gym"
    override = SFTTrainConfig.for_protocol("rag-gym", model="m", output_dir="o", lora_r=8)
    assert override.lora_r == 8 and override.gradient_accumulation_steps == 16
    # raggym's own defaults are unchanged
    plain = SFTTrainConfig.for_protocol("raggym", model="m", output_dir="o")
    assert plain == SFTTrainConfig(model="m", output_dir="o")
    assert plain.lora_target_modules == ("q_proj", "k_proj", "v_proj", "o_proj")
    assert (
        plain.eval_ratio == 0.0
        and CriticTrainConfig(model="m", output_dir="o").input_format is None
    )


def test_eval_split_keeps_each_question_on_one_side():
    import datasets

    data = datasets.Dataset.from_dict({"x": list(range(20))})
    groups = [f"q{i // 2}" for i in range(20)]
    train, held = split_eval(data, 0.2, 0, groups)
    assert held is not None and len(held) == 4 and len(train) == 16
    held_questions = {groups[x] for x in held["x"]}
    assert not held_questions & {groups[x] for x in train["x"]}
    assert split_eval(data, 0.0, 0, groups) == (data, None)


def test_cli_protocol_applies_presets_and_explicit_flags_win(tmp_path, capsys):
    lm = build_tiny_causal_lm(tmp_path / "lm", seed=0)
    path = tmp_path / "episodes.jsonl"
    path.write_text("".join(json.dumps(e.to_dict()) + "\n" for e in episodes(10)))
    out = tmp_path / "run"
    argv = [
        "train", "sft", "--protocol", "rag-gym", "--episodes", str(path), "--model", str(lm),
        "--out", str(out), "--lora-r", "4", "--lora-alpha", "8", "--max-steps", "1",
        "--gradient-accumulation-steps", "1", "--max-length", "256", "--save-strategy", "no",
        "--no-gradient-checkpointing", "--batch-size", "2",
    ]  # fmt: skip
    assert main(argv) == 0
    assert "sft: 20 rows" in capsys.readouterr().out
    config = json.loads((out / "final" / TRAIN_RECORD).read_text())["config"]
    assert config["lora_target_modules"] == ["q_proj", "k_proj", "v_proj"]  # preset
    assert (config["learning_rate"], config["eval_ratio"]) == (5e-5, 0.1)  # preset
    assert (config["lora_r"], config["gradient_accumulation_steps"]) == (4, 1)  # flags


# ----------------------------------------------------------------------------- critic input
def test_training_rows_and_inference_inputs_give_identical_token_ids(classifier_dir):
    rows = td.reward_rows(episodes(1), protocol="rag-gym")
    assert rows
    critic = RewardModelCritic(classifier_dir, input_format="rag-gym", device="cpu")
    assert critic.max_length == 4096
    tokenizer = critic.tokenizer
    dataset = td.to_dataset(rows, "reward")
    tokenized, dropped = _tokenize_pairs(dataset, tokenizer, 4096, "rag-gym")
    assert dropped == 0
    for row, ids in zip(rows, tokenized, strict=True):
        for side in ("chosen", "rejected"):
            prompt, text = row[side][:-1], row[side][-1]["content"]
            item = CriticItem(observation={}, text=text, action=None, prompt=tuple(prompt))
            assert critic_messages(item) == row[side]
            assert critic.encode_item(item) == ids[f"{side}_ids"]
    # the template's own special tokens only, none added on top
    first = tokenized[0]["chosen_ids"]
    assert first.count(tokenizer.bos_token_id) == 1


def test_long_conversations_are_cut_from_the_left(classifier_dir):
    critic = RewardModelCritic(classifier_dir, input_format="rag-gym", device="cpu")
    messages = [
        {"role": "user", "content": "word " * 300},
        {"role": "assistant", "content": "Search: x"},
    ]
    full = conversation_token_ids(critic.tokenizer, messages, 10_000)
    assert len(full) > 64
    assert conversation_token_ids(critic.tokenizer, messages, 64) == full[-64:]


def test_left_padded_batches_score_as_one_by_one(classifier_dir):
    critic = RewardModelCritic(classifier_dir, input_format="rag-gym", device="cpu", batch_size=8)
    texts = ["Search: a", "Search: a much longer query about rivers and towns", "Answer: no"]
    items = [CriticItem(observation={}, text=t, action=None, prompt=tuple(PROMPT)) for t in texts]
    together = [s.score for s in critic.score([items])[0]]
    alone = [critic.score([[item]])[0][0].score for item in items]
    assert together == pytest.approx(alone, abs=1e-5)
    missing = critic.score([[CriticItem(observation={}, text="x", action=None)]])[0][0]
    assert missing.score is None and "prompt" in missing.error


def test_a_critic_trained_under_the_protocol_loads_with_its_format(classifier_dir, tmp_path):
    rows = td.reward_rows(episodes(6), protocol="rag-gym")
    config = CriticTrainConfig.for_protocol(
        "rag-gym", model=str(classifier_dir), output_dir=str(tmp_path / "c"), **TINY
    )
    result = train_critic(config, rows)
    record = json.loads((result.adapter_dir / TRAIN_RECORD).read_text())
    assert record["input_format"] == "rag-gym"
    assert record["config"]["center_rewards_coefficient"] == 0.01
    critic = RewardModelCritic(result.adapter_dir, device="cpu")
    assert (critic.input_format, critic.max_length) == ("rag-gym", 256)
    item = CriticItem(
        observation={}, text="Search: Salzburg river", action=None, prompt=tuple(PROMPT)
    )
    assert critic.score([[item]])[0][0].score is not None


def test_cli_trains_a_rag_gym_critic_from_episodes_without_a_corpus(
    classifier_dir, tmp_path, capsys
):
    path = tmp_path / "episodes.jsonl"
    path.write_text("".join(json.dumps(e.to_dict()) + "\n" for e in episodes(4)))
    out = tmp_path / "critic"
    argv = [
        "train", "critic", "--protocol", "rag-gym", "--episodes", str(path),
        "--model", str(classifier_dir), "--out", str(out), "--lora-r", "4", "--lora-alpha", "8",
        "--max-steps", "1", "--max-length", "256", "--save-strategy", "no",
        "--no-gradient-checkpointing",
    ]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "reward: 3 rows" in printed and "duplicate rows dropped" in printed  # same prompts
    critic = RewardModelCritic(out / "final", device="cpu")
    assert (critic.input_format, critic.max_length) == ("rag-gym", 256)


def test_a_merged_critic_scores_as_its_adapter_and_keeps_its_format(
    classifier_dir, tmp_path, capsys
):
    rows = td.reward_rows(episodes(6), protocol="rag-gym")
    config = CriticTrainConfig.for_protocol(
        "rag-gym", model=str(classifier_dir), output_dir=str(tmp_path / "c"), **TINY
    )
    result = train_critic(config, rows)
    merged = tmp_path / "merged"
    assert main(["train-merge", str(result.adapter_dir), "--out", str(merged)]) == 0
    assert "vllm serve" in capsys.readouterr().out
    assert not (merged / "adapter_config.json").exists()
    record = json.loads((merged / TRAIN_RECORD).read_text())
    assert record["merged_from"] == str(result.adapter_dir.resolve())
    items = [
        CriticItem(observation={}, text=text, action=None, prompt=tuple(PROMPT))
        for text in ("Search: Salzburg river", "Answer: Danube", "Oops")
    ]
    adapter_scores = [
        s.score for s in RewardModelCritic(result.adapter_dir, device="cpu").score([items])[0]
    ]
    whole = RewardModelCritic(merged, device="cpu")
    assert (whole.input_format, whole.max_length) == ("rag-gym", 256)
    merged_scores = [s.score for s in whole.score([items])[0]]
    assert merged_scores == pytest.approx(adapter_scores, abs=1e-4)
    assert main(["train-merge", str(result.adapter_dir), "--out", str(merged)]) == 2  # not empty
    assert "not empty" in capsys.readouterr().err
