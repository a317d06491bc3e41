"""A critic served over HTTP by vLLM, shared by many rollout workers.

Serve a one-label sequence classifier (a trained critic, merged into its base model) with
``vllm serve PATH --task classify`` (``--runner pooling --convert classify`` in newer
releases) and point :class:`RemoteCritic` at it. Each candidate's critic input is sent to
vLLM's ``POST /classify`` route, whose request and reply are::

    {"model": M, "input": [[ids...], ...] or ["text", ...], "use_activation": false}
    -> {"data": [{"index": 0, "probs": [logit], "num_classes": 1, "label": ...}, ...]}

or, for one conversation, ``{"model": M, "messages": [...], ...}`` (vLLM's chat form of
the route, which applies the served model's chat template).

Why ``/classify`` with ``use_activation: false``: vLLM's classification pooler applies an
activation to the head's output before replying, a sigmoid for a one-label head in current
releases (a softmax over labels in older ones, which is always 1.0 for a single label), so
the default reply is not the raw reward. ``use_activation: false`` turns the activation off
and ``probs`` then holds the head's logits, the same number
:class:`~raggym.agents.critics.reward_model.RewardModelCritic` reports (one label: the
logit; two labels: ``logit[1] - logit[0]``). ``/v1/score`` is for cross-encoders scoring
text pairs, and ``/pooling`` replies with the same pooled values under other names, so
``/classify`` is the one route used. A vLLM too old to know ``use_activation`` ignores it
and replies with probabilities: serve the critic with a current vLLM.

What is sent depends on ``input_format`` (as in
:class:`~raggym.agents.critics.reward_model.RewardModelCritic`) and on whether a local
tokenizer (the critic's own) is given:

* with a tokenizer: token ids, built by the very functions the local critic and critic
  training use (``critic_token_ids`` / ``conversation_token_ids``, left truncation to
  ``max_length`` for ``"rag-gym"``), many candidates per request, so the server scores
  exactly the ids the critic was trained on;
* without one, ``"raggym"``: the :func:`~raggym.agents.critics.base.critic_input` texts,
  many per request (the server tokenizes them, adding its special tokens; nothing is
  truncated, so an input longer than the server allows fails);
* without one, ``"rag-gym"``: one request per candidate holding its messages (the
  actor's prompt plus the candidate text), templated by the server without extra special
  tokens and truncated from the left to ``max_length`` (``truncate_prompt_tokens`` with
  ``truncation_side: "left"``).

Connection errors, timeouts, HTTP 429 and 5xx replies and bodies that are not JSON are
retried ``max_retries`` times with exponential backoff; other 4xx replies are not. A
request that still fails, or a reply missing a candidate's score, gives those candidates
``CriticScore(None, error=...)``, never a number. The API key is read from the
environment variable named by ``api_key_env`` at each request and is never stored.
Standard library only (the tokenizer needs ``raggym[hf]``).
"""

from __future__ import annotations

import json
import math
import os
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from raggym.agents.critics.base import CriticItem, CriticScore, critic_input
from raggym.agents.critics.reward_model import (
    conversation_token_ids,
    critic_input_settings,
    critic_messages,
    critic_token_ids,
)
from raggym.agents.llm.hf import read_train_record, resolve_adapter_dir
from raggym_env.availability import require
from raggym_env.protocols import RAG_GYM
from raggym_env.redaction import redact_text

__all__ = ["RemoteCritic"]

