"""Ingestion as functions: what `python -m ingest add` does, for code that ingests.

- `add_sources(sources, author)`: the `ingest add` path itself — collect each source (URL,
  export archive, file, folder, git repository), upsert into the warehouse, sync the vector
  store. The CLI is a thin wrapper; evaluations and benchmarks over real writing call it
  inside their own DATA_DIR (`core.settings.settings_override`), so their vector store holds
  exactly the chunks production makes.
- `store_documents(docs)`: already-built `RawDocument`s (a known corpus with its own
  metadata, tests) through the same warehouse upsert and the same sync.

    from ingest.documents import add_sources
    add_sources(["notes/", "https://medium.com/@me/a-post"], User.from_full_name("Me"))
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from core.domain import RawDocument, User

if TYPE_CHECKING:
    from core.warehouse import Warehouse
    from ingest.features.sync_report import SyncReport

FailureHook = Callable[[str, str], None]
DocumentHook = Callable[[str, RawDocument], None]  # (added|updated|unchanged, document)


def upsert_author(wh: Warehouse, author: User) -> None:
    """Create or refresh the author's `users` record, keeping its first `created_at`."""
    user = author.model_dump(by_alias=True)
    existing = wh.get("users", author.id)
    if existing and existing.get("created_at"):
        user["created_at"] = existing["created_at"]
    wh.upsert("users", user)


@dataclass
class AddReport:
    """Outcome of `add_sources`: warehouse upserts by outcome (`added`, `updated`,
    `unchanged`, `failed`) and the vector-store sync (None without sync)."""

    counts: Counter[str] = field(default_factory=Counter)
    sync: SyncReport | None = None

    @property
    def stored(self) -> int:
        return self.counts["added"] + self.counts["updated"] + self.counts["unchanged"]


def add_sources(
    sources: Iterable[str],
    author: User,
    *,
    client: Any = None,
    sync_store: bool = True,
    on_failure: FailureHook | None = None,
    progress: bool = False,
    on_document: DocumentHook | None = None,
) -> AddReport:
    """Collect every source for `author` into the warehouse, then sync the vector store.

    A source that fails, or yields nothing, is reported through `on_failure(item, reason)`
    and counted; the others go on. `on_document(outcome, doc)` hears each stored document.
    Idempotent: added again, nothing changes.
    """
    from core.progress import progress_bar
    from core.warehouse import WarehouseError, get_warehouse
    from ingest.collect import collect
    from ingest.errors import CollectFailure

    def fail(item: str, reason: str) -> None:
        report.counts["failed"] += 1
        if on_failure is not None:
            on_failure(item, reason)

    report = AddReport()
    if sync_store and client is None:
        from retrievers.store import get_qdrant_client

        client = get_qdrant_client()  # opened first: a locked store fails before any work
    with get_warehouse() as wh:
        upsert_author(wh, author)
        bar = progress_bar(desc="Collecting", unit="doc") if progress else None
        try:
            for source in sources:
                found = False
                for item in collect(source, author):
                    found = True
                    if isinstance(item, CollectFailure):
                        fail(item.item, item.reason)
                        continue
                    try:
                        result = wh.upsert(str(item.category), item.to_record())
                    except WarehouseError as exc:
                        fail(item.link or item.id, f"warehouse: {exc}")
                        continue
                    report.counts[result.value] += 1
                    if on_document is not None:
                        on_document(result.value, item)
                    if bar is not None:
                        bar.update()
                if not found:
                    fail(source, "no documents found")
        finally:
            if bar is not None:
                bar.close()
        if sync_store:
            from ingest.features.sync import sync

            report.sync = sync(wh, client, progress=progress, on_failure=on_failure)
    return report


_DEFAULT_PLATFORM = {"articles": "medium", "posts": "linkedin", "repositories": "github"}


def document_from_text(
    content: str | dict[str, str],
    *,
    author: str,
    category: str = "articles",
    title: str = "",
    link: str | None = None,
    platform: str | None = None,
    published_at: datetime | str | None = None,
) -> RawDocument:
    """A document as a collector would store it, from text in hand (tests, notebooks, a
    known corpus). A repository's `content` is {path: code}; `link` defaults to a stable
    `https://example.test/<platform>/<title slug>`."""
    from core.domain import Category

    kind = Category(category)
    platform = (platform or _DEFAULT_PLATFORM[kind.value]).lower()
    if link is None:
        seed = title or (content if isinstance(content, str) else next(iter(content), ""))
        slug = re.sub(r"[^a-z0-9]+", "-", seed[:60].lower()).strip("-") or "untitled"
        link = f"https://example.test/{platform}/{slug}"
    if isinstance(published_at, str):
        published_at = datetime.fromisoformat(published_at.replace("Z", "+00:00"))
    if published_at is not None and published_at.tzinfo is None:
        published_at = published_at.replace(tzinfo=UTC)
    body = content if isinstance(content, dict) else {"text": content}
    return RawDocument.for_link(User.from_full_name(author), platform=platform, category=kind,
                                link=link, title=title, content=body, published_at=published_at)  # fmt: skip


def store_documents(
    documents: Iterable[RawDocument],
    *,
    warehouse: Warehouse | None = None,
    client: Any = None,
    sync_store: bool = True,
) -> tuple[Counter[str], SyncReport | None]:
    """Upsert `documents` (and their authors) into the warehouse, then sync the vector store.

    Returns the upsert outcomes (`added`/`updated`/`unchanged` counts) and the sync report
    (None with `sync_store=False`). Idempotent: stored again, nothing changes.
    """
    from core.warehouse import get_warehouse
    from ingest.features.sync import sync

    counts: Counter[str] = Counter()
    own = warehouse is None
    wh = warehouse or get_warehouse()
    try:
        authors: set[str] = set()
        for doc in documents:
            if doc.author_full_name not in authors:
                upsert_author(wh, User.from_full_name(doc.author_full_name))
                authors.add(doc.author_full_name)
            counts[wh.upsert(str(doc.category), doc.to_record()).value] += 1
        report = sync(wh, client) if sync_store else None
    finally:
        if own:
            wh.close()
    return counts, report
