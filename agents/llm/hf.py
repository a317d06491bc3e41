"""An in-process Hugging Face ``transformers`` backend, optionally with a PEFT LoRA adapter.

:class:`TransformersLLM` renders each conversation with the tokenizer's chat template
(or a plain ``role: content`` transcript when the tokenizer has none), left-pads batches
of ``batch_size`` prompts and calls ``model.generate``. It is the backend for training
loops and small models on one machine; :mod:`raggym.agents.llm.vllm_backend` is the fast one.

Sampling follows :class:`~raggym.agents.llm.base.SamplingParams`: ``temperature == 0`` is greedy
(one sequence per prompt, copied ``n`` times since greedy samples are identical), any other
temperature samples with ``top_p`` (top-k filtering is switched off so the knobs mean what
they mean in vLLM). Stop strings end generation early (``transformers``' stop-string
criterion) and are cut from the text afterwards. A ``seed`` makes sampling reproducible:
batch ``b`` runs under ``torch.manual_seed(seed + b)`` inside a forked RNG, so the same
conversations, parameters and ``batch_size`` give the same texts, and the global RNG is
left as it was.

Token counts are real: ``prompt_tokens`` counts the prompt's non-padding tokens and
``completion_tokens`` the tokens generated for all ``n`` texts (up to and including the
end-of-sequence token, before stop strings are cut; greedy copies count like samples).
``latency_s`` is the wall time of the batch the conversation ran in. A torch
``RuntimeError`` during a batch (out of memory, a device fault) is recorded in that
batch's completions' ``error``; the other batches still run.

A trained adapter directory loads by its path alone: when ``model`` is a PEFT adapter
directory (``adapter_config.json``, e.g. the ``OUT/final`` folder written by
:func:`raggym.trainers.sft.train_sft` or :func:`raggym.trainers.dpo.train_dpo`), the base model
named in its ``raggym_train.json`` (or, failing that, in ``adapter_config.json``) is loaded and the
adapter applied on top; see :func:`resolve_adapter_dir`.

torch, transformers and peft are imported lazily (``pip install 'raggym[hf]'``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raggym.agents.llm.base import (
    Completion,
    Message,
    SamplingParams,
    check_messages,
    truncate_at_stop,
)
from raggym_env.availability import require

__all__ = [
    "ADAPTER_CONFIG",
    "TRAIN_RECORD",
    "AdapterDir",
    "TransformersLLM",
    "apply_adapter",
    "read_train_record",
    "render_conversation",
    "resolve_adapter_dir",
]


ADAPTER_CONFIG = "adapter_config.json"
"""The file that marks a directory as a PEFT adapter."""

TRAIN_RECORD = "raggym_train.json"
"""The file the trainers write next to a trained adapter: base model, method, config."""

_TOKENIZER_FILES = ("tokenizer_config.json", "tokenizer.json")


@dataclass(frozen=True)
class AdapterDir:
    """A trained PEFT adapter directory and what is needed to load it.

    Attributes:
        path: the adapter directory.
        base_model: the base model's directory or hub name.
        record: the parsed ``raggym_train.json`` (empty when the directory has none).
        has_tokenizer: the directory also holds a tokenizer (the trainers save one there).
    """

    path: Path
    base_model: str
    record: dict[str, Any]
    has_tokenizer: bool

    @property
    def label(self) -> str:
        """A short name for the adapter: its folder, with the run folder for ``.../final``."""
        resolved = self.path.resolve()
        if resolved.name == "final" and resolved.parent.name:
            return f"{resolved.parent.name}/{resolved.name}"
        return resolved.name


def _read_json_object(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{str(path)!r} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{str(path)!r} must hold a JSON object, got {type(data).__name__}")
    return data


def apply_adapter(model: Any, adapter: str | Path) -> Any:
    """Wrap a loaded model with the PEFT (LoRA) adapter saved in ``adapter``, for inference."""
    adapter_dir = Path(adapter)
    if not adapter_dir.is_dir():
        raise FileNotFoundError(f"adapter directory {str(adapter_dir)!r} does not exist")
    peft = require("peft", feature="loading a LoRA adapter")
    return peft.PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=False)


def resolve_adapter_dir(path: str | Path) -> AdapterDir | None:
    """Recognise a trained PEFT adapter directory and find its base model.

    The base model is ``base_model`` of the directory's ``raggym_train.json`` (written by
    the trainers, an absolute path for a local base) or else ``base_model_name_or_path`` of
    its ``adapter_config.json``.

    Args:
        path: a model directory, adapter directory or hub name.

    Returns:
        The adapter's description, or ``None`` when ``path`` is not a directory holding an
        ``adapter_config.json`` (a full model directory or a hub name).

    Raises:
        ValueError: the directory is an adapter but neither file names its base model, or
            one of them is not a JSON object.
    """
    directory = Path(path)
    config_file = directory / ADAPTER_CONFIG
    if not config_file.is_file():
        return None
    record_file = directory / TRAIN_RECORD
    record = _read_json_object(record_file) if record_file.is_file() else {}
    base = record.get("base_model")
    if not isinstance(base, str) or not base:
        base = _read_json_object(config_file).get("base_model_name_or_path")
    if not isinstance(base, str) or not base:
        raise ValueError(
            f"adapter directory {str(directory)!r} does not name its base model (no "
            f"'base_model' in {TRAIN_RECORD}, no 'base_model_name_or_path' in {ADAPTER_CONFIG});"
            " load the base model and pass this directory as adapter="
        )
    has_tokenizer = any((directory / name).is_file() for name in _TOKENIZER_FILES)
    return AdapterDir(directory, base, record, has_tokenizer)


def read_train_record(path: str | Path) -> dict[str, Any]:
    """The ``raggym_train.json`` of a trained adapter or a merged model folder (``{}`` if none).

    A folder written by :func:`raggym.trainers.merge.merge_adapter` keeps the adapter's
    record, so a merged critic still says which input format and length it was trained on.
    """
    record_file = Path(path) / TRAIN_RECORD
    if not record_file.is_file():
        return {}
    return _read_json_object(record_file)


def render_conversation(conversation: Sequence[Message], tokenizer: Any) -> tuple[str, bool]:
    """Render a conversation as the prompt text a causal LM continues.

    Uses the tokenizer's chat template with the generation prompt when it has one;
    otherwise a plain transcript, one ``role: content`` line per message, ending with
    ``assistant:``.

    Args:
        conversation: chat messages.
        tokenizer: a ``transformers`` tokenizer.

    Returns:
        The prompt text and whether the tokenizer should add its special tokens when
        encoding it (``False`` for a chat template, which writes its own).
    """
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(
            [dict(m) for m in conversation], tokenize=False, add_generation_prompt=True
        )
        return str(text), False
    lines = [f"{m['role']}: {m['content']}" for m in conversation]
    return "\n".join([*lines, "assistant:"]), True


def _dtype_keyword(transformers: Any) -> str:
    """``from_pretrained``'s dtype keyword: ``dtype`` (4.56+) or ``torch_dtype``."""
    try:
        major, minor = (int(part) for part in str(transformers.__version__).split(".")[:2])
    except ValueError:
        return "dtype"
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


