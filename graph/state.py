"""State of the twin's RAG graph: what a caller sends (`InputState`), what it gets back
(`OutputState`, a public contract: `answer`, `filters`, `queries`, `context`), and what the
nodes share (`State`: the turn's request, its filters, the search queries, the retrieved and
reranked documents, notes). Fan-out branches write `documents` concurrently, so it has a
reducer that merges and deduplicates them.

TypedDicts come from `typing_extensions` so LangServe (pydantic on Python 3.11) can build
the input/output schemas from them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from langchain_core.documents import Document
from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict

from retrievers.filters import FILTER_KEYS

# The categories the graph searches (one `embedded_*` collection each).
ALL_COLLECTIONS = ("articles", "posts", "repositories")


def empty_filters() -> dict[str, Any]:
    return dict.fromkeys(FILTER_KEYS)


def document_key(doc: Document) -> str:
    """Identity of a retrieved chunk: its point id, else its collection + content."""
    meta = doc.metadata or {}
    if meta.get("chunk_id"):
        return str(meta["chunk_id"])
    digest = hashlib.sha256(" ".join(doc.page_content.split()).encode("utf-8")).hexdigest()
    return f"{meta.get('collection', '')}:{digest}"


def merge_documents(
    existing: Sequence[Document] | None,
    new: Sequence[Document] | Literal["delete"] | None,
) -> list[Document]:
    """Reducer for the fan-out: union of every branch's results, deduplicated by chunk,
    keeping the best score. `"delete"` clears the list (a new turn in the same thread)."""
    if new == "delete":
        return []
    merged: dict[str, Document] = {document_key(d): d for d in existing or []}
    for doc in new or []:
        key = document_key(doc)
        old = merged.get(key)
        if old is None or float(doc.metadata.get("score") or 0.0) > float(
            old.metadata.get("score") or 0.0
        ):
            merged[key] = doc
    return list(merged.values())


def merge_notes(
    existing: Sequence[str] | None, new: Sequence[str] | Literal["delete"] | None
) -> list[str]:
    """Notes of this turn from every node/branch; `"delete"` starts a new turn."""
    if new == "delete":
        return []
    return list(dict.fromkeys([*(existing or []), *(new or [])]))


class InputState(TypedDict, total=False):
    """What a caller sends: chat history (`messages`) or a plain `query` (or both)."""

    messages: Annotated[list[AnyMessage], add_messages]
    query: str


class OutputState(TypedDict, total=False):
    """What a caller gets back (public contract: answer, filters, queries, context)."""

    messages: Annotated[list[AnyMessage], add_messages]
    answer: str
    filters: dict[str, Any]
    queries: list[str]
    context: list[Document]
    notes: Annotated[list[str], merge_notes]


class State(InputState, total=False):
    """Everything the nodes share."""

    request: str  # the user's instruction for this turn (last human message or `query`)
    filters: dict[str, Any]  # FILTER_KEYS → value (None = absent)
    queries: list[str]  # the request as a search query, then its expansions
    documents: Annotated[list[Document], merge_documents]  # all retrieved, deduplicated
    attachments: list[Document]  # main text of links in the request
    context: list[Document]  # reranked top-k (+ attachments)
    answer: str
    # Non-fatal problems (a link that could not be fetched, relaxed filters).
    notes: Annotated[list[str], merge_notes]


class RetrieveTask(TypedDict):
    """Payload of one `Send` branch: one query against one collection."""

    query: str
    collection: str
    filters: dict[str, Any]
