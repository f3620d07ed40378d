"""The Opik adapter (`core.opik_usage`) against the pinned opik: what it relies on exists,
and a twin LLM run's token counts come out as Opik usage."""

from __future__ import annotations

import importlib.metadata


def test_pinned_opik_still_has_what_the_adapter_uses():
    from opik.integrations.langchain.provider_usage_extractors import usage_extractor

    from core.opik_usage import PINNED_OPIK, TwinUsageExtractor, register_twin_usage_extractor

    assert importlib.metadata.version("opik") == PINNED_OPIK, (
        "opik changed: re-check core/opik_usage.py against the new version, then update "
        "PINNED_OPIK"
    )
    registered = usage_extractor._REGISTERED_PROVIDER_USAGE_EXTRACTORS
    assert isinstance(registered, list)
    register_twin_usage_extractor()
    register_twin_usage_extractor()  # idempotent
    ours = [e for e in registered if isinstance(e, TwinUsageExtractor)]
    assert len(ours) == 1 and registered[0] is ours[0]


def test_twin_runs_are_recognised_and_counted():
    from core.opik_usage import TwinUsageExtractor

    run = {
        "extra": {"invocation_params": {"_type": "llm-twin", "ref": "offline:x"}},
        "outputs": {"generations": [[{"message": {"kwargs": {"usage_metadata": {
            "input_tokens": 12, "output_tokens": 5, "total_tokens": 17}}}}]]},
    }  # fmt: skip
    extractor = TwinUsageExtractor()
    assert extractor.is_provider_run(run)
    assert not extractor.is_provider_run({"extra": {"invocation_params": {"_type": "openai"}}})
    info = extractor.get_llm_usage_info(run)
    assert info.provider == "llm-twin" and info.model == "offline:x"
    assert (info.usage.prompt_tokens, info.usage.completion_tokens) == (12, 5)
