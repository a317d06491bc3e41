import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import sys

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")

from raggym.agents.llm.base import LLM, SamplingParams  # noqa: E402
from raggym.agents.llm.hf import (  # noqa: E402
    TRAIN_RECORD,
    TransformersLLM,
    render_conversation,
    resolve_adapter_dir,
)
from raggym.testing.tiny import build_tiny_causal_lm  # noqa: E402
from raggym_env.availability import MissingDependencyError  # noqa: E402

# peft calls a transformers API that v5 deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")

CONVERSATIONS = [
    [{"role": "user", "content": "Who directed Doctor Strange?"}],
    [
        {"role": "system", "content": "You answer questions by searching."},
        {"role": "user", "content": "Question: Were Scott Derrickson and Ed Wood American?"},
    ],
    [{"role": "user", "content": "Hi"}],
]
GREEDY = SamplingParams(n=1, temperature=0.0, max_tokens=16)


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory):
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny_lm"), seed=0)


@pytest.fixture(scope="module")
def llm(lm_dir):
    return TransformersLLM(lm_dir, batch_size=2)


@pytest.fixture(scope="module")
def adapter_dir(lm_dir, tmp_path_factory):
    model = transformers.AutoModelForCausalLM.from_pretrained(lm_dir)
    config = peft.LoraConfig(
        r=4,
        lora_alpha=8,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
        task_type="CAUSAL_LM",
    )
    lora = peft.get_peft_model(model, config)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in lora.named_parameters():
            if "lora_B" in name:  # zero at init: perturb so the adapter changes outputs
                param.copy_(torch.randn(param.shape, generator=generator))
    out = tmp_path_factory.mktemp("adapter") / "my_adapter"
    lora.save_pretrained(out)
    return out


def prompt_length(tokenizer, conversation):
    text = tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def test_implements_the_protocol(llm, lm_dir):
    assert isinstance(llm, LLM)
    assert llm.name == str(lm_dir)
    assert llm.device.type == "cpu"
    assert llm.generate([], GREEDY) == []


def test_batch_of_three_with_two_samples_each(llm):
    params = SamplingParams(n=2, temperature=1.0, max_tokens=10, seed=7)
    completions = llm.generate(CONVERSATIONS, params)
    assert len(completions) == 3
    for conversation, completion in zip(CONVERSATIONS, completions, strict=True):
        assert completion.ok and completion.error is None
        assert len(completion.texts) == 2 and all(isinstance(t, str) for t in completion.texts)
        assert len(completion.finish_reasons) == 2
        assert set(completion.finish_reasons) <= {"stop", "length"}
        assert completion.prompt_tokens == prompt_length(llm.tokenizer, conversation)
        assert 2 <= completion.completion_tokens <= 2 * params.max_tokens
        assert completion.latency_s > 0
    # Different prompts have different (real) prompt lengths.
    assert len({c.prompt_tokens for c in completions}) == 3


def test_token_counts_are_real_for_length_limited_greedy(llm):
    params = SamplingParams(n=3, temperature=0.0, max_tokens=6)
    completions = llm.generate(CONVERSATIONS, params)
    for completion in completions:
        assert len(set(completion.texts)) == 1  # greedy samples are identical
        assert completion.completion_tokens % 3 == 0  # counted for each of the n texts
        per_text = completion.completion_tokens // 3
        if completion.finish_reasons[0] == "length":
            assert per_text == 6
        else:
            assert 1 <= per_text <= 6
    assert "length" in {c.finish_reasons[0] for c in completions}


def test_same_seed_same_texts_other_seed_other_texts(llm):
    def sample(seed):
        params = SamplingParams(n=2, temperature=1.0, top_p=0.95, max_tokens=12, seed=seed)
        return [c.texts for c in llm.generate(CONVERSATIONS, params)]

    torch.manual_seed(0)
    first = sample(11)
    state = torch.random.get_rng_state()
    assert sample(11) == first
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is untouched
    assert sample(12) != first
    assert first[0][0] != first[0][1]  # the n samples of one prompt differ


