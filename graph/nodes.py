"""What every node of the graph shares: `GraphNode`, the wrapper that lets one async node
function serve sync callers too, and how nodes call the chat model and read chat messages.

The graph's nodes are async (the event loop stays free while they wait on the LLM or the
store); `GraphNode` gives the graph a sync entry to the same coroutine, so
`graph.invoke`/`stream`/`batch` work like `ainvoke`/`astream`. Helper steps (self-query,
expansion) call the model with a config that keeps them traced but out of the user's token
stream; the answer step streams.
"""

from collections.abc import Callable, Coroutine
from typing import Any

from langchain_core.messages import AnyMessage, BaseMessage
from langchain_core.runnables import Runnable, RunnableConfig, ensure_config

from core.aio import run_coroutine_sync
from graph.configuration import Configuration

AsyncNode = Callable[..., Coroutine[Any, Any, dict[str, Any]]]
# LangGraph's "messages" stream skips chat-model runs tagged like this: helper-step tokens
# (self-query JSON, expansions) never reach the user's token stream.
AUX_TAGS = ["nostream", "twin:aux"]


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
