import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from raggym.testing.tiny import (  # noqa: E402
    SPECIAL_TOKENS,
    build_tiny_causal_lm,
    build_tiny_classifier,
    build_tiny_tokenizer,
)


@pytest.fixture(scope="module")
def tokenizer():
    return build_tiny_tokenizer()


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory):
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny_lm"))


def test_tokenizer_has_special_tokens_and_left_padding(tokenizer):
    assert tokenizer.pad_token == "<pad>" and tokenizer.pad_token_id == 0
    assert tokenizer.eos_token == "</s>" and tokenizer.bos_token == "<s>"
    assert tokenizer.unk_token == "<unk>"
    assert set(SPECIAL_TOKENS) <= set(tokenizer.all_special_tokens)
    assert tokenizer.padding_side == "left"
    batch = tokenizer(["a", "a much longer text"], padding=True)
    assert batch["input_ids"][0][0] == tokenizer.pad_token_id
    assert batch["attention_mask"][0][0] == 0 and batch["attention_mask"][0][-1] == 1


def test_tokenizer_round_trips_any_text(tokenizer):
    text = "Who directed Doctor Strange? Ünïcødé, 1986 — ok!"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.unk_token_id not in ids
    assert tokenizer.decode(ids) == text


def test_chat_template_renders_roles_and_generation_prompt(tokenizer):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == "<s><|system|>\nBe brief.</s>\n<|user|>\nHi?</s>\n<|assistant|>\n"
    without = tokenizer.apply_chat_template(messages, tokenize=False)
    assert not without.endswith("<|assistant|>\n")
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=False)
    assert ids[0] == tokenizer.bos_token_id
    assert tokenizer.convert_tokens_to_ids("<|assistant|>") in ids


def test_tokenizer_is_deterministic_and_respects_vocab_size(tokenizer):
    again = build_tiny_tokenizer()
    assert again.get_vocab() == tokenizer.get_vocab()
    assert len(tokenizer) <= 512
    small = build_tiny_tokenizer(vocab_size=320)
    assert len(small) <= 320 < len(tokenizer)


def test_extra_texts_are_learned(tokenizer):
    word = " zorblax quintessa"
    trained = build_tiny_tokenizer([word * 20])
    assert len(trained(word)["input_ids"]) < len(tokenizer(word)["input_ids"])


@pytest.mark.parametrize("bad", [0, 100, 299, "512", True])
def test_vocab_size_is_validated(bad):
    with pytest.raises(ValueError, match="vocab_size"):
        build_tiny_tokenizer(vocab_size=bad)


def test_texts_must_not_be_a_single_string():
    with pytest.raises(ValueError, match="iterable of strings"):
        build_tiny_tokenizer("one string")


def test_causal_lm_round_trips_and_is_llama(lm_dir):
    assert {"config.json", "tokenizer.json", "model.safetensors"} <= {
        p.name for p in lm_dir.iterdir()
    }
    model = transformers.AutoModelForCausalLM.from_pretrained(lm_dir)
    tok = transformers.AutoTokenizer.from_pretrained(lm_dir)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert model.config.num_hidden_layers == 2 and model.config.hidden_size == 32
    assert model.config.vocab_size == len(tok)
    assert model.config.pad_token_id == tok.pad_token_id == 0
    assert model.config.eos_token_id == tok.eos_token_id
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    assert {"q_proj", "k_proj", "v_proj", "o_proj"} <= names
    assert tok.chat_template and tok.padding_side == "left"
    with torch.no_grad():
        logits = model(**tok(["Question: who?"], return_tensors="pt")).logits
    assert logits.shape[-1] == len(tok) and torch.isfinite(logits).all()


def test_weights_depend_only_on_the_seed(tmp_path):
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = build_tiny_causal_lm(tmp_path / "a", seed=1)
    assert torch.equal(torch.rand(1), before)  # the global RNG was not consumed
    b = build_tiny_causal_lm(tmp_path / "b", seed=1)
    c = build_tiny_causal_lm(tmp_path / "c", seed=2)
    load = transformers.AutoModelForCausalLM.from_pretrained
    sa, sb, sc = (load(p).state_dict() for p in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_default_models_are_small_enough_to_build_in_every_test(tmp_path):
    """Size, not a timer, keeps fixtures cheap: 37k parameters, about 0.2 MB on disk each.

    (Build time on a busy CI machine varies threefold; the size does not.)
    """
    lm = build_tiny_causal_lm(tmp_path / "lm")
    cls = build_tiny_classifier(tmp_path / "cls")
    for path, auto in ((lm, transformers.AutoModelForCausalLM),
                       (cls, transformers.AutoModelForSequenceClassification)):  # fmt: skip
        model = auto.from_pretrained(path)
        assert sum(p.numel() for p in model.parameters()) < 100_000
        assert sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) < 1_000_000


def test_sizes_are_configurable_and_validated(tmp_path):
    path = build_tiny_causal_lm(tmp_path / "big", hidden_size=64, num_layers=3, num_heads=4)
    config = transformers.AutoConfig.from_pretrained(path)
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (64, 3, 4)
    with pytest.raises(ValueError, match="heads"):
        build_tiny_causal_lm(tmp_path / "bad", hidden_size=30, num_heads=4)
    with pytest.raises(ValueError, match="num_layers"):
        build_tiny_causal_lm(tmp_path / "bad", num_layers=0)


@pytest.mark.parametrize("num_labels", [1, 2])
def test_classifier_scores_padded_batches(tmp_path, num_labels):
    path = build_tiny_classifier(tmp_path / "cls", num_labels=num_labels)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(path)
    tok = transformers.AutoTokenizer.from_pretrained(path)
    assert type(model).__name__ == "LlamaForSequenceClassification"
    assert model.config.num_labels == num_labels
    assert model.config.pad_token_id == tok.pad_token_id
    texts = ["short", "a considerably longer text to force padding"]
    with torch.no_grad():
        batch = model(**tok(texts, padding=True, return_tensors="pt")).logits
        longest = model(**tok(texts[1:], return_tensors="pt")).logits
    assert batch.shape == (2, num_labels) and torch.isfinite(batch).all()
    assert torch.allclose(batch[1], longest[0], atol=1e-5)


def test_classifier_rejects_bad_num_labels(tmp_path):
    with pytest.raises(ValueError, match="num_labels"):
        build_tiny_classifier(tmp_path / "x", num_labels=0)


def test_tool_calling_tokenizer_uses_a_template_trl_parses(tmp_path):
    """``tool_calling=True``: TRL's Qwen3 template, its tokens, ``<|im_end|>`` as eos."""
    pytest.importorskip("transformers")
    utils = pytest.importorskip("trl.chat_template_utils")
    from raggym.testing.tiny import TOOL_CALLING_TOKENS, build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer(tool_calling=True)
    assert tokenizer.chat_template == utils.qwen3_chat_template
    assert tokenizer.eos_token == "<|im_end|>"
    assert utils.supports_tool_calling(tokenizer)
    for token in TOOL_CALLING_TOKENS:
        assert tokenizer.convert_tokens_to_ids(token) != tokenizer.unk_token_id
        assert len(tokenizer.encode(token, add_special_tokens=False)) == 1
