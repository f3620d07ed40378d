"""Per-run knobs of the twin graph. Every node reads them with
`Configuration.from_runnable_config(config)`, so Studio and LangServe callers can change
them per request (`{"configurable": {"k": 3, "expand_n": 0}}`), within the bounds of
`graph.knobs` (checked when a Configuration is built: a ValueError naming the field)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Annotated, Any

from langchain_core.runnables import RunnableConfig

from graph import prompts
from graph.state import ALL_COLLECTIONS


def _settings_llm_model() -> str:
    from core.settings import get_settings

    return get_settings().LLM_MODEL


def _settings_max_new_tokens() -> int:
    from core.settings import get_settings

    return get_settings().LLM_MAX_NEW_TOKENS


def _run_context() -> Any:
    """The current LangGraph run's `context` (where Studio and `graph.invoke(...,
    context=...)` put per-run settings), None outside a graph run."""
    from langgraph.runtime import get_runtime

    try:
        return getattr(get_runtime(), "context", None)
    except RuntimeError:  # not inside a runnable
        return None


def _default_max_per_document() -> int:
    from retrievers.variants import DEFAULT_MAX_PER_DOCUMENT

    return DEFAULT_MAX_PER_DOCUMENT


@dataclass(kw_only=True)
class Configuration:
    """Retrieval, expansion, generation and prompt settings for one run."""

    # Two passages: on held-out PEPs (benchmarks/twin_quality.py) as topical and in voice as
    # five, with a third of the prompt (time to first token 1.2 s instead of 3.5 s).
    k: Annotated[int, {"description": "passages kept after reranking"}] = 2
    # No LLM expansion by default: on the PEP eval it found nothing the request alone did
    # not, at seconds per request before the first token (benchmarks/retrieval_choice.py).
    expand_n: Annotated[int, {"description": "alternative query phrasings (0 disables)"}] = 0
    collections: list[str] = field(default_factory=lambda: list(ALL_COLLECTIONS))
    fetch_k: Annotated[int, {"description": "candidates per query and collection"}] = 20
    max_per_document: Annotated[
        int, {"description": "at most this many passages of one document (0: no limit)"}
    ] = field(default_factory=_default_max_per_document)
    reranker: str = "auto"
    author: Annotated[str, {"description": "the twin's author when the request names none"}] = ""
    filters: Annotated[
        dict[str, Any],
        {"description": "filters pinned by the caller (author, category, platform, date_from, "
                        "date_to); they win over what self-query reads from the request"},
    ] = field(default_factory=dict)

    llm_model: str = field(default_factory=_settings_llm_model)
    max_new_tokens: int = field(default_factory=_settings_max_new_tokens)
    temperature: Annotated[
        float | None, {"description": "sampling temperature; empty = the model's tuned default"}
    ] = None
    # Answers may run this many tokens past max_new_tokens to end on a full sentence.
    sentence_grace: int = 48
    history_messages: Annotated[int, {"description": "prior chat messages in the prompt"}] = 6
    # The first N reranked passages as few-shot example turns in the author's voice instead
    # of context excerpts (core.prompts.style_examples), each clipped to a token budget.
    style_examples: Annotated[
        int, {"description": "passages shown as the author's example answers (0: none)"}
    ] = 0
    style_example_tokens: int = 200

    # Self-query: deterministic extraction always runs; the LLM's JSON is used only where it
    # validates (a real author, a known category/platform, parseable dates). Off by default:
    # on 6 test requests SmolLM2-135M produced no valid JSON field (0/15, 0.5–6 s each) where
    # the rules got 15/15 in milliseconds; turn it on for a stronger LLM_MODEL.
    self_query_llm: bool = False
    self_query_max_new_tokens: int = 64
    # Expansion is bounded: a token budget and a wall-clock limit, else the original query.
    expand_max_new_tokens: int = 48
    expand_timeout_s: float = 4.0
    fetch_links: bool = True
    link_max_chars: int = 4000

    self_query_prompt: str = prompts.SELF_QUERY_PROMPT
    expand_prompt: str = prompts.EXPAND_QUERY_PROMPT
    system_prompt: str = prompts.SYSTEM_PROMPT

    def __post_init__(self) -> None:
        # The same rules as the API's 422s (graph.knobs): Studio and CLI runs obey them too.
        from graph.knobs import check_knob

        for f in fields(self):
            check_knob(f.name, getattr(self, f.name))

    @classmethod
    def from_runnable_config(cls, config: RunnableConfig | None = None) -> Configuration:
        """Build from `config["configurable"]` (ignoring keys that are not fields), on top of
        the run's LangGraph `context` when a caller (e.g. Studio) passed one."""
        configurable: dict[str, Any] = (config or {}).get("configurable") or {}
        names = {f.name for f in fields(cls) if f.init}
        values: dict[str, Any] = {}
        context = _run_context()
        if isinstance(context, cls):
            values.update({name: getattr(context, name) for name in names})
        elif isinstance(context, dict):
            values.update({k: v for k, v in context.items() if k in names and v is not None})
        values.update({k: v for k, v in configurable.items() if k in names and v is not None})
        if isinstance(values.get("collections"), str):
            values["collections"] = [c.strip() for c in values["collections"].split(",")]
        return cls(**values)

    def retriever_config(self) -> dict[str, Any]:
        """The keys `retrievers.get_retriever(**config)` understands."""
        return {
            "k": self.k,
            "expand_n": self.expand_n,
            "collections": list(self.collections),
            "fetch_k": self.fetch_k,
            "reranker": self.reranker,
            "max_per_document": self.max_per_document,
        }
