"""Query expansion: alternative phrasings of a request from the LLM, kept only when on topic.

Used by the graph's `expand_query` node and by `TwinRetriever` when `expand_n` > 0 (one
implementation for both). Bounded by a token budget and a wall-clock limit; any failure
gives no expansions, so retrieval goes on with the original query.

    from retrievers.expansion import expand_query
    expand_query("why measure before choosing?", 2)  # ["…", "…"] (may be fewer)
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

log = logging.getLogger(__name__)

# A small model's "alternative phrasings" are sometimes about something else entirely;
# expansions less similar than this (embedding cosine) to the request are dropped.
MIN_EXPANSION_SIMILARITY = 0.4
# Small models often echo the request with a word changed: such a line adds nothing.
MAX_EXPANSION_SIMILARITY = 0.97
DEFAULT_MAX_NEW_TOKENS = 48
DEFAULT_TIMEOUT_S = 4.0


def parse_expansions(text: str, original: str, n: int) -> list[str]:
    """Up to `n` distinct query lines of an LLM reply (list marks stripped, the original
    and near-empty or overlong lines dropped)."""
    seen = {original.casefold()}
    out: list[str] = []
    for line in text.splitlines():
        line = re.sub(r"^\s*(?:[-*•]|\d+[.):]|(?:search\s+)?quer(?:y|ies)\s*\d*\s*[.:)])\s*", "",
                      line, flags=re.IGNORECASE)  # fmt: skip
        line = line.strip().strip('"').strip("'").strip()
        if len(line) < 4 or len(line) > 300:
            continue
        key = line.casefold()
        if key in seen:
            continue
        seen.add(key)
        out.append(line)
        if len(out) >= n:
            break
    return out


def on_topic(original: str, candidates: list[str]) -> list[str]:
    """The candidates close enough in meaning to `original` (embedding cosine), but not
    restatements of it (they would only search for the same passages again)."""
    if not candidates:
        return []
    from retrievers.encoders import dense_encode

    vectors = dense_encode([original, *candidates])
    sims = vectors[1:] @ vectors[0]
    return [
        c for c, sim in zip(candidates, sims, strict=True)
        if MIN_EXPANSION_SIMILARITY <= sim < MAX_EXPANSION_SIMILARITY
    ]  # fmt: skip


async def aexpand_query(
    query: str,
    n: int,
    *,
    llm_model: str | None = None,
    prompt: str | None = None,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    config: Any = None,
) -> list[str]:
    """Up to `n` on-topic alternative phrasings of `query` ([] on any failure or timeout).

    `prompt` has `{n}` and `{query}` placeholders (default `core.prompts.EXPAND_QUERY_PROMPT`);
    `config` is the LangChain run config the LLM call is traced under.
    """
    if n <= 0 or not query.strip():
        return []
    from langchain_core.messages import HumanMessage

    from core.llm import get_chat_model
    from core.prompts import EXPAND_QUERY_PROMPT

    text = (prompt or EXPAND_QUERY_PROMPT).format(n=n, query=query)
    started = time.monotonic()
    try:
        model = get_chat_model(llm_model, max_new_tokens=max_new_tokens, temperature=0.0)
        reply = await asyncio.wait_for(
            model.ainvoke([HumanMessage(content=text)], config=config, max_time=timeout_s),
            # The backend stops itself at max_time; this is the hard backstop.
            timeout=timeout_s + 30.0,
        )
        content = reply.content if isinstance(reply.content, str) else reply.text
        candidates = parse_expansions(content, query, n * 2)
        return (await asyncio.to_thread(on_topic, query, candidates))[:n]
    except Exception as exc:  # noqa: BLE001 - retrieval goes on with the original query
        log.warning(
            "query expansion failed after %.1fs (%s); using the original query",
            time.monotonic() - started,
            exc,
        )
        return []


def expand_query(query: str, n: int, **kwargs: Any) -> list[str]:
    """Sync `aexpand_query` (for sync callers such as `TwinRetriever.invoke`)."""
    from core.aio import run_coroutine_sync

    return run_coroutine_sync(aexpand_query(query, n, **kwargs))
