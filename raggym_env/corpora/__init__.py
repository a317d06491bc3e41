"""Document collections: the corpora an environment retrieves from, and their sources.

- :mod:`raggym_env.corpora.base`: :class:`BaseCorpus`, what every corpus offers (lookups
  by id and title, a content hash, streaming, evidence linking, export);
- :mod:`raggym_env.corpora.memory`: :class:`Corpus`, an in-memory, de-duplicated,
  content-hashed collection with lookups by id and title;
- :mod:`raggym_env.corpora.store`: :class:`DiskCorpus`, the same over a store on disk
  (:func:`write_store`), for Wikipedia-scale corpora;
- :mod:`raggym_env.corpora.formats`: builders from benchmark records (pooled
  HotpotQA/2Wiki context paragraphs);
- :mod:`raggym_env.corpora.files`: JSON/JSONL reading, plain-text chunking and the
  dropped-passages warning;
- :mod:`raggym_env.corpora.readers`: corpus files and folders in the user and public
  formats (passages, text, DPR TSV, FlashRAG/Search-R1 JSONL, MedRAG chunks, HotpotQA's
  abstracts dump, hub datasets), streamed as documents or loaded as a :class:`Corpus`;
- :mod:`raggym_env.corpora.evidence`: gold evidence titles and ids mapped into a corpus.
"""

from raggym_env.corpora.base import BaseCorpus, hash_documents
from raggym_env.corpora.evidence import EvidenceMapping, map_evidence, normalize_title
from raggym_env.corpora.files import (
    DEFAULT_CHUNK_OVERLAP,
    DEFAULT_CHUNK_TOKENS,
    DropLog,
    DroppedDocumentsWarning,
    chunk_text,
    iter_json_records,
    read_json_records,
)
from raggym_env.corpora.formats import paragraph_text, pooled_corpus
from raggym_env.corpora.memory import Corpus, document_id
from raggym_env.corpora.readers import (
    CORPUS_FORMATS,
    HUB_CORPORA,
    HubCorpus,
    corpus_name,
    detect_corpus_format,
    document_from_record,
    iter_corpus,
    iter_hub_corpus,
    load_corpus,
    split_flashrag_contents,
    strip_links,
)
from raggym_env.corpora.store import (
    CorpusStoreError,
    DiskCorpus,
    is_corpus_store,
    write_store,
)

__all__ = [
    "CORPUS_FORMATS",
    "DEFAULT_CHUNK_OVERLAP",
    "DEFAULT_CHUNK_TOKENS",
    "HUB_CORPORA",
    "BaseCorpus",
    "Corpus",
    "CorpusStoreError",
    "DiskCorpus",
    "DropLog",
    "DroppedDocumentsWarning",
    "EvidenceMapping",
    "HubCorpus",
    "chunk_text",
    "corpus_name",
    "detect_corpus_format",
    "document_from_record",
    "document_id",
    "hash_documents",
    "is_corpus_store",
    "iter_corpus",
    "iter_hub_corpus",
    "iter_json_records",
    "load_corpus",
    "map_evidence",
    "normalize_title",
    "paragraph_text",
    "pooled_corpus",
    "read_json_records",
    "split_flashrag_contents",
    "strip_links",
    "write_store",
]
