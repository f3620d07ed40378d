"""The twin's inference graph, compiled: `graph.graph` (public contract).

    START → self_query → expand_query ─Send(query × collection)→ retrieve → rerank → generate → END

Input `{"messages": [...]}` or `{"query": "..."}`; the final state has `answer`, `filters`,
`queries`, `context` (and `messages` with the answer appended). `graph` carries no
checkpointer: `langgraph dev` / LangGraph Platform load this object (langgraph.json, name
"twin") and keep threads in their own persistence; the API server compiles the same
builder with its persistent checkpointer (`graph.threads.ThreadedGraph`), and so can any
caller that wants conversation threads (`thread_id` in `configurable`).
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from graph.configuration import Configuration
from graph.generation_nodes import generate
from graph.nodes import GraphNode
from graph.query_nodes import expand_query, self_query
from graph.retrieval_nodes import rerank, retrieve, route_retrieval
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


def compile_graph(
    checkpointer: Any = None, *, generate_answer: bool = True, **kwargs: Any
) -> CompiledStateGraph:
    """Compile the graph (with `checkpointer`: every run needs a `thread_id`; see
    `graph.threads.ThreadedGraph` for a graph that takes both kinds of runs)."""
    return build_graph(generate_answer=generate_answer).compile(
        checkpointer=checkpointer, name="twin", **kwargs
    )


graph = compile_graph()
