"""The one place that reaches into Opik's internals: token usage of the twin's own model.

Opik's LangChain tracer reads token counts only from runs of providers it knows, through a
list of extractors that is module state (`usage_extractor._REGISTERED_PROVIDER_USAGE_
EXTRACTORS`, opik 2.2; no public registration hook). This adapter adds one for the twin's
in-process chat model (`core.llm.TwinChatModel`, `_type` "llm-twin"). It is written for the
opik version pinned in pyproject.toml; `tests/test_opik_usage.py` fails loudly when an
upgrade moves what it relies on.
"""

from __future__ import annotations

from typing import Any

PINNED_OPIK = "2.2.122"


class TwinUsageExtractor:
    """Token counts of the twin's own chat model (`core.llm.TwinChatModel`) for LLM spans.

    Opik only reads usage from runs of providers it knows; our in-process model reports
    LangChain `usage_metadata`, which this maps to Opik's usage fields.
    """

    PROVIDER = "llm-twin"

    def is_provider_run(self, run_dict: dict[str, Any]) -> bool:
        params = (run_dict.get("extra") or {}).get("invocation_params") or {}
        return params.get("_type") == "llm-twin"

    def get_llm_usage_info(self, run_dict: dict[str, Any]) -> Any:
        from opik import llm_usage
        from opik.integrations.langchain.provider_usage_extractors import (
            langchain_run_helpers,
        )

        usage = langchain_run_helpers.try_get_token_usage(run_dict)
        opik_usage = (
            llm_usage.OpikUsage.from_openai_completions_dict(
                usage.map_to_openai_completions_usage()
            )
            if usage is not None
            else None
        )
        params = (run_dict.get("extra") or {}).get("invocation_params") or {}
        return llm_usage.LLMUsageInfo(provider=self.PROVIDER, model=params.get("ref"), usage=opik_usage)


def register_twin_usage_extractor() -> None:
    """Put the twin's extractor first in Opik's list (once)."""
    from opik.integrations.langchain.provider_usage_extractors import usage_extractor

    registered = usage_extractor._REGISTERED_PROVIDER_USAGE_EXTRACTORS
    if not any(isinstance(e, TwinUsageExtractor) for e in registered):
        registered.insert(0, TwinUsageExtractor())
