"""Bounded history on LangGraph's SQLite saver — the one place that relies on its tables.

`langgraph-checkpoint-sqlite` (pinned in pyproject.toml) has no public pruning (its
`prune` is not implemented), so this deletes rows itself: a thread's checkpoints beyond the
newest `keep_checkpoints` with their pending writes, and whole threads beyond
`max_threads`, least recently written first. It uses the saver's documented `conn` and its
`lock` (to serialise with the saver's own writes) and the `checkpoints` / `writes` tables.
Checkpoint ids are time-ordered (uuid6), which the saver's own queries rely on too. The
twin's state has no DeltaChannel, so every kept checkpoint is complete on its own.
tests/test_threads.py fails loudly when an upgrade changes any of this.
"""

from __future__ import annotations

from typing import Any

_PRUNE_THREAD = (
    "DELETE FROM checkpoints WHERE thread_id = ? AND checkpoint_id NOT IN ("
    " SELECT checkpoint_id FROM checkpoints WHERE thread_id = ?"
    " ORDER BY checkpoint_id DESC LIMIT ?)"
)
_PRUNE_WRITES = (
    "DELETE FROM writes WHERE thread_id = ? AND checkpoint_id NOT IN ("
    " SELECT checkpoint_id FROM checkpoints WHERE thread_id = ?)"
)
_OLD_THREADS = (
    "SELECT thread_id FROM checkpoints GROUP BY thread_id"
    " ORDER BY MAX(checkpoint_id) DESC LIMIT -1 OFFSET ?"
)


async def prune_sqlite(
    saver: Any, thread_id: str, *, keep_checkpoints: int, max_threads: int | None = None
) -> None:
    """Bound one thread's checkpoints, and (with `max_threads`) the number of threads."""
    async with saver.lock, saver.conn.cursor() as cur:
        await cur.execute(_PRUNE_THREAD, (thread_id, thread_id, max(1, keep_checkpoints)))
        await cur.execute(_PRUNE_WRITES, (thread_id, thread_id))
        if max_threads is not None:
            await cur.execute(_OLD_THREADS, (max(1, max_threads),))
            stale = [row[0] for row in await cur.fetchall()]
            for old in stale:
                await cur.execute("DELETE FROM checkpoints WHERE thread_id = ?", (old,))
                await cur.execute("DELETE FROM writes WHERE thread_id = ?", (old,))
        await saver.conn.commit()
