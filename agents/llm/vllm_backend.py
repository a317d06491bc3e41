"""An in-process vLLM backend: the fast path for sampling many rollouts on a GPU.

:class:`VLLMLLM` owns a ``vllm.LLM`` engine and sends every conversation of a
:meth:`~VLLMLLM.generate` call to ``LLM.chat`` at once (vLLM schedules them itself), with a
``LoRARequest`` when an adapter is given. Each conversation gets its own
``vllm.SamplingParams`` so a ``seed`` is per request (conversation ``i`` uses ``seed + i``),
which makes a conversation's samples independent of what else is in the batch.

If the whole batch is rejected (for instance one prompt is longer than the engine's
``max_model_len``, which vLLM reports with a ``ValueError``), the conversations are
retried one at a time so only the offending ones carry the ``error``.

Importing this module does not import vLLM; constructing :class:`VLLMLLM` does
(``pip install 'raggym[vllm]'``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
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

__all__ = ["VLLMLLM"]

_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)


def _adapter_rank(adapter_dir: Path) -> int | None:
    """The LoRA rank ``r`` from an adapter's ``adapter_config.json`` (``None`` if absent)."""
    config = adapter_dir / "adapter_config.json"
    try:
        rank = json.loads(config.read_text(encoding="utf-8")).get("r")
    except (OSError, ValueError):
        return None
    return rank if isinstance(rank, int) and rank > 0 else None


class VLLMLLM:
    """A batched chat backend running a model with ``vllm.LLM`` in this process.

    Args:
        model: a model directory or hub name (passed to ``vllm.LLM``).
        adapter: a PEFT LoRA adapter directory; enables LoRA in the engine
            (``enable_lora=True`` and, unless given, ``max_lora_rank`` large enough for the
            adapter's rank) and is applied to every request.
        name: the backend name recorded in episodes; default: the model name, with
            ``+<adapter folder>`` when an adapter is used.
        **engine_kwargs: anything else ``vllm.LLM`` accepts (``gpu_memory_utilization``,
            ``max_model_len``, ``dtype``, ``tensor_parallel_size``, ...).

    Raises:
        MissingDependencyError: vllm is not installed (an ``ImportError`` naming the extra).
        FileNotFoundError: ``adapter`` is not a directory.
    """

    def __init__(
        self,
        model: str | Path,
        *,
        adapter: str | Path | None = None,
        name: str | None = None,
        **engine_kwargs: Any,
    ) -> None:
        vllm = require("vllm", feature="VLLMLLM (GPU only)")
        LoRARequest = require("vllm.lora.request", feature="VLLMLLM").LoRARequest
        self._vllm = vllm
        if adapter is None:  # a trained adapter folder given as the model: load its base
            from raggym.agents.llm.hf import resolve_adapter_dir

            found = resolve_adapter_dir(model)
            if found is not None:
                model, adapter = found.base_model, found.path
        model_id = str(model)
        self.lora_request: Any = None
        if adapter is not None:
            adapter_dir = Path(adapter)
            if not adapter_dir.is_dir():
                raise FileNotFoundError(f"adapter directory {str(adapter_dir)!r} does not exist")
            engine_kwargs.setdefault("enable_lora", True)
            rank = _adapter_rank(adapter_dir)
            if rank is not None and "max_lora_rank" not in engine_kwargs:
                engine_kwargs["max_lora_rank"] = next(
                    (r for r in _LORA_RANKS if r >= rank), _LORA_RANKS[-1]
                )
            self.lora_request = LoRARequest(adapter_dir.resolve().name, 1, str(adapter_dir))
            model_id = f"{model_id}+{adapter_dir.resolve().name}"
        self.llm = vllm.LLM(model=str(model), **engine_kwargs)
        self.name = name or model_id

    def __repr__(self) -> str:
        return f"VLLMLLM(name={self.name!r})"

    def _params(self, params: SamplingParams, index: int) -> Any:
        return self._vllm.SamplingParams(
            n=params.n,
            temperature=float(params.temperature),
            top_p=float(params.top_p),
            max_tokens=params.max_tokens,
            stop=list(params.stop) or None,
            seed=None if params.seed is None else params.seed + index,
        )

    def generate(
        self, conversations: Sequence[Sequence[Message]], params: SamplingParams
    ) -> list[Completion]:
        """Sample ``params.n`` completions for each conversation with one ``LLM.chat`` call.

        Returns one :class:`Completion` per conversation, in order; ``latency_s`` is the
        wall time of the call that produced it.
        """
        if not isinstance(params, SamplingParams):
            raise TypeError(f"params must be SamplingParams, got {type(params).__name__}")
        for i, conversation in enumerate(conversations):
            check_messages(conversation, f"conversation {i}")
        if not conversations:
            return []
        messages = [[dict(m) for m in c] for c in conversations]
        sampling = [self._params(params, i) for i in range(len(messages))]
        started = time.perf_counter()
        try:
            outputs = self._chat(messages, sampling)
        except (ValueError, RuntimeError) as exc:
            if len(messages) == 1:
                latency = time.perf_counter() - started
                return [Completion(error=f"{type(exc).__name__}: {exc}", latency_s=latency)]
            return [self._alone(m, s, params) for m, s in zip(messages, sampling, strict=True)]
        latency = time.perf_counter() - started
        return [self._completion(o, params, latency) for o in outputs]

    def _chat(self, messages: list[list[dict[str, str]]], sampling: list[Any]) -> list[Any]:
        outputs = self.llm.chat(
            messages, sampling_params=sampling, use_tqdm=False, lora_request=self.lora_request
        )
        if len(outputs) != len(messages):
            raise RuntimeError(
                f"vLLM returned {len(outputs)} outputs for {len(messages)} conversations"
            )
        return list(outputs)

    def _alone(
        self, message: list[dict[str, str]], sampling: Any, params: SamplingParams
    ) -> Completion:
        """Run one conversation alone; record its error if it fails again."""
        started = time.perf_counter()
        try:
            output = self._chat([message], [sampling])[0]
        except (ValueError, RuntimeError) as exc:
            return Completion(
                error=f"{type(exc).__name__}: {exc}", latency_s=time.perf_counter() - started
            )
        return self._completion(output, params, time.perf_counter() - started)

    @staticmethod
    def _completion(output: Any, params: SamplingParams, latency: float) -> Completion:
        texts, reasons, generated = [], [], 0
        for sample in output.outputs:
            text, stopped = truncate_at_stop(str(sample.text), params.stop)
            texts.append(text)
            reasons.append("stop" if stopped else sample.finish_reason)
            generated += len(sample.token_ids or ())
        return Completion(
            texts=tuple(texts),
            prompt_tokens=len(output.prompt_token_ids or ()),
            completion_tokens=generated,
            latency_s=latency,
            finish_reasons=tuple(reasons),
        )
