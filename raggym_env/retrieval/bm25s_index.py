"""Search an index saved by bm25s's own ``BM25.save(dir)``, so existing indexes need no rebuild.

bm25s writes ``params.index.json``, ``vocab.index.json``, the score matrix as
``data.csc.index.npy``, ``indices.csc.index.npy`` and ``indptr.csc.index.npy`` and, when a
corpus was given, ``corpus.jsonl`` (one JSON value per indexed row; a string corpus is saved
as ``{"id": i, "text": ...}``). :func:`load_bm25s_index` opens such a directory with bm25s
and maps its rows to raggym :class:`~raggym_env.types.Document` s, from that
``corpus.jsonl`` or from a raggym corpus aligned with the rows.

The index does not record how its text was tokenised, so queries are tokenised with
``bm25s.tokenize`` under the options given here (bm25s's defaults: lower-casing, English
stopwords, no stemmer); give the ones the index was built with. A stopword list saved
beside the index by bm25s's ``Tokenizer.save_stopwords`` is used when present.

A Pyserini (Lucene) index directory is refused: its segments are read by Java's Lucene.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raggym_env.retrieval.base import IndexMismatchError, check_search_args
from raggym_env.retrieval.searchr1 import parse_contents
from raggym_env.types import Document, ScoredDocument

if TYPE_CHECKING:
    from raggym_env.corpora import Corpus

__all__ = [
    "CORPUS_FILE",
    "INDEX_FILES",
    "BM25sIndexRetriever",
    "LuceneIndexError",
    "load_bm25s_index",
]

CORPUS_FILE = "corpus.jsonl"
"""The corpus file bm25s's ``BM25.save`` writes beside the index."""
INDEX_FILES = (
    "params.index.json",
    "vocab.index.json",
    "data.csc.index.npy",
    "indices.csc.index.npy",
    "indptr.csc.index.npy",
)
"""Files every saved bm25s index has (bm25s's default names)."""
STOPWORDS_FILE = "stopwords.tokenizer.json"
"""Where bm25s's ``Tokenizer.save_stopwords`` writes its list."""

_ID_KEYS = ("id", "_id", "docid", "doc_id")
_LUCENE_NAMES = {"segments.gen", "write.lock"}
_LUCENE_SUFFIXES = (".cfs", ".cfe", ".si", ".fdt", ".tim")
_MAX_SCAN = 10_000


class LuceneIndexError(ValueError):
    """The directory holds a Lucene (Pyserini) index, which bm25s cannot read."""


def _lucene_marker(path: Path) -> str | None:
    """The name of a file marking ``path`` as a Lucene index, if any (bounded scan)."""
    with os.scandir(path) as entries:
        for i, entry in enumerate(entries):
            if i >= _MAX_SCAN:
                return None
            name = entry.name
            if name.startswith("segments_") or name in _LUCENE_NAMES:
                return name
            if name.endswith(_LUCENE_SUFFIXES):
                return name
    return None


