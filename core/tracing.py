"""Opik tracing: one trace per request, a span per graph node and per LLM call.

Tracing is on when Opik is configured through its own settings — `OPIK_URL_OVERRIDE`,
`OPIK_API_KEY` or an Opik config file (`~/.opik.config` / `OPIK_CONFIG_PATH`) — and
`OPIK_TRACK_DISABLE` is not true. Otherwise it is off: one notice is logged, the `opik`
package is never imported, so nothing is sent and nothing waits at exit.

    tracer = new_tracer(metadata={...})          # None when tracing is off
    graph.invoke(state, {"callbacks": [tracer]})  # LangChain callback: OpikTracer
    trace_id = trace_id_of(tracer)                # after the run ended
    log_feedback(trace_id, 0.9, "great")          # PUT …/traces/feedback-scores
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from langchain_core.callbacks import BaseCallbackHandler

log = logging.getLogger(__name__)
FEEDBACK_SCORE_NAME = "user_feedback"
DEFAULT_PROJECT = "llm-twin"
_state_lock = threading.Lock()
_enabled: bool | None = None


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def opik_configured() -> bool:
    """Whether Opik's own settings point somewhere (no import of `opik` needed)."""
    if _truthy(os.environ.get("OPIK_TRACK_DISABLE")):
        return False
    if os.environ.get("OPIK_URL_OVERRIDE") or os.environ.get("OPIK_API_KEY"):
        return True
    config_path = os.environ.get("OPIK_CONFIG_PATH", "").strip() or "~/.opik.config"
    return Path(config_path).expanduser().is_file()


def tracing_enabled() -> bool:
    """Decided once per process (tests call `reset_tracing()` after changing the env)."""
    global _enabled
    with _state_lock:
        if _enabled is None:
            _enabled = opik_configured()
            if _enabled:
                os.environ.setdefault("OPIK_PROJECT_NAME", DEFAULT_PROJECT)
                log.info("Opik tracing on (project %s)", os.environ.get("OPIK_PROJECT_NAME"))
            else:
                log.warning(
                    "Opik tracing is off: set OPIK_URL_OVERRIDE (self-hosted) or OPIK_API_KEY "
                    "(Comet cloud), or run `opik configure`, to trace requests."
                )
        return _enabled


def reset_tracing() -> None:
    """Forget the on/off decision and Opik's cached client and config (tests)."""
    global _enabled
    with _state_lock:
        was_enabled = _enabled
        _enabled = None
    if was_enabled:
        flush()
        from opik.api_objects import opik_client

        opik_client.reset_global_client(end_client=True)


def new_tracer(
    *,
    metadata: dict[str, Any] | None = None,
    tags: list[str] | None = None,
    thread_id: str | None = None,
    graph: Any = None,
) -> BaseCallbackHandler | None:
    """A fresh `OpikTracer` for one request (None when tracing is off).

    One tracer per request keeps concurrent requests' traces apart and lets the caller
    read the trace id afterwards (`trace_id_of`).
    """
    if not tracing_enabled():
        return None
    from core.telemetry import disable_third_party_telemetry

    disable_third_party_telemetry()
    from opik.integrations.langchain import OpikTracer

    from core.opik_usage import register_twin_usage_extractor

    register_twin_usage_extractor()

    kwargs: dict[str, Any] = {
        "tags": tags or ["twin"],
        "metadata": dict(metadata or {}),
        "project_name": os.environ.get("OPIK_PROJECT_NAME") or DEFAULT_PROJECT,
    }
    if thread_id:
        kwargs["thread_id"] = str(thread_id)
    if graph is not None:
        kwargs["graph"] = graph
    return OpikTracer(**kwargs)


def trace_id_of(tracer: Any) -> str | None:
    """The id of the (last) trace a tracer created, once its root run has ended."""
    if tracer is None:
        return None
    traces = tracer.created_traces()
    return str(traces[-1].id) if traces else None


def log_feedback(
    trace_id: str, score: float, comment: str | None = None, name: str = FEEDBACK_SCORE_NAME
) -> bool:
    """Attach a feedback score to a trace; False when tracing is off or Opik refused it."""
    if not trace_id or not tracing_enabled():
        return False
    try:
        import opik

        client = opik.get_global_client()
        entry: dict[str, Any] = {"id": trace_id, "name": name, "value": float(score)}
        if comment:
            entry["reason"] = comment
        project = os.environ.get("OPIK_PROJECT_NAME") or DEFAULT_PROJECT
        client.log_traces_feedback_scores([entry], project_name=project)
        client.flush()
        return True
    except Exception as exc:  # noqa: BLE001 - feedback must not fail the request
        log.warning("could not send feedback to Opik: %s", exc)
        return False


def flush(timeout: float | None = 5.0) -> None:
    """Send what Opik has buffered (end of a test, server shutdown)."""
    if not _enabled:
        return
    try:
        import opik

        opik.get_global_client().flush(timeout=int(timeout) if timeout else None)
    except Exception as exc:  # noqa: BLE001
        log.warning("Opik flush failed: %s", exc)
