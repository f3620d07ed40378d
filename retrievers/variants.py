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
| adaptive | dense and BM25 lists | dense cosine and collection BM25 mixed per query (`sparse_weight`) |

The default was chosen by `benchmarks/retrieval_choice.py` on real writing (185 requests
over 93 PEPs, production chunks): see DEFAULT_VARIANT below.
"""

from __future__ import annotations

import re
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
    # Both first-stage lists, then dense cosine and BM25 mixed with a weight read off the
    # request's shape: exact terms (code names, people, keyword lists) lean on BM25.
    "adaptive": Variant("rrf", "adaptive"),
}
# Chosen by benchmarks/retrieval_choice.py on the PEPs with two kinds of request: topical
# (185 written from reading them) and known-item (218 half-remembered lines, code names and
# people's names unique to one PEP). Dense alone: topical R@5 0.981 but known-item R@5 0.573
# (R@1 0.404); BM25 alone 0.984 / 0.950 (R@1 0.761); hybrid RRF 0.984 / 0.927; adaptive
# 0.995 / 0.995 (R@1 0.968), and 0.99x on a second known-item set drawn after tuning.
DEFAULT_VARIANT = "adaptive"


def resolve_variant(name: str | None) -> tuple[str, Variant]:
    """`auto`/None → cross-encoder when RERANKER_MODEL is set, else DEFAULT_VARIANT."""
    from core.settings import get_settings

    name = (name or "auto").strip().lower()
    if name in ("auto", "default"):
        name = "cross-encoder" if get_settings().RERANKER_MODEL else DEFAULT_VARIANT
    if name not in VARIANTS:
        raise ValueError(f"unknown reranker {name!r}; choose auto or one of {', '.join(VARIANTS)}")
    return name, VARIANTS[name]


# Words that make a request prose rather than a list of terms to look up.
_FUNCTION_WORDS = frozenset(
    """a about after all also an and any are as at be because been but by can could did do
    does for from had has have how i if in into is it its me my no not of on or our should
    so some than that the their them then there these they this those to us was we were
    what when where which who why will with would you your""".split()
)
_TERM = re.compile(r"[\w][\w.'/-]*")
# Code names: dotted paths, snake_case, dunders, camelCase / CamelCase with an inner capital.
_CODE_NAME = re.compile(
    r"\b[A-Za-z_]\w*\.[A-Za-z_]\w*|\b\w*[a-z0-9]_\w+|__\w+__|\b[a-z]+[A-Z]\w*|\b[A-Z][a-z0-9]+[A-Z]\w*"
)
# Two or more capitalised words inside a request: a person or a named thing ("Brandt Bucher").
_PROPER_NAME = re.compile(r"(?<=[a-z,;:] )[A-Z][a-z]+(?: [A-Z][a-z]+)+")
# The BM25 share of the adaptive mix per request shape (benchmarks/retrieval_choice.py).
SPARSE_WEIGHT_PROSE = 0.3
SPARSE_WEIGHT_TERMS = 0.7
SPARSE_WEIGHT_CODE = 0.8


def sparse_weight(query: str) -> float:
    """How much exact-term matching should count for `query`, between 0 (meaning only)
    and 1 (terms only): high for code names and for keyword lists without function words
    (how people half-remember a line or name a tool), low for questions in prose."""
    words = _TERM.findall(query)
    if not words:
        return SPARSE_WEIGHT_PROSE
    if _CODE_NAME.search(query):
        return SPARSE_WEIGHT_CODE
    if _PROPER_NAME.search(query):
        return SPARSE_WEIGHT_TERMS
    function_share = sum(w.lower() in _FUNCTION_WORDS for w in words) / len(words)
    if function_share < 0.15:
        return SPARSE_WEIGHT_TERMS
    return SPARSE_WEIGHT_PROSE
