"""`GraphNode`: each node is written once, as a coroutine, and also serves sync callers.

The graph's nodes are async (the event loop stays free while they wait on the LLM or the
store); `GraphNode` gives the graph a sync entry to the same coroutine, so
`graph.invoke`/`stream`/`batch` work like `ainvoke`/`astream`.
"""

from collections.abc import Callable, Coroutine
from typing import Any

from langchain_core.runnables import Runnable, RunnableConfig, ensure_config

from core.aio import run_coroutine_sync

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
