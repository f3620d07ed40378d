"""Seed the `embedded_*` collections with chunks through the ingest-side schema.

Tests and evaluations (retrievers, graph, server, evals) use this instead of running the
whole feature pipeline: the same collections (`store.ensure_collections`), the same
encoders (`encoders.dense_encode` / `sparse_encode`), the same payload fields and the same
deterministic point ids (`core.domain.chunk_id_for`) as `python -m ingest sync` writes.

    from retrievers.seed import make_chunks, seed_chunks
    chunks = make_chunks(text, title="…", author="Maya Lindqvist", category="articles")
    seed_chunks(get_qdrant_client(), chunks)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from core.domain import (
    EMBEDDED_COLLECTIONS,
    Category,
    Chunk,
    author_id_for,
    chunk_id_for,
    document_id_for_link,
)

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

# Payload fields of an `embedded_*` point, in ARCHITECTURE.md order.
_DEFAULT_PLATFORM = {
    Category.ARTICLES.value: "medium",
    Category.POSTS.value: "linkedin",
    Category.REPOSITORIES.value: "github",
}


def collection_for(chunk: Chunk) -> str:
    return EMBEDDED_COLLECTIONS[Category(chunk.category)]


def seed_chunks(
    client: QdrantClient, chunks: Sequence[Chunk], batch_size: int = 256
) -> dict[str, int]:
    """Embed `chunks` (dense + sparse) and upsert them into their `embedded_*` collection.

    Creates the collections when missing. Idempotent: point id = `chunk.id`. Returns the
    number of points written per collection.
    """
    from qdrant_client import models

    from retrievers.encoders import dense_encode, embedding_dimension, sparse_encode
    from retrievers.store import DENSE_VECTOR, SPARSE_VECTOR, chunk_payload, ensure_collections

    ensure_collections(client, embedding_dimension())
    written: dict[str, int] = {}
    chunks = list(chunks)
    for start in range(0, len(chunks), batch_size):
        batch = chunks[start : start + batch_size]
        texts = [c.content for c in batch]
        dense = dense_encode(texts)
        sparse = sparse_encode(texts)
        by_collection: dict[str, list[models.PointStruct]] = {}
        for chunk, dvec, svec in zip(batch, dense, sparse, strict=True):
            by_collection.setdefault(collection_for(chunk), []).append(
                models.PointStruct(
                    id=chunk.id,
                    vector={DENSE_VECTOR: dvec.tolist(), SPARSE_VECTOR: svec},
                    payload=chunk_payload(chunk),
                )
            )
        for name, points in by_collection.items():
            client.upsert(collection_name=name, points=points, wait=True)
            written[name] = written.get(name, 0) + len(points)
    return written


_PARAGRAPH = re.compile(r"\n\s*\n")


def split_text(text: str, max_tokens: int = 200) -> list[str]:
    """Split text into chunks of at most ~`max_tokens` embedding-tokenizer tokens.

    A simple paragraph-packing splitter for seeding tests and evaluations (the ingest
    pipeline has its own per-category chunkers); a paragraph longer than the budget is
    split on lines, then hard-split on words.
    """
    from core.models import get_embedding_model

    tokenizer = get_embedding_model().tokenizer

    def size(piece: str) -> int:
        return len(tokenizer.tokenize(piece))

    pieces: list[str] = []
    for para in _PARAGRAPH.split(text.strip()):
        para = para.strip("\n")
        if not para.strip():
            continue
        if size(para) <= max_tokens:
            pieces.append(para)
            continue
        for line in para.splitlines():
            if size(line) <= max_tokens:
                pieces.append(line)
                continue
            words, current = line.split(" "), []
            for word in words:
                if current and size(" ".join([*current, word])) > max_tokens:
                    pieces.append(" ".join(current))
                    current = []
                current.append(word)
            if current:
                pieces.append(" ".join(current))
    chunks: list[str] = []
    current_parts: list[str] = []
    current_size = 0
    for piece in pieces:
        piece_size = size(piece)
        if current_parts and current_size + piece_size > max_tokens:
            chunks.append("\n\n".join(current_parts))
            current_parts, current_size = [], 0
        current_parts.append(piece)
        current_size += piece_size
    if current_parts:
        chunks.append("\n\n".join(current_parts))
    return chunks


def make_chunks(
    content: str,
    *,
    author: str,
    category: Category | str = Category.ARTICLES,
    title: str = "",
    link: str | None = None,
    platform: str | None = None,
    published_at: datetime | str | None = None,
    document_id: str | None = None,
    max_tokens: int = 200,
    split: bool = True,
) -> list[Chunk]:
    """Chunks of one document with deterministic ids, ready for `seed_chunks`.

    `link` defaults to a stable `https://example.test/...` address derived from the title,
    `document_id` to `document_id_for_link(platform, link)`.
    """
    category = Category(category).value
    platform = (platform or _DEFAULT_PLATFORM[category]).lower()
    name = " ".join(author.split())
    if link is None:
        slug = re.sub(r"[^a-z0-9]+", "-", (title or content[:40]).lower()).strip("-")
        link = f"https://example.test/{platform}/{slug or 'untitled'}"
    document_id = document_id or document_id_for_link(platform, link)
    if isinstance(published_at, str):
        published_at = datetime.fromisoformat(published_at.replace("Z", "+00:00"))
    texts = split_text(content, max_tokens) if split else [content]
    return [
        Chunk(
            id=chunk_id_for(document_id, index, text),
            document_id=document_id,
            author_id=author_id_for(name),
            author_full_name=name,
            platform=platform,
            category=category,
            link=link,
            title=title,
            chunk_index=index,
            content=text,
            published_at=published_at,
        )
        for index, text in enumerate(texts)
    ]


def seed_documents(client: QdrantClient, documents: Iterable[dict[str, Any]]) -> list[Chunk]:
    """Chunk and seed plain dicts with `content`, `author` and optional `make_chunks` keys."""
    chunks: list[Chunk] = []
    for doc in documents:
        doc = dict(doc)
        content = doc.pop("content")
        chunks.extend(make_chunks(content, **doc))
    seed_chunks(client, chunks)
    return chunks
