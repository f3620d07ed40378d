"""`python -m ingest` end to end on a small folder: add, status --json, sync, remove."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STATUS_KEYS = {
    "warehouse": ["users", "articles", "posts", "repositories"],
    "vector_store": [
        "cleaned_articles", "cleaned_posts", "cleaned_repositories",
        "embedded_articles", "embedded_posts", "embedded_repositories",
    ],
}


def _run(args: list[str], data_dir: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("QDRANT_URL", "MONGODB_URI")}
    env.update(DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "ingest", *args], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=timeout,
    )


def _main(args: list[str], capsys) -> tuple[int, str, str]:
    """The CLI in this process (uses the `data_dir` fixture's DATA_DIR)."""
    from ingest.cli import main

    capsys.readouterr()
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _status(capsys) -> dict:
    code, out, err = _main(["status", "--json"], capsys)
    assert code == 0, err
    return json.loads(out)


def test_help_is_fast_and_imports_nothing_heavy() -> None:
    # "Fast" is proven by what it imports, not by a clock: no model or vector-store library.
    result = subprocess.run(
        [sys.executable, "-m", "ingest", "--help"], cwd=ROOT, capture_output=True, text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert "add" in result.stdout and "status" in result.stdout
    probe = subprocess.run(
        [sys.executable, "-c",
         "import sys, ingest.cli as c\n"
         "try:\n    c.main(['add', '--help'])\nexcept SystemExit:\n    pass\n"
         "heavy = [m for m in ('torch', 'qdrant_client', 'sentence_transformers', 'pydantic')"
         " if m in sys.modules]\nprint('HEAVY', heavy)"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert "HEAVY []" in probe.stdout, probe.stdout + probe.stderr


@pytest.mark.slow
def test_add_status_sync_remove_end_to_end(data_dir: Path, tmp_path: Path, capsys) -> None:
    src = tmp_path / "notes"
    (src / "posts").mkdir(parents=True)
    (src / "rag.md").write_text(
        "# Retrieval that respects code\n\nChunks keep code intact 🚀. See "
        "https://example.com/guide?utm_source=feed for more.\n\n"
        "```python\ndef  keep(x):\n    return  x\n```\n",
        encoding="utf-8",
    )
    (src / "posts" / "launch.txt").write_text(
        "Shipped the twin's ingest today. Feedback welcome!\n", encoding="utf-8"
    )

    # The real entry point, as a user runs it.
    missing = tmp_path / "missing.md"
    result = _run(["add", str(src), str(missing), "--author", "Maya  Lindqvist"], data_dir)
    assert result.returncode == 0, result.stderr
    assert "collected: 2 added, 0 updated, 0 unchanged, 1 failed" in result.stdout
    assert "2 new" in result.stdout and "chunks: 2 embedded" in result.stdout
    failures = [line for line in result.stderr.splitlines() if line.startswith("failed:")]
    assert failures == [f"failed: {missing}: not a URL, and no such file or folder"]
    assert "Traceback" not in result.stderr

    status = _status(capsys)
    assert list(status) == ["warehouse", "vector_store"]
    assert {k: list(v) for k, v in status.items()} == STATUS_KEYS
    assert status["warehouse"] == {"users": 1, "articles": 1, "posts": 1, "repositories": 0}
    assert status["vector_store"] == {
        "cleaned_articles": 1, "cleaned_posts": 1, "cleaned_repositories": 0,
        "embedded_articles": 1, "embedded_posts": 1, "embedded_repositories": 0,
    }
    code, out, _ = _main(["status"], capsys)
    assert code == 0 and "embedded_posts" in out and "Vector store" in out

    # The cleaned text is what got embedded: code verbatim, tracking gone, emoji gone.
    from retrievers.store import open_embedded_store

    client = open_embedded_store(data_dir / "qdrant" / "edge")
    try:
        (point,), _ = client.scroll("embedded_articles", with_payload=True)
    finally:
        client.close()
    assert "def  keep(x):\n    return  x\n```" in point.payload["content"]
    assert "intact. See https://example.com/guide for more" in point.payload["content"]
    assert "🚀" not in point.payload["content"]
    assert point.payload["author_full_name"] == "Maya Lindqvist"
    assert point.payload["link"] == (src / "rag.md").resolve().as_uri()

    # Re-adding the same sources changes nothing; sync has nothing to do.
    code, out, err = _main(["add", str(src), "--author", "Maya Lindqvist"], capsys)
    assert code == 0, err
    assert "0 added, 0 updated, 2 unchanged, 0 failed" in out
    assert "0 new, 0 changed, 0 removed, 2 unchanged" in out
    code, out, _ = _main(["sync"], capsys)
    assert code == 0 and "chunks: 0 embedded, 0 deleted" in out

    # Remove by path (its file:// link): warehouse record and points go.
    code, out, err = _main(["remove", str(src / "rag.md")], capsys)
    assert code == 0, err
    assert "removed: 1 documents, 1 chunks" in out
    status = _status(capsys)
    assert status["warehouse"]["articles"] == 0
    assert status["vector_store"]["cleaned_articles"] == 0
    assert status["vector_store"]["embedded_articles"] == 0

    code, _, err = _main(["remove", "no-such-id"], capsys)
    assert code == 1
    assert "failed: no-such-id: no document with this id or link" in err

    code, _, err = _main(["remove", "--author", "Maya Lindqvist"], capsys)
    assert code == 0, err
    status = _status(capsys)
    assert all(v == 0 for part in status.values() for v in part.values())


def test_nothing_succeeded_exits_non_zero(data_dir: Path, tmp_path: Path, capsys) -> None:
    code, _, err = _main(["add", str(tmp_path / "nope"), "--author", "Maya Lindqvist"], capsys)
    assert code == 1
    assert "failed:" in err and "Traceback" not in err


def _assert_clean_exit(result: subprocess.CompletedProcess) -> None:
    """No shutdown noise: an unclosed local Qdrant client prints an "Exception ignored in
    QdrantClient.__del__ … sys.meta_path is None" traceback as the interpreter exits."""
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert "__del__" not in result.stderr, result.stderr


def test_exits_close_the_vector_store_without_a_traceback(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if k not in ("QDRANT_URL", "MONGODB_URI")}
    env.update(DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT))
    # A script that uses the cached client and never closes it: the factory closes it at exit.
    made = subprocess.run(
        [sys.executable, "-c",
         "from retrievers.store import ensure_collections, get_qdrant_client\n"
         "ensure_collections(get_qdrant_client(), 8)\nprint('made')"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    _assert_clean_exit(made)
    assert made.stdout.strip() == "made"

    result = _run(["status", "--json"], data_dir, timeout=120)
    _assert_clean_exit(result)
    status = json.loads(result.stdout)
    assert {k: list(v) for k, v in status.items()} == STATUS_KEYS
    assert all(v == 0 for v in status["vector_store"].values())
