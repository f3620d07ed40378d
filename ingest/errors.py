"""What a collector yields for an item it could not turn into a document."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CollectFailure:
    """One bad item: `item` names it (URL, file path, archive member), `reason` says why."""

    item: str
    reason: str

    def __str__(self) -> str:
        return f"{self.item}: {self.reason}"
