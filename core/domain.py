"""Domain types shared by every stage: raw warehouse documents, cleaned documents, chunks."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

SCHEMA_VERSION = 1
# Fixed namespace so ids are stable across machines and runs.
TWIN_NAMESPACE = uuid.UUID("6f1c3c5e-6a0b-4d8e-9a57-2f1d0f3b7c11")


class Category(StrEnum):
    ARTICLES = "articles"
    POSTS = "posts"
    REPOSITORIES = "repositories"


class Platform(StrEnum):
    MEDIUM = "medium"
    SUBSTACK = "substack"
    LINKEDIN = "linkedin"
    GITHUB = "github"
    WEB = "web"
    FILE = "file"
    GIT = "git"


CLEANED_COLLECTIONS = {c: f"cleaned_{c.value}" for c in Category}
EMBEDDED_COLLECTIONS = {c: f"embedded_{c.value}" for c in Category}
WAREHOUSE_COLLECTIONS = ("users", "articles", "posts", "repositories")


def _uuid5(*parts: str) -> str:
    return str(uuid.uuid5(TWIN_NAMESPACE, "\x1f".join(parts)))


def content_hash(content: str | dict[str, Any]) -> str:
    if not isinstance(content, str):
        content = json.dumps(content, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def document_id_for_link(platform: str, canonical_link: str) -> str:
    return _uuid5("doc", platform, canonical_link)


def document_id_for_file(author_id: str, file_content_hash: str) -> str:
    return _uuid5("file", author_id, file_content_hash)


def author_id_for(full_name: str) -> str:
    return _uuid5("author", " ".join(full_name.split()).casefold())


def chunk_id_for(document_id: str, chunk_index: int, chunk_text: str) -> str:
    chunk_hash = hashlib.sha256(chunk_text.encode("utf-8")).hexdigest()
    return _uuid5("chunk", document_id, str(chunk_index), chunk_hash)


def utcnow() -> datetime:
    return datetime.now(UTC)


class User(BaseModel):
    """An author whose writing the twin learns."""

    id: str = Field(alias="_id")
    full_name: str
    first_name: str = ""
    last_name: str = ""
    created_at: datetime = Field(default_factory=utcnow)

    model_config = {"populate_by_name": True}

    @classmethod
    def from_full_name(cls, full_name: str) -> User:
        name = " ".join(full_name.split())
        first, _, last = name.partition(" ")
        return cls(_id=author_id_for(name), full_name=name, first_name=first, last_name=last)


class RawDocument(BaseModel):
    """One item as collected, before cleaning: the warehouse record."""

    id: str = Field(alias="_id")
    author_id: str
    author_full_name: str
    platform: Platform | str
    category: Category
    link: str
    title: str = ""
    content: str | dict[str, Any]
    published_at: datetime | None = None
    content_hash: str = ""
    ingested_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    schema_version: int = SCHEMA_VERSION

    model_config = {"populate_by_name": True, "use_enum_values": True}

    def model_post_init(self, __context: Any) -> None:
        if not self.content_hash:
            self.content_hash = content_hash(self.content)

    @classmethod
    def for_link(
        cls,
        author: User,
        *,
        platform: Platform | str,
        category: Category,
        link: str,
        title: str,
        content: str | dict[str, Any],
        published_at: datetime | None = None,
    ) -> RawDocument:
        """A document identified by its canonical link (crawled pages, export items, repos)."""
        return cls(
            _id=document_id_for_link(str(platform), link),
            author_id=author.id,
            author_full_name=author.full_name,
            platform=platform,
            category=category,
            link=link,
            title=title,
            content=content,
            published_at=published_at,
        )

    def to_record(self) -> dict[str, Any]:
        """The warehouse form: `_id` key, enums as strings."""
        return self.model_dump(by_alias=True, mode="python")


class CleanedDocument(BaseModel):
    """A document after category-specific cleaning: the `cleaned_*` payload."""

    document_id: str
    author_id: str
    author_full_name: str
    platform: str
    category: Category
    link: str
    title: str = ""
    content: str
    published_at: datetime | None = None
    content_hash: str = ""

    model_config = {"use_enum_values": True}


class Chunk(BaseModel):
    """A piece of a cleaned document, the unit of retrieval (`embedded_*` payload)."""

    id: str
    document_id: str
    author_id: str
    author_full_name: str
    platform: str
    category: Category
    link: str
    title: str = ""
    chunk_index: int
    content: str
    # Headings where the chunk starts, outermost first (" > "-joined); "" when none.
    section: str = ""
    published_at: datetime | None = None

    model_config = {"use_enum_values": True}
