"""Corpus builders: pooled benchmark paragraphs, user passage files and chunked plain text.

HotpotQA and 2WikiMultihopQA records carry their own context paragraphs; pooling them over a
whole split gives a retrieval corpus whose gold documents are known (see
:func:`pooled_corpus`). Users bring their own collection as JSON/JSONL passages or plain text
files (see :func:`load_corpus`). Every builder returns a :class:`~raggym_env.corpora.Corpus`
whose ids are content hashes (:func:`~raggym_env.corpora.document_id`) unless the file gives
explicit ids, so the same passage keeps the same id across runs and machines.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from raggym_env.corpora.base import BaseCorpus
from raggym_env.corpora.memory import Corpus, document_id
from raggym_env.corpora.store import DiskCorpus, is_corpus_store
from raggym_env.types import Document

__all__ = [
    "DEFAULT_CHUNK_OVERLAP",
    "DEFAULT_CHUNK_TOKENS",
    "DroppedDocumentsWarning",
    "chunk_text",
    "load_corpus",
    "paragraph_text",
    "pooled_corpus",
    "read_json_records",
]

DEFAULT_CHUNK_TOKENS = 400
"""Default window size, in whitespace tokens, when chunking plain text files."""

DEFAULT_CHUNK_OVERLAP = 50
"""Default number of tokens shared by consecutive windows when chunking plain text."""

_TWOWIKI_MARKER = "evidences"


class DroppedDocumentsWarning(UserWarning):
    """A corpus file had passages that became no document (empty text, exact duplicates).

    A dropped passage cannot be retrieved, so a gold title that only it carried makes
    ``evidence_recall`` lower or ``None``; the warning counts each reason.
    """


def _warn_dropped(source: str, total: int, reasons: Mapping[str, list[str]]) -> None:
    """One warning for a corpus file: how many passages were dropped, why, and which."""
    dropped = {reason: where for reason, where in reasons.items() if where}
    if not dropped:
        return
    count = sum(len(where) for where in dropped.values())
    parts = []
    for reason, where in dropped.items():
        more = f", {len(where) - 3} more" if len(where) > 3 else ""
        parts.append(f"{len(where)} {reason} ({', '.join(where[:3])}{more})")
    warnings.warn(
        f"{source}: {count} of {total} passages dropped: {'; '.join(parts)}",
        DroppedDocumentsWarning,
        stacklevel=3,
    )


def read_json_records(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSON list of objects or a JSONL file (one object per line) into dicts.

    The format is detected from the content (a leading ``[`` means a JSON list), so both
    ``.json`` and ``.jsonl`` files of either shape are accepted.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the content is not valid JSON, or not a list/sequence of objects; the
            message names the file and the offending record or line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc})") from exc
    stripped = text.lstrip()
    if not stripped:
        raise ValueError(f"{path}: the file is empty (expected a JSON list or JSONL records)")
    if stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
            ) from exc
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a JSON list of objects")
        for index, item in enumerate(data):
            if not isinstance(item, dict):
                raise ValueError(
                    f"{path}: record {index}: expected a JSON object, got {type(item).__name__}"
                )
        return data
    records: list[dict[str, Any]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            hint = ""
            if lineno == 1 and _is_single_object(text):
                hint = " (the file holds one JSON object; expected a list or one object per line)"
            raise ValueError(f"{path}:{lineno}: invalid JSON line: {exc.msg}{hint}") from exc
        if not isinstance(item, dict):
            raise ValueError(
                f"{path}:{lineno}: expected a JSON object per line, got {type(item).__name__}"
            )
        records.append(item)
    return records


def _is_single_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except json.JSONDecodeError:
        return False


def paragraph_text(sentences: Sequence[str], joiner: str = "") -> str:
    """Join a context paragraph's sentences into one passage text, stripped at both ends.

    HotpotQA sentences carry their own leading spaces (``joiner=""`` restores the original
    paragraph); 2WikiMultihopQA sentences do not (``joiner=" "``).
    """
    return joiner.join(sentences).strip()


def _record_joiner(record: Mapping[str, Any]) -> str:
    # 2WikiMultihopQA records (and only they) carry `evidences` triples; their sentences have
    # no leading whitespace, unlike HotpotQA's.
    return " " if _TWOWIKI_MARKER in record else ""


def _context_paragraphs(record: Any, where: str) -> Iterable[tuple[str, Sequence[str]]]:
    if not isinstance(record, Mapping):
        raise ValueError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if "context" not in record:
        raise ValueError(
            f"{where}: missing field 'context' (expected HotpotQA/2WikiMultihopQA records "
            "with context [[title, [sentences]]])"
        )
    context = record["context"]
    if not isinstance(context, list):
        raise ValueError(f"{where}: 'context' must be a list of [title, [sentences]] pairs")
    for position, paragraph in enumerate(context):
        if (
            not isinstance(paragraph, (list, tuple))
            or len(paragraph) != 2
            or not isinstance(paragraph[0], str)
            or not isinstance(paragraph[1], list)
            or not all(isinstance(s, str) for s in paragraph[1])
        ):
            raise ValueError(
                f"{where}: context[{position}] must be a [title, [sentences]] pair of a "
                "string and a list of strings"
            )
        yield paragraph[0], paragraph[1]


def pooled_corpus(
    records_or_path: Iterable[Mapping[str, Any]] | str | Path,
    name: str | None = None,
    *,
    joiner: str | None = None,
) -> Corpus:
    """Pool the context paragraphs of HotpotQA / 2WikiMultihopQA records into one corpus.

    Each ``[title, sentences]`` paragraph becomes a document whose text is the joined
    sentences (see :func:`paragraph_text`) and whose id is ``document_id(title, text)``.
    Identical paragraphs (same title and text) shared by several questions appear once;
    paragraphs with the same title but different text (2Wiki has some) are kept apart, and
    ``Corpus.attach_evidence`` maps the title to all of them. Empty paragraphs are skipped.

    Args:
        records_or_path: official-format records, or a path to a JSON/JSONL file of them.
        name: the corpus name; defaults to the file stem, or ``"pooled"`` for records.
        joiner: string placed between sentences; by default ``" "`` for 2Wiki records
            (they have ``evidences``) and ``""`` for HotpotQA records.

    Raises:
        ValueError: a record has no well-formed ``context``; the message names the record.
    """
    if isinstance(records_or_path, (str, Path)):
        path = Path(records_or_path)
        records: Iterable[Mapping[str, Any]] = read_json_records(path)
        source = str(path)
        default_name = path.stem
    else:
        records = records_or_path
        source = "records"
        default_name = "pooled"

    def passages() -> Iterable[tuple[str, str]]:
        for index, record in enumerate(records):
            where = f"{source}: record {index}"
            sep = joiner if joiner is not None else _record_joiner(record)
            for title, sentences in _context_paragraphs(record, where):
                text = paragraph_text(sentences, sep)
                if text:
                    yield title, text

    return Corpus.from_passages(passages(), name=name or default_name)


def _check_window(size: int, overlap: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise ValueError(f"chunk size must be a positive integer, got {size!r}")
    if isinstance(overlap, bool) or not isinstance(overlap, int) or overlap < 0:
        raise ValueError(f"chunk overlap must be a non-negative integer, got {overlap!r}")
    if overlap >= size:
        raise ValueError(f"chunk overlap ({overlap}) must be smaller than the chunk size ({size})")


def chunk_text(
    text: str, size: int = DEFAULT_CHUNK_TOKENS, overlap: int = DEFAULT_CHUNK_OVERLAP
) -> list[str]:
    """Split text into windows of ``size`` whitespace tokens, consecutive ones sharing ``overlap``.

    Windows start every ``size - overlap`` tokens; the last window ends at the last token
    (it may be shorter), and no window lies wholly inside the previous one. Tokens are
    re-joined with single spaces. Empty or blank text gives no chunks.

    Raises:
        ValueError: ``size`` is not positive, or ``overlap`` is negative or not below ``size``.
    """
    _check_window(size, overlap)
    tokens = text.split()
    chunks: list[str] = []
    step = size - overlap
    start = 0
    while start < len(tokens):
        chunks.append(" ".join(tokens[start : start + size]))
        if start + size >= len(tokens):
            break
        start += step
    return chunks


def _documents_from_records(records: Sequence[Mapping[str, Any]], source: str) -> list[Document]:
    docs: list[Document] = []
    first_seen: dict[str, int] = {}
    empty: list[str] = []
    duplicates: list[str] = []
    for index, record in enumerate(records):
        where = f"{source}: record {index}"
        for key in ("title", "text"):
            if key not in record:
                raise ValueError(
                    f"{where}: missing field {key!r} (expected passages with 'title' and "
                    "'text', optionally 'id')"
                )
            if not isinstance(record[key], str):
                raise ValueError(f"{where}: field {key!r} must be a string")
        title, text = record["title"], record["text"].strip()
        if not text:
            empty.append(f"record {index}")
            continue
        raw_id = record.get("id")
        if raw_id is None:
            doc_id = document_id(title, text)
        elif isinstance(raw_id, (str, int)) and not isinstance(raw_id, bool):
            doc_id = str(raw_id)
        else:
            raise ValueError(f"{where}: field 'id' must be a string or an integer")
        doc = Document(id=doc_id, title=title, text=text)
        if doc_id in first_seen:
            earlier = docs[first_seen[doc_id]]
            if earlier == doc:
                duplicates.append(f"record {index}")
                continue
            raise ValueError(
                f"{where}: id {doc_id!r} is already used by record {first_seen[doc_id]} "
                "with a different title or text"
            )
        first_seen[doc_id] = len(docs)
        docs.append(doc)
    _warn_dropped(
        source,
        len(records),
        {"with empty text": empty, "exact duplicates of an earlier record": duplicates},
    )
    return docs


def _read_text_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc})") from exc


def _text_documents(files: Sequence[tuple[Path, str]], size: int, overlap: int) -> list[Document]:
    passages: list[tuple[str, str]] = []
    empty: list[str] = []
    for file, base_title in files:
        chunks = chunk_text(_read_text_file(file), size, overlap)
        if not chunks:
            empty.append(file.name)
        for number, chunk in enumerate(chunks, 1):
            passages.append((f"{base_title} #{number}", chunk))
    source = str(files[0][0].parent) if len(files) > 1 else str(files[0][0])
    _warn_dropped(source, len(files), {"empty text files": empty})
    return list(Corpus.from_passages(passages))


def load_corpus(
    path: str | Path,
    name: str | None = None,
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
    overlap: int = DEFAULT_CHUNK_OVERLAP,
) -> BaseCorpus:
    """Load a user corpus from passages (JSON/JSONL), plain text files or a corpus store.

    Accepted inputs:

    - a corpus store directory (written by :func:`~raggym_env.corpora.store.write_store`
      or ``Corpus.to_store``): opened as a :class:`~raggym_env.corpora.store.DiskCorpus`,
      read from disk on demand; ``chunk_tokens`` and ``overlap`` do not apply.

    - ``.json`` / ``.jsonl``: a JSON list or JSONL of ``{"title", "text"}`` objects with an
      optional ``"id"`` (e.g. a HippoRAG passage file, or a file written by
      ``Corpus.save_jsonl``). Passages are used as given; without ``id`` the id is
      ``document_id(title, text)`` and exact duplicates are dropped.
    - ``.txt``: the text is cut by :func:`chunk_text` into windows of ``chunk_tokens``
      tokens overlapping by ``overlap``; chunk ``k`` (from 1) is titled ``"<stem> #k"``
      (e.g. ``doc00 #1``). Gold evidence titles must use these titles to be found; for
      titled passages use JSON/JSONL.
    - a directory: every ``*.txt`` file below it (sorted), titled by its relative path
      without suffix, chunked as above.

    Passages with empty text, exact duplicates and empty ``.txt`` files are skipped, with
    one :class:`DroppedDocumentsWarning` per file that counts them by reason.

    Args:
        path: the file or directory.
        name: the corpus name; defaults to the file stem or directory name.
        chunk_tokens: window size for text files, in whitespace tokens.
        overlap: tokens shared by consecutive windows of text files.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: an unsupported extension, a directory without ``.txt`` files, a
            malformed record (named by index) or an invalid chunk window.
        CorpusStoreError: a damaged corpus store (a ``ValueError``).
    """
    _check_window(chunk_tokens, overlap)
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    corpus_name = name or path.stem or path.name
    if is_corpus_store(path):
        return DiskCorpus.open(path, name=name)
    if path.is_dir():
        files = sorted(path.rglob("*.txt"))
        if not files:
            raise ValueError(f"{path}: the directory holds no .txt files")
        titled = [(f, f.relative_to(path).with_suffix("").as_posix()) for f in files]
        return Corpus(_text_documents(titled, chunk_tokens, overlap), name=corpus_name)
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return Corpus(_text_documents([(path, path.stem)], chunk_tokens, overlap), corpus_name)
    if suffix in (".json", ".jsonl"):
        docs = _documents_from_records(read_json_records(path), str(path))
        return Corpus(docs, name=corpus_name)
    raise ValueError(
        f"{path}: unsupported corpus file extension {path.suffix!r}; expected .json or .jsonl "
        "passages ({title, text}), a .txt file, or a directory of .txt files"
    )
