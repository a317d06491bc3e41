r"""Search-R1's retrieval protocol: ``POST /retrieve`` bodies and FlashRAG ``contents``.

Search-R1, veRL's search tool and GEM talk to a retrieval server with one endpoint:

- request: ``{"queries": [str, ...], "topk": int (optional), "return_scores": bool
  (optional, default false)}``;
- reply: ``{"result": [per_query, ...]}``, one list per query, in order; each item is
  ``{"document": doc, "score": float}`` when scores were asked for, else ``doc`` itself.

A ``doc`` carries at least ``contents``, in FlashRAG's form: the title in double quotes,
a newline, then the text (``"Paris"\nParis is the capital of France.``). raggym's server
also sends ``id``, ``title`` and ``text``. These helpers build and check both sides; the
server (:mod:`raggym_env.retrieval.server`) and the client
(:class:`~raggym_env.retrieval.remote.RemoteRetriever` with ``protocol="search-r1"``) use
them. Untrusted bodies become values or a :class:`ProtocolError` naming the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from raggym_env.corpora.memory import document_id
from raggym_env.types import Document, ScoredDocument

__all__ = [
    "DEFAULT_TOPK",
    "ProtocolError",
    "RetrieveRequest",
    "build_retrieve_request",
    "build_retrieve_response",
    "document_from_searchr1",
    "document_to_searchr1",
    "format_contents",
    "parse_contents",
    "parse_retrieve_request",
    "parse_retrieve_response",
]

DEFAULT_TOPK = 3
"""Search-R1's server default for ``topk`` when a request leaves it out."""


