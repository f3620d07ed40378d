"""The one way into retrieval, and the LangChain retriever over it.

    request = RetrievalRequest.from_config({"k": 3, "author": "Maya"}, queries=["rag"])
    docs = retrieve(request)                      # both stages: the top k
    pool = retrieve(replace(request, second_stage=False))  # first stage only
    top = rerank_pool(request, pool)              # the second stage over a gathered pool

The graph's nodes build their requests from the run's `Configuration`
(`Configuration.retrieval`); `get_retriever(**config)` / `TwinRetriever` wraps the same
request with optional LLM query expansion. Neither searches any other way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field

from retrievers.search import SearchConfig, search_many
from retrievers.variants import DEFAULT_K, DEFAULT_MAX_PER_DOCUMENT


@dataclass(frozen=True, kw_only=True)
class RetrievalRequest:
    """One retrieval: what to search for and how.

    `queries`: the user's question first (what a second stage scores against), then
    alternative phrasings whose results join the pool. `filters`: `FILTER_KEYS` → value
    (None or absent: no constraint). `collections`: categories or collection names (None:
    all three `embedded_*`), narrowed by a category filter. `reranker`: the recipe name
    (`retrievers.variants`, "auto"). `fetch_k`: candidates per query and collection (None:
    max(20, 4·k)). `max_per_document`: at most this many chunks of one document (0: no
    limit). `second_stage=False`: the first stage's ranking only, for a caller that gathers
    several pools and runs the second stage once (`rerank_pool`).
    """

    queries: tuple[str, ...] = ()
    filters: Mapping[str, Any] = field(default_factory=dict)
    collections: tuple[str, ...] | None = None
    reranker: str = "auto"
    k: int = DEFAULT_K
    fetch_k: int | None = None
    max_per_document: int = DEFAULT_MAX_PER_DOCUMENT
    second_stage: bool = True

    @classmethod
    def from_config(
        cls, config: Any = None, queries: Sequence[str] = (), **overrides: Any
    ) -> RetrievalRequest:
        """A request from graph Configuration-style keys (`k`, `fetch_k`, `collections`,
        `reranker`, `max_per_document`, `filters` and the filter keys at the top level,
        which win; `{"configurable": {...}}` unwrapped; unknown keys ignored). Filters are
        checked here: a bad category or date raises `InvalidFilter` now, not at search."""
        # search_many's own reading of these keys: one set of defaults for both.
        search = SearchConfig.from_config(config, **overrides)
        return cls(
            queries=tuple(queries),
            filters=search.filters.as_dict(),
            collections=tuple(search.collections) if search.collections else None,
            reranker=search.reranker,
            k=search.k,
            fetch_k=search.fetch_k,
            max_per_document=search.max_per_document,
            second_stage=search.second_stage,
        )

    def search_config(self) -> SearchConfig:
        # A dataclass: SearchConfig reads its fields (`queries` is not one of them).
        return SearchConfig.from_config(self)


def retrieve(request: RetrievalRequest, *, client: Any = None) -> list[Document]:
    """The documents for `request` (best first); `client`: a QdrantClient, default
    `retrievers.store.get_qdrant_client()`."""
    return search_many(request.queries, request.search_config(), client=client)


async def aretrieve(request: RetrievalRequest, *, client: Any = None) -> list[Document]:
    """`retrieve` off the event loop. The embedded store allows one client per folder and
    process, so the sync client is shared and the search runs in a worker thread (the
    collections are searched concurrently inside, on a thread pool)."""
    return await asyncio.to_thread(retrieve, request, client=client)


def rerank_pool(request: RetrievalRequest, docs: Sequence[Document]) -> list[Document]:
    """The second stage of `request.reranker` over a pool that first-stage-only requests
    gathered: the top `k` for the first query, `max_per_document` applied."""
    from retrievers.ranking import rerank

    if not request.queries:
        return []
    return rerank(request.queries[0], docs, request.k, request.reranker,
                  max_per_document=request.max_per_document)  # fmt: skip


class TwinRetriever(BaseRetriever):
    """A LangChain retriever over `retrieve`: filtered multi-collection search with
    reranking. `request` holds how to search (its queries come per call); `expand_n`
    alternative phrasings from the LLM (`llm_model`, default LLM_MODEL) are searched beside
    the query (0: none). Returned documents carry the chunk payload plus `score`,
    `chunk_id` and `collection` in their metadata.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    request: RetrievalRequest = Field(default_factory=RetrievalRequest)
    expand_n: int = 0
    llm_model: str | None = None
    client: Any = None  # a QdrantClient; default: retrievers.store.get_qdrant_client()

    def _request(
        self, query: str, expansions: list[str], overrides: dict[str, Any]
    ) -> RetrievalRequest:
        return replace(self.request, queries=(query, *expansions), **overrides)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        from retrievers.expansion import expand_query

        expansions = expand_query(query, self.expand_n, llm_model=self.llm_model,
                                  config={"callbacks": run_manager.get_child()})  # fmt: skip
        return retrieve(self._request(query, expansions, kwargs), client=self.client)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        from retrievers.expansion import aexpand_query

        expansions = await aexpand_query(query, self.expand_n, llm_model=self.llm_model,
                                         config={"callbacks": run_manager.get_child()})  # fmt: skip
        return await aretrieve(self._request(query, expansions, kwargs), client=self.client)


def get_retriever(**config: Any) -> TwinRetriever:
    """A `TwinRetriever` from graph Configuration-style keys (unknown keys are ignored).

    Filters may come as `filters={...}` and/or as `retrievers.filters.FILTER_KEYS` at the
    top level (top level wins); a bad category or date raises `InvalidFilter` here.
    """
    if isinstance(config.get("configurable"), dict):
        config = {
            **config["configurable"],
            **{k: v for k, v in config.items() if k != "configurable"},
        }
    return TwinRetriever(
        request=RetrievalRequest.from_config(config),
        expand_n=int(config.get("expand_n") or 0),
        llm_model=config.get("llm_model"),
        client=config.get("client"),
    )
