"""Cross-encoder reranking with a tiny BERT cross-encoder built offline."""

import os

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"

from raggym.testing.retriever import FakeRetriever
from raggym_env.corpora import Corpus
from raggym_env.retrieval.base import Retriever
from raggym_env.retrieval.rerank import RerankedRetriever
from raggym_env.types import Document

DOCS = [
    Document("d1", "Scott Derrickson", "Scott Derrickson is an American director."),
    Document("d2", "Ed Wood", "Ed Wood was an American filmmaker and director."),
    Document("d3", "Paris", "Paris is the capital of France."),
    Document("d4", "Uranus", "Voyager 2 approached Uranus; it launched on a Titan IIIE."),
    Document("d5", "Lyon", "Lyon is a city in France, not its capital."),
    Document("d6", "", "An American director of France films."),
]


@pytest.fixture(scope="module")
def corpus():
    return Corpus(DOCS, name="tiny")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    pytest.importorskip("sentence_transformers")
    torch = pytest.importorskip("torch")
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(
        [f"{d.title} {d.text}" for d in DOCS],
        trainers.WordPieceTrainer(vocab_size=300, special_tokens=specials),
    )
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=128,
    )
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=1,
        initializer_range=0.5,  # spread the scores so the order is far from ties
    )
    path = tmp_path_factory.mktemp("cross-encoder")
    BertForSequenceClassification(config).save_pretrained(path)
    fast.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def cross_encoder(model_dir):
    from sentence_transformers import CrossEncoder

    return CrossEncoder(str(model_dir), max_length=128)


class Spy:
    """Wraps a CrossEncoder and records every predict call."""

    def __init__(self, inner):
        self.inner = inner
        self.calls = []

    def predict(self, inputs, *args, **kwargs):
        self.calls.append((list(inputs), kwargs))
        return self.inner.predict(inputs, *args, **kwargs)


def passage(doc):
    return f"{doc.title}: {doc.text}" if doc.title else doc.text


def test_reorders_base_candidates_by_cross_encoder_scores(corpus, model_dir, cross_encoder):
    base = FakeRetriever(corpus)
    reranker = RerankedRetriever(base, model_dir, top_n=5, max_length=128)
    assert isinstance(reranker, Retriever)
    query = "american director france capital"
    candidates = base.search([query], 5)[0]
    assert len(candidates) == 5
    scores = cross_encoder.predict(
        [(query, passage(c.document)) for c in candidates], show_progress_bar=False
    )
    expected = sorted(zip(candidates, scores.tolist(), strict=True), key=lambda cs: -cs[1])
    [results] = reranker.search([query], 5)
    assert [r.id for r in results] == [c.id for c, _ in expected]
    assert [r.score for r in results] == pytest.approx([s for _, s in expected], abs=1e-5)
    # k cuts the reranked list
    [top2] = reranker.search([query], 2)
    assert [r.id for r in top2] == [r.id for r in results[:2]]


def test_top_n_and_k_semantics(corpus, cross_encoder):
    base = FakeRetriever(corpus)
    spy = Spy(cross_encoder)
    reranker = RerankedRetriever(base, spy, top_n=2)
    [results] = reranker.search(["american director france"], 1)
    assert base.calls[-1] == ["american director france"]
    assert len(spy.calls[-1][0]) == 2  # only the top_n candidates are scored
    assert len(results) == 1
    top2 = {c.id for c in base.search(["american director france"], 2)[0]}
    assert results[0].id in top2
    # k above top_n: the base is asked for k candidates, so k results can come back
    [results] = reranker.search(["american director france"], 4)
    assert len(spy.calls[-1][0]) == 4
    assert len(results) == 4


def test_one_predict_call_per_batch(corpus, cross_encoder):
    base = FakeRetriever(corpus)
    spy = Spy(cross_encoder)
    reranker = RerankedRetriever(base, spy, top_n=3, batch_size=4)
    queries = ["paris france", "uranus voyager", "zzz nothing", "american director"]
    results = reranker.search(queries, 2)
    assert len(base.calls) == 1
    assert len(spy.calls) == 1
    pairs, kwargs = spy.calls[0]
    assert kwargs["batch_size"] == 4
    n_candidates = [len(r) for r in base.search(queries, 3)]
    assert len(pairs) == sum(n_candidates)
    assert [len(r) for r in results] == [min(2, n) for n in n_candidates]
    assert results[2] == []
    # a batch without any candidate does not call the model
    assert reranker.search(["zzz"], 2) == [[]]
    assert len(spy.calls) == 1
    assert reranker.search([], 2) == []


def test_title_is_joined_to_text(corpus, cross_encoder):
    spy = Spy(cross_encoder)
    base = FakeRetriever(corpus, mapping={"q": ["d3", "d6"]})
    RerankedRetriever(base, spy).search(["q"], 2)
    assert spy.calls[0][0] == [
        ("q", "Paris: Paris is the capital of France."),
        ("q", "An American director of France films."),
    ]


def test_validation(corpus, cross_encoder):
    base = FakeRetriever(corpus)
    with pytest.raises(ValueError):
        RerankedRetriever(base, cross_encoder, top_n=0)
    with pytest.raises(ValueError):
        RerankedRetriever(base, cross_encoder, batch_size=0)
    with pytest.raises(TypeError):
        RerankedRetriever(base, 42)
    with pytest.raises(TypeError):
        RerankedRetriever(object(), cross_encoder)

    class TwoLabels:
        def predict(self, inputs, **kwargs):
            return [[0.1, 0.9] for _ in inputs]

    with pytest.raises(ValueError, match="one score per pair"):
        RerankedRetriever(base, TwoLabels()).search(["paris"], 1)
