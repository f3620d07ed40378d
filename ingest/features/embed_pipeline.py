"""The embed-and-write stages of a sync, overlapped on threads, writing in commit order.

Throughput: three stages overlap — the caller's thread reads, cleans and chunks (and submits
groups of chunks here); an encoder thread embeds groups of chunks, dense and sparse (torch
releases the GIL; the model's tokenizer is used by this thread only); a writer thread
upserts points in batches.

Write order per document (the crash-safety argument of `ingest.features.sync`): 1) upsert
its chunks (deterministic ids, so a repeat is idempotent), 2) delete its stale chunks,
3) upsert its cleaned point last — the commit marker. A group carries the documents whose
last chunk is in it, so a marker is written only after all of its document's chunks.
Every write is acknowledged by the store before the next one starts (`wait=True` on a
server; the embedded Qdrant Edge store appends each update to its write-ahead log before it
returns), so the order holds after a `kill -9`.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.domain import CLEANED_COLLECTIONS, EMBEDDED_COLLECTIONS, Category, Chunk
from core.settings import get_settings
from ingest.features.recipe import cleaned_payload, embedding_input
from ingest.features.sync_report import SyncReport

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

    from core.domain import CleanedDocument


@dataclass
class PendingDocument:
    """A cleaned and chunked document on its way to the store: its chunk ids now and before."""

    category: Category
    cleaned: CleanedDocument
    new_ids: set[str]
    old_ids: set[str]
    changed: bool
    features: str  # the key its commit marker carries (features settings, chrome fingerprint)


@dataclass
class ChunkGroup:
    """One encode call's worth of chunks, and the documents it completes."""

    chunks: list[Chunk] = field(default_factory=list)
    # documents whose last chunk is in here
    done: list[PendingDocument] = field(default_factory=list)
    vectors: Any = None


_STOP = object()


class EmbedPipeline:
    """Encoder and writer threads fed by the caller's thread through bounded queues."""

    def __init__(self, client: QdrantClient, report: SyncReport, batch_size: int, bar: Any):
        self.client = client
        self.report = report
        self.batch_size = batch_size
        self.bar = bar
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

    def submit(self, group: ChunkGroup) -> None:
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
                        id=doc.cleaned.document_id, vector={}, payload=cleaned_payload(doc.cleaned, doc.features)
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
