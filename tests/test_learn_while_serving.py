"""The twin learns while it serves: with the API server holding the embedded vector store,
`python -m ingest add`, `ingest sync` and `finetune watch` run in other processes (through
the server's store share, `retrievers.store_share`), and the next request retrieves the new
writing; `POST /ingest` adds writing through the API; a server killed with SIGKILL in the
middle of an ingest leaves both stores consistent once the same command is rerun.

Real server on 127.0.0.1, real CLIs in subprocesses, offline models; no timed assertions.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.twin_server import (
    AUTHOR,
    FAST_CONFIG,
    SHARED_MODELS_CACHE,
    ServerThread,
    free_port,
    seed_corpus,
)

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
CLI_TIMEOUT_S = 600
BEEKEEPING = """# Rooftop beehives above the office

Three beehives live on the roof of our Stockholm office. Every August the colonies give
us about forty kilos of linden honey, and the beekeeping rota has become the best
onboarding ritual we have: new engineers learn to move slowly around a hive before they
learn our deploy pipeline.
"""


def _env(data_dir: Path, port: int | None = None, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("TWIN_API_KEY", "QDRANT_URL", "QDRANT_API_KEY", "MONGODB_URI", "LLM_BASE_URL")
    }
    env.update(DATA_DIR=str(data_dir), MODELS_CACHE_DIR=str(SHARED_MODELS_CACHE))
    env["LLM_MAX_NEW_TOKENS"] = "24"
    if port is not None:
        env["SERVER_PORT"] = str(port)
    env.update(extra)
    return env


def _cli(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        env=_env(data_dir, **env),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
    )


@pytest.fixture(scope="module")
def serving(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerThread, Path]]:
    """The real app on a seeded DATA_DIR, on the port its share file names."""
    from core.settings import reset_settings
    from retrievers.store import close_qdrant_client

    data_dir = tmp_path_factory.mktemp("learn") / "data"
    port = free_port()
    with pytest.MonkeyPatch.context() as mp:
        for key, value in _env(data_dir, port).items():
            mp.setenv(key, value)
        for var in ("MONGODB_URI", "QDRANT_URL", "QDRANT_API_KEY", "LLM_BASE_URL", "TWIN_API_KEY"):
            mp.delenv(var, raising=False)
        close_qdrant_client()
        reset_settings()
        seed_corpus()
        import server

        with ServerThread(server.create_app(warmup=False), port=port) as running:
            yield running, data_dir
        close_qdrant_client()
        reset_settings()


def _invoke(url: str, query: str) -> dict[str, Any]:
    payload = {"input": {"query": query}, "config": FAST_CONFIG}
    response = httpx.post(f"{url}/twin/invoke", json=payload, timeout=600)
    assert response.status_code == 200, response.text
    return response.json()["output"]["response_metadata"]


def _chunk_ids_of(link: str) -> set[str]:
    """Chunk ids the store holds for the document at `link` (this process holds the store)."""
    from qdrant_client import models

    from core.domain import EMBEDDED_COLLECTIONS
    from retrievers.store import get_qdrant_client

    client = get_qdrant_client()
    match = models.Filter(must=[models.FieldCondition(key="link", match=models.MatchValue(value=link))])
    ids: set[str] = set()
    for name in EMBEDDED_COLLECTIONS.values():
        points, _ = client.scroll(name, scroll_filter=match, limit=100, with_payload=False)
        ids.update(str(p.id) for p in points)
    return ids


def _cites(meta: dict[str, Any], chunk_ids: set[str]) -> bool:
    return bool({str(c.get("chunk_id")) for c in meta["context"]} & chunk_ids)


def test_ingest_add_while_serving_is_retrieved_by_the_next_request(serving, tmp_path):
    twin, data_dir = serving
    share_file = data_dir / "qdrant" / "share.json"
    assert stat.S_IMODE(share_file.stat().st_mode) == 0o600
    post = tmp_path / "rooftop-beehives.md"
    post.write_text(BEEKEEPING, encoding="utf-8")
    notes = tmp_path / "notes"  # enough chunks that one upsert exceeds SERVER_MAX_BODY_BYTES
    notes.mkdir()
    for i in range(8):
        (notes / f"note-{i}.md").write_text(f"# Standup note {i}\n\n" + " ".join(
            f"Point {i}.{j}: our standups run long when the board is stale." for j in range(100)
        ), encoding="utf-8")  # fmt: skip

    result = _cli(data_dir, "ingest", "add", str(post), str(notes), "--author", AUTHOR)

    assert result.returncode == 0, result.stderr
    assert "in use by another process" not in result.stderr
    assert "holds the vector store: writing through it" in result.stderr
    assert "collected: 9 added" in result.stdout
    assert "sync: documents: 9 new" in result.stdout
    chunk_ids = _chunk_ids_of(post.resolve().as_uri())
    assert chunk_ids
    meta = _invoke(twin.url, "Write an article about the rooftop beehives and the linden honey")
    assert _cites(meta, chunk_ids), (meta["filters"], meta["context"])


def test_ingest_sync_and_finetune_watch_while_serving(serving):
    from ingest.documents import document_from_text, store_documents

    twin, data_dir = serving
    link = "https://example.test/posts/sea-kayak"
    doc = document_from_text(
        "Paddling a sea kayak through the Stockholm archipelago in November taught me more "
        "about on-call than any runbook: check the forecast, tell someone your route, and "
        "turn back early.",
        author=AUTHOR,
        category="posts",
        title="Sea kayaking and on-call",
        link=link,
    )
    store_documents([doc], sync_store=False)  # the warehouse is shared between processes

    result = _cli(data_dir, "ingest", "sync")

    assert result.returncode == 0, result.stderr
    assert "sync: documents: 1 new" in result.stdout
    chunk_ids = _chunk_ids_of(link)
    assert chunk_ids
    meta = _invoke(twin.url, "Write a LinkedIn post about sea kayaking in the archipelago")
    assert _cites(meta, chunk_ids), (meta["filters"], meta["context"])

    watch = _cli(data_dir, "finetune", "watch", "--once", "--no-llm", "--json",
                 "--author", "Nobody Here")  # fmt: skip
    assert watch.returncode == 0, watch.stderr
    assert "in use by another process" not in watch.stderr
    assert json.loads(watch.stdout)[0]["status"] == "no-data"


def test_ingest_api_needs_a_key_and_the_document_arrives(serving):
    twin, data_dir = serving
    token = json.loads((data_dir / "qdrant" / "share.json").read_text())["token"]
    body = {
        "author": AUTHOR,
        "documents": [
            {
                "title": "Sourdough for on-call weeks",
                "category": "posts",
                "content": "During on-call weeks I keep a stiff rye sourdough starter in the "
                "fridge: one feed a day, bread every Sunday, no pager anxiety.",
                "link": "https://example.test/posts/rye-starter",
            }
        ],
    }
    url = f"{twin.url}/ingest"
    assert httpx.post(url, json=body, timeout=60).status_code == 401
    assert httpx.post(url, json=body, headers={"X-API-Key": "nope"}, timeout=60).status_code == 403
    key = {"Authorization": f"Bearer {token}"}
    local_path = {"author": AUTHOR, "sources": ["/etc/passwd"]}
    assert httpx.post(url, json=local_path, headers=key, timeout=60).status_code == 422
    assert httpx.post(url, json={"author": AUTHOR}, headers=key, timeout=60).status_code == 422
    too_many = {"author": AUTHOR, "sources": [f"https://example.test/{i}" for i in range(50)]}
    assert httpx.post(url, json=too_many, headers=key, timeout=60).status_code == 422
    refused = {"author": AUTHOR, "sources": ["http://127.0.0.1:9/private"]}  # SSRF guard
    response = httpx.post(url, json=refused, headers=key, timeout=120)
    assert response.status_code == 422, response.text
    assert "127.0.0.1" in json.dumps(response.json())

    response = httpx.post(url, json=body, headers=key, timeout=600)

    assert response.status_code == 200, response.text
    assert response.json()["sync"]["new"] == 1
    chunk_ids = _chunk_ids_of("https://example.test/posts/rye-starter")
    meta = _invoke(twin.url, "Write a post about a rye sourdough starter during on-call weeks")
    assert _cites(meta, chunk_ids), (meta["filters"], meta["context"])
    store = httpx.get(f"{twin.url}/store/collections", timeout=30)
    assert store.status_code == 401  # the store share takes the local token only


def _lines(stream: Any, out: queue.Queue[str]) -> None:
    for line in stream:
        out.put(line)
    out.put("")


def test_server_killed_mid_ingest_then_rerun_is_consistent(tmp_path):
    from core.settings import reset_settings
    from retrievers.store import close_qdrant_client

    data_dir = tmp_path / "data"
    port = free_port()
    folder = tmp_path / "notes"
    folder.mkdir()
    for i in range(24):
        (folder / f"note-{i:02d}.md").write_text(
            f"# Field note {i}\n\n" + " ".join(f"Observation {i}.{j} about queues, retries "
            "and backpressure in small services." for j in range(12)),
            encoding="utf-8",
        )  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        for key, value in _env(data_dir).items():
            mp.setenv(key, value)
        close_qdrant_client()
        reset_settings()
        seed_corpus()
        close_qdrant_client()  # hand the store to the server process
        server = subprocess.Popen(
            [sys.executable, "server.py"], cwd=ROOT, env=_env(data_dir, port),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            _wait_for_share(data_dir, f"http://127.0.0.1:{port}", server)
            ingest = subprocess.Popen(
                [sys.executable, "-m", "ingest", "add", str(folder), "--author", AUTHOR],
                cwd=ROOT, env=_env(data_dir, EMBEDDING_BATCH_SIZE="2"), text=True,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )  # fmt: skip
            lines: queue.Queue[str] = queue.Queue()
            threading.Thread(target=_lines, args=(ingest.stderr, lines), daemon=True).start()
            seen = []
            while True:  # until the sync has written something (or the run ended)
                line = lines.get(timeout=CLI_TIMEOUT_S)
                seen.append(line)
                if not line or line.startswith("Embedding"):
                    break
            server.send_signal(signal.SIGKILL)
            server.wait(timeout=60)
            ingest.wait(timeout=CLI_TIMEOUT_S)
            stderr = "".join(seen) + "".join(_drain(lines))
            assert "Traceback" not in stderr, stderr
            assert ingest.returncode in (0, 2), stderr  # 0: it finished before the kill
            if ingest.returncode == 2:
                assert "stopped answering" in stderr and "rerun the same command" in stderr
        finally:
            if server.poll() is None:
                server.kill()
                server.wait(timeout=60)

        rerun = _cli(data_dir, "ingest", "add", str(folder), "--author", AUTHOR)
        assert rerun.returncode == 0, rerun.stderr
        assert "writing through it" not in rerun.stderr  # the server is gone: direct
        _assert_consistent(expected_docs=24 + 5)


def _drain(lines: queue.Queue[str]) -> list[str]:
    out = []
    while True:
        try:
            out.append(lines.get(timeout=1))
        except queue.Empty:
            return out


def _wait_for_share(data_dir: Path, url: str, server: subprocess.Popen[bytes]) -> None:
    share = data_dir / "qdrant" / "share.json"
    deadline = time.monotonic() + CLI_TIMEOUT_S
    while time.monotonic() < deadline:
        assert server.poll() is None, "the server exited"
        if share.exists():
            try:
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
        time.sleep(0.5)
    raise AssertionError(f"the server on {url} did not start")


def _assert_consistent(expected_docs: int) -> None:
    """Every warehouse document committed once, its chunks complete and unique, no chunk
    of a document the warehouse lacks, and a further sync has nothing to do."""
    from core.domain import CLEANED_COLLECTIONS, EMBEDDED_COLLECTIONS, Category
    from core.warehouse import get_warehouse
    from ingest.features.sync import sync
    from retrievers.store import close_qdrant_client, get_qdrant_client

    close_qdrant_client()
    client = get_qdrant_client()
    try:
        with get_warehouse() as wh:
            ids = {c: {r.id for r in wh.refs(c.value)} for c in Category}
            assert sum(len(v) for v in ids.values()) == expected_docs
            for category in Category:
                markers = _all(client, CLEANED_COLLECTIONS[category])
                assert {str(p.id) for p in markers} == ids[category]
                chunks = _all(client, EMBEDDED_COLLECTIONS[category])
                by_doc: dict[str, list[int]] = {}
                for p in chunks:
                    by_doc.setdefault(p.payload["document_id"], []).append(p.payload["chunk_index"])
                assert set(by_doc) == ids[category]
                for indexes in by_doc.values():
                    assert sorted(indexes) == list(range(len(indexes)))
            again = sync(wh, client)
        assert (again.new, again.changed, again.deleted, again.chunks_embedded) == (0, 0, 0, 0)
        assert again.chunks_deleted == 0 and not again.failed
    finally:
        close_qdrant_client()


def _all(client: Any, name: str) -> list[Any]:
    existing = {c.name for c in client.get_collections().collections}
    if name not in existing:
        return []
    points, offset = [], None
    while True:
        batch, offset = client.scroll(name, limit=256, offset=offset, with_payload=True)
        points.extend(batch)
        if offset is None:
            return points
