"""Incremental, crash-safe sync of the warehouse into the vector store.

The warehouse is the source of truth. `sync()` compares each category's `refs()` (id +
content hash) with the `cleaned_<category>` points (id = document id, payload carries the
content hash and the features key: what chunking and embedding settings made its chunks) and
- cleans, chunks and embeds only new or changed documents (or all of them after the
  features settings change),
- deletes the points of documents that left the warehouse, and stale chunks of changed ones.

Write order per document (the crash-safety argument): 1) upsert its chunks (deterministic
ids, so a repeat is idempotent), 2) delete its stale chunks, 3) upsert its cleaned point
last — the commit marker that says "this hash is fully in the store". A kill at any moment
leaves the document either committed or without a current marker, and the next sync redoes
exactly the uncommitted documents; chunks of documents that vanished meanwhile are found by
the scan of `embedded_*` and deleted. Nothing is duplicated, nothing is lost.

Every write is acknowledged by the store before the next one starts (`wait=True` on a
server; the embedded Qdrant Edge store appends each update to its write-ahead log before it
returns), so the order above holds after a `kill -9`.

Throughput: three stages overlap — the caller's thread reads, cleans and chunks; an encoder
thread embeds groups of chunks, dense and sparse (torch releases the GIL; the model's
tokenizer is used by this thread only); a writer thread upserts points in batches.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.domain import CLEANED_COLLECTIONS, EMBEDDED_COLLECTIONS, Category, Chunk, RawDocument
from core.settings import get_settings

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

    from core.domain import CleanedDocument
    from core.warehouse import Warehouse

log = logging.getLogger(__name__)
GROUP_BATCHES = 8  # chunks per encode call = EMBEDDING_BATCH_SIZE × this
SCROLL_PAGE = 2048
FailureHook = Callable[[str, str], None]


class FeatureStoreError(RuntimeError):
    """The vector store cannot take these features (e.g. built with another model)."""


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


# Bumped when cleaning, chunking or what is embedded changes in a way that needs re-embedding.
FEATURES_RECIPE = 2


def features_key() -> str:
    """What the stored features were made with: recipe, chunk settings, embedding model.
    A document whose commit marker carries another key is re-embedded by the next sync."""
    from core.settings import get_settings

    s = get_settings()
    return (
        f"{FEATURES_RECIPE}|{s.CHUNK_TOKENS}/{s.CHUNK_OVERLAP}|"
        f"{'context' if s.EMBED_CHUNK_CONTEXT else 'plain'}|{s.EMBEDDING_MODEL}"
    )


def embedding_input(chunk: Chunk, with_context: bool) -> str:
    """The text a chunk is embedded as: with its title and section headings in front, so a
    passage deep in a long document still carries what the document and section are about."""
    if not with_context:
        return chunk.content
    heading = " > ".join(part for part in (chunk.title.strip(), chunk.section.strip()) if part)
    return f"{heading}\n\n{chunk.content}" if heading else chunk.content


def cleaned_payload(doc: CleanedDocument, features: str = "") -> dict[str, Any]:
    """The `cleaned_*` payload: the CleanedDocument fields (datetimes as ISO strings) and
    the features key its chunks were made with."""
    return {**doc.model_dump(mode="json"), "features": features}


# --- store scans --------------------------------------------------------------------------


def _existing(client: QdrantClient) -> set[str]:
    return {c.name for c in client.get_collections().collections}


def scroll_points(client: QdrantClient, collection: str, fields: list[str]) -> Iterable[Any]:
    offset = None
    while True:
        points, offset = client.scroll(
            collection,
            limit=SCROLL_PAGE,
            offset=offset,
            with_payload=fields,
            with_vectors=False,
        )
        yield from points
        if offset is None:
            return


def stored_hashes(client: QdrantClient, category: Category) -> dict[str, str]:
    """{document_id: "content_hash|features key"} of the committed documents of a category."""
    name = CLEANED_COLLECTIONS[category]
    if name not in _existing(client):
        return {}
    return {
        str(p.id): f"{(p.payload or {}).get('content_hash', '')}|{(p.payload or {}).get('features', '')}"
        for p in scroll_points(client, name, ["content_hash", "features"])
    }


def stored_chunks(client: QdrantClient, category: Category) -> dict[str, set[str]]:
    """{document_id: {chunk point ids}} of a category's `embedded_*` collection."""
    name = EMBEDDED_COLLECTIONS[category]
    if name not in _existing(client):
        return {}
    chunks: dict[str, set[str]] = {}
    for p in scroll_points(client, name, ["document_id"]):
        chunks.setdefault((p.payload or {}).get("document_id", ""), set()).add(str(p.id))
    return chunks


