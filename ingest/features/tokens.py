"""Token counts by the embedding model's tokenizer: what every chunk budget is measured in.

Budgets are wordpieces of the model that embeds the chunks, so a chunk within budget is
never truncated by the encoder.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from typing import Any, Protocol


class Tokenizer(Protocol):
    def __call__(self, text: Any, **kwargs: Any) -> Any: ...


_local = threading.local()


def get_tokenizer() -> Any:
    """The embedding model's tokenizer, as a private copy for the calling thread.

    A Hugging Face fast tokenizer re-configures its padding/truncation on every call, so one
    instance used by the chunker and by `model.encode` in another thread at the same time
    produces unpadded batches. Each thread counts tokens with its own copy; the model's own
    tokenizer stays with the thread that encodes.
    """
    from core.models import get_embedding_model

    tokenizer = getattr(_local, "tokenizer", None)
    if tokenizer is None:
        tokenizer = _local.tokenizer = copy.deepcopy(get_embedding_model().tokenizer)
    return tokenizer


def max_budget() -> int:
    """Wordpieces the embedding model reads, minus its two special tokens."""
    from core.models import get_embedding_model

    return int(get_embedding_model().max_seq_length) - 2


def count_tokens(tokenizer: Tokenizer, texts: Sequence[str]) -> list[int]:
    if not texts:
        return []
    encoded = tokenizer(
        list(texts),
        add_special_tokens=False,
        return_attention_mask=False,
        return_token_type_ids=False,
        verbose=False,  # long inputs are measured here precisely to be split
    )
    return [len(ids) for ids in encoded["input_ids"]]


def split_by_tokens(tokenizer: Tokenizer, text: str, budget: int) -> list[str]:
    """Cut `text` into pieces of at most `budget` tokens, between words where possible."""
    encoded = tokenizer(
        text,
        add_special_tokens=False,
        return_offsets_mapping=True,
        return_attention_mask=False,
        verbose=False,
    )
    offsets = encoded["offset_mapping"]
    if len(offsets) <= budget:
        return [text]
    pieces = []
    start = 0
    while start < len(offsets):
        end = min(start + budget, len(offsets))
        if end < len(offsets):
            # Back up to a token that follows whitespace (a word start), if there is one.
            cut = end
            while cut > start + 1 and offsets[cut][0] <= offsets[cut - 1][1]:
                cut -= 1
            end = cut if cut > start + 1 else end
        begin = offsets[start][0] if start else 0
        stop = offsets[end][0] if end < len(offsets) else len(text)
        piece = text[begin:stop].strip()
        if piece:
            pieces.append(piece)
        start = end
    return pieces
