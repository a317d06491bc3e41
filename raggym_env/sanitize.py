r"""Make untrusted text safe to keep, encode and show: no lone surrogates, a bounded length.

Model replies, HTTP bodies and old episode files can hold strings Python accepts but UTF-8
does not: a lone surrogate (``"\ud800"``, e.g. from a JSON ``\ud800`` escape) makes
``str.encode("utf-8")`` raise, so one such reply would break the next request, the episode
file and every report written from it. :func:`scrub_surrogates` replaces each lone
surrogate with U+FFFD (a high/low pair becomes the character it encodes). It is applied
where text enters the system (model completions) and where it leaves it (HTTP request
bodies, the episode store, the report writers).

Model replies are also unbounded: a misbehaving server can return megabytes, which an
agent would store in the episode and feed back in every later prompt. :func:`admit_reply`
scrubs a reply and caps it at :data:`DEFAULT_MAX_REPLY_CHARS` characters (configurable per
agent and critic), ending a cut text with a visible marker such as
``…[truncated 19,968,000 chars]``.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = [
    "DEFAULT_MAX_REPLY_CHARS",
    "admit_reply",
    "cap_text",
    "check_max_chars",
    "scrub_data",
    "scrub_surrogates",
    "truncation_marker",
]

DEFAULT_MAX_REPLY_CHARS = 32_000
"""Most characters of a model reply an agent keeps, parses, stores and feeds back."""

_SURROGATE = re.compile("[\ud800-\udfff]")


def scrub_surrogates(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD, so it always encodes as UTF-8.

    A high surrogate followed by a low one is joined into the character the pair encodes.
    Text without surrogates is returned unchanged (the same object).
    """
    if text.isascii() or _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def scrub_data(data: Any) -> Any:
    """JSON-like ``data`` (dicts, lists, strings, numbers) with every string scrubbed.

    Returns ``data`` itself when no string holds a surrogate.
    """
    text = json.dumps(data, ensure_ascii=False)
    clean = scrub_surrogates(text)
    return data if clean is text else json.loads(clean)


def truncation_marker(cut: int) -> str:
    """The marker ending a text cut by ``cut`` characters: ``…[truncated 1,234 chars]``."""
    return f"…[truncated {cut:,} chars]"


def check_max_chars(max_chars: int, name: str = "max_reply_chars") -> int:
    """Return ``max_chars`` if it is a positive int, else raise ``ValueError`` naming ``name``."""
    if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 1:
        raise ValueError(f"{name} must be a positive int (characters), got {max_chars!r}")
    return max_chars


def cap_text(text: str, max_chars: int) -> str:
    """The first ``max_chars`` characters of ``text`` and a :func:`truncation_marker` if cut."""
    if len(text) <= max_chars:
        return text
    return text[:max_chars] + truncation_marker(len(text) - max_chars)


def admit_reply(text: str, max_chars: int = DEFAULT_MAX_REPLY_CHARS) -> str:
    """A model reply as the system keeps it: surrogates scrubbed, capped at ``max_chars``."""
    return cap_text(scrub_surrogates(text), max_chars)
