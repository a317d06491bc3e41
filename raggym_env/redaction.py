"""Redaction of credentials in anything raggym prints or writes (run cards, reports, logs).

Keys never belong in a result: a run folder is shared, committed and uploaded. Suite files
refuse them outright (see :func:`find_secrets`); :func:`redact` is the last line of
defence applied wherever configuration is written (run cards, episode records,
leaderboards, wandb config) and to messages that echo an LLM spec or a URL.

What counts as a secret:

- a mapping entry whose key names one (:func:`is_secret_name`): ``api_key``, ``key``,
  ``token``, ``password``, ``secret``, ``authorization``, ``X-API-Key``, ``hf_token``...
  but not the *name* of where a secret lives (``api_key_env``, ``token_file``) nor a
  tokenizer setting (``pad_token``, ``max_tokens``);
- in any string: the ``user:password@`` of a URL, ``Bearer <token>``, the value of a query
  parameter such as ``api_key=`` / ``key=`` / ``token=``, and ``sk-...`` style API keys.

Every pattern runs in linear time, so untrusted text can be redacted safely.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["MASK", "find_secrets", "is_secret_name", "redact", "redact_text"]

MASK = "***"
"""What a secret is replaced by."""

_SECRET_WORDS = frozenset(
    {
        "password", "passwd", "passphrase", "secret", "authorization", "credential",
        "credentials", "apikey", "cookie", "bearer", "auth",
    }
)  # fmt: skip
_NOT_SECRET_LAST_WORDS = frozenset(
    {"env", "var", "file", "path", "dir", "name", "names", "id", "ids", "type", "kind", "url"}
)
_TOKEN_NOT_SECRET = frozenset(
    {"pad", "unk", "eos", "bos", "cls", "sep", "mask", "start", "end", "stop", "special", "max",
     "min", "num", "first", "last", "sentence", "chunk", "image", "think"}
)  # fmt: skip
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SPLIT = re.compile(r"[^a-z0-9]+")

_USERINFO = re.compile(r"://[^/@\s?#\"'<>]*@")
_BEARER = re.compile(r"(?i)\b(bearer)(\s+)[^\s\"',;]+")
_QUERY_PARAM = re.compile(
    r"(?i)([?&;](?:api[_-]?key|key|token|access[_-]?token|auth[_-]?token|password|secret"
    r"|client[_-]?secret|sig|signature)=)[^&#\s\"']*"
)
_OPENAI_KEY_SHAPE = re.compile(r"\bsk-[A-Za-z0-9_-]{20,}")
_HF_TOKEN_SHAPE = re.compile(r"\bhf_[A-Za-z0-9]{30,}")
_MARKER = re.compile(r"(?i)[@=]|bearer|sk-|hf_")  # a text without one has nothing to mask


def _words(name: str) -> list[str]:
    """``name`` as lower-case words (``X-API-Key`` -> ``["x", "api", "key"]``)."""
    return [w for w in _SPLIT.split(_CAMEL.sub("_", name).lower()) if w]


def is_secret_name(name: str) -> bool:
    """Whether a mapping key names a secret value (``api_key``: yes, ``api_key_env``: no)."""
    words = _words(name)
    if not words or words[-1] in _NOT_SECRET_LAST_WORDS:
        return False
    if any(word in _SECRET_WORDS for word in words):
        return True
    last = words[-1]
    before = words[-2] if len(words) > 1 else ""
    if last == "key":
        return True
    return last == "token" and before not in _TOKEN_NOT_SECRET


def redact_text(text: str) -> str:
    """``text`` with URL credentials, bearer tokens, key query parameters and keys masked."""
    if not text or _MARKER.search(text) is None:
        return text
    text = _USERINFO.sub(f"://{MASK}@", text)
    text = _BEARER.sub(rf"\1\2{MASK}", text)
    text = _QUERY_PARAM.sub(rf"\1{MASK}", text)
    text = _OPENAI_KEY_SHAPE.sub(f"sk-{MASK}", text)
    return _HF_TOKEN_SHAPE.sub(f"hf_{MASK}", text)


def _holds_value(item: Any) -> bool:
    """Whether a secret-named entry holds something (not unset, empty or already masked)."""
    return (
        item is not None and item != MASK and not (isinstance(item, (str, list, dict)) and not item)
    )


def redact(value: Any) -> Any:
    """A copy of ``value`` with every secret masked (dicts, lists, tuples and strings walked).

    Entries whose key names a secret become ``"***"`` (``None`` and empty values stay, so a
    reader still sees that no key was set); strings go through :func:`redact_text`; other
    values are returned as they are. Mappings come back as plain dicts, tuples as tuples.
    """
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if isinstance(key, str) and is_secret_name(key) and _holds_value(item):
                out[key] = MASK
            else:
                out[key] = redact(item)
        return out
    if isinstance(value, list):
        return [redact(item) for item in value]
    if isinstance(value, tuple):
        return tuple(redact(item) for item in value)
    return value


def find_secrets(value: Any, where: str = "") -> list[str]:
    """Where ``value`` holds a secret: dotted paths of secret-named keys and credential URLs.

    Used to refuse configuration files that embed keys (a file is shared and committed);
    an empty list means nothing was found.
    """
    found: list[str] = []
    if isinstance(value, str):
        if redact_text(value) != value:
            found.append(where or "value")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            path = f"{where}.{key}" if where else str(key)
            if isinstance(key, str) and is_secret_name(key) and _holds_value(item):
                found.append(path)
            else:
                found.extend(find_secrets(item, path))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found.extend(find_secrets(item, f"{where}[{i}]"))
    return found
