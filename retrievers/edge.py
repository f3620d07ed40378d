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

This module is the one place that knows Qdrant Edge's types; `tests/test_edge.py` runs
every method against the pinned version.
"""

from __future__ import annotations

import json
import shutil
import threading
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from qdrant_client.http import models

_PLACEHOLDER_SPARSE = "_payload_only"
_VECTORS_FILE = "twin-vectors.json"
LOCK_FILE = "store.lock"
_DISTANCE = {"Cosine": "Cosine", "Euclid": "Euclid", "Dot": "Dot", "Manhattan": "Manhattan"}
_SCHEMA = {
    models.PayloadSchemaType.KEYWORD: "Keyword",
    models.PayloadSchemaType.INTEGER: "Integer",
    models.PayloadSchemaType.FLOAT: "Float",
    models.PayloadSchemaType.BOOL: "Bool",
    models.PayloadSchemaType.DATETIME: "Datetime",
    models.PayloadSchemaType.TEXT: "Text",
    models.PayloadSchemaType.UUID: "Uuid",
}


class StoreLockedError(RuntimeError):
    """Another process holds the shard's write-ahead log."""


def edge_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("qdrant_edge") is not None


def _edge() -> Any:
    import qdrant_edge

    return qdrant_edge


# ----------------------------------------------------------------------------- filters
def _match(match: Any) -> Any:
    q = _edge()
    if isinstance(match, models.MatchValue):
        return q.MatchValue(match.value)
    if isinstance(match, models.MatchAny):
        return q.MatchAny(list(match.any))
    raise NotImplementedError(f"match {type(match).__name__} is not supported by the Edge store")


def _range(value: Any) -> Any:
    q = _edge()

    def iso(v: Any) -> Any:
        return v.isoformat() if hasattr(v, "isoformat") else v

    if isinstance(value, models.DatetimeRange):
        return q.RangeDateTime(gte=iso(value.gte), gt=iso(value.gt), lte=iso(value.lte), lt=iso(value.lt))
    return q.RangeFloat(gte=value.gte, gt=value.gt, lte=value.lte, lt=value.lt)


def _condition(cond: Any) -> Any:
    q = _edge()
    if isinstance(cond, models.Filter):
        return to_edge_filter(cond)
    if isinstance(cond, models.FieldCondition):
        return q.FieldCondition(
            key=cond.key,
            match=_match(cond.match) if cond.match is not None else None,
            range=_range(cond.range) if cond.range is not None else None,
        )
    if isinstance(cond, models.HasIdCondition):
        return q.HasIdCondition({_point_id(i) for i in cond.has_id})
    raise NotImplementedError(f"condition {type(cond).__name__} is not supported by the Edge store")


def to_edge_filter(flt: models.Filter | None) -> Any:
    """A qdrant-client `Filter` as a Qdrant Edge `Filter` (None stays None)."""
    if flt is None:
        return None

    def group(conds: Any) -> list[Any] | None:
        if conds is None:
            return None
        conds = conds if isinstance(conds, list) else [conds]
        return [_condition(c) for c in conds]

    return _edge().Filter(must=group(flt.must), should=group(flt.should),
                          must_not=group(flt.must_not))  # fmt: skip


# ----------------------------------------------------------------------------- values
def _point_id(value: Any) -> Any:
    """Point ids as Qdrant Edge takes them: UUID strings as `uuid.UUID`, integers as is."""
    if isinstance(value, int | uuid.UUID):
        return value
    return uuid.UUID(str(value))


def _out_id(value: Any) -> str | int:
    return value if isinstance(value, int) else str(value)


def _vector(value: Any) -> Any:
    q = _edge()
    if isinstance(value, models.SparseVector):
        return q.SparseVector(indices=list(value.indices), values=list(value.values))
    if isinstance(value, dict):
        return {name: _vector(v) for name, v in value.items()}
    if hasattr(value, "tolist"):
        return value.tolist()
    return list(value)


def _vector_out(value: Any) -> Any:
    if isinstance(value, dict):
        out = {name: _vector_out(v) for name, v in value.items() if name != _PLACEHOLDER_SPARSE}
        return out or None
    if hasattr(value, "indices"):
        return models.SparseVector(indices=list(value.indices), values=list(value.values))
    return value


def _with_payload(value: Any) -> Any:
    return list(value) if isinstance(value, list | tuple) else bool(value)


def _with_vector(value: Any) -> Any:
    return list(value) if isinstance(value, list | tuple) else bool(value)


def _query(query: Any, using: str | None) -> Any:
    q = _edge()
    if isinstance(query, models.FusionQuery):
        if query.fusion == models.Fusion.RRF:
            return q.Fusion.Rrf(k=60)
        return q.Fusion.Dbsf()
    if isinstance(query, models.NearestQuery):
        query = query.nearest
    return q.Query.Nearest(_vector(query), using=using)


def _scored(point: Any) -> models.ScoredPoint:
    return models.ScoredPoint(id=_out_id(point.id), version=int(point.version or 0),
                              score=float(point.score), payload=point.payload,
                              vector=_vector_out(point.vector))  # fmt: skip


