"""The warehouse contract every backend implements (see tests/test_warehouse_contract.py)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class WarehouseError(RuntimeError):
    """A warehouse operation failed for a reason the user can act on."""


class UpsertResult(StrEnum):
    ADDED = "added"
    UPDATED = "updated"  # content_hash changed: the feature pipeline must re-embed it
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class DocumentRef:
    """Enough of a document to decide what the feature pipeline must do with it."""

    id: str
    collection: str
    content_hash: str
    updated_at: datetime


class Warehouse(ABC):
    """Collections: `users`, `articles`, `posts`, `repositories`; records keyed by `_id`.

    Records are plain dicts in the ARCHITECTURE.md shape. Datetimes go in and come out as
    timezone-aware UTC `datetime`s in every backend.
    """

    @abstractmethod
    def upsert(self, collection: str, record: dict[str, Any]) -> UpsertResult:
        """Insert or update by `_id`. Keeps the original `ingested_at`; bumps `updated_at`
        only when `content_hash` (or any field) changed."""

    @abstractmethod
    def get(self, collection: str, doc_id: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def find(
        self, collection: str, filter: dict[str, Any] | None = None, limit: int = 0
    ) -> Iterator[dict[str, Any]]:
        """Equality filters on top-level fields (e.g. `{"author_id": x}`); `{}` = all."""

    @abstractmethod
    def delete(self, collection: str, doc_ids: Iterable[str]) -> int:
        """Delete by id; returns how many existed."""

    @abstractmethod
    def count(self, collection: str, filter: dict[str, Any] | None = None) -> int: ...

    @abstractmethod
    def refs(self, collection: str) -> Iterator[DocumentRef]:
        """Id, hash and update time of every document (cheap: no content)."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def normalise_datetime(value: datetime) -> datetime:
    """Aware UTC with millisecond precision: what MongoDB stores, so backends agree."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def normalise_record(record: dict[str, Any]) -> dict[str, Any]:
    """Copy of a record with its top-level datetimes normalised."""
    return {
        key: normalise_datetime(val) if isinstance(val, datetime) else val
        for key, val in record.items()
    }


def merge_for_upsert(
    existing: dict[str, Any] | None, record: dict[str, Any]
) -> tuple[dict[str, Any], UpsertResult]:
    """The record to store and what happened, by the rules every backend shares."""
    if "_id" not in record:
        raise WarehouseError("record has no _id")
    new = normalise_record(record)
    if existing is None:
        return new, UpsertResult.ADDED
    new["ingested_at"] = existing.get("ingested_at", new.get("ingested_at"))
    volatile = {"updated_at", "ingested_at"}
    same = {k: v for k, v in new.items() if k not in volatile} == {
        k: v for k, v in existing.items() if k not in volatile
    }
    if same:
        return existing, UpsertResult.UNCHANGED
    return new, UpsertResult.UPDATED
