"""What the vector store holds of the features, and pruning it.

`sync` plans from these scans: the `cleaned_*` commit markers say which document hash (and
features key) is fully in the store; the `embedded_*` payloads say which chunks belong to
which document, so chunks of documents that vanished (even mid-write) are found and deleted.
Read-only helpers (`vector_counts`, `scroll_points`) also serve the CLI, evals and benchmarks.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from core.domain import CLEANED_COLLECTIONS, EMBEDDED_COLLECTIONS, Category

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

SCROLL_PAGE = 2048


class FeatureStoreError(RuntimeError):
    """The vector store cannot take these features (e.g. built with another model)."""


def _existing(client: QdrantClient) -> set[str]:
    return {c.name for c in client.get_collections().collections}


def scroll_points(client: QdrantClient, collection: str, fields: list[str]) -> Iterable[Any]:
    offset = None
    while True:
        points, offset = client.scroll(
            collection,
            limit=SCROLL_PAGE,
            offset=offset,
            with_payload=fields,
            with_vectors=False,
        )
        yield from points
        if offset is None:
            return


def stored_hashes(client: QdrantClient, category: Category) -> dict[str, str]:
    """{document_id: "content_hash|features key"} of the committed documents of a category."""
    name = CLEANED_COLLECTIONS[category]
    if name not in _existing(client):
        return {}
    return {
        str(p.id): f"{(p.payload or {}).get('content_hash', '')}|{(p.payload or {}).get('features', '')}"
        for p in scroll_points(client, name, ["content_hash", "features"])
    }


def stored_chunks(client: QdrantClient, category: Category) -> dict[str, set[str]]:
    """{document_id: {chunk point ids}} of a category's `embedded_*` collection."""
    name = EMBEDDED_COLLECTIONS[category]
    if name not in _existing(client):
        return {}
    chunks: dict[str, set[str]] = {}
    for p in scroll_points(client, name, ["document_id"]):
        chunks.setdefault((p.payload or {}).get("document_id", ""), set()).add(str(p.id))
    return chunks


def vector_counts(client: QdrantClient) -> dict[str, int]:
    """Points per feature collection (0 for a collection not created yet)."""
    existing = _existing(client)
    names = [*CLEANED_COLLECTIONS.values(), *EMBEDDED_COLLECTIONS.values()]
    return {n: (client.count(n, exact=True).count if n in existing else 0) for n in names}


def check_dimension(client: QdrantClient, dimension: int) -> None:
    from retrievers.store import DENSE_VECTOR

    existing = _existing(client)
    for name in EMBEDDED_COLLECTIONS.values():
        if name not in existing:
            continue
        vectors = client.get_collection(name).config.params.vectors
        size = vectors[DENSE_VECTOR].size if isinstance(vectors, dict) else vectors.size
        if size != dimension:
            raise FeatureStoreError(
                f"collection {name} holds {size}-dimensional vectors but the embedding model "
                f"gives {dimension}: use the EMBEDDING_MODEL it was built with, or delete the "
                "vector store (DATA_DIR/qdrant) and run `python -m ingest sync` to rebuild it."
            )


def delete_document_points(
    client: QdrantClient, category: Category, document_ids: Iterable[str]
) -> int:
    """Delete documents' chunks, then their commit markers; returns chunks deleted."""
    from qdrant_client import models

    ids = sorted(set(document_ids))
    if not ids:
        return 0
    existing = _existing(client)
    deleted = 0
    embedded, cleaned = EMBEDDED_COLLECTIONS[category], CLEANED_COLLECTIONS[category]
    if embedded in existing:
        selector = models.Filter(
            must=[models.FieldCondition(key="document_id", match=models.MatchAny(any=ids))]
        )
        deleted = client.count(embedded, count_filter=selector, exact=True).count
        if deleted:
            client.delete(embedded, points_selector=models.FilterSelector(filter=selector))
    # Commit markers are keyed by document id; a chunk payload may name a document id that
    # is no valid point id (a foreign or damaged point): it has no marker to delete.
    markers = [i for i in ids if _is_point_id(i)]
    if cleaned in existing and markers:
        client.delete(cleaned, points_selector=models.PointIdsList(points=markers))
    return deleted


def _is_point_id(value: str) -> bool:
    import uuid

    try:
        uuid.UUID(value)
    except ValueError:
        return value.isdigit()
    return True
