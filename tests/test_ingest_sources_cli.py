"""`python -m ingest add` end to end on every kind of source at once: URLs crawled from the
local fixture website (Medium, LinkedIn, GitHub over dumb HTTP, a robots-disallowed page),
an official export archive and a local git repository — then the warehouse and Qdrant."""

from __future__ import annotations

import json
from pathlib import Path

from test_crawlers import (  # noqa: F401 - fixtures used by name
    LINKEDIN_URL,
    MEDIUM_URL,
    _git,
    crawl_env,
    served_repo,
    site,
)
from test_importers import FIXTURES, zip_folder

GITHUB_URL = "https://github.com/maya-lindqvist/tiny-twin"
DISALLOWED_URL = "https://blog.mayalab.dev/private/draft/"


def _local_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "twin-tools"
    (repo / "twin_tools").mkdir(parents=True)
    (repo / "twin_tools" / "fusion.py").write_text(
        "def fuse(rankings, k=60):\n    return sorted({d for r in rankings for d in r})\n"
    )
    (repo / "README.md").write_text("# twin-tools\n\nHelpers for the writing twin.\n")
    _git("init", "-q", "-b", "main", cwd=repo)
    _git("add", "-A", cwd=repo)
    _git("commit", "-q", "-m", "tools", cwd=repo)
    return repo


def _status(capsys) -> dict:
    from ingest.cli import main

    capsys.readouterr()
    assert main(["status", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_add_urls_export_and_repositories_end_to_end(
    crawl_env, served_repo, data_dir: Path, tmp_path: Path, capsys  # noqa: F811
) -> None:
    from qdrant_client import models

    from ingest.cli import main
    from retrievers.store import close_qdrant_client, get_qdrant_client

    export = zip_folder(FIXTURES / "medium", tmp_path / "medium-export.zip")
    repo = _local_repo(tmp_path)
    sources = [MEDIUM_URL, LINKEDIN_URL, GITHUB_URL, DISALLOWED_URL, str(export), str(repo)]

    capsys.readouterr()
    assert main(["add", *sources, "--author", "Maya Lindqvist"]) == 0
    out, err = capsys.readouterr()
    assert "collected: 5 added, 0 updated, 0 unchanged, 1 failed" in out
    failures = [line for line in err.splitlines() if line.startswith("failed:")]
    assert len(failures) == 1 and DISALLOWED_URL in failures[0]
    assert "robots.txt" in failures[0]
    assert "Traceback" not in err

    status = _status(capsys)
    # Medium URL + Medium export article; LinkedIn post; GitHub clone + local git repo.
    assert status["warehouse"] == {"users": 1, "articles": 2, "posts": 1, "repositories": 2}
    vectors = status["vector_store"]
    for category, count in (("articles", 2), ("posts", 1), ("repositories", 2)):
        assert vectors[f"cleaned_{category}"] == count
        assert vectors[f"embedded_{category}"] >= count

    client = get_qdrant_client()
    by_platform = {
        platform: client.count(
            "embedded_repositories",
            count_filter=models.Filter(
                must=[models.FieldCondition(key="platform", match=models.MatchValue(value=platform))]
            ),
        ).count
        for platform in ("github", "git")
    }
    assert by_platform["github"] >= 1 and by_platform["git"] >= 1
    points, _ = client.scroll("embedded_articles", limit=100, with_payload=True)
    assert {p.payload["platform"] for p in points} == {"medium"}
    assert all(p.payload["author_full_name"] == "Maya Lindqvist" for p in points)
    posts, _ = client.scroll("embedded_posts", limit=10, with_payload=True)
    assert {p.payload["platform"] for p in posts} == {"linkedin"}
    close_qdrant_client()

    # The same sources again: nothing added, nothing re-embedded, the bad URL reported again.
    assert main(["add", *sources, "--author", "Maya Lindqvist"]) == 0
    out, err = capsys.readouterr()
    assert "collected: 0 added, 0 updated, 5 unchanged, 1 failed" in out
    assert "chunks: 0 embedded, 0 deleted" in out
    assert _status(capsys) == status
