"""Multi-collection search: the first stage (dense / sparse / hybrid) over every selected
`embedded_*` collection, fused into one candidate list, then `retrievers.ranking` (dedupe,
second stage, per-document limit) for the top `k`.

One query runs against every selected collection concurrently, in a thread pool over the
process's single Qdrant client (the embedded store allows one client per folder). The
recipes and the measured default are in `retrievers.variants`.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from retrievers.encoders import query_vector
from retrievers.filters import FILTER_KEYS, SearchFilters
from retrievers.ranking import (
    dedupe_documents,
    limit_per_document,
    remember_vector,
    rerank,
    rrf_merge,
)
from retrievers.store import DENSE_VECTOR, SPARSE_VECTOR
from retrievers.variants import (
    DEFAULT_FETCH_K,
    DEFAULT_K,
    DEFAULT_MAX_PER_DOCUMENT,
    DEFAULT_RERANK_N,
    RRF_K,
    resolve_variant,
)

if TYPE_CHECKING:
    import numpy as np
    from langchain_core.documents import Document

log = logging.getLogger(__name__)

@dataclass
class SearchConfig:
    """The retriever's view of the graph Configuration (unknown keys are ignored)."""

    k: int = DEFAULT_K
    fetch_k: int = DEFAULT_FETCH_K
    collections: list[str] | None = None
    filters: SearchFilters = field(default_factory=SearchFilters)
    reranker: str = "auto"
    rerank_n: int = DEFAULT_RERANK_N
    max_per_document: int = DEFAULT_MAX_PER_DOCUMENT
    # False: the first stage's top k only; the caller runs the second stage itself over
    # several such searches (the graph's fan-out, `retrievers.retriever.rerank_pool`).
    second_stage: bool = True

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None = None, **overrides: Any) -> SearchConfig:
        if isinstance(config, SearchConfig):
            base = {
                "k": config.k,
                "fetch_k": config.fetch_k,
                "collections": config.collections,
                "filters": config.filters,
                "reranker": config.reranker,
                "rerank_n": config.rerank_n,
                "max_per_document": config.max_per_document,
                "second_stage": config.second_stage,
            }
        elif config is not None and dataclasses.is_dataclass(config):
            base = dataclasses.asdict(config)
        else:
            base = dict(config or {})
        base.update({k: v for k, v in overrides.items() if v is not None})
        # A graph Configuration may be passed as {"configurable": {...}} or as a dataclass.
        if "configurable" in base and isinstance(base["configurable"], Mapping):
            base = {
                **base["configurable"],
                **{k: v for k, v in base.items() if k != "configurable"},
            }
        filters = base.get("filters")
        if not isinstance(filters, SearchFilters):
            filters = SearchFilters.from_config(
                filters, **{key: base.get(key) for key in FILTER_KEYS}
            )
        k = int(base.get("k") or DEFAULT_K)
        fetch_k = int(base.get("fetch_k") or max(DEFAULT_FETCH_K, 4 * k))
        collections = base.get("collections") or None
        if isinstance(collections, str):
            collections = [collections]
        return cls(
            k=k,
            fetch_k=max(fetch_k, k),
            collections=list(collections) if collections else None,
            filters=filters,
            reranker=str(base.get("reranker") or "auto"),
            rerank_n=int(base.get("rerank_n") or max(DEFAULT_RERANK_N, 2 * k)),
            max_per_document=int(
                base["max_per_document"]
                if base.get("max_per_document") is not None
                else DEFAULT_MAX_PER_DOCUMENT
            ),
            second_stage=bool(base.get("second_stage", True)),
        )


@dataclass
class Candidate:
    id: str
    collection: str
    payload: dict[str, Any]
    dense: float | None = None
    sparse: float | None = None
    score: float = 0.0

    def document(self) -> Document:
        from langchain_core.documents import Document

        metadata = dict(self.payload)
        content = metadata.pop("content", "") or ""
        metadata.update(score=float(self.score), chunk_id=self.id, collection=self.collection)
        # The first stage's own scores, so a second stage can mix them per request.
        if self.sparse is not None:
            metadata["sparse_score"] = self.sparse
        return Document(page_content=content, metadata=metadata, id=self.id)


