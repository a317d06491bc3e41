"""Memory planning for dense indexes: size estimates, recommendations, refusals."""

import pytest

from raggym_env.retrieval.memory import (
    IndexPlan,
    IndexTooLargeError,
    auto_ivf_nlist,
    auto_pq_m,
    available_memory_bytes,
    check_fits,
    estimate_index_bytes,
    plan_index,
)

GIB = 2**30
N, D = 1_000_000, 384


def test_flat_estimate_for_a_million_minilm_vectors():
    flat = estimate_index_bytes(N, D, "flat")
    assert flat == 4 * N * D
    assert flat / GIB == pytest.approx(1.43, abs=0.01)


def test_hnsw_and_ivfpq_estimates():
    assert estimate_index_bytes(N, D, "hnsw", hnsw_m=32) == 4 * N * D + N * 32 * 2 * 4
    ivfpq = estimate_index_bytes(N, D, "ivfpq", ivf_nlist=4000, pq_m=48)
    assert ivfpq == N * (48 + 8) + 4 * 4000 * D + 4 * 256 * D
    assert ivfpq < estimate_index_bytes(N, D, "flat") / 20


def test_auto_parameters():
    assert auto_pq_m(384) == 96 and auto_pq_m(768) == 192
    assert auto_pq_m(100) == 25  # the largest divisor of 100 <= 25
    assert auto_pq_m(98) == 14  # 24 does not divide 98
    assert auto_ivf_nlist(N) == 4000
    assert auto_ivf_nlist(300) == 7  # capped at N // 39
    assert auto_ivf_nlist(10) == 1


def test_plan_prefers_flat_when_it_fits_comfortably():
    plan = plan_index(N, D, 16 * GIB)
    assert isinstance(plan, IndexPlan)
    assert (plan.index_type, plan.fits) == ("flat", True)
    assert plan.expected_bytes == estimate_index_bytes(N, D, "flat")
    assert set(plan.alternatives) == {"flat", "hnsw", "ivfpq"}
    assert check_fits(plan) is plan


def test_plan_falls_back_to_hnsw_then_ivfpq():
    assert plan_index(N, D, 2 * GIB).index_type == "hnsw"
    small = plan_index(N, D, GIB)
    assert (small.index_type, small.fits) == ("ivfpq", True)
    assert "GiB" in small.reason


def test_plan_for_large_corpora_and_prefer_exact():
    assert plan_index(5_000_000, D, 1000 * GIB).index_type == "hnsw"
    assert plan_index(100_000, D, 16 * GIB).index_type == "flat"
    assert plan_index(100_000, D, 16 * GIB, prefer_exact=False).index_type == "hnsw"
    assert plan_index(1_000, D, 16 * GIB, prefer_exact=False).index_type == "flat"


def test_nothing_fits_a_tiny_budget():
    plan = plan_index(N, D, 1_000_000)
    assert not plan.fits
    with pytest.raises(IndexTooLargeError, match="1,000,000 bytes") as info:
        check_fits(plan)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((0, D, GIB), ValueError),
        ((N, -1, GIB), ValueError),
        ((N, D, 0), ValueError),
        ((1.5, D, GIB), TypeError),
    ],
)
def test_plan_rejects_bad_inputs(args, error):
    with pytest.raises(error):
        plan_index(*args)


def test_estimate_rejects_bad_inputs():
    with pytest.raises(ValueError, match="index_type"):
        estimate_index_bytes(10, D, "ivf")
    with pytest.raises(ValueError, match="hnsw_m"):
        estimate_index_bytes(10, D, "hnsw", hnsw_m=0)
    with pytest.raises(ValueError, match="num_docs"):
        estimate_index_bytes(0, D, "flat")


def test_available_memory(tmp_path):
    assert available_memory_bytes() > 0
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 100 kB\nMemAvailable:    2048 kB\n")
    assert available_memory_bytes(meminfo) == 2048 * 1024
