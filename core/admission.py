"""Back-pressure, deadlines and disconnects for expensive HTTP routes (plain ASGI).

`AdmissionControl` bounds the requests in progress: `slots()` may generate at once and
`queue_size()` more may wait (doing their CPU-light steps meanwhile); a request beyond
that gets **429 with Retry-After** at once, estimated from how long admitted requests have
been taking, instead of queueing for minutes.

`RunGuardMiddleware` admits each guarded request and watches it: when the client
disconnects or `timeout_s()` passes, the request's task is cancelled, which stops its
generation within a token and frees the model (`core.llm.BaseLLM.astream`). A deadline
answers 504 (an `error` event carrying 504 when a server-sent-events stream has already
started); a client that left gets nothing, there is no one to answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import math
import time
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.http_guards import json_error

# Set when the guarded request this code runs for is abandoned (client gone, deadline).
# Streaming frameworks may leave a response's generators suspended instead of closing them
# when its task is cancelled; work that outlives its awaiting task (a graph's node tasks)
# watches this to stop (`core.llm.BaseLLM.astream` cancels its generation).
_request_cancelled: contextvars.ContextVar[asyncio.Event | None] = contextvars.ContextVar(
    "request_cancelled", default=None
)


def request_cancelled() -> asyncio.Event | None:
    """The cancel signal of the guarded request being served, if any."""
    return _request_cancelled.get()


class AdmissionControl:
    """Counts requests in progress on one event loop (see the module docstring)."""

    def __init__(self, slots: Callable[[], int], queue_size: Callable[[], int]) -> None:
        self.slots = slots
        self.queue_size = queue_size
        self.in_flight = 0
        self.rejected = 0
        self.mean_s = 5.0  # exponentially weighted duration of admitted requests

    @property
    def capacity(self) -> int:
        return max(1, self.slots()) + max(0, self.queue_size())

    def try_admit(self) -> bool:
        if self.in_flight >= self.capacity:
            self.rejected += 1
            return False
        self.in_flight += 1
        return True

    def done(self, duration_s: float) -> None:
        self.in_flight -= 1
        self.mean_s = 0.8 * self.mean_s + 0.2 * duration_s

    def retry_after_s(self) -> int:
        """Seconds until a place is likely free: the queue ahead drained by the slots."""
        slots = max(1, self.slots())
        ahead = max(1, self.in_flight - slots + 1)
        return min(600, max(1, math.ceil(self.mean_s * ahead / slots)))

    def status(self) -> dict[str, int]:
        return {"in_progress": self.in_flight, "capacity": self.capacity, "rejected": self.rejected}


class RunGuardMiddleware:
    """Admission, deadline and disconnect handling for requests `guarded(scope)` selects."""

    def __init__(
        self,
        app: ASGIApp,
        admission: AdmissionControl,
        guarded: Callable[[Scope], bool],
        timeout_s: Callable[[], float],
    ) -> None:
        self.app = app
        self.admission = admission
        self.guarded = guarded
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.guarded(scope):
            await self.app(scope, receive, send)
            return
        if not self.admission.try_admit():
            wait = self.admission.retry_after_s()
            status = self.admission.status()
            response = json_error(
                429,
                f"the server is busy ({status['in_progress']} requests in progress, room for "
                f"{status['capacity']}: LLM_CONCURRENCY + SERVER_QUEUE_SIZE); retry in {wait}s",
                headers={"Retry-After": str(wait)},
            )
            await response(scope, receive, send)
            return
        started = time.monotonic()
        try:
            await self._watched(scope, receive, send)
        finally:
            self.admission.done(time.monotonic() - started)

    async def _watched(self, scope: Scope, receive: Receive, send: Send) -> None:
        state: dict[str, Any] = {"started": False, "sse": False, "body_read": False}
        client_gone = asyncio.Event()
        tasks: list[asyncio.Task[Any]] = []

        async def watch_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            client_gone.set()

        async def app_receive() -> Message:
            # Once the body is in, only the watcher reads from the client; the app (e.g. a
            # streaming response listening for disconnects) hears of it from here.
            if state["body_read"]:
                await client_gone.wait()
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.disconnect":
                client_gone.set()
            elif not message.get("more_body", False):
                state["body_read"] = True
                tasks.append(asyncio.create_task(watch_disconnect()))
            return message

        async def app_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["started"] = True
                headers = dict(message.get("headers") or [])
                state["sse"] = headers.get(b"content-type", b"").startswith(b"text/event-stream")
            await send(message)

        cancelled = asyncio.Event()
        token = _request_cancelled.set(cancelled)
        try:  # the app's task (and what it spawns) sees the signal through its context
            app_task = asyncio.create_task(self.app(scope, app_receive, app_send))
        finally:
            _request_cancelled.reset(token)
        gone = asyncio.create_task(client_gone.wait())
        tasks.append(gone)
        timeout = self.timeout_s()
        try:
            done, _ = await asyncio.wait(
                {app_task, gone}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if app_task in done:
                app_task.result()  # re-raises what the app raised
                return
            # The client left or the deadline passed: cancelling the run stops generation.
            cancelled.set()
            app_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await app_task
            if client_gone.is_set():
                return
            detail = f"the request took longer than {timeout:g}s (SERVER_REQUEST_TIMEOUT_S)"
            if not state["started"]:
                await json_error(504, detail)(scope, receive, send)
            elif state["sse"]:
                event = json.dumps({"status_code": 504, "message": detail})
                await send({"type": "http.response.body", "body": f"event: error\r\ndata: {event}\r\n\r\n".encode(), "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            if not app_task.done():
                cancelled.set()
                app_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await app_task
            for task in tasks:
                task.cancel()
