"""Per-run settings of the twin graph, each declared once here: type, default, rule and
description (`setting`). Every node reads them with `Configuration.from_runnable_config
(config)`, so Studio and LangServe callers can change them per request
(`{"configurable": {"k": 3, "expand_n": 0}}`). From the same declarations come the rule
book (`check_setting`: a Configuration is checked when it is built, a ValueError naming the
field) and the server's request schema (`graph.serving.configuration_specs`)."""

from __future__ import annotations

from dataclasses import MISSING, Field, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import RunnableConfig

from core.prompts import EXPAND_QUERY_PROMPT, SELF_QUERY_PROMPT, TWIN_SYSTEM_PROMPT
from graph.knobs import (
    Collections,
    Filters,
    Flag,
    LlmModel,
    Number,
    Prompt,
    Reranker,
    Rule,
    Text,
)
from graph.state import ALL_COLLECTIONS, FILTER_KEYS

if TYPE_CHECKING:
    from retrievers.retriever import RetrievalRequest


def setting(
    rule: Rule, description: str, *, default: Any = MISSING, factory: Any = MISSING
) -> Any:
    """A Configuration field with its rule and description (read by `check_setting` and
    the server's request schema)."""
    metadata = {"rule": rule.for_default(default), "description": description}
    if factory is not MISSING:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def _settings_llm_model() -> str:
    from core.settings import get_settings

    return get_settings().LLM_MODEL


def _settings_max_new_tokens() -> int:
    from core.settings import get_settings

    return get_settings().LLM_MAX_NEW_TOKENS


def _default_max_per_document() -> int:
    from retrievers.variants import DEFAULT_MAX_PER_DOCUMENT

    return DEFAULT_MAX_PER_DOCUMENT


def _run_context() -> Any:
    """The current LangGraph run's `context` (where Studio and `graph.invoke(...,
    context=...)` put per-run settings), None outside a graph run."""
    from langgraph.runtime import get_runtime

    try:
        return getattr(get_runtime(), "context", None)
    except RuntimeError:  # not inside a runnable
        return None


