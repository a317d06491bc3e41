"""Tests of ``raggym index`` and the ``serve-retriever`` argument wiring (offline, fast)."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import pytest

from raggym_env import DiskCorpus, Document, clear_caches, is_corpus_store, serve_cli, write_store
from raggym_env.cli import _human_bytes, main, parse_option, parse_options
from raggym_env.retrieval import bm25 as bm25_module
from raggym_env.retrieval import dense, factory
from raggym_env.retrieval.bm25 import BM25Retriever
from raggym_env.serve_cli import retriever_factory_from_args, serve_command


def _jsonl(path: Path, n: int = 5) -> Path:
    path.write_text(
        "\n".join(
            json.dumps({"title": f"T{i}", "text": f"passage {i} about animal {w}"})
            for i, w in enumerate(["cats", "dogs", "owls", "frogs", "bees"][:n])
        )
    )
    return path


def _summary(out: str) -> dict[str, str]:
    """The ``name  value`` summary lines printed by ``raggym index``."""
    fields = {}
    for line in out.splitlines():
        match = re.match(r"^  (\S.*?)\s{2,}(.*)$", line)
        if match:
            fields[match.group(1)] = match.group(2)
    return fields


# --option parsing -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("k1=1.2", ("k1", 1.2)),
        ("cache=false", ("cache", False)),
        ("weights=[1, 2]", ("weights", [1, 2])),
        ('dense={"index_type": "hnsw"}', ("dense", {"index_type": "hnsw"})),
        ("model=/models/minilm", ("model", "/models/minilm")),
        ("name=", ("name", "")),
        ("expr=a=b", ("expr", "a=b")),
        ('quoted="42"', ("quoted", "42")),
    ],
)
def test_parse_option_json_else_string(text: str, expected: tuple[str, Any]) -> None:
    assert parse_option(text) == expected


def test_parse_options_later_wins_and_rejects_malformed() -> None:
    assert parse_options(["a=1", "b=x", "a=2"]) == {"a": 2, "b": "x"}
    assert parse_options(None) == {}
    for bad in ("KEY", "=1"):
        with pytest.raises(ValueError, match="KEY=VALUE"):
            parse_option(bad)


def test_malformed_option_is_a_one_line_user_error(tmp_path, capsys) -> None:
    corpus = _jsonl(tmp_path / "c.jsonl")
    code = main(["index", "--corpus", str(corpus), "--out", str(tmp_path / "i"), "--option", "KEY"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("raggym index: error:") and "KEY=VALUE" in err
    assert len(err.strip().splitlines()) == 1


def test_unknown_builder_option_is_a_user_error(tmp_path, capsys) -> None:
    corpus = _jsonl(tmp_path / "c.jsonl")
    out = str(tmp_path / "i")
    assert main(["index", "--corpus", str(corpus), "--out", out, "--option", "colour=1"]) == 2
    assert "bad --option" in capsys.readouterr().err


def test_dense_flags_rejected_for_bm25(tmp_path, capsys) -> None:
    corpus = _jsonl(tmp_path / "c.jsonl")
    out = str(tmp_path / "i")
    assert main(["index", "--corpus", str(corpus), "--out", out, "--index-type", "hnsw"]) == 2
    assert "--index-type only apply to --retriever dense or hybrid" in capsys.readouterr().err


# raggym index ---------------------------------------------------------------------------


def test_bm25_options_reach_the_builder_and_summary(tmp_path, capsys) -> None:
    corpus = _jsonl(tmp_path / "c.jsonl")
    out = tmp_path / "idx"
    argv = ["index", "--corpus", str(corpus), "--out", str(out), "--option", "k1=0.9"]
    assert main([*argv, "--retriever", "bm25"]) == 0
    printed = capsys.readouterr().out
    assert "built BM25 index of 5 documents" in printed
    summary = _summary(printed)
    assert summary["documents"] == "5"
    assert summary["source"] == str(corpus)
    assert "chunking" not in summary
    assert summary["mean words/doc"] == "5.0"
    assert summary["retriever"] == "bm25 {'k1': 0.9}"
    assert json.loads((out / "raggym_index.json").read_text())["params"]["k1"] == 0.9
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    assert size > 0 and summary["size on disk"] == _human_bytes(size)
    assert summary["corpus hash"] == BM25Retriever.load(out).corpus.content_hash[:12]
    assert f"'index_dir': '{out}', 'k1': 0.9" in summary["env usage"]
    assert summary["server usage"] == (
        f"raggym serve-retriever --corpus {corpus} --retriever bm25 --index-dir {out} "
        "--option k1=0.9"
    )


def test_text_file_chunking_summary_is_exact(tmp_path, capsys) -> None:
    text = tmp_path / "notes.txt"
    text.write_text(" ".join(f"w{i}" for i in range(25)))
    out = tmp_path / "idx"
    argv = ["index", "--corpus", str(text), "--out", str(out), "--chunk-tokens", "10"]
    assert main([*argv, "--overlap", "2"]) == 0
    summary = _summary(capsys.readouterr().out)
    # windows start at words 0, 8, 16: 10 + 10 + 9 words
    assert summary["documents"] == "3"
    assert summary["chunking"].startswith(
        "3 chunks from 1 .txt file (10 words per chunk, 2 overlap"
    )
    assert summary["mean words/doc"] == "9.7"
    assert (
        "load_corpus(" in summary["env usage"]
        and "chunk_tokens=10, overlap=2" in (summary["env usage"])
    )
    assert "--chunk-tokens 10 --overlap 2" in summary["server usage"]


def test_text_directory_counts_files(tmp_path, capsys) -> None:
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("one two three")
    (folder / "sub" / "b.txt").write_text("four five six seven eight")
    assert main(["index", "--corpus", str(folder), "--out", str(tmp_path / "idx")]) == 0
    summary = _summary(capsys.readouterr().out)
    assert summary["documents"] == "2"
    assert summary["chunking"].startswith("2 chunks from 2 .txt files (400 words per chunk")
    assert summary["mean words/doc"] == "4.0"
    assert "load_corpus(" not in summary["env usage"]


def test_task_index_summary(tmp_path, capsys) -> None:
    out = tmp_path / "idx"
    assert main(["index", "--task", "bamboogle", "--out", str(out)]) == 0
    summary = _summary(capsys.readouterr().out)
    assert summary["source"] == "task bamboogle"
    assert summary["env usage"].startswith("gym.make('RAGGym/Bamboogle-v0', retriever='bm25'")
    assert summary["server usage"].startswith("raggym serve-retriever --task bamboogle")


def test_dense_index_with_bundled_model(tmp_path, capsys) -> None:
    corpus = _jsonl(tmp_path / "c.jsonl")
    out = tmp_path / "idx"
    argv = ["index", "--corpus", str(corpus), "--out", str(out), "--retriever", "dense"]
    assert main([*argv, "--index-type", "flat", "--batch-size", "2"]) == 0
    summary = _summary(capsys.readouterr().out)
    assert summary["retriever"] == "dense {'index_type': 'flat', 'batch_size': 2}"
    manifest = json.loads((out / "raggym_index.json").read_text())
    assert manifest["backend"] == "dense"
    # batch_size does not change the index, so loaders need not repeat it
    assert "batch_size" not in summary["server usage"]
    assert summary["server usage"].endswith(f"--index-dir {out} --option index_type=flat")


def test_hybrid_writes_member_dirs_the_env_loads(tmp_path, capsys, monkeypatch) -> None:
    from raggym_env.env import RAGEnv
    from raggym_env.types import QAExample

    corpus = _jsonl(tmp_path / "c.jsonl")
    out = tmp_path / "idx"
    argv = ["index", "--corpus", str(corpus), "--out", str(out), "--retriever", "hybrid"]
    assert main(argv) == 0
    assert "built hybrid" in capsys.readouterr().out
    assert (out / "bm25" / "raggym_index.json").is_file()
    assert (out / "dense" / "raggym_index.json").is_file()

    # The environment must load both saved members, not rebuild them.
    clear_caches()

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the saved index must be loaded, not rebuilt")

    monkeypatch.setattr(dense, "_encode_corpus", fail)
    monkeypatch.setattr(bm25_module, "_build_files", fail)
    example = QAExample(id="q1", question="Which passage is about owls?", answers=["T2"])
    env = RAGEnv(
        "custom",
        examples=[example],
        corpus=corpus,
        retriever="hybrid",
        retriever_options={"index_dir": str(out)},
    )
    hits = env.retriever.search(["owls"], 2)[0]
    assert hits[0].document.title == "T2"


# serve-retriever wiring -----------------------------------------------------------------


def _serve_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    serve_command(parser.add_subparsers(dest="command"))
    return parser.parse_args(["serve-retriever", *argv])


def _record_make_retriever(monkeypatch) -> list[tuple[str, int, dict[str, Any]]]:
    calls: list[tuple[str, int, dict[str, Any]]] = []

    def fake(name: str, corpus: Any, **options: Any) -> str:
        calls.append((name, len(corpus), options))
        return "retriever"

    monkeypatch.setattr(factory, "make_retriever", fake)
    return calls


def test_serve_options_and_index_dir_reach_make_retriever(tmp_path, monkeypatch) -> None:
    calls = _record_make_retriever(monkeypatch)
    corpus = _jsonl(tmp_path / "c.jsonl")
    args = _serve_args(
        "--corpus",
        str(corpus),
        "--retriever",
        "hybrid",
        "--index-dir",
        str(tmp_path / "idx"),
        "--option",
        "rrf_k=30",
        "--option",
        'dense={"index_type": "hnsw"}',
    )
    assert retriever_factory_from_args(args)() == "retriever"
    assert calls == [
        (
            "hybrid",
            5,
            {"rrf_k": 30, "dense": {"index_type": "hnsw"}, "index_dir": tmp_path / "idx"},
        )
    ]


def test_serve_chunking_and_no_index_dir(tmp_path, monkeypatch) -> None:
    calls = _record_make_retriever(monkeypatch)
    text = tmp_path / "t.txt"
    text.write_text(" ".join(f"w{i}" for i in range(25)))
    args = _serve_args("--corpus", str(text), "--chunk-tokens", "10", "--overlap", "2")
    retriever_factory_from_args(args)()
    assert calls == [("bm25", 3, {})]


def test_serve_argument_errors() -> None:
    with pytest.raises(ValueError, match="KEY=VALUE"):
        retriever_factory_from_args(_serve_args("--task", "bamboogle", "--option", "oops"))
    with pytest.raises(ValueError, match="--option needs --task or --corpus"):
        retriever_factory_from_args(_serve_args("--index-dir", "x", "--option", "k1=1"))
    assert serve_cli.parse_options is parse_options  # one shared parser


def test_a_command_that_cannot_load_is_reported_and_the_rest_work(monkeypatch, capsys):
    from importlib.metadata import EntryPoint

    import raggym_env.cli as cli

    real = cli.entry_points

    def with_broken(group):
        broken = EntryPoint("broken", "raggym_no_such_module:command", group)
        return [*real(group=group), broken]

    monkeypatch.setattr(cli, "entry_points", with_broken)
    assert cli.main(["broken", "--anything"]) == 2
    err = capsys.readouterr().err
    assert "the 'broken' command cannot be loaded" in err and "raggym_no_such_module" in err
    args = cli.build_parser().parse_args(["index", "--task", "hotpotqa", "--out", "x"])
    assert args.command == "index"


def test_index_command_builds_and_reports(tmp_path, capsys):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        "\n".join(json.dumps({"title": f"T{i}", "text": f"passage number {i}"}) for i in range(5))
    )
    assert main(["index", "--corpus", str(corpus), "--out", str(tmp_path / "idx")]) == 0
    assert "built BM25 index of 5 documents" in capsys.readouterr().out
    assert (tmp_path / "idx" / "raggym_index.json").exists()


def test_cli_user_errors_are_one_line(tmp_path, capsys):
    code = main(["index", "--corpus", str(tmp_path / "missing.json"), "--out", str(tmp_path)])
    assert code == 2
    assert "raggym index: error:" in capsys.readouterr().err


def test_warnings_on_the_terminal_are_one_line_each(tmp_path):
    """A CLI user sees what was noticed, not the source line of the code that noticed it."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "raggym_env", "bench", "smoke", "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if "placeholder" in line]
    assert len(lines) == 2, result.stderr  # Bamboogle and MedQA, once each
    assert all(line.startswith("warning: ") for line in lines), lines
    assert "return load_task" not in result.stderr and ".py:" not in result.stderr


