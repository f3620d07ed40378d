"""Incremental, crash-safe sync of the warehouse into the vector store.

The warehouse is the source of truth. `sync()` compares each category's `refs()` (id +
content hash) with the `cleaned_<category>` points (id = document id, payload carries the
content hash and the features key: what chunking and embedding settings made its chunks) and
- cleans, chunks and embeds only new or changed documents (or all of them after the
  features settings change, or all of an author's articles and posts after the author's
  chrome changes),
- deletes the points of documents that left the warehouse, and stale chunks of changed ones.

Write order per document (the crash-safety argument): 1) upsert its chunks (deterministic
ids, so a repeat is idempotent), 2) delete its stale chunks, 3) upsert its cleaned point
last — the commit marker that says "this hash is fully in the store". A kill at any moment
leaves the document either committed or without a current marker, and the next sync redoes
exactly the uncommitted documents; chunks of documents that vanished meanwhile are found by
the scan of `embedded_*` and deleted. Nothing is duplicated, nothing is lost.

Chrome (the byline, share widgets, plug paragraphs that recur in an author's posts; see
`boilerplate`) is learned anew at each sync from all of the author's articles and posts on
a platform, and stripped from their cleaned text before chunking; the raw documents keep it.
Its fingerprint is part of each text document's features key, so adding a post that makes a
line recurring re-cleans the author's older posts, and an unchanged warehouse gives the same
fingerprints: a rerun does nothing. The fit is a pure function of the warehouse, so a crash
changes nothing about it.

This module plans (what the warehouse has vs what the store has committed) and feeds the
documents through; the pieces live beside it: `store_state` (scans and deletes of the
store), `recipe` (the features key and the embedded text), `embed_pipeline` (the encoder
and writer threads, which keep the write order, every write acknowledged before the next).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from core.domain import Category, RawDocument
from core.settings import get_settings
from ingest.features.boilerplate import CorpusChrome
from ingest.features.cleaning import TEXT_CATEGORIES, clean_document, fit_chrome
from ingest.features.embed_pipeline import ChunkGroup, EmbedPipeline, PendingDocument
from ingest.features.recipe import features_key
from ingest.features.store_state import (
    check_dimension,
    delete_document_points,
    stored_chunks,
    stored_hashes,
)
from ingest.features.sync_report import SyncReport

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

    from core.warehouse import Warehouse

NO_CHROME = CorpusChrome()  # a document the chrome fit did not see (added meanwhile)
GROUP_BATCHES = 8  # chunks per encode call = EMBEDDING_BATCH_SIZE × this
FailureHook = Callable[[str, str], None]


def sync(
    warehouse: Warehouse | None = None,
    client: QdrantClient | None = None,
    *,
    full: bool = False,
    progress: bool = False,
    on_failure: FailureHook | None = None,
    batch_size: int | None = None,
    categories: Iterable[Category] = tuple(Category),
) -> SyncReport:
    """Bring the vector store in line with the warehouse (see the module docstring)."""
    from core.warehouse import get_warehouse
    from retrievers.store import get_qdrant_client

    own_warehouse = warehouse is None
    wh = warehouse or get_warehouse()
    try:
        client = client or get_qdrant_client()
        return _sync(
            wh,
            client,
            full=full,
            progress=progress,
            on_failure=on_failure,
            batch_size=batch_size or get_settings().EMBEDDING_BATCH_SIZE,
            categories=[Category(c) for c in categories],
        )
    finally:
        if own_warehouse:
            wh.close()


def _sync(
    wh: Warehouse,
    client: QdrantClient,
    *,
    full: bool,
    progress: bool,
    on_failure: FailureHook | None,
    batch_size: int,
    categories: list[Category],
) -> SyncReport:
    report = SyncReport()

    def fail(item: str, reason: str) -> None:
        report.failed.append((item, reason))
        if on_failure:
            on_failure(item, reason)

    # Plan: what the warehouse has vs what the store has committed. A text document's key
    # also carries its author's chrome fingerprint, so a changed chrome set re-cleans them.
    features = features_key()
    chromes = _fit_chrome(wh) if set(categories) & set(TEXT_CATEGORIES) else {}
    todo: list[tuple[Category, str, bool, set[str], str]] = []
    for category in categories:
        current = list(wh.refs(category.value))
        keys = {r.id: _document_key(features, category, chromes.get(r.id)) for r in current}
        refs = {r.id: f"{r.content_hash}|{keys[r.id]}" for r in current}
        hashes = stored_hashes(client, category)
        chunks = stored_chunks(client, category)
        gone = (set(hashes) | set(chunks)) - set(refs)
        if gone:
            report.chunks_deleted += delete_document_points(client, category, gone)
            report.deleted += len(gone & set(hashes))
        for doc_id, digest in refs.items():
            if full or hashes.get(doc_id) != digest:
                todo.append((category, doc_id, doc_id in hashes, chunks.get(doc_id, set()), keys[doc_id]))
            else:
                report.unchanged += 1
    if not todo:
        return report

    from ingest.features.chunking import chunk_document
    from ingest.features.tokens import get_tokenizer
    from retrievers.encoders import embedding_dimension
    from retrievers.store import ensure_collections

    dimension = embedding_dimension()
    check_dimension(client, dimension)
    ensure_collections(client, dimension)
    tokenizer = get_tokenizer()  # this thread's copy; the model's own is the encoder's

    bar = None
    if progress:
        from core.progress import progress_bar

        bar = progress_bar(total=len(todo), desc="Embedding", unit="doc")
    group_size = batch_size * GROUP_BATCHES
    pipeline = EmbedPipeline(client, report, batch_size, bar)
    group = ChunkGroup()
    try:
        for category, doc_id, changed, old_ids, key in todo:
            record = wh.get(category.value, doc_id)
            if record is None:  # removed while we were syncing
                continue
            try:
                raw = RawDocument.model_validate(record)
                cleaned = clean_document(raw, chromes.get(doc_id))
                chunks = chunk_document(cleaned, tokenizer)
            except Exception as exc:  # noqa: BLE001 - one bad document must not stop the run
                fail(f"{category.value}/{doc_id} ({record.get('link', '')})", f"{type(exc).__name__}: {exc}")
                continue
            doc = PendingDocument(category, cleaned, {c.id for c in chunks}, old_ids, changed, key)
            for chunk in chunks:
                group.chunks.append(chunk)
                if len(group.chunks) >= group_size:
                    pipeline.submit(group)
                    group = ChunkGroup()
            group.done.append(doc)
        pipeline.submit(group)
        pipeline.finish()
    except BaseException:
        pipeline.abort()
        raise
    finally:
        if bar is not None:
            bar.close()
    return report


def _document_key(features: str, category: Category, chrome: CorpusChrome | None) -> str:
    """What a document's stored features were made with (stored on its commit marker)."""
    if category not in TEXT_CATEGORIES:
        return features  # code keeps its lines: no chrome
    return f"{features}|chrome:{(chrome or NO_CHROME).fingerprint}"


def _fit_chrome(wh: Warehouse) -> dict[str, CorpusChrome]:
    """The chrome of every author's articles and posts, fitted on the whole warehouse (not
    only the changed documents: a new post can make a line recurring in the older ones)."""

    def raws() -> Iterable[RawDocument]:
        for category in TEXT_CATEGORIES:
            for record in wh.find(category.value):
                try:
                    yield RawDocument.model_validate(record)
                except Exception:  # noqa: BLE001, S112 - reported when the document is synced
                    continue

    return fit_chrome(raws())
