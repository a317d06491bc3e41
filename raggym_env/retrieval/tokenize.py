"""Lexical analysis for sparse retrieval: split, lowercase, drop stopwords, stem, map to ids.

Documents and queries must go through exactly the same analysis, so the analyzer is one
object with a JSON-serialisable state that is saved next to an index and restored with it.
Query encoding never mutates that state, so one analyzer can serve concurrent searches.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import Stemmer

__all__ = ["DEFAULT_TOKEN_PATTERN", "STOPWORD_LISTS", "Analyzer", "resolve_stopwords"]

DEFAULT_TOKEN_PATTERN = r"(?u)\b\w\w+\b"
"""Words of two or more word characters (the scikit-learn / bm25s default)."""


def _stopword_module() -> ModuleType:
    """bm25s's stopword lists, read without importing the bm25s package.

    Importing bm25s pulls in scipy: about 80 MiB in every indexing process, for word lists.
    """
    loaded = sys.modules.get("bm25s.stopwords")
    if loaded is not None:
        return loaded
    package = importlib.util.find_spec("bm25s")
    if package is None or package.origin is None:
        raise ImportError("bm25s is required for the stopword lists: pip install bm25s")
    path = Path(package.origin).with_name("stopwords.py")
    spec = importlib.util.spec_from_file_location("raggym_env.retrieval._stopwords", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot read bm25s's stopword lists from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bm25s_stopwords = _stopword_module()

STOPWORD_LISTS: Mapping[str, tuple[str, ...]] = {
    name: tuple(words)
    for names, words in (
        (("en", "english"), bm25s_stopwords.STOPWORDS_EN),
        (("en_plus", "english_plus"), bm25s_stopwords.STOPWORDS_EN_PLUS),
        (("de", "german"), bm25s_stopwords.STOPWORDS_GERMAN),
        (("nl", "dutch"), bm25s_stopwords.STOPWORDS_DUTCH),
        (("fr", "french"), bm25s_stopwords.STOPWORDS_FRENCH),
        (("es", "spanish"), bm25s_stopwords.STOPWORDS_SPANISH),
        (("pt", "portuguese"), bm25s_stopwords.STOPWORDS_PORTUGUESE),
        (("it", "italian"), bm25s_stopwords.STOPWORDS_ITALIAN),
        (("ru", "russian"), bm25s_stopwords.STOPWORDS_RUSSIAN),
        (("sv", "swedish"), bm25s_stopwords.STOPWORDS_SWEDISH),
        (("no", "norwegian"), bm25s_stopwords.STOPWORDS_NORWEGIAN),
        (("da", "danish"), bm25s_stopwords.STOPWORDS_DANISH),
        (("tr", "turkish"), bm25s_stopwords.STOPWORDS_TURKISH),
    )
    for name in names
}
"""Named stopword lists (those shipped with bm25s), by short and long language name."""

_STATE_VERSION = 1


class TermIds(Protocol):
    """What :meth:`Analyzer.encode` needs of a vocabulary: ``get(term, default)``."""

    def get(self, term: str, default: int, /) -> int: ...


def resolve_stopwords(stopwords: str | Iterable[str] | None) -> frozenset[str]:
    """Return the stopword set for a list name (see :data:`STOPWORD_LISTS`), words, or None.

    Raises:
        ValueError: for an unknown list name.
    """
    if stopwords is None:
        return frozenset()
    if isinstance(stopwords, str):
        try:
            return frozenset(STOPWORD_LISTS[stopwords])
        except KeyError:
            raise ValueError(
                f"unknown stopword list {stopwords!r}; expected one of "
                f"{sorted(STOPWORD_LISTS)}, a sequence of words, or None"
            ) from None
    return frozenset(w.lower() for w in stopwords)


class Analyzer:
    """Turns text into term ids: regex split, lowercase, stopword removal, Snowball stemming.

    Args:
        stemmer: a PyStemmer algorithm name (``"english"``, ``"porter"``, ...) or ``None``.
        stopwords: a stopword list name from :data:`STOPWORD_LISTS`, explicit words, or
            ``None``. Stopwords are matched on lowercased words, before stemming.
        pattern: regular expression whose matches are the words.
        lowercase: whether to lowercase text before splitting.
    """

    def __init__(
        self,
        *,
        stemmer: str | None = "english",
        stopwords: str | Iterable[str] | None = "en",
        pattern: str = DEFAULT_TOKEN_PATTERN,
        lowercase: bool = True,
    ) -> None:
        if stemmer is not None and stemmer not in Stemmer.algorithms():
            raise ValueError(
                f"unknown stemmer {stemmer!r}; expected None or one of {Stemmer.algorithms()}"
            )
        self.stemmer_name = stemmer
        self.stopwords = resolve_stopwords(stopwords)
        self.pattern = pattern
        self.lowercase = lowercase
        self._split = re.compile(pattern).findall
        self._stemmer = Stemmer.Stemmer(stemmer) if stemmer is not None else None
        # PyStemmer objects are not thread-safe; searches may come from several threads.
        self._stem_lock = threading.Lock()

    def words(self, text: str) -> list[str]:
        """Split ``text`` into (lowercased) words, stopwords included."""
        return self._split(text.lower() if self.lowercase else text)

    def stem(self, words: list[str]) -> list[str]:
        """Stem ``words`` (unchanged without a stemmer); thread-safe."""
        return self._stem(words)

    def _stem(self, words: list[str]) -> list[str]:
        if self._stemmer is None:
            return words
        with self._stem_lock:
            return list(self._stemmer.stemWords(words))

    def terms(self, text: str) -> list[str]:
        """Return the index terms of ``text`` in order: words minus stopwords, stemmed."""
        return self._stem([w for w in self.words(text) if w not in self.stopwords])

    def fit(self, texts: Iterable[str]) -> tuple[list[list[int]], dict[str, int]]:
        """Analyse a corpus, growing a vocabulary; returns per-text term ids and the vocab.

        Term ids are assigned ``0..V-1`` in order of first appearance, so the result is
        deterministic for a given corpus order.
        """
        vocab: dict[str, int] = {}
        word_ids: dict[str, int] = {}  # word -> term id, or -1 for a stopword
        stopwords = self.stopwords
        corpus_ids: list[list[int]] = []
        for text in texts:
            words = self.words(text)
            new = [w for w in dict.fromkeys(words) if w not in word_ids]
            if new:
                kept = [w for w in new if w not in stopwords]
                for word in new:
                    word_ids[word] = -1
                for word, stem in zip(kept, self._stem(kept), strict=True):
                    word_ids[word] = vocab.setdefault(stem, len(vocab))
            ids = [word_ids[w] for w in words]
            if -1 in ids:
                ids = [i for i in ids if i >= 0]
            corpus_ids.append(ids)
        return corpus_ids, vocab

    def encode(self, texts: Sequence[str], vocab: TermIds) -> list[list[int]]:
        """Map each text to the ids of its terms found in ``vocab``; unknown terms are dropped.

        Repeated query terms are kept (each occurrence adds its score, as in Lucene).
        """
        words_per_text = [
            [w for w in self.words(text) if w not in self.stopwords] for text in texts
        ]
        flat = [w for words in words_per_text for w in words]
        stems = iter(self._stem(flat))
        encoded = []
        for words in words_per_text:
            ids = [vocab.get(next(stems), -1) for _ in words]
            encoded.append([i for i in ids if i >= 0])
        return encoded

    def state_dict(self) -> dict[str, Any]:
        """Return a JSON-ready description from which :meth:`from_state` rebuilds the analyzer.

        The stopwords are stored as words (not a list name) so a saved index keeps its
        analysis even if a later bm25s release changes its bundled lists.
        """
        return {
            "state_version": _STATE_VERSION,
            "stemmer": self.stemmer_name,
            "stopwords": sorted(self.stopwords),
            "pattern": self.pattern,
            "lowercase": self.lowercase,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Analyzer:
        """Inverse of :meth:`state_dict`.

        Raises:
            ValueError: if the state was written by an incompatible version.
        """
        version = state.get("state_version")
        if version != _STATE_VERSION:
            raise ValueError(
                f"analyzer state version {version!r} is not supported (expected {_STATE_VERSION})"
            )
        return cls(
            stemmer=state["stemmer"],
            stopwords=list(state["stopwords"]),
            pattern=str(state["pattern"]),
            lowercase=bool(state["lowercase"]),
        )

    def __repr__(self) -> str:
        return (
            f"Analyzer(stemmer={self.stemmer_name!r}, stopwords={len(self.stopwords)} words, "
            f"pattern={self.pattern!r}, lowercase={self.lowercase})"
        )