# raggym index at scale: dump formats stream into a corpus store -----------------------


def _dpr_tsv(path: Path, n: int = 12) -> Path:
    rows = ["id\ttext\ttitle"]
    rows += [f'{i}\t"owl{i} hunts, at ""night"" in {i % 3}"\tBird {i}' for i in range(1, n + 1)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_dpr_tsv_streams_into_a_store_linked_into_the_index(tmp_path, capsys) -> None:
    tsv = _dpr_tsv(tmp_path / "psgs_w100.tsv")
    out = tmp_path / "idx"
    assert main(["index", "--corpus", str(tsv), "--out", str(out), "--shard-size", "5"]) == 0
    printed = capsys.readouterr().out
    summary = _summary(printed)
    assert summary["documents"] == "12"
    assert summary["corpus read"].endswith("(streamed into a store)")
    assert summary["mean words/doc"] == "n/a (corpus on disk)"
    assert f"corpus=DiskCorpus.open('{out / 'corpus'}')" in summary["env usage"]
    assert f"--corpus {out / 'corpus'} " in summary["server usage"]
    assert is_corpus_store(out / "corpus")
    assert not list(tmp_path.glob(".idx.corpus-partial*"))  # the staging store is gone
    manifest = json.loads((out / "raggym_index.json").read_text())
    assert len(manifest["shards"]) == 3  # 12 documents, 5 a shard
    loaded = BM25Retriever.load(out)
    assert isinstance(loaded.corpus, DiskCorpus) and len(loaded.corpus) == 12
    doc = loaded.corpus.get("7")
    assert doc.title == "Bird 7" and doc.text == 'owl7 hunts, at "night" in 1'
    hits = loaded.search(["owl7 bird"], 3)[0]
    assert hits[0].document.id == "7"


def test_a_store_is_indexed_as_is_and_budget_flags_are_checked(tmp_path, capsys) -> None:
    store = tmp_path / "store"
    write_store(
        (Document(f"d{i}", f"T{i}", f"text number {i} about owls") for i in range(6)), store
    )
    out = tmp_path / "idx"
    argv = ["index", "--corpus", str(store), "--out", str(out), "--memory-budget", "64M"]
    assert main([*argv, "--workers", "1"]) == 0
    assert _summary(capsys.readouterr().out)["documents"] == "6"
    assert BM25Retriever.load(out).corpus.content_hash == DiskCorpus.open(store).content_hash
    bad = ["index", "--corpus", str(store), "--out", str(tmp_path / "i2")]
    assert main([*bad, "--memory-budget", "lots"]) == 2
    assert "invalid size 'lots'" in capsys.readouterr().err
    assert main([*bad, "--retriever", "dense", "--shard-size", "3"]) == 2
    assert "only apply to bm25" in capsys.readouterr().err
    assert main([*bad, "--corpus-format", "dpr-tsv"]) == 2


def test_every_command_takes_progress_flags_that_beat_the_environment(
    tmp_path, capsys, monkeypatch
):
    from raggym_env.cli import build_parser
    from raggym_env.progress import PROGRESS_ENV, progress_enabled

    corpus = _jsonl(tmp_path / "c.jsonl")
    monkeypatch.setenv(PROGRESS_ENV, "1")
    assert (
        main(["index", "--corpus", str(corpus), "--out", str(tmp_path / "a"), "--no-progress"]) == 0
    )
    assert "BM25 index" not in capsys.readouterr().err
    monkeypatch.setenv(PROGRESS_ENV, "0")
    clear_caches()  # a second build of the same corpus would come from the cache, barless
    assert main(["index", "--corpus", str(corpus), "--out", str(tmp_path / "b"), "--progress"]) == 0
    assert "BM25 index" in capsys.readouterr().err
    assert progress_enabled() is False  # the flag held for that command only

    def leaves(
        parser: argparse.ArgumentParser, name: str
    ) -> list[tuple[str, argparse.ArgumentParser]]:
        nested = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not nested:
            return [(name, parser)]
        return [
            leaf for a in nested for n, p in a.choices.items() for leaf in leaves(p, f"{name} {n}")
        ]

    commands = leaves(build_parser(), "raggym")
    assert len(commands) > 10
    for name, parser in commands:
        flags = {flag for action in parser._actions for flag in action.option_strings}
        assert {"--progress", "--no-progress"} <= flags, name
