"""Choosing a subset of a benchmark: ``all``, ``first:N``, ``last:N`` or a seeded ``sample:N@SEED``.

Selections are strings so they fit in configs, CLIs and run cards, and they are
deterministic: the same spec on the same examples always gives the same subset, in the
examples' original order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TypeVar

import numpy as np

__all__ = ["SELECT_FORMS", "select_examples"]

T = TypeVar("T")

SELECT_FORMS = ("all", "first:N", "last:N", "sample:N@SEED")
"""The accepted forms of a ``select`` spec."""

_PATTERN = re.compile(r"^(first|last):(\d+)$|^sample:(\d+)@(\d+)$")


def select_examples(
    examples: Sequence[T], select: str | None = None, limit: int | None = None
) -> list[T]:
    """Apply a ``select`` spec, then keep at most the first ``limit`` of the result.

    Args:
        examples: the full, ordered list.
        select: ``None`` or ``"all"`` (all), ``"first:N"``, ``"last:N"`` or
            ``"sample:N@SEED"`` (``N`` examples drawn without replacement by
            ``numpy.random.default_rng(SEED)``, kept in their original order). ``N`` larger
            than the list selects everything.
        limit: keep the first ``limit`` examples of the selection; ``None`` keeps all.

    Raises:
        ValueError: a malformed ``select`` or a negative ``limit``.
    """
    chosen = list(examples)
    if isinstance(select, str) and select.strip() == "all":
        select = None
    if select is not None:
        match = _PATTERN.match(select.strip()) if isinstance(select, str) else None
        if match is None:
            raise ValueError(
                f"invalid select {select!r}: expected one of {', '.join(SELECT_FORMS)} "
                "with non-negative integers"
            )
        kind, count, sample_n, seed = match.groups()
        if kind == "first":
            chosen = chosen[: int(count)]
        elif kind == "last":
            n = int(count)
            chosen = chosen[len(chosen) - n :] if n else []
        else:
            n = min(int(sample_n), len(chosen))
            rng = np.random.default_rng(int(seed))
            picked = np.sort(rng.choice(len(chosen), size=n, replace=False))
            chosen = [chosen[int(i)] for i in picked]
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValueError(f"limit must be a non-negative integer or None, got {limit!r}")
        chosen = chosen[:limit]
    return chosen
