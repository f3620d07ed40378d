"""What one sync did: documents and chunks counted by the planner and the writer thread."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SyncReport:
    new: int = 0
    changed: int = 0
    deleted: int = 0
    unchanged: int = 0
    chunks_embedded: int = 0
    chunks_deleted: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def changes(self) -> int:
        return self.new + self.changed + self.deleted + self.chunks_embedded + self.chunks_deleted

    def summary(self) -> str:
        return (
            f"documents: {self.new} new, {self.changed} changed, {self.deleted} removed, "
            f"{self.unchanged} unchanged, {len(self.failed)} failed; "
            f"chunks: {self.chunks_embedded} embedded, {self.chunks_deleted} deleted"
        )
