"""How long to wait before trying a server again, shared by the crawler (`core.safe_fetch`)
and the remote LLM client (`core.llm.remote`): exponential back-off that gives way to a
longer `Retry-After` from the server, both capped. A tenacity wait strategy."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime

from tenacity import RetryCallState, wait_exponential


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """A `Retry-After` header (seconds or an HTTP date) in seconds from now, or None."""
    value = headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def wait_backoff_or_retry_after(base_s: float, cap_s: float) -> Callable[[RetryCallState], float]:
    """`base_s` after the first failed attempt, doubling after each further one, or the
    server's Retry-After when longer; never more than `cap_s`.

    The Retry-After hint is read from the failed attempt's exception, as its `retry_after`
    attribute (seconds or None): the retrying code knows where the answer's headers are."""
    backoff = wait_exponential(multiplier=base_s, exp_base=2)

    def wait(retry_state: RetryCallState) -> float:
        delay = backoff(retry_state)
        failure = retry_state.outcome.exception() if retry_state.outcome else None
        hint = getattr(failure, "retry_after", None)
        if hint is not None:
            delay = max(delay, hint)
        return min(delay, cap_s)

    return wait
