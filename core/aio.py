"""Running a coroutine from sync code (the one async/sync bridge of the project)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
from collections.abc import Coroutine
from typing import Any


def run_coroutine_sync(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run `coro` to completion from sync code and return its result.

    Context variables (LangChain/LangGraph's current config and callbacks) carry over, as
    they do into an awaited coroutine. Where this thread already runs an event loop (a sync
    call made from async code or a notebook) the coroutine gets a fresh loop in a worker
    thread, since a running loop cannot be re-entered.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    context = contextvars.copy_context()
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="twin-sync") as pool:
        return pool.submit(context.run, asyncio.run, coro).result()
