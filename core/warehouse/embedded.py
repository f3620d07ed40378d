"""The embedded warehouse: SQLite (WAL, synchronous=FULL) under DATA_DIR/warehouse.

Crash-safe (every upsert is a transaction), persistent, usable from several processes at
once (the server reads users while an ingest run writes), and needs no server. Records are
stored as JSON with datetimes tagged so they round-trip as aware UTC datetimes.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from core.domain import WAREHOUSE_COLLECTIONS
from core.warehouse.base import (
    EPOCH,
    DocumentRef,
    UpsertResult,
    Warehouse,
    WarehouseError,
    merge_for_upsert,
    normalise_datetime,
)

_DATE_TAG = "$date"


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {_DATE_TAG: normalise_datetime(value).isoformat()}
    raise TypeError(f"cannot store {type(value).__name__} in the warehouse")


def _decode(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and _DATE_TAG in obj:
        return datetime.fromisoformat(obj[_DATE_TAG])
    return obj


def _dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, default=_encode, ensure_ascii=False, sort_keys=True)


def _loads(text: str) -> dict[str, Any]:
    return json.loads(text, object_hook=_decode)


def _check_collection(collection: str) -> str:
    if collection not in WAREHOUSE_COLLECTIONS:
        raise WarehouseError(
            f"unknown warehouse collection {collection!r} (expected one of {WAREHOUSE_COLLECTIONS})"
        )
    return collection


class EmbeddedWarehouse(Warehouse):
    def __init__(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "warehouse.sqlite3"
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(
                self.path, timeout=30, check_same_thread=False, isolation_level=None
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=30000")
            for name in WAREHOUSE_COLLECTIONS:
                self._db.execute(
                    f'CREATE TABLE IF NOT EXISTS "{name}" (id TEXT PRIMARY KEY, '
                    "author_id TEXT, content_hash TEXT, updated_at TEXT, record TEXT NOT NULL)"
                )
                self._db.execute(f'CREATE INDEX IF NOT EXISTS "{name}_author" ON "{name}"(author_id)')
                self._db.execute(
                    f'CREATE INDEX IF NOT EXISTS "{name}_updated" ON "{name}"(updated_at)'
                )
        except sqlite3.Error as exc:
            raise WarehouseError(f"cannot open the embedded warehouse at {self.path}: {exc}") from exc

    def upsert(self, collection: str, record: dict[str, Any]) -> UpsertResult:
        table = _check_collection(collection)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    f'SELECT record FROM "{table}" WHERE id = ?', (record.get("_id"),)
                ).fetchone()
                stored, result = merge_for_upsert(_loads(row[0]) if row else None, record)
                if result is not UpsertResult.UNCHANGED:
                    updated = stored.get("updated_at")
                    self._db.execute(
                        f'INSERT OR REPLACE INTO "{table}" '
                        "(id, author_id, content_hash, updated_at, record) VALUES (?, ?, ?, ?, ?)",
                        (
                            stored["_id"],
                            stored.get("author_id"),
                            stored.get("content_hash"),
                            updated.isoformat() if isinstance(updated, datetime) else None,
                            _dumps(stored),
                        ),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return result

    def get(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        table = _check_collection(collection)
        with self._lock:
            row = self._db.execute(f'SELECT record FROM "{table}" WHERE id = ?', (doc_id,)).fetchone()
        return _loads(row[0]) if row else None

    def _where(self, filter: dict[str, Any] | None) -> tuple[str, list[Any]]:
        clauses, params = [], []
        for key, value in (filter or {}).items():
            if key == "_id":
                clauses.append("id = ?")
            elif key in ("author_id", "content_hash"):
                clauses.append(f"{key} = ?")
            else:
                clauses.append("json_extract(record, ?) = ?")
                params.append(f'$."{key}"')
            params.append(value)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def find(
        self, collection: str, filter: dict[str, Any] | None = None, limit: int = 0
    ) -> Iterator[dict[str, Any]]:
        table = _check_collection(collection)
        where, params = self._where(filter)
        sql = f'SELECT record FROM "{table}"{where} ORDER BY id'
        if limit:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
        for (text,) in rows:
            yield _loads(text)

    def delete(self, collection: str, doc_ids: Iterable[str]) -> int:
        table = _check_collection(collection)
        ids = list(doc_ids)
        if not ids:
            return 0
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                removed = 0
                for start in range(0, len(ids), 500):
                    part = ids[start : start + 500]
                    marks = ",".join("?" * len(part))
                    removed += self._db.execute(
                        f'DELETE FROM "{table}" WHERE id IN ({marks})', part
                    ).rowcount
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return removed

    def count(self, collection: str, filter: dict[str, Any] | None = None) -> int:
        table = _check_collection(collection)
        where, params = self._where(filter)
        with self._lock:
            return self._db.execute(f'SELECT COUNT(*) FROM "{table}"{where}', params).fetchone()[0]

    def refs(self, collection: str) -> Iterator[DocumentRef]:
        table = _check_collection(collection)
        with self._lock:
            rows = self._db.execute(
                f'SELECT id, content_hash, updated_at FROM "{table}" ORDER BY id'
            ).fetchall()
        for doc_id, hash_, updated in rows:
            when = datetime.fromisoformat(updated) if updated else EPOCH
            yield DocumentRef(doc_id, collection, hash_ or "", when)

    def close(self) -> None:
        with self._lock:
            self._db.close()
