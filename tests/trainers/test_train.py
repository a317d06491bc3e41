"""SFT, DPO and critic training on tiny models: losses, parameter updates, adapters, CLI."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import dataclasses
import importlib.util
import json
import math
import sys

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")
pytest.importorskip("trl")
hf_datasets = pytest.importorskip("datasets")

from raggym.agents.critic_guided import CriticGuidedAgent  # noqa: E402
from raggym.agents.critics.base import CriticItem, critic_input  # noqa: E402
from raggym.agents.critics.gold import GoldEvidenceCritic  # noqa: E402
from raggym.agents.critics.reward_model import RewardModelCritic  # noqa: E402
from raggym.agents.llm.base import SamplingParams  # noqa: E402
from raggym.agents.llm.hf import TRAIN_RECORD, TransformersLLM  # noqa: E402
from raggym.agents.react import ReActAgent  # noqa: E402
from raggym.agents.rollout import run_episode  # noqa: E402
from raggym.testing.llms import MockLLM  # noqa: E402
from raggym.testing.tiny import build_tiny_causal_lm, build_tiny_classifier  # noqa: E402
from raggym.trainers.config import TrainConfig, config_help  # noqa: E402
from raggym.trainers.critic import CriticTrainConfig, train_critic  # noqa: E402
from raggym.trainers.datasets import to_dataset, write_jsonl  # noqa: E402
from raggym.trainers.dpo import DPOTrainConfig, train_dpo  # noqa: E402
from raggym.trainers.sft import SFTTrainConfig, train_sft  # noqa: E402
from raggym.trainers.training import lora_config, resolve_precision  # noqa: E402
from raggym_env import RAGEnv, Search  # noqa: E402
from raggym_env.availability import MissingDependencyError  # noqa: E402
from raggym_env.cli import main  # noqa: E402
from raggym_env.store import EpisodeStore  # noqa: E402

# peft calls a transformers API that v5 deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")

# Small enough to run in seconds on a CPU; the paper's defaults stay in the configs.
SMALL = {
    "lora_r": 4,
    "lora_alpha": 8,
    "per_device_batch_size": 4,
    "gradient_accumulation_steps": 1,
    "max_length": 256,
    "logging_steps": 1,
    "save_strategy": "no",
    "gradient_checkpointing": False,
    "learning_rate": 1e-3,
}
GREEDY = SamplingParams(n=1, temperature=0.0, max_tokens=8)
TITLES = [
    "Scott Derrickson", "Ed Wood", "Paris", "Uranus", "Stephen King", "Salzburg",
    "Eiffel Tower", "Voyager", "Titan rocket", "France", "Austria", "The Shining",
    "London", "Berlin", "Tokyo", "Nile", "Amazon", "Everest", "Mozart", "Danube",
    "Oslo", "Madrid", "Lisbon", "Vienna", "Prague", "Cairo", "Lima", "Quito",
    "Hanoi", "Dublin", "Athens", "Rome", "Sydney", "Toronto",
]  # fmt: skip


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory):
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny_lm"), seed=0)


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory):
    return build_tiny_classifier(tmp_path_factory.mktemp("tiny_rm"), num_labels=1, seed=1)


def assert_lora_trained(watch, *, head=None):
    trainable = watch.trainable()
    assert trainable, "nothing was trainable"
    assert all("lora_" in n or "modules_to_save" in n for n in trainable), trainable
    assert all(watch.changed(n) for n in trainable), [n for n in trainable if not watch.changed(n)]
    frozen = [n for n, (grad, _) in watch.before.items() if not grad]
    assert frozen and not any(watch.changed(n) for n in frozen)
    if head is not None:
        assert any(head in n and "modules_to_save" in n for n in trainable)


def assert_adapter_matches(watch, loaded_model):
    """The adapter loaded from disk holds exactly the trained weights."""
    loaded = dict(loaded_model.named_parameters())
    for name in watch.trainable():
        assert torch.allclose(loaded[name].detach().cpu(), watch.after[name][1]), name


def assert_losses(result):
    assert result.losses and all(math.isfinite(x) for x in result.losses)
    assert result.final_loss == result.losses[-1]
    assert any("loss" in entry for entry in result.log_history)
    assert result.metrics["global_step"] >= 1


def sft_rows(n=8):
    return [
        {
            "prompt": [
                {"role": "system", "content": "You answer questions by searching."},
                {"role": "user", "content": f"Question: where is {title}?"},
            ],
            "completion": [{"role": "assistant", "content": f"Search: {title}"}],
            "meta": {"example_id": f"q{i}", "score": 1.0},
        }
        for i, title in enumerate(TITLES[:n])
    ]


def dpo_rows(n=8):
    return [
        {
            "prompt": row["prompt"],
            "chosen": row["completion"],
            "rejected": [{"role": "assistant", "content": "Search: zzz unrelated"}],
            "meta": {"example_id": row["meta"]["example_id"]},
        }
        for row in sft_rows(n)
    ]


def observation(title):
    return {"question": f"Which documents mention {title}?", "options": (), "history": ()}


def reward_row(title):
    obs = observation(title)
    return {
        "chosen": critic_input(obs, Search(title)),
        "rejected": critic_input(obs, Search("zzz unrelated")),
    }


# ---------------------------------------------------------------------------------------------
# Configs
# ---------------------------------------------------------------------------------------------


def test_configs_carry_the_papers_defaults_and_help_on_every_field():
    sft = SFTTrainConfig(model="m", output_dir="o")
    dpo = DPOTrainConfig(model="m", output_dir="o")
    critic = CriticTrainConfig(model="m", output_dir="o")
    assert (sft.learning_rate, sft.num_train_epochs) == (5e-5, 3.0)
    assert (dpo.learning_rate, dpo.num_train_epochs, dpo.beta) == (2e-6, 1.0, 0.1)
    assert (critic.learning_rate, critic.num_train_epochs) == (1e-5, 1.0)
    assert critic.modules_to_save == ("score",)
    for config in (sft, dpo, critic):
        assert (config.lora_r, config.lora_alpha, config.lora_dropout) == (256, 512, 0.05)
        assert config.lora_target_modules == ("q_proj", "k_proj", "v_proj", "o_proj")
        assert config.report_to == "none" and config.use_cpu is None and config.bf16 is None
        helps = config_help(type(config))
        assert set(helps) == {f.name for f in dataclasses.fields(config)}
        assert all(text.strip() for text in helps.values())
    assert json.loads(json.dumps(sft.to_dict()))["lora_target_modules"] == list(
        sft.lora_target_modules
    )


@pytest.mark.parametrize(
    ("cls", "changes", "match"),
    [
        (SFTTrainConfig, {"lora_r": 0}, "lora_r"),
        (SFTTrainConfig, {"learning_rate": -1.0}, "learning_rate"),
        (SFTTrainConfig, {"lora_dropout": 1.5}, "lora_dropout"),
        (SFTTrainConfig, {"report_to": "mlflow"}, "report_to"),
        (SFTTrainConfig, {"save_strategy": "sometimes"}, "save_strategy"),
        (SFTTrainConfig, {"lora_target_modules": ()}, "lora_target_modules"),
        (SFTTrainConfig, {"max_steps": 0}, "max_steps"),
        (SFTTrainConfig, {"use_cpu": "yes"}, "use_cpu"),
        (SFTTrainConfig, {"model": ""}, "model"),
        (DPOTrainConfig, {"beta": 0}, "beta"),
        (CriticTrainConfig, {"modules_to_save": ("",)}, "modules_to_save"),
    ],
)
def test_bad_config_values_raise(cls, changes, match):
    with pytest.raises(ValueError, match=match):
        cls(**{"model": "m", "output_dir": "o", **changes})


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only behaviour")
def test_precision_is_cpu_without_bf16_when_there_is_no_gpu():
    auto = resolve_precision(SFTTrainConfig(model="m", output_dir="o"))
    assert (auto.use_cpu, auto.bf16, auto.device) == (True, False, "cpu")
    assert resolve_precision(SFTTrainConfig(model="m", output_dir="o", bf16=True)).bf16 is True
    with pytest.raises(ValueError, match="CUDA"):
        resolve_precision(SFTTrainConfig(model="m", output_dir="o", use_cpu=False))


def test_a_method_refuses_another_methods_config(tmp_path):
    with pytest.raises(TypeError, match="SFTTrainConfig"):
        train_sft(DPOTrainConfig(model="m", output_dir=str(tmp_path)), sft_rows())
    with pytest.raises(TypeError, match="CriticTrainConfig"):
        train_critic(TrainConfig(model="m", output_dir=str(tmp_path)), [reward_row("x")])


def test_data_from_lists_jsonl_and_datasets_keeps_only_trainer_columns(tmp_path):
    rows = sft_rows(3)
    path = write_jsonl(rows, tmp_path / "rows.jsonl")
    for data in (rows, path, str(path), hf_datasets.Dataset.from_list(rows)):
        dataset = to_dataset(data, "sft")
        assert dataset.column_names == ["prompt", "completion"] and len(dataset) == 3
    with pytest.raises(ValueError, match="prompt/completion or messages or text"):
        to_dataset([{"chosen": "a", "rejected": "b"}], "sft")
    with pytest.raises(ValueError, match="SFT data has no rows"):
        train_sft(SFTTrainConfig(model="m", output_dir=str(tmp_path)), [])
    with pytest.raises(ValueError, match="row 1"):
        to_dataset([rows[0], "not a row"], "sft")
    with pytest.raises(TypeError, match="JSONL path"):
        to_dataset(42, "sft")
    with pytest.raises(FileNotFoundError):
        to_dataset(tmp_path / "missing.jsonl", "sft")


def test_tensorboard_without_the_package_names_what_to_install(lm_dir, tmp_path, monkeypatch):
    for name in ("tensorboard", "tensorboardX"):
        monkeypatch.setitem(sys.modules, name, None)  # absent, even where it is installed
    config = SFTTrainConfig(model=str(lm_dir), output_dir=str(tmp_path), report_to="tensorboard")
    with pytest.raises(MissingDependencyError, match=r"pip install 'raggym\[track\]'"):
        train_sft(config, sft_rows())


@pytest.mark.skipif(
    not any(importlib.util.find_spec(m) for m in ("tensorboard", "tensorboardX")),
    reason="tensorboard is not installed",
)
def test_tensorboard_writes_event_files(lm_dir, tmp_path):
    small = {**SMALL, "report_to": "tensorboard", "max_steps": 2}
    train_sft(SFTTrainConfig(model=str(lm_dir), output_dir=str(tmp_path), **small), sft_rows())
    assert list(tmp_path.rglob("events.out.tfevents*"))


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


def test_sft_trains_lora_and_the_adapter_loads_by_path(lm_dir, tmp_path, param_watch):
    watch = param_watch
    config = SFTTrainConfig(model=str(lm_dir), output_dir=str(tmp_path / "sft"), **SMALL)
    config.num_train_epochs = 1
    result = train_sft(config, sft_rows(), callbacks=[watch])

    assert_losses(result)
    assert result.metrics["num_rows"] == 8 and result.metrics["global_step"] == 2
    assert_lora_trained(watch)
    assert result.adapter_dir == tmp_path / "sft" / "final"
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer_config.json"):
        assert (result.adapter_dir / name).is_file()
    record = json.loads((result.adapter_dir / TRAIN_RECORD).read_text())
    assert record["method"] == "sft" and record["base_model"] == str(lm_dir.resolve())
    assert record["config"]["lora_r"] == 4 and record["task_type"] == "CAUSAL_LM"
    if not torch.cuda.is_available():  # use_cpu/bf16 left at None: CPU, no bf16
        assert record["device"] == "cpu" and record["bf16"] is False

    llm = TransformersLLM(result.adapter_dir)
    assert isinstance(llm.model, peft.PeftModel)
    assert_adapter_matches(watch, llm.model)
    (completion,) = llm.generate([sft_rows(1)[0]["prompt"]], GREEDY)
    assert completion.ok and completion.completion_tokens > 0


def test_dpo_trains_lora_saves_checkpoints_and_the_adapter_loads(lm_dir, tmp_path, param_watch):
    watch = param_watch
    rows = write_jsonl(dpo_rows(), tmp_path / "dpo.jsonl")  # a JSONL path, meta included
    small = {**SMALL, "save_strategy": "steps", "save_steps": 2, "max_steps": 4}
    config = DPOTrainConfig(model=str(lm_dir), output_dir=str(tmp_path / "dpo"), **small)
    result = train_dpo(config, rows, callbacks=[watch])

    assert_losses(result)
    assert result.metrics["global_step"] == 4
    assert result.losses[0] == pytest.approx(math.log(2), abs=1e-3)  # policy == reference
    assert any(e.get("rewards/margins", 0) > 0 for e in result.log_history)
    assert_lora_trained(watch)
    assert (tmp_path / "dpo" / "checkpoint-2" / "adapter_config.json").is_file()
    assert (tmp_path / "dpo" / "checkpoint-4" / "adapter_config.json").is_file()
    record = json.loads((result.adapter_dir / TRAIN_RECORD).read_text())
    assert record["method"] == "dpo" and record["config"]["beta"] == 0.1

    llm = TransformersLLM(result.adapter_dir)
    assert_adapter_matches(watch, llm.model)
    assert llm.generate([dpo_rows(1)[0]["prompt"]], GREEDY)[0].ok


def test_modules_to_save_train_in_full_and_reload_with_the_adapter(lm_dir, tmp_path, param_watch):
    """``lora_modules_to_save``: the embedding trains in full beside the adapters, is saved
    with them, and the reloaded model holds the trained weights."""
    config = SFTTrainConfig(
        model=str(lm_dir), output_dir=str(tmp_path / "sft"), **SMALL,
        lora_modules_to_save=("embed_tokens",),
    )  # fmt: skip
    result = train_sft(config, sft_rows(), callbacks=[param_watch])
    trainable = param_watch.trainable()
    embedding = [n for n in trainable if "embed_tokens" in n and "modules_to_save" in n]
    assert embedding and all(param_watch.changed(n) for n in embedding)
    assert any("lora_" in n for n in trainable)
    llm = TransformersLLM(result.adapter_dir)
    assert_adapter_matches(param_watch, llm.model)
    with pytest.raises(ValueError, match="lora_modules_to_save"):
        SFTTrainConfig(model="m", output_dir="o", lora_modules_to_save=("",))


def test_lora_config_keeps_tied_embeddings_tied_only_where_they_are_trained():
    """``ensure_weight_tying`` goes to peft when a tied model trains its embeddings."""
    if "ensure_weight_tying" not in peft.LoraConfig.__dataclass_fields__:
        pytest.skip("this peft has no ensure_weight_tying (peft < 0.18)")
    trained = SFTTrainConfig(model="m", output_dir="o", lora_modules_to_save=("embed_tokens",))
    assert lora_config(trained, "CAUSAL_LM", tied_embeddings=True).ensure_weight_tying
    assert not lora_config(trained, "CAUSAL_LM").ensure_weight_tying
    adapters_only = SFTTrainConfig(model="m", output_dir="o")
    assert not lora_config(adapters_only, "CAUSAL_LM", tied_embeddings=True).ensure_weight_tying


def test_a_tied_model_trains_its_embedding_once_and_merges_tied(lm_dir, tmp_path):
    """A model whose output layer is its embedding (Qwen2.5-0.5B, Qwen3-0.6B) trains the
    shared matrix in full and merges with the two still one matrix, changed by training."""
    from raggym.trainers.merge import merge_adapter

    base = transformers.AutoModelForCausalLM.from_pretrained(lm_dir)
    base.config.tie_word_embeddings = True
    base.tie_weights()
    tied_dir = tmp_path / "tied"
    base.save_pretrained(tied_dir)
    transformers.AutoTokenizer.from_pretrained(lm_dir).save_pretrained(tied_dir)
    before = base.get_input_embeddings().weight.detach().clone()
    config = SFTTrainConfig(
        model=str(tied_dir), output_dir=str(tmp_path / "sft"), **SMALL,
        lora_modules_to_save=("embed_tokens",),
    )  # fmt: skip
    result = train_sft(config, sft_rows())
    merged = transformers.AutoModelForCausalLM.from_pretrained(
        merge_adapter(result.adapter_dir, tmp_path / "merged")
    )
    embedding = merged.get_input_embeddings().weight
    assert torch.equal(embedding, merged.get_output_embeddings().weight)
    assert not torch.allclose(embedding, before)


def test_dpo_sft_weight_adds_the_chosen_nll_term(lm_dir, tmp_path):
    """``sft_weight`` reaches TRL as the sigmoid + sft loss pair (RPO) with its weight."""
    transformers = pytest.importorskip("transformers")
    seen = {}

    class Args(transformers.TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            seen.update(loss_type=list(args.loss_type), loss_weights=list(args.loss_weights))

    small = {**SMALL, "max_steps": 1}
    config = DPOTrainConfig(
        model=str(lm_dir), output_dir=str(tmp_path / "dpo"), sft_weight=0.5, **small
    )
    result = train_dpo(config, dpo_rows(), callbacks=[Args()])
    assert seen == {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, 0.5]}
    assert_losses(result)
    assert result.losses[0] > math.log(2)  # the NLL term adds to DPO's log 2 at the start
    with pytest.raises(ValueError, match="sft_weight"):
        DPOTrainConfig(model="m", output_dir="o", sft_weight=-1.0)


def test_critic_learns_to_rank_gold_searches_above_unrelated_ones(
    classifier_dir, tmp_path, param_watch
):
    train_titles, held_out = TITLES[:24], TITLES[24:]
    data = hf_datasets.Dataset.from_list([reward_row(t) for t in train_titles])
    watch = param_watch
    small = {**SMALL, "per_device_batch_size": 8, "learning_rate": 1e-2, "num_train_epochs": 3}
    config = CriticTrainConfig(model=str(classifier_dir), output_dir=str(tmp_path / "rm"), **small)
    result = train_critic(config, data, callbacks=[watch])

    assert_losses(result)
    assert result.losses[-1] < result.losses[0]
    assert result.metrics["dropped_pairs"] == 0
    assert_lora_trained(watch, head="score")
    record = json.loads((result.adapter_dir / TRAIN_RECORD).read_text())
    assert record["method"] == "critic" and record["num_labels"] == 1
    assert record["max_length"] == 256

    critic = RewardModelCritic(result.adapter_dir)
    assert isinstance(critic.model, peft.PeftModel) and critic.max_length == 256
    assert_adapter_matches(watch, critic.model)
    groups = [
        [
            CriticItem(observation(t), f"Search: {t}", Search(t)),
            CriticItem(observation(t), "Search: zzz unrelated", Search("zzz unrelated")),
        ]
        for t in held_out
    ]
    scores = critic.score(groups)
    wins = sum(chosen.score > rejected.score for chosen, rejected in scores)
    assert wins / len(held_out) > 0.8, scores


def test_critic_training_tokenizes_like_the_critic_scores(classifier_dir, tmp_path):
    """Long pairs are truncated keeping the action; pairs whose action cannot fit are dropped."""
    long_history = {
        "question": "Which city?",
        "options": (),
        "history": tuple(
            {"query": f"q{i}", "documents": ({"title": f"T{i}", "text": "words " * 40},)}
            for i in range(6)
        ),
    }
    fits = {
        "chosen": critic_input(long_history, Search("Paris")),
        "rejected": critic_input(long_history, Search("zzz")),
    }
    too_long = {"chosen": "Question: q\n\nNext action: " + "x " * 400, "rejected": fits["rejected"]}
    small = {**SMALL, "max_length": 64, "max_steps": 1}
    config = CriticTrainConfig(model=str(classifier_dir), output_dir=str(tmp_path), **small)
    result = train_critic(config, [fits, too_long])
    assert result.metrics["dropped_pairs"] == 1 and result.metrics["num_rows"] == 1
    with pytest.raises(ValueError, match="max_length=64"):
        train_critic(config, [too_long])
    with pytest.raises(ValueError, match="expected a non-empty list of messages"):
        train_critic(config, [{"chosen": [{"role": "user", "content": "x"}], "rejected": "y"}])


def test_no_row_left_after_trl_preprocessing_is_an_error(lm_dir, tmp_path):
    rows = [{**row, "prompt": [{"role": "user", "content": "word " * 200}]} for row in dpo_rows(2)]
    config = DPOTrainConfig(
        model=str(lm_dir), output_dir=str(tmp_path), **{**SMALL, "max_length": 32}
    )
    with pytest.raises(ValueError, match="raise max_length"):
        train_dpo(config, rows)


def test_wandb_offline_writes_a_local_run(lm_dir, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    small = {**SMALL, "report_to": "wandb", "max_steps": 2, "run_name": "tiny-sft"}
    config = SFTTrainConfig(model=str(lm_dir), output_dir=str(tmp_path / "out"), **small)
    result = train_sft(config, sft_rows())
    assert_losses(result)
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    assert list(runs[0].glob("*.wandb"))


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------

SMALL_FLAGS = [
    "--lora-r", "4", "--lora-alpha", "8", "--batch-size", "4",
    "--gradient-accumulation-steps", "1", "--max-length", "256", "--logging-steps", "1",
    "--save-strategy", "no", "--no-gradient-checkpointing", "--lr", "1e-3",
]  # fmt: skip


def test_cli_help_lists_every_config_field(capsys):
    with pytest.raises(SystemExit):
        main(["train", "dpo", "--help"])
    out = capsys.readouterr().out
    for f in dataclasses.fields(DPOTrainConfig):
        assert f"--{f.name.replace('_', '-')}" in out
    for flag in ("--episodes", "--model", "--out", "--lr", "--epochs", "--report-to"):
        assert flag in out
    assert "DPO temperature" in out and "(default: 2e-06)" in out


def test_cli_trains_sft_from_a_rows_file(lm_dir, tmp_path, capsys):
    rows = write_jsonl(sft_rows(), tmp_path / "sft.jsonl")
    out = tmp_path / "run"
    argv = ["train", "sft", "--episodes", str(rows), "--model", str(lm_dir), "--out", str(out)]
    assert main([*argv, *SMALL_FLAGS, "--max-steps", "2", "--seed", "7"]) == 0
    printed = capsys.readouterr().out
    assert "raggym train sft: 8 rows from rows file" in printed
    assert "steps: 2, final loss:" in printed and f"adapter: {out / 'final'}" in printed
    record = json.loads((out / "final" / TRAIN_RECORD).read_text())
    assert record["config"]["learning_rate"] == 1e-3 and record["config"]["seed"] == 7
    assert record["config"]["num_train_epochs"] == 3.0  # unset flags keep the defaults
    assert record["config"]["lora_target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj"]


SAMPLES = {
    4: [
        "Thought: start with the director\nAction: Search[Scott Derrickson]",
        "Thought: food\nAction: Search[pizza recipes]",
        "Thought: guess\nAction: Finish[no]",
        "Thought: the other one\nAction: Search[Ed Wood]",
    ],
    3: [
        "Thought: both American\nAction: Finish[yes]",
        "Thought: check Ed Wood\nAction: Search[Ed Wood filmmaker]",
        "Thought: food\nAction: Search[pizza recipes]",
    ],
}


def respond(conversation):
    for left, samples in SAMPLES.items():
        if f"You have {left} steps left" in conversation[-1]["content"]:
            return samples
    return "Thought: finish\nAction: Finish[yes]"


@pytest.fixture(scope="module")
def episode_file(tmp_path_factory):
    """Episodes collected with a critic-guided agent and the gold-evidence critic."""
    env = RAGEnv("hotpotqa", limit=3, max_steps=4)
    agent = CriticGuidedAgent(
        ReActAgent(MockLLM(respond)), GoldEvidenceCritic(env.retriever, k=env.k), n=4
    )
    path = tmp_path_factory.mktemp("episodes") / "episodes.jsonl"
    with EpisodeStore(path, fsync=False) as store:
        for index in range(3):
            store.append(run_episode(env, agent, options={"index": index}))
    return path


def test_cli_trains_a_critic_from_episodes(lm_dir, episode_file, tmp_path, capsys):
    out = tmp_path / "critic"
    argv = [
        "train", "critic", "--episodes", str(episode_file), "--task", "hotpotqa",
        "--model", str(lm_dir), "--out", str(out), *SMALL_FLAGS, "--max-steps", "2",
    ]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert f"rows from episodes {episode_file}" in printed and "reward:" in printed
    record = json.loads((out / "final" / TRAIN_RECORD).read_text())
    assert record["method"] == "critic" and record["metrics"]["num_rows"] >= 1
    # A causal LM base became a one-label classifier; loading restores that shape.
    critic = RewardModelCritic(out / "final")
    assert critic.num_labels == 1
    item = CriticItem(observation("Ed Wood"), "Search: Ed Wood", Search("Ed Wood"))
    assert math.isfinite(critic.score([[item]])[0][0].score)


def test_cli_reports_data_problems_without_training(lm_dir, episode_file, tmp_path, capsys):
    base = ["--model", str(lm_dir), "--out", str(tmp_path / "x")]
    assert main(["train", "critic", "--episodes", str(episode_file), *base]) == 2
    assert "--task" in capsys.readouterr().err
    wrong = write_jsonl(sft_rows(2), tmp_path / "sft.jsonl")
    assert main(["train", "dpo", "--episodes", str(wrong), *base]) == 2
    assert "neither an episode file" in capsys.readouterr().err
    assert main(["train", "sft", "--episodes", str(tmp_path / "missing.jsonl"), *base]) == 2
    assert main(["train", "sft", "--episodes", str(wrong), *base, "--lora-r", "0"]) == 2
    assert "lora_r" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
