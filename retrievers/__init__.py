"""Retrieval over the twin's vector store; the package's public entry point is `get_retriever`.

    from retrievers import RetrievalRequest, get_retriever, retrieve
    docs = get_retriever(k=5, filters={"author": "Maya Lindqvist"}).invoke("vector search")
    docs = retrieve(RetrievalRequest(queries=("vector search",), k=5))

`retrieve(RetrievalRequest)` is the one way to search (the graph's nodes and
`TwinRetriever` both go through it); `search_many` and `rerank` are its parts.

Names load lazily: importing `retrievers` (or `retrievers.store` from the ingest CLI) pulls
in no model, client or LangChain code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from retrievers.filters import InvalidFilter, SearchFilters
    from retrievers.ranking import rerank
    from retrievers.retriever import (
        RetrievalRequest,
        TwinRetriever,
        aretrieve,
        get_retriever,
        rerank_pool,
        retrieve,
    )
    from retrievers.search import SearchConfig, search_many
    from retrievers.variants import DEFAULT_VARIANT, VARIANTS

__all__ = [
    "DEFAULT_VARIANT",
    "InvalidFilter",
    "RetrievalRequest",
    "SearchConfig",
    "SearchFilters",
    "TwinRetriever",
    "VARIANTS",
    "aretrieve",
    "get_retriever",
    "rerank",
    "rerank_pool",
    "retrieve",
    "search_many",
]
_WHERE = {
    "TwinRetriever": "retrievers.retriever",
    "get_retriever": "retrievers.retriever",
    "RetrievalRequest": "retrievers.retriever",
    "retrieve": "retrievers.retriever",
    "aretrieve": "retrievers.retriever",
    "rerank_pool": "retrievers.retriever",
    "search_many": "retrievers.search",
    "rerank": "retrievers.ranking",
    "SearchConfig": "retrievers.search",
    "DEFAULT_VARIANT": "retrievers.variants",
    "VARIANTS": "retrievers.variants",
    "SearchFilters": "retrievers.filters",
    "InvalidFilter": "retrievers.filters",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'retrievers' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
