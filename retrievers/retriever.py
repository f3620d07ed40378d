"""`TwinRetriever`: the LangChain retriever over the twin's `embedded_*` collections."""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field

from retrievers.filters import FILTER_KEYS
from retrievers.search import SearchConfig, search_many
from retrievers.variants import DEFAULT_FETCH_K, DEFAULT_K, DEFAULT_MAX_PER_DOCUMENT


class TwinRetriever(BaseRetriever):
    """Filtered multi-collection hybrid search with reranking.

    Fields mirror the graph Configuration: `k`, `fetch_k`, `collections` (categories or
    collection names; default all three `embedded_*`), `filters` (author, category,
    platform, date_from, date_to) and `reranker` ("auto"). Returned documents carry the
    chunk payload plus `score`, `chunk_id` and `collection` in their metadata.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    k: int = DEFAULT_K
    fetch_k: int = DEFAULT_FETCH_K
    collections: list[str] | None = None
    filters: dict[str, Any] = Field(default_factory=dict)
    reranker: str = "auto"
    max_per_document: int = DEFAULT_MAX_PER_DOCUMENT
    # Alternative phrasings from the LLM (`llm_model`, default LLM_MODEL) searched beside
    # the query; 0 = none.
    expand_n: int = 0
    llm_model: str | None = None
    client: Any = None  # a QdrantClient; default: retrievers.store.get_qdrant_client()

    def search_config(self, **overrides: Any) -> SearchConfig:
        return SearchConfig.from_config(
            {
                "k": self.k,
                "fetch_k": self.fetch_k,
                "collections": self.collections,
                "filters": self.filters,
                "reranker": self.reranker,
                "max_per_document": self.max_per_document,
            },
            **overrides,
        )

    def search_many(self, queries: list[str], **overrides: Any) -> list[Document]:
        return search_many(queries, self.search_config(**overrides), client=self.client)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        from retrievers.expansion import expand_query

        expansions = expand_query(query, self.expand_n, llm_model=self.llm_model,
                                  config={"callbacks": run_manager.get_child()})  # fmt: skip
        return self.search_many([query, *expansions], **kwargs)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        from retrievers.expansion import aexpand_query

        expansions = await aexpand_query(query, self.expand_n, llm_model=self.llm_model,
                                         config={"callbacks": run_manager.get_child()})  # fmt: skip
        # Local Qdrant allows one client per folder and process: share the sync client and
        # keep the event loop free by searching in a worker thread (the collections are
        # searched concurrently inside, on a thread pool).
        return await asyncio.to_thread(self.search_many, [query, *expansions], **kwargs)


_RETRIEVER_FIELDS = {
    "k", "fetch_k", "collections", "reranker", "client", "max_per_document", "expand_n",
    "llm_model",
}  # fmt: skip


def get_retriever(**config: Any) -> TwinRetriever:
    """A `TwinRetriever` from graph Configuration-style keys (unknown keys are ignored).

    Filters may come as `filters={...}` and/or top-level `author`, `category`,
    `platform`, `date_from`, `date_to` (top level wins).
    """
    if "configurable" in config and isinstance(config["configurable"], dict):
        config = {
            **config["configurable"],
            **{k: v for k, v in config.items() if k != "configurable"},
        }
    filters = dict(config.get("filters") or {})
    for key in FILTER_KEYS:
        if config.get(key) not in (None, "", [], ()):
            filters[key] = config[key]
    kwargs = {k: v for k, v in config.items() if k in _RETRIEVER_FIELDS and v is not None}
    if "reranker" in kwargs and not kwargs["reranker"]:
        kwargs.pop("reranker")
    kwargs.setdefault("k", DEFAULT_K)
    kwargs.setdefault("fetch_k", max(DEFAULT_FETCH_K, 4 * int(kwargs["k"])))
    retriever = TwinRetriever(filters={k: v for k, v in filters.items() if v is not None}, **kwargs)
    # Validate early: a bad category or date fails here with a clear message.
    retriever.search_config()
    return retriever