# ---------------------------------------------------------------- encoding
def encode_queries(queries: Sequence[str]) -> tuple[np.ndarray, list[Any]]:
    import numpy as np

    from retrievers.encoders import sparse_encode_query

    dense = np.stack([query_vector(q) for q in queries])
    sparse = [sparse_encode_query(q) for q in queries]
    return dense, sparse


# ---------------------------------------------------------------- first stage
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=6, thread_name_prefix="twin-search")
        return _pool


_existing: weakref.WeakKeyDictionary[Any, tuple[float, set[str]]] = weakref.WeakKeyDictionary()


def _existing_collections(client: Any) -> set[str]:
    """Names of existing collections, cached for a few seconds per client (a server
    round trip otherwise; the ingest pipeline may create them while we serve)."""
    now = time.monotonic()
    try:
        cached = _existing.get(client)
    except TypeError:  # not weak-referenceable
        cached = None
    if cached and now - cached[0] < 5.0 and cached[1]:
        return cached[1]
    names = {c.name for c in client.get_collections().collections}
    try:
        _existing[client] = (now, names)
    except TypeError:
        pass
    return names


def _vector_of(point: Any) -> Any:
    vector = getattr(point, "vector", None)
    if isinstance(vector, dict):
        return vector.get(DENSE_VECTOR)
    return vector


def _search_collection(
    client: Any, name: str, dense_vec: Any, sparse_vec: Any, qfilter: Any, limit: int, mode: str
) -> tuple[list[Any], list[Any]]:
    """(dense hits, sparse hits) of one collection for the needed first-stage lists."""
    from qdrant_client import models

    if mode == "qdrant-rrf":
        fused = client.query_points(
            name,
            prefetch=[
                models.Prefetch(query=dense_vec, using=DENSE_VECTOR, limit=limit, filter=qfilter),
                models.Prefetch(query=sparse_vec, using=SPARSE_VECTOR, limit=limit, filter=qfilter),
            ],
            query=models.FusionQuery(fusion=models.Fusion.RRF),
            limit=limit,
            with_payload=True,
        ).points
        return fused, []
    want_dense = mode in ("dense", "rrf", "weighted")
    want_sparse = (
        mode in ("sparse", "rrf", "weighted")
        and sparse_vec is not None
        and bool(sparse_vec.indices)
    )
    requests = []
    if want_dense:
        requests.append(
            models.QueryRequest(
                query=dense_vec,
                using=DENSE_VECTOR,
                filter=qfilter,
                limit=limit,
                with_payload=True,
                with_vector=[DENSE_VECTOR],
            )
        )
    if want_sparse:
        requests.append(
            models.QueryRequest(
                query=sparse_vec,
                using=SPARSE_VECTOR,
                filter=qfilter,
                limit=limit,
                with_payload=True,
            )
        )
    if not requests:
        return [], []
    responses = client.query_batch_points(name, requests=requests)
    dense_hits = responses[0].points if want_dense else []
    sparse_hits = responses[-1].points if want_sparse else []
    return dense_hits, sparse_hits