def test_greedy_is_deterministic_and_independent_of_batching(llm):
    batched = llm.generate(CONVERSATIONS, GREEDY)
    again = llm.generate(CONVERSATIONS, GREEDY)
    assert [c.texts for c in batched] == [c.texts for c in again]
    alone = [llm.generate([c], GREEDY)[0] for c in CONVERSATIONS]
    assert [c.texts for c in alone] == [c.texts for c in batched]
    assert [c.prompt_tokens for c in alone] == [c.prompt_tokens for c in batched]


def pick_stop(text):
    for i in range(1, len(text) - 2):
        candidate = text[i : i + 2]
        if candidate.isascii() and candidate.isalpha() and text.find(candidate) == i:
            return i, candidate
    raise AssertionError(f"no usable stop string in {text!r}")


def test_stop_strings_cut_the_text_and_end_generation_early(llm):
    params = SamplingParams(n=1, temperature=0.0, max_tokens=24)
    full = llm.generate(CONVERSATIONS[:1], params)[0]
    position, stop = pick_stop(full.texts[0])
    cut = llm.generate(CONVERSATIONS[:1], SamplingParams(n=1, max_tokens=24, stop=(stop,)))[0]
    assert cut.texts[0] == full.texts[0][:position]
    assert stop not in cut.texts[0]
    assert cut.finish_reasons == ("stop",)
    assert cut.completion_tokens < full.completion_tokens


def test_plain_transcript_when_the_tokenizer_has_no_chat_template(lm_dir):
    tokenizer = transformers.AutoTokenizer.from_pretrained(lm_dir)
    tokenizer.chat_template = None
    text, add_special = render_conversation(CONVERSATIONS[1], tokenizer)
    assert text == (
        "system: You answer questions by searching.\n"
        "user: Question: Were Scott Derrickson and Ed Wood American?\n"
        "assistant:"
    )
    assert add_special is True
    model = transformers.AutoModelForCausalLM.from_pretrained(lm_dir)
    llm = TransformersLLM(model, tokenizer, name="plain")
    completion = llm.generate(CONVERSATIONS[1:2], GREEDY)[0]
    assert completion.ok and llm.name == "plain"
    assert completion.prompt_tokens == len(tokenizer(text)["input_ids"])


def test_loaded_model_uses_its_own_tokenizer_and_device(lm_dir, llm):
    model = transformers.AutoModelForCausalLM.from_pretrained(lm_dir)
    loaded = TransformersLLM(model)
    assert loaded.model is model and loaded.name == str(lm_dir)
    assert [c.texts for c in loaded.generate(CONVERSATIONS, GREEDY)] == [
        c.texts for c in llm.generate(CONVERSATIONS, GREEDY)
    ]


def test_dtype_is_applied(lm_dir):
    llm = TransformersLLM(lm_dir, dtype="bfloat16")
    assert next(llm.model.parameters()).dtype == torch.bfloat16
    assert llm.generate(CONVERSATIONS[:1], GREEDY)[0].ok
    with pytest.raises(ValueError, match="dtype"):
        TransformersLLM(lm_dir, dtype="float99")


def test_lora_adapter_is_loaded_and_changes_outputs(lm_dir, adapter_dir, llm):
    tuned = TransformersLLM(lm_dir, adapter=adapter_dir)
    assert isinstance(tuned.model, peft.PeftModel)
    assert tuned.name == f"{lm_dir}+my_adapter"
    base_texts = [c.texts for c in llm.generate(CONVERSATIONS, GREEDY)]
    tuned_texts = [c.texts for c in tuned.generate(CONVERSATIONS, GREEDY)]
    assert tuned_texts != base_texts
    assert [c.texts for c in tuned.generate(CONVERSATIONS, GREEDY)] == tuned_texts


