"""The measurement scripts in perf/ (outside the installed package) keep working."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

PERF = Path(__file__).resolve().parents[1] / "perf"
SCRIPTS = sorted(p for p in PERF.glob("*.py") if p.name != "measure.py")


def test_every_script_is_listed_in_the_perf_readme():
    readme = (PERF / "README.md").read_text()
    assert [s.name for s in SCRIPTS if s.name not in readme] == []


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_imports_and_explains_its_flags(script, tmp_path):
    result = subprocess.run(
        [sys.executable, str(script), "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "usage:" in result.stdout


@pytest.mark.slow
def test_rollout_speed_quick_runs_from_another_folder(tmp_path):
    """The script starts the fake server, which imports its reply function from perf/."""
    result = subprocess.run(
        [sys.executable, str(PERF / "rollout_speed.py"), "--quick", "--concurrency", "1", "8"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "episodes/s" in result.stdout or "ep/s" in result.stdout, result.stdout


@pytest.mark.slow
def test_bm25_scale_quick_measures_raggym_and_reprints_its_json(tmp_path):
    """A tiny raggym-only run: a table row with figures, a JSON file, and --report-from."""
    out = tmp_path / "scale.json"
    common = ["--cache-dir", str(tmp_path / "cache"), "--workdir", str(tmp_path)]
    result = subprocess.run(
        [
            sys.executable,
            str(PERF / "bm25_scale.py"),
            "--quick",
            "--sizes",
            "1500",
            "--pyserini-sizes",
            "none",
            "--queries",
            "30",
            "--json",
            str(out),
            *common,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(out.read_text())
    (row,) = data["rows"]
    assert row["engine"] == "raggym" and row["size"] == 1500 and "failed" not in row
    assert row["build_s"] > 0 and row["index_mib"] > 0 and row["build_peak_rss_mib"] > 10
    assert row["single_queries"] == 30 and row["batch_queries"] == 30
    assert row["single_qps"] > 0 and row["batch_qps"] > 0
    assert sum(bool(ids) for ids in row["top_ids"]) > 20  # most queries find passages
    header = (tmp_path / "cache" / "1500.tsv").read_text().splitlines()[:2]
    assert header[0] == "id\ttext\ttitle" and header[1].startswith("1\t")
    assert "| raggym | 1,500 |" in result.stdout and "21,015,324" in result.stdout
    again = subprocess.run(
        [sys.executable, str(PERF / "bm25_scale.py"), "--report-from", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr
    assert "| raggym | 1,500 |" in again.stdout


@pytest.mark.slow
def test_bm25_scale_records_a_missing_pyserini_as_a_failed_row(tmp_path):
    """No Pyserini Python: the raggym row is measured, the Lucene row says why, exit 1."""
    result = subprocess.run(
        [
            sys.executable,
            str(PERF / "bm25_scale.py"),
            "--quick",
            "--sizes",
            "800",
            "--pyserini-sizes",
            "800",
            "--queries",
            "10",
            "--search-budget",
            "2",
            "--pyserini-python",
            str(tmp_path / "no-venv" / "python"),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--workdir",
            str(tmp_path),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "| raggym | 800 |" in result.stdout
    assert "| pyserini | 800 | - |" in result.stdout and "no Pyserini virtualenv" in result.stdout


@pytest.fixture
def bm25_scale(monkeypatch):
    """perf/bm25_scale.py as a module (perf/ on the path, as when the script runs)."""
    monkeypatch.syspath_prepend(str(PERF))
    import importlib

    return importlib.import_module("bm25_scale")


def test_bm25_scale_sizes_parse_or_name_the_bad_part(bm25_scale):
    assert bm25_scale.parse_sizes("1m,500k,2000,1.5m,1m") == [2000, 500_000, 1_000_000, 1_500_000]
    assert bm25_scale.parse_sizes("none") == bm25_scale.parse_sizes("") == []
    assert [bm25_scale.size_label(n) for n in (2000, 500_000, 5_000_000, 1234)] == [
        "2k",
        "500k",
        "5m",
        "1234",
    ]
    for bad in ("1g", "-5", "0", "1.5k5", "0.0001k"):
        with pytest.raises(ValueError, match="bad size"):
            bm25_scale.parse_size(bad)


def test_bm25_scale_corpus_is_seeded_prefix_stable_and_zipf_shaped(bm25_scale):
    small = list(bm25_scale.passages(1_200, seed=0))
    large = list(bm25_scale.passages(bm25_scale.CHUNK + 10, seed=0))
    assert small == large[:1_200]
    assert list(bm25_scale.passages(50, seed=1)) != small[:50]
    assert [p[0] for p in small[:3]] == ["1", "2", "3"]
    lengths = [len(text.split()) for _, text, _ in small]
    assert min(lengths) >= 80 and max(lengths) <= 120
    counts: dict[str, int] = {}
    for _, text, _ in small:
        for w in text.split():
            counts[w] = counts.get(w, 0) + 1
    ranked = sorted(counts.values(), reverse=True)
    assert ranked[0] > 20 * ranked[100]  # a heavy head, as Zipf's law has
    assert len(counts) > 10_000  # and a long tail of rare words
    titles = [title for _, _, title in small]
    assert len(set(titles)) < len(titles) / 2  # consecutive passages share an article title


def test_bm25_scale_pseudo_words_are_distinct_and_short_when_frequent(bm25_scale):
    table = bm25_scale._word_table()
    assert len(table) == bm25_scale.WORD_TABLE == len(set(table))
    assert [bm25_scale.word(r) for r in (0, 99, 100, 10_099, 10_100)] == [
        table[0],
        table[99],
        table[100],
        table[10_099],
        table[10_100],
    ]
    assert len(table[0]) == 2 and len(table[500]) == 4 and len(bm25_scale.word(10**9)) == 10


def test_bm25_scale_tsv_reader_names_a_bad_header_or_row(bm25_scale, tmp_path):
    bad_header = tmp_path / "h.tsv"
    bad_header.write_text("id\ttitle\ttext\n1\ta\tb\n")
    with pytest.raises(ValueError, match="header"):
        list(bm25_scale.read_tsv(bad_header))
    bad_row = tmp_path / "r.tsv"
    bad_row.write_text("id\ttext\ttitle\n1\tsome text\tT\n2\tno title\n")
    with pytest.raises(ValueError, match=r"r\.tsv:3: 2 tab-separated fields"):
        list(bm25_scale.read_tsv(bad_row))


def test_bm25_scale_fits_and_overlap(bm25_scale):
    assert bm25_scale.fit_line([(2.0, 10.0)]) == (0.0, 5.0)
    intercept, slope = bm25_scale.fit_line([(1.0, 3.0), (2.0, 5.0), (3.0, 7.0)])
    assert intercept == pytest.approx(1.0) and slope == pytest.approx(2.0)
    agree = bm25_scale.overlap([["a", "b"], [], None, ["x"]], [["b", "c"], [], ["q"], ["y", "z"]])
    assert agree == {"queries": 2, "mean": pytest.approx(0.25)}


def test_bm25_scale_report_from_names_what_is_wrong_with_a_file(bm25_scale, tmp_path):
    path = tmp_path / "x.json"
    for text, expected in (
        ("{not json", "not JSON"),
        ("[1]", "JSON object"),
        ('{"rows": []}', "missing or bad"),
        (
            '{"command": "", "machine": "", "corpus": "", "batch": 1, "wall_s": 1, '
            '"rows": [{"engine": "elastic", "size": 5}]}',
            r"rows\[0\]",
        ),
    ):
        path.write_text(text)
        with pytest.raises(ValueError, match=expected):
            bm25_scale.read_report(path)


def test_ann_recall_measures_raggym_defaults_with_re_ranking(tmp_path):
    """Synthetic-only run of raggym's own indexes: both defaults are marked, and exact
    re-ranking of IVF-PQ candidates never lowers recall at the same nprobe."""
    pytest.importorskip("faiss")
    result = subprocess.run(
        [
            *(sys.executable, str(PERF / "ann_recall.py"), "--no-real", "--synthetic", "3000"),
            *("--dim", "32", "--families", "raggym"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [
        line.strip("| ").split(" | ") for line in result.stdout.splitlines() if "raggym" in line
    ]
    defaults = [row for row in rows if "(default)" in row[1]]
    assert [row[0].split()[1] for row in defaults] == ["hnsw", "ivfpq"]
    recall = {row[1]: float(row[2]) for row in rows if "ivfpq" in row[0]}
    assert recall["nprobe=64, refine=8 **(default)**"] >= recall["nprobe=64, refine=1"]
    assert recall["nprobe=64, refine=8 **(default)**"] > 0.9


@pytest.mark.slow
def test_learning_quick_runs_every_phase_and_writes_finite_figures(tmp_path):
    """SFT, GRPO and DPO on the synthetic task, tiny sizes: every figure is a finite number."""
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, str(PERF / "learning.py"), "--quick", "--out", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-4000:]
    data = json.loads((out / "learning.json").read_text())
    assert data["failures"] == {}
    figures = data["figures"]
    for name in (
        "sft_held_out_em",
        "grpo_reward_first",
        "grpo_reward_last",
        "grpo_held_out_em",
        "dpo_em_before",
        "dpo_em_after",
        "sft_sampled_em",
        "grpo_sampled_em",
        "dpo_sampled_em",
        "dpo_preference_sampled_em",
    ):
        value = figures[name]
        assert isinstance(value, (int, float)) and math.isfinite(value), (name, value)
        if "em" in name:
            assert 0.0 <= value <= 1.0
    assert figures["preference_questions"] > 0
    for phase in ("sft", "grpo", "dpo"):
        hops = figures[f"{phase}_hops"]
        splits, hop_names = ("held_out", "train"), ("person", "town")
        assert set(hops) == {f"{split}_{hop}_searched" for split in splits for hop in hop_names}
        assert all(0.0 <= value <= 1.0 for value in hops.values())
    rewards = data["curves"]["grpo_reward"]
    assert rewards and all(math.isfinite(r) for r in rewards)
    for phase in ("setup", "sft", "grpo", "dpo", "total"):
        assert data["minutes"][phase] > 0
    assert (out / "grpo_reward.png").stat().st_size > 0
    assert "SFT held-out EM" in result.stdout and "nan" not in result.stdout.lower()


def test_learning_split_keeps_every_held_out_name_part_in_training(perf_script):
    """A held-out person is a new combination of name parts, town and country seen in
    training; a split that cannot keep that promise fails loudly."""
    from raggym_env.corpora import Corpus

    learning = perf_script("learning")
    world = learning.make_world(0, people=60, towns=6, countries=3, pool=8)
    assert len(world.people) == 60 and all(len(p.split()) == 2 for p in world.people)
    examples = learning.make_examples(world, Corpus.from_passages(world.passages(), name="w"))
    held_out, train = learning.split_examples(examples, 20, seed=0)
    assert len(held_out) == 20 and len(train) == 40
    assert {e.id for e in held_out}.isdisjoint(e.id for e in train)

    def parts(example):
        return {*example.meta["person"].split(), example.meta["town"], example.answers[0]}

    trained = set().union(*(parts(e) for e in train))
    assert all(parts(e) <= trained for e in held_out)
    with pytest.raises(ValueError, match="held-out questions keep every name"):
        learning.split_examples(examples, 59, seed=0)
    with pytest.raises(ValueError, match="name pool"):
        learning.make_world(0, people=65, towns=6, countries=3, pool=8)


def test_learning_compact_template_is_one_trl_renders_and_parses(perf_script):
    """The compact template lists the tools in one line and stays what TRL's tool loop
    needs: prefix-preserving, tool-calling, with the Qwen3 response parser."""
    pytest.importorskip("trl")
    from trl.chat_template_utils import is_chat_template_prefix_preserving, supports_tool_calling

    from raggym.testing.tiny import build_tiny_tokenizer

    def search(query: str) -> str:
        """Search the documents.

        Args:
            query: what to look for.
        """
        return query

    learning = perf_script("learning")
    tokenizer = build_tiny_tokenizer(vocab_size=400, tool_calling=True)
    full = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Q?"}], tools=[search], tokenize=False
    )
    learning.use_compact_tool_template(tokenizer)
    compact = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Q?"}], tools=[search], tokenize=False
    )
    assert "Tools: search(query)<|im_end|>" in compact and "<tools>" not in compact
    assert len(compact) < len(full) / 2
    assert is_chat_template_prefix_preserving(tokenizer) and supports_tool_calling(tokenizer)
    reply = '<tool_call>\n{"name": "search", "arguments": {"query": "Paris"}}\n</tool_call>'
    parsed = tokenizer.parse_response(tokenizer.encode(reply), prefix=[])
    assert parsed["tool_calls"][0]["function"]["name"] == "search"


def test_learning_hop_accuracy_reads_the_queries_of_the_first_two_turns(perf_script):
    learning = perf_script("learning")

    class Example:
        def __init__(self, person, town):
            self.meta = {"person": person, "town": town}

    def rollout(*turns):
        return learning.Rollout("q", turns=[([], list(t.encode())) for t in turns])

    search = learning.tool_turn
    rollouts = [
        rollout(search("search", {"query": "Ada Lee"}), search("search", {"query": "Oslo"})),
        rollout(search("search", {"query": "Ada"}), search("search", {"query": "Oslo"})),
        rollout(search("answer", {"text": "Ada Lee"})),
    ]
    examples = [Example("Ada Lee", "Oslo")] * 3
    first, second = learning.hop_accuracy(rollouts, examples, lambda ids: bytes(ids).decode())
    assert (first, second) == (1 / 3, 2 / 3)


def test_learning_report_tells_a_phase_with_nothing_to_train_from_a_failed_one(perf_script):
    """A policy whose every preference sample is right leaves DPO nothing to prefer: the
    report says the phase did not run and why, and keeps "failed" for real failures."""
    from pathlib import Path

    learning = perf_script("learning")
    phases = learning.Phases(learning.Settings(), Path("."))
    phases.figures = {"sft_held_out_em": 1.0, "dpo_pairs": 0, "dpo_em_before": 1.0}
    phases.minutes = {"setup": 0.1, "sft": 1.0, "grpo": 1.0, "dpo": 0.1}
    phases.skipped["dpo"] = "all 360 rollouts were correct: nothing to prefer"
    text = learning.report(phases, cores=2, total_min=2.2)
    assert "| held-out EM after DPO | not run |" in text
    assert "| after DPO | not run / not run | not run / not run |" in text
    assert "Phase dpo not run: all 360 rollouts were correct" in text
    assert "| held-out EM after GRPO | failed |" in text  # no figure and not skipped
