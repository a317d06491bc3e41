from __future__ import annotations

import enum
import hashlib
import importlib.metadata
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import raggym_env
from raggym_env import runcard
from raggym_env.runcard import git_revision, hash_file, hash_text, make_run_card


@dataclass
class RetrieverConfig:
    name: str = "bm25"
    k: int = 5
    index_dir: Path = Path("/tmp/index")


class Mode(enum.Enum):
    FAST = "fast"


@dataclass
class RunConfig:
    retriever: RetrieverConfig = field(default_factory=RetrieverConfig)
    tags: tuple[str, ...] = ("a", "b")
    mode: Mode = Mode.FAST
    seeds: frozenset[int] = frozenset({3, 1, 2})


@pytest.fixture
def no_git(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runcard, "git_revision", lambda: ("0123abc", False))


@pytest.mark.usefixtures("no_git")
def test_card_contents() -> None:
    card = make_run_card(
        config={"run": RunConfig(), "out": Path("runs/x")},
        corpus_hash="c" * 64,
        index_hash="i" * 64,
        prompt_hashes={"react": hash_text("prompt")},
        seeds=7,
        extra={"note": "smoke"},
    )
    assert card["package"] == "raggym"
    assert card["package_version"] == raggym_env.__version__
    assert card["git_revision"] == "0123abc"
    assert card["git_dirty"] is False
    assert card["python_version"].count(".") == 2
    assert card["platform"]
    assert "gymnasium" in card["libraries"]
    assert "numpy" in card["libraries"]
    assert card["config"] == {
        "run": {
            "retriever": {"name": "bm25", "k": 5, "index_dir": "/tmp/index"},
            "tags": ["a", "b"],
            "mode": "fast",
            "seeds": [1, 2, 3],
        },
        "out": "runs/x",
    }
    assert card["seeds"] == [7]
    assert card["extra"] == {"note": "smoke"}
    assert card["created_at"].endswith("+00:00")
    assert len(card["run_id"]) == 12
    assert json.loads(json.dumps(card)) == card


@pytest.mark.usefixtures("no_git")
def test_numpy_values_become_plain_json() -> None:
    np = pytest.importorskip("numpy")
    card = make_run_card(config={"lr": np.float32(0.5), "ks": np.arange(3), "n": np.int64(4)})
    assert card["config"] == {"lr": 0.5, "ks": [0, 1, 2], "n": 4}
    assert type(card["config"]["n"]) is int


@pytest.mark.usefixtures("no_git")
def test_run_id_ignores_timestamp_but_not_content(monkeypatch: pytest.MonkeyPatch) -> None:
    first = make_run_card(config={"k": 5}, seeds=[1, 2])
    second = make_run_card(config={"k": 5}, seeds=[1, 2])
    assert first["run_id"] == second["run_id"]
    assert make_run_card(config={"k": 6}, seeds=[1, 2])["run_id"] != first["run_id"]
    assert make_run_card(config={"k": 5}, seeds=[1, 3])["run_id"] != first["run_id"]
    monkeypatch.setattr(runcard, "git_revision", lambda: ("0123abc", True))
    assert make_run_card(config={"k": 5}, seeds=[1, 2])["run_id"] != first["run_id"]


@pytest.mark.usefixtures("no_git")
def test_library_versions_are_read_without_importing() -> None:
    heavy = {"torch", "vllm", "transformers", "trl", "faiss", "sentence_transformers"}
    before = set(sys.modules)
    card = make_run_card()
    assert not heavy & (set(sys.modules) - before)
    assert card["libraries"]["numpy"] == importlib.metadata.version("numpy")
    assert set(card["libraries"]) <= set(runcard.LIBRARIES)


@pytest.mark.usefixtures("no_git")
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"config": {"model": {"fn": print}}}, r"config\.model\.fn"),
        ({"config": {"items": [1, object()]}}, r"config\.items\[1\]"),
        ({"config": {"bad": {1: "x"}}}, r"config\.bad: key 1"),
        ({"extra": {"x": b"bytes"}}, r"extra\.x"),
        ({"seeds": [1, "2"]}, "seeds"),
        ({"seeds": True}, "seeds"),
    ],
)
def test_non_json_values_name_the_key(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        make_run_card(**kwargs)  # type: ignore[arg-type]


def test_hash_helpers(tmp_path: Path) -> None:
    assert hash_text("abc") == hashlib.sha256(b"abc").hexdigest()
    assert hash_text("é") == hashlib.sha256("é".encode()).hexdigest()
    path = tmp_path / "index.bin"
    payload = bytes(range(256)) * 10000
    path.write_bytes(payload)
    assert hash_file(path) == hashlib.sha256(payload).hexdigest()
    assert hash_file(str(path)) == hash_file(path)


needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


@needs_git
def test_git_revision_and_dirty_flag(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    assert git_revision(repo) == (None, None)  # no commit yet
    (repo / "a.py").write_text("x = 1\n")
    _git(repo, "add", "a.py")
    _git(repo, "commit", "-q", "-m", "init")
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert git_revision(repo) == (head, False)
    (repo / "notes.txt").write_text("untracked output\n")
    assert git_revision(repo) == (head, False)  # untracked files do not make it dirty
    (repo / "a.py").write_text("x = 2\n")
    assert git_revision(repo) == (head, True)


def test_git_revision_outside_a_checkout(tmp_path: Path) -> None:
    assert git_revision(tmp_path) == (None, None)
    assert git_revision(tmp_path / "venv" / "lib" / "site-packages") == (None, None)


def test_git_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no git executable on PATH
    assert git_revision(tmp_path) == (None, None)
    card = make_run_card()
    assert card["git_revision"] is None
    assert card["git_dirty"] is None
