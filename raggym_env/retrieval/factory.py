"""Build a retriever by name, so environments and configs can say ``retriever="bm25"``.

Backends register a builder ``(corpus, **options) -> Retriever`` under a name; the
builder imports its heavy dependencies itself, so naming a backend costs nothing until it
is used.

Built-in names and their options:

- ``"bm25"``: :func:`raggym_env.retrieval.bm25.load_or_build` options (``index_dir``,
  ``k1``, ``b``, ...).
- ``"dense"``: ``load_or_build_dense`` options of :mod:`raggym_env.retrieval.dense`.
- ``"hybrid"``: BM25 and dense fused by weighted reciprocal rank fusion. Options:
  ``weights`` (``[bm25, dense]``), ``rrf_k``, ``depth``, ``bm25={...}`` and ``dense={...}``
  (options of each member), ``min_depth`` (fewest candidates per member; RAG-Gym: 100)
  and ``index_dir`` (members use its ``bm25/`` and ``dense/``
  subdirectories unless their own options name an ``index_dir``).
- ``"qdrant"``: :class:`~raggym_env.retrieval.qdrant.QdrantRetriever` options
  (``location`` for qdrant-client's local mode, ``url`` and ``api_key_env`` for a server,
  ``collection``, ``model``, ...): dense retrieval's embeddings in a Qdrant collection.
- ``"remote"``: :class:`~raggym_env.retrieval.remote.RemoteRetriever` options (``url``
  required, ``timeout_s``, ``max_retries``, ``protocol``, ``cooldown_s``...): a client of
  ``raggym serve-retriever``, or with ``protocol="search-r1"`` of any Search-R1-style
  ``/retrieve`` server. ``url`` may list replicas of one index (a list, or a
  comma-separated string as ``--option url=A,B`` gives).
- ``"bm25s"``: an index saved by bm25s's own ``BM25.save(dir)``, loaded by
  :func:`raggym_env.retrieval.bm25s_index.load_bm25s_index` (``path`` required; documents
  from the index's ``corpus.jsonl``, else from the environment's corpus).
- ``"faiss"``: a FAISS index file built elsewhere (e.g. Search-R1's ``e5_Flat.index``)
  served over the environment's corpus without encoding it, by
  :func:`raggym_env.retrieval.faiss_import.open_faiss_index` (``index_path`` required;
  ``model``, ``query_prefix``, ...).
- ``"hybrid+rerank"``: ``"hybrid"`` reranked by a cross-encoder. Extra options:
  ``reranker_model`` (required: a path or hub name), ``top_n`` (default 50) and
  ``reranker_options`` (``batch_size``, ``device``, ``max_length``).

Every builder also accepts ``cache``: ``False`` (no cache), ``True`` (an LRU cache of
100,000 results) or an int (the cache size). It defaults to on for the model-backed names
(``"dense"``, ``"qdrant"``, ``"hybrid"``, ``"hybrid+rerank"``), whose searches cost a forward
pass, and off for ``"bm25"``. A cached retriever is shared process-wide (see
:func:`~raggym_env.retrieval.cache.shared_cache`): every ``make_retriever`` call with the
same name, corpus and options returns the same object, so all environments of a process
share one model and one cache.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from raggym_env.corpora import BaseCorpus, Corpus
from raggym_env.retrieval.base import Retriever

__all__ = [
    "available_retrievers",
    "make_retriever",
    "register_retriever",
    "retriever_option_names",
]

RetrieverBuilder = Callable[..., Retriever]
OptionSources = Callable[[], Sequence[Callable[..., Any]]]
_BUILDERS: dict[str, RetrieverBuilder] = {}
_OPTION_SOURCES: dict[str, OptionSources] = {}


def register_retriever(
    name: str,
    builder: RetrieverBuilder,
    *,
    cache_default: bool = False,
    overwrite: bool = False,
    options_from: OptionSources | None = None,
) -> None:
    """Make ``make_retriever(name, corpus, **options)`` call ``builder(corpus, **options)``.

    The registered name also accepts the ``cache`` option every name takes (see the module
    docstring); ``cache_default`` is its value when a caller does not give it.
    ``options_from`` returns the callables that receive the options the builder forwards
    with ``**options`` (imported only when asked), so :func:`retriever_option_names` can
    list them; without it the builder's own signature decides.
    """
    if name in _BUILDERS and not overwrite:
        raise ValueError(f"a retriever named {name!r} is already registered")
    _BUILDERS[name] = _with_cache(name, builder, cache_default=cache_default)
    _OPTION_SOURCES[name] = options_from if options_from is not None else lambda: [builder]


def retriever_option_names(name: str) -> frozenset[str] | None:
    """The option names the retriever ``name`` accepts (with ``cache``); ``None``: any.

    Read from the signatures of the builder and of what it forwards its options to, so a
    suite can reject a misspelt option before anything is built.

    Raises:
        ValueError: no retriever is registered as ``name``.
    """
    _load_installed(name)
    if name not in _OPTION_SOURCES:
        raise ValueError(f"unknown retriever {name!r}; expected one of {available_retrievers()}")
    names = {"cache"}
    open_ended = False
    for target in _OPTION_SOURCES[name]():
        params = inspect.signature(target).parameters.values()
        open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
        names.update(
            p.name
            for p in params
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
            and p.name not in ("self", "cls", "corpus")
        )
    return None if open_ended else frozenset(names)


ENTRY_POINT_GROUP = "raggym.retrievers"
"""Installed distributions name more retrievers here: ``NAME = "module:builder"``.

