import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import math
import sys

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")

from raggym.agents.critics.base import Critic, CriticItem, critic_input  # noqa: E402
from raggym.agents.critics.reward_model import RewardModelCritic  # noqa: E402
from raggym.testing.tiny import build_tiny_classifier  # noqa: E402
from raggym_env import Answer, Search  # noqa: E402
from raggym_env.availability import MissingDependencyError  # noqa: E402

# peft calls a transformers API that v5 deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")


def observation(question="Were Scott Derrickson and Ed Wood of the same nationality?", steps=0):
    history = tuple(
        {
            "query": f"query number {i}",
            "documents": (
                {"id": f"d{i}", "title": f"Title {i}", "text": f"Document {i} says things. " * 8},
            ),
        }
        for i in range(steps)
    )
    return {"question": question, "options": (), "history": history, "steps_remaining": 5}


def item(text, action, obs=None):
    return CriticItem(obs if obs is not None else observation(), text, action)


GROUPS = [
    [
        item("Search: Scott Derrickson", Search("Scott Derrickson")),
        item("Answer: yes", Answer("yes")),
        item("gibberish", None),
    ],
    [item("Search: Ed Wood", Search("Ed Wood"), observation(steps=1))],
    [
        item("Answer: no", Answer("no"), observation(steps=2)),
        item("Search: Ed Wood nationality", Search("Ed Wood nationality"), observation(steps=2)),
    ],
]


@pytest.fixture(scope="module")
def scalar_dir(tmp_path_factory):
    return build_tiny_classifier(tmp_path_factory.mktemp("rm1"), num_labels=1, seed=0)


@pytest.fixture(scope="module")
def pair_dir(tmp_path_factory):
    return build_tiny_classifier(tmp_path_factory.mktemp("rm2"), num_labels=2, seed=1)


@pytest.fixture(scope="module")
def critic(scalar_dir):
    return RewardModelCritic(scalar_dir)


@pytest.fixture(scope="module")
def adapter_dir(scalar_dir, tmp_path_factory):
    model = transformers.AutoModelForSequenceClassification.from_pretrained(scalar_dir)
    config = peft.LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="SEQ_CLS"
    )
    lora = peft.get_peft_model(model, config)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in lora.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator))
    out = tmp_path_factory.mktemp("rm_adapter") / "adapter"
    lora.save_pretrained(out)
    return out


def flat_scores(result):
    return [s.score for group in result for s in group]


def test_scores_every_candidate_with_finite_deterministic_values(critic):
    assert isinstance(critic, Critic) and critic.name == "reward_model"
    result = critic.score(GROUPS)
    assert [len(g) for g in result] == [3, 1, 2]
    scores = flat_scores(result)
    assert all(isinstance(s, float) and math.isfinite(s) for s in scores)
    assert all(s.error is None and s.output is None for g in result for s in g)
    assert len(set(scores)) == len(scores)  # different inputs, different scores
    assert flat_scores(critic.score(GROUPS)) == scores
    assert critic.score([]) == [] and critic.score([[]]) == [[]]


def test_score_is_the_models_logit_on_critic_input(critic, scalar_dir):
    model = transformers.AutoModelForSequenceClassification.from_pretrained(scalar_dir)
    tokenizer = transformers.AutoTokenizer.from_pretrained(scalar_dir)
    candidate = GROUPS[0][0]
    text = critic_input(candidate.observation, candidate.action, candidate.text)
    with torch.no_grad():
        logit = model(**tokenizer(text, return_tensors="pt")).logits[0, 0].item()
    assert critic.score([[candidate]])[0][0].score == pytest.approx(logit, abs=1e-5)


def test_batched_equals_one_by_one(scalar_dir, critic):
    batched = flat_scores(critic.score(GROUPS))
    single = RewardModelCritic(scalar_dir, batch_size=1)
    one_by_one = [single.score([[c]])[0][0].score for g in GROUPS for c in g]
    assert batched == pytest.approx(one_by_one, abs=1e-5)


