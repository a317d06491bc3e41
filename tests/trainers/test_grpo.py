"""GRPO in the environment: the TRL tool adapter, the trainer, loss masking, the CLI."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

import itertools
import json
import math

import pytest

from raggym.testing.tasks import tiny_corpus, tiny_examples
from raggym.trainers.config import config_help
from raggym.trainers.grpo import (
    GRPOTrainConfig,
    RAGToolEnv,
    RAGToolEnvFactory,
    RewardWeights,
    RolloutStats,
)
from raggym_env import RAGEnv

# peft calls a transformers API that v5 deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")


def tiny_env(**kwargs):
    options = {
        "examples": tiny_examples(),
        "corpus": tiny_corpus(),
        "retriever": "fake",
        "k": 2,
        **kwargs,
    }
    return RAGEnv("custom", **options)


def tool_env(weights=None, stats=None, **env_kwargs):
    return RAGToolEnv(tiny_env(**env_kwargs), weights, stats)


# ---------------------------------------------------------------------------------------------
# RAGToolEnv without TRL
# ---------------------------------------------------------------------------------------------


def test_reset_returns_the_question_of_the_row():
    env = tool_env()
    text = env.reset(prompt=[{"role": "user", "content": ""}], example_id="tiny-2")
    assert "Eiffel Tower stands in the capital" in text
    assert env.rag_env.current_example.id == "tiny-2"
    question = tiny_examples()[2].question
    assert question in env.reset(question=question)
    assert env.rag_env.current_example.id == "tiny-3"
    assert env.reset().startswith("Question: ")  # no row: the env draws one


def test_search_returns_numbered_titles_and_text():
    env = tool_env()
    env.reset(example_id="tiny-2")
    text = env.search("Eiffel Tower Paris")
    assert text.startswith("[1] ")
    assert "Eiffel Tower" in text and "wrought-iron" in text
    assert env.searches == 1 and env.tool_failures == 0


def test_answer_ends_the_episode_and_later_calls_return_errors():
    env = tool_env()
    env.reset(example_id="tiny-2")
    assert "recorded" in env.answer("France")
    for call in (lambda: env.search("Paris"), lambda: env.answer("Paris")):
        message = call()
        assert isinstance(message, str) and message.startswith("Error")
    assert env.answered and env.tool_failures == 2


def test_empty_calls_are_invalid_actions_not_exceptions():
    env = tool_env(reward={"invalid_action_penalty": 0.5})
    env.reset(example_id="tiny-1")
    assert env.search("   ").startswith("Error")
    assert env.answer("").startswith("Error")
    assert env.invalid_actions == 2
    assert env.process == pytest.approx(-1.0)


def test_step_budget_ends_the_episode_without_an_answer():
    env = tool_env(max_steps=1)
    env.reset(example_id="tiny-1")
    assert "step budget" in env.search("Scott Derrickson")
    assert env.search("Ed Wood").startswith("Error")
    assert env.get_reward() == 0.0 and not env.answered


@pytest.mark.parametrize(("answer", "metric"), [("France", "em"), ("the France country", "f1")])
def test_reward_is_the_envs_outcome_metric(answer, metric):
    env = tool_env(reward=metric)
    env.reset(example_id="tiny-2")
    env.answer(answer)
    reference = tiny_env(reward=metric)
    reference.reset(options={"example_id": "tiny-2"})
    _, _, _, _, info = reference.step(f"Answer: {answer}")
    assert env.get_reward() == pytest.approx(info["metrics"][metric])
    assert env.final_metrics[metric] == pytest.approx(info["metrics"][metric])
    if metric == "f1":
        assert 0 < env.get_reward() < 1


def test_format_and_process_terms_follow_their_weights():
    weights = RewardWeights(outcome=1.0, process=2.0, format=0.25)
    env = tool_env(weights, reward={"search_cost": 0.1})
    env.reset(example_id="tiny-2")
    env.search("Eiffel Tower")
    env.answer("Germany")
    assert env.get_reward() == pytest.approx(0.0 + 2.0 * -0.1 + 0.25)
    env.reset(example_id="tiny-2")
    env.search("Eiffel Tower")  # never answers: no outcome, no format term
    assert env.get_reward() == pytest.approx(2.0 * -0.1)
    env.reset(example_id="tiny-2")
    env.search("")  # an invalid call forfeits the format term
    env.answer("France")
    assert env.get_reward() == pytest.approx(1.0)
    assert RAGToolEnv(tiny_env()).get_reward() == 0.0  # never reset: nothing to score


def test_get_reward_records_one_stats_row_per_rollout():
    stats = RolloutStats()
    env = tool_env(stats=stats)
    env.reset(example_id="tiny-2")
    env.search("Eiffel Tower")
    env.answer("France")
    env.get_reward()
    env.get_reward()
    records = stats.drain()
    assert len(records) == 1 and stats.drain() == []
    assert records[0]["searches"] == 1 and records[0]["em"] == 1.0
    summary = RolloutStats.summarize(records)
    assert summary["env/reward"] == 1.0 and summary["env/rollouts"] == 1.0


def test_factory_shares_task_and_retriever_and_accepts_gym_ids():
    factory = RAGToolEnvFactory(
        env_kwargs={
            "task": "custom",
            "examples": tiny_examples(),
            "corpus": tiny_corpus(),
            "retriever": "fake",
        }
    )
    first, second = factory(), factory()
    assert first.rag_env is not second.rag_env
    assert first.rag_env.retriever is second.rag_env.retriever
    assert first.stats is second.stats is factory.stats
    assert [e.id for e in factory.examples] == ["tiny-1", "tiny-2", "tiny-3"]
    gym_factory = RAGToolEnvFactory(
        env_id="RAGGym/HotpotQA-v0", env_kwargs={"retriever": "fake", "select": "first:2"}
    )
    one, two = gym_factory(), gym_factory()
    assert len(gym_factory.examples) == 2
    assert one.rag_env.retriever is two.rag_env.retriever
    assert one.reset(example_id=gym_factory.examples[1].id).startswith("Question: ")


def test_config_defaults_help_and_checks():
    config = GRPOTrainConfig(model="m", output_dir="o")
    assert config.lora_r > 0 and not config.use_vllm and config.vllm_mode == "colocate"
    helps = config_help(GRPOTrainConfig)
    assert all(text.strip() for text in helps.values())
    options = GRPOTrainConfig(
        model="m", output_dir="o", retriever="remote", retriever_options=("url=http://h:1", "k=3")
    )
    assert options.retriever_option_dict() == {"url": "http://h:1", "k": 3}
    assert options.env_kwargs()["retriever_options"]["url"] == "http://h:1"
    for bad in (
        {"num_generations": 3},
        {"num_generations": 1},
        {"vllm_mode": "remote"},
        {"beta": -1},
        {"retriever_options": ("novalue",)},
        {"format_weight": math.nan},
    ):
        with pytest.raises(ValueError):
            GRPOTrainConfig(model="m", output_dir="o", **bad)


# ---------------------------------------------------------------------------------------------
# Through TRL's GRPOTrainer (tiny model, scripted generation)
# ---------------------------------------------------------------------------------------------

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")
trl = pytest.importorskip("trl")
pytest.importorskip("datasets")

from raggym.testing.tiny import build_tiny_causal_lm  # noqa: E402
from raggym.trainers.grpo import train_grpo  # noqa: E402

ANSWERS = {"tiny-1": ("Scott Derrickson", "yes"), "tiny-2": ("Eiffel Tower", "France")}


@pytest.fixture(scope="module")
def tool_lm_dir(tmp_path_factory):
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny_tool_lm"), seed=0, tool_calling=True)


@pytest.fixture
def scripted_generation(monkeypatch):
    """Replace only the model's sampling step of ``GRPOTrainer`` with a scripted policy.

    The scripted turn depends on how many tool results the sequence already holds: first a
    ``search`` call, then an ``answer`` call (right and wrong answers alternate, so a group's
    rewards differ and GRPO has a non-zero advantage), then a closing message. Everything
    else is TRL's own code: chat templating with the tool schemas, tool-call parsing, the
    tool loop calling :class:`RAGToolEnv`, tool masks, rewards, the loss and the update.
    """
    calls = itertools.count()

    def generate(self, prompt_ids, images, multimodal_fields, num_generations, **kwargs):
        tokenizer = self._tokenizer
        completions = []
        for ids in prompt_ids:
            text = tokenizer.decode(ids)
            example = "tiny-2" if "Eiffel" in text else "tiny-1"
            query, answer = ANSWERS[example]
            turn = text.count("<tool_response>")
            if turn == 0:
                call = {"name": "search", "arguments": {"query": query}}
            elif turn == 1:
                right = next(calls) % 2 == 0
                call = {"name": "answer", "arguments": {"text": answer if right else "Berlin"}}
            else:
                call = None
            body = f"<tool_call>\n{json.dumps(call)}\n</tool_call>" if call else "Done."
            completions.append(tokenizer.encode(body + "<|im_end|>", add_special_tokens=False))
        return completions, None

    monkeypatch.setattr(trl.GRPOTrainer, "_generate_single_turn", generate)


def small_config(lm_dir, out, **overrides):
    values = {
        "model": str(lm_dir),
        "output_dir": str(out),
        "task": "custom",
        "retriever": "fake",
        "k": 2,
        "env_max_steps": 4,
        "lora_r": 4,
        "lora_alpha": 8,
        "per_device_batch_size": 4,
        "gradient_accumulation_steps": 1,
        "num_generations": 2,
        "max_completion_length": 256,
        "max_steps": 2,
        "logging_steps": 1,
        "save_strategy": "no",
        "gradient_checkpointing": False,
        "learning_rate": 1e-2,
        "format_weight": 0.1,
        **overrides,
    }
    return GRPOTrainConfig(**values)


def tiny_factory(weights=None):
    return RAGToolEnvFactory(
        env_kwargs={
            "task": "custom",
            "examples": tiny_examples()[:2],
            "corpus": tiny_corpus(),
            "retriever": "fake",
            "k": 2,
            "max_steps": 4,
        },
        weights=weights,
    )


def test_two_step_grpo_run_trains_lora_and_saves_a_loadable_adapter(
    tool_lm_dir, tmp_path, scripted_generation, param_watch
):
    """A 2-step run through ``train_grpo``; generation is scripted (see the fixture)."""
    watch = param_watch
    # the factory is given, so these options are only recorded (credentials masked)
    secret = ("url=https://user:hunter2@retrieval.invalid/retrieve",)
    config = small_config(tool_lm_dir, tmp_path / "run", retriever_options=secret)
    result = train_grpo(
        config, environment_factory=tiny_factory(config.reward_weights()), callbacks=[watch]
    )

    steps = [e for e in result.log_history if "reward" in e]
    assert [e["step"] for e in steps] == [1, 2]
    for entry in steps:
        assert math.isfinite(entry["reward"])
        assert entry["env/searches"] == 1.0 and entry["env/answered"] == 1.0
        assert entry["env/tool_failures"] == 0.0 and entry["env/invalid_actions"] == 0.0
        assert 0.0 < entry["env/outcome"] < 1.0  # right and wrong answers alternate
        assert entry["env/format"] == 1.0
        assert entry["rewards/RAGToolEnv/mean"] == pytest.approx(entry["reward"])
    assert result.metrics["rollouts"] == 8 and len(result.metrics["env_log"]) == 2

    trainable = [n for n, (grad, _) in watch.before.items() if grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert any(not torch.equal(watch.before[n][1], watch.after[n][1]) for n in trainable)
    frozen = [n for n, (grad, _) in watch.before.items() if not grad]
    assert all(torch.equal(watch.before[n][1], watch.after[n][1]) for n in frozen)

    record_text = (result.adapter_dir / "raggym_train.json").read_text()
    assert "hunter2" not in record_text and "retrieval.invalid" in record_text
    record = json.loads(record_text)
    assert record["method"] == "grpo" and record["env"]["retriever"] == "fake"
    base = transformers.AutoModelForCausalLM.from_pretrained(tool_lm_dir)
    model = peft.PeftModel.from_pretrained(base, result.adapter_dir)
    loaded = dict(model.named_parameters())
    for name in trainable:
        assert torch.allclose(loaded[name].detach(), watch.after[name][1]), name
    tokenizer = transformers.AutoTokenizer.from_pretrained(result.adapter_dir)
    inputs = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Where is Paris?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    out = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert out.shape[1] > inputs["input_ids"].shape[1]


def test_tool_results_are_masked_out_of_the_loss(
    tool_lm_dir, tmp_path, scripted_generation, monkeypatch
):
    """The batch ``_compute_loss`` receives in a real GRPO step: tool-result tokens carry 0.

    Generation is scripted (see the fixture); the batch is captured by wrapping TRL's
    ``_compute_loss`` and the loss mask rebuilt as TRL builds it
    (``completion_mask * tool_mask``).
    """
    batches = []
    original = trl.GRPOTrainer._compute_loss

    def capture(self, model, inputs):
        batches.append({k: v for k, v in inputs.items() if isinstance(v, torch.Tensor)})
        return original(self, model, inputs)

    monkeypatch.setattr(trl.GRPOTrainer, "_compute_loss", capture)
    config = small_config(tool_lm_dir, tmp_path / "run", max_steps=1)
    train_grpo(config, environment_factory=tiny_factory())

    assert batches
    tokenizer = transformers.AutoTokenizer.from_pretrained(tool_lm_dir)
    documents = {d.title: d.text for d in tiny_corpus()}
    checked = 0
    for batch in batches:
        assert "tool_mask" in batch
        loss_mask = batch["completion_mask"] * batch["tool_mask"]
        for ids, mask, attention in zip(
            batch["completion_ids"], loss_mask, batch["completion_mask"], strict=True
        ):
            real = attention.bool()
            masked_text = tokenizer.decode(ids[real & ~mask.bool()])
            trained_text = tokenizer.decode(ids[mask.bool()])
            # the retrieved documents and the answer confirmation are tool results: masked
            assert "wrought-iron" in masked_text or "American director" in masked_text
            assert "Answer recorded" in masked_text
            for text in documents.values():
                assert text not in trained_text
            # what the model generated is trained on
            assert '"name": "search"' in trained_text and '"name": "answer"' in trained_text
            assert "Done." in trained_text
            assert "<tool_response>" not in trained_text
            checked += 1
    assert checked >= 4


def test_cli_help_lists_the_grpo_fields_and_needs_no_episodes(capsys):
    from raggym_env.cli import main

    with pytest.raises(SystemExit):
        main(["train", "grpo", "--help"])
    out = capsys.readouterr().out
    for flag in ("--num-generations", "--max-completion-length", "--beta", "--use-vllm"):
        assert flag in out
    for flag in ("--retriever-options", "--env-max-steps", "--format-weight", "--vllm-mode"):
        assert flag in out
    assert "--episodes" not in out


def test_cli_trains_grpo_in_the_env(tool_lm_dir, tmp_path, scripted_generation, capsys):
    """``raggym train grpo`` on the bundled HotpotQA sample; generation is scripted."""
    from raggym_env.cli import main

    flags = [
        "--model", str(tool_lm_dir), "--out", str(tmp_path / "cli"), "--task", "hotpotqa",
        "--select", "first:2", "--retriever", "fake", "--k", "2", "--env-max-steps", "4",
        "--lora-r", "4", "--lora-alpha", "8", "--batch-size", "4",
        "--gradient-accumulation-steps", "1", "--num-generations", "2",
        "--max-completion-length", "256", "--max-steps", "1", "--logging-steps", "1",
        "--save-strategy", "no", "--no-gradient-checkpointing",
    ]  # fmt: skip
    assert main(["train", "grpo", *flags]) == 0
    out = capsys.readouterr().out
    assert "raggym train grpo: 2 questions" in out and "step 1: reward" in out
    assert (tmp_path / "cli" / "final" / "adapter_config.json").is_file()


def test_an_old_trl_is_refused_with_the_extra_named(monkeypatch, tmp_path):
    import importlib.metadata

    from raggym_env.availability import MissingDependencyError

    real = importlib.metadata.version
    monkeypatch.setattr(
        importlib.metadata, "version", lambda name: "1.15.0" if name == "trl" else real(name)
    )
    with pytest.raises(MissingDependencyError, match=r"raggym\[grpo\]"):
        train_grpo(GRPOTrainConfig(model="m", output_dir=str(tmp_path)))
