"""A reward-model critic: a sequence classifier scores ``critic_input(state, action)``.

:class:`RewardModelCritic` loads any ``AutoModelForSequenceClassification`` checkpoint (the
tiny one of :func:`raggym.testing.tiny.build_tiny_classifier`, or one trained on critic data),
optionally with a PEFT LoRA adapter, and scores each candidate's
:func:`~raggym.agents.critics.base.critic_input` text, the same string critic training data is
built from. The score is the single logit of a one-label head, or ``logit[1] - logit[0]``
(the log-odds of "good") of a two-label head.

A trained critic loads by its path alone: when ``path`` is a PEFT adapter directory (the
``OUT/final`` folder of :func:`raggym.trainers.critic.train_critic`), the base model named in its
``raggym_train.json`` (or ``adapter_config.json``) is loaded as a sequence classifier with
the recorded number of labels and the adapter (LoRA plus the trained score head) applied on
top; the recorded ``max_length`` is the default truncation length.

Long inputs: the action is never cut. When the text is longer than ``max_length`` tokens
the critic keeps the start of the state (the question line, at most a quarter of the
budget), then as much of the *end* of the state as fits (the most recent searches), then
the whole action; the oldest search history in the middle is dropped. A candidate whose
action alone does not fit gets ``score=None`` with the error. Inputs that fit are
tokenized exactly as a plain ``tokenizer(text)`` call would; :func:`critic_token_ids` is
the one implementation, used by critic training too, so scores match training.

Batches are right-padded, so each text is scored from its own last token and batched
scores equal one-by-one scores (up to float rounding).

``input_format="rag-gym"`` scores what the RAG-Gym paper's critic scores instead: the
tokenizer's chat template applied to the messages the actor saw plus the full candidate
text as the assistant turn (:func:`critic_messages`), tokenized without extra special
tokens and cut from the left to ``max_length`` (default 4,096) tokens, so the end of the
conversation, where the candidate is, always stays (:func:`conversation_token_ids`, also
used by critic training). Batches are then left-padded, with position ids counted from each
row's first real token, so padding never changes a score. A critic trained on such rows
records the format and loads with it. torch, transformers and peft are
imported lazily (``pip install 'raggym[hf]'``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from raggym.agents.critics.base import CriticItem, CriticScore, critic_input
from raggym.agents.llm.hf import apply_adapter, read_train_record, resolve_adapter_dir
from raggym_env.availability import require
from raggym_env.protocols import DEFAULT_PROTOCOL, RAG_GYM, Protocol, check_protocol

__all__ = [
    "DEFAULT_MAX_LENGTH",
    "RAG_GYM_MAX_LENGTH",
    "RewardModelCritic",
    "conversation_token_ids",
    "critic_messages",
    "critic_token_ids",
]

_ACTION_MARKER = "\n\nNext action: "

DEFAULT_MAX_LENGTH = 1024
"""Tokens per scored text when neither the caller nor a training record says otherwise."""

RAG_GYM_MAX_LENGTH = 4096
"""Tokens per scored conversation under ``input_format="rag-gym"`` (the paper's length)."""


def critic_messages(item: CriticItem) -> list[dict[str, str]]:
    """What a rag-gym critic reads: the actor's prompt, then the full candidate text."""
    messages = [{"role": str(m["role"]), "content": str(m["content"])} for m in item.prompt]
    return [*messages, {"role": "assistant", "content": item.text}]


def conversation_token_ids(
    tokenizer: Any, messages: Sequence[Mapping[str, str]], max_length: int
) -> list[int]:
    """Token ids of a chat-templated conversation, cut from the left to ``max_length``.

    The tokenizer's chat template renders ``messages`` as text (no generation prompt), which
    is tokenized without adding special tokens (the template writes its own); a longer
    result keeps its last ``max_length`` tokens.

    Raises:
        ValueError: the tokenizer has no chat template.
    """
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("the rag-gym critic input needs a tokenizer with a chat template")
    text = tokenizer.apply_chat_template(
        [{"role": m["role"], "content": m["content"]} for m in messages], tokenize=False
    )
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    return ids[-max_length:] if len(ids) > max_length else ids


def critic_token_ids(tokenizer: Any, text: str, max_length: int) -> list[int]:
    """The token ids a reward-model critic scores for ``text``, truncated keeping the action.

    When the text is longer than ``max_length`` tokens, keeps the start of the state (the
    question line, at most a quarter of the budget), then as much of the end of the state as
    fits, then the whole action (everything from the last "Next action:" marker that
    :func:`~raggym.agents.critics.base.critic_input` writes).

    Args:
        tokenizer: a fast ``transformers`` tokenizer (offsets are needed).
        text: a :func:`~raggym.agents.critics.base.critic_input` text.
        max_length: the most tokens to keep.

    Returns:
        The token ids, exactly ``tokenizer(text)["input_ids"]`` when they fit.

    Raises:
        ValueError: the action part alone (plus the tokenizer's special tokens) is longer
            than ``max_length``.
    """
    encoded = tokenizer(text, return_offsets_mapping=True, truncation=False)
    ids: list[int] = list(encoded["input_ids"])
    if len(ids) <= max_length:
        return ids
    offsets = encoded["offset_mapping"]
    special = tokenizer.get_special_tokens_mask(ids, already_has_special_tokens=True)
    marker = text.rfind(_ACTION_MARKER)
    action_char = marker if marker >= 0 else len(text)
    newline = text.find("\n")
    head_char = newline if 0 <= newline < action_char else action_char
    # First token of the action: the first non-special token ending past the marker;
    # trailing special tokens (an eos the tokenizer appends) stay with the action.
    action_tok = next(
        (k for k, (s, e) in enumerate(offsets) if not special[k] and e > action_char and e > s),
        len(ids),
    )
    tail = len(ids) - action_tok
    if tail > max_length:
        raise ValueError(f"the action alone takes {tail} tokens, more than max_length={max_length}")
    head = 0
    while head < action_tok and (special[head] or offsets[head][1] <= head_char):
        head += 1
    head = min(head, max_length // 4, max_length - tail)
    middle = max_length - tail - head
    return ids[:head] + ids[action_tok - middle : action_tok] + ids[action_tok:]


def critic_input_settings(
    record: Mapping[str, Any], input_format: str | None, max_length: int | None
) -> tuple[Protocol, int]:
    """The input format and length a critic scores with: given, else its training record's.

    A trained critic (adapter or merged folder) records both; without them the format is
    ``"raggym"`` and the length :data:`DEFAULT_MAX_LENGTH` (:data:`RAG_GYM_MAX_LENGTH` for
    ``"rag-gym"``). The length is returned unchecked.
    """
    if input_format is None and isinstance(record.get("input_format"), str):
        input_format = record["input_format"]
    if max_length is None and isinstance(record.get("max_length"), int):
        max_length = record["max_length"]
    protocol = check_protocol(input_format or DEFAULT_PROTOCOL)
    if max_length is None:
        max_length = RAG_GYM_MAX_LENGTH if protocol == RAG_GYM else DEFAULT_MAX_LENGTH
    return protocol, max_length


class RewardModelCritic:
    """Scores candidates with a sequence-classification reward model.

    Args:
        path: the model directory (or hub name) holding the classifier and its tokenizer,
            or a trained critic's adapter directory (see the module docstring).
        adapter: a PEFT LoRA adapter directory applied on top (unmerged).
        device: where to run; default CUDA when available, else CPU.
        batch_size: texts per forward pass.
        max_length: most tokens per scored text (see the module docstring for truncation);
            default: the ``max_length`` a trained critic was trained with, else
            :data:`DEFAULT_MAX_LENGTH` (:data:`RAG_GYM_MAX_LENGTH` for ``"rag-gym"``).
        name: the critic name recorded in episodes.
        input_format: ``"raggym"`` (:func:`~raggym.agents.critics.base.critic_input` text)
            or ``"rag-gym"`` (the chat-templated prompt plus candidate, see the module
            docstring); default: the format a trained critic was trained with, else
            ``"raggym"``.

    Raises:
        MissingDependencyError: torch/transformers (or peft, for ``adapter``) is not
            installed (an ``ImportError`` naming the extra).
        ValueError: a bad argument, a head with more than two labels, a slow tokenizer
            (truncation needs offsets), a tokenizer with neither pad nor eos token, or both
            an adapter directory as ``path`` and ``adapter``.
        FileNotFoundError: ``adapter`` is not a directory.

    ``output`` is ``None`` for a one-label head and the raw logits (``"[l0, l1]"``) for a
    two-label head.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        adapter: str | Path | None = None,
        device: str | None = None,
        batch_size: int = 16,
        max_length: int | None = None,
        name: str = "reward_model",
        input_format: str | None = None,
    ) -> None:
        trained = resolve_adapter_dir(path)
        model_kwargs: dict[str, Any] = {}
        tokenizer_source = str(path)
        if trained is not None:
            if adapter is not None:
                raise ValueError(
                    f"{str(path)!r} is already a trained adapter directory (base "
                    f"{trained.base_model!r}); pass the base model as path to use adapter="
                )
            adapter = trained.path
            path = trained.base_model
            tokenizer_source = str(trained.path if trained.has_tokenizer else trained.base_model)
            if isinstance(trained.record.get("num_labels"), int):
                model_kwargs["num_labels"] = trained.record["num_labels"]
            record = trained.record
        else:  # a merged critic keeps its training record
            record = read_train_record(path) if Path(path).is_dir() else {}
        self.input_format, max_length = critic_input_settings(record, input_format, max_length)
        for label, value, low in (("batch_size", batch_size, 1), ("max_length", max_length, 8)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{label} must be an int >= {low}, got {value!r}")
        torch = require("torch", feature="RewardModelCritic")
        transformers = require("transformers", feature="RewardModelCritic")
        self._torch = torch
        self.name = name
        self.batch_size = batch_size
        self.max_length = max_length

        tokenizer = transformers.AutoTokenizer.from_pretrained(tokenizer_source)
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError(
                f"RewardModelCritic needs a fast tokenizer (offsets for truncation); "
                f"{type(tokenizer).__name__} is not one"
            )
        if tokenizer.pad_token_id is None:
            if tokenizer.eos_token is None:
                raise ValueError("the tokenizer has neither a pad token nor an eos token")
            tokenizer.pad_token = tokenizer.eos_token
        self.tokenizer = tokenizer

        model = transformers.AutoModelForSequenceClassification.from_pretrained(
            str(path), **model_kwargs
        )
        self.num_labels = int(model.config.num_labels)
        if self.num_labels not in (1, 2):
            raise ValueError(
                f"reward model {str(path)!r} has {self.num_labels} labels; expected 1 (a scalar "
                "reward) or 2 (bad/good)"
            )
        if model.config.pad_token_id is None:
            model.config.pad_token_id = tokenizer.pad_token_id
        if adapter is not None:
            model = apply_adapter(model, adapter)
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = model.to(device).eval()
        self.device = next(self.model.parameters()).device
        self._pad_id = int(model.config.pad_token_id)

    def __repr__(self) -> str:
        return f"RewardModelCritic(name={self.name!r}, device={str(self.device)!r})"

    def encode(self, text: str) -> list[int]:
        """Token ids scored for ``text``: all of it if it fits, else truncated keeping the action.

        See :func:`critic_token_ids`.

        Raises:
            ValueError: the action part alone (plus the tokenizer's special tokens) is
                longer than ``max_length``.
        """
        return critic_token_ids(self.tokenizer, text, self.max_length)

    def encode_item(self, item: CriticItem) -> list[int]:
        """Token ids scored for one candidate, in this critic's ``input_format``.

        Raises:
            ValueError: the text cannot be fitted (see :meth:`encode`), or the rag-gym
                format without a chat template or without the actor's prompt.
        """
        if self.input_format == RAG_GYM:
            if not item.prompt:
                raise ValueError("the rag-gym critic input needs the actor's prompt messages")
            return conversation_token_ids(self.tokenizer, critic_messages(item), self.max_length)
        return self.encode(critic_input(item.observation, item.action, item.text))

    def score(self, groups: Sequence[Sequence[CriticItem]]) -> list[list[CriticScore]]:
        """Score every candidate of every group, ``batch_size`` texts per forward pass."""
        flat = [item for group in groups for item in group]
        results = [CriticScore(None, error="not scored")] * len(flat)
        pending: list[tuple[int, list[int]]] = []
        for index, item in enumerate(flat):
            try:
                pending.append((index, self.encode_item(item)))
            except ValueError as exc:
                results[index] = CriticScore(None, error=f"ValueError: {exc}")
        for start in range(0, len(pending), self.batch_size):
            batch = pending[start : start + self.batch_size]
            for (index, _), verdict in zip(
                batch, self._forward([ids for _, ids in batch]), strict=True
            ):
                results[index] = verdict
        out: list[list[CriticScore]] = []
        position = 0
        for group in groups:
            out.append(results[position : position + len(group)])
            position += len(group)
        return out

    def _forward(self, batch: list[list[int]]) -> list[CriticScore]:
        torch = self._torch
        width = max(len(ids) for ids in batch)
        input_ids = torch.full((len(batch), width), self._pad_id, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        left = self.input_format == RAG_GYM
        for row, ids in enumerate(batch):
            span = slice(width - len(ids), width) if left else slice(0, len(ids))
            input_ids[row, span] = torch.tensor(ids, dtype=torch.long)
            attention[row, span] = 1
        extra: dict[str, Any] = {}
        if left:  # positions count from each row's first real token, as unpadded
            extra["position_ids"] = (attention.cumsum(-1) - 1).clamp(min=0).to(self.device)
        try:
            with torch.inference_mode():
                logits = self.model(
                    input_ids=input_ids.to(self.device),
                    attention_mask=attention.to(self.device),
                    **extra,
                ).logits
        except RuntimeError as exc:
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            return [CriticScore(None, error=f"{type(exc).__name__}: {exc}") for _ in batch]
        values = logits.float().cpu().tolist()
        if self.num_labels == 1:
            return [CriticScore(float(v[0])) for v in values]
        return [CriticScore(float(v[1] - v[0]), output=f"[{v[0]!r}, {v[1]!r}]") for v in values]
