"""The twin's inference graph, compiled: `graph.graph` (public contract).

    START → self_query → expand_query ─Send(query × collection)→ retrieve → rerank → generate → END

Input `{"messages": [...]}` or `{"query": "..."}`; the final state has `answer`, `filters`,
`queries`, `context` (and `messages` with the answer appended). Conversation threads: the
graph is compiled with an in-memory checkpointer, pass
`{"configurable": {"thread_id": "..."}}` to continue a conversation (without a thread id a
run is stateless). `langgraph dev` / LangGraph Platform load this same object
(langgraph.json, name "twin") and use their own persistence.
"""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from graph.configuration import Configuration
from graph.nodes import (
    GraphNode,
    expand_query,
    generate,
    rerank,
    retrieve,
    route_retrieval,
    self_query,
)
from graph.state import InputState, OutputState, RetrieveTask, State


def build_graph(*, generate_answer: bool = True) -> StateGraph:
    """The graph's builder; `generate_answer=False` stops after `rerank` (the retrieval
    stage alone, for benchmarks and retrieval evaluations)."""
    builder = StateGraph(
        State, context_schema=Configuration, input_schema=InputState, output_schema=OutputState
    )
    # GraphNode: the async node functions also serve sync `invoke`/`stream`/`batch`.
    builder.add_node("self_query", GraphNode(self_query))
    builder.add_node("expand_query", GraphNode(expand_query))
    # A runnable's input type is not inferred like a function's: `retrieve` takes the
    # `Send` payload, not the state.
    builder.add_node("retrieve", GraphNode(retrieve), input_schema=RetrieveTask)
    builder.add_node("rerank", GraphNode(rerank))
    if generate_answer:
        builder.add_node("generate", GraphNode(generate))
    builder.add_edge(START, "self_query")
    builder.add_edge("self_query", "expand_query")
    builder.add_conditional_edges("expand_query", route_retrieval, ["retrieve"])
    builder.add_edge("retrieve", "rerank")
    if generate_answer:
        builder.add_edge("rerank", "generate")
        builder.add_edge("generate", END)
    else:
        builder.add_edge("rerank", END)
    return builder


class TwinGraph(CompiledStateGraph):
    """The compiled graph: conversation threads kept in an in-memory checkpointer.

    Runs that name a `thread_id` are checkpointed (a conversation continues); runs without
    one (LangServe `/invoke`, evaluations, one-shot calls) are stateless instead of failing.
    The saver is held aside rather than as `graph.checkpointer`, so `langgraph dev` /
    LangGraph Platform (which refuse graphs that bring their own checkpointer) can load this
    same object and plug in their own persistence.
    """

    def _resolve_checkpointer(self, config: RunnableConfig) -> Any:
        resolved = super()._resolve_checkpointer(config)
        if resolved is not None or self.checkpointer is False:
            return resolved
        if (config.get("configurable") or {}).get("thread_id"):
            return getattr(self, "thread_saver", None)
        return None


def compile_graph(
    checkpointer: Any = None, *, generate_answer: bool = True, **kwargs: Any
) -> CompiledStateGraph:
    """Compile the graph; with `checkpointer`, only runs with a `thread_id` use it."""
    compiled = build_graph(generate_answer=generate_answer).compile(name="twin", **kwargs)
    if checkpointer is not None:
        compiled.__class__ = TwinGraph
        compiled.thread_saver = checkpointer
    return compiled


def make_graph(config: Any = None) -> CompiledStateGraph:
    """Factory variant without a checkpointer (the server persists threads)."""
    return compile_graph()


graph = compile_graph(checkpointer=InMemorySaver())
