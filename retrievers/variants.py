"""The retrieval recipes: constants, first/second-stage variants and the measured default.

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

from dataclasses import dataclass

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
