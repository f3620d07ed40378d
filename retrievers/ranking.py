"""Ranking a candidate pool: near-duplicate removal, the second stage (`rerank`), and the
per-document limit. Shared by `search_many` and the graph's rerank node.

Candidates' dense vectors are kept for a while (`remember_vector`), so `rerank()` can score
candidates against another query than the one that found them without re-encoding them.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from retrievers.encoders import query_vector
from retrievers.variants import DEFAULT_K, NEAR_DUPLICATE_JACCARD, RRF_K, resolve_variant

if TYPE_CHECKING:
    from langchain_core.documents import Document


# ---------------------------------------------------------------- vectors cache
# Dense vectors of recently returned chunks, so `rerank()` can score candidates against a
# different query without re-encoding them.
_VECTOR_CACHE: OrderedDict[str, Any] = OrderedDict()
_VECTOR_CACHE_MAX = 20_000
_cache_lock = threading.Lock()


def remember_vector(point_id: str, vector: Any) -> None:
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
def rrf_merge(rankings: Sequence[Sequence[str]]) -> dict[str, float]:
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
            fused = rrf_merge([[str(i) for i in range(len(docs))], [str(i) for i in by_sim]])
            scores = [fused[str(i)] for i in range(len(docs))]
    elif variant.second == "adaptive":
        scores = adaptive_scores(query, docs)
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
        fused = rrf_merge([[str(i) for i in by_sim], [str(i) for i in by_lex]])
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


def adaptive_scores(query: str, docs: Sequence[Document]) -> list[float]:
    """Dense cosine and BM25 (the first stage's collection-IDF score, 0 where BM25 did not
    find the chunk), each scaled to [0, 1] over the pool, mixed by `sparse_weight(query)`."""
    from retrievers.variants import sparse_weight

    sims = dense_similarities(query, docs)
    lexical = [float(d.metadata.get("sparse_score") or 0.0) for d in docs]
    low, high = min(sims), max(sims)
    dense = [(s - low) / ((high - low) or 1.0) for s in sims]
    top = max(lexical) or 1.0
    weight = sparse_weight(query)
    return [(1 - weight) * d + weight * s / top - 1e-9 * i
            for i, (d, s) in enumerate(zip(dense, lexical, strict=True))]  # fmt: skip


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
    return (matrix @ query_vector(query)).tolist()