def _resolve_dtype(torch: Any, dtype: object) -> Any:
    if dtype is None or dtype == "auto":
        return "auto"
    if isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str) and isinstance(getattr(torch, dtype, None), torch.dtype):
        return getattr(torch, dtype)
    raise ValueError(
        f"dtype must be None, 'auto', a torch.dtype or its name (e.g. 'bfloat16'), got {dtype!r}"
    )


class TransformersLLM:
    """A batched chat backend running a ``transformers`` causal LM in this process.

    Args:
        model: a model directory or hub name, a trained adapter directory (its base model
            is loaded and the adapter applied; see :func:`resolve_adapter_dir`), or an
            already loaded causal LM (``PreTrainedModel`` or ``PeftModel``; used as is,
            never copied).
        tokenizer: a tokenizer, or where to load one from; default: the model's own
            directory/name (``model.name_or_path`` for a loaded model; the adapter
            directory for a trained adapter that saved its tokenizer, else its base).
        adapter: a PEFT LoRA adapter directory applied on top of ``model`` (unmerged, so
            the base weights stay untouched; a loaded ``model`` gets the adapter injected
            in place, as peft does).
        device: where to run, e.g. ``"cuda:0"``; default: CUDA when available for a model
            loaded here, the model's current device for a loaded one.
        dtype: weights' dtype when loading (``"bfloat16"``, ``torch.float16``, ...);
            default ``"auto"``: the checkpoint's. A loaded model is cast only if given.
        batch_size: conversations per ``generate`` call (``n`` samples each).
        name: the backend name recorded in episodes; default: the model name, with
            ``+<adapter folder>`` when an adapter is used.

    Raises:
        MissingDependencyError: torch/transformers (or peft, for ``adapter``) is not
            installed (an ``ImportError`` naming the extra).
        ValueError: a bad argument, a tokenizer with neither pad nor eos token, or both an
            adapter directory as ``model`` and ``adapter``.
        FileNotFoundError: ``adapter`` is not a directory.

    A tokenizer without a pad token gets ``pad_token = eos_token`` (set on the object).
    """

    def __init__(
        self,
        model: str | Path | Any,
        tokenizer: str | Path | Any | None = None,
        *,
        adapter: str | Path | None = None,
        device: str | Any | None = None,
        dtype: str | Any | None = None,
        batch_size: int = 8,
        name: str | None = None,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        torch = require("torch", feature="TransformersLLM")
        transformers = require("transformers", feature="TransformersLLM")
        self._torch = torch
        self.batch_size = batch_size

        trained = resolve_adapter_dir(model) if isinstance(model, (str, Path)) else None
        if trained is not None:
            if adapter is not None:
                raise ValueError(
                    f"{str(model)!r} is already a trained adapter directory (base "
                    f"{trained.base_model!r}); pass the base model as model= to use adapter="
                )
            adapter = trained.path
            if tokenizer is None:
                tokenizer = trained.path if trained.has_tokenizer else trained.base_model
            model = trained.base_model
        if isinstance(model, (str, Path)):
            model_id = str(model)
            loaded = transformers.AutoModelForCausalLM.from_pretrained(
                model_id, **{_dtype_keyword(transformers): _resolve_dtype(torch, dtype)}
            )
            if device is None:
                device = "cuda" if torch.cuda.is_available() else "cpu"
        elif callable(getattr(model, "generate", None)):
            loaded = model
            model_id = str(getattr(model, "name_or_path", "") or type(model).__name__)
            if dtype is not None:
                loaded = loaded.to(_resolve_dtype(torch, dtype))
        else:
            raise ValueError(
                "model must be a model directory/name or a loaded causal LM with .generate(), "
                f"got {type(model).__name__}"
            )
        if device is not None:
            loaded = loaded.to(device)

        if tokenizer is None:
            source = str(model) if isinstance(model, (str, Path)) else model_id
            if not source or source == type(model).__name__:
                raise ValueError(
                    "the loaded model has no name_or_path to load a tokenizer from; "
                    "pass tokenizer= explicitly"
                )
            tokenizer = source
        tok: Any = tokenizer
        if isinstance(tok, (str, Path)):
            tok = transformers.AutoTokenizer.from_pretrained(str(tok))
        if tok.pad_token_id is None:
            if tok.eos_token is None:
                raise ValueError("the tokenizer has neither a pad token nor an eos token")
            tok.pad_token = tok.eos_token
        self.tokenizer: Any = tok

        if adapter is not None:
            loaded = apply_adapter(loaded, adapter)
            label = trained.label if trained is not None else Path(adapter).resolve().name
            model_id = f"{model_id}+{label}"
        self.model = loaded.eval()
        self.device = next(self.model.parameters()).device
        self.name = name or model_id
        self._eos_ids = self._eos_token_ids()

    def _eos_token_ids(self) -> frozenset[int]:
        ids: set[int] = set()
        config = getattr(self.model, "generation_config", None)
        for source in (getattr(config, "eos_token_id", None), self.tokenizer.eos_token_id):
            if isinstance(source, int):
                ids.add(source)
            elif isinstance(source, (list, tuple)):
                ids.update(int(i) for i in source)
        return frozenset(ids)

    def __repr__(self) -> str:
        return f"TransformersLLM(name={self.name!r}, device={str(self.device)!r})"

    def generate(
        self, conversations: Sequence[Sequence[Message]], params: SamplingParams
    ) -> list[Completion]:
        """Sample ``params.n`` completions per conversation, ``batch_size`` conversations at once.

        Returns one :class:`Completion` per conversation, in order; a batch that hits a torch
        ``RuntimeError`` yields completions carrying the error instead of texts.
        """
        if not isinstance(params, SamplingParams):
            raise TypeError(f"params must be SamplingParams, got {type(params).__name__}")
        for i, conversation in enumerate(conversations):
            check_messages(conversation, f"conversation {i}")
        rendered = [render_conversation(c, self.tokenizer) for c in conversations]
        completions: list[Completion] = []
        for batch_index, start in enumerate(range(0, len(rendered), self.batch_size)):
            batch = rendered[start : start + self.batch_size]
            seed = None if params.seed is None else params.seed + batch_index
            started = time.perf_counter()
            try:
                completions.extend(self._generate_batch(batch, params, seed, started))
            except RuntimeError as exc:
                if self.device.type == "cuda":
                    self._torch.cuda.empty_cache()
                error = f"{type(exc).__name__}: {exc}"
                latency = time.perf_counter() - started
                completions.extend(Completion(error=error, latency_s=latency) for _ in batch)
        return completions

    @contextmanager
    def _seeded(self, seed: int | None) -> Iterator[None]:
        if seed is None:
            yield
            return
        devices = [self.device] if self.device.type == "cuda" else []
        with self._torch.random.fork_rng(devices=devices):
            self._torch.manual_seed(seed)
            yield

    def _generate_batch(
        self,
        batch: Sequence[tuple[str, bool]],
        params: SamplingParams,
        seed: int | None,
        started: float,
    ) -> list[Completion]:
        torch = self._torch
        add_special = batch[0][1]
        encoded = self.tokenizer(
            [text for text, _ in batch],
            padding=True,
            padding_side="left",
            add_special_tokens=add_special,
            return_tensors="pt",
        ).to(self.device)
        greedy = params.temperature == 0
        per_prompt = 1 if greedy else params.n
        kwargs: dict[str, Any] = {
            "max_new_tokens": params.max_tokens,
            "pad_token_id": self.tokenizer.pad_token_id,
            "num_return_sequences": per_prompt,
            "do_sample": not greedy,
        }
        if not greedy:
            kwargs.update(temperature=float(params.temperature), top_p=params.top_p, top_k=0)
        if params.stop:
            kwargs.update(stop_strings=list(params.stop), tokenizer=self.tokenizer)
        with torch.inference_mode(), self._seeded(seed):
            output = self.model.generate(
                input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"], **kwargs
            )
        new_tokens = output[:, encoded["input_ids"].shape[1] :].tolist()
        prompt_lengths = encoded["attention_mask"].sum(dim=1).tolist()
        latency = time.perf_counter() - started
        completions = []
        for i in range(len(batch)):
            rows = [self._decode(new_tokens[i * per_prompt + j], params) for j in range(per_prompt)]
            if greedy:
                rows = rows * params.n
            completions.append(
                Completion(
                    texts=tuple(text for text, _, _ in rows),
                    prompt_tokens=int(prompt_lengths[i]),
                    completion_tokens=sum(count for _, count, _ in rows),
                    latency_s=latency,
                    finish_reasons=tuple(reason for _, _, reason in rows),
                )
            )
        return completions

    def _decode(self, tokens: list[int], params: SamplingParams) -> tuple[str, int, str]:
        """Return one generated row's text, its generated-token count and finish reason."""
        pad = self.tokenizer.pad_token_id
        end = next((k for k, t in enumerate(tokens) if t in self._eos_ids), None)
        if end is not None:
            count, body = end + 1, tokens[:end]
        else:
            count = len(tokens)
            while count and tokens[count - 1] == pad:
                count -= 1
            body = tokens[:count]
        text = self.tokenizer.decode(body, skip_special_tokens=True)
        text, stopped = truncate_at_stop(text, params.stop)
        if end is not None or stopped or count < params.max_tokens:
            return text, count, "stop"
        return text, count, "length"
