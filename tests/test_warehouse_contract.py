"""One contract suite for every warehouse backend.

Backends: the embedded SQLite store; pymongo against mongoeco's wire-protocol server (the
best MongoDB stand-in that runs here, Python >= 3.13 in `.venv-mongo`); and a real MongoDB
whenever MONGODB_URI is set in the test environment.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import REAL_MONGODB_URI

from core.domain import RawDocument, User
from core.warehouse import UpsertResult, Warehouse, WarehouseError
from core.warehouse.embedded import EmbeddedWarehouse
from core.warehouse.mongo import MongoWarehouse

ROOT = Path(__file__).resolve().parent.parent
STANDIN_PYTHON = Path(os.environ.get("MONGO_STANDIN_PYTHON", ROOT / ".venv-mongo" / "bin" / "python"))


@pytest.fixture(scope="module")
def standin_uri() -> Iterator[str]:
    if not STANDIN_PYTHON.exists():
        pytest.skip(f"MongoDB stand-in not installed ({STANDIN_PYTHON}); run `make install`")
    proc = subprocess.Popen(
        [str(STANDIN_PYTHON), str(ROOT / "tests" / "support" / "mongo_standin.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        uri = proc.stdout.readline().strip()
        assert uri.startswith("mongodb://"), f"stand-in did not start: {uri!r}"
        yield uri
    finally:
        proc.terminate()
        proc.wait(timeout=10)


BACKENDS = ["embedded", "mongo-standin", "mongo-real"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, object]:
    """(kind, opener): calling opener() opens a new handle on the same store."""
    kind = request.param
    if kind == "embedded":
        return kind, lambda: EmbeddedWarehouse(tmp_path / "wh")
    database = f"twin_test_{uuid.uuid4().hex[:8]}"
    if kind == "mongo-standin":
        uri = request.getfixturevalue("standin_uri")
    else:
        if not REAL_MONGODB_URI:
            pytest.skip("set MONGODB_URI to run the contract suite against a real MongoDB")
        uri = REAL_MONGODB_URI
    return kind, lambda: MongoWarehouse(uri, database)


@pytest.fixture
def wh(backend: tuple[str, object]) -> Iterator[Warehouse]:
    store = backend[1]()
    yield store
    store.close()


def make_doc(title: str = "Hello", text: str = "Body text.", link: str = "https://x.test/a") -> dict:
    author = User.from_full_name("Ada Lovelace")
    return RawDocument(
        _id=f"doc-{link}",
        author_id=author.id,
        author_full_name=author.full_name,
        platform="web",
        category="articles",
        link=link,
        title=title,
        content={"title": title, "text": text},
        published_at=datetime(2024, 3, 1, 12, 30, tzinfo=UTC),
    ).to_record()


def test_upsert_adds_then_is_idempotent(wh: Warehouse) -> None:
    doc = make_doc()
    assert wh.upsert("articles", doc) is UpsertResult.ADDED
    assert wh.upsert("articles", dict(doc)) is UpsertResult.UNCHANGED
    again = make_doc()  # fresh timestamps, same content: still unchanged, no duplicate
    assert wh.upsert("articles", again) is UpsertResult.UNCHANGED
    assert wh.count("articles") == 1


def test_changed_content_updates_in_place(wh: Warehouse) -> None:
    first = make_doc(text="v1")
    wh.upsert("articles", first)
    stored_first = wh.get("articles", first["_id"])
    second = make_doc(text="v2")
    second["ingested_at"] = second["ingested_at"] + timedelta(hours=1)
    second["updated_at"] = second["updated_at"] + timedelta(hours=1)
    assert wh.upsert("articles", second) is UpsertResult.UPDATED
    stored = wh.get("articles", first["_id"])
    assert wh.count("articles") == 1
    assert stored["content"]["text"] == "v2"
    assert stored["content_hash"] != stored_first["content_hash"]
    assert stored["ingested_at"] == stored_first["ingested_at"]  # first sighting is kept
    assert stored["updated_at"] > stored_first["updated_at"]


def test_datetimes_round_trip_as_aware_utc(wh: Warehouse) -> None:
    doc = make_doc()
    doc["published_at"] = datetime(2023, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2)))
    wh.upsert("articles", doc)
    stored = wh.get("articles", doc["_id"])
    assert stored["published_at"].utcoffset() == timedelta(0)
    assert stored["published_at"] == datetime(2023, 5, 6, 5, 8, 9, 123000, tzinfo=UTC)


def test_find_count_filters_and_limit(wh: Warehouse) -> None:
    for i in range(5):
        wh.upsert("articles", make_doc(title=f"T{i}", link=f"https://x.test/{i}"))
    other = make_doc(link="https://x.test/other")
    other["author_id"] = "someone-else"
    wh.upsert("articles", other)
    author_id = User.from_full_name("Ada Lovelace").id
    assert wh.count("articles") == 6
    assert wh.count("articles", {"author_id": author_id}) == 5
    assert [d["title"] for d in wh.find("articles", {"author_id": "someone-else"})] == ["Hello"]
    assert len(list(wh.find("articles", {"platform": "web"}, limit=2))) == 2
    assert wh.count("posts") == 0


def test_refs_are_cheap_and_complete(wh: Warehouse) -> None:
    docs = [make_doc(link=f"https://x.test/{i}") for i in range(3)]
    for doc in docs:
        wh.upsert("articles", doc)
    refs = {r.id: r for r in wh.refs("articles")}
    assert set(refs) == {d["_id"] for d in docs}
    assert all(r.content_hash == docs[0]["content_hash"] for r in refs.values())
    assert all(r.updated_at.tzinfo is not None for r in refs.values())


def test_delete(wh: Warehouse) -> None:
    docs = [make_doc(link=f"https://x.test/{i}") for i in range(3)]
    for doc in docs:
        wh.upsert("articles", doc)
    assert wh.delete("articles", [docs[0]["_id"], "missing"]) == 1
    assert wh.get("articles", docs[0]["_id"]) is None
    assert wh.count("articles") == 2
    assert wh.delete("articles", []) == 0


def test_repository_content_with_path_keys(wh: Warehouse) -> None:
    author = User.from_full_name("Ada Lovelace")
    files = {"src/app.py": "print('hi')\n", "README.md": "# Readme\n", "a/b.c.txt": "x"}
    repo = RawDocument(
        _id="repo-1",
        author_id=author.id,
        author_full_name=author.full_name,
        platform="git",
        category="repositories",
        link="file:///tmp/repo",
        title="repo",
        content=files,
    ).to_record()
    wh.upsert("repositories", repo)
    assert wh.get("repositories", "repo-1")["content"] == files


def test_users_collection(wh: Warehouse) -> None:
    user = User.from_full_name("  Paul   Iusztin ")
    assert wh.upsert("users", user.model_dump(by_alias=True)) is UpsertResult.ADDED
    stored = wh.get("users", user.id)
    assert stored["full_name"] == "Paul Iusztin"
    assert stored["first_name"] == "Paul" and stored["last_name"] == "Iusztin"
    assert [r.id for r in wh.refs("users")] == [user.id]


def test_unknown_collection_is_a_clear_error(wh: Warehouse) -> None:
    with pytest.raises(WarehouseError, match="unknown warehouse collection 'comments'"):
        wh.upsert("comments", make_doc())


def test_persists_across_handles(backend: tuple[str, object]) -> None:
    first = backend[1]()
    first.upsert("articles", make_doc())
    first.close()
    second = backend[1]()
    try:
        assert second.get("articles", make_doc()["_id"])["title"] == "Hello"
    finally:
        second.close()


_WRITER = """
import sys
from core.warehouse.embedded import EmbeddedWarehouse
wh = EmbeddedWarehouse(sys.argv[1])
for i in range(100000):
    wh.upsert("posts", {"_id": f"p{i}", "content": "x" * 2000, "content_hash": str(i)})
    if i == 20:
        print("writing", flush=True)
