"""Intervals and paired tests: hand-computed cases and a known-distribution coverage check."""

import itertools
import math

import numpy as np
import pytest

from raggym.benchmarks.stats import (
    bootstrap_ci,
    bootstrap_cis,
    mcnemar_exact,
    paired_bootstrap,
    paired_test,
    seed_summary,
    sign_flip_test,
)


def test_bootstrap_ci_matches_the_enumerated_bootstrap_distribution():
    # All 4**4 = 256 equally likely resamples of [1, 2, 3, 10]: their means' 2.5% and
    # 97.5% quantiles are 1.5 and 8.0; the Monte Carlo bootstrap lands on the same points.
    values = [1.0, 2.0, 3.0, 10.0]
    means = [sum(c) / 4 for c in itertools.product(values, repeat=4)]
    exact = np.quantile(means, [0.025, 0.975])
    assert list(exact) == [1.5, 8.0]
    assert bootstrap_ci(values, resamples=100_000) == (1.5, 8.0)


def test_bootstrap_ci_edge_cases_and_determinism():
    assert bootstrap_ci([]) is None
    assert bootstrap_ci([0.4, 0.4, 0.4]) == (0.4, 0.4)
    sample = [0.0, 1.0, 1.0, 0.0, 1.0, 0.5, 0.25]
    assert bootstrap_ci(sample, seed=3) == bootstrap_ci(sample, seed=3)
    lo, hi = bootstrap_ci(sample)
    assert lo < sum(sample) / len(sample) < hi
    wider = bootstrap_ci(sample, confidence=0.99)
    assert wider[0] <= lo and wider[1] >= hi


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: bootstrap_ci([1.0, math.nan]), "finite"),
        (lambda: bootstrap_ci(["a"]), "numbers"),
        (lambda: bootstrap_ci([[1.0]]), "flat"),
        (lambda: bootstrap_ci([1.0], confidence=1.0), "confidence"),
        (lambda: bootstrap_ci([1.0], resamples=0), "resamples"),
        (lambda: paired_bootstrap([1.0], [1.0, 2.0]), "equal lengths"),
        (lambda: paired_bootstrap([], []), "at least one pair"),
        (lambda: mcnemar_exact([0.0, 0.5], [1.0, 1.0]), "only 0 and 1"),
        (lambda: sign_flip_test([1.0], [math.inf]), "finite"),
        (lambda: bootstrap_cis({"a": [1.0], "b": [1.0, 2.0]}), "one value per question"),
    ],
)
def test_bad_input_is_a_clear_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_coverage_of_the_interval_on_a_known_distribution():
    # 300 samples of 200 Bernoulli(0.4) draws: the 95% interval holds 0.4 about 95% of
    # the time (the percentile bootstrap runs a little under nominal at this size).
    rng = np.random.default_rng(20261206)
    samples = rng.binomial(1, 0.4, size=(300, 200)).astype(float)
    hits = 0
    for i, sample in enumerate(samples):
        lo, hi = bootstrap_ci(sample, resamples=1000, seed=i)
        hits += lo <= 0.4 <= hi
    assert 0.92 <= hits / 300 <= 0.98


def test_bootstrap_cis_shares_the_questions_and_keeps_constant_metrics_exact():
    cis = bootstrap_cis({"em": [0, 1, 1, 0, 1], "steps": [2, 2, 2, 2, 2]}, seed=1)
    assert cis["steps"] == (2.0, 2.0)
    assert cis["em"] == bootstrap_ci([0, 1, 1, 0, 1], seed=1)
    assert bootstrap_cis({"none": []}) == {}


def test_mcnemar_exact_against_binomial_coefficients():
    # A right only on 1 question, B right only on 5 (2 concordant pairs): n = 6 discordant,
    # p = 2 * (C(6,0) + C(6,1)) / 2**6 = 14 / 64.
    a = [1, 0, 0, 0, 0, 0, 1, 0]
    b = [0, 1, 1, 1, 1, 1, 1, 0]
    assert mcnemar_exact(a, b) == pytest.approx(14 / 64)
    assert mcnemar_exact(b, a) == pytest.approx(14 / 64)
    assert mcnemar_exact([1, 0], [1, 0]) == 1.0  # no discordant pair
    assert mcnemar_exact([0, 1], [1, 0]) == 1.0  # 1 vs 1: min(1, 2 * 3/4)
    assert mcnemar_exact([0] * 10, [1] * 10) == pytest.approx(2 / 2**10)


def test_sign_flip_exact_and_monte_carlo():
    # Differences 1, 2, 3: of the 8 sign patterns only +++ and --- reach |sum| >= 6.
    assert sign_flip_test([0, 0, 0], [1, 2, 3]) == (0.25, "sign-flip-exact")
    # Differences 1, 1, -1, 2 (|sum| 3): |sum| >= 3 needs the 2's sign shared by a net
    # positive of the three 1s (4 of 8 patterns with sum 1 or 3), and mirrored: 8/16.
    assert sign_flip_test([0, 0, 1, 0], [1, 1, 0, 2]) == (0.5, "sign-flip-exact")
    assert sign_flip_test([1, 2], [1, 2]) == (1.0, "sign-flip-exact")
    # 40 differences of +1: Monte Carlo, only all-plus/all-minus patterns reach 40.
    p, method = sign_flip_test([0.0] * 40, [1.0] * 40, resamples=999)
    assert method == "sign-flip-mc" and p == pytest.approx(1 / 1000)
    rng = np.random.default_rng(5)
    noise = rng.normal(size=60)
    p_null, _ = sign_flip_test(np.zeros(60), noise - noise.mean())
    assert p_null > 0.5


def test_paired_bootstrap_and_paired_test():
    a = [0.0, 0.2, 0.5, 0.4, 0.9, 0.1, 0.3, 0.6]
    b = [x + 0.1 for x in a]
    same = paired_bootstrap(a, b)
    assert same.diff == pytest.approx(0.1) and same.ci95 == pytest.approx((0.1, 0.1))
    assert same.n == 8 and same.p_value < 0.01
    assert paired_bootstrap(a, a).p_value == 1.0
    mixed = paired_bootstrap(a, [0.1, 0.1, 0.6, 0.3, 0.9, 0.2, 0.2, 0.7])
    assert mixed.ci95[0] < mixed.diff < mixed.ci95[1] and 0 < mixed.p_value <= 1
    binary = paired_test([1, 0, 0, 0, 0, 0, 1, 0], [0, 1, 1, 1, 1, 1, 1, 0], binary=True)
    assert binary.test == "mcnemar-exact" and binary.p_value == pytest.approx(14 / 64)
    assert binary.diff == pytest.approx(4 / 8) and binary.to_dict()["ci95"] is not None
    continuous = paired_test([0, 0, 0], [1, 2, 3], binary=False)
    assert continuous.test == "sign-flip-exact" and continuous.p_value == 0.25
    # A "binary" metric with values other than 0/1 falls back to the sign-flip test.
    assert paired_test([0, 0, 0], [1, 2, 3], binary=True).test == "sign-flip-exact"


def test_seed_summary():
    summary = seed_summary([0.2, 0.4, 0.6])
    assert summary.mean == pytest.approx(0.4) and summary.std == pytest.approx(0.2)
    assert summary.n == 3
    assert seed_summary([0.5]).std is None
    assert seed_summary([]) is None
