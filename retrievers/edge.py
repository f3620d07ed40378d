"""The embedded vector store: Qdrant Edge (`qdrant-edge-py`) behind qdrant-client's API.

Qdrant Edge runs the real Qdrant engine in-process (Rust segments, payload indexes, WAL):
an author-filtered search over 100k chunks takes about a millisecond where qdrant-client's
local mode, which filters in Python point by point, takes seconds
(`benchmarks/retrieval_latency.py`). Its API is shard-level, so `EdgeClient` presents the
part of `QdrantClient` this project uses — collections, upsert, delete, count, scroll,
retrieve, query_points (prefetch + fusion), query_batch_points — taking and returning
qdrant-client's own `models`. Every caller keeps one code path, and `QDRANT_URL` switches
it to a Qdrant server or cluster unchanged.

One shard per collection under `DATA_DIR/qdrant/edge/<collection>`. The client holds a
lock on the whole folder (`store.lock`, also before any collection exists; Qdrant Edge
itself locks each shard's write-ahead log), so a second process gets `StoreLockedError`
(the store module turns it into a clear message), as qdrant-client's local mode did.
Payload-only collections (`cleaned_*`) are shards with one unused sparse vector, since a
shard needs at least one vector.

This module holds the shards (opening, locking, collections, lifecycle); the conversion of
qdrant-client's models to Qdrant Edge types and back is `retrievers.edge_translation`.
Those two are the only places that know Qdrant Edge's types; `tests/test_edge.py` runs
every method against the pinned version.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from qdrant_client.http import models

from retrievers.edge_translation import (
    edge_module,
    out_id,
    point_id,
    record,
    scored_point,
    to_edge_config,
    to_edge_filter,
    to_edge_payload_selector,
    to_edge_query_request,
    to_edge_schema,
    to_edge_vector,
    to_edge_vector_selector,
)

_VECTORS_FILE = "twin-vectors.json"
LOCK_FILE = "store.lock"


class StoreLockedError(RuntimeError):
    """Another process holds the shard's write-ahead log."""


def edge_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("qdrant_edge") is not None


