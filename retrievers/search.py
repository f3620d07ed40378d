"""Multi-collection search: first stage (dense / sparse / hybrid), dedupe, second stage.

One query runs against every selected `embedded_*` collection (concurrently, in a thread
pool over the process's single Qdrant client — local mode allows one client per folder),
the per-collection lists are merged into one global candidate list, near-duplicates are
dropped, and a reranker orders the top `k`.

Variants (`reranker=` in the retriever config; "auto" = `DEFAULT_VARIANT`, or the
cross-encoder when `RERANKER_MODEL` is set):

| variant | first stage | second stage |
|---|---|---|
| dense | cosine on `dense` | — |
| sparse | BM25 on `sparse` (collection IDF) | — |
| hybrid | RRF of the global dense and sparse rankings | — |
| hybrid-weighted | 0.5·minmax(dense) + 0.5·minmax(sparse) | — |
| qdrant-rrf | Qdrant `prefetch` + `FusionQuery(RRF)` per collection | — |
| dense+maxsim, hybrid+maxsim | as named | MaxSim over token embeddings |
| hybrid+maxsim-rrf | hybrid | RRF of the hybrid rank and the MaxSim rank |
| cross-encoder | hybrid | `RERANKER_MODEL` CrossEncoder |
| hybrid+pool-rerank | hybrid | `rerank()` replayed on the pool (dense + pool-BM25 RRF) |
| dense+pool-rerank | dense | the same pool rerank: lexical precision without a sparse scan |

The default was chosen by `benchmarks/retrieval_choice.py` on real writing (185 requests
over 93 PEPs, production chunks): see DEFAULT_VARIANT below.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import re
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from retrievers.filters import FILTER_KEYS, SearchFilters
from retrievers.store import DENSE_VECTOR, SPARSE_VECTOR

if TYPE_CHECKING:
    import numpy as np
    from langchain_core.documents import Document

log = logging.getLogger(__name__)

RRF_K = 60
DEFAULT_K = 5
DEFAULT_FETCH_K = 20
# How many fused candidates a model-based second stage looks at.
DEFAULT_RERANK_N = 20
# At most this many chunks of one document in the top k (0: no limit). Two: the top five
# then span more documents (recall@5 0.981 vs 0.962 on the PEP eval) while the generator's
# two passages may still both come from the best document.
DEFAULT_MAX_PER_DOCUMENT = 2
NEAR_DUPLICATE_JACCARD = 0.9


@dataclass(frozen=True)
class Variant:
    first: str  # dense | sparse | rrf | weighted | qdrant-rrf
    second: str = "none"  # none | maxsim | maxsim-rrf | cross-encoder


VARIANTS: dict[str, Variant] = {
    "dense": Variant("dense"),
    "sparse": Variant("sparse"),
    "hybrid": Variant("rrf"),
    "hybrid-weighted": Variant("weighted"),
    "qdrant-rrf": Variant("qdrant-rrf"),
    "dense+maxsim": Variant("dense", "maxsim"),
    "hybrid+maxsim": Variant("rrf", "maxsim"),
    "hybrid+maxsim-rrf": Variant("rrf", "maxsim-rrf"),
    "cross-encoder": Variant("rrf", "cross-encoder"),
    # What the graph's rerank node does: `rerank()` on the candidate pool, unordered.
    "hybrid+pool-rerank": Variant("rrf", "pool"),
    # Dense recall (cheap in local mode), then the lexical + dense RRF on the pool only.
    "dense+pool-rerank": Variant("dense", "pool"),
}
# Chosen on the PEP eval (benchmarks/retrieval_choice.py), chunks embedded with their title
# and section: dense recall@1 0.897 / MRR 0.937; hybrid RRF with BM25 0.865 / 0.923 (more
# lexical hits, a worse first passage); a MaxSim second stage 0.892 / 0.940 at 1.5 s.
DEFAULT_VARIANT = "dense"


def resolve_variant(name: str | None) -> tuple[str, Variant]:
    """`auto`/None → cross-encoder when RERANKER_MODEL is set, else DEFAULT_VARIANT."""
    from core.settings import get_settings

    name = (name or "auto").strip().lower()
    if name in ("auto", "default"):
        name = "cross-encoder" if get_settings().RERANKER_MODEL else DEFAULT_VARIANT
    if name not in VARIANTS:
        raise ValueError(f"unknown reranker {name!r}; choose auto or one of {', '.join(VARIANTS)}")
    return name, VARIANTS[name]


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
        return Document(page_content=content, metadata=metadata, id=self.id)


# ---------------------------------------------------------------- vectors cache
# Dense vectors of recently returned chunks, so `rerank()` can score candidates against a
# different query without re-encoding them.
_VECTOR_CACHE: OrderedDict[str, Any] = OrderedDict()
_VECTOR_CACHE_MAX = 20_000
_cache_lock = threading.Lock()


def _remember_vector(point_id: str, vector: Any) -> None:
    if vector is None:
        return
    with _cache_lock:
        _VECTOR_CACHE[point_id] = vector
        _VECTOR_CACHE.move_to_end(point_id)
        while len(_VECTOR_CACHE) > _VECTOR_CACHE_MAX:
            _VECTOR_CACHE.popitem(last=False)


def cached_vectors(ids: Sequence[str]) -> dict[str, Any]:
    with _cache_lock:
        return {i: _VECTOR_CACHE[i] for i in ids if i in _VECTOR_CACHE}


# ---------------------------------------------------------------- encoding
def _query_vector(text: str) -> np.ndarray:
    """Dense query embedding, cached: the first stage and `rerank()` share it."""
    from core.settings import get_settings

    return _cached_query_vector(text, get_settings().EMBEDDING_MODEL)


@functools.lru_cache(maxsize=512)
def _cached_query_vector(text: str, model: str) -> np.ndarray:
    from retrievers.encoders import dense_encode

    vector = dense_encode([text])[0]
    vector.setflags(write=False)
    return vector


def encode_queries(queries: Sequence[str]) -> tuple[np.ndarray, list[Any]]:
    import numpy as np

    from retrievers.encoders import sparse_encode_query

    dense = np.stack([_query_vector(q) for q in queries])
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
                    _remember_vector(pid, _vector_of(point))
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


# ---------------------------------------------------------------- dedupe
_WS = re.compile(r"\s+")


def _normalised(text: str) -> str:
    return _WS.sub(" ", text).strip().casefold()


def _shingles(text: str, n: int = 5) -> set[str]:
    words = _normalised(text).split(" ")
    if len(words) <= n:
        return {" ".join(words)}
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def dedupe_documents(
    docs: Sequence[Document], threshold: float = NEAR_DUPLICATE_JACCARD
) -> list[Document]:
    """Drop repeats by chunk id and near-identical content, keeping the first (best) one."""
    kept: list[Document] = []
    seen_ids: set[str] = set()
    seen_hashes: set[str] = set()
    kept_shingles: list[set[str]] = []
    for doc in docs:
        chunk_id = str(doc.metadata.get("chunk_id") or doc.id or "")
        if chunk_id and chunk_id in seen_ids:
            continue
        digest = hashlib.sha1(_normalised(doc.page_content).encode()).hexdigest()
        if digest in seen_hashes:
            continue
        shingles = _shingles(doc.page_content)
        if any(
            len(shingles & other) / max(1, len(shingles | other)) >= threshold
            for other in kept_shingles
        ):
            continue
        if chunk_id:
            seen_ids.add(chunk_id)
        seen_hashes.add(digest)
        kept_shingles.append(shingles)
        kept.append(doc)
    return kept


# ---------------------------------------------------------------- second stage
def _rrf_merge(rankings: Sequence[Sequence[str]]) -> dict[str, float]:
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, key in enumerate(ranking):
            scores[key] = scores.get(key, 0.0) + 1.0 / (RRF_K + rank + 1)
    return scores


def _doc_key(doc: Document) -> str:
    return str(doc.metadata.get("chunk_id") or doc.id or id(doc))


def rerank(
    query: str,
    docs: Sequence[Document],
    k: int = DEFAULT_K,
    reranker: str | None = "auto",
    *,
    ordered: bool = False,
    max_per_document: int = 0,
) -> list[Document]:
    """Order `docs` for `query` and keep the top `k` (deduplicated).

    The graph's rerank node calls this on the merged results of several queries and
    collections. With a model-based reranker (cross-encoder, MaxSim) every candidate is
    scored against `query`. Without one (the offline default) the hybrid scoring is replayed
    on the pool against `query`: dense cosine (cached chunk vectors) for the dense default,
    RRF of the dense ranking and a BM25 ranking (IDF over the pool) for hybrid variants,
    so documents found by paraphrased queries are judged against the user's question. `ordered=True` says `docs` are already ranked for `query` by the first
    stage (then no model-free re-scoring happens). `max_per_document` > 0 keeps at most
    that many chunks of one document. `metadata["score"]` is set to the final score.
    """
    _, variant = resolve_variant(reranker)
    docs = list(docs)
    if not ordered:
        docs.sort(key=lambda d: -float(d.metadata.get("score") or 0.0))
    docs = dedupe_documents(docs)
    if not docs:
        return []
    texts = [d.page_content for d in docs]
    if variant.second == "cross-encoder":
        from core.settings import get_settings

        model_name = get_settings().RERANKER_MODEL or "offline:all-MiniLM-L6-v2"
        scores = cross_encoder_scores_safe(query, texts, model_name)
    elif variant.second in ("maxsim", "maxsim-rrf"):
        from retrievers.scoring import maxsim_scores

        sims = maxsim_scores(query, texts)
        if variant.second == "maxsim":
            scores = sims
        else:
            by_sim = sorted(range(len(docs)), key=lambda i: -sims[i])
            fused = _rrf_merge([[str(i) for i in range(len(docs))], [str(i) for i in by_sim]])
            scores = [fused[str(i)] for i in range(len(docs))]
    elif ordered:
        # Already ranked by the first stage for this very query: keep that order.
        return limit_per_document(docs, k, max_per_document)
    elif variant.second == "none" and variant.first == "dense":
        # The default: the same dense cosine as the first stage, now against `query` for
        # candidates that other phrasings or collections brought in.
        sims = dense_similarities(query, docs)
        scores = [sim - 1e-9 * i for i, sim in enumerate(sims)]
    else:
        # A hybrid first stage, replayed on the candidate pool against `query`: RRF of the
        # dense-cosine ranking and a BM25 ranking (IDF over the pool); the incoming order
        # only breaks ties.
        sims = dense_similarities(query, docs)
        lexical = lexical_scores(query, texts)
        by_sim = sorted(range(len(docs)), key=lambda i: -sims[i])
        by_lex = sorted(range(len(docs)), key=lambda i: -lexical[i])
        fused = _rrf_merge([[str(i) for i in by_sim], [str(i) for i in by_lex]])
        scores = [fused[str(i)] - 1e-9 * i for i in range(len(docs))]
    order = sorted(range(len(docs)), key=lambda i: -scores[i])
    result = []
    for i in order:
        doc = docs[i]
        doc.metadata["score"] = float(scores[i])
        result.append(doc)
    return limit_per_document(result, k, max_per_document)


def limit_per_document(docs: Sequence[Document], k: int, max_per_document: int = 0) -> list[Document]:
    """The first `k` of `docs` (best first) with at most `max_per_document` chunks of any
    one document (0: no limit), so the k slots are not all spent on one document."""
    if max_per_document <= 0:
        return list(docs[:k])
    taken: dict[str, int] = {}
    kept = []
    for doc in docs:
        key = str(doc.metadata.get("document_id") or doc.metadata.get("link") or _doc_key(doc))
        if taken.get(key, 0) >= max_per_document:
            continue
        taken[key] = taken.get(key, 0) + 1
        kept.append(doc)
        if len(kept) >= k:
            break
    return kept


def cross_encoder_scores_safe(query: str, texts: list[str], model_name: str) -> list[float]:
    from retrievers.scoring import cross_encoder_scores

    return cross_encoder_scores(query, texts, model_name)


def lexical_scores(query: str, texts: Sequence[str]) -> list[float]:
    """BM25 of `query` against each text, with IDF estimated on `texts` themselves.

    Uses the same term ids and saturated term weights as the `sparse` vectors
    (`retrievers.encoders`), so it ranks like the sparse first stage would on this pool.
    """
    import math

    from retrievers.encoders import _term_ids, sparse_encode

    terms = set(_term_ids(query))
    if not terms or not texts:
        return [0.0] * len(texts)
    vectors = [dict(zip(v.indices, v.values, strict=True)) for v in sparse_encode(texts)]
    n = len(vectors)
    idf = {}
    for term in terms:
        df = sum(1 for v in vectors if term in v)
        idf[term] = math.log(1 + (n - df + 0.5) / (df + 0.5))
    return [sum(idf[t] * v.get(t, 0.0) for t in terms) for v in vectors]


def dense_similarities(query: str, docs: Sequence[Document]) -> list[float]:
    """Cosine of `query` with each doc (cached chunk vectors; missing ones are encoded)."""
    import numpy as np

    from retrievers.encoders import dense_encode

    keys = [_doc_key(d) for d in docs]
    cached = cached_vectors(keys)
    missing = [i for i, key in enumerate(keys) if key not in cached]
    vectors: list[Any] = [cached.get(key) for key in keys]
    if missing:
        encoded = dense_encode([docs[i].page_content for i in missing])
        for j, i in enumerate(missing):
            vectors[i] = encoded[j]
    matrix = np.asarray(vectors, dtype=np.float32)
    return (matrix @ _query_vector(query)).tolist()


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
        fused = _rrf_merge([[c.id for c in ranking] for ranking in rankings])
        by_id = {c.id: c for ranking in reversed(rankings) for c in ranking}
        for key, value in fused.items():
            by_id[key].score = value
        merged = sorted(by_id.values(), key=lambda c: -c.score)
    docs = dedupe_documents([c.document() for c in merged])
    if variant.second == "none":
        return limit_per_document(docs, cfg.k, cfg.max_per_document)
    ordered = variant.second != "pool"
    return rerank(queries[0], docs[: cfg.rerank_n], cfg.k, cfg.reranker, ordered=ordered,
                  max_per_document=cfg.max_per_document)  # fmt: skip
