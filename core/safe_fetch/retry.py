"""The crawl retry policy (tenacity): `CRAWL_RETRIES` attempts of one GET. Connect errors,
timeouts, 429 and 5xx are tried again after an exponential back-off (BACKOFF_BASE_S,
doubling; a longer `Retry-After` honoured; at most MAX_BACKOFF_S); anything else (other
4xx, size caps, the fetch deadline) is final at once."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import httpx
from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt

from core.backoff import retry_after_seconds, wait_backoff_or_retry_after
from core.safe_fetch.deadline import DeadlineExceeded, deadline_passed, remaining
from core.safe_fetch.politeness import host_key, rate_limiter
from core.safe_fetch.result import FetchError
from core.safe_fetch.transfer import Answer, get_once

if TYPE_CHECKING:
    from core.settings import Settings

BACKOFF_BASE_S = 0.5  # first retry waits this long, then doubles
MAX_BACKOFF_S = 30.0
_TIMEOUT = "timeout"


class _TryAgain(Exception):
    """An attempt that failed in a way worth retrying: what went wrong, for the final message,
    and the server's Retry-After (read by the wait strategy)."""

    def __init__(self, problem: str, retry_after: float | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.retry_after = retry_after


def _sleep_within_deadline(seconds: float) -> None:
    # A back-off that would outlast the fetch deadline ends the fetch now instead.
    remaining(needed=seconds)
    time.sleep(seconds)


def get_with_retries(
    url: str,
    addresses: list[str],
    settings: Settings,
    *,
    interval: float,
    max_bytes: int,
    attempts: int,
    display_url: str,
) -> Answer:
    """GET `url` (see `get_once`) up to `attempts` times, each attempt waiting for its slot
    in the host's rate limit; FetchError "… after N tries" when every attempt failed."""
    host = host_key(url)

    def attempt() -> Answer:
        remaining()
        rate_limiter.wait(host, interval)
        try:
            answer = get_once(url, addresses, settings, max_bytes, display_url)
        except httpx.TimeoutException:
            raise _TryAgain(_TIMEOUT) from None
        except DeadlineExceeded:
            if deadline_passed():
                raise
            raise _TryAgain(_TIMEOUT) from None  # this attempt's CRAWL_TIMEOUT_S ran out
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError) as exc:
            raise _TryAgain(f"connection failed ({exc.__class__.__name__}: {exc})") from None
        except httpx.HTTPError as exc:
            raise FetchError(
                display_url, f"request failed ({exc.__class__.__name__}: {exc})"
            ) from None
        if answer.status == 429 or answer.status >= 500:
            raise _TryAgain(f"HTTP {answer.status}", retry_after_seconds(answer.headers))
        return answer

    retrying = Retrying(
        stop=stop_after_attempt(attempts),
        # Read at call time, so a changed BACKOFF_BASE_S (tests) applies.
        wait=wait_backoff_or_retry_after(BACKOFF_BASE_S, MAX_BACKOFF_S),
        retry=retry_if_exception_type(_TryAgain),
        sleep=_sleep_within_deadline,
    )
    try:
        return retrying(attempt)
    except RetryError as exc:
        failure = exc.last_attempt.exception()
        problem = failure.problem if isinstance(failure, _TryAgain) else str(failure)
    tries = f"{attempts} {'try' if attempts == 1 else 'tries'}"
    if problem == _TIMEOUT:
        raise FetchError(display_url, f"timed out after {tries}")
    raise FetchError(display_url, f"{problem} after {tries}")
