"""The answer node: the twin prompt for this turn (the format training renders), and the
reply in the author's voice."""

from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig

from core.llm import trim_to_sentence
from graph.configuration import Configuration
from graph.node_llm import chat_model, text_of
from graph.prompts import SYSTEM_PROMPT, format_context, twin_messages
from graph.state import State


def _history(state: State, limit: int) -> list[dict[str, str]]:
    """Prior turns (user/assistant) before this turn's request, the latest `limit`."""
    messages = [m for m in state.get("messages") or [] if m.type in ("human", "ai")]
    if messages and messages[-1].type == "human":
        messages = messages[:-1]
    turns = [
        {"role": "user" if m.type == "human" else "assistant", "content": text_of(m)}
        for m in messages
        if text_of(m).strip()
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
    reply = await chat_model(cfg).ainvoke(
        _to_lc(messages), config=config, sentence_grace=cfg.sentence_grace
    )
    answer = trim_to_sentence(text_of(reply)) if cfg.sentence_grace else text_of(reply).strip()
    # The version that actually answered (a registry ref resolves per call: hot swaps).
    version = (reply.response_metadata or {}).get("model_version")
    message = AIMessage(
        content=answer,
        id=reply.id,
        response_metadata={"model": cfg.llm_model, "model_version": version},
    )
    return {"answer": answer, "messages": [message]}
