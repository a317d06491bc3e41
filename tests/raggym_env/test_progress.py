"""Progress bars: the switch (argument, set_progress, RAGGYM_PROGRESS), stderr, same results."""

import pytest

from raggym.agents.baselines import GoldEvidenceOracle
from raggym.agents.rollout import BatchedRunner, rollout
from raggym.testing.tasks import make_tiny_env, tiny_corpus
from raggym_env import progress as progress_module
from raggym_env.progress import PROGRESS_ENV, progress, progress_enabled, set_progress
from raggym_env.retrieval.bm25 import BM25Retriever


@pytest.fixture(autouse=True)
def _default_switch(monkeypatch):
    """Each test starts from the default decision (no override, no environment variable)."""
    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    set_progress(None)
    yield
    set_progress(None)


def test_the_switch_decides_in_order(monkeypatch):
    # Under pytest stderr is captured (not a terminal) and no kernel runs: auto is off.
    assert progress_enabled() is False
    monkeypatch.setenv(PROGRESS_ENV, "1")
    assert progress_enabled() is True
    monkeypatch.setenv(PROGRESS_ENV, "off")
    assert progress_enabled() is False
    set_progress(True)  # the process-wide switch beats the environment variable
    assert progress_enabled() is True
    assert progress_enabled(False) is False  # and a call's own argument beats both
    set_progress(None)
    monkeypatch.setattr(progress_module, "_stderr_is_tty", lambda: True)
    monkeypatch.delenv(PROGRESS_ENV)
    assert progress_enabled() is True  # auto: on in a terminal
    with pytest.raises(TypeError, match="True, False or None"):
        set_progress("yes")  # type: ignore[arg-type]


def test_a_bar_writes_to_stderr_only_when_enabled(capsys):
    assert list(progress(range(3), desc="counting", enabled=True)) == [0, 1, 2]
    out, err = capsys.readouterr()
    assert out == "" and "counting" in err and "3/3" in err
    assert list(progress(range(3), desc="counting", enabled=False)) == [0, 1, 2]
    assert capsys.readouterr() == ("", "")
    with progress(total=4, desc="by hand", enabled=False) as bar:
        bar.update(4)
        bar.set_postfix(failed=1)
    assert capsys.readouterr() == ("", "")
    with pytest.raises(TypeError, match="wraps no iterable"):
        list(progress(total=2, enabled=False))


def _summary(records):
    return [(r.example_id, r.final_answer, r.metrics.get("em"), len(r.steps)) for r in records]


def test_rollouts_show_a_bar_and_keep_their_results(capsys, monkeypatch):
    env = make_tiny_env(retriever="fake")
    quiet = rollout(env, GoldEvidenceOracle(), show_progress=False)
    assert capsys.readouterr().err == ""
    shown = rollout(env, GoldEvidenceOracle(), show_progress=True)
    err = capsys.readouterr().err
    assert "rollout" in err and "3/3" in err
    assert _summary(quiet) == _summary(shown) and len(quiet) == 3

    monkeypatch.setenv(PROGRESS_ENV, "1")  # the environment variable reaches the batched runner
    runner = BatchedRunner(lambda: make_tiny_env(retriever="fake"), GoldEvidenceOracle())
    batched = runner.run(env.examples, progress_desc="tiny batch")
    out, err = capsys.readouterr()
    assert out == "" and "tiny batch" in err and "3/3" in err
    key = sorted
    assert key(_summary(batched)) == key(_summary(quiet))
    runner.run(env.examples, show_progress=False)
    assert capsys.readouterr().err == ""


def test_bm25_builds_show_a_bar_and_build_the_same_index(capsys):
    corpus = tiny_corpus()
    quiet = BM25Retriever.build(corpus, show_progress=False)
    assert capsys.readouterr().err == ""
    shown = BM25Retriever.build(corpus, show_progress=True)
    err = capsys.readouterr().err
    assert "BM25 index" in err and "6/6" in err
    assert quiet.index_hash == shown.index_hash
    query = ["Which rocket launched the probe to Uranus?"]
    assert [d.document.id for d in quiet.search(query, 3)[0]] == [
        d.document.id for d in shown.search(query, 3)[0]
    ]
