"""The MongoDB warehouse backend (pymongo). Same contract as the embedded store."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from core.domain import WAREHOUSE_COLLECTIONS
from core.warehouse.base import (
    EPOCH,
    DocumentRef,
    UpsertResult,
    Warehouse,
    WarehouseError,
    merge_for_upsert,
)


class MongoWarehouse(Warehouse):
    def __init__(self, uri: str, database: str = "twin", **client_options: Any) -> None:
        from pymongo import MongoClient
        from pymongo.errors import PyMongoError

        self._errors = PyMongoError
        try:
            self._client = MongoClient(
                uri, tz_aware=True, serverSelectionTimeoutMS=10000, **client_options
            )
            self._db = self._client[database]
            for name in WAREHOUSE_COLLECTIONS:
                # `_id` is always unique in MongoDB; these serve author and recency scans.
                self._db[name].create_index("author_id")
                self._db[name].create_index("updated_at")
        except PyMongoError as exc:
            raise WarehouseError(f"cannot reach MongoDB at the configured MONGODB_URI: {exc}") from exc

    def _col(self, collection: str) -> Any:
        if collection not in WAREHOUSE_COLLECTIONS:
            raise WarehouseError(
                f"unknown warehouse collection {collection!r} (expected one of {WAREHOUSE_COLLECTIONS})"
            )
        return self._db[collection]

    def upsert(self, collection: str, record: dict[str, Any]) -> UpsertResult:
        col = self._col(collection)
        existing = col.find_one({"_id": record.get("_id")})
        stored, result = merge_for_upsert(existing, record)
        if result is not UpsertResult.UNCHANGED:
            col.replace_one({"_id": stored["_id"]}, stored, upsert=True)
        return result

    def get(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        return self._col(collection).find_one({"_id": doc_id})

    def find(
        self, collection: str, filter: dict[str, Any] | None = None, limit: int = 0
    ) -> Iterator[dict[str, Any]]:
        yield from self._col(collection).find(filter or {}).sort("_id", 1).limit(limit)

    def delete(self, collection: str, doc_ids: Iterable[str]) -> int:
        ids = list(doc_ids)
        if not ids:
            return 0
        return self._col(collection).delete_many({"_id": {"$in": ids}}).deleted_count

    def count(self, collection: str, filter: dict[str, Any] | None = None) -> int:
        return self._col(collection).count_documents(filter or {})

    def refs(self, collection: str) -> Iterator[DocumentRef]:
        cursor = self._col(collection).find({}, {"content_hash": 1, "updated_at": 1}).sort("_id", 1)
        for row in cursor:
            yield DocumentRef(
                row["_id"], collection, row.get("content_hash", ""), row.get("updated_at") or EPOCH
            )

    def close(self) -> None:
        self._client.close()