def vector_counts(client: QdrantClient) -> dict[str, int]:
    """Points per feature collection (0 for a collection not created yet)."""
    existing = _existing(client)
    names = [*CLEANED_COLLECTIONS.values(), *EMBEDDED_COLLECTIONS.values()]
    return {n: (client.count(n, exact=True).count if n in existing else 0) for n in names}


def _check_dimension(client: QdrantClient, dimension: int) -> None:
    from retrievers.store import DENSE_VECTOR

    existing = _existing(client)
    for name in EMBEDDED_COLLECTIONS.values():
        if name not in existing:
            continue
        vectors = client.get_collection(name).config.params.vectors
        size = vectors[DENSE_VECTOR].size if isinstance(vectors, dict) else vectors.size
        if size != dimension:
            raise FeatureStoreError(
                f"collection {name} holds {size}-dimensional vectors but the embedding model "
                f"gives {dimension}: use the EMBEDDING_MODEL it was built with, or delete the "
                "vector store (DATA_DIR/qdrant) and run `python -m ingest sync` to rebuild it."
            )


def delete_document_points(
    client: QdrantClient, category: Category, document_ids: Iterable[str]
) -> int:
    """Delete documents' chunks, then their commit markers; returns chunks deleted."""
    from qdrant_client import models

    ids = sorted(set(document_ids))
    if not ids:
        return 0
    existing = _existing(client)
    deleted = 0
    embedded, cleaned = EMBEDDED_COLLECTIONS[category], CLEANED_COLLECTIONS[category]
    if embedded in existing:
        selector = models.Filter(
            must=[models.FieldCondition(key="document_id", match=models.MatchAny(any=ids))]
        )
        deleted = client.count(embedded, count_filter=selector, exact=True).count
        if deleted:
            client.delete(embedded, points_selector=models.FilterSelector(filter=selector))
    # Commit markers are keyed by document id; a chunk payload may name a document id that
    # is no valid point id (a foreign or damaged point): it has no marker to delete.
    markers = [i for i in ids if _is_point_id(i)]
    if cleaned in existing and markers:
        client.delete(cleaned, points_selector=models.PointIdsList(points=markers))
    return deleted


def _is_point_id(value: str) -> bool:
    import uuid

    try:
        uuid.UUID(value)
    except ValueError:
        return value.isdigit()
    return True


# --- the pipeline -------------------------------------------------------------------------


@dataclass
class _Doc:
    category: Category
    cleaned: CleanedDocument
    new_ids: set[str]
    old_ids: set[str]
    changed: bool


@dataclass
class _Group:
    chunks: list[Chunk] = field(default_factory=list)
    done: list[_Doc] = field(default_factory=list)  # documents whose last chunk is in here
    vectors: Any = None


_STOP = object()