class EdgeClient:
    """The subset of `qdrant_client.QdrantClient` the twin uses, over Qdrant Edge shards."""

    def __init__(self, path: str | Path) -> None:
        from filelock import FileLock, Timeout

        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._shards: dict[str, Any] = {}
        self._lock = threading.RLock()
        # Not thread-local: the client is opened and closed from different threads.
        self._store_lock = FileLock(self.path / LOCK_FILE, thread_local=False)
        try:
            self._store_lock.acquire(timeout=0)
        except Timeout:
            raise StoreLockedError(str(self.path / LOCK_FILE)) from None
        try:
            for folder in sorted(p for p in self.path.iterdir() if p.is_dir()):
                self._shards[folder.name] = self._open(folder)
        except BaseException:
            self._store_lock.release()
            raise

    def _open(self, folder: Path, config: Any = None) -> Any:
        q = edge_module()
        try:
            if config is not None:
                return q.EdgeShard.create(str(folder), config)
            return q.EdgeShard.load(str(folder))
        except Exception as exc:
            if "WouldBlock" in str(exc) or "lock" in str(exc).lower():
                for shard in self._shards.values():
                    shard.close()
                self._shards.clear()
                raise StoreLockedError(str(folder)) from None
            raise

    def _shard(self, name: str) -> Any:
        shard = self._shards.get(name)
        if shard is None:
            raise ValueError(f"Collection {name} not found")
        return shard

    # --- collections
    def get_collections(self) -> models.CollectionsResponse:
        with self._lock:
            names = sorted(self._shards)
        return models.CollectionsResponse(
            collections=[models.CollectionDescription(name=n) for n in names]
        )

    def collection_exists(self, collection_name: str) -> bool:
        return collection_name in self._shards

    def create_collection(
        self,
        collection_name: str,
        vectors_config: Any = None,
        sparse_vectors_config: dict[str, models.SparseVectorParams] | None = None,
        **_: Any,
    ) -> bool:
        config = to_edge_config(vectors_config, sparse_vectors_config)
        with self._lock:
            if collection_name in self._shards:
                raise ValueError(f"Collection {collection_name} already exists")
            folder = self.path / collection_name
            shutil.rmtree(folder, ignore_errors=True)  # a half-created one from a crash
            self._shards[collection_name] = self._open(folder, config)
            # Qdrant Edge does not report a shard's vector config: kept beside it.
            sizes = {name: params.size for name, params in (vectors_config or {}).items()}
            (folder / _VECTORS_FILE).write_text(json.dumps(sizes))
        return True

    def delete_collection(self, collection_name: str) -> bool:
        with self._lock:
            shard = self._shards.pop(collection_name, None)
            if shard is None:
                return False
            shard.close()
            shutil.rmtree(self.path / collection_name, ignore_errors=True)
        return True

    def get_collection(self, collection_name: str) -> models.CollectionInfo:
        """Point count and dense vector sizes, in the server's response shape."""
        shard = self._shard(collection_name)
        sidecar = self.path / collection_name / _VECTORS_FILE
        if not sidecar.exists():
            raise ValueError(
                f"collection {collection_name} in {self.path} has no {_VECTORS_FILE} (written "
                f"by an older version): delete {self.path} and run `python -m ingest sync "
                "--full` to rebuild the vector store from the warehouse"
            )
        sizes = json.loads(sidecar.read_text())
        vectors = {
            name: models.VectorParams(size=size, distance=models.Distance.COSINE)
            for name, size in sizes.items()
        }
        info = shard.info()
        return models.CollectionInfo(
            status=models.CollectionStatus.GREEN,
            optimizer_status=models.OptimizersStatusOneOf.OK,
            points_count=info.points_count,
            segments_count=info.segments_count,
            config=models.CollectionConfig(
                params=models.CollectionParams(vectors=vectors),
                hnsw_config=models.HnswConfig(m=16, ef_construct=100, full_scan_threshold=10_000),
                optimizer_config=models.OptimizersConfig(default_segment_number=0,
                                                         flush_interval_sec=5),
            ),
            payload_schema={},
        )  # fmt: skip

    def create_payload_index(
        self, collection_name: str, field_name: str, field_schema: Any = None, **_: Any
    ) -> None:
        operation = edge_module().UpdateOperation.create_field_index(
            field_name, to_edge_schema(field_schema)
        )
        self._shard(collection_name).update(operation)

    # --- writes
    def upsert(self, collection_name: str, points: Sequence[models.PointStruct], **_: Any) -> None:
        q = edge_module()
        edge_points = [
            q.Point(point_id(p.id), to_edge_vector(p.vector or {}), p.payload or {}) for p in points
        ]
        if edge_points:
            self._shard(collection_name).update(q.UpdateOperation.upsert_points(edge_points))

    def delete(self, collection_name: str, points_selector: Any, **_: Any) -> None:
        q = edge_module()
        shard = self._shard(collection_name)
        if isinstance(points_selector, models.FilterSelector):
            shard.update(q.UpdateOperation.delete_points_by_filter(to_edge_filter(points_selector.filter)))
            return
        ids = points_selector.points if isinstance(points_selector, models.PointIdsList) else points_selector
        if ids:
            shard.update(q.UpdateOperation.delete_points([point_id(i) for i in ids]))

    # --- reads
    def count(
        self, collection_name: str, count_filter: models.Filter | None = None, exact: bool = True,
        **_: Any,
    ) -> models.CountResult:  # fmt: skip
        request = edge_module().CountRequest(filter=to_edge_filter(count_filter), exact=True)
        return models.CountResult(count=self._shard(collection_name).count(request))

    def scroll(
        self,
        collection_name: str,
        scroll_filter: models.Filter | None = None,
        limit: int = 10,
        offset: Any = None,
        with_payload: Any = True,
        with_vectors: Any = False,
        **_: Any,
    ) -> tuple[list[models.Record], Any]:
        request = edge_module().ScrollRequest(
            offset=point_id(offset) if offset is not None else None,
            limit=limit,
            filter=to_edge_filter(scroll_filter),
            with_payload=to_edge_payload_selector(with_payload),
            with_vector=to_edge_vector_selector(with_vectors),
        )
        points, next_offset = self._shard(collection_name).scroll(request)
        return [record(p) for p in points], (
            out_id(next_offset) if next_offset is not None else None
        )

    def retrieve(
        self, collection_name: str, ids: Iterable[Any], with_payload: Any = True,
        with_vectors: Any = False, **_: Any,
    ) -> list[models.Record]:  # fmt: skip
        points = self._shard(collection_name).retrieve(
            [point_id(i) for i in ids],
            to_edge_payload_selector(with_payload),
            to_edge_vector_selector(with_vectors),
        )
        return [record(p) for p in points]

    def query_points(self, collection_name: str, **kwargs: Any) -> models.QueryResponse:
        kwargs.pop("timeout", None)
        if "query_filter" in kwargs:
            kwargs["filter"] = kwargs.pop("query_filter")
        if "with_vectors" in kwargs:
            kwargs["with_vector"] = kwargs.pop("with_vectors")
        points = self._shard(collection_name).query(to_edge_query_request(kwargs))
        return models.QueryResponse(points=[scored_point(p) for p in points])

    def query_batch_points(
        self, collection_name: str, requests: Sequence[models.QueryRequest], **_: Any
    ) -> list[models.QueryResponse]:
        batch = edge_module().QueryBatchRequest([to_edge_query_request(r) for r in requests])
        results = self._shard(collection_name).query_batch(batch)
        return [models.QueryResponse(points=[scored_point(p) for p in res]) for res in results]

    # --- lifecycle
    def flush(self) -> None:
        with self._lock:
            for shard in self._shards.values():
                shard.flush()

    def close(self) -> None:
        with self._lock:
            shards, self._shards = list(self._shards.values()), {}
        for shard in shards:
            shard.flush()
            shard.close()
        self._store_lock.release()
