"""The twin graph's nodes: async, verb-named, each returns a partial state update.

self_query → expand_query → retrieve (one `Send` per query × collection) → rerank → generate

Each node is written once, as a coroutine; `GraphNode` gives the graph a sync entry to the
same coroutine, so `graph.invoke`/`stream`/`batch` work like `ainvoke`/`astream`.
"""


import asyncio
import logging
import re
from collections.abc import Callable, Coroutine
from typing import Any

from langchain_core.documents import Document
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
)
from langchain_core.runnables import Runnable, RunnableConfig, ensure_config
from langgraph.types import Send

from core.aio import run_coroutine_sync
from core.llm import trim_to_sentence
from graph import extract
from graph.configuration import Configuration
from graph.names import resolve_author
from graph.prompts import LINK_FAILED_NOTE, SYSTEM_PROMPT, format_context, twin_messages
from graph.state import ALL_COLLECTIONS, RetrieveTask, State, empty_filters

log = logging.getLogger(__name__)

# LangGraph's "messages" stream skips chat-model runs tagged like this: helper-step tokens
# (self-query JSON, expansions) never reach the user's token stream.
AUX_TAGS = ["nostream", "twin:aux"]
FIRST_STAGE_OF = {
    "dense": "dense",
    "sparse": "sparse",
    "rrf": "hybrid",
    "weighted": "hybrid-weighted",
    "qdrant-rrf": "qdrant-rrf",
}


# ----------------------------------------------------------------------------- sync entry
AsyncNode = Callable[..., Coroutine[Any, Any, dict[str, Any]]]


