"""Qdrant access and the collection schema (ARCHITECTURE.md "Vector store").

Embedded by default: the Qdrant engine in-process (Qdrant Edge, `retrievers.edge`) in
`DATA_DIR/qdrant/edge`; `QDRANT_URL` switches to a server with the same client code. The
embedded store allows one process per folder. A second process borrows it from the holder
when that is the API server, which shares it (`retrievers.store_share`: the same REST
client as `QDRANT_URL`); otherwise it gets `VectorStoreLocked`, a clear message naming
the fix, never a stack trace.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.domain import CLEANED_COLLECTIONS, EMBEDDED_COLLECTIONS, Chunk

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

    from retrievers.store_share import StoreShare

log = logging.getLogger(__name__)
DENSE_VECTOR = "dense"
SPARSE_VECTOR = "sparse"
# Payload fields that filters use; indexed so a Qdrant server can filter fast.
KEYWORD_INDEXES = ("document_id", "author_id", "author_full_name", "platform", "category")
DATETIME_INDEXES = ("published_at",)
_lock = threading.Lock()
_client_lock = threading.Lock()
_client: QdrantClient | None = None
_client_share: StoreShare | None = None  # set when `_client` borrows another process's store
_close_registered = False


class VectorStoreLocked(RuntimeError):
    """The local Qdrant folder is held by another process."""


def chunk_payload(chunk: Chunk) -> dict[str, Any]:
    """The `embedded_*` payload: the ARCHITECTURE.md fields plus the chunk's `section`
    (headings where it starts), dates as ISO strings."""
    return {
        "document_id": chunk.document_id,
        "author_id": chunk.author_id,
        "author_full_name": chunk.author_full_name,
        "platform": str(chunk.platform),
        "category": str(chunk.category),
        "link": chunk.link,
        "title": chunk.title,
        "chunk_index": chunk.chunk_index,
        "content": chunk.content,
        "section": chunk.section,
        "published_at": chunk.published_at.isoformat() if chunk.published_at else None,
    }


def _holder_hint(locked: str) -> str:
    """The process holding `locked` (the store's lock file or a shard), where `fuser` can
    tell; empty otherwise."""
    lock_file = locked
    if os.path.isdir(locked):  # a shard: Qdrant Edge locks its write-ahead log
        lock_file = os.path.join(locked, "wal", "open-1")
        if not os.path.exists(lock_file):
            lock_file = os.path.join(locked, "wal")
    try:
        import subprocess

        out = subprocess.run(
            ["fuser", lock_file], capture_output=True, text=True, timeout=2, check=False
        ).stdout.split()
        if out:
            return f" (held by process {', '.join(out)})"
    except (OSError, subprocess.SubprocessError):
        pass
    return ""


def get_qdrant_client() -> QdrantClient:
    """One client per process: local folder by default, a server when QDRANT_URL is set.

    Closed at interpreter exit (or earlier by `close_qdrant_client`).
    """
    global _client, _close_registered
    client = _client
    if client is not None:
        return client
    # Locked: the graph's parallel `retrieve` branches may ask for the first client at
    # once, and a second local client on the same folder fails as `VectorStoreLocked`.
    with _client_lock:
        if _client is None:
            _client = _open_client()
            if not _close_registered:
                # Left to `QdrantClient.__del__` at interpreter shutdown, local mode's close
                # imports portalocker after the import system is gone and prints an
                # "Exception ignored … sys.meta_path is None" traceback on every exit;
                # atexit handlers run while imports still work.
                atexit.register(_close_at_exit)
                _close_registered = True
        return _client


def open_embedded_store(path: Path) -> QdrantClient:
    """The embedded store in `path` (Qdrant Edge shards, `retrievers.edge`), or
    `VectorStoreLocked` naming the process that holds it and the fix."""
    from retrievers.edge import EdgeClient, StoreLockedError

    try:
        return EdgeClient(path)  # type: ignore[return-value]
    except StoreLockedError as exc:
        raise VectorStoreLocked(
            f"the local vector store {path} is in use by another process"
            f"{_holder_hint(str(exc))}. Stop that process (e.g. the server or another "
            "`ingest` run), or run a Qdrant server and set QDRANT_URL so several processes "
            "can share it."
        ) from None


def _open_client() -> QdrantClient:
    from qdrant_client import QdrantClient

    from core.settings import get_settings

    global _client_share
    settings = get_settings()
    _client_share = None
    if settings.QDRANT_URL:
        return QdrantClient(url=settings.QDRANT_URL, api_key=settings.QDRANT_API_KEY or None)
    if (settings.qdrant_path / "collection").is_dir():
        log.warning(
            "%s holds a vector store of an earlier version (qdrant-client local mode), which "
            "is no longer read; `python -m ingest sync` rebuilds the store from the warehouse",
            settings.qdrant_path,
        )
    try:
        return open_embedded_store(settings.qdrant_path / "edge")
    except VectorStoreLocked as locked:
        return _borrow_store(settings.qdrant_path, locked)


def _borrow_store(qdrant_path: Path, locked: VectorStoreLocked) -> QdrantClient:
    """The held store through its holder's share (the API server), or `locked` saying why
    not."""
    global _client_share
    from retrievers.store_share import probe_share, read_share, shared_client

    share = read_share(qdrant_path)
    if share is None:
        raise locked
    problem = probe_share(share)
    if problem is not None:
        raise VectorStoreLocked(f"{locked} ({problem})") from None
    log.info("the vector store is held by the twin server at %s: using it through that server",
             share.url)  # fmt: skip
    _client_share = share
    return shared_client(share)


def borrowed_from() -> StoreShare | None:
    """The share this process's client goes through (another process holds the store), or
    None (it holds the store itself, or uses QDRANT_URL)."""
    return _client_share if _client is not None else None


def close_qdrant_client() -> None:
    """Release the local folder (tests and CLIs that hand the store to another process);
    the next `get_qdrant_client()` opens a fresh client."""
    global _client
    with _client_lock:
        client, _client = _client, None
    if client is not None:
        client.close()


def _close_at_exit() -> None:
    try:
        close_qdrant_client()
    except Exception as exc:  # noqa: BLE001 - exiting anyway: one line, not a traceback
        log.warning("closing the vector store at exit failed: %s", exc)


def _create_payload_indexes(client: QdrantClient, name: str) -> None:
    from qdrant_client import models

    # Filtered search plans on these (server and embedded Qdrant Edge alike).
    for field in KEYWORD_INDEXES:
        client.create_payload_index(name, field, field_schema=models.PayloadSchemaType.KEYWORD)
    for field in DATETIME_INDEXES:
        client.create_payload_index(name, field, field_schema=models.PayloadSchemaType.DATETIME)


def ensure_collections(client: QdrantClient, dimension: int, with_sparse: bool = True) -> None:
    """Create the six collections (idempotent) with vectors, sparse vectors and indexes."""
    from qdrant_client import models

    with _lock:
        existing = {c.name for c in client.get_collections().collections}
        for name in CLEANED_COLLECTIONS.values():
            if name not in existing:
                # Payload-only collection: Qdrant still needs a vector config; keep it empty.
                client.create_collection(name, vectors_config={})
                _create_payload_indexes(client, name)
        for name in EMBEDDED_COLLECTIONS.values():
            if name not in existing:
                client.create_collection(
                    name,
                    vectors_config={
                        DENSE_VECTOR: models.VectorParams(
                            size=dimension, distance=models.Distance.COSINE
                        )
                    },
                    sparse_vectors_config=(
                        {SPARSE_VECTOR: models.SparseVectorParams(modifier=models.Modifier.IDF)}
                        if with_sparse
                        else None
                    ),
                )
                _create_payload_indexes(client, name)