The builder is imported the first time ``make_retriever(NAME, ...)`` asks for it (raggym's
own testing kit provides ``fake`` this way), so naming a backend costs nothing until used.
"""


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    found = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    return {entry.name: entry for entry in found}


def _load_installed(name: str) -> None:
    """Register ``name`` from its entry point, the first time an installed one is asked for."""
    if name not in _BUILDERS and name in (installed := _entry_points()):
        register_retriever(name, installed[name].load())


def available_retrievers() -> list[str]:
    """Names accepted by :func:`make_retriever` (registered or installed as entry points)."""
    return sorted(set(_BUILDERS) | set(_entry_points()))


def make_retriever(name: str, corpus: BaseCorpus, **options: Any) -> Retriever:
    """Build the retriever registered as ``name`` over ``corpus``."""
    _load_installed(name)
    try:
        builder = _BUILDERS[name]
    except KeyError:
        raise ValueError(
            f"unknown retriever {name!r}; expected one of {available_retrievers()} "
            "or a Retriever instance"
        ) from None
    return builder(corpus, **options)


_DEFAULT_CACHE_ENTRIES = 100_000


def _cache_entries(cache: object) -> int:
    """Translate the ``cache`` option into a cache size (0: no cache)."""
    if isinstance(cache, bool):
        return _DEFAULT_CACHE_ENTRIES if cache else 0
    if not isinstance(cache, int):
        raise TypeError(f"cache must be a bool or an int (cache size), got {cache!r}")
    if cache < 0:
        raise ValueError(f"cache size must be >= 0, got {cache}")
    return cache


def _with_cache(
    name: str, build: Callable[..., Retriever], *, cache_default: bool
) -> RetrieverBuilder:
    """Wrap ``build`` so it accepts the ``cache`` option common to every builder."""

    def builder(corpus: BaseCorpus, **options: Any) -> Retriever:
        entries = _cache_entries(options.pop("cache", cache_default))
        if entries == 0:
            return build(corpus, **options)
        from raggym_env.retrieval.cache import shared_cache

        key = (name, corpus.content_hash, json.dumps(options, sort_keys=True, default=repr))
        return shared_cache(key, lambda: build(corpus, **options), max_entries=entries)

    builder.__doc__ = build.__doc__
    return builder


def _bm25(corpus: BaseCorpus, **options: Any) -> Retriever:
    """BM25 over ``corpus``; options go to ``bm25.load_or_build``."""
    from raggym_env.retrieval.bm25 import load_or_build

    return load_or_build(corpus, **options)


def _dense(
    corpus: BaseCorpus, *, query_embeddings: Mapping[str, Any] | None = None, **options: Any
) -> Retriever:
    """Dense retrieval; options go to ``dense.load_or_build_dense``.

    ``query_embeddings`` (``{url, model, ...}``) embeds queries on an OpenAI-compatible
    server instead of locally (see :mod:`raggym_env.retrieval.remote_embeddings`).
    """
    from raggym_env.retrieval.dense import load_or_build_dense

    return _remote_queries(load_or_build_dense(corpus, **options), query_embeddings)


def _remote_queries(retriever: Any, query_embeddings: Mapping[str, Any] | None) -> Retriever:
    """``retriever``, with its queries embedded remotely when ``query_embeddings`` is set."""
    if query_embeddings is None:
        return cast(Retriever, retriever)
    from raggym_env.retrieval.remote_embeddings import with_remote_queries

    return cast(Retriever, with_remote_queries(retriever, query_embeddings))


def _query_embeddings_option(query_embeddings: Mapping[str, Any] | None = None) -> None:
    """Declares the ``query_embeddings`` option of ``"dense"`` and ``"faiss"``."""


def _qdrant(corpus: BaseCorpus, **options: Any) -> Retriever:
    """Dense retrieval in a Qdrant collection; options go to ``QdrantRetriever``."""
    from raggym_env.retrieval.qdrant import QdrantRetriever

    return QdrantRetriever(corpus, **options)


def _member_options(
    options: Mapping[str, Any] | None, index_dir: str | Path | None, subdir: str, name: str
) -> dict[str, Any]:
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise TypeError(f"the {name!r} option must be a mapping of options, got {options!r}")
    merged = dict(options)
    if index_dir is not None:
        merged.setdefault("index_dir", Path(index_dir) / subdir)
    return merged


def _hybrid(
    corpus: BaseCorpus,
    *,
    weights: list[float] | None = None,
    rrf_k: float = 60,
    depth: int | None = None,
    min_depth: int = 0,
    bm25: Mapping[str, Any] | None = None,
    dense: Mapping[str, Any] | None = None,
    index_dir: str | Path | None = None,
) -> Retriever:
    """BM25 + dense fused by weighted reciprocal rank fusion (members in that order)."""
    from raggym_env.retrieval.hybrid import HybridRetriever

    members = [
        _bm25(corpus, **_member_options(bm25, index_dir, "bm25", "bm25")),
        _dense(corpus, **_member_options(dense, index_dir, "dense", "dense")),
    ]
    return HybridRetriever(members, weights=weights, rrf_k=rrf_k, depth=depth, min_depth=min_depth)


def _hybrid_rerank(
    corpus: BaseCorpus,
    *,
    reranker_model: str | Path | None = None,
    top_n: int = 50,
    reranker_options: Mapping[str, Any] | None = None,
    **hybrid_options: Any,
) -> Retriever:
    """``"hybrid"`` followed by a cross-encoder reranking its top ``top_n``."""
    if reranker_model is None:
        raise ValueError(
            "retriever 'hybrid+rerank' needs the option reranker_model: the path (or hub "
            "name) of a sentence-transformers cross-encoder, e.g. "
            "retriever_options={'reranker_model': '/models/ms-marco-MiniLM-L-6-v2'}"
        )
    from raggym_env.retrieval.rerank import RerankedRetriever

    base = _hybrid(corpus, **hybrid_options)
    return RerankedRetriever(base, reranker_model, top_n=top_n, **dict(reranker_options or {}))


def _remote(corpus: BaseCorpus, **options: Any) -> Retriever:
    """A client of ``raggym serve-retriever`` (option ``url`` required; corpus unused)."""
    from raggym_env.retrieval.remote import RemoteRetriever

    if "url" not in options:
        raise ValueError(
            "retriever 'remote' needs the option url, e.g. "
            "retriever_options={'url': 'http://127.0.0.1:8001'}"
        )
    return RemoteRetriever(**options)


def _bm25s(corpus: Corpus, **options: Any) -> Retriever:
    """A saved bm25s index (option ``path`` required); ``corpus`` used if it has none."""
    from raggym_env.retrieval.bm25s_index import CORPUS_FILE, load_bm25s_index

    if "path" not in options:
        raise ValueError(
            "retriever 'bm25s' needs the option path, the directory bm25s's BM25.save wrote, "
            "e.g. retriever_options={'path': '/indexes/wiki-bm25s'}"
        )
    saved_corpus = (Path(options["path"]) / CORPUS_FILE).is_file()
    return load_bm25s_index(corpus=None if saved_corpus else corpus, **options)


def _faiss(
    corpus: BaseCorpus, *, query_embeddings: Mapping[str, Any] | None = None, **options: Any
) -> Retriever:
    """A FAISS index file (option ``index_path`` required) served over ``corpus``."""
    from raggym_env.retrieval.faiss_import import open_faiss_index

    if "index_path" not in options:
        raise ValueError(
            "retriever 'faiss' needs the option index_path, a FAISS index whose row i embeds "
            "corpus document i, e.g. retriever_options={'index_path': '/indexes/e5_Flat.index', "
            "'model': 'intfloat/e5-base-v2', 'query_prefix': 'query: '}"
        )
    return _remote_queries(open_faiss_index(corpus=corpus, **options), query_embeddings)


def _faiss_options() -> list[Callable[..., Any]]:
    from raggym_env.retrieval.faiss_import import open_faiss_index

    return [open_faiss_index, _query_embeddings_option]


def _bm25s_options() -> list[Callable[..., Any]]:
    from raggym_env.retrieval.bm25s_index import load_bm25s_index

    return [load_bm25s_index]


def _bm25_options() -> list[Callable[..., Any]]:
    from raggym_env.retrieval.bm25 import load_or_build

    return [load_or_build]


def _dense_options() -> list[Callable[..., Any]]:
    from raggym_env.retrieval.dense import DenseRetriever, load_or_build_dense

    return [load_or_build_dense, DenseRetriever.build, _query_embeddings_option]


def _qdrant_options() -> list[Callable[..., Any]]:
    from raggym_env.retrieval.qdrant import QdrantRetriever

    return [QdrantRetriever]


def _remote_options() -> list[Callable[..., Any]]:
    from raggym_env.retrieval.remote import RemoteRetriever

    return [RemoteRetriever]


register_retriever("bm25", _bm25, cache_default=False, options_from=_bm25_options)
register_retriever("dense", _dense, cache_default=True, options_from=_dense_options)
register_retriever("qdrant", _qdrant, cache_default=True, options_from=_qdrant_options)
register_retriever("hybrid", _hybrid, cache_default=True)
register_retriever(
    "hybrid+rerank",
    _hybrid_rerank,
    cache_default=True,
    options_from=lambda: [_hybrid_rerank, _hybrid],
)
register_retriever("remote", _remote, cache_default=False, options_from=_remote_options)
register_retriever("bm25s", _bm25s, cache_default=False, options_from=_bm25s_options)
register_retriever("faiss", _faiss, cache_default=True, options_from=_faiss_options)
