"""The LLM judge behind Opik's LLM-as-a-judge metrics (Hallucination, AnswerRelevance).

- `LLM_BASE_URL` set → the OpenAI-compatible server (`core.llm` "openai" backend; model
  `JUDGE_MODEL`, else `LLM_MODEL`): labelled `openai-compatible:<model>`.
- otherwise → the offline SmolLM2-135M-Instruct in process, labelled `local-weak`. A 135M
  model is a poor judge: its verdicts are reported but the gate does not decide on them,
  and replies it cannot turn into the metric's JSON count as unscored, never as a crash.

Both go through `TwinJudgeModel`, an `OpikBaseModel` that implements
`generate_chat_completion` (what Opik's judges call) as well as `generate_string`. For the
local model it starts the reply with the first key of the metric's response format
(`{"score":`) and stops it at the closing brace, a cheap stand-in for constrained JSON
decoding that a weak model needs.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from opik.evaluation.models import OpikBaseModel

from core.settings import OFFLINE_SMOLLM2, get_settings

log = logging.getLogger(__name__)

LOCAL_WEAK = "local-weak"
JUDGE_MAX_NEW_TOKENS = 96


class TwinJudgeModel(OpikBaseModel):
    """An Opik judge model backed by a `core.llm` backend (`generate(...) -> str`)."""

    def __init__(self, llm: Any, label: str, prefill_json: bool, max_new_tokens: int) -> None:
        super().__init__(model_name=getattr(llm, "name", label))
        self.llm = llm
        self.label = label
        self.prefill_json = prefill_json
        self.max_new_tokens = max_new_tokens
        self.calls = 0

    def _prefill(self, response_format: Any) -> str:
        if not self.prefill_json or response_format is None:
            return ""
        fields = list(getattr(response_format, "model_fields", {}) or {})
        return f'{{"{fields[0]}": ' if fields else "{"

    def _complete(self, messages: list[dict[str, Any]], response_format: Any = None) -> str:
        self.calls += 1
        messages = [{"role": m["role"], "content": str(m.get("content", ""))} for m in messages]
        prefill = self._prefill(response_format)
        if not prefill:
            return self.llm.generate(messages, max_new_tokens=self.max_new_tokens)
        prompt = self.llm.render(messages) + prefill
        # Stop at the first "}" (the verdict objects are flat): a small model rambles on.
        reply = self.llm.generate(prompt, max_new_tokens=self.max_new_tokens, stop=["}"])
        return prefill + reply.rstrip().rstrip("}") + "}"

    def generate_string(self, input: str, response_format: Any = None, **kwargs: Any) -> str:
        return self._complete([{"role": "user", "content": input}], response_format)

    def generate_provider_response(self, messages: list[dict[str, Any]], **kwargs: Any) -> Any:
        return {"role": "assistant", "content": self._complete(messages)}

    def generate_chat_completion(
        self, messages: list[dict[str, Any]], response_format: Any = None, **kwargs: Any
    ) -> dict[str, str]:
        return {"role": "assistant", "content": self._complete(messages, response_format)}

    async def agenerate_string(self, input: str, response_format: Any = None, **kwargs: Any) -> str:
        return self.generate_string(input, response_format)

    async def agenerate_provider_response(
        self, messages: list[dict[str, Any]], **kwargs: Any
    ) -> Any:
        return self.generate_provider_response(messages)

    async def agenerate_chat_completion(
        self, messages: list[dict[str, Any]], response_format: Any = None, **kwargs: Any
    ) -> dict[str, str]:
        return self.generate_chat_completion(messages, response_format)


def get_judge(ref: str | None = None, max_new_tokens: int = JUDGE_MAX_NEW_TOKENS) -> TwinJudgeModel:
    """The configured judge: the OpenAI-compatible server when set, else the local model."""
    from core.llm import get_llm

    settings = get_settings()
    if settings.LLM_BASE_URL:
        llm = get_llm(ref or settings.JUDGE_MODEL or settings.LLM_MODEL, backend="openai")
        return TwinJudgeModel(
            llm, f"openai-compatible:{llm.model}", prefill_json=False, max_new_tokens=512
        )
    # The small model keeps ~2k-token judge prompts affordable on a CPU; it stays labelled weak.
    llm = get_llm(ref or OFFLINE_SMOLLM2)
    return TwinJudgeModel(llm, LOCAL_WEAK, prefill_json=True, max_new_tokens=max_new_tokens)


def score_metric(metric: Any, **kwargs: Any) -> dict[str, Any]:
    """Run one Opik metric; a reply the metric cannot parse is `unscored`, not an error."""
    from opik.exceptions import MetricComputationError

    # Opik logs every parse failure with a traceback at ERROR level: counted here instead.
    quiet = [
        logging.getLogger(name)
        for name in (
            "opik.evaluation.metrics.llm_judges.hallucination.parser",
            "opik.evaluation.metrics.llm_judges.answer_relevance.parser",
        )
    ]
    levels = [lg.level for lg in quiet]
    for lg in quiet:
        lg.setLevel(logging.CRITICAL)
    try:
        result = metric.score(**kwargs)
    except (MetricComputationError, ValueError, KeyError, json.JSONDecodeError) as exc:
        return {"value": None, "reason": f"unscored: {exc}"[:300]}
    finally:
        for lg, level in zip(quiet, levels, strict=True):
            lg.setLevel(level)
    if result.scoring_failed:
        return {"value": None, "reason": f"unscored: {result.reason}"[:300]}
    return {"value": float(result.value), "reason": (result.reason or "")[:300]}
