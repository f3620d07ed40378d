"""Search filters (author, category, platform, date range) → collections + a Qdrant filter.

The graph's self-query step produces `filters = {"author", "category", "platform",
"date_from", "date_to"}` with None where absent; callers may also pass the same keys at the
top level of the retriever config. Category selects collections (it is what the
collections are split by); the other keys become payload conditions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, Any

from core.domain import EMBEDDED_COLLECTIONS, Category, author_id_for

if TYPE_CHECKING:
    from qdrant_client import models

FILTER_KEYS = ("author", "category", "platform", "date_from", "date_to")
ALL_COLLECTIONS: tuple[str, ...] = tuple(EMBEDDED_COLLECTIONS.values())
# Loose words people (and the self-query step) use for a category.
_CATEGORY_ALIASES = {
    "article": "articles",
    "articles": "articles",
    "blog": "articles",
    "post": "posts",
    "posts": "posts",
    "social": "posts",
    "repository": "repositories",
    "repositories": "repositories",
    "repo": "repositories",
    "repos": "repositories",
    "code": "repositories",
}


class InvalidFilter(ValueError):
    """A filter value that cannot be understood (unknown category, bad date)."""


def _as_list(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable):
        return [str(v) for v in value if v not in (None, "")]
    return [str(value)]


def collection_name(value: str | Category) -> str:
    """A category ("posts", "post", Category.POSTS) or collection name → `embedded_*` name."""
    text = str(value.value if isinstance(value, Category) else value).strip().lower()
    if text in ALL_COLLECTIONS:
        return text
    for prefix in ("embedded_", "cleaned_"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    category = _CATEGORY_ALIASES.get(text)
    if category is None:
        raise InvalidFilter(
            f"unknown category or collection {value!r}; use one of "
            f"{', '.join(c.value for c in Category)}"
        )
    return EMBEDDED_COLLECTIONS[Category(category)]


def _parse_datetime(value: Any, end_of_day: bool) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime.combine(value, time.max if end_of_day else time.min)
    else:
        text = str(value).strip()
        try:
            if len(text) == 4 and text.isdigit():  # a bare year
                parsed = (
                    datetime(int(text), 12, 31, 23, 59, 59)
                    if end_of_day
                    else datetime(int(text), 1, 1)
                )
            elif len(text) == 10:  # a bare date: the whole day
                parsed = datetime.combine(
                    date.fromisoformat(text), time.max if end_of_day else time.min
                )
            else:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidFilter(f"cannot read the date {value!r} (use ISO 8601)") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


@dataclass(frozen=True)
class SearchFilters:
    """Normalised filters. Empty lists / None mean "no constraint"."""

    authors: tuple[str, ...] = ()
    collections: tuple[str, ...] = ()  # from `category`
    platforms: tuple[str, ...] = ()
    date_from: datetime | None = None
    date_to: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_config(
        cls, filters: Mapping[str, Any] | None = None, **top_level: Any
    ) -> SearchFilters:
        """Merge `filters` dict and top-level keys (top level wins where both are set)."""
        merged: dict[str, Any] = {k: None for k in FILTER_KEYS}
        for source in (filters or {}, top_level):
            for key in FILTER_KEYS:
                if source.get(key) not in (None, "", [], ()):
                    merged[key] = source[key]
        authors = tuple(" ".join(a.split()) for a in _as_list(merged["author"]))
        collections = tuple(dict.fromkeys(collection_name(c) for c in _as_list(merged["category"])))
        platforms = tuple(p.strip().lower() for p in _as_list(merged["platform"]))
        date_from = _parse_datetime(merged["date_from"], end_of_day=False)
        date_to = _parse_datetime(merged["date_to"], end_of_day=True)
        return cls(authors, collections, platforms, date_from, date_to, raw=merged)

    @property
    def is_empty(self) -> bool:
        return not (
            self.authors or self.collections or self.platforms or self.date_from or self.date_to
        )

    def select_collections(self, collections: Iterable[str] | None) -> list[str]:
        """Configured collections (default: all three) narrowed by the category filter."""
        chosen = [collection_name(c) for c in collections] if collections else list(ALL_COLLECTIONS)
        chosen = list(dict.fromkeys(chosen))
        if self.collections:
            chosen = [c for c in chosen if c in self.collections]
        return chosen

    def to_qdrant(self) -> models.Filter | None:
        """The payload filter (author, platform, date range), or None when unconstrained."""
        from qdrant_client import models

        must: list[Any] = []
        if self.authors:
            # author_id is the UUID5 of the casefolded, space-normalised full name
            # (`core.domain.author_id_for`, what ingest writes), so matching it is a
            # case-insensitive full-name match; callers may also pass the id itself. One
            # condition, not a should-of-two: local mode evaluates filters in Python.
            ids = sorted({author_id_for(a) for a in self.authors} | set(self.authors))
            must.append(models.FieldCondition(key="author_id", match=models.MatchAny(any=ids)))
        if self.platforms:
            must.append(
                models.FieldCondition(
                    key="platform", match=models.MatchAny(any=list(self.platforms))
                )
            )
        if self.date_from or self.date_to:
            must.append(
                models.FieldCondition(
                    key="published_at",
                    range=models.DatetimeRange(gte=self.date_from, lte=self.date_to),
                )
            )
        return models.Filter(must=must) if must else None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.raw)