def copy_adapter(adapter_dir, dest, *, record=None, base_in_config="keep", tokenizer_from=None):
    """A copy of the adapter directory, with an optional training record and tokenizer."""
    import json
    import shutil

    shutil.copytree(adapter_dir, dest)
    config_file = dest / "adapter_config.json"
    config = json.loads(config_file.read_text())
    if base_in_config != "keep":
        config["base_model_name_or_path"] = base_in_config
    config_file.write_text(json.dumps(config))
    if record is not None:
        (dest / TRAIN_RECORD).write_text(json.dumps(record))
    if tokenizer_from is not None:
        transformers.AutoTokenizer.from_pretrained(tokenizer_from).save_pretrained(dest)
    return dest


def test_a_trained_adapter_directory_loads_by_its_path(lm_dir, adapter_dir, tmp_path):
    run = tmp_path / "sft-run" / "final"
    copy_adapter(
        adapter_dir,
        run,
        record={"method": "sft", "base_model": str(lm_dir)},
        base_in_config="somewhere/else",  # the record wins over adapter_config.json
        tokenizer_from=lm_dir,
    )
    resolved = resolve_adapter_dir(run)
    assert resolved.base_model == str(lm_dir) and resolved.has_tokenizer
    auto = TransformersLLM(run)
    explicit = TransformersLLM(lm_dir, adapter=adapter_dir)
    assert isinstance(auto.model, peft.PeftModel)
    assert auto.name == f"{lm_dir}+sft-run/final"
    assert [c.texts for c in auto.generate(CONVERSATIONS, GREEDY)] == [
        c.texts for c in explicit.generate(CONVERSATIONS, GREEDY)
    ]


def test_an_adapter_without_record_uses_adapter_config_base(lm_dir, adapter_dir, tmp_path):
    bare = copy_adapter(adapter_dir, tmp_path / "bare", base_in_config=str(lm_dir))
    resolved = resolve_adapter_dir(bare)
    assert resolved.base_model == str(lm_dir) and not resolved.has_tokenizer
    assert resolved.record == {}
    llm = TransformersLLM(bare)  # tokenizer from the base, since the adapter has none
    assert isinstance(llm.model, peft.PeftModel) and llm.tokenizer.chat_template
    assert resolve_adapter_dir(lm_dir) is None  # a full model directory is not an adapter
    assert resolve_adapter_dir("org/hub-name") is None


def test_adapter_directory_errors(lm_dir, adapter_dir, tmp_path):
    nameless = copy_adapter(adapter_dir, tmp_path / "nameless", base_in_config=None)
    with pytest.raises(ValueError, match="base model"):
        TransformersLLM(nameless)
    run = copy_adapter(adapter_dir, tmp_path / "run", record={"base_model": str(lm_dir)})
    with pytest.raises(ValueError, match="already a trained adapter"):
        TransformersLLM(run, adapter=adapter_dir)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "adapter_config.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        resolve_adapter_dir(tmp_path / "broken")


def test_runtime_error_is_recorded_for_its_batch_only(llm, monkeypatch):
    original = llm.model.generate
    calls = []

    def flaky_generate(*args, **kwargs):
        calls.append(kwargs["input_ids"].shape[0])
        if len(calls) == 1:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(*args, **kwargs)

    monkeypatch.setattr(llm.model, "generate", flaky_generate)
    completions = llm.generate(CONVERSATIONS, GREEDY)
    assert calls == [2, 1]  # batch_size=2: two batches
    for failed in completions[:2]:
        assert not failed.ok and failed.texts == ()
        assert failed.error == "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB"
    assert completions[2].ok and completions[2].error is None


def test_misconfiguration_raises(lm_dir, llm, tmp_path):
    with pytest.raises(ValueError, match="batch_size"):
        TransformersLLM(lm_dir, batch_size=0)
    with pytest.raises(FileNotFoundError, match="adapter"):
        TransformersLLM(lm_dir, adapter=tmp_path / "missing")
    with pytest.raises(ValueError, match="model must be"):
        TransformersLLM(42)
    with pytest.raises(TypeError, match="SamplingParams"):
        llm.generate(CONVERSATIONS, {"n": 1})
    with pytest.raises(ValueError, match="role"):
        llm.generate([[{"role": "robot", "content": "x"}]], GREEDY)


def test_missing_transformers_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'raggym\[hf\]'"):
        TransformersLLM("anything")