def test_two_labels_score_the_logit_difference(pair_dir):
    critic = RewardModelCritic(pair_dir, name="rm2")
    verdicts = critic.score(GROUPS)
    for verdict in (s for g in verdicts for s in g):
        low, high = (float(x) for x in verdict.output.strip("[]").split(","))
        assert verdict.score == pytest.approx(high - low)
    assert critic.name == "rm2"


def test_a_trained_critic_directory_loads_by_its_path(scalar_dir, adapter_dir, tmp_path):
    import json
    import shutil

    run = tmp_path / "critic-run" / "final"
    shutil.copytree(adapter_dir, run)
    transformers.AutoTokenizer.from_pretrained(scalar_dir).save_pretrained(run)
    record = {"method": "critic", "base_model": str(scalar_dir), "num_labels": 1, "max_length": 48}
    (run / "raggym_train.json").write_text(json.dumps(record))
    auto = RewardModelCritic(run)
    explicit = RewardModelCritic(scalar_dir, adapter=adapter_dir, max_length=48)
    assert isinstance(auto.model, peft.PeftModel)
    assert auto.max_length == 48  # the recorded training length
    assert RewardModelCritic(run, max_length=64).max_length == 64  # unless given
    assert flat_scores(auto.score(GROUPS)) == pytest.approx(flat_scores(explicit.score(GROUPS)))
    with pytest.raises(ValueError, match="already a trained adapter"):
        RewardModelCritic(run, adapter=adapter_dir)


def test_default_max_length_without_a_record(scalar_dir, critic):
    assert critic.max_length == 1024


def test_lora_adapter_changes_scores(scalar_dir, adapter_dir, critic):
    tuned = RewardModelCritic(scalar_dir, adapter=adapter_dir)
    assert isinstance(tuned.model, peft.PeftModel)
    base, changed = flat_scores(critic.score(GROUPS)), flat_scores(tuned.score(GROUPS))
    assert all(math.isfinite(s) for s in changed)
    assert all(abs(a - b) > 1e-4 for a, b in zip(base, changed, strict=True))


def test_long_states_keep_the_question_start_and_the_whole_action(scalar_dir):
    critic = RewardModelCritic(scalar_dir, max_length=64)
    obs = observation(steps=6)
    action = Search("Ed Wood nationality")
    text = critic_input(obs, action)
    assert len(critic.tokenizer(text)["input_ids"]) > 64
    ids = critic.encode(text)
    assert len(ids) == 64
    decoded = critic.tokenizer.decode(ids)
    assert decoded.startswith("Question: Were")
    assert decoded.endswith("\n\nNext action: Search: Ed Wood nationality")
    assert "Document 5 says" in decoded  # the most recent history is kept
    assert "Title 0" not in decoded  # the oldest is dropped
    short = critic_input(observation(), action)
    assert critic.encode(short) == critic.tokenizer(short)["input_ids"]  # fits: untouched
    other = critic.score([[item("x", action, obs), item("y", Search("Scott Derrickson"), obs)]])
    assert other[0][0].score != other[0][1].score  # the differing actions were both seen


def test_an_action_longer_than_max_length_is_an_error_not_a_score(scalar_dir):
    critic = RewardModelCritic(scalar_dir, max_length=16)
    long_answer = Answer("a very long answer that keeps going " * 5)
    result = critic.score([[item("Answer", long_answer), item("ok", Answer("yes"))]])
    assert result[0][0].score is None and "max_length=16" in result[0][0].error
    assert math.isfinite(result[0][1].score)


def test_misconfiguration_raises(scalar_dir, tmp_path):
    with pytest.raises(ValueError, match="batch_size"):
        RewardModelCritic(scalar_dir, batch_size=0)
    with pytest.raises(ValueError, match="max_length"):
        RewardModelCritic(scalar_dir, max_length=2)
    with pytest.raises(FileNotFoundError, match="adapter"):
        RewardModelCritic(scalar_dir, adapter=tmp_path / "missing")
    three = build_tiny_classifier(tmp_path / "three", num_labels=3)
    with pytest.raises(ValueError, match="3 labels"):
        RewardModelCritic(three)


def test_missing_transformers_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'raggym\[hf\]'"):
        RewardModelCritic("anything")
