"""The retrieval nodes: fan out one search per query × collection, then rerank them all.

route_retrieval (`Send` per branch) → retrieve → rerank. Branches run only the first stage
of the configured reranker; `rerank` does the second stage once, over every branch, and
relaxes the filters when they found nothing.
"""

import asyncio
from typing import Any

from langchain_core.documents import Document
from langchain_core.runnables import RunnableConfig
from langgraph.types import Send

from graph import extract
from graph.configuration import Configuration
from graph.state import ALL_COLLECTIONS, RetrieveTask, State, empty_filters

FIRST_STAGE_OF = {
    "dense": "dense",
    "sparse": "sparse",
    "rrf": "hybrid",
    "weighted": "hybrid-weighted",
    "qdrant-rrf": "qdrant-rrf",
}


def _collections_for(cfg: Configuration, filters: dict[str, Any]) -> list[str]:
    """Configured collections narrowed by the category filter (never to nothing)."""
    chosen = [c.removeprefix("embedded_").removeprefix("cleaned_") for c in cfg.collections]
    chosen = [c for c in dict.fromkeys(chosen) if c in ALL_COLLECTIONS] or list(ALL_COLLECTIONS)
    category = filters.get("category")
    if category in chosen:
        return [category]
    return chosen


def route_retrieval(state: State, config: RunnableConfig | None = None) -> list[Send]:
    """Fan out: one `retrieve` branch per (query, collection)."""
    cfg = Configuration.from_runnable_config(config)
    filters = dict(state.get("filters") or empty_filters())
    queries = state.get("queries") or [extract.search_text(state.get("request") or "")]
    branch_filters = {**filters, "category": None}  # the collection already is the category
    return [
        Send("retrieve", RetrieveTask(query=q, collection=c, filters=branch_filters))
        for q in queries
        for c in _collections_for(cfg, filters)
    ]


def _first_stage(reranker: str) -> str:
    """The retriever variant that runs only the first stage of `reranker` (the graph's
    rerank node does the second stage once, over all branches)."""
    try:
        from retrievers.variants import resolve_variant

        _, variant = resolve_variant(reranker)
        return FIRST_STAGE_OF.get(variant.first, "hybrid")
    except Exception:  # noqa: BLE001 - an unknown name fails loudly in search itself
        return reranker


def _filter_keys(filters: dict[str, Any]) -> dict[str, Any]:
    """Filters as top-level retriever config keys (`author`, `category`, …)."""
    return {k: filters.get(k) for k in ("author", "category", "platform", "date_from", "date_to")}


def _search(queries: list[str], config: dict[str, Any]) -> list[Document]:
    from retrievers import search_many

    return search_many(queries, config)


def _rerank(query: str, docs: list[Document], cfg: Configuration) -> list[Document]:
    from retrievers import rerank

    return rerank(query, docs, cfg.k, cfg.reranker, max_per_document=cfg.max_per_document)


async def retrieve(task: RetrieveTask, *, config: RunnableConfig | None = None) -> dict[str, Any]:
    """One branch: search one collection for one query; results merge into `documents`."""
    cfg = Configuration.from_runnable_config(config)
    search_config = {
        "k": cfg.fetch_k,
        "fetch_k": cfg.fetch_k,
        # The candidate pool is not thinned per document: the rerank node applies
        # `max_per_document` to the final ranking, over all branches at once.
        "max_per_document": 0,
        "collections": [task["collection"]],
        "reranker": _first_stage(cfg.reranker),
        **_filter_keys(task["filters"]),
    }
    docs = await asyncio.to_thread(_search, [task["query"]], search_config)
    return {"documents": docs}


async def rerank(state: State, *, config: RunnableConfig | None = None) -> dict[str, Any]:
    """Keep the top k of everything retrieved, scored against the user's own request.
    Nothing found under strict filters → retry with the author alone, then with none."""
    cfg = Configuration.from_runnable_config(config)
    query = (state.get("queries") or [extract.search_text(state.get("request") or "")])[0]
    docs = list(state.get("documents") or [])
    filters = dict(state.get("filters") or empty_filters())
    notes: list[str] = []
    if not docs and query and any(v is not None for v in filters.values()):
        relaxed_steps = []
        if any(filters.get(k) for k in ("category", "platform", "date_from", "date_to")):
            relaxed_steps.append({**empty_filters(), "author": filters.get("author")})
        relaxed_steps.append(empty_filters())
        for relaxed in relaxed_steps:
            docs = await asyncio.to_thread(
                _search,
                state.get("queries") or [query],
                {
                    "k": cfg.fetch_k,
                    "fetch_k": cfg.fetch_k,
                    "max_per_document": 0,
                    "collections": list(cfg.collections),
                    "reranker": _first_stage(cfg.reranker),
                    **_filter_keys(relaxed),
                },
            )
            if docs:
                kept = {k: v for k, v in relaxed.items() if v is not None}
                notes.append(
                    f"nothing matched the filters {_compact(filters)}; searched with "
                    f"{_compact(kept) if kept else 'no filters'} instead"
                )
                break
    context = await asyncio.to_thread(_rerank, query, docs, cfg) if docs else []
    update: dict[str, Any] = {"context": list(state.get("attachments") or []) + context}
    if notes:
        update["notes"] = notes
    return update


def _compact(filters: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in filters.items() if v is not None) or "none"