@dataclass(kw_only=True)
class Configuration:
    """Retrieval, expansion, generation and prompt settings for one run."""

    # Two passages: on held-out PEPs (benchmarks/twin_quality.py) as topical and in voice as
    # five, with a third of the prompt (time to first token 1.2 s instead of 3.5 s).
    k: int = setting(Number(1, 20), "passages kept after reranking", default=2)
    # No LLM expansion by default: on the PEP eval it found nothing the request alone did
    # not, at seconds per request before the first token (benchmarks/retrieval_choice.py).
    expand_n: int = setting(Number(0, 5), "alternative query phrasings (0 disables)", default=0)
    collections: list[str] = setting(
        Collections(), "categories to search (articles, posts, repositories)",
        factory=lambda: list(ALL_COLLECTIONS),
    )  # fmt: skip
    fetch_k: int = setting(Number(1, 200), "candidates per query and collection", default=20)
    max_per_document: int = setting(
        Number(0, 50), "at most this many passages of one document (0: no limit)",
        factory=_default_max_per_document,
    )  # fmt: skip
    reranker: str = setting(
        Reranker(), "retrieval recipe (auto: the measured default)", default="auto"
    )
    author: str = setting(Text(), "the twin's author when the request names none", default="")
    filters: dict[str, Any] = setting(
        Filters(),
        f"filters pinned by the caller ({', '.join(FILTER_KEYS)}); they win over what "
        "self-query reads from the request",
        factory=dict,
    )

    llm_model: str = setting(
        LlmModel(), "the model that answers (LLM_MODEL, allow-listed or a registry ref)",
        factory=_settings_llm_model,
    )  # fmt: skip
    max_new_tokens: int = setting(
        Number(1, None), "answer length in tokens (at most LLM_MAX_NEW_TOKENS)",
        factory=_settings_max_new_tokens,
    )  # fmt: skip
    temperature: float | None = setting(
        Number(0.0, 2.0), "sampling temperature; empty = the model's tuned default", default=None
    )
    # Answers may run this many tokens past max_new_tokens to end on a full sentence.
    sentence_grace: int = setting(
        Number(0, 128), "tokens an answer may run on to end its sentence", default=48
    )
    history_messages: int = setting(Number(0, 50), "prior chat messages in the prompt", default=6)
    # The first N reranked passages as few-shot example turns in the author's voice instead
    # of context excerpts (core.prompts.style_examples), each clipped to a token budget.
    style_examples: int = setting(
        Number(0, 20), "passages shown as the author's example answers (0: none)", default=0
    )
    style_example_tokens: int = setting(
        Number(16, 2000), "token budget of each example answer", default=200
    )

    # Self-query: deterministic extraction always runs; the LLM's JSON is used only where it
    # validates (a real author, a known category/platform, parseable dates). Off by default:
    # on 6 test requests SmolLM2-135M produced no valid JSON field (0/15, 0.5–6 s each) where
    # the rules got 15/15 in milliseconds; turn it on for a stronger LLM_MODEL.
    self_query_llm: bool = setting(Flag(), "also ask the LLM for the filters", default=False)
    self_query_max_new_tokens: int = setting(
        Number(1, 256), "token budget of the self-query LLM", default=64
    )
    # Expansion is bounded: a token budget and a wall-clock limit, else the original query.
    expand_max_new_tokens: int = setting(
        Number(1, 256), "token budget of the expansion LLM", default=48
    )
    expand_timeout_s: float = setting(
        Number(0.0, 30.0), "time limit of each helper LLM call (seconds)", default=4.0
    )
    fetch_links: bool = setting(Flag(), "read the pages a request links to", default=True)
    link_max_chars: int = setting(
        Number(0, 20_000), "characters kept of each linked page", default=4000
    )

    self_query_prompt: str = setting(
        Prompt(frozenset({"query"})), "self-query prompt ({query})", default=SELF_QUERY_PROMPT
    )
    expand_prompt: str = setting(
        Prompt(frozenset({"n", "query"})), "expansion prompt ({n}, {query})",
        default=EXPAND_QUERY_PROMPT,
    )  # fmt: skip
    # Filled by plain replacement of `{author}`, so it has no format fields.
    system_prompt: str = setting(
        Prompt(None), "the twin's system prompt ({author})", default=TWIN_SYSTEM_PROMPT
    )

    def __post_init__(self) -> None:
        # The same rules as the API's 422s: Studio and CLI runs obey them too.
        for f in fields(self):
            check_setting(f.name, getattr(self, f.name))

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

    def retrieval(
        self, queries: list[str], filters: dict[str, Any], **overrides: Any
    ) -> RetrievalRequest:
        """This run's retrieval of `queries` under `filters` (the resolved ones, not
        `self.filters`), as `retrievers.retrieve` takes it; `overrides` are request fields."""
        from retrievers.retriever import RetrievalRequest

        base = RetrievalRequest(
            queries=tuple(queries),
            filters=filters,
            collections=tuple(self.collections),
            reranker=self.reranker,
            k=self.k,
            fetch_k=self.fetch_k,
            max_per_document=self.max_per_document,
        )
        return replace(base, **overrides)


SETTINGS: dict[str, Field[Any]] = {f.name: f for f in fields(Configuration)}


def check_setting(name: str, value: Any) -> Any:
    """`value` if a caller may set `name` to it (None: unset); else InvalidKnob naming the
    field. Names that are not settings pass unchecked."""
    if value is None or name not in SETTINGS:
        return value
    return SETTINGS[name].metadata["rule"].check(name, value)


def bounds(name: str) -> tuple[float, float] | None:
    """The numeric range of setting `name` (None for a setting that is not a number)."""
    return SETTINGS[name].metadata["rule"].bounds()
