"""How the nodes call the chat model and read chat messages.

Helper steps (self-query, expansion) call the model with a config that keeps them traced
but out of the user's token stream; the answer step streams.
"""

from typing import Any

from langchain_core.messages import AnyMessage, BaseMessage
from langchain_core.runnables import RunnableConfig

from graph.configuration import Configuration

# LangGraph's "messages" stream skips chat-model runs tagged like this: helper-step tokens
# (self-query JSON, expansions) never reach the user's token stream.
AUX_TAGS = ["nostream", "twin:aux"]


def text_of(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return message.text


def last_human(messages: list[AnyMessage]) -> str:
    for message in reversed(messages or []):
        if message.type == "human":
            return text_of(message).strip()
    return ""


def chat_model(cfg: Configuration, **overrides: Any) -> Any:
    from core.llm import get_chat_model

    return get_chat_model(
        cfg.llm_model,
        max_new_tokens=overrides.get("max_new_tokens", cfg.max_new_tokens),
        temperature=overrides.get("temperature", cfg.temperature),
    )


def aux_config(config: RunnableConfig | None, name: str) -> RunnableConfig:
    """Child config for a helper LLM call: traced (callbacks kept) but not streamed."""
    tags = list((config or {}).get("tags") or []) + AUX_TAGS
    return {"tags": tags, "run_name": name}