class _Pipeline:
    """Encoder and writer threads fed by the caller's thread through bounded queues."""

    def __init__(self, client: QdrantClient, report: SyncReport, batch_size: int, bar: Any):
        self.client = client
        self.report = report
        self.batch_size = batch_size
        self.bar = bar
        self.features = features_key()
        self.with_context = get_settings().EMBED_CHUNK_CONTEXT
        self.error: BaseException | None = None
        self.to_encode: queue.Queue[Any] = queue.Queue(maxsize=2)
        self.to_write: queue.Queue[Any] = queue.Queue(maxsize=2)
        self.threads = [
            threading.Thread(target=self._guard, args=(self._encode,), name="embed", daemon=True),
            threading.Thread(target=self._guard, args=(self._write,), name="write", daemon=True),
        ]
        for t in self.threads:
            t.start()

    def _guard(self, stage: Callable[[], None]) -> None:
        try:
            stage()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            self.error = self.error or exc
            for q in (self.to_encode, self.to_write):  # unblock the other stages
                try:
                    while True:
                        q.get_nowait()
                except queue.Empty:
                    pass
                try:
                    q.put_nowait(_STOP)
                except queue.Full:
                    pass

    def _put(self, q: queue.Queue[Any], item: Any) -> None:
        while True:
            if self.error is not None:
                raise self.error
            try:
                q.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def submit(self, group: _Group) -> None:
        self._put(self.to_encode, group)

    def _encode(self) -> None:
        # Dense and sparse both use the model's tokenizer: only this thread may touch it.
        from retrievers.encoders import dense_encode, sparse_encode

        while (group := self.to_encode.get()) is not _STOP:
            if group.chunks:
                texts = [embedding_input(c, self.with_context) for c in group.chunks]
                group.vectors = (dense_encode(texts, self.batch_size), sparse_encode(texts))
            self._put(self.to_write, group)
        self._put(self.to_write, _STOP)

    def _write(self) -> None:
        from qdrant_client import models

        from retrievers.store import DENSE_VECTOR, SPARSE_VECTOR, chunk_payload

        while (group := self.to_write.get()) is not _STOP:
            by_collection: dict[str, list[models.PointStruct]] = {}
            if group.chunks:
                dense_vectors, sparse = group.vectors
                for chunk, dense, sp in zip(group.chunks, dense_vectors, sparse, strict=True):
                    by_collection.setdefault(EMBEDDED_COLLECTIONS[chunk.category], []).append(
                        models.PointStruct(
                            id=chunk.id,
                            vector={DENSE_VECTOR: dense.tolist(), SPARSE_VECTOR: sp},
                            payload=chunk_payload(chunk),
                        )
                    )
            # 1) chunks
            for name, points in by_collection.items():
                self.client.upsert(name, points=points, wait=True)
            # 2) stale chunks of the documents completed in this group
            stale: dict[str, list[str]] = {}
            for doc in group.done:
                gone = doc.old_ids - doc.new_ids
                if gone:
                    stale.setdefault(EMBEDDED_COLLECTIONS[doc.category], []).extend(sorted(gone))
            for name, ids in stale.items():
                self.client.delete(name, points_selector=models.PointIdsList(points=ids))
                self.report.chunks_deleted += len(ids)
            # 3) commit markers, after the chunks they vouch for are durable
            markers: dict[str, list[models.PointStruct]] = {}
            for doc in group.done:
                markers.setdefault(CLEANED_COLLECTIONS[doc.category], []).append(
                    models.PointStruct(
                        id=doc.cleaned.document_id, vector={}, payload=cleaned_payload(doc.cleaned, self.features)
                    )
                )
            if markers:
                for name, points in markers.items():
                    self.client.upsert(name, points=points, wait=True)
            self.report.chunks_embedded += len(group.chunks)
            for doc in group.done:
                if doc.changed:
                    self.report.changed += 1
                else:
                    self.report.new += 1
            if self.bar is not None:
                self.bar.update(len(group.done))
                self.bar.set_postfix(chunks=self.report.chunks_embedded, refresh=False)

    def abort(self) -> None:
        """Stop the stages after a failure in the caller's thread."""
        if self.error is None:
            self.error = RuntimeError("sync aborted")
            try:
                self.to_encode.put_nowait(_STOP)
            except queue.Full:
                pass

    def finish(self) -> None:
        if self.error is None:
            self._put(self.to_encode, _STOP)
        for t in self.threads:
            t.join()
        if self.error is not None:
            raise self.error


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

    # Plan: what the warehouse has vs what the store has committed.
    todo: list[tuple[Category, str, bool, set[str]]] = []
    for category in categories:
        features = features_key()
        refs = {r.id: f"{r.content_hash}|{features}" for r in wh.refs(category.value)}
        hashes = stored_hashes(client, category)
        chunks = stored_chunks(client, category)
        gone = (set(hashes) | set(chunks)) - set(refs)
        if gone:
            report.chunks_deleted += delete_document_points(client, category, gone)
            report.deleted += len(gone & set(hashes))
        for doc_id, digest in refs.items():
            if full or hashes.get(doc_id) != digest:
                todo.append((category, doc_id, doc_id in hashes, chunks.get(doc_id, set())))
            else:
                report.unchanged += 1
    if not todo:
        return report

    from ingest.features.chunking import chunk_document, get_tokenizer
    from ingest.features.cleaning import clean_document
    from retrievers.encoders import embedding_dimension
    from retrievers.store import ensure_collections

    dimension = embedding_dimension()
    _check_dimension(client, dimension)
    ensure_collections(client, dimension)
    tokenizer = get_tokenizer()  # this thread's copy; the model's own is the encoder's

    bar = None
    if progress:
        from core.progress import progress_bar

        bar = progress_bar(total=len(todo), desc="Embedding", unit="doc")
    group_size = batch_size * GROUP_BATCHES
    pipeline = _Pipeline(client, report, batch_size, bar)
    group = _Group()
    try:
        for category, doc_id, changed, old_ids in todo:
            record = wh.get(category.value, doc_id)
            if record is None:  # removed while we were syncing
                continue
            try:
                raw = RawDocument.model_validate(record)
                cleaned = clean_document(raw)
                chunks = chunk_document(cleaned, tokenizer)
            except Exception as exc:  # noqa: BLE001 - one bad document must not stop the run
                fail(f"{category.value}/{doc_id} ({record.get('link', '')})", f"{type(exc).__name__}: {exc}")
                continue
            doc = _Doc(category, cleaned, {c.id for c in chunks}, old_ids, changed)
            for chunk in chunks:
                group.chunks.append(chunk)
                if len(group.chunks) >= group_size:
                    pipeline.submit(group)
                    group = _Group()
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
