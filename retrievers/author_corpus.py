"""An author's own writing as the store holds it: their cleaned documents, the names those
documents spell (what grounded decoding lets the twin state, core/llm/grounded_names.py) and
their words in order (what the recitation guard keeps it from copying, core/llm/recitation.py)."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

from core.domain import CLEANED_COLLECTIONS, author_id_for
from core.llm.grounded_names import NameIndex
from core.verbatim import CopyIndex

_INDEXES_LOCK = threading.Lock()
# (author, documents left out) → (fingerprint of their documents, the indexes): rebuilt only
# when the writing changes.
_INDEXES: dict[tuple[str, frozenset[str]], tuple[str, AuthorIndexes]] = {}


def load_cleaned_documents(
    author: str, client: Any = None, fields: list[str] | None = None
) -> list[dict[str, Any]]:
    """All cleaned documents of an author (by full name or id), sorted by category and id;
    `fields`: only those payload fields (documents without content are kept then)."""
    from qdrant_client import models

    if client is None:
        from retrievers.store import get_qdrant_client

        client = get_qdrant_client()
    name = " ".join(author.split())
    author_filter = models.Filter(
        should=[
            models.FieldCondition(key="author_full_name", match=models.MatchValue(value=name)),
            models.FieldCondition(
                key="author_id", match=models.MatchValue(value=author_id_for(name))
            ),
            models.FieldCondition(key="author_id", match=models.MatchValue(value=name)),
        ]
    )
    existing = {c.name for c in client.get_collections().collections}
    docs: list[dict[str, Any]] = []
    for category, collection in CLEANED_COLLECTIONS.items():
        if collection not in existing:
            continue
        offset = None
        while True:
            points, offset = client.scroll(
                collection,
                scroll_filter=author_filter,
                limit=256,
                offset=offset,
                with_payload=fields or True,
                with_vectors=False,
            )
            for point in points:
                payload = dict(point.payload or {})
                payload.setdefault("document_id", str(point.id))
                payload.setdefault("category", category.value)
                content = payload.get("content")
                if fields or (isinstance(content, str) and content.strip()):
                    docs.append(payload)
            if offset is None:
                break
    return sorted(docs, key=lambda d: (str(d["category"]), str(d["document_id"])))


class AuthorIndexes:
    """What decoding checks an answer against: the names the author's documents spell and
    their words in order (the recitation guard's index, built on first use)."""

    def __init__(self, documents: list[str]) -> None:
        self.names = NameIndex("\n".join(documents))
        self._documents = documents
        self._copy: CopyIndex | None = None
        self._lock = threading.Lock()

    @property
    def copy(self) -> CopyIndex:
        with self._lock:
            if self._copy is None:
                self._copy = CopyIndex(self._documents)
            return self._copy


def author_indexes(
    author: str, client: Any = None, leave_out: frozenset[str] = frozenset()
) -> AuthorIndexes | None:
    """The indexes of the author's cleaned documents, less the `leave_out` document ids
    (None when the store holds none of their writing). Cached per author and `leave_out`
    until their documents change."""
    # Per request only ids and hashes are read; the writing itself when it changed.
    stamps = _kept(load_cleaned_documents(author, client, fields=["content_hash"]), leave_out)
    if not stamps:
        return None
    digest = hashlib.sha256()
    for doc in stamps:
        digest.update(f"{doc['document_id']}|{doc.get('content_hash', '')}\n".encode())
    fingerprint = digest.hexdigest()
    key = (author, leave_out)
    with _INDEXES_LOCK:
        cached = _INDEXES.get(key)
        if cached and cached[0] == fingerprint:
            return cached[1]
    docs = _kept(load_cleaned_documents(author, client), leave_out)
    if not docs:
        return None
    indexes = AuthorIndexes([str(doc["content"]) for doc in docs])
    with _INDEXES_LOCK:
        if leave_out:  # one evaluation's set at a time: a watch loop's gates would pile up
            for stale in [k for k in _INDEXES if k[0] == author and k[1] and k != key]:
                del _INDEXES[stale]
        _INDEXES[key] = (fingerprint, indexes)
    return indexes


def _kept(docs: list[dict[str, Any]], leave_out: frozenset[str]) -> list[dict[str, Any]]:
    return [doc for doc in docs if str(doc["document_id"]) not in leave_out]


def author_name_index(author: str, client: Any = None) -> NameIndex | None:
    """The names the author's cleaned documents spell (None when the store holds none of
    their writing)."""
    indexes = author_indexes(author, client)
    return indexes.names if indexes else None


def grounding_kwargs(
    author: str, client: Any = None, leave_out: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The generation kwargs that keep the twin's answer to names it was given
    (core/llm/grounded_names.py, on or off by `LLM_GROUNDED_NAMES`, with the author's own
    names beside the prompt's) and from reciting the author's documents
    (core/llm/recitation.py, `LLM_MAX_COPIED_WORDS`), and that hold back its end until it
    has `LLM_MIN_ANSWER_WORDS` words (core/llm/min_words.py). One place for the served
    answer, the gate and the benchmarks. An evaluation passes its held-out documents as
    `leave_out`: grounded in the answer key, the twin's names would be judged invented by
    the yardstick, which counts only the training documents."""
    from core.settings import get_settings

    settings = get_settings()
    names, max_copied = settings.LLM_GROUNDED_NAMES, settings.LLM_MAX_COPIED_WORDS
    wanted = author and (names or max_copied)
    indexes = author_indexes(author, client, leave_out) if wanted else None
    kwargs: dict[str, Any] = {"grounded_names": names}
    if settings.LLM_MIN_ANSWER_WORDS:
        kwargs["min_words"] = settings.LLM_MIN_ANSWER_WORDS
    if names:
        kwargs["grounding_sources"] = indexes.names if indexes else None
    if max_copied and indexes is not None:
        kwargs.update(recitation_index=indexes.copy, max_copied_words=max_copied)
    return kwargs
