"""The retrieval nodes: fan out one search per query × collection, then rerank them all.

route_retrieval (`Send` per branch) → retrieve → rerank. Branches run only the first stage
of the configured reranker; `rerank` does the second stage once, over every branch, and
relaxes the filters when they found nothing.
"""

import asyncio
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import RunnableConfig
from langgraph.types import Send

from graph import request_parsing
from graph.configuration import Configuration
from graph.state import ALL_COLLECTIONS, FILTER_KEYS, RetrieveTask, State, empty_filters

if TYPE_CHECKING:
    from retrievers.retriever import RetrievalRequest


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
    queries = state.get("queries") or [request_parsing.search_text(state.get("request") or "")]
    branch_filters = {**filters, "category": None}  # the collection already is the category
    return [
        Send("retrieve", RetrieveTask(query=q, collection=c, filters=branch_filters))
        for q in queries
        for c in _collections_for(cfg, filters)
    ]


async def retrieve(task: RetrieveTask, *, config: RunnableConfig | None = None) -> dict[str, Any]:
    """One branch: search one collection for one query; results merge into `documents`."""
    from retrievers.retriever import aretrieve

    cfg = Configuration.from_runnable_config(config)
    docs = await aretrieve(_candidates(cfg, [task["query"]], task["filters"], [task["collection"]]))
    return {"documents": docs}


def _candidates(
    cfg: Configuration,
    queries: list[str],
    filters: dict[str, Any],
    collections: list[str] | None = None,
) -> "RetrievalRequest":
    """A first-stage-only retrieval of `fetch_k` candidates: the rerank node runs the second
    stage once, over every branch. The pool is not thinned per document either: the
    rerank node applies `max_per_document` to the final ranking, over all branches at once."""
    overrides: dict[str, Any] = {"collections": tuple(collections)} if collections else {}
    return cfg.retrieval(
        queries, filters, k=cfg.fetch_k, max_per_document=0, second_stage=False, **overrides
    )


async def rerank(state: State, *, config: RunnableConfig | None = None) -> dict[str, Any]:
    """Keep the top k of everything retrieved, scored against the user's own request.
    Nothing found under strict filters → retry with the author alone, then with none."""
    from retrievers.retriever import aretrieve, rerank_pool

    cfg = Configuration.from_runnable_config(config)
    # Scored against the user's own request (the first query), whatever found them.
    queries = state.get("queries") or [request_parsing.search_text(state.get("request") or "")]
    query = queries[0]
    docs = list(state.get("documents") or [])
    filters = dict(state.get("filters") or empty_filters())
    notes: list[str] = []
    if not docs and query and any(v is not None for v in filters.values()):
        relaxed_steps = []
        if any(filters.get(k) for k in FILTER_KEYS if k != "author"):
            relaxed_steps.append({**empty_filters(), "author": filters.get("author")})
        relaxed_steps.append(empty_filters())
        for relaxed in relaxed_steps:
            docs = await aretrieve(_candidates(cfg, queries, relaxed))
            if docs:
                kept = {k: v for k, v in relaxed.items() if v is not None}
                notes.append(
                    f"nothing matched the filters {_compact(filters)}; searched with "
                    f"{_compact(kept) if kept else 'no filters'} instead"
                )
                break
    ranked = cfg.retrieval(queries, filters)
    context = await asyncio.to_thread(rerank_pool, ranked, docs) if docs else []
    update: dict[str, Any] = {"context": list(state.get("attachments") or []) + context}
    if notes:
        update["notes"] = notes
    return update


def _compact(filters: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in filters.items() if v is not None) or "none"
