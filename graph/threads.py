"""Conversation threads for a served graph: a persistent checkpointer and bounded history.

`open_checkpointer()` opens the saver `THREADS_URL` names: empty → LangGraph's SQLite saver
in `DATA_DIR/threads/threads.sqlite` (one server process); `postgresql://…` or `redis://…`
→ LangGraph's Postgres or Redis saver (install `.[postgres]` / `.[redis]`), which several
server processes can share.

`ThreadedGraph` compiles the graph's builder twice with public LangGraph API: with the
checkpointer for runs that name a `thread_id`, without one for stateless runs (a
checkpointed graph refuses runs without a thread id). `graph.graph` itself carries no
checkpointer, so `langgraph dev` / LangGraph Platform load it and bring their own.

After each thread run the history is bounded: the thread keeps its latest
`THREAD_MAX_MESSAGES` messages (older ones removed through the state's `add_messages`
reducer), and on SQLite its latest `THREAD_MAX_CHECKPOINTS` checkpoints, with the least
recently used threads beyond `THREAD_MAX_COUNT` dropped (`prune_sqlite`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import RemoveMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver

log = logging.getLogger(__name__)
PACKAGES = {
    "postgres": "langgraph-checkpoint-postgres (pip install -e '.[postgres]')",
    "redis": "langgraph-checkpoint-redis (pip install -e '.[redis]')",
}
# Held while a Postgres saver creates its tables (any fixed 64-bit key, per database).
POSTGRES_SETUP_LOCK = 0x7477696E5F746872  # 'twin_thr'
# Dropping least-recently-used threads scans the table: not after every run.
EVICT_EVERY_RUNS = 50


class ThreadStoreError(RuntimeError):
    """THREADS_URL names a store this installation cannot open; the message says why."""


@asynccontextmanager
async def open_checkpointer(url: str | None = None) -> AsyncIterator[BaseCheckpointSaver]:
    """The saver for `url` (default `THREADS_URL`), set up and closed on exit."""
    from core.settings import get_settings

    settings = get_settings()
    url = settings.THREADS_URL if url is None else url
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if not url or scheme == "sqlite":
        path = settings.DATA_DIR / "threads" / "threads.sqlite" if not url else url.partition("://")[2]
        from pathlib import Path

        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
            await saver.setup()
            yield saver
    elif scheme in ("postgres", "postgresql"):
        try:
            from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        except ImportError:
            raise ThreadStoreError(f"THREADS_URL is a Postgres URL: install {PACKAGES['postgres']}") from None
        async with AsyncPostgresSaver.from_conn_string(url) as saver:
            await _setup_postgres(saver)
            yield saver
    elif scheme in ("redis", "rediss"):
        try:
            from langgraph.checkpoint.redis.aio import AsyncRedisSaver
        except ImportError:
            raise ThreadStoreError(f"THREADS_URL is a Redis URL: install {PACKAGES['redis']}") from None
        async with AsyncRedisSaver.from_conn_string(url) as saver:
            await saver.asetup()
            yield saver
    else:
        raise ThreadStoreError(
            f"THREADS_URL scheme {scheme!r} is not supported: leave it empty (SQLite under "
            "DATA_DIR), or use sqlite://PATH, postgresql://… or redis://…"
        )


async def _setup_postgres(saver: Any) -> None:
    """`saver.setup()` (tables and migrations) one process at a time: server processes that
    start together on a fresh database otherwise collide on its `CREATE TABLE IF NOT EXISTS`
    and migration rows (UniqueViolation), and all but one fail to start. The lock is polled,
    not waited for in a statement: the migrations' `CREATE INDEX CONCURRENTLY` waits for
    every open transaction, a blocked `pg_advisory_lock` call included (a deadlock)."""
    import asyncio

    async with saver.conn.cursor() as cur:
        while True:
            await cur.execute("SELECT pg_try_advisory_lock(%s) AS ok", (POSTGRES_SETUP_LOCK,))
            row = await cur.fetchone()
            if row and row["ok"]:
                break
            await asyncio.sleep(0.1)
        try:
            await saver.setup()
        finally:
            await cur.execute("SELECT pg_advisory_unlock(%s)", (POSTGRES_SETUP_LOCK,))


@dataclass(frozen=True)
class HistoryLimits:
    max_messages: int
    max_checkpoints: int
    max_threads: int

    @classmethod
    def from_settings(cls) -> HistoryLimits:
        from core.settings import get_settings

        s = get_settings()
        return cls(s.THREAD_MAX_MESSAGES, s.THREAD_MAX_CHECKPOINTS, s.THREAD_MAX_COUNT)


class ThreadedGraph:
    """A compiled graph plus its checkpointed twin (see the module docstring)."""

    def __init__(
        self, graph: Any, checkpointer: BaseCheckpointSaver, limits: HistoryLimits | None = None
    ) -> None:
        self.stateless = graph
        self.threaded = graph.builder.compile(checkpointer=checkpointer, name=graph.name)
        self.checkpointer = checkpointer
        self.limits = limits or HistoryLimits.from_settings()
        self._runs = 0

    def for_config(self, config: RunnableConfig | None) -> Any:
        """The graph to run `config` on: threaded when it names a `thread_id`."""
        return self.threaded if thread_id_of(config) else self.stateless

    # The graph's run API, routed by thread id (for callers other than the server).
    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return self.for_config(config).invoke(input, config, **kwargs)

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return await self.for_config(config).ainvoke(input, config, **kwargs)

    def get_state(self, config: RunnableConfig) -> Any:
        return self.threaded.get_state(config)

    async def aget_state(self, config: RunnableConfig) -> Any:
        return await self.threaded.aget_state(config)

    async def bound_history(self, thread_id: str) -> None:
        """Trim the thread to its latest messages and checkpoints (after a run of it)."""
        config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
        snapshot = await self.threaded.aget_state(config)
        messages = list((snapshot.values or {}).get("messages") or [])
        excess = len(messages) - self.limits.max_messages
        if excess > 0:
            removals = [RemoveMessage(id=m.id) for m in messages[:excess] if m.id]
            await self.threaded.aupdate_state(config, {"messages": removals}, as_node="generate")
        self._runs += 1
        evict = self._runs % EVICT_EVERY_RUNS == 1
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        if isinstance(self.checkpointer, AsyncSqliteSaver):
            from graph.sqlite_prune import prune_sqlite

            await prune_sqlite(
                self.checkpointer,
                thread_id,
                keep_checkpoints=self.limits.max_checkpoints,
                max_threads=self.limits.max_threads if evict else None,
            )


def thread_id_of(config: RunnableConfig | None) -> str:
    return str(((config or {}).get("configurable") or {}).get("thread_id") or "")