"""


def test_embedded_survives_kill_9_mid_write(tmp_path: Path) -> None:
    """A writer killed mid-run leaves a readable store holding every committed record."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(tmp_path / "wh")],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout.readline().strip() == "writing"
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    store = EmbeddedWarehouse(tmp_path / "wh")
    try:
        assert store._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        count = store.count("posts")
        assert count > 20
        ids = {r.id for r in store.refs("posts")}
        assert ids == {f"p{i}" for i in range(count)}  # committed in order, no gaps
        # Still writable after the crash, and re-running is idempotent.
        assert store.upsert("posts", {"_id": "p0", "content": "x" * 2000, "content_hash": "0"}) \
            is UpsertResult.UNCHANGED
    finally:
        store.close()


def test_embedded_two_processes_share_the_store(tmp_path: Path) -> None:
    store = EmbeddedWarehouse(tmp_path / "wh")
    store.upsert("posts", {"_id": "mine", "content": "a", "content_hash": "a"})
    code = (
        "import sys\nfrom core.warehouse.embedded import EmbeddedWarehouse\n"
        "wh = EmbeddedWarehouse(sys.argv[1])\n"
        "print(wh.count('posts'))\n"
        "wh.upsert('posts', {'_id': 'theirs', 'content': 'b', 'content_hash': 'b'})\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "wh")], capture_output=True, text=True, cwd=ROOT
    )
    assert out.stdout.strip() == "1", out.stderr
    assert store.count("posts") == 2
    store.close()
