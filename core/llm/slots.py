"""The generation slots: at most `LLM_CONCURRENCY` generations at once in this process, the
others wait in arrival order for at most `LLM_QUEUE_WAIT_S`.

In-process backends decode one request at a time on the CPU; a server that batches
(`LLM_BASE_URL` pointing at vLLM or llama.cpp server with parallel slots) takes several.
Waiting is cancellable (a client that leaves gives its place up at once) and works from
any event loop or thread, since sync callers run their coroutines on loops of their own.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from core.llm.errors import LLMError


class GenerationBusy(LLMError):
    """No generation slot within the allowed wait: the caller should retry later."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(eq=False)
class _Waiter:
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]
    granted: bool = False


@dataclass
class GenerationSlots:
    """A FIFO semaphore usable from any event loop (see the module docstring)."""

    slots: int
    _busy: int = 0
    _waiters: deque[_Waiter] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # Mean seconds a slot is held (exponentially weighted): the Retry-After estimate.
    mean_hold_s: float = 5.0

    @property
    def busy(self) -> int:
        return self._busy

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def retry_after_s(self) -> int:
        """Seconds until a slot is likely free for a newcomer (at least 1)."""
        ahead = self.waiting + 1
        return max(1, math.ceil(self.mean_hold_s * ahead / max(1, self.slots)))

    async def acquire(self, timeout_s: float | None) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._busy < self.slots and not self._waiters:
                self._busy += 1
                return
            waiter = _Waiter(loop, loop.create_future())
            self._waiters.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter.future), timeout_s)
        except BaseException as exc:
            with self._lock:
                granted = waiter.granted
                if not granted:
                    self._waiters.remove(waiter)
            if granted:  # the slot arrived as we gave up: hand it on
                self.release()
            if isinstance(exc, TimeoutError):
                raise GenerationBusy(
                    f"no generation slot free within {timeout_s:g}s "
                    f"({self.busy} generating, {self.waiting} waiting)",
                    self.retry_after_s(),
                ) from exc
            raise

    def release(self, held_s: float | None = None) -> None:
        with self._lock:
            if held_s is not None:
                self.mean_hold_s = 0.8 * self.mean_hold_s + 0.2 * held_s
            if self._waiters:  # the slot passes straight to the next in line
                waiter = self._waiters.popleft()
                waiter.granted = True
                waiter.loop.call_soon_threadsafe(_grant, waiter.future)
                return
            self._busy -= 1

    @asynccontextmanager
    async def slot(self, timeout_s: float | None) -> AsyncIterator[None]:
        await self.acquire(timeout_s)
        started = time.monotonic()
        try:
            yield
        finally:
            self.release(time.monotonic() - started)


def _grant(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


_process_slots: GenerationSlots | None = None
_process_slots_lock = threading.Lock()


def generation_slots() -> GenerationSlots:
    """The process's generation slots, sized by `LLM_CONCURRENCY` (resized when idle if it
    changed)."""
    global _process_slots
    from core.settings import get_settings

    size = max(1, int(get_settings().LLM_CONCURRENCY))
    with _process_slots_lock:
        held = _process_slots
        if held is None or (held.slots != size and not held.busy and not held.waiting):
            _process_slots = held = GenerationSlots(size)
        return held
