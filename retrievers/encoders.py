"""Dense and sparse encoders shared by the feature pipeline (writes) and retrieval (queries).

Dense: the configured sentence-transformers model, L2-normalised (cosine in Qdrant).
Sparse: BM25-style term weights over the embedding model's own tokenizer vocabulary; the
collection's IDF modifier supplies the inverse document frequency at query time.
"""

from __future__ import annotations

import functools
import re
import zlib
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from core.models import get_embedding_model

if TYPE_CHECKING:
    import numpy as np
    from qdrant_client import models

BM25_K1 = 1.2
BM25_B = 0.75
BM25_AVG_TOKENS = 256.0  # chunks are budgeted near this size
_WORD = re.compile(r"\w", re.UNICODE)
_STOPWORDS = frozenset(
    "a an and are as at be but by for from has have i in is it its of on or so that the "
    "this to was we were will with you your".split()
)


def dense_encode(texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
    """Embeddings of `texts` as a float32 array (n, dim), unit length."""
    model = get_embedding_model()
    return model.encode(
        list(texts),
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )


def embedding_dimension() -> int:
    model = get_embedding_model()
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(getter())


# Whole words and code names, next to the tokenizer's subwords: "os.fspath" or "Bucher" is
# split into common subwords ("fs", "##path"; "bu", "##cher") that match many passages, while
# the whole term pins the one passage that uses it (known-item R@1 in
# benchmarks/retrieval_choice.py). Hashed into ids above the vocabulary.
_WHOLE_TERM = re.compile(r"[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*")
WHOLE_TERM_BASE = 1 << 31


def _whole_term_ids(text: str) -> list[int]:
    ids = []
    for term in _WHOLE_TERM.findall(text):
        term = term.lower()
        parts = [term, *term.split(".")] if "." in term else [term]
        for part in parts:
            if len(part) >= 3 and part not in _STOPWORDS:
                ids.append(WHOLE_TERM_BASE + zlib.crc32(part.encode()) % WHOLE_TERM_BASE)
    return ids


def _subword_ids(text: str) -> list[int]:
    tokenizer = get_embedding_model().tokenizer
    tokens = tokenizer.tokenize(text.lower())
    keep = [t for t in tokens if _WORD.search(t) and t.lstrip("#") not in _STOPWORDS]
    return tokenizer.convert_tokens_to_ids(keep)


def _term_ids(text: str) -> list[int]:
    """The sparse vector's terms: the tokenizer's subwords and the whole words."""
    return _subword_ids(text) + _whole_term_ids(text)


def sparse_encode(texts: Sequence[str]) -> list[models.SparseVector]:
    """BM25 term-frequency weights per text (documents side)."""
    from qdrant_client import models

    vectors = []
    for text in texts:
        subwords = _subword_ids(text)
        counts = Counter(subwords + _whole_term_ids(text))
        # Length in subwords, the unit BM25_AVG_TOKENS is budgeted in.
        norm = BM25_K1 * (1 - BM25_B + BM25_B * len(subwords) / BM25_AVG_TOKENS)
        weights = {i: c * (BM25_K1 + 1) / (c + norm) for i, c in counts.items()}
        vectors.append(
            models.SparseVector(indices=list(weights), values=[float(v) for v in weights.values()])
        )
    return vectors


def sparse_encode_query(text: str) -> models.SparseVector:
    """Query side: each distinct term once (IDF comes from the collection)."""
    from qdrant_client import models

    ids = sorted(set(_term_ids(text)))
    return models.SparseVector(indices=ids, values=[1.0] * len(ids))




def query_vector(text: str) -> np.ndarray:
    """A query's dense embedding, cached: the first stage and the reranker share it."""
    from core.settings import get_settings

    return _cached_query_vector(text, get_settings().EMBEDDING_MODEL)


@functools.lru_cache(maxsize=512)
def _cached_query_vector(text: str, model: str) -> np.ndarray:
    vector = dense_encode([text])[0]
    vector.setflags(write=False)
    return vector
