"""Document collections: the :class:`Corpus` an environment retrieves from, and its sources.

- :mod:`raggym_env.corpora.memory`: :class:`Corpus`, an in-memory, de-duplicated,
  content-hashed collection with lookups by id and title;
- :mod:`raggym_env.corpora.formats`: builders from public and user formats (pooled
  HotpotQA/2Wiki context paragraphs, JSON/JSONL passages, plain text chunked with overlap).
"""

from raggym_env.corpora.formats import (
    DEFAULT_CHUNK_OVERLAP,
    DEFAULT_CHUNK_TOKENS,
    DroppedDocumentsWarning,
    chunk_text,
    load_corpus,
    paragraph_text,
    pooled_corpus,
    read_json_records,
)
from raggym_env.corpora.memory import Corpus, document_id

__all__ = [
    "DEFAULT_CHUNK_OVERLAP",
    "DEFAULT_CHUNK_TOKENS",
    "Corpus",
    "DroppedDocumentsWarning",
    "chunk_text",
    "document_id",
    "load_corpus",
    "paragraph_text",
    "pooled_corpus",
    "read_json_records",
]
