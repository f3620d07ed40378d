"""The answer node: the twin prompt for this turn (the format training renders), and the
reply in the author's voice.

The prompt stays in LangChain messages from the graph's state to the chat model: prior turns
pass through as they are, and the system prompt is rendered once with all it needs.
"""

import asyncio
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    convert_to_messages,
)
from langchain_core.runnables import RunnableConfig

from core.llm import trim_to_sentence
from core.prompts import (
    drop_vendor_persona,
    format_context,
    is_small_talk,
    small_talk_examples,
    style_examples,
    twin_reply_to_small_talk,
    twin_system_prompt,
    twin_user_turn,
)
from graph.configuration import Configuration
from graph.nodes import chat_model, text_of
from graph.state import State
from retrievers.author_corpus import grounding_kwargs


def _history(state: State, limit: int) -> list[BaseMessage]:
    """Prior turns (user/assistant) before this turn's request, the latest `limit`."""
    messages = [m for m in state.get("messages") or [] if m.type in ("human", "ai")]
    if messages and messages[-1].type == "human":
        messages = messages[:-1]
    turns = [m for m in messages if text_of(m).strip()]
    return turns[-limit:] if limit > 0 else []


def build_messages(state: State, cfg: Configuration) -> list[BaseMessage]:
    """The twin prompt for this turn, in the order of `core.prompts.twin_messages` (the
    training format): system, example turns, prior turns, then the request after the
    context excerpts."""
    request = state.get("request") or ""
    author = (state.get("filters") or {}).get("author") or cfg.author or ""
    small_talk = is_small_talk(request)
    if small_talk:
        # Nothing to write about: no excerpts, and one turn of the twin introducing itself.
        examples, context = small_talk_examples(author), ""
    else:
        context_docs = state.get("context") or []
        shown = context_docs[: max(cfg.style_examples, 0)]
        examples = style_examples(
            [(d.metadata.get("title") or "", d.page_content) for d in shown],
            cfg.style_example_tokens,
        )
        context = format_context([d.page_content for d in context_docs[len(shown) :]])
    return [
        SystemMessage(content=twin_system_prompt(author, cfg.system_prompt, small_talk=small_talk)),
        *convert_to_messages(examples),
        *_history(state, cfg.history_messages),
        HumanMessage(content=twin_user_turn(request, context)),
    ]


async def grounding(state: State, cfg: Configuration) -> dict[str, Any]:
    """Generation kwargs that keep the answer to names the prompt or the author's writing
    holds (core/llm/grounded_names.py); small talk has nothing to ground."""
    if is_small_talk(state.get("request") or ""):
        return {}
    author = (state.get("filters") or {}).get("author") or cfg.author or ""
    return await asyncio.to_thread(grounding_kwargs, author)


async def generate(state: State, *, config: RunnableConfig | None = None) -> dict[str, Any]:
    """Write the answer in the author's voice from the request, context and chat history.
    Tokens stream through the chat model's callbacks (LangServe `/stream_events`,
    LangGraph `stream_mode="messages"`)."""
    cfg = Configuration.from_runnable_config(config)
    if not (state.get("request") or "").strip():
        message = AIMessage(
            content="Send a request (a question or what to write) to get an answer."
        )
        return {"answer": message.content, "messages": [message]}
    reply = await chat_model(cfg).ainvoke(
        build_messages(state, cfg),
        config=config,
        sentence_grace=cfg.sentence_grace,
        **await grounding(state, cfg),
    )
    answer = trim_to_sentence(text_of(reply)) if cfg.sentence_grace else text_of(reply).strip()
    # The twin never speaks as a vendor's assistant ("I'm an AI language model created by…").
    answer = drop_vendor_persona(answer)
    if is_small_talk(state.get("request") or "") or not answer:
        author = (state.get("filters") or {}).get("author") or cfg.author or ""
        answer = twin_reply_to_small_talk(state.get("request") or "hi", answer, author)
    # The version that actually answered (a registry ref resolves per call: hot swaps).
    version = (reply.response_metadata or {}).get("model_version")
    message = AIMessage(
        content=answer,
        id=reply.id,
        response_metadata={"model": cfg.llm_model, "model_version": version},
    )
    return {"answer": answer, "messages": [message]}
