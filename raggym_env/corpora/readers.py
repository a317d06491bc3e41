"""Readers for corpus files: user passages and text, and the public Wikipedia dumps.

:func:`iter_corpus` streams the :class:`~raggym_env.types.Document` s of a corpus file or
folder one at a time, in linear time and bounded memory (a disk-backed store can take them
as they come); :func:`load_corpus` collects them into an in-memory
:class:`~raggym_env.corpora.Corpus`. The format is detected from the path (extension,
folder layout, header line or first record) or named explicitly; :data:`CORPUS_FORMATS`
lists them. Compressed files (``.gz``, ``.bz2``) are read transparently. Ids are kept as
the file gives them, so gold evidence maps by id as well as by title. Malformed lines of
the dump formats are skipped and counted in one :class:`DroppedDocumentsWarning` per file,
never raised; the user passage formats (``passages``) stay strict and raise a located
``ValueError``. Hub corpora (``"hub:<dataset>[:config[:split]]"``) stream through the
optional ``datasets`` package (see :func:`iter_hub_corpus`).
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from raggym_env.availability import require
from raggym_env.corpora.base import BaseCorpus
from raggym_env.corpora.files import (
    DEFAULT_CHUNK_OVERLAP,
    DEFAULT_CHUNK_TOKENS,
    DropLog,
    check_window,
    chunk_text,
    iter_json_records,
)
from raggym_env.corpora.memory import Corpus, document_id
from raggym_env.corpora.store import DiskCorpus, is_corpus_store
from raggym_env.types import Document

__all__ = [
    "CORPUS_FORMATS",
    "HUB_CORPORA",
    "MAX_LINE_BYTES",
    "HubCorpus",
    "corpus_name",
    "detect_corpus_format",
    "document_from_record",
    "iter_corpus",
    "iter_hub_corpus",
    "load_corpus",
    "split_flashrag_contents",
    "strip_links",
]

CORPUS_FORMATS: Mapping[str, str] = {
    "passages": "a JSON list or JSONL of {title, text} objects with an optional id "
    "(e.g. HippoRAG passages, Corpus.save_jsonl output)",
    "text": "a .txt file or a folder of .txt files, cut into overlapping word windows",
    "dpr-tsv": "DPR's psgs_w100.tsv: a tab-separated file with the header id, text, title "
    'and CSV quoting ("" inside quoted fields)',
    "flashrag-jsonl": "FlashRAG / Search-R1 JSONL (e.g. wiki-18): {id, contents} with "
    'contents = "Title" in double quotes, a newline, then the text; a file or a folder',
    "medrag": "MedRAG chunk files: JSONL of {id, title, content, contents}, one file, "
    "a folder of them or a folder with a chunk/ subfolder",
    "hotpotqa-abstracts": "HotpotQA's introductory-paragraph dump "
    "(enwiki-20171001-pages-meta-current-withlinks-abstracts): folders of wiki_XX.bz2 "
    "files of JSON lines {id, url, title, text: [sentences]} with <a href> links",
}
"""The corpus formats :func:`iter_corpus` and :func:`load_corpus` read, with a description."""

MAX_LINE_BYTES = 16 * 1024 * 1024
"""Longest line (and TSV field) read; a longer one is skipped and counted as malformed."""

_COMPRESSED = (".gz", ".bz2")
_BUFFER = 1 << 20
_MALFORMED = "malformed lines"
_EMPTY = "with empty text"
_DUPLICATE = "exact duplicates of an earlier record"
_CONFLICT = "reusing an earlier id with a different title or text"
_REASONS = (_MALFORMED, _EMPTY, _DUPLICATE, _CONFLICT)
_LINK = re.compile(r"</?a\b[^>]*>", re.IGNORECASE)
_CLOSING_QUOTE = re.compile(r'"(?=\s|$)')
_TSV_COLUMNS = ("id", "text", "title")


class _Malformed(Exception):
    """A record that cannot become a document (counted, not raised to the user)."""


@dataclass
class _Reading:
    """The state of one read: where it is, how many records it saw, what it dropped."""

    source: str
    log: DropLog
    format: str = ""
    records: int = 0
    lineno: int = 0


# --- the formats' text conventions --------------------------------------------------------


def split_flashrag_contents(contents: str) -> tuple[str, str]:
    r"""Split FlashRAG's ``contents`` (``'"Title"\ntext'``) into ``(title, text)``.

    The title is returned without its surrounding double quotes. Forms without the quotes
    (``'Title\ntext'``) or without the newline (``'"Title" text'``) are accepted; text
    with neither has an empty title. Both parts are stripped.
    """
    head, newline, rest = contents.partition("\n")
    if newline:
        title = head.strip()
        if len(title) >= 2 and title.startswith('"') and title.endswith('"'):
            title = title[1:-1]
        return title.strip(), rest.strip()
    stripped = contents.strip()
    if stripped.startswith('"'):
        closing = _CLOSING_QUOTE.search(stripped, 1)
        if closing is not None:
            return stripped[1 : closing.start()].strip(), stripped[closing.end() :].strip()
    return "", stripped


def strip_links(text: str) -> str:
    """Remove ``<a href=...>`` / ``</a>`` tags (the dump's link markup), keeping anchor text."""
    return _LINK.sub("", text)


def _flatten(sentences: list[Any]) -> str:
    """Join a sentence list (or a list of paragraphs of sentences) into one text."""
    parts: list[str] = []
    for item in sentences:
        if isinstance(item, str):
            parts.append(item)
        elif isinstance(item, list) and all(isinstance(s, str) for s in item):
            parts.extend(item)
        else:
            raise _Malformed("'text' must be a list of sentences")
    return "".join(parts)


def _record_id(record: Mapping[str, Any], title: str, text: str) -> str:
    raw = record.get("id")
    if raw is None:
        return document_id(title, text)
    if isinstance(raw, bool) or not isinstance(raw, (str, int)):
        raise _Malformed("'id' must be a string or an integer")
    doc_id = str(raw).strip()
    if not doc_id:
        raise _Malformed("'id' is empty")
    return doc_id


def _optional_text(record: Mapping[str, Any], key: str) -> str | None:
    value = record.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Malformed(f"{key!r} must be a string")
    return value


def document_from_record(record: Any, *, links: bool = False) -> Document | None:
    """Map one dump record or hub row (any of the known field layouts) to a document.

    Layouts: MedRAG ``{id, title, content[, contents]}``; the abstracts dump
    ``{id, title, text: [sentences]}`` (``links=True`` strips ``<a>`` tags; a record with
    only ``text_with_links`` has them stripped); passages
    ``{id, title, text}``; FlashRAG ``{id, contents}`` (see
    :func:`split_flashrag_contents`), and MedRAG-like rows with only ``contents`` (the
    title is then taken off the front of ``contents`` when the row has one). Returns
    ``None`` for a record whose text is empty.

    Raises:
        _Malformed: the record fits no layout (counted by the readers).
    """
    if not isinstance(record, Mapping):
        raise _Malformed(f"expected a JSON object, got {type(record).__name__}")
    title = _optional_text(record, "title")
    content = _optional_text(record, "content")
    raw_text = record.get("text")
    if raw_text is None and "text_with_links" in record:  # the dump's linked sentences
        raw_text, links = record["text_with_links"], True
    contents = _optional_text(record, "contents")
    if content is not None:
        text = content
    elif raw_text is not None:
        if isinstance(raw_text, list):
            text = _flatten(raw_text)
        elif isinstance(raw_text, str):
            text = raw_text
        else:
            raise _Malformed("'text' must be a string or a list of sentences")
        if title is None:
            raise _Malformed("missing field 'title'")
    elif contents is not None:
        split_title, split_text = split_flashrag_contents(contents)
        if not title or split_title == title:
            title, text = split_title, split_text
        elif contents.startswith(title):  # MedRAG: "<title>. <content>"
            text = contents[len(title) :].removeprefix(".")
        else:
            text = contents
    else:
        raise _Malformed("no text field ('content', 'text' or 'contents')")
    if links:
        text = strip_links(text)
    text = text.strip()
    title = (title or "").strip()
    if not text:
        return None
    return Document(id=_record_id(record, title, text), title=title, text=text)


# --- files and lines ----------------------------------------------------------------------


def _plain_name(path: Path) -> str:
    """The file name without a compression suffix (``psgs_w100.tsv.gz`` -> ``psgs_w100.tsv``)."""
    name = path.name
    for suffix in _COMPRESSED:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _open_binary(path: Path) -> IO[bytes]:
    lower = path.name.lower()
    # A buffer in front of the decompressor: readline(limit) on it directly is slow.
    if lower.endswith(".gz"):
        return io.BufferedReader(cast(io.RawIOBase, gzip.open(path, "rb")), _BUFFER)
    if lower.endswith(".bz2"):
        return io.BufferedReader(cast(io.RawIOBase, bz2.open(path, "rb")), _BUFFER)
    return path.open("rb")


def _iter_lines(path: Path, reading: _Reading, place: str) -> Iterator[str]:
    """Decoded lines of a (possibly compressed) file, each at most :data:`MAX_LINE_BYTES`.

    Over-long and undecodable lines are counted as malformed and skipped; a corrupt
    compressed stream ends the file with a clear ``ValueError``.
    """
    reading.lineno = 0
    try:
        with _open_binary(path) as f:
            while True:
                raw = f.readline(MAX_LINE_BYTES + 1)
                if not raw:
                    return
                reading.lineno += 1
                if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                    while raw and not raw.endswith(b"\n"):  # skip the rest of the line
                        raw = f.readline(MAX_LINE_BYTES)
                    reading.log.add(_MALFORMED, f"{place}:{reading.lineno}")
                    continue
                if reading.lineno == 1:
                    raw = raw.removeprefix(b"\xef\xbb\xbf")
                try:
                    yield raw.decode("utf-8")
                except UnicodeDecodeError:
                    reading.log.add(_MALFORMED, f"{place}:{reading.lineno}")
    except (OSError, EOFError, ValueError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(f"{path}: cannot read past line {reading.lineno} ({exc})") from exc


def _first_line(path: Path) -> str:
    """The first non-blank line of a (possibly compressed) file, or '' (for detection)."""
    try:
        with _open_binary(path) as f:
            for _ in range(64):
                raw = f.readline(1 << 20)
                if not raw:
                    return ""
                text = raw.removeprefix(b"\xef\xbb\xbf").decode("utf-8", "replace").strip()
                if text:
                    return text
    except (OSError, EOFError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read the first line ({exc})") from exc
    return ""


# --- readers per format: (place, document) pairs ------------------------------------------

_Stream = Iterator[tuple[str, Document]]


def _json_lines(files: list[tuple[Path, str]], reading: _Reading, *, links: bool) -> _Stream:
    """Documents of JSON-lines files in a dump layout; bad lines counted, never raised."""
    for path, place in files:
        for line in _iter_lines(path, reading, place):
            if not line.strip():
                continue
            reading.records += 1
            where = f"{place}:{reading.lineno}"
            try:
                doc = document_from_record(json.loads(line), links=links)
            except (json.JSONDecodeError, _Malformed):
                reading.log.add(_MALFORMED, where)
                continue
            if doc is None:
                reading.log.add(_EMPTY, where)
                continue
            yield where, doc


def _dpr_tsv(path: Path, reading: _Reading) -> _Stream:
    """Documents of DPR's tab-separated ``id, text, title`` file (CSV quoting, ``""`` inside)."""
    if csv.field_size_limit() < MAX_LINE_BYTES:
        csv.field_size_limit(MAX_LINE_BYTES)
    place = _plain_name(path)
    rows = csv.reader(_iter_lines(path, reading, place), delimiter="\t", quotechar='"')
    columns: dict[str, int] | None = None
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except csv.Error:
            reading.log.add(_MALFORMED, f"{place}:{reading.lineno}")
            continue
        if not row:
            continue
        if columns is None:
            header = [cell.strip().lower() for cell in row]
            if not set(_TSV_COLUMNS) <= set(header):
                raise ValueError(
                    f"{path}: line 1 must be the header id<TAB>text<TAB>title (DPR "
                    f"psgs_w100.tsv layout), got {row[:4]!r}"
                )
            columns = {name: header.index(name) for name in _TSV_COLUMNS}
            width = len(header)
            continue
        reading.records += 1
        where = f"{place}:{reading.lineno}"
        if len(row) != width or not row[columns["id"]].strip():
            reading.log.add(_MALFORMED, where)
            continue
        text = row[columns["text"]].strip()
        if not text:
            reading.log.add(_EMPTY, where)
            continue
        title = row[columns["title"]].strip()
        yield where, Document(id=row[columns["id"]].strip(), title=title, text=text)


def _compressed_records(path: Path, reading: _Reading) -> Iterator[dict[str, Any]]:
    """The objects of a compressed JSON list or JSONL passage file (strict, located errors)."""
    if _first_line(path).startswith("["):
        with _open_binary(path) as f:
            try:
                data = json.loads(f.read().decode("utf-8-sig"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise ValueError(f"{path}: invalid JSON ({exc})") from exc
        if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
            raise ValueError(f"{path}: expected a JSON list of objects")
        yield from data
        return
    for line in _iter_lines(path, reading, path.name):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{reading.lineno}: invalid JSON line: {exc.msg}") from exc
        if not isinstance(item, dict):
            raise ValueError(
                f"{path}:{reading.lineno}: expected a JSON object per line, got "
                f"{type(item).__name__}"
            )
        yield item


def _passages(path: Path, reading: _Reading) -> _Stream:
    """Documents of a user passage file (strict: a malformed record is a located error)."""
    compressed = _plain_name(path) != path.name
    records = _compressed_records(path, reading) if compressed else iter_json_records(path)
    for index, record in enumerate(records):
        reading.records += 1
        where = f"{path}: record {index}"
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
            reading.log.add(_EMPTY, f"record {index}")
            continue
        raw_id = record.get("id")
        if raw_id is None:
            doc_id = document_id(title, text)
        elif isinstance(raw_id, (str, int)) and not isinstance(raw_id, bool):
            doc_id = str(raw_id)
        else:
            raise ValueError(f"{where}: field 'id' must be a string or an integer")
        yield f"record {index}", Document(id=doc_id, title=title, text=text)


def _read_text_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc})") from exc


def _text_files(path: Path) -> list[tuple[Path, str]]:
    if path.is_dir():
        files = sorted(path.rglob("*.txt"))
        if not files:
            raise ValueError(f"{path}: the directory holds no .txt files")
        return [(f, f.relative_to(path).with_suffix("").as_posix()) for f in files]
    return [(path, path.stem)]


def _chunks(files: list[tuple[Path, str]], reading: _Reading, size: int, overlap: int) -> _Stream:
    """Chunk documents of text files, titled ``"<relative path> #k"``."""
    for file, base_title in files:
        reading.records += 1
        chunks = chunk_text(_read_text_file(file), size, overlap)
        if not chunks:
            reading.log.add("empty text files", file.name)
        for number, chunk in enumerate(chunks, 1):
            title = f"{base_title} #{number}"
            yield f"{file.name} #{number}", Document(document_id(title, chunk), title, chunk)


def _jsonl_files(path: Path, what: str) -> list[tuple[Path, str]]:
    """The JSONL files of a corpus folder (``chunk/`` first), or the file itself."""
    if path.is_file():
        return [(path, _plain_name(path))]
    folder = path / "chunk" if (path / "chunk").is_dir() else path
    files = sorted(
        f
        for f in folder.iterdir()
        if f.is_file() and _plain_name(f).lower().endswith((".jsonl", ".json"))
    )
    if not files:
        raise ValueError(f"{path}: no .jsonl files for a {what} corpus (in {folder})")
    return [(f, f.relative_to(path).as_posix()) for f in files]


def _abstract_files(path: Path) -> list[tuple[Path, str]]:
    if path.is_file():
        return [(path, _plain_name(path))]
    files = sorted(
        (f for f in path.rglob("wiki_*") if f.is_file()), key=lambda f: f.relative_to(path).parts
    )
    if not files:
        raise ValueError(f"{path}: no wiki_XX(.bz2) files for a hotpotqa-abstracts corpus")
    return [(f, f.relative_to(path).as_posix()) for f in files]


# --- detection ----------------------------------------------------------------------------


def _unknown(path: Path, why: str) -> ValueError:
    return ValueError(
        f"{path}: cannot tell the corpus format ({why}); pass format= (CLI --corpus-format) "
        f"with one of the known formats: {', '.join(CORPUS_FORMATS)} (see CORPUS_FORMATS)"
    )


def _format_of_line(line: str) -> str | None:
    """The format a first line belongs to (TSV header or a JSON record), or None."""
    if line.startswith("["):
        return "passages"
    cells = [cell.strip().lower() for cell in line.split("\t")]
    if len(cells) >= 3 and set(_TSV_COLUMNS) <= set(cells):
        return "dpr-tsv"
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(record, dict):
        return None
    keys = set(record)
    if "content" in keys or {"contents", "title"} <= keys:
        return "medrag"
    if "contents" in keys:
        return "flashrag-jsonl"
    if "url" in keys and (isinstance(record.get("text"), list) or "text_with_links" in keys):
        return "hotpotqa-abstracts"
    if {"title", "text"} <= keys:
        return "passages"
    return None


def detect_corpus_format(path: str | Path) -> str:
    """Name the format of a corpus file or folder (a key of :data:`CORPUS_FORMATS`).

    Folders: a ``chunk/`` subfolder means ``medrag``; ``wiki_*`` files anywhere below it
    mean ``hotpotqa-abstracts``; JSONL files are told apart by their first record; ``.txt``
    files mean ``text``. Files: ``.txt`` is ``text``, ``.tsv`` is ``dpr-tsv``, ``.json`` /
    ``.jsonl`` and files without a known extension (e.g. ``wiki_00.bz2``) by their first
    line. A ``.gz`` / ``.bz2`` suffix is looked through.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the format cannot be told; the message lists the known formats.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    if path.is_dir():
        if (path / "chunk").is_dir():
            return "medrag"
        if next((f for f in path.rglob("wiki_*") if f.is_file()), None) is not None:
            return "hotpotqa-abstracts"
        jsonl = sorted(f for f in path.iterdir() if f.is_file() and ".jsonl" in f.name.lower())
        for file in jsonl[:1]:
            found = _format_of_line(_first_line(file))
            if found in ("medrag", "flashrag-jsonl"):
                return found
            raise _unknown(
                path, f"its first file {file.name} holds neither MedRAG nor FlashRAG records"
            )
        if next(path.rglob("*.txt"), None) is not None:
            return "text"
        raise _unknown(
            path, "the directory holds no .txt files, nor .jsonl, chunk/ or wiki_* files"
        )
    plain = _plain_name(path)
    suffix = Path(plain).suffix.lower()
    if suffix == ".txt":
        return "text"
    if suffix == ".tsv":
        return "dpr-tsv"
    if suffix in (".json", ".jsonl", "") or plain.startswith("wiki_"):
        first = _first_line(path)
        if not first:
            if suffix in (".json", ".jsonl"):
                return "passages"  # an empty passage file: its reader names the problem
            raise _unknown(path, "the file is empty")
        found = _format_of_line(first)
        if found is not None:
            return found
        if suffix in (".json", ".jsonl"):
            return "passages"  # the passage reader names what is wrong with it
        raise _unknown(path, "its first line is neither a TSV header nor a known JSON record")
    raise ValueError(
        f"{path}: unsupported corpus file extension {Path(plain).suffix!r}; expected .json "
        "or .jsonl passages ({title, text}), a .txt file, or a directory of .txt files, or "
        f"one of the formats: {', '.join(CORPUS_FORMATS)}"
    )


def _check_format(format: str) -> str:
    key = format.strip().lower() if isinstance(format, str) else ""
    if key not in CORPUS_FORMATS:
        raise ValueError(
            f"unknown corpus format {format!r}; known formats: {', '.join(CORPUS_FORMATS)}"
        )
    return key


def _stream(
    path: Path, format: str | None, chunk_tokens: int, overlap: int, log: DropLog | None
) -> tuple[_Stream, _Reading]:
    """The (place, document) stream of a corpus path and the state it counts into."""
    check_window(chunk_tokens, overlap)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    fmt = detect_corpus_format(path) if format is None else _check_format(format)
    reading = _Reading(source=str(path), log=log or DropLog(_REASONS), format=fmt)
    if fmt == "text":
        files = _text_files(path)
        if len(files) == 1:
            reading.source = str(files[0][0])
        return _chunks(files, reading, chunk_tokens, overlap), reading
    if path.is_dir() and fmt in ("dpr-tsv", "passages"):
        raise ValueError(f"{path}: a folder, but format {fmt!r} reads one file")
    if fmt == "passages":
        return _passages(path, reading), reading
    if fmt == "dpr-tsv":
        return _dpr_tsv(path, reading), reading
    if fmt == "hotpotqa-abstracts":
        return _json_lines(_abstract_files(path), reading, links=True), reading
    return _json_lines(_jsonl_files(path, fmt), reading, links=False), reading


def _documents(stream: _Stream, reading: _Reading, warn: bool) -> Iterator[Document]:
    """The documents of a stream; at its end, the warning of what was dropped (if asked)."""
    for _, doc in stream:
        yield doc
    if warn:
        reading.log.warn(reading.source, reading.records, stacklevel=2)


def iter_corpus(
    path: str | Path,
    format: str | None = None,
    *,
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
    overlap: int = DEFAULT_CHUNK_OVERLAP,
    log: DropLog | None = None,
) -> Iterator[Document]:
    """Stream the documents of a corpus file or folder, in file order, one at a time.

    Linear time, bounded memory: nothing is kept between documents, so duplicates are
    *not* removed here (:func:`load_corpus` removes them). Malformed lines and empty texts
    of the dump formats are skipped and counted; at the end of the stream one
    :class:`~raggym_env.corpora.DroppedDocumentsWarning` reports them, or, with ``log``,
    they are counted into it instead (for a caller that reports them itself).

    Args:
        path: the file or folder (``"hub:..."`` specs go to :func:`iter_hub_corpus`).
        format: a key of :data:`CORPUS_FORMATS`, or ``None`` to detect it.
        chunk_tokens: window size of the ``text`` format, in whitespace tokens.
        overlap: tokens shared by consecutive windows of the ``text`` format.
        log: where to count dropped passages instead of warning.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: an unknown or undetectable format, a wrong TSV header, a malformed
            passage record (the strict ``passages`` format), an unreadable compressed file.
    """
    if isinstance(path, str) and path.startswith("hub:"):
        return iter_hub_corpus(path, log=log)
    if format is None and is_corpus_store(path):
        return iter(DiskCorpus.open(path))
    stream, reading = _stream(Path(path), format, chunk_tokens, overlap, log)
    return _documents(stream, reading, warn=log is None)


def _collect(stream: _Stream, reading: _Reading, *, strict: bool) -> list[Document]:
    """Documents in order, exact duplicates dropped; a reused id is an error when strict."""
    docs: list[Document] = []
    first_seen: dict[str, int] = {}
    places: list[str] = []
    for place, doc in stream:
        earlier = first_seen.get(doc.id)
        if earlier is not None:
            if docs[earlier] == doc:
                reading.log.add(_DUPLICATE, place)
                continue
            if strict:
                raise ValueError(
                    f"{reading.source}: {place}: id {doc.id!r} is already used by "
                    f"{places[earlier]} with a different title or text"
                )
            reading.log.add(_CONFLICT, place)
            continue
        first_seen[doc.id] = len(docs)
        if strict:
            places.append(place)
        docs.append(doc)
    return docs


def load_corpus(
    path: str | Path,
    name: str | None = None,
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
    overlap: int = DEFAULT_CHUNK_OVERLAP,
    *,
    format: str | None = None,
) -> BaseCorpus:
    """Load a corpus file, folder or hub dataset into an in-memory :class:`Corpus`.

    A corpus store directory (:func:`~raggym_env.corpora.store.write_store`) is opened as a
    :class:`~raggym_env.corpora.store.DiskCorpus` instead, read from disk on demand.

    Accepted inputs (``format=`` names one explicitly, else it is detected; see
    :data:`CORPUS_FORMATS` and :func:`detect_corpus_format`):

    - ``.json`` / ``.jsonl`` passages (``passages``): a JSON list or JSONL of
      ``{"title", "text"}`` objects with an optional ``"id"`` (e.g. a HippoRAG passage
      file, or a file written by ``Corpus.save_jsonl``). Passages are used as given;
      without ``id`` the id is ``document_id(title, text)`` and exact duplicates are
      dropped; a malformed record or an id reused for other text is an error.
    - ``.txt`` (``text``): the text is cut by :func:`chunk_text` into windows of
      ``chunk_tokens`` tokens overlapping by ``overlap``; chunk ``k`` (from 1) is titled
      ``"<stem> #k"`` (e.g. ``doc00 #1``). Gold evidence titles must use these titles to
      be found; for titled passages use JSON/JSONL.
    - a directory of ``.txt`` files (``text``): every ``*.txt`` file below it (sorted),
      titled by its relative path without suffix, chunked as above.
    - the public Wikipedia dumps: DPR ``psgs_w100.tsv`` (``dpr-tsv``), FlashRAG /
      Search-R1 JSONL (``flashrag-jsonl``), MedRAG chunk folders (``medrag``), HotpotQA's
      abstracts dump (``hotpotqa-abstracts``); ``.gz`` / ``.bz2`` read transparently.
      Malformed lines are skipped and counted, exact duplicates dropped, and a later
      document reusing an id with other text is dropped and counted.
    - ``"hub:<dataset>[:config[:split]]"``: a hub corpus (see :func:`iter_hub_corpus`).

    Dropped passages (empty text, duplicates, malformed lines, empty ``.txt`` files) are
    reported in one :class:`DroppedDocumentsWarning` per source that counts them by reason.

    Args:
        path: the file, directory or hub spec.
        name: the corpus name; defaults to the file stem or directory name.
        chunk_tokens: window size for text files, in whitespace tokens.
        overlap: tokens shared by consecutive windows of text files.
        format: a key of :data:`CORPUS_FORMATS`, or ``None`` to detect it.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: an unsupported extension or undetectable format (the message lists the
            known ones), a directory without ``.txt`` files, a malformed passage record
            (named by index) or an invalid chunk window.
        ImportError: a hub spec without ``datasets`` installed.
    """
    if isinstance(path, str) and path.startswith("hub:"):
        source = _hub_corpus(path)
        reading = _Reading(source=source.spec, log=DropLog(_REASONS))
        docs = _collect(_hub_stream(source, reading), reading, strict=False)
        reading.log.warn(reading.source, reading.records, stacklevel=2)
        return Corpus(docs, name=name or corpus_name(path))
    path = Path(path)
    if format is None and is_corpus_store(path):
        return DiskCorpus.open(path, name=name)
    stream, reading = _stream(path, format, chunk_tokens, overlap, None)
    docs = _collect(stream, reading, strict=reading.format in ("passages", "text"))
    reading.log.warn(reading.source, reading.records, stacklevel=2)
    return Corpus(docs, name=name or corpus_name(path))


def corpus_name(path: str | Path) -> str:
    """The default name of the corpus a file, folder or hub spec holds.

    The file name without its format and compression suffixes (``psgs_w100.tsv.gz`` ->
    ``psgs_w100``), or the dataset's name for ``"hub:<owner>/<dataset>..."``.
    """
    if isinstance(path, str) and path.startswith("hub:"):
        return _hub_corpus(path).repo.rsplit("/", 1)[-1]
    plain = Path(_plain_name(Path(path)))
    return plain.stem or plain.name


# --- hub corpora --------------------------------------------------------------------------


@dataclass(frozen=True)
class HubCorpus:
    """A corpus dataset on the Hugging Face hub and how its rows map to documents.

    Attributes:
        repo: the dataset id.
        config: the configuration read by default (``None``: the dataset's default).
        split: the split read by default.
        fields: the row layout: ``"medrag"`` (id, title, content, contents) or
            ``"flashrag"`` (id, contents); rows are mapped defensively either way (see
            :func:`document_from_record`).
        description: what the corpus is.
    """

    repo: str
    config: str | None
    split: str
    fields: str
    description: str

    @property
    def spec(self) -> str:
        """The ``hub:<repo>:<config>:<split>`` string naming this source."""
        return f"hub:{self.repo}:{self.config or ''}:{self.split}"


HUB_CORPORA: Mapping[str, HubCorpus] = {
    corpus.repo: corpus
    for corpus in (
        HubCorpus("MedRAG/wikipedia", None, "train", "medrag", "MedRAG's Wikipedia chunks"),
        HubCorpus("MedRAG/textbooks", None, "train", "medrag", "MedRAG's 18 medical textbooks"),
        HubCorpus("MedRAG/statpearls", None, "train", "medrag", "MedRAG's StatPearls chunks"),
        HubCorpus(
            "RAG-Gym/wiki_hotpotqa",
            None,
            "train",
            "medrag",
            "RAG-Gym's HotpotQA Wikipedia corpus (MedRAG-like rows; contents-only rows are "
            "split as FlashRAG contents)",
        ),
        HubCorpus(
            "RUC-NLPIR/FlashRAG_datasets",
            "retrieval-corpus",
            "train",
            "flashrag",
            "FlashRAG's wiki-18 (DPR's 21M 100-word passages as {id, contents})",
        ),
    )
}
"""Known hub corpora by dataset id; other ids are read with the same defensive mapping."""


def _hub_corpus(spec: str) -> HubCorpus:
    """Parse ``"hub:<dataset>[:config[:split]]"``, filling gaps from :data:`HUB_CORPORA`."""
    parts = spec.split(":")
    if len(parts) < 2 or len(parts) > 4 or parts[0] != "hub" or not parts[1].strip():
        raise ValueError(
            f"malformed hub corpus spec {spec!r}: expected 'hub:<dataset>[:config[:split]]' "
            f"(known datasets: {', '.join(HUB_CORPORA)})"
        )
    repo = parts[1].strip()
    known = HUB_CORPORA.get(repo)
    config = parts[2].strip() if len(parts) > 2 else ""
    split = parts[3].strip() if len(parts) > 3 else ""
    if not config and len(parts) < 3 and known is not None:
        config = known.config or ""
    return HubCorpus(
        repo=repo,
        config=config or None,
        split=split or (known.split if known else "train"),
        fields=known.fields if known else "auto",
        description=known.description if known else "a hub dataset",
    )


def _hub_stream(source: HubCorpus, reading: _Reading) -> _Stream:
    datasets = require("datasets", feature=f"reading the hub corpus {source.spec}")
    rows = datasets.load_dataset(source.repo, source.config, split=source.split, streaming=True)
    for index, row in enumerate(rows):
        reading.records += 1
        where = f"row {index}"
        try:
            doc = document_from_record(row)
        except _Malformed:
            reading.log.add(_MALFORMED, where)
            continue
        if doc is None:
            reading.log.add(_EMPTY, where)
            continue
        yield where, doc


def iter_hub_corpus(spec: str, *, log: DropLog | None = None) -> Iterator[Document]:
    """Stream a hub corpus ``"hub:<dataset>[:config[:split]]"`` through ``datasets``.

    The dataset is opened with ``streaming=True`` (rows arrive as they download, nothing
    is held); a missing config or split comes from :data:`HUB_CORPORA` (else none and
    ``"train"``). Rows are mapped by :func:`document_from_record`; malformed or empty rows
    are skipped and counted as in :func:`iter_corpus`.

    Raises:
        ValueError: a malformed spec.
        MissingDependencyError: ``datasets`` is not installed (an ``ImportError`` that
            names the install command).
    """
    source = _hub_corpus(spec)
    reading = _Reading(source=source.spec, log=log or DropLog(_REASONS))
    return _documents(_hub_stream(source, reading), reading, warn=log is None)
