"""One address, every post: site roots, profiles, feeds and sitemaps against a fixture site.

The fixture site (tests/fixtures/discovery, written by its `_make_fixtures.py`) is served over
real HTTP on 127.0.0.1, the only allow-listed host; `https://medium.com` and
`https://github.com` are mapped onto it with `CRAWL_HOST_MAP`, and `GITHUB_API_URL` points
the GitHub API there. Every fetch goes through core.safe_fetch (guard, robots.txt, limits).
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core import safe_fetch
from core.domain import RawDocument, User
from core.safe_fetch import retry as fetch_retry
from ingest.crawlers import crawl_url, discovery, sitemaps
from ingest.crawlers.discovery import DiscoveryOptions, discovery_options
from ingest.errors import CollectFailure

FIXTURES = Path(__file__).parent / "fixtures" / "discovery"
_SPEC = importlib.util.spec_from_file_location("discovery_fixture_server", FIXTURES / "_server.py")
server_module = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(server_module)
_MAKE = importlib.util.spec_from_file_location("discovery_fixture_posts", FIXTURES / "_make_fixtures.py")
posts_module = importlib.util.module_from_spec(_MAKE)
_MAKE.loader.exec_module(posts_module)
POSTS = posts_module.POSTS
AUTHOR = User.from_full_name("Maya Lindqvist")
MEDIUM_PROFILE = "https://medium.com/@maya.lindqvist"

# site → path of each post under it
SITES = {
    "substack": lambda p: f"p/{p['slug']}",
    "wordpress": lambda p: f"{p['date']:%Y/%m}/{p['slug']}",
    "ghost": lambda p: p["slug"],
    "hugo": lambda p: f"posts/{p['slug']}",
    "hugo-atom": lambda p: f"posts/{p['slug']}",
    "jsonfeed": lambda p: f"{p['date']:%Y/%m/%d}/{p['slug']}.html",
    "sitemap-only": lambda p: p["slug"],
}


@pytest.fixture(scope="module")
def site():
    server = server_module.DiscoveryServer().start()
    yield server
    server.stop()


@pytest.fixture
def env(data_dir, site, monkeypatch):
    from core.settings import reset_settings

    base = site.base_url
    monkeypatch.setenv("CRAWL_ALLOW_HOSTS", '["127.0.0.1"]')
    monkeypatch.setenv("CRAWL_MIN_INTERVAL_S", "0")
    monkeypatch.setenv("CRAWL_TIMEOUT_S", "10")
    monkeypatch.setenv("CRAWL_HOST_MAP", json.dumps(
        {"https://medium.com": f"{base}/medium.com", "https://github.com": f"{base}/git"}))  # fmt: skip
    monkeypatch.setenv("GITHUB_API_URL", f"{base}/api.github.com")
    monkeypatch.setattr(fetch_retry, "BACKOFF_BASE_S", 0.01)
    reset_settings()
    safe_fetch.clear_caches()
    site.roots.clear()
    yield site
    site.roots.clear()
    safe_fetch.clear_caches()
    reset_settings()


def run(url: str, **options) -> tuple[list[RawDocument], list[CollectFailure], list[str]]:
    notes: list[str] = []
    with discovery_options(DiscoveryOptions(on_note=notes.append, **options)):
        items = list(crawl_url(url, AUTHOR))
    docs = [i for i in items if isinstance(i, RawDocument)]
    return docs, [i for i in items if isinstance(i, CollectFailure)], notes


def expected_links(base: str, name: str) -> set[str]:
    return {f"{base}/{name}/{SITES[name](p)}".rstrip("/") for p in POSTS}


# ------------------------------------------------------------------------------ every post


@pytest.mark.parametrize("name", sorted(SITES))
def test_a_site_root_collects_every_post(env, name):
    docs, failures, notes = run(f"{env.base_url}/{name}/")
    assert failures == []
    assert {d.link for d in docs} == expected_links(env.base_url, name), notes
    assert len({d.id for d in docs}) == len(POSTS)
    by_title = {d.title: d for d in docs}
    for p in POSTS:
        doc = by_title[p["title"]]
        assert doc.published_at == p["date"]
        assert f"Marker {p['slug']}-{p['i'] + 1}" in doc.content["text"]
        if p["code"]:
            assert f"```{p['lang']}\n{p['code']}\n```" in doc.content["text"]


def test_substack_feed_content_is_cleaned_like_the_page(env):
    docs, _, _ = run(f"{env.base_url}/substack/")
    assert {d.platform for d in docs} == {"substack"}
    for doc in docs:
        assert "Subscribe for free" not in doc.content["text"]
        assert "Type your email" not in doc.content["text"]
        assert doc.content["subtitle"].startswith("A short note on")
    # The same post crawled from its page is the same document (same id, same link).
    page = f"{env.base_url}/substack/p/{POSTS[0]['slug']}"
    (from_page,) = [i for i in crawl_url(page, AUTHOR)]
    assert isinstance(from_page, RawDocument)
    assert from_page.id in {d.id for d in docs}


def test_medium_profile_collects_every_story_even_behind_a_challenge(env):
    docs, failures, notes = run(MEDIUM_PROFILE)
    assert failures == []
    assert len(docs) == 8 and {d.platform for d in docs} == {"medium"}
    assert all("?" not in d.link and d.link.startswith(f"{MEDIUM_PROFILE}/") for d in docs)
    challenged = next(d for d in docs if d.title == POSTS[3]["title"])
    assert f"Marker {POSTS[3]['slug']}-4" in challenged.content["text"]
    assert "Figure: " in challenged.content["text"]  # the caption survives, the pixel does not
    assert "stat?event" not in challenged.content["text"]
    # That story's page itself only answers with Cloudflare's challenge.
    failure = next(iter(crawl_url(challenged.link, AUTHOR)))
    assert isinstance(failure, CollectFailure) and failure.reason == "HTTP 403"


@pytest.mark.parametrize("address", ["substack/", MEDIUM_PROFILE, "wordpress/"])
def test_ingest_add_collects_all_then_a_rerun_changes_nothing(env, capsys, address):
    from ingest.cli import main

    url = address if address.startswith("https") else f"{env.base_url}/{address}"
    total = 8 if address == MEDIUM_PROFILE else 12
    assert main(["add", url, "--author", "Maya Lindqvist", "--no-sync"]) == 0
    out, err = capsys.readouterr()
    assert f"collected: {total} added, 0 updated, 0 unchanged, 0 failed" in out
    assert f"discovered: {total} posts found" in out
    assert err.count("added: ") == total
    assert main(["add", url, "--author", "Maya Lindqvist", "--no-sync"]) == 0
    out, err = capsys.readouterr()
    assert f"collected: 0 added, 0 updated, {total} unchanged, 0 failed" in out
    assert err.count("unchanged: ") == total


def test_max_documents_and_since_bound_a_run(env, capsys):
    from ingest.cli import main

    docs, _, _ = run(f"{env.base_url}/wordpress/", max_documents=3)
    assert len(docs) == 3
    since = POSTS[9]["date"]
    docs, _, _ = run(f"{env.base_url}/hugo/", since=since)
    assert {d.title for d in docs} == {p["title"] for p in POSTS[9:]}
    code = main(["add", f"{env.base_url}/ghost/", "--author", "Maya Lindqvist", "--no-sync",
                 "--max-documents", "2", "--since", "2024-01-01"])  # fmt: skip
    assert code == 0 and "collected: 2 added" in capsys.readouterr().out


def test_an_article_url_is_still_one_article(env):
    p = POSTS[0]
    docs, failures, notes = run(f"{env.base_url}/wordpress/{p['date']:%Y/%m}/{p['slug']}/")
    assert failures == [] and notes == [] and [d.title for d in docs] == [p["title"]]


@pytest.mark.parametrize(
    ("url", "collection"),
    [
        ("https://example.com/", True),
        ("https://medium.com/@maya", True),
        ("https://maya.medium.com/", True),
        ("https://maya.substack.com/", True),
        ("https://github.com/maya-lindqvist", True),
        ("https://example.com/blog/feed/", True),
        ("https://example.com/sitemap_index.xml", True),
        ("https://medium.com/@maya/a-story-123", False),
        ("https://github.com/maya-lindqvist/tiny-twin", False),
        ("https://example.com/2024/a-post/", False),
    ],
)
def test_collection_addresses_are_known_by_shape(url, collection):
    assert discovery.is_collection_address(url) is collection


# ------------------------------------------------------------------------------ bad inputs


def test_malformed_feed_is_one_line_then_the_sitemap(env):
    docs, failures, _ = run(f"{env.base_url}/malformed/")
    assert len(docs) == 3
    reasons = {f.item.rsplit("/", 2)[-2] if f.item.endswith("/") else f.item.rsplit("/", 1)[-1]: f.reason
               for f in failures}  # fmt: skip
    assert reasons["feed.rss"].startswith("malformed feed (") and "\n" not in reasons["feed.rss"]
    assert reasons["draft"] == "robots.txt disallows /malformed/private/draft/"
    assert len(failures) == 2


def test_feed_entry_pointing_off_site_is_skipped_with_a_reason(env):
    docs, failures, notes = run(f"{env.base_url}/offsite/")
    assert failures == [] and len(docs) == 2
    assert any(n.startswith("skipped: https://elsewhere.example/stolen-post: off-site link")
               for n in notes)  # fmt: skip
    assert all("elsewhere" not in d.link for d in docs)


def test_redirect_to_a_private_address_is_refused(env):
    _, failures, _ = run(f"{env.base_url}/redirect-private/")
    assert any("refused: resolves to private address 10.0.0.1" in f.reason for f in failures)


@pytest.mark.timeout(120)
def test_sitemap_bomb_is_bounded(env):
    base = env.base_url
    urls = "".join(f"<url><loc>{base}/bomb/p/{i}</loc></url>" for i in range(100_000))
    env.routes["/bomb/big.xml"] = (200, f'<urlset xmlns="x">{urls}</urlset>'.encode(), "application/xml")
    for depth in range(10):  # index → index → … ten levels down
        inner = f"{base}/bomb/nest-{depth + 1}.xml"
        env.routes[f"/bomb/nest-{depth}.xml"] = (
            200, f"<sitemapindex><sitemap><loc>{inner}</loc></sitemap></sitemapindex>".encode(),
            "application/xml")  # fmt: skip
    env.routes["/bomb/zip.xml.gz"] = (
        200, gzip.compress(b"<urlset>" + b" " * (200 * 1024 * 1024), 1), "application/gzip")
    children = [f"{base}/bomb/{n}" for n in ("zip.xml.gz", "nest-0.xml", "big.xml")]
    env.routes["/bomb/sitemap.xml"] = (200, ("<sitemapindex>" + "".join(
        f"<sitemap><loc>{c}</loc></sitemap>" for c in children) + "</sitemapindex>").encode(),
        "application/xml")  # fmt: skip
    problems: list[tuple[str, str]] = []
    found = list(sitemaps.walk_sitemaps(
        [f"{base}/bomb/sitemap.xml"], lambda u: safe_fetch.fetch(u).content,
        on_problem=lambda u, r: problems.append((u, r))))  # fmt: skip
    limits = sitemaps.SitemapLimits()
    assert len(found) == limits.max_urls
    reasons = " | ".join(r for _, r in problems)
    assert "inflates past 20 MB (refused as a bomb)" in reasons
    assert "stopped after 5000 URLs" in reasons or "nested deeper" in reasons
    assert env.hits("/bomb/nest-") <= limits.max_depth + 1


# ------------------------------------------------------------------------------ GitHub


def _git(*args: str, cwd: Path) -> None:
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
           "GIT_AUTHOR_NAME": "Maya", "GIT_AUTHOR_EMAIL": "maya@example.com",
           "GIT_COMMITTER_NAME": "Maya", "GIT_COMMITTER_EMAIL": "maya@example.com"}  # fmt: skip
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def test_github_account_collects_its_own_public_repositories(env, tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    root = tmp_path / "git"
    for name in ("tiny-twin", "notes"):
        work = tmp_path / "work" / name
        work.mkdir(parents=True)
        (work / "README.md").write_text(f"# {name}\n\nWritten by Maya, measured twice.\n")
        (work / "main.py").write_text(f'print("{name}")\n')
        _git("init", "-q", "-b", "main", cwd=work)
        _git("add", "-A", cwd=work)
        _git("commit", "-q", "-m", "initial", cwd=work)
        bare = root / "maya-lindqvist" / f"{name}.git"
        bare.parent.mkdir(parents=True, exist_ok=True)
        _git("clone", "-q", "--bare", str(work), str(bare), cwd=tmp_path)
        _git("update-server-info", cwd=bare)
    env.roots["/git/"] = root
    docs, failures, notes = run("https://github.com/maya-lindqvist")
    assert failures == []
    assert {d.link for d in docs} == {"https://github.com/maya-lindqvist/tiny-twin",
                                      "https://github.com/maya-lindqvist/notes"}  # fmt: skip
    assert {d.category for d in docs} == {"repositories"}
    assert any("maya-lindqvist/left-pad: a fork" in n for n in notes)
    assert env.hits("/git/maya-lindqvist/left-pad") == 0


def test_feed_dates_reach_the_documents(env):
    docs, _, _ = run(f"{env.base_url}/jsonfeed/")
    assert min(d.published_at for d in docs) == datetime(2024, 1, 8, 9, 30, tzinfo=UTC)
