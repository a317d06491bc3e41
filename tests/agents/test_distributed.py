"""Ray rollouts: local cluster with 2 CPUs, every wait bounded."""

import pytest

from raggym.agents.baselines import GoldEvidenceOracle
from raggym.agents.distributed import ray_rollout
from raggym.agents.rollout import rollout
from raggym_env import RAGEnv
from raggym_env.store import EpisodeStore, read_episodes

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'raggym[dist]')")


@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def make_env():
    return RAGEnv("hotpotqa", limit=12)


def test_ray_rollout_matches_a_local_rollout_and_stores_as_chunks_finish(ray_cluster, tmp_path):
    examples = make_env().examples
    store = EpisodeStore(tmp_path / "ray.jsonl")
    records = ray_rollout(
        make_env, GoldEvidenceOracle, examples, num_workers=2, batch_size=4, store=store,
        run_card={"run_id": "t"}, timeout_s=120,
    )  # fmt: skip
    local = {r.example_id: r for r in rollout(make_env(), GoldEvidenceOracle(), examples)}
    assert sorted(r.example_id for r in records) == sorted(local)
    for record in records:
        assert record.metrics == local[record.example_id].metrics
        assert record.run_card == {"run_id": "t"}
    assert len(list(read_episodes(tmp_path / "ray.jsonl"))) == 12


class DiesOnce:
    """An agent factory whose agent kills its worker process on one question."""

    name = "dies"

    def begin(self, example):
        if example.id == make_env().examples[5].id:
            import os

            os._exit(1)

    def act(self, observation):
        from raggym_env import Answer

        return Answer("yes")


def test_a_dead_worker_fails_its_chunk_and_the_rest_completes(ray_cluster):
    examples = make_env().examples
    records = ray_rollout(
        make_env, DiesOnce, examples, num_workers=2, batch_size=2, chunk_size=3,
        timeout_s=120,
    )  # fmt: skip
    assert len(records) == 12
    failed = [r for r in records if r.error]
    assert 3 <= len(failed) < 12
    assert examples[5].id in {r.example_id for r in failed}
    assert all("Error" in r.error for r in failed)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="num_workers"):
        ray_rollout(make_env, GoldEvidenceOracle, [], num_workers=0)


def test_rollout_command_with_ray_workers(ray_cluster, tmp_path, capsys):
    from raggym_env.cli import main

    out = tmp_path / "oracle.jsonl"
    args = ["rollout", "--task", "hotpotqa", "--agent", "oracle", "--limit", "8",
            "--workers", "2", "--batch-size", "2", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    assert "EM=1.000" in capsys.readouterr().out
    assert len(list(read_episodes(out))) == 8
