"""Intervals and paired tests for benchmark results (numpy only).

Every mean a leaderboard reports gets a percentile bootstrap interval over questions
(:func:`bootstrap_ci`); runs repeated over seeds get a mean and sample standard deviation
across seeds (:func:`seed_summary`); two runs on the same questions are compared pair by
pair: the difference of means with a paired bootstrap interval (:func:`paired_bootstrap`),
and a p-value from an exact McNemar test for 0/1 metrics (:func:`mcnemar_exact`) or a
sign-flip permutation test for continuous ones (:func:`sign_flip_test`);
:func:`paired_test` picks the test and returns both.

All resampling is seeded, so the same input always gives the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "PairedResult",
    "SeedSummary",
    "bootstrap_ci",
    "bootstrap_cis",
    "mcnemar_exact",
    "paired_bootstrap",
    "paired_test",
    "seed_summary",
    "sign_flip_test",
]

_CHUNK_ELEMENTS = 2_000_000
"""Resampled values held in memory at once (bounds memory for large samples)."""

_EXACT_FLIPS = 16
"""Up to this many non-zero differences the sign-flip test enumerates every sign pattern."""

FloatArray = npt.NDArray[np.float64]


def _array(values: Sequence[float] | FloatArray, name: str = "values") -> FloatArray:
    """``values`` as a 1-D float array; a clear :class:`ValueError` when they are not finite."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numbers: {exc}") from None
    if array.ndim != 1:
        raise ValueError(f"{name} must be a flat sequence of numbers, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        bad = int(np.flatnonzero(~np.isfinite(array))[0])
        raise ValueError(f"{name} must be finite numbers; position {bad} is {array[bad]!r}")
    return array


def _pair(
    a: Sequence[float] | FloatArray, b: Sequence[float] | FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Two finite samples of equal length (one value per paired question each)."""
    first, second = _array(a, "a"), _array(b, "b")
    if first.shape != second.shape:
        raise ValueError(f"paired samples need equal lengths, got {first.size} and {second.size}")
    return first, second


def _check(confidence: float, resamples: int) -> None:
    """Reject a confidence outside (0, 1) or a resample count below 1."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 1:
        raise ValueError(f"resamples must be a positive integer, got {resamples!r}")


def _bootstrap_means(matrix: FloatArray, resamples: int, seed: int) -> FloatArray:
    """Means of ``resamples`` bootstrap resamples of the columns of ``matrix`` (rows x n).

    Every row is resampled with the same question indices, so one call serves several
    metrics of the same questions. Returns an array of shape ``(resamples, rows)``.
    """
    rows, n = matrix.shape
    rng = np.random.default_rng(seed)
    out = np.empty((resamples, rows), dtype=np.float64)
    chunk = max(1, _CHUNK_ELEMENTS // max(1, n))
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        # How often each question is drawn in each resample, then one matrix product.
        offsets = (np.arange(stop - start) * n)[:, None]
        counts = np.bincount((idx + offsets).ravel(), minlength=(stop - start) * n)
        out[start:stop] = counts.reshape(stop - start, n) @ matrix.T / n
    return out


def _interval(draws: FloatArray, confidence: float, point: float) -> tuple[float, float]:
    """The percentile interval of ``draws``; ``(point, point)`` when they do not vary."""
    if np.all(draws == draws[0]):
        return (point, point)
    tail = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(draws, [tail, 1.0 - tail])
    return (float(lo), float(hi))


def bootstrap_ci(
    values: Sequence[float] | FloatArray,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float] | None:
    """A percentile bootstrap interval for the mean of ``values``; ``None`` for no values.

    Assumes the values are independent draws (one per question) from the population the
    mean describes; the percentile interval is close to nominal from a few dozen values
    and slightly narrow for fewer. A sample whose values are all equal gives ``(v, v)``.

    Raises:
        ValueError: a value is not a finite number, or a bad confidence / resample count.
    """
    _check(confidence, resamples)
    array = _array(values)
    if array.size == 0:
        return None
    if np.all(array == array[0]):
        return (float(array[0]), float(array[0]))
    point = float(array.mean())
    draws = _bootstrap_means(array[None, :], resamples, seed)[:, 0]
    return _interval(draws, confidence, point)


def bootstrap_cis(
    columns: dict[str, Sequence[float]],
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """:func:`bootstrap_ci` of several metrics over the same questions, in one pass.

    Every column must have the same length (the questions); the same resampled questions
    serve every metric. Empty columns give no entry.
    """
    _check(confidence, resamples)
    arrays = {name: _array(values, name) for name, values in columns.items()}
    sizes = {array.size for array in arrays.values()}
    if len(sizes) > 1:
        raise ValueError(f"every metric needs one value per question, got lengths {sizes}")
    if not arrays or sizes == {0}:
        return {}
    names = list(arrays)
    matrix = np.stack([arrays[name] for name in names])
    varying = [i for i, row in enumerate(matrix) if not np.all(row == row[0])]
    result = {name: (float(matrix[i, 0]),) * 2 for i, name in enumerate(names)}
    if varying:
        draws = _bootstrap_means(matrix[varying], resamples, seed)
        for column, i in enumerate(varying):
            point = float(matrix[i].mean())
            result[names[i]] = _interval(draws[:, column], confidence, point)
    return {name: (lo, hi) for name, (lo, hi) in result.items()}


@dataclass(frozen=True)
class SeedSummary:
    """A metric across seeds: the mean of the per-seed values, their sample std, and n.

    ``std`` is ``None`` with a single seed (a sample standard deviation needs two).
    """

    mean: float
    std: float | None
    n: int

    def to_dict(self) -> dict[str, float | int | None]:
        """A JSON-ready mapping."""
        return {"mean": self.mean, "std": self.std, "n": self.n}


def seed_summary(values: Sequence[float] | FloatArray) -> SeedSummary | None:
    """Mean and sample standard deviation (``ddof=1``) of one metric over seeds.

    The spread describes how much a result moves with the seed alone; it is not an
    interval over questions. ``None`` for no values.
    """
    array = _array(values)
    if array.size == 0:
        return None
    std = float(array.std(ddof=1)) if array.size > 1 else None
    return SeedSummary(float(array.mean()), std, int(array.size))


@dataclass(frozen=True)
class PairedResult:
    """B - A over paired questions: means, difference, its interval and a p-value.

    Attributes:
        n: paired questions.
        mean_a: A's mean over them.
        mean_b: B's mean over them.
        diff: ``mean_b - mean_a``.
        ci95: the bootstrap interval of ``diff`` (``None`` without pairs).
        p_value: two-sided p-value of the null "no difference" under :attr:`test`.
        test: ``mcnemar-exact``, ``sign-flip-exact``, ``sign-flip-mc`` or
            ``paired-bootstrap``.
    """

    n: int
    mean_a: float
    mean_b: float
    diff: float
    ci95: tuple[float, float] | None
    p_value: float
    test: str

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready mapping."""
        return {
            "n": self.n,
            "mean_a": self.mean_a,
            "mean_b": self.mean_b,
            "diff": self.diff,
            "ci95": list(self.ci95) if self.ci95 is not None else None,
            "p_value": self.p_value,
            "test": self.test,
        }


def paired_bootstrap(
    a: Sequence[float] | FloatArray,
    b: Sequence[float] | FloatArray,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> PairedResult:
    """The difference of means B - A with a paired bootstrap interval and p-value.

    Resamples questions (pairs), so the interval keeps the correlation between A and B on
    the same question. Assumes the pairs are independent draws. The two-sided p-value is
    the share of bootstrap differences, recentred on 0, at least as far from 0 as the
    observed one (``(count + 1) / (resamples + 1)``, never 0).

    Raises:
        ValueError: unequal lengths, no pairs, or a non-finite value.
    """
    _check(confidence, resamples)
    first, second = _pair(a, b)
    if first.size == 0:
        raise ValueError("paired_bootstrap needs at least one pair")
    diffs = second - first
    observed = float(diffs.mean())
    if np.all(diffs == diffs[0]):
        p_value = 1.0 if observed == 0.0 else 1.0 / (resamples + 1)
        ci: tuple[float, float] = (observed, observed)
    else:
        draws = _bootstrap_means(diffs[None, :], resamples, seed)[:, 0]
        ci = _interval(draws, confidence, observed)
        far = np.abs(draws - observed) >= abs(observed) - 1e-12
        p_value = float((np.count_nonzero(far) + 1) / (resamples + 1))
    return PairedResult(
        int(first.size), float(first.mean()), float(second.mean()), observed, ci,
        min(1.0, p_value), "paired-bootstrap",
    )  # fmt: skip


def sign_flip_test(
    a: Sequence[float] | FloatArray,
    b: Sequence[float] | FloatArray,
    resamples: int = 10_000,
    seed: int = 0,
) -> tuple[float, str]:
    """Two-sided paired permutation (sign-flip) test of mean(B - A) = 0: ``(p, method)``.

    Assumes that under the null each pair's difference is as likely to be positive as
    negative (A and B exchangeable within a pair); pairs are independent. With at most 16
    non-zero differences every sign pattern is enumerated (``sign-flip-exact``); beyond
    that ``resamples`` random patterns are drawn (``sign-flip-mc``, p =
    ``(count + 1) / (resamples + 1)``). Zero differences cannot change sign and are kept.

    Raises:
        ValueError: unequal lengths or a non-finite value.
    """
    _check(0.5, resamples)
    first, second = _pair(a, b)
    diffs = second - first
    nonzero = diffs[diffs != 0.0]
    observed = abs(float(nonzero.sum()))
    if nonzero.size == 0:
        return 1.0, "sign-flip-exact"
    tolerance = 1e-9 * max(1.0, float(np.abs(nonzero).sum()))
    if nonzero.size <= _EXACT_FLIPS:
        patterns = (np.arange(2**nonzero.size)[:, None] >> np.arange(nonzero.size)) & 1
        sums = np.abs(((2 * patterns - 1) * nonzero).sum(axis=1))
        return float(np.mean(sums >= observed - tolerance)), "sign-flip-exact"
    rng = np.random.default_rng(seed)
    count = 0
    chunk = max(1, _CHUNK_ELEMENTS // nonzero.size)
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        signs = rng.integers(0, 2, size=(size, nonzero.size)) * 2 - 1
        count += int(np.count_nonzero(np.abs(signs @ nonzero) >= observed - tolerance))
    return float((count + 1) / (resamples + 1)), "sign-flip-mc"


def _binary(array: FloatArray, name: str) -> None:
    """Reject a sample that is not all 0 and 1."""
    if not np.all((array == 0.0) | (array == 1.0)):
        raise ValueError(f"{name} must hold only 0 and 1 for McNemar's test")


def mcnemar_exact(a: Sequence[float] | FloatArray, b: Sequence[float] | FloatArray) -> float:
    """Exact McNemar test on paired 0/1 outcomes: the two-sided p-value.

    Only discordant pairs count: with ``b01`` questions right for B only and ``b10`` right
    for A only, the null (either run is as likely to win a discordant pair) makes ``b01``
    Binomial(b01 + b10, 1/2); p = min(1, 2 P(X <= min(b01, b10))). Assumes independent
    pairs. No discordant pair gives 1.

    Raises:
        ValueError: unequal lengths, or a value other than 0 and 1.
    """
    first, second = _pair(a, b)
    _binary(first, "a")
    _binary(second, "b")
    b01 = int(np.count_nonzero((first == 0.0) & (second == 1.0)))
    b10 = int(np.count_nonzero((first == 1.0) & (second == 0.0)))
    n = b01 + b10
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(b01, b10) + 1))
    return min(1.0, 2 * tail / 2**n)


def paired_test(
    a: Sequence[float] | FloatArray,
    b: Sequence[float] | FloatArray,
    *,
    binary: bool,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> PairedResult:
    """B - A with its paired bootstrap interval and the p-value of the test for the metric.

    ``binary`` metrics (EM, accuracy, cover-EM) take :func:`mcnemar_exact`; continuous
    ones (F1, recall, searches, ...) take :func:`sign_flip_test`. A binary metric whose
    values are not all 0/1 falls back to the sign-flip test.
    """
    result = paired_bootstrap(a, b, confidence=confidence, resamples=resamples, seed=seed)
    first, second = _pair(a, b)
    is_binary = binary and bool(
        np.all(np.isin(first, (0.0, 1.0))) and np.all(np.isin(second, (0.0, 1.0)))
    )
    if is_binary:
        p_value, test = mcnemar_exact(first, second), "mcnemar-exact"
    else:
        p_value, test = sign_flip_test(first, second, resamples=max(resamples, 10_000), seed=seed)
    return PairedResult(
        result.n, result.mean_a, result.mean_b, result.diff, result.ci95, p_value, test
    )
