"""Context-grounded training pairs: each passage's request carries the excerpts that serving
would put in front of it — the author's passages that retrieval finds for the request, from
the author's OTHER documents (never the passage's own).

Why: the served prompt always holds two retrieved excerpts, and a twin trained on pairs
without them meets that layout first when it serves. Trained with excerpts whose wording
is never the answer, the model learns to write new text in the author's voice next to
excerpts rather than to continue or copy them (benchmarks/twin_quality.py measures copying
against the training documents).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from core.prompts import clip_to_tokens, format_context

# Retrieved per request before the passage's own document is dropped: enough that `k`
# excerpts of other documents remain (retrieval keeps at most two passages per document).
OVERFETCH = 4
# Each excerpt is clipped like a served chunk (about CHUNK_TOKENS embedding wordpieces), so
# the training prompt is as long as the served one.
EXCERPT_TOKENS = 220


class ServedContext:
    """Excerpts of an author's other documents for a request, as the twin's retrieval
    stage would choose them (dense search over the author's `embedded_*` chunks)."""

    def __init__(self, author: str, k: int, client: Any = None) -> None:
        from retrievers import get_retriever

        self.k = k
        self._retriever = get_retriever(
            k=k + OVERFETCH, author=author, client=client, max_per_document=1
        )

    def for_request(self, request: str, exclude: Collection[str]) -> str:
        """Excerpts for `request` from documents not in `exclude` (the passage's own, and for
        a training pair the held-out documents, whose text must not reach training)."""
        if self.k <= 0 or not request.strip():
            return ""
        docs = self._retriever.invoke(request)
        others = [d for d in docs if str(d.metadata.get("document_id")) not in exclude]
        return format_context(
            [clip_to_tokens(d.page_content, EXCERPT_TOKENS) for d in others[: self.k]]
        )