class GraphNode(Runnable[Any, dict[str, Any]]):
    """A node whose one implementation is its async function.

    `ainvoke` awaits it (cancellable, the loop stays free); `invoke`, which LangGraph's
    sync `invoke`/`stream`/`batch` call, runs the same coroutine to completion, so both
    give identical results. Like LangGraph's wrapper for a plain function, it calls the
    function with `config` and opens no trace run of its own: traces keep one span per
    node, with the LLM span directly under it.
    """

    def __init__(self, afunc: AsyncNode, *, name: str | None = None) -> None:
        self.afunc = afunc
        self.name = name or afunc.__name__

    def __repr__(self) -> str:
        return f"GraphNode({self.name})"

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return run_coroutine_sync(self.ainvoke(input, config, **kwargs))

    async def ainvoke(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Any:
        # As LangGraph's own node wrapper: the task's config as given, else the current one.
        config = config if config is not None else ensure_config()
        return await self.afunc(input, config=config, **kwargs)


# ----------------------------------------------------------------------------- helpers
def _text_of(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return message.text


def _last_human(messages: list[AnyMessage]) -> str:
    for message in reversed(messages or []):
        if message.type == "human":
            return _text_of(message).strip()
    return ""


def _chat_model(cfg: Configuration, **overrides: Any) -> Any:
    from core.llm import get_chat_model

    return get_chat_model(
        cfg.llm_model,
        max_new_tokens=overrides.get("max_new_tokens", cfg.max_new_tokens),
        temperature=overrides.get("temperature", cfg.temperature),
    )


def _aux_config(config: RunnableConfig | None, name: str) -> RunnableConfig:
    """Child config for a helper LLM call: traced (callbacks kept) but not streamed."""
    tags = list((config or {}).get("tags") or []) + AUX_TAGS
    return {"tags": tags, "run_name": name}


def _main_text(result: Any, max_chars: int) -> str:
    """Readable text of a fetched page: the article/main element when there is one."""
    text = result.text
    if getattr(result, "is_html", False):
        from bs4 import BeautifulSoup

        soup = BeautifulSoup(text, "html.parser")
        for tag in soup(["script", "style", "noscript", "nav", "header", "footer", "aside", "form"]):
            tag.decompose()
        root = soup.find("article") or soup.find("main") or soup.body or soup
        text = root.get_text("\n")
    text = re.sub(r"[ \t]+", " ", text)
    text = re.sub(r"\n\s*\n+", "\n\n", text).strip()
    return text[:max_chars]


def _fetch_link(
    url: str, max_chars: int, deadline_s: float | None = None, max_bytes: int | None = None
) -> tuple[Document | None, str | None]:
    from core.safe_fetch import FetchError, fetch

    try:
        result = fetch(url, deadline_s=deadline_s, max_bytes=max_bytes)
        text = _main_text(result, max_chars)
    except FetchError as exc:
        return None, LINK_FAILED_NOTE.format(url=url, reason=exc.reason)
    except Exception as exc:  # noqa: BLE001 - a bad page must never crash the request
        return None, LINK_FAILED_NOTE.format(url=url, reason=str(exc) or type(exc).__name__)
    if not text:
        return None, LINK_FAILED_NOTE.format(url=url, reason="no readable text")
    return (
        Document(
            page_content=text,
            metadata={"link": getattr(result, "final_url", url) or url, "collection": "link",
                      "title": "", "source": "request link"},
        ),
        None,
    )


# ----------------------------------------------------------------------------- nodes
async def self_query(state: State, *, config: RunnableConfig | None = None) -> dict[str, Any]:
    """Work out the request and its filters (author, category, platform, dates); fetch
    any link it contains. A plain `query` input becomes the turn's human message."""
    cfg = Configuration.from_runnable_config(config)
    updates: dict[str, Any] = {"documents": "delete", "notes": "delete", "answer": ""}
    query = (state.get("query") or "").strip()
    if query:
        updates["messages"] = [HumanMessage(content=query)]
        updates["query"] = ""  # consumed: a later turn in the thread must not reuse it
        request = query
    else:
        request = _last_human(state.get("messages") or [])
    updates["request"] = request

    authors = await asyncio.to_thread(extract.known_authors)
    filters = extract.extract_filters(request, authors)
    # A name several authors share applies no filter; the answer says why.
    name_note = resolve_author(extract.URL_RE.sub(" ", request), authors).note
    if cfg.self_query_llm and request:
        prompt = cfg.self_query_prompt.format(query=extract.search_text(request))
        try:
            reply = await _chat_model(
                cfg, max_new_tokens=cfg.self_query_max_new_tokens, temperature=0.0
            ).ainvoke(
                [HumanMessage(content=prompt)],
                config=_aux_config(config, "self_query_llm"),
                max_time=cfg.expand_timeout_s,
            )
            from_llm = extract.parse_llm_filters(_text_of(reply), authors)
            # Rules win; the LLM only fills what they left empty (and only validated values).
            for key, value in from_llm.items():
                if filters.get(key) is None and value is not None:
                    filters[key] = value
        except Exception as exc:  # noqa: BLE001 - the rules' answer stands
            log.warning("self-query LLM failed: %s", exc)
    if filters.get("author") is None and cfg.author:
        filters["author"] = cfg.author
    unknown = set(cfg.filters or {}) - set(empty_filters())
    if unknown:
        raise ValueError(f"filters: unknown keys {sorted(unknown)}; use {sorted(empty_filters())}")
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
                    _fetch_link,
                    url,
                    cfg.link_max_chars,
                    settings.LINK_FETCH_DEADLINE_S,
                    settings.LINK_FETCH_MAX_BYTES,
                )
                for url in extract.find_urls(request)[:3]
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
    original = extract.search_text(state.get("request") or "", author)
    queries = [original] if original else []
    if cfg.expand_n > 0 and original:
        queries += await aexpand_query(
            original,
            cfg.expand_n,
            llm_model=cfg.llm_model,
            prompt=cfg.expand_prompt,
            max_new_tokens=cfg.expand_max_new_tokens,
            timeout_s=cfg.expand_timeout_s,
            config=_aux_config(config, "expand_query_llm"),
        )
    return {"queries": queries}


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


def _history(state: State, limit: int) -> list[dict[str, str]]:
    """Prior turns (user/assistant) before this turn's request, the latest `limit`."""
    messages = [m for m in state.get("messages") or [] if m.type in ("human", "ai")]
    if messages and messages[-1].type == "human":
        messages = messages[:-1]
    turns = [
        {"role": "user" if m.type == "human" else "assistant", "content": _text_of(m)}
        for m in messages
        if _text_of(m).strip()
    ]
    return turns[-limit:] if limit > 0 else []


def build_messages(state: State, cfg: Configuration) -> list[dict[str, str]]:
    """The twin prompt for this turn: `core.prompts.twin_messages`, the training format."""
    from core.prompts import style_examples

    context_docs = state.get("context") or []
    shown = context_docs[: max(cfg.style_examples, 0)]
    examples = style_examples(
        [(d.metadata.get("title") or "", d.page_content) for d in shown],
        cfg.style_example_tokens,
    )
    context = format_context([d.page_content for d in context_docs[len(shown) :]])
    author = (state.get("filters") or {}).get("author") or cfg.author or ""
    messages = twin_messages(
        state.get("request") or "",
        context=context,
        author=author,
        history=_history(state, cfg.history_messages),
        examples=examples,
    )
    if cfg.system_prompt != SYSTEM_PROMPT:
        messages[0]["content"] = cfg.system_prompt.replace("{author}", author or "the author")
    return messages


def _to_lc(messages: list[dict[str, str]]) -> list[BaseMessage]:
    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    return [kinds[m["role"]](content=m["content"]) for m in messages]


async def generate(state: State, *, config: RunnableConfig | None = None) -> dict[str, Any]:
    """Write the answer in the author's voice from the request, context and chat history.
    Tokens stream through the chat model's callbacks (LangServe `/stream_events`,
    LangGraph `stream_mode="messages"`)."""
    cfg = Configuration.from_runnable_config(config)
    if not (state.get("request") or "").strip():
        message = AIMessage(content="Send a request (a question or what to write) to get an answer.")
        return {"answer": message.content, "messages": [message]}
    messages = build_messages(state, cfg)
    reply = await _chat_model(cfg).ainvoke(
        _to_lc(messages), config=config, sentence_grace=cfg.sentence_grace
    )
    answer = trim_to_sentence(_text_of(reply)) if cfg.sentence_grace else _text_of(reply).strip()
    # The version that actually answered (a registry ref resolves per call: hot swaps).
    version = (reply.response_metadata or {}).get("model_version")
    message = AIMessage(
        content=answer,
        id=reply.id,
        response_metadata={"model": cfg.llm_model, "model_version": version},
    )
    return {"answer": answer, "messages": [message]}
