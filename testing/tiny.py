"""Tiny, randomly initialised models built offline in seconds, for tests and examples.

Nothing here downloads anything: the tokenizer is a byte-level BPE trained with the
``tokenizers`` library on a short built-in English text (plus any ``texts`` given), and the
models are 2-layer Llama-style networks created from a config with seeded random weights.
They generate gibberish but exercise every real code path: chat templates, padding,
batched generation, LoRA adapters (``q_proj``/``k_proj``/``v_proj``/``o_proj`` exist),
sequence-classification heads and ``save_pretrained``/``from_pretrained`` round trips.

Everything is deterministic for a given seed and text. transformers and tokenizers are
imported lazily (``pip install 'raggym[hf]'``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raggym_env.availability import require

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

__all__ = [
    "CHAT_TEMPLATE",
    "SPECIAL_TOKENS",
    "TOOL_CALLING_TOKENS",
    "build_tiny_causal_lm",
    "build_tiny_classifier",
    "build_tiny_tokenizer",
]

_FEATURE = "raggym.testing.tiny"

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
_ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")
SPECIAL_TOKENS: tuple[str, ...] = (PAD, BOS, EOS, UNK, *_ROLE_TOKENS)
"""Special tokens of the tiny tokenizer; ids follow this order (``<pad>`` is 0)."""

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>' }}\n{{ message['content'] }}{{ eos_token }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}\n{% endif %}"
)
"""A minimal Jinja chat template: ``<|role|>`` header, content, ``</s>`` per message."""

TOOL_CALLING_TOKENS: tuple[str, ...] = (
    "<|im_start|>",
    "<|im_end|>",
    "<tool_call>",
    "</tool_call>",
    "<tool_response>",
    "</tool_response>",
    "<think>",
    "</think>",
)
"""Special tokens a tool-calling tiny tokenizer adds for its Qwen3-style chat template."""

_MIN_VOCAB = 300  # 256 byte symbols + the special tokens + some merges

_BUILTIN_TEXT = """\
Question: Were Scott Derrickson and Ed Wood of the same nationality?
Search: Scott Derrickson nationality
Scott Derrickson is an American director, screenwriter and producer.
Search: Ed Wood nationality
Ed Wood was an American filmmaker, actor, writer, producer and director.
Answer: yes
Question: Which planet did Voyager 2 approach in 1986, and what rocket launched it?
Search: Voyager 2 Uranus flyby
Voyager 2 approached Uranus in January 1986; it had launched on a Titan IIIE rocket.
Answer: Uranus
Question: What is the capital of the country where the Eiffel Tower stands?
Search: Eiffel Tower location
The Eiffel Tower is a wrought-iron lattice tower in Paris, the capital of France.
Answer: Paris
Question: Who wrote the novel that the film The Shining was based on?
Search: The Shining film novel author
The Shining is a 1980 horror film based on the 1977 novel by Stephen King.
Answer: Stephen King
Question: Which river flows through the city where Mozart was born?
Search: Mozart birthplace
Wolfgang Amadeus Mozart was born in Salzburg, a city on the Salzach river in Austria.
Answer: the Salzach
Question: A 45-year-old man presents with chest pain. Which test should be ordered first?
A. Electrocardiogram
B. Chest radiograph
C. Serum troponin after six hours
D. Exercise stress test
Answer: A
You answer questions by searching a document collection one query at a time. Think about
what is still missing, search for it, read the documents, and answer when you are sure.
The answer should be a short phrase taken from the documents, such as a name, a date,
a number or a place. When the question offers lettered options, answer with the letter.
Rank the candidate actions from best to worst. Ranking: 2 > 1 > 3
The quick brown fox jumps over the lazy dog. Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 1000.
January February March April May June July August September October November December.
Monday Tuesday Wednesday Thursday Friday Saturday Sunday; spring, summer, autumn, winter.
"""


def build_tiny_tokenizer(
    texts: Iterable[str] | None = None, vocab_size: int = 512, *, tool_calling: bool = False
) -> PreTrainedTokenizerFast:
    """Train a small byte-level BPE tokenizer so tests get a real tokenizer without downloads.

    The tokenizer encodes any text (byte-level, so nothing is ever ``<unk>``), pads on the
    left (what batched generation needs), has ``<pad>``/``<s>``/``</s>``/``<unk>`` plus
    ``<|system|>``/``<|user|>``/``<|assistant|>`` special tokens and a chat template
    (:data:`CHAT_TEMPLATE`), so ``apply_chat_template`` works. Tokenizing plain text adds no
    special tokens; the chat template writes ``<s>`` itself.

    Args:
        texts: extra training text (e.g. a dataset's questions) added to the built-in text.
        vocab_size: the target vocabulary size, special tokens included. It is an upper
            bound: a small text may yield fewer merges; use ``len(tokenizer)`` for the
            actual size.
        tool_calling: use TRL's bundled Qwen3 chat template instead (it renders tool
            schemas, tool calls and tool results, and TRL knows how to parse its tool
            calls), add its :data:`TOOL_CALLING_TOKENS` and end turns with ``<|im_end|>``
            (the eos token). Needs ``trl`` (``pip install 'raggym[train]'``).

    Returns:
        A ``PreTrainedTokenizerFast`` (identical for identical arguments).

    Raises:
        ValueError: ``vocab_size`` is too small for the byte alphabet and special tokens.
        MissingDependencyError: transformers or tokenizers is not installed (an
            ``ImportError`` naming the extra).
    """
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < _MIN_VOCAB:
        raise ValueError(f"vocab_size must be an int >= {_MIN_VOCAB}, got {vocab_size!r}")
    if isinstance(texts, str):
        raise ValueError("texts must be an iterable of strings, not a single string")
    transformers = require("transformers", feature=_FEATURE)
    require("tokenizers", feature=_FEATURE)
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    corpus = _BUILTIN_TEXT.splitlines() + [str(t) for t in (texts or ())]
    backend = Tokenizer(models.BPE(unk_token=UNK))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(corpus, trainer=trainer)
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        additional_special_tokens=list(_ROLE_TOKENS),
        padding_side="left",
        model_max_length=4096,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    if tool_calling:
        templates = require("trl.chat_template_utils", feature=_FEATURE, extra="train")
        tokenizer.add_tokens(list(TOOL_CALLING_TOKENS), special_tokens=True)
        tokenizer.eos_token = "<|im_end|>"
        tokenizer.chat_template = templates.qwen3_chat_template
    return tokenizer


def _llama_config(
    tokenizer: PreTrainedTokenizerFast,
    *,
    hidden_size: int,
    num_layers: int,
    num_heads: int,
    **extra: Any,
) -> Any:
    for label, value in (
        ("hidden_size", hidden_size),
        ("num_layers", num_layers),
        ("num_heads", num_heads),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{label} must be a positive int, got {value!r}")
    if hidden_size % num_heads or (hidden_size // num_heads) % 2:
        raise ValueError(
            f"hidden_size ({hidden_size}) must split into num_heads ({num_heads}) heads of "
            "even size (rotary embeddings need an even head dimension)"
        )
    transformers = require("transformers", feature=_FEATURE)
    return transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=4096,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
        **extra,
    )


def _save(model: Any, tokenizer: PreTrainedTokenizerFast, path: str | Path) -> Path:
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def _seeded_model(factory: Any, config: Any, seed: int) -> Any:
    torch = require("torch", feature=_FEATURE)

    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got {seed!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = factory(config)
    return model.eval()


def build_tiny_causal_lm(
    path: str | Path,
    *,
    vocab_size: int = 512,
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 2,
    seed: int = 0,
    texts: Iterable[str] | None = None,
    tool_calling: bool = False,
) -> Path:
    """Save a tiny random Llama causal LM and its tokenizer to ``path`` for offline tests.

    The model uses ``LlamaConfig`` (so LoRA can target ``q_proj``/``k_proj``/``v_proj``/
    ``o_proj``), its embedding matches the tokenizer's actual size, and its weights depend
    only on ``seed`` (the global torch RNG is left untouched). Load it back with
    ``AutoModelForCausalLM.from_pretrained(path)`` / ``AutoTokenizer.from_pretrained(path)``
    or :class:`raggym.agents.llm.hf.TransformersLLM`.

    Args:
        path: the directory to write (created if missing).
        vocab_size: tokenizer target size (see :func:`build_tiny_tokenizer`).
        hidden_size: model width.
        num_layers: transformer layers.
        num_heads: attention heads (``hidden_size / num_heads`` must be even).
        seed: weight-initialisation seed.
        texts: extra tokenizer training text.
        tool_calling: a tokenizer whose chat template TRL's tool-calling trainers know
            (see :func:`build_tiny_tokenizer`).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    tokenizer = build_tiny_tokenizer(texts, vocab_size=vocab_size, tool_calling=tool_calling)
    config = _llama_config(
        tokenizer, hidden_size=hidden_size, num_layers=num_layers, num_heads=num_heads
    )
    transformers = require("transformers", feature=_FEATURE)
    model = _seeded_model(transformers.LlamaForCausalLM, config, seed)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return _save(model, tokenizer, path)


def build_tiny_classifier(
    path: str | Path,
    *,
    num_labels: int = 1,
    vocab_size: int = 512,
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 2,
    seed: int = 0,
    texts: Iterable[str] | None = None,
) -> Path:
    """Save a tiny random Llama sequence classifier (a reward model stand-in) to ``path``.

    ``LlamaForSequenceClassification`` with ``pad_token_id`` set, so batches of padded
    inputs score from each text's last real token. ``num_labels=1`` gives a scalar reward
    head. Arguments otherwise as in :func:`build_tiny_causal_lm`.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    if isinstance(num_labels, bool) or not isinstance(num_labels, int) or num_labels < 1:
        raise ValueError(f"num_labels must be a positive int, got {num_labels!r}")
    tokenizer = build_tiny_tokenizer(texts, vocab_size=vocab_size)
    config = _llama_config(
        tokenizer,
        hidden_size=hidden_size,
        num_layers=num_layers,
        num_heads=num_heads,
        num_labels=num_labels,
    )
    transformers = require("transformers", feature=_FEATURE)
    model = _seeded_model(transformers.LlamaForSequenceClassification, config, seed)
    return _save(model, tokenizer, path)
