"""The query-understanding nodes: what is asked, with which filters, searched how.

self_query → expand_query; both are async, verb-named and return a partial state update.
"""

import asyncio
import logging
from typing import Any

from langchain_core.documents import Document
from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig

from graph import request_parsing
from graph.configuration import Configuration
from graph.links import fetch_link
from graph.names import resolve_author
from graph.nodes import aux_config, chat_model, last_human, text_of
from graph.state import State, empty_filters

log = logging.getLogger(__name__)


async def self_query(state: State, *, config: RunnableConfig | None = None) -> dict[str, Any]:
    """Work out the request and its filters (author, category, platform, dates); fetch
    any link it contains. A plain `query` input becomes the turn's human message (the only
    place it does: the API passes its `query` through)."""
    cfg = Configuration.from_runnable_config(config)
    updates: dict[str, Any] = {"documents": "delete", "notes": "delete", "answer": ""}
    query = (state.get("query") or "").strip()
    if query:
        updates["messages"] = [HumanMessage(content=query)]
        updates["query"] = ""  # consumed: a later turn in the thread must not reuse it
        request = query
    else:
        request = last_human(state.get("messages") or [])
    updates["request"] = request

    authors = await asyncio.to_thread(request_parsing.known_authors)
    filters = request_parsing.extract_filters(request, authors)
    # A name several authors share applies no filter; the answer says why.
    name_note = resolve_author(request_parsing.URL_RE.sub(" ", request), authors).note
    if cfg.self_query_llm and request:
        prompt = cfg.self_query_prompt.format(query=request_parsing.search_text(request))
        try:
            reply = await chat_model(
                cfg, max_new_tokens=cfg.self_query_max_new_tokens, temperature=0.0
            ).ainvoke(
                [HumanMessage(content=prompt)],
                config=aux_config(config, "self_query_llm"),
                max_time=cfg.expand_timeout_s,
            )
            from_llm = request_parsing.parse_llm_filters(text_of(reply), authors)
            # Rules win; the LLM only fills what they left empty (and only validated values).
            for key, value in from_llm.items():
                if filters.get(key) is None and value is not None:
                    filters[key] = value
        except Exception as exc:  # noqa: BLE001 - the rules' answer stands
            log.warning("self-query LLM failed: %s", exc)
    if filters.get("author") is None and cfg.author:
        filters["author"] = cfg.author
    if filters.get("author") is None and len(authors) == 1 and not name_note:
        # A one-person install: the twin is that person's, also when a request names nobody.
        filters["author"] = authors[0]
    # Caller-pinned filters win (their keys were checked when `cfg` was built).
    filters.update({k: v for k, v in (cfg.filters or {}).items() if v not in (None, "")})
    updates["filters"] = {**empty_filters(), **filters}

    attachments: list[Document] = []
    notes: list[str] = [name_note] if name_note and not filters.get("author") else []
    if cfg.fetch_links:
        # All links of a request together get one deadline and one size cap per link.
        from core.settings import get_settings

        settings = get_settings()
        fetched = await asyncio.gather(
            *(
                asyncio.to_thread(
                    fetch_link,
                    url,
                    cfg.link_max_chars,
                    settings.LINK_FETCH_DEADLINE_S,
                    settings.LINK_FETCH_MAX_BYTES,
                )
                for url in request_parsing.find_urls(request)[:3]
            )
        )
        for doc, note in fetched:
            if doc is not None:
                attachments.append(doc)
            if note:
                notes.append(note)
    updates["attachments"] = attachments
    updates["notes"] = notes
    return updates


async def expand_query(state: State, *, config: RunnableConfig | None = None) -> dict[str, Any]:
    """The search query plus up to `expand_n` alternative phrasings from the LLM, bounded by
    a token budget and a time limit; any failure falls back to the original query."""
    from retrievers.expansion import aexpand_query

    cfg = Configuration.from_runnable_config(config)
    author = (state.get("filters") or {}).get("author")
    original = request_parsing.search_text(state.get("request") or "", author)
    queries = [original] if original else []
    if cfg.expand_n > 0 and original:
        queries += await aexpand_query(
            original,
            cfg.expand_n,
            llm_model=cfg.llm_model,
            prompt=cfg.expand_prompt,
            max_new_tokens=cfg.expand_max_new_tokens,
            timeout_s=cfg.expand_timeout_s,
            config=aux_config(config, "expand_query_llm"),
        )
    return {"queries": queries}