def first_stage(
    client: Any,
    collections: Sequence[str],
    dense_vec: Any,
    sparse_vec: Any,
    qfilter: Any,
    limit: int,
    mode: str,
) -> list[Candidate]:
    """Global candidate list over `collections`, ordered by the fused first-stage score."""
    existing = _existing_collections(client)
    targets = [c for c in collections if c in existing]
    if not targets:
        return []
    args = [(client, c, dense_vec, sparse_vec, qfilter, limit, mode) for c in targets]
    if len(targets) == 1:
        results = [_search_collection(*args[0])]
    else:
        results = list(_executor().map(lambda a: _search_collection(*a), args))
    by_id: dict[str, Candidate] = {}
    dense_rank: list[Candidate] = []
    sparse_rank: list[Candidate] = []
    for name, (dense_hits, sparse_hits) in zip(targets, results, strict=True):
        for hits, kind in ((dense_hits, "dense"), (sparse_hits, "sparse")):
            for point in hits:
                pid = str(point.id)
                cand = by_id.get(pid)
                if cand is None:
                    cand = by_id[pid] = Candidate(pid, name, dict(point.payload or {}))
                if kind == "dense":
                    cand.dense = float(point.score)
                    remember_vector(pid, _vector_of(point))
                    dense_rank.append(cand)
                else:
                    cand.sparse = float(point.score)
                    sparse_rank.append(cand)
    if mode in ("dense", "qdrant-rrf"):
        for cand in by_id.values():
            cand.score = cand.dense or 0.0
    elif mode == "sparse":
        for cand in by_id.values():
            cand.score = cand.sparse or 0.0
    elif mode == "rrf":
        dense_rank.sort(key=lambda c: -(c.dense or 0.0))
        sparse_rank.sort(key=lambda c: -(c.sparse or 0.0))
        for ranking in (dense_rank, sparse_rank):
            for rank, cand in enumerate(ranking):
                cand.score += 1.0 / (RRF_K + rank + 1)
    elif mode == "weighted":
        _weighted(list(by_id.values()))
    else:
        raise ValueError(f"unknown first stage {mode!r}")
    return sorted(by_id.values(), key=lambda c: -c.score)


def _minmax(values: list[float | None]) -> list[float]:
    present = [v for v in values if v is not None]
    if not present:
        return [0.0] * len(values)
    lo, hi = min(present), max(present)
    span = hi - lo or 1.0
    return [0.0 if v is None else (v - lo) / span for v in values]


def _weighted(cands: list[Candidate], alpha: float = 0.5) -> None:
    dense = _minmax([c.dense for c in cands])
    sparse = _minmax([c.sparse for c in cands])
    for cand, d, s in zip(cands, dense, sparse, strict=True):
        cand.score = alpha * d + (1 - alpha) * s


# ---------------------------------------------------------------- entry points
def search_many(
    queries: Sequence[str],
    config: Mapping[str, Any] | SearchConfig | None = None,
    client: Any = None,
) -> list[Document]:
    """Search every query over the selected collections; fuse, dedupe, rerank to top k.

    The first query is taken as the user's question (what the reranker scores against);
    the others are alternative phrasings whose results join the candidate pool through
    reciprocal rank fusion.
    """
    queries = [q for q in (q.strip() for q in queries) if q]
    if not queries:
        return []
    cfg = SearchConfig.from_config(config)
    _, variant = resolve_variant(cfg.reranker)
    collections = cfg.filters.select_collections(cfg.collections)
    if not collections:
        return []
    if client is None:
        from retrievers.store import get_qdrant_client

        client = get_qdrant_client()
    qfilter = cfg.filters.to_qdrant()
    dense, sparse = encode_queries(queries)
    rankings: list[list[Candidate]] = [
        first_stage(
            client, collections, dense[i].tolist(), sparse[i], qfilter, cfg.fetch_k, variant.first
        )
        for i in range(len(queries))
    ]
    if len(rankings) == 1:
        merged = rankings[0]
    else:
        fused = rrf_merge([[c.id for c in ranking] for ranking in rankings])
        by_id = {c.id: c for ranking in reversed(rankings) for c in ranking}
        for key, value in fused.items():
            by_id[key].score = value
        merged = sorted(by_id.values(), key=lambda c: -c.score)
    docs = dedupe_documents([c.document() for c in merged])
    if variant.second == "none" or not cfg.second_stage:
        return limit_per_document(docs, cfg.k, cfg.max_per_document)
    ordered = variant.second != "pool"
    return rerank(queries[0], docs[: cfg.rerank_n], cfg.k, cfg.reranker, ordered=ordered,
                  max_per_document=cfg.max_per_document)  # fmt: skip
