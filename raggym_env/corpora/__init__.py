"""Document collections: the corpora an environment retrieves from, and their sources.

- :mod:`raggym_env.corpora.base`: :class:`BaseCorpus`, what every corpus offers (lookups
  by id and title, a content hash, streaming, evidence linking, export);
- :mod:`raggym_env.corpora.memory`: :class:`Corpus`, an in-memory, de-duplicated,
  content-hashed collection with lookups by id and title;
- :mod:`raggym_env.corpora.store`: :class:`DiskCorpus`, the same over a store on disk
  (:func:`write_store`), for Wikipedia-scale corpora;
- :mod:`raggym_env.corpora.formats`: builders from public and user formats (pooled
  HotpotQA/2Wiki context paragraphs, JSON/JSONL passages, plain text chunked with overlap).
"""

from raggym_env.corpora.base import BaseCorpus, hash_documents
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
from raggym_env.corpora.store import CorpusStoreError, DiskCorpus, is_corpus_store, write_store

__all__ = [
    "DEFAULT_CHUNK_OVERLAP",
    "DEFAULT_CHUNK_TOKENS",
    "BaseCorpus",
    "Corpus",
    "CorpusStoreError",
    "DiskCorpus",
    "DroppedDocumentsWarning",
    "chunk_text",
    "document_id",
    "hash_documents",
    "is_corpus_store",
    "load_corpus",
    "paragraph_text",
    "pooled_corpus",
    "read_json_records",
    "write_store",
]