def _record(point: Any) -> models.Record:
    return models.Record(id=_out_id(point.id), payload=point.payload,
                         vector=_vector_out(point.vector))  # fmt: skip


# ----------------------------------------------------------------------------- client
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
        q = _edge()
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
        q = _edge()
        dense = {}
        for name, params in (vectors_config or {}).items():
            distance = getattr(q.Distance, _DISTANCE[params.distance.value])
            dense[name] = q.EdgeVectorParams(size=params.size, distance=distance)
        sparse = {}
        for name, params in (sparse_vectors_config or {}).items():
            modifier = q.Modifier.Idf if params.modifier == models.Modifier.IDF else None
            sparse[name] = q.EdgeSparseVectorParams(modifier=modifier)
        if not dense and not sparse:
            sparse[_PLACEHOLDER_SPARSE] = q.EdgeSparseVectorParams()
        with self._lock:
            if collection_name in self._shards:
                raise ValueError(f"Collection {collection_name} already exists")
            folder = self.path / collection_name
            shutil.rmtree(folder, ignore_errors=True)  # a half-created one from a crash
            config = q.EdgeConfig(vectors=dense or None, sparse_vectors=sparse or None)
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
        q = _edge()
        schema = getattr(q.PayloadSchemaType, _SCHEMA[models.PayloadSchemaType(field_schema)])
        self._shard(collection_name).update(q.UpdateOperation.create_field_index(field_name, schema))

    # --- writes
    def upsert(self, collection_name: str, points: Sequence[models.PointStruct], **_: Any) -> None:
        q = _edge()
        edge_points = [
            q.Point(_point_id(p.id), _vector(p.vector or {}), p.payload or {}) for p in points
        ]
        if edge_points:
            self._shard(collection_name).update(q.UpdateOperation.upsert_points(edge_points))

    def delete(self, collection_name: str, points_selector: Any, **_: Any) -> None:
        q = _edge()
        shard = self._shard(collection_name)
        if isinstance(points_selector, models.FilterSelector):
            shard.update(q.UpdateOperation.delete_points_by_filter(to_edge_filter(points_selector.filter)))
            return
        ids = points_selector.points if isinstance(points_selector, models.PointIdsList) else points_selector
        if ids:
            shard.update(q.UpdateOperation.delete_points([_point_id(i) for i in ids]))

    # --- reads
    def count(
        self, collection_name: str, count_filter: models.Filter | None = None, exact: bool = True,
        **_: Any,
    ) -> models.CountResult:  # fmt: skip
        request = _edge().CountRequest(filter=to_edge_filter(count_filter), exact=True)
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
        request = _edge().ScrollRequest(
            offset=_point_id(offset) if offset is not None else None,
            limit=limit,
            filter=to_edge_filter(scroll_filter),
            with_payload=_with_payload(with_payload),
            with_vector=_with_vector(with_vectors),
        )
        points, next_offset = self._shard(collection_name).scroll(request)
        return [_record(p) for p in points], (
            _out_id(next_offset) if next_offset is not None else None
        )

    def retrieve(
        self, collection_name: str, ids: Iterable[Any], with_payload: Any = True,
        with_vectors: Any = False, **_: Any,
    ) -> list[models.Record]:  # fmt: skip
        points = self._shard(collection_name).retrieve(
            [_point_id(i) for i in ids], _with_payload(with_payload), _with_vector(with_vectors)
        )
        return [_record(p) for p in points]

    def _request(self, req: models.QueryRequest | dict[str, Any]) -> Any:
        q = _edge()
        if isinstance(req, dict):
            req = models.QueryRequest(**req)
        prefetches = [
            q.Prefetch(limit=p.limit or 10, query=_query(p.query, p.using),
                       filter=to_edge_filter(p.filter))
            for p in (req.prefetch if isinstance(req.prefetch, list) else [req.prefetch])
            if p is not None
        ]  # fmt: skip
        return q.QueryRequest(
            limit=req.limit or 10,
            offset=req.offset,
            query=_query(req.query, req.using) if req.query is not None else None,
            prefetches=prefetches or None,
            filter=to_edge_filter(req.filter),
            with_payload=_with_payload(req.with_payload),
            with_vector=_with_vector(req.with_vector),
            score_threshold=req.score_threshold,
        )

    def query_points(self, collection_name: str, **kwargs: Any) -> models.QueryResponse:
        kwargs.pop("timeout", None)
        if "query_filter" in kwargs:
            kwargs["filter"] = kwargs.pop("query_filter")
        if "with_vectors" in kwargs:
            kwargs["with_vector"] = kwargs.pop("with_vectors")
        points = self._shard(collection_name).query(self._request(kwargs))
        return models.QueryResponse(points=[_scored(p) for p in points])

    def query_batch_points(
        self, collection_name: str, requests: Sequence[models.QueryRequest], **_: Any
    ) -> list[models.QueryResponse]:
        q = _edge()
        batch = q.QueryBatchRequest([self._request(r) for r in requests])
        results = self._shard(collection_name).query_batch(batch)
        return [models.QueryResponse(points=[_scored(p) for p in res]) for res in results]

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