class ProtocolError(ValueError):
    """A body that breaks the protocol; ``status`` is the HTTP status a server answers."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RetrieveRequest:
    """A validated ``/retrieve`` request."""

    queries: list[str]
    topk: int
    return_scores: bool


def format_contents(title: str, text: str) -> str:
    """FlashRAG ``contents``: the title in double quotes, a newline, then the text."""
    return f'"{title}"\n{text}'


def parse_contents(contents: str) -> tuple[str, str]:
    """Split FlashRAG ``contents`` into ``(title, text)``; the inverse of :func:`format_contents`.

    The first line is the title (its surrounding double quotes removed, when present) and
    the rest the text; contents without a newline are all text, with an empty title.
    """
    head, newline, rest = contents.partition("\n")
    if not newline:
        return "", contents
    if len(head) >= 2 and head.startswith('"') and head.endswith('"'):
        head = head[1:-1]
    return head, rest


def document_to_searchr1(document: Document) -> dict[str, str]:
    """The reply form of a document: ``id``, FlashRAG ``contents``, ``title`` and ``text``."""
    return {
        "id": document.id,
        "contents": format_contents(document.title, document.text),
        "title": document.title,
        "text": document.text,
    }


def document_from_searchr1(item: object, where: str = "document") -> Document:
    """A :class:`Document` from a reply's document dict.

    ``title``/``text`` are used when present, else they are split from ``contents``; a
    missing ``id`` becomes a stable hash of the title and text (as raggym corpora do).

    Raises:
        ProtocolError: ``item`` is not an object, or has neither ``contents`` nor ``text``,
            or a field has the wrong type (``where`` names the item in the message).
    """
    if not isinstance(item, Mapping):
        raise ProtocolError(f"{where} must be an object, got {type(item).__name__}")
    contents = item.get("contents")
    if contents is not None and not isinstance(contents, str):
        raise ProtocolError(f"{where}.contents must be a string, got {type(contents).__name__}")
    title, text = item.get("title"), item.get("text")
    for name, value in (("title", title), ("text", text)):
        if value is not None and not isinstance(value, str):
            raise ProtocolError(f"{where}.{name} must be a string, got {type(value).__name__}")
    if text is None:
        if contents is None:
            raise ProtocolError(f"{where} has neither 'contents' nor 'text'")
        parsed_title, text = parse_contents(contents)
        title = parsed_title if title is None else title
    title = title or ""
    raw_id = item.get("id")
    if raw_id is None or isinstance(raw_id, (bool, dict, list)):
        doc_id = document_id(title, text)
    else:
        doc_id = str(raw_id)
    return Document(id=doc_id, title=title, text=text)


def build_retrieve_request(
    queries: list[str], topk: int | None = None, *, return_scores: bool = True
) -> dict[str, Any]:
    """The ``/retrieve`` request body (``topk`` left out when ``None``: the server's default)."""
    body: dict[str, Any] = {"queries": list(queries), "return_scores": bool(return_scores)}
    if topk is not None:
        body["topk"] = int(topk)
    return body


def parse_retrieve_request(
    body: object,
    *,
    default_topk: int = DEFAULT_TOPK,
    max_queries: int = 256,
    max_query_chars: int = 2000,
    max_topk: int = 1000,
    max_results: int = 4096,
) -> RetrieveRequest:
    """Validate a decoded ``/retrieve`` body against the server's limits.

    ``topk`` missing or ``null`` takes ``default_topk``; ``return_scores`` missing or
    ``null`` is false. Statuses follow ``/search``: a wrong shape or type is 422 (400 for a
    body that is not an object), too many queries, a too-long query or too many results
    (``len(queries) * topk > max_results``) are 413.

    Raises:
        ProtocolError: naming the field, what was expected and the limit.
    """
    if not isinstance(body, dict):
        raise ProtocolError(f"the body must be a JSON object, got {type(body).__name__}", 400)
    if "queries" not in body:
        raise ProtocolError("missing field 'queries' (a list of strings)")
    queries = body["queries"]
    if not isinstance(queries, list):
        raise ProtocolError(f"'queries' must be a list of strings, got {type(queries).__name__}")
    if len(queries) > max_queries:
        raise ProtocolError(
            f"too many queries: {len(queries)} > max_queries_per_request={max_queries}", 413
        )
    for i, query in enumerate(queries):
        if not isinstance(query, str):
            raise ProtocolError(f"queries[{i}] must be a string, got {type(query).__name__}")
        if not query.strip():
            raise ProtocolError(f"queries[{i}] is empty; expected a non-blank query")
        if len(query) > max_query_chars:
            raise ProtocolError(
                f"queries[{i}] is too long: {len(query)} > max_query_chars={max_query_chars}",
                413,
            )
    topk = body.get("topk")
    if topk is None:
        topk = default_topk
    elif isinstance(topk, bool) or not isinstance(topk, int):
        raise ProtocolError(f"'topk' must be an integer, got {type(topk).__name__}")
    if not 1 <= topk <= max_topk:
        raise ProtocolError(f"'topk' must be between 1 and max_k={max_topk}, got {topk}")
    return_scores = body.get("return_scores")
    if return_scores is None:
        return_scores = False
    elif not isinstance(return_scores, bool):
        raise ProtocolError(
            f"'return_scores' must be a boolean, got {type(return_scores).__name__}"
        )
    if len(queries) * topk > max_results:
        raise ProtocolError(
            f"too many results: {len(queries)} queries x topk={topk} = {len(queries) * topk} > "
            f"max_results_per_request={max_results}; send fewer queries or a smaller topk",
            413,
        )
    return RetrieveRequest(queries=list(queries), topk=topk, return_scores=return_scores)


def build_retrieve_response(
    results: list[list[ScoredDocument]], *, return_scores: bool
) -> dict[str, Any]:
    """The ``/retrieve`` reply body for ranked results, one list per query."""
    rows: list[list[Any]] = []
    for per_query in results:
        if return_scores:
            rows.append(
                [
                    {"document": document_to_searchr1(r.document), "score": float(r.score)}
                    for r in per_query
                ]
            )
        else:
            rows.append([document_to_searchr1(r.document) for r in per_query])
    return {"result": rows}


def parse_retrieve_response(body: object, n_queries: int) -> list[list[ScoredDocument]]:
    """Ranked documents from a ``/retrieve`` reply, one list per query.

    Items may be ``{"document": ..., "score": ...}`` or a bare document. A bare document
    (or one without a score) gets a rank-based score, ``1 / (rank + 1)``, so the results
    keep the server's order under the descending-score contract.

    Raises:
        ProtocolError: the reply lacks ``result``, has the wrong number of lists, or an
            item is malformed (the message names it, e.g. ``result[1][0].score``).
    """
    if not isinstance(body, Mapping) or "result" not in body:
        raise ProtocolError("the reply must be an object with a 'result' list")
    rows = body["result"]
    if not isinstance(rows, list):
        raise ProtocolError(f"'result' must be a list, got {type(rows).__name__}")
    if len(rows) != n_queries:
        raise ProtocolError(f"'result' has {len(rows)} lists for {n_queries} queries")
    parsed: list[list[ScoredDocument]] = []
    for i, row in enumerate(rows):
        if not isinstance(row, list):
            raise ProtocolError(f"result[{i}] must be a list, got {type(row).__name__}")
        ranked: list[ScoredDocument] = []
        for rank, item in enumerate(row):
            where = f"result[{i}][{rank}]"
            score: float = 1.0 / (rank + 1)
            if isinstance(item, Mapping) and "document" in item:
                raw_score = item.get("score")
                if raw_score is not None:
                    if isinstance(raw_score, bool) or not isinstance(raw_score, (int, float)):
                        raise ProtocolError(
                            f"{where}.score must be a number, got {type(raw_score).__name__}"
                        )
                    if not math.isfinite(raw_score):
                        raise ProtocolError(f"{where}.score must be finite, got {raw_score}")
                    score = float(raw_score)
                document = document_from_searchr1(item["document"], f"{where}.document")
            else:
                document = document_from_searchr1(item, where)
            ranked.append(ScoredDocument(document, score))
        parsed.append(ranked)
    return parsed
