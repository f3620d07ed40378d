"""The twin's LangGraph RAG graph. `graph.graph` is the compiled graph (public contract)."""

from graph.builder import graph
from graph.configuration import Configuration
from graph.state import InputState, OutputState, State

__all__ = ["Configuration", "InputState", "OutputState", "State", "graph"]
