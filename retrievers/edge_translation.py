"""qdrant-client's `models` → Qdrant Edge types and back: filters, point ids, vectors,
queries (prefetch + fusion), collection config, and the points a shard returns.

Pure translation, no state: `retrievers.edge.EdgeClient` calls these around each shard
operation. Together with that module, the one place that knows Qdrant Edge's types."""

from __future__ import annotations

import uuid
from typing import Any

from qdrant_client.http import models

# A shard needs at least one vector: payload-only collections (`cleaned_*`) get this unused one.
PLACEHOLDER_SPARSE = "_payload_only"
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


def edge_module() -> Any:
    """`qdrant_edge`, imported on first use (a native extension; not needed with QDRANT_URL)."""
    import qdrant_edge

    return qdrant_edge


# ----------------------------------------------------------------------------- filters
def _match(match: Any) -> Any:
    q = edge_module()
    if isinstance(match, models.MatchValue):
        return q.MatchValue(match.value)
    if isinstance(match, models.MatchAny):
        return q.MatchAny(list(match.any))
    raise NotImplementedError(f"match {type(match).__name__} is not supported by the Edge store")


def _range(value: Any) -> Any:
    q = edge_module()

    def iso(v: Any) -> Any:
        return v.isoformat() if hasattr(v, "isoformat") else v

    if isinstance(value, models.DatetimeRange):
        return q.RangeDateTime(gte=iso(value.gte), gt=iso(value.gt), lte=iso(value.lte), lt=iso(value.lt))
    return q.RangeFloat(gte=value.gte, gt=value.gt, lte=value.lte, lt=value.lt)


def _condition(cond: Any) -> Any:
    q = edge_module()
    if isinstance(cond, models.Filter):
        return to_edge_filter(cond)
    if isinstance(cond, models.FieldCondition):
        return q.FieldCondition(
            key=cond.key,
            match=_match(cond.match) if cond.match is not None else None,
            range=_range(cond.range) if cond.range is not None else None,
        )
    if isinstance(cond, models.HasIdCondition):
        return q.HasIdCondition({point_id(i) for i in cond.has_id})
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

    return edge_module().Filter(must=group(flt.must), should=group(flt.should),
                                must_not=group(flt.must_not))  # fmt: skip


# ----------------------------------------------------------------------------- values
def point_id(value: Any) -> Any:
    """Point ids as Qdrant Edge takes them: UUID strings as `uuid.UUID`, integers as is."""
    if isinstance(value, int | uuid.UUID):
        return value
    return uuid.UUID(str(value))


def out_id(value: Any) -> str | int:
    """A point id as qdrant-client returns it (UUIDs as strings)."""
    return value if isinstance(value, int) else str(value)


def to_edge_vector(value: Any) -> Any:
    """Dense lists / arrays, `SparseVector`s, or a dict of named ones, for Qdrant Edge."""
    q = edge_module()
    if isinstance(value, models.SparseVector):
        return q.SparseVector(indices=list(value.indices), values=list(value.values))
    if isinstance(value, dict):
        return {name: to_edge_vector(v) for name, v in value.items()}
    if hasattr(value, "tolist"):
        return value.tolist()
    return list(value)


def _vector_out(value: Any) -> Any:
    if isinstance(value, dict):
        out = {name: _vector_out(v) for name, v in value.items() if name != PLACEHOLDER_SPARSE}
        return out or None
    if hasattr(value, "indices"):
        return models.SparseVector(indices=list(value.indices), values=list(value.values))
    return value


def to_edge_payload_selector(value: Any) -> Any:
    """`with_payload` (True/False or field names) as Qdrant Edge takes it."""
    return list(value) if isinstance(value, list | tuple) else bool(value)


def to_edge_vector_selector(value: Any) -> Any:
    """`with_vectors` (True/False or vector names) as Qdrant Edge takes it."""
    return list(value) if isinstance(value, list | tuple) else bool(value)


# ----------------------------------------------------------------------------- config
def to_edge_config(
    vectors_config: dict[str, models.VectorParams] | None,
    sparse_vectors_config: dict[str, models.SparseVectorParams] | None,
) -> Any:
    """A collection's named dense and sparse vectors as a Qdrant Edge shard config."""
    q = edge_module()
    dense = {}
    for name, params in (vectors_config or {}).items():
        distance = getattr(q.Distance, _DISTANCE[params.distance.value])
        dense[name] = q.EdgeVectorParams(size=params.size, distance=distance)
    sparse = {}
    for name, params in (sparse_vectors_config or {}).items():
        modifier = q.Modifier.Idf if params.modifier == models.Modifier.IDF else None
        sparse[name] = q.EdgeSparseVectorParams(modifier=modifier)
    if not dense and not sparse:
        sparse[PLACEHOLDER_SPARSE] = q.EdgeSparseVectorParams()
    return q.EdgeConfig(vectors=dense or None, sparse_vectors=sparse or None)


def to_edge_schema(field_schema: Any) -> Any:
    """A qdrant-client payload schema type (enum or its value) as Qdrant Edge's."""
    return getattr(edge_module().PayloadSchemaType, _SCHEMA[models.PayloadSchemaType(field_schema)])


# ----------------------------------------------------------------------------- queries
def _query(query: Any, using: str | None) -> Any:
    q = edge_module()
    if isinstance(query, models.FusionQuery):
        if query.fusion == models.Fusion.RRF:
            return q.Fusion.Rrf(k=60)
        return q.Fusion.Dbsf()
    if isinstance(query, models.NearestQuery):
        query = query.nearest
    return q.Query.Nearest(to_edge_vector(query), using=using)


def to_edge_query_request(req: models.QueryRequest | dict[str, Any]) -> Any:
    """A `QueryRequest` (or its keyword arguments) with its prefetches as Qdrant Edge's."""
    q = edge_module()
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
        with_payload=to_edge_payload_selector(req.with_payload),
        with_vector=to_edge_vector_selector(req.with_vector),
        score_threshold=req.score_threshold,
    )


# ----------------------------------------------------------------------------- results
def scored_point(point: Any) -> models.ScoredPoint:
    """A Qdrant Edge search hit as qdrant-client's `ScoredPoint`."""
    return models.ScoredPoint(id=out_id(point.id), version=int(point.version or 0),
                              score=float(point.score), payload=point.payload,
                              vector=_vector_out(point.vector))  # fmt: skip


def record(point: Any) -> models.Record:
    """A Qdrant Edge point as qdrant-client's `Record`."""
    return models.Record(id=out_id(point.id), payload=point.payload,
                         vector=_vector_out(point.vector))  # fmt: skip