def _check_index_dir(path: Path) -> None:
    """Refuse a missing, Lucene or incomplete directory with a message saying what to do."""
    if not path.exists():
        raise FileNotFoundError(f"no bm25s index at {path}: the directory does not exist")
    if not path.is_dir():
        raise NotADirectoryError(
            f"{path} is a file; expected the directory bm25s's BM25.save(dir) wrote"
        )
    marker = _lucene_marker(path)
    if marker is not None:
        raise LuceneIndexError(
            f"{path} is a Lucene index (it has {marker!r}), as Pyserini builds, not a bm25s "
            "index: Lucene segments are only read by Java's Lucene, which needs a JVM and "
            "pyserini, so raggym cannot search them in-process. Instead either rebuild the "
            "index from the same corpus (bm25s's BM25.save, `raggym index`, or "
            "retriever='bm25'), or serve the Lucene index with Search-R1's retrieval server "
            "and use retriever='remote' with retriever_options={'url': ..., "
            "'protocol': 'search-r1'}"
        )
    missing = [name for name in INDEX_FILES if not (path / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{path} is not a bm25s index: missing {', '.join(missing)} (bm25s's "
            f"BM25.save(dir) writes {', '.join(INDEX_FILES)} and optionally {CORPUS_FILE})"
        )


def _read_params(path: Path) -> dict[str, Any]:
    """``params.index.json`` as a dict with an integer ``num_docs``."""
    file = path / "params.index.json"
    try:
        params = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{file}: not valid JSON ({exc})") from None
    if not isinstance(params, dict):
        raise ValueError(f"{file}: expected a JSON object, got {type(params).__name__}")
    num_docs = params.get("num_docs")
    if isinstance(num_docs, bool) or not isinstance(num_docs, int) or num_docs < 0:
        raise ValueError(f"{file}: 'num_docs' must be an integer >= 0, got {num_docs!r}")
    return params


def _row_document(value: object, row: int, where: str) -> Document:
    """A raggym document from one ``corpus.jsonl`` value (bm25s saves what the user gave)."""
    if isinstance(value, str):
        return Document(id=str(row), title="", text=value)
    if isinstance(value, (list, tuple)):
        if len(value) == 2 and all(isinstance(v, str) for v in value):
            return Document(id=str(row), title=value[0], text=value[1])
        raise ValueError(f"{where}: a list row must be [title, text] (two strings)")
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected an object, got {type(value).__name__}")
    doc_id = next((value[key] for key in _ID_KEYS if value.get(key) is not None), row)
    if isinstance(doc_id, (dict, list, bool)):
        raise ValueError(f"{where}: the id must be a string or number, got {doc_id!r}")
    title, text, contents = value.get("title"), value.get("text"), value.get("contents")
    if title is not None and not isinstance(title, str):
        raise ValueError(f"{where}: 'title' must be a string, got {type(title).__name__}")
    if isinstance(text, str):
        return Document(id=str(doc_id), title=title or "", text=text)
    if isinstance(contents, str):
        parsed_title, body = parse_contents(contents)
        return Document(id=str(doc_id), title=title or parsed_title, text=body)
    raise ValueError(
        f"{where}: expected a string 'text' or 'contents' field, got keys {sorted(value)[:10]}"
    )


def _read_corpus(file: Path, num_docs: int) -> list[Document]:
    """Documents of ``corpus.jsonl``, one per index row, checked against ``num_docs``."""
    documents: list[Document] = []
    with file.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            if not line.strip():
                continue
            where = f"{file}:{line_no}"
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{where}: not valid JSON ({exc.msg})") from None
            documents.append(_row_document(value, len(documents), where))
            if len(documents) > num_docs:
                break
    if len(documents) != num_docs:
        rows = f"more than {num_docs}" if len(documents) > num_docs else str(len(documents))
        raise IndexMismatchError(
            f"{file} has {rows} rows but the index has {num_docs} documents; the corpus must "
            "list the indexed documents in index order"
        )
    return documents


def _stemmer_of(stemmer: str | Callable[..., Any] | None) -> Any:
    """A stemmer for ``bm25s.tokenize``: a PyStemmer language name is built here."""
    if stemmer is None or callable(stemmer):
        return stemmer
    if isinstance(stemmer, str):
        try:
            import Stemmer as module
        except ImportError as exc:
            raise ImportError(
                f"stemmer={stemmer!r} needs PyStemmer: pip install PyStemmer ({exc})"
            ) from exc
        try:
            return module.Stemmer(stemmer)
        except KeyError:
            raise ValueError(f"PyStemmer has no stemmer for language {stemmer!r}") from None
    raise TypeError(f"stemmer must be a language name or a callable, got {stemmer!r}")


def _import_bm25s() -> Any:
    """bm25s, imported on first use; an ``ImportError`` saying how to install it."""
    try:
        import bm25s
    except ImportError as exc:
        raise ImportError(
            f"loading a bm25s index needs bm25s, a raggym dependency: pip install 'bm25s>=0.2.10' "
            f"({exc})"
        ) from exc
    return bm25s


class BM25sIndexRetriever:
    """A :class:`~raggym_env.retrieval.base.Retriever` over a saved bm25s index.

    Built by :func:`load_bm25s_index`. ``corpus`` holds the documents in index-row order;
    scores are bm25s's own.
    """

    def __init__(
        self,
        model: Any,
        documents: Sequence[Document],
        *,
        path: Path,
        stopwords: str | list[str] | None,
        stemmer: Any,
        lower: bool,
        token_pattern: str,
    ) -> None:
        self._model = model
        self.corpus: Sequence[Document] = documents
        self.path = path
        self.stopwords = stopwords
        self.stemmer = stemmer
        self.lower = lower
        self.token_pattern = token_pattern
        self.num_docs = len(documents)
        self._vocab: dict[str, int] = model.vocab_dict

    def tokenize(self, queries: list[str]) -> list[list[str]]:
        """Query tokens as the index's vocabulary knows them (unknown tokens dropped)."""
        import bm25s

        tokens = bm25s.tokenize(
            queries,
            lower=self.lower,
            token_pattern=self.token_pattern,
            stopwords=self.stopwords,
            stemmer=self.stemmer,
            return_ids=False,
            show_progress=False,
        )
        return [[t for t in query if t and t in self._vocab] for query in tokens]

    def search(self, queries: list[str], k: int) -> list[list[ScoredDocument]]:
        """Top ``k`` documents per query by bm25s (a query of unknown words finds none)."""
        queries = check_search_args(queries, k)
        results: list[list[ScoredDocument]] = [[] for _ in queries]
        if not queries or self.num_docs == 0:
            return results
        tokens = self.tokenize(queries)
        live = [i for i, query in enumerate(tokens) if query]
        if not live:
            return results
        top = min(int(k), self.num_docs)
        rows, scores = self._model.retrieve(
            [tokens[i] for i in live], k=top, show_progress=False, n_threads=0
        )
        for slot, i in enumerate(live):
            results[i] = [
                ScoredDocument(self.corpus[int(row)], float(score))
                for row, score in zip(rows[slot], scores[slot], strict=True)
            ]
        return results

    def __repr__(self) -> str:
        return f"BM25sIndexRetriever(path={str(self.path)!r}, documents={self.num_docs})"


def load_bm25s_index(
    path: str | Path,
    corpus: Corpus | Sequence[Document] | None = None,
    *,
    stopwords: str | list[str] | None = "auto",
    stemmer: str | Callable[..., Any] | None = None,
    lower: bool = True,
    token_pattern: str = r"(?u)\b\w\w+\b",
    mmap: bool = False,
) -> BM25sIndexRetriever:
    """Open the index bm25s's ``BM25.save(path)`` wrote, as a raggym retriever.

    Args:
        path: the index directory.
        corpus: documents in index-row order; when ``None`` they come from the index's
            ``corpus.jsonl`` (rows of ``{"id", "text"}``, ``{"id", "title", "text"}``,
            FlashRAG ``{"id", "contents"}``, a string, or ``[title, text]``; a row without
            an id gets its row number).
        stopwords: for query tokenisation, as ``bm25s.tokenize`` takes them (``"en"``, a
            list, ``None``); ``"auto"`` uses a ``stopwords.tokenizer.json`` saved beside
            the index, else English (bm25s's default).
        stemmer: a PyStemmer language name (e.g. ``"english"``) or a callable, if the
            index was built with one.
        lower: lower-case queries (as the index was built).
        token_pattern: the token regex the index was built with.
        mmap: memory-map the score arrays instead of reading them into memory.

    Raises:
        ImportError: bm25s is not installed (the message says how to install it).
        FileNotFoundError: the directory does not exist or lacks a bm25s file.
        LuceneIndexError: the directory holds a Pyserini/Lucene index.
        IndexMismatchError: the corpus does not have one document per index row.
        ValueError: no corpus at all, or a malformed ``params.index.json`` or corpus row.
    """
    bm25s = _import_bm25s()
    path = Path(path)
    _check_index_dir(path)
    params = _read_params(path)
    num_docs: int = params["num_docs"]
    if corpus is not None:
        documents: Sequence[Document] = corpus if hasattr(corpus, "content_hash") else list(corpus)
        if len(documents) != num_docs:
            raise IndexMismatchError(
                f"the corpus has {len(documents)} documents but the bm25s index at {path} has "
                f"{num_docs}; give the corpus the index was built from, in index order"
            )
        bad = next((i for i, d in enumerate(documents) if not isinstance(d, Document)), None)
        if bad is not None:
            raise TypeError(f"corpus[{bad}] must be a Document, got {type(documents[bad])}")
    elif (path / CORPUS_FILE).is_file():
        documents = _read_corpus(path / CORPUS_FILE, num_docs)
    else:
        raise ValueError(
            f"the bm25s index at {path} has no {CORPUS_FILE} (it was saved without a corpus); "
            "pass corpus=, the documents it was built from in index order"
        )
    if stopwords == "auto":
        saved = path / STOPWORDS_FILE
        stopwords = "en"
        if saved.is_file():
            try:
                stopwords = json.loads(saved.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ValueError(f"{saved}: not valid JSON ({exc})") from None
            if not isinstance(stopwords, list) or not all(isinstance(w, str) for w in stopwords):
                raise ValueError(f"{saved}: expected a JSON list of stopword strings")
    model = bm25s.BM25.load(str(path), mmap=mmap, load_corpus=False, show_progress=False)
    return BM25sIndexRetriever(
        model,
        documents,
        path=path,
        stopwords=stopwords,
        stemmer=_stemmer_of(stemmer),
        lower=lower,
        token_pattern=token_pattern,
    )
