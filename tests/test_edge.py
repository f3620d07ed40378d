"""The embedded store adapter (`retrievers.edge.EdgeClient`) against the pinned Qdrant Edge:
every qdrant-client method the project calls, with qdrant-client's own models."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from qdrant_client import models

from retrievers.store import DENSE_VECTOR, SPARSE_VECTOR, ensure_collections, open_embedded_store

ROOT = Path(__file__).resolve().parent.parent


def _point(i: int, author: str, when: str | None, dense: list[float]) -> models.PointStruct:
    return models.PointStruct(
        id=str(uuid.UUID(int=i + 1)),
        vector={DENSE_VECTOR: dense,
                SPARSE_VECTOR: models.SparseVector(indices=[i, 100], values=[1.0, 0.5])},
        payload={"author_full_name": author, "published_at": when, "document_id": f"d{i % 3}",
                 "content": f"chunk {i}"},
    )  # fmt: skip


@pytest.fixture
def client(tmp_path: Path):
    store = open_embedded_store(tmp_path / "edge")
    ensure_collections(store, 4)
    dense = [[1, 0, 0, 0], [0.9, 0.1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
    store.upsert("embedded_articles", points=[
        _point(i, "Maya" if i % 2 else "Omar", f"202{i}-01-01T00:00:00+00:00" if i else None, d)
        for i, d in enumerate(dense)
    ])  # fmt: skip
    yield store
    store.close()


def test_collections_counts_and_filters(client) -> None:
    names = {c.name for c in client.get_collections().collections}
    assert {"embedded_articles", "cleaned_articles", "embedded_posts"} <= names
    assert client.count("embedded_articles").count == 5
    by_author = models.Filter(must=[models.FieldCondition(
        key="author_full_name", match=models.MatchAny(any=["Maya"]))])  # fmt: skip
    assert client.count("embedded_articles", count_filter=by_author, exact=True).count == 2
    dated = models.Filter(must=[models.FieldCondition(
        key="published_at", range=models.DatetimeRange(gte="2022-06-01T00:00:00Z"))])  # fmt: skip
    assert client.count("embedded_articles", count_filter=dated).count == 2
    info = client.get_collection("embedded_articles")
    assert info.config.params.vectors[DENSE_VECTOR].size == 4 and info.points_count == 5


def test_dense_sparse_and_fused_queries(client) -> None:
    dense, sparse = client.query_batch_points("embedded_articles", requests=[
        models.QueryRequest(query=[1, 0, 0, 0], using=DENSE_VECTOR, limit=2, with_payload=True,
                            with_vector=[DENSE_VECTOR]),
        models.QueryRequest(query=models.SparseVector(indices=[3], values=[1.0]),
                            using=SPARSE_VECTOR, limit=2, with_payload=True),
    ])  # fmt: skip
    assert [p.payload["content"] for p in dense.points] == ["chunk 0", "chunk 1"]
    assert dense.points[0].score == pytest.approx(1.0, abs=1e-5)
    assert dense.points[0].vector[DENSE_VECTOR] == pytest.approx([1, 0, 0, 0])
    assert isinstance(dense.points[0].id, str) and uuid.UUID(dense.points[0].id)
    assert [p.payload["content"] for p in sparse.points] == ["chunk 3"]
    filtered = client.query_points(
        "embedded_articles", query=[1, 0, 0, 0], using=DENSE_VECTOR, limit=3, with_payload=True,
        query_filter=models.Filter(must=[models.FieldCondition(
            key="author_full_name", match=models.MatchValue(value="Maya"))]),
    ).points  # fmt: skip
    assert [p.payload["content"] for p in filtered] == ["chunk 1", "chunk 3"]
    fused = client.query_points("embedded_articles", prefetch=[
        models.Prefetch(query=[0, 0, 1, 0], using=DENSE_VECTOR, limit=3),
        models.Prefetch(query=models.SparseVector(indices=[3], values=[1.0]), using=SPARSE_VECTOR,
                        limit=3),
    ], query=models.FusionQuery(fusion=models.Fusion.RRF), limit=2, with_payload=True).points  # fmt: skip
    assert fused[0].payload["content"] == "chunk 3"


def test_scroll_retrieve_and_delete(client) -> None:
    seen, offset = [], None
    while True:
        page, offset = client.scroll("embedded_articles", limit=2, offset=offset,
                                     with_payload=["content"], with_vectors=False)  # fmt: skip
        seen += [p.payload["content"] for p in page]
        assert all(set(p.payload) == {"content"} and p.vector is None for p in page)
        if offset is None:
            break
    assert sorted(seen) == [f"chunk {i}" for i in range(5)]
    (record,) = client.retrieve("embedded_articles", [str(uuid.UUID(int=3))], with_payload=True)
    assert record.payload["content"] == "chunk 2"
    client.delete("embedded_articles", points_selector=models.PointIdsList(points=[record.id]))
    client.delete("embedded_articles", points_selector=models.FilterSelector(filter=models.Filter(
        must=[models.FieldCondition(key="document_id", match=models.MatchAny(any=["d0"]))])))  # fmt: skip
    assert client.count("embedded_articles").count == 2  # 2 gone by id, d0 = chunks 0 and 3
    # Payload-only collections (commit markers) take points without vectors.
    client.upsert("cleaned_articles", points=[models.PointStruct(
        id=str(uuid.UUID(int=9)), vector={}, payload={"content_hash": "h"})])  # fmt: skip
    (marker,), _ = client.scroll("cleaned_articles", with_payload=True)
    assert marker.payload == {"content_hash": "h"} and marker.vector is None


def test_reopen_keeps_data_and_a_second_process_is_refused(tmp_path: Path) -> None:
    from retrievers.store import VectorStoreLocked

    store = open_embedded_store(tmp_path / "edge")
    ensure_collections(store, 4)
    store.upsert("embedded_posts", points=[_point(0, "Maya", None, [1, 0, 0, 0])])
    child = subprocess.run(
        [sys.executable, "-c", "import sys; from retrievers.store import open_embedded_store; "
         "open_embedded_store(sys.argv[1])", str(tmp_path / "edge")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert child.returncode != 0 and "VectorStoreLocked" in child.stderr
    assert "in use by another process" in child.stderr and "QDRANT_URL" in child.stderr
    store.close()
    with pytest.raises(VectorStoreLocked):
        held = open_embedded_store(tmp_path / "edge")
        open_embedded_store(tmp_path / "edge")
    held.close()
    again = open_embedded_store(tmp_path / "edge")
    assert again.count("embedded_posts").count == 1
    again.close()


def test_unsupported_conditions_fail_clearly(client) -> None:
    with pytest.raises(NotImplementedError, match="MatchText"):
        client.count("embedded_articles", count_filter=models.Filter(must=[models.FieldCondition(
            key="content", match=models.MatchText(text="chunk"))]))  # fmt: skip


def test_a_collection_without_its_vector_sizes_fails_clearly(client) -> None:
    (client.path / "embedded_articles" / "twin-vectors.json").unlink()
    with pytest.raises(ValueError, match="ingest sync --full"):
        client.get_collection("embedded_articles")
