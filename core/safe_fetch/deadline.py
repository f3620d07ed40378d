"""The overall deadline of one `fetch` call (robots.txt, redirects, retries and back-off
together), kept in a context variable so every step of that call sees the same budget."""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager

# The absolute time (time.monotonic) by which the current `fetch` must be done, if any.
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "fetch_deadline", default=None
)


class DeadlineExceeded(Exception):
    """The current fetch has no time left (turned into a FetchError by `fetch`)."""


@contextmanager
def fetch_deadline(seconds: float | None) -> Iterator[None]:
    """Bound everything inside the block by `seconds` from now (None: no bound)."""
    token = _deadline.set(time.monotonic() + seconds if seconds is not None else None)
    try:
        yield
    finally:
        _deadline.reset(token)


def remaining(needed: float = 0.0) -> float:
    """Seconds left before the fetch deadline (inf without one); DeadlineExceeded when
    `needed` seconds are more than that."""
    deadline = _deadline.get()
    if deadline is None:
        return float("inf")
    left = deadline - time.monotonic()
    if left <= needed:
        raise DeadlineExceeded()
    return left


def deadline_passed() -> bool:
    """Whether the fetch deadline is set and already behind us."""
    deadline = _deadline.get()
    return deadline is not None and deadline <= time.monotonic()
