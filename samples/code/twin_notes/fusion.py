"""Rank fusion helpers used while comparing rerankers."""

from collections.abc import Sequence


def reciprocal_rank_fusion(rankings: Sequence[Sequence[str]], k: int = 60) -> list[str]:
    """Merge several rankings of ids; items ranked high anywhere float to the top."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, doc_id in enumerate(ranking):
            scores[doc_id] = scores.get(doc_id, 0.0) + 1.0 / (k + rank + 1)
    return sorted(scores, key=scores.__getitem__, reverse=True)


def recall_at_k(ranked: Sequence[str], relevant: set[str], k: int = 5) -> float:
    """Share of the relevant ids found in the first k results."""
    if not relevant:
        return 0.0
    return len(set(ranked[:k]) & relevant) / len(relevant)
