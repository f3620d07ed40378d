"""Second-stage rerankers over a small candidate set.

- `cross-encoder`: `RERANKER_MODEL` (any sentence-transformers CrossEncoder id or path),
  loaded once per process. Used automatically whenever the setting is non-empty.
- `maxsim`: late interaction (ColBERT-style MaxSim) over the embedding model's token
  embeddings — no extra weights, but one encoder pass over every candidate per query.
- `none`: keep the first-stage order (the fused hybrid score).

No cross-encoder ships offline (MODELS.md), so the default when `RERANKER_MODEL` is empty
is the variant chosen by `benchmarks/retrieval_choice.py` (see `retrievers.variants.DEFAULT_VARIANT`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)
_lock = threading.Lock()


@lru_cache(maxsize=2)
def get_cross_encoder(name: str) -> Any:
    """The CrossEncoder `name` (id or local path), loaded once per process."""
    with _lock:
        from sentence_transformers import CrossEncoder

        from core.models import embedding_model_path

        # Accept the same `offline:` shorthand as EMBEDDING_MODEL (useful for wiring tests).
        path = embedding_model_path(name) if name.startswith("offline:") else name
        return CrossEncoder(path, device="cpu")


def cross_encoder_scores(query: str, texts: Sequence[str], model_name: str) -> list[float]:
    if not texts:
        return []
    model = get_cross_encoder(model_name)
    scores = model.predict(
        [(query, t) for t in texts], batch_size=32, show_progress_bar=False, convert_to_numpy=True
    )
    scores = scores.reshape(len(texts), -1)
    # One logit (relevance) or several classes (take the last, "relevant" by convention).
    return [float(s[-1]) for s in scores]


def _token_embeddings(texts: Sequence[str]) -> list[np.ndarray]:
    """Unit-length token embeddings per text (special tokens dropped)."""
    import numpy as np

    from core.models import get_embedding_model

    model = get_embedding_model()
    outputs = model.encode(
        list(texts),
        output_value="token_embeddings",
        convert_to_numpy=False,
        show_progress_bar=False,
        batch_size=32,
    )
    result = []
    for tensor in outputs:
        arr = tensor.detach().cpu().float().numpy()
        if arr.shape[0] > 2:
            arr = arr[1:-1]  # [CLS] … [SEP]
        norms = np.linalg.norm(arr, axis=1, keepdims=True)
        result.append(arr / np.maximum(norms, 1e-9))
    return result


def maxsim_scores(query: str, texts: Sequence[str]) -> list[float]:
    """Mean over query tokens of the best cosine with any document token."""
    if not texts:
        return []
    embeddings = _token_embeddings([query, *texts])
    q = embeddings[0]
    return [float((q @ d.T).max(axis=1).mean()) for d in embeddings[1:]]