_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class _Attempt(Exception):
    """A failed request: its message and whether trying again may help."""

    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class RemoteCritic:
    """Scores candidates with a classifier served by vLLM (see the module docstring).

    Args:
        url: the server's base URL (``http://127.0.0.1:8000``; a trailing ``/v1`` is
            dropped, since ``/classify`` is served at the root).
        model: the served model name (``vllm serve PATH`` serves it as ``PATH``). When it
            names a local trained-critic directory, its recorded input format and
            ``max_length`` are the defaults.
        tokenizer: the critic's tokenizer (an object, or a path loaded with
            ``AutoTokenizer``); with one, token ids are sent.
        input_format: ``"raggym"`` or ``"rag-gym"``; default: the trained critic's, else
            ``"raggym"``.
        max_length: most tokens per input; default: the trained critic's, else 4,096 for
            ``"rag-gym"`` and 1,024 for ``"raggym"``.
        batch_size: inputs per request (when inputs are batched).
        concurrency: requests in flight at once.
        timeout_s: seconds each request may take.
        max_retries: extra attempts after a transient failure.
        backoff_s: the first wait before a retry (doubling each time).
        api_key_env: the environment variable holding the bearer key, if the server needs
            one (``vllm serve --api-key``).
        name: the critic name recorded in episodes.

    Raises:
        ValueError: a bad argument, or ``api_key_env`` names an unset variable.
    """

    def __init__(
        self,
        url: str,
        model: str,
        *,
        tokenizer: Any = None,
        input_format: str | None = None,
        max_length: int | None = None,
        batch_size: int = 32,
        concurrency: int = 8,
        timeout_s: float = 60.0,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        api_key_env: str | None = None,
        name: str = "remote_critic",
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"url must be an http(s) URL, got {redact_text(str(url))!r}")
        if not isinstance(model, str) or not model:
            raise ValueError("model must be the served model's name")
        # a trained critic's folder (adapter, or merged as vLLM serves it) records its input
        trained = resolve_adapter_dir(model) if Path(model).is_dir() else None
        record = trained.record if trained is not None else {}
        if trained is None and Path(model).is_dir():
            record = read_train_record(model)
        self.input_format, max_length = critic_input_settings(record, input_format, max_length)
        for label, value, low in (
            ("max_length", max_length, 8),
            ("batch_size", batch_size, 1),
            ("concurrency", concurrency, 1),
            ("max_retries", max_retries, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{label} must be an int >= {low}, got {value!r}")
        if not timeout_s > 0 or not backoff_s >= 0:
            raise ValueError("timeout_s must be > 0 and backoff_s >= 0")
        if api_key_env is not None and not os.environ.get(api_key_env):
            raise ValueError(f"api_key_env names {api_key_env!r}, which is not set")
        base = url.rstrip("/")
        self.url = (base[: -len("/v1")] if base.endswith("/v1") else base) + "/classify"
        self.model = model
        self.max_length = max_length
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.timeout_s = float(timeout_s)
        self.max_retries = max_retries
        self.backoff_s = float(backoff_s)
        self.api_key_env = api_key_env
        self.name = name
        if isinstance(tokenizer, (str, Path)):
            transformers = require("transformers", feature="RemoteCritic(tokenizer=PATH)")
            tokenizer = transformers.AutoTokenizer.from_pretrained(str(tokenizer))
        self.tokenizer = tokenizer

    def __repr__(self) -> str:
        return (
            f"RemoteCritic(name={self.name!r}, url={redact_text(self.url)!r}, "
            f"model={self.model!r}, input_format={self.input_format!r})"
        )

    # ------------------------------------------------------------------------- inputs
    def _input(self, item: CriticItem) -> Any:
        """What is sent for one candidate: token ids, a text, or a message list."""
        if self.input_format == RAG_GYM:
            if not item.prompt:
                raise ValueError("the rag-gym critic input needs the actor's prompt messages")
            messages = critic_messages(item)
            if self.tokenizer is None:
                return messages
            return conversation_token_ids(self.tokenizer, messages, self.max_length)
        text = critic_input(item.observation, item.action, item.text)
        if self.tokenizer is None:
            return text
        return critic_token_ids(self.tokenizer, text, self.max_length)

    def _bodies(self, inputs: list[tuple[int, Any]]) -> list[tuple[list[int], dict[str, Any]]]:
        """Requests as (flat indexes, JSON body): batches, or one per message list."""
        bodies: list[tuple[list[int], dict[str, Any]]] = []
        common: dict[str, Any] = {"model": self.model, "use_activation": False}
        batched = [(i, x) for i, x in inputs if not _is_messages(x)]
        for start in range(0, len(batched), self.batch_size):
            chunk = batched[start : start + self.batch_size]
            body = {**common, "input": [x for _, x in chunk]}
            if self.tokenizer is not None:  # ids carry every special token already
                body["add_special_tokens"] = False
            bodies.append(([i for i, _ in chunk], body))
        for index, messages in inputs:
            if _is_messages(messages):
                body = {
                    **common,
                    "messages": messages,
                    "add_special_tokens": False,
                    "truncate_prompt_tokens": self.max_length,
                    "truncation_side": "left",
                }
                bodies.append(([index], body))
        return bodies

    # ---------------------------------------------------------------------- requests
    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key_env is not None:
            key = os.environ.get(self.api_key_env, "")
            if key:
                headers["Authorization"] = f"Bearer {key}"
        return headers

    def _attempt(self, body: Mapping[str, Any]) -> Any:
        request = urllib.request.Request(
            self.url, data=json.dumps(body).encode("utf-8"), headers=self._headers()
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode("utf-8", "replace")
            raise _Attempt(f"HTTP {exc.code}: {detail}", exc.code in _RETRY_STATUSES) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise _Attempt(f"{type(exc).__name__}: {reason}", True) from None
        try:
            return json.loads(raw)
        except ValueError:
            raise _Attempt(f"reply is not JSON: {raw[:80]!r}", True) from None

    def _post(self, body: Mapping[str, Any]) -> tuple[Any, str | None]:
        """The parsed reply, or ``None`` and the last error after the retries."""
        error = "not sent"
        for attempt in range(self.max_retries + 1):
            try:
                return self._attempt(body), None
            except _Attempt as exc:
                error = redact_text(str(exc))
                if not exc.retryable or attempt == self.max_retries:
                    break
                time.sleep(self.backoff_s * 2**attempt)
        return None, error

    def _request(self, indexes: list[int], body: dict[str, Any]) -> list[CriticScore]:
        reply, error = self._post(body)
        if reply is None:
            return [CriticScore(None, error=f"RemoteCriticError: {error}") for _ in indexes]
        return _read_scores(reply, len(indexes))

    # ------------------------------------------------------------------------- score
    def score(self, groups: Sequence[Sequence[CriticItem]]) -> list[list[CriticScore]]:
        """Score every candidate of every group; failures are ``CriticScore(None, error)``."""
        flat = [item for group in groups for item in group]
        results = [CriticScore(None, error="not scored")] * len(flat)
        inputs: list[tuple[int, Any]] = []
        for index, item in enumerate(flat):
            try:
                inputs.append((index, self._input(item)))
            except ValueError as exc:
                results[index] = CriticScore(None, error=f"ValueError: {exc}")
        bodies = self._bodies(inputs)
        with ThreadPoolExecutor(max_workers=min(self.concurrency, max(len(bodies), 1))) as pool:
            replies = list(pool.map(lambda job: self._request(*job), bodies))
        for (indexes, _), verdicts in zip(bodies, replies, strict=True):
            for index, verdict in zip(indexes, verdicts, strict=True):
                results[index] = verdict
        out: list[list[CriticScore]] = []
        position = 0
        for group in groups:
            out.append(results[position : position + len(group)])
            position += len(group)
        return out


def _is_messages(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and isinstance(value[0], dict)


def _read_scores(reply: Any, count: int) -> list[CriticScore]:
    """One verdict per input from a ``/classify`` reply (a missing entry is an error)."""
    data = reply.get("data") if isinstance(reply, dict) else None
    if not isinstance(data, list):
        return [CriticScore(None, error="RemoteCriticError: reply has no 'data' list")] * count
    found: dict[int, CriticScore] = {}
    for entry in data:
        index = entry.get("index") if isinstance(entry, dict) else None
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
            continue
        found[index] = _verdict(entry.get("probs"))
    missing = CriticScore(None, error="RemoteCriticError: no score for this input in the reply")
    return [found.get(i, missing) for i in range(count)]


def _verdict(values: Any) -> CriticScore:
    """The raw score of one entry: the logit of one label, ``l1 - l0`` of two."""
    ok = isinstance(values, list) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values
    )
    if not ok or len(values) not in (1, 2):
        return CriticScore(None, error=f"RemoteCriticError: unreadable scores {values!r:.80}")
    if len(values) == 1:
        return CriticScore(float(values[0]))
    return CriticScore(float(values[1] - values[0]), output=json.dumps(values))
