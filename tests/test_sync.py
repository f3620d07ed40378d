"""Incremental sync: new/changed/deleted documents, idempotence, payloads, filters, crash
safety (kill -9 mid-embedding, then rerun) and the clear error for a held local store."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.domain import (
    CLEANED_COLLECTIONS,
    EMBEDDED_COLLECTIONS,
    Category,
    CleanedDocument,
    RawDocument,
    User,
    document_id_for_link,
)
from ingest.features import chunk_document, clean_document, sync, vector_counts

pytestmark = pytest.mark.slow  # embeds with the real model

ROOT = Path(__file__).resolve().parent.parent
MAYA = User.from_full_name("Maya Lindqvist")
OMAR = User.from_full_name("Omar Haddad")
# ARCHITECTURE.md's payload fields, plus the section path where the chunk starts.
CHUNK_FIELDS = {
    "document_id", "author_id", "author_full_name", "platform", "category", "link", "title",
    "chunk_index", "content", "published_at", "section",
}


def _text(topic: str, n: int) -> str:
    return "\n\n".join(
        f"## {topic.title()} part {i}\n\n"
        + " ".join(f"Point {i}.{j} about {topic} and how a twin learns a voice." for j in range(9))
        for i in range(n)
    )


def _doc(author: User, category: Category, slug: str, content, published=None) -> RawDocument:
    platform = {"articles": "medium", "posts": "linkedin", "repositories": "github"}[category]
    link = f"https://{platform}.com/{slug}"
    return RawDocument(
        _id=document_id_for_link(platform, link),
        author_id=author.id,
        author_full_name=author.full_name,
        platform=platform,
        category=category,
        link=link,
        title=slug,
        content=content,
        published_at=published,
    )


CORPUS = [
    _doc(MAYA, Category.ARTICLES, "chunking", {"text": _text("chunking", 4)},
         datetime(2024, 5, 1, tzinfo=UTC)),
    _doc(MAYA, Category.ARTICLES, "retrieval", {"text": _text("retrieval", 2)}),
    _doc(OMAR, Category.POSTS, "launch", {"text": "We launched the twin today 🚀 https://x.io/?utm_source=li"}),
    _doc(MAYA, Category.REPOSITORIES, "twin", {"twin/app.py": "def main():\n    return 42\n"}),
]


@pytest.fixture
def stores(data_dir):
    from core.warehouse import get_warehouse
    from retrievers.store import get_qdrant_client

    wh = get_warehouse()
    for doc in CORPUS:
        wh.upsert(doc.category, doc.to_record())
    yield wh, get_qdrant_client()
    wh.close()


def _points(client, name: str, **filters) -> list:
    from qdrant_client import models

    flt = None
    if filters:
        flt = models.Filter(
            must=[models.FieldCondition(key=k, match=models.MatchValue(value=v))
                  for k, v in filters.items()]
        )
    points, _ = client.scroll(name, scroll_filter=flt, limit=10_000, with_payload=True)
    return points


def _expected_chunk_ids(raw: RawDocument) -> set[str]:
    return {c.id for c in chunk_document(clean_document(raw))}


def test_new_changed_deleted_and_idempotent_rerun(stores) -> None:
    wh, client = stores
    first = sync(wh, client)
    assert (first.new, first.changed, first.deleted, first.failed) == (4, 0, 0, [])
    counts = vector_counts(client)
    assert counts["cleaned_articles"] == 2 and counts["cleaned_posts"] == 1
    assert counts["cleaned_repositories"] == 1
    assert counts["embedded_articles"] > 2  # the long article has several chunks
    assert first.chunks_embedded == sum(v for k, v in counts.items() if k.startswith("embedded"))

    again = sync(wh, client)
    assert again.changes == 0 and again.unchanged == 4

    # Change one article: only it is re-embedded; its old chunks are gone.
    changed = CORPUS[0].model_copy(update={"content": {"text": _text("chunking", 2)}, "content_hash": ""})
    changed = RawDocument.model_validate(changed.to_record() | {"content_hash": ""})
    assert wh.upsert("articles", changed.to_record()) == "updated"
    report = sync(wh, client)
    assert (report.new, report.changed, report.unchanged) == (0, 1, 3)
    assert report.chunks_deleted > 0
    stored = {str(p.id) for p in _points(client, "embedded_articles", document_id=changed.id)}
    assert stored == _expected_chunk_ids(changed)
    marker = client.retrieve("cleaned_articles", [changed.id], with_payload=True)[0]
    assert marker.payload["content_hash"] == changed.content_hash

    # Delete the post from the warehouse: its chunks and cleaned document go.
    wh.delete("posts", [CORPUS[2].id])
    report = sync(wh, client)
    assert report.deleted == 1 and report.chunks_deleted == 1
    assert vector_counts(client)["cleaned_posts"] == 0
    assert vector_counts(client)["embedded_posts"] == 0
    assert sync(wh, client).changes == 0


def test_payloads_and_filters(stores) -> None:
    from qdrant_client import models

    from retrievers.encoders import dense_encode
    from retrievers.store import DENSE_VECTOR

    wh, client = stores
    sync(wh, client)
    for name in EMBEDDED_COLLECTIONS.values():
        for point in _points(client, name):
            assert set(point.payload) == CHUNK_FIELDS
            published = point.payload["published_at"]
            assert published is None or datetime.fromisoformat(published).tzinfo is not None
    article = [p for p in _points(client, "embedded_articles") if p.payload["title"] == "chunking"]
    assert article[0].payload["published_at"].startswith("2024-05-01")
    assert sorted(p.payload["chunk_index"] for p in article) == list(range(len(article)))
    post = _points(client, "embedded_posts")[0].payload
    assert post["content"] == "We launched the twin today https://x.io/"  # cleaned
    assert post["author_full_name"] == "Omar Haddad" and post["category"] == "posts"

    cleaned = client.retrieve("cleaned_posts", [CORPUS[2].id], with_payload=True)[0].payload
    assert set(cleaned) == set(CleanedDocument.model_fields) | {"features"}
    # Prose carries its author's chrome fingerprint in the key; code has no chrome.
    assert "|chrome:" in cleaned["features"]
    repo = client.retrieve("cleaned_repositories", [CORPUS[3].id], with_payload=True)[0].payload
    assert "chrome" not in repo["features"]
    assert CleanedDocument.model_validate(cleaned).content_hash == CORPUS[2].content_hash

    # Filters by author and category with qdrant models.Filter.
    query = dense_encode(["how a twin learns a voice"])[0].tolist()
    for name in EMBEDDED_COLLECTIONS.values():
        hits = client.query_points(
            name,
            query=query,
            using=DENSE_VECTOR,
            query_filter=models.Filter(
                must=[models.FieldCondition(key="author_id", match=models.MatchValue(value=MAYA.id))]
            ),
            limit=50,
            with_payload=True,
        ).points
        assert all(h.payload["author_id"] == MAYA.id for h in hits)
        assert bool(hits) == (name != "embedded_posts")
    by_category = client.count(
        "embedded_repositories",
        count_filter=models.Filter(
            must=[models.FieldCondition(key="category", match=models.MatchValue(value="repositories"))]
        ),
    ).count
    assert by_category == vector_counts(client)["embedded_repositories"] > 0


def test_orphans_and_uncommitted_documents_are_repaired(stores) -> None:
    from qdrant_client import models

    from retrievers.store import DENSE_VECTOR

    wh, client = stores
    sync(wh, client)
    # A crash leftover: chunks of a document the warehouse does not have, no commit marker.
    ghost = {k: "x" for k in CHUNK_FIELDS} | {"document_id": "ghost", "chunk_index": 0}
    client.upsert("embedded_articles", points=[
        models.PointStruct(id="00000000-0000-0000-0000-000000000001",
                           vector={DENSE_VECTOR: [0.1] * 384}, payload=ghost)
    ])
    # A document whose commit marker was lost (killed before step 3): redone, no duplicates.
    client.delete("cleaned_articles", points_selector=models.PointIdsList(points=[CORPUS[1].id]))
    before = vector_counts(client)["embedded_articles"]
    report = sync(wh, client)
    assert report.chunks_deleted == 1 and report.new == 1
    assert vector_counts(client)["embedded_articles"] == before - 1
    assert vector_counts(client)["cleaned_articles"] == 2


# --- subprocess tests ---------------------------------------------------------------------


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("QDRANT_URL", "MONGODB_URI")}
    env.update(DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT), **extra)
    return env


def _ingest(args: list[str], env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ingest", *args], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=timeout,
    )


def _write_corpus(folder: Path) -> None:
    (folder / "posts").mkdir(parents=True)
    for i in range(16):
        (folder / f"article-{i:02d}.md").write_text(
            f"# Article {i}\n\n" + _text(f"topic {i}", 3) + "\n", encoding="utf-8"
        )
    for i in range(40):
        (folder / "posts" / f"post-{i:02d}.txt").write_text(
            f"Post {i}: a short note on shipping feature {i} of the twin, with lessons learned.\n",
            encoding="utf-8",
        )


def _snapshot(data_dir: Path) -> dict[str, dict[str, str]]:
    """{collection: {point id: content}} read from a closed store."""
    from retrievers.store import open_embedded_store

    client = open_embedded_store(data_dir / "qdrant" / "edge")
    try:
        out = {}
        for name in [*CLEANED_COLLECTIONS.values(), *EMBEDDED_COLLECTIONS.values()]:
            points, _ = client.scroll(name, limit=100_000, with_payload=["content", "content_hash"])
            out[name] = {str(p.id): json.dumps(p.payload, sort_keys=True) for p in points}
        return out
    finally:
        client.close()


def _cli_in_process(args: list[str], data: Path, monkeypatch, capsys) -> tuple[int, str]:
    """The real CLI code in this process (the embedding model is loaded once per session)."""
    from core.settings import reset_settings
    from ingest.cli import main
    from retrievers.store import close_qdrant_client

    monkeypatch.setenv("DATA_DIR", str(data))
    close_qdrant_client()
    reset_settings()
    capsys.readouterr()
    code = main(args)
    return code, capsys.readouterr().out


def test_kill_9_mid_embedding_then_rerun_matches_a_clean_run(
    data_dir: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    corpus = tmp_path / "corpus"
    _write_corpus(corpus)
    add = ["add", str(corpus), "--author", "Maya Lindqvist"]
    # Small encode groups (4 × 8 chunks) so there are many commit points to land between.
    monkeypatch.setenv("EMBEDDING_BATCH_SIZE", "4")
    clean_dir, crash_dir = tmp_path / "clean", tmp_path / "crash"

    code, _ = _cli_in_process(add, clean_dir, monkeypatch, capsys)
    assert code == 0
    expected = _snapshot(clean_dir)
    total_chunks = sum(len(v) for k, v in expected.items() if k.startswith("embedded"))
    assert total_chunks > 60

    proc = subprocess.Popen(
        [sys.executable, "-m", "ingest", *add], cwd=ROOT,
        env=_env(crash_dir, EMBEDDING_BATCH_SIZE="4"),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        # Off a terminal the CLI prints one progress line per step: kill at the first
        # "Embedding: n/N doc" with some documents committed and some not.
        for line in proc.stderr:
            match = re.match(r"Embedding: (\d+)/(\d+) doc", line)
            if match and 0 < int(match.group(1)) < int(match.group(2)):
                break
        assert proc.poll() is None, "the run finished before it could be killed"
        proc.kill()  # SIGKILL: no cleanup, no atexit, no finally
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -9
    partial = _snapshot(crash_dir)
    committed = sum(len(v) for k, v in partial.items() if k.startswith("cleaned"))
    assert 0 < sum(len(v) for k, v in partial.items() if k.startswith("embedded")) < total_chunks
    assert committed < sum(len(v) for k, v in expected.items() if k.startswith("cleaned"))

    code, out = _cli_in_process(add, crash_dir, monkeypatch, capsys)  # the user just reruns
    assert code == 0
    assert "0 added" in out  # the warehouse part had finished before the kill
    assert _snapshot(crash_dir) == expected  # same ids, same payloads: nothing lost or doubled

    code, out = _cli_in_process(["sync"], crash_dir, monkeypatch, capsys)
    assert code == 0 and "0 new, 0 changed, 0 removed" in out


def test_second_process_gets_a_clear_locked_message(tmp_path: Path) -> None:
    env = _env(tmp_path / "data")
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "from retrievers.store import get_qdrant_client; get_qdrant_client(); "
         "print('ready', flush=True); import time; time.sleep(120)"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        for args in (["status", "--json"], ["add", str(tmp_path), "--author", "A B"]):
            result = _ingest(args, env, timeout=120)
            assert result.returncode == 2, (args, result.stderr)
            assert "in use by another process" in result.stderr
            assert "QDRANT_URL" in result.stderr
            assert "Traceback" not in result.stderr
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_embedding_input_and_a_recipe_change_re_embeds(stores) -> None:
    from core.domain import Chunk
    from core.settings import settings_override
    from ingest.features.recipe import embedding_input

    chunk = Chunk(id="c", document_id="d", author_id="a", author_full_name="A", platform="web",
                  category="articles", link="l", title="Chunking", chunk_index=0,
                  content="Body.", section="Design > Storage")  # fmt: skip
    assert embedding_input(chunk, True) == "Chunking > Design > Storage\n\nBody."
    assert embedding_input(chunk, False) == "Body."

    wh, client = stores
    first = sync(wh, client)
    assert first.new == 4
    # What is embedded changed (another chunk size): every document is re-embedded once.
    with settings_override(CHUNK_TOKENS=96):
        report = sync(wh, client)
        assert report.changed == 4 and report.unchanged == 0
        assert sync(wh, client).changes == 0
    assert sync(wh, client).changed == 4  # and back
