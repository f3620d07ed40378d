"""URL crawlers against the fixture website: Medium, Substack, LinkedIn, a blog, GitHub.

Platform hosts are mapped onto the local fixture server with `CRAWL_HOST_MAP`, so
`https://medium.com/@…` is fetched over real HTTP (httpx, safe_fetch rules and all) from
127.0.0.1, which is the only allow-listed host.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core import safe_fetch
from core.domain import RawDocument, User, document_id_for_link
from core.safe_fetch import retry as fetch_retry
from ingest.crawlers import (
    GenericArticleCrawler,
    GitHubCrawler,
    LinkedInPostCrawler,
    MediumCrawler,
    SubstackCrawler,
    crawl_url,
    dispatcher,
    is_url,
    strip_tracking,
)
from ingest.crawlers import github as github_crawler
from ingest.errors import CollectFailure

_SPEC = importlib.util.spec_from_file_location(
    "fixture_site_server_crawlers", Path(__file__).parent / "fixtures" / "site" / "_server.py"
)
site_server = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(site_server)

AUTHOR = User.from_full_name("Maya Lindqvist")
MEDIUM_URL = "https://medium.com/@maya.lindqvist/small-models-big-wins-3f2a1b9c"
SUBSTACK_URL = "https://mayalindqvist.substack.com/p/the-art-of-small-prompts"
LINKEDIN_URL = (
    "https://www.linkedin.com/posts/maya-lindqvist_llm-finetuning-activity-7171234567890123456-AbCd"
)
BLOG_URL = "https://blog.mayalab.dev/2024/notes-on-rag/"


@pytest.fixture(scope="module")
def site():
    server = site_server.FixtureServer().start()
    yield server
    server.stop()


@pytest.fixture
def crawl_env(data_dir, site, monkeypatch):
    from core.settings import reset_settings

    base = site.base_url
    host_map = {
        "https://medium.com": f"{base}/medium.com",
        "https://mayalindqvist.substack.com": f"{base}/mayalindqvist.substack.com",
        "https://www.linkedin.com": f"{base}/www.linkedin.com",
        "https://blog.mayalab.dev": f"{base}/blog",
        "https://github.com": f"{base}/git",
        # Custom domains serving the same Medium / Substack pages.
        "https://tiny.mayalab.dev": f"{base}/medium.com",
        "https://notes.mayalab.dev": f"{base}/mayalindqvist.substack.com",
    }
    monkeypatch.setenv("CRAWL_ALLOW_HOSTS", '["127.0.0.1"]')
    monkeypatch.setenv("CRAWL_MIN_INTERVAL_S", "0")
    monkeypatch.setenv("CRAWL_TIMEOUT_S", "5")
    monkeypatch.setenv("CRAWL_HOST_MAP", json.dumps(host_map))
    monkeypatch.setattr(fetch_retry, "BACKOFF_BASE_S", 0.01)
    reset_settings()
    safe_fetch.clear_caches()
    site.reset()
    site.roots.clear()
    yield site
    site.roots.clear()
    safe_fetch.clear_caches()
    reset_settings()


def crawl_one(url: str) -> RawDocument:
    items = list(crawl_url(url, AUTHOR))
    assert len(items) == 1, items
    assert isinstance(items[0], RawDocument), items[0]
    return items[0]


def fail_one(url: str) -> CollectFailure:
    items = list(crawl_url(url, AUTHOR))
    assert len(items) == 1 and isinstance(items[0], CollectFailure), items
    return items[0]


def assert_absent(text: str, *phrases: str) -> None:
    for phrase in phrases:
        assert phrase not in text, f"chrome left in text: {phrase!r}"


# ------------------------------------------------------------------------------ dispatch


@pytest.mark.parametrize(
    ("url", "crawler"),
    [
        (MEDIUM_URL, MediumCrawler),
        ("https://medium.com/towards-tiny-ai/small-models-big-wins-3f2a1b9c", MediumCrawler),
        ("https://maya.medium.com/small-models-big-wins-3f2a1b9c", MediumCrawler),
        ("https://medium.com/@maya.lindqvist", GenericArticleCrawler),  # a profile, not a story
        (SUBSTACK_URL, SubstackCrawler),
        ("https://mayalindqvist.substack.com/archive", GenericArticleCrawler),
        (LINKEDIN_URL, LinkedInPostCrawler),
        (
            "https://www.linkedin.com/feed/update/urn:li:activity:7180000000000000000/",
            LinkedInPostCrawler,
        ),
        ("https://github.com/maya-lindqvist/tiny-twin", GitHubCrawler),
        ("https://github.com/maya-lindqvist/tiny-twin/tree/main/src", GitHubCrawler),
        ("https://github.com/maya-lindqvist/tiny-twin.git", GitHubCrawler),
        ("https://github.com/features/copilot", GenericArticleCrawler),
        ("https://github.com/maya-lindqvist", GenericArticleCrawler),
        (BLOG_URL, GenericArticleCrawler),
    ],
)
def test_dispatcher_picks_crawler_by_url_shape(url, crawler):
    assert type(dispatcher.crawler_for(url)) is crawler


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("https://example.com/a", True),
        ("HTTP://EXAMPLE.COM", True),
        ("ftp://example.com/file", True),
        ("mailto:maya@example.com", True),
        ("www.example.com/post", True),
        ("samples/articles", False),
        ("./notes.md", False),
        ("/home/maya/export.zip", False),
        ("C:\\Users\\maya\\notes.md", False),
        ("notes:draft.md", False),
    ],
)
def test_is_url(source, expected):
    assert is_url(source) is expected


def test_strip_tracking():
    assert (
        strip_tracking("HTTPS://Blog.Example.com:443/a/b/?utm_source=x&id=7&fbclid=1#top")
        == "https://blog.example.com/a/b?id=7"
    )
    assert (
        strip_tracking("https://medium.com/@a/b?source=rss", drop_query=True)
        == "https://medium.com/@a/b"
    )
    assert strip_tracking("http://example.com") == "http://example.com/"


# ------------------------------------------------------------------------------ Medium


def test_medium_article(crawl_env):
    doc = crawl_one(MEDIUM_URL + "?source=rss----5e5bef33608a---4#top")
    assert doc.platform == "medium" and doc.category == "articles"
    assert doc.link == MEDIUM_URL
    assert doc.id == document_id_for_link("medium", MEDIUM_URL)
    assert doc.author_id == AUTHOR.id and doc.author_full_name == "Maya Lindqvist"
    assert doc.title == "Small Models, Big Wins"
    assert doc.published_at == datetime(2024, 3, 5, 9, 12, 44, 123000, tzinfo=UTC)
    content = doc.content
    assert content["title"] == "Small Models, Big Wins"
    assert content["subtitle"].startswith("Why a 135M-parameter model fine-tuned")
    text = content["text"]
    assert text.startswith("Everyone told me I needed a 70B model")
    assert "## Setting up the adapter" in text
    assert "The [QLoRA paper](https://arxiv.org/abs/2305.14314) made me believe" in text
    assert "note the `lora_alpha` value:" in text
    assert (
        "```python\nfrom peft import LoraConfig\n\n"
        'config = LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "v_proj"])\n'
        "print(config)  # 4 < 5 && r > 8?\n```"
    ) in text
    # trafilatura keeps the page's <em>: Markdown emphasis, where the old extractor dropped it.
    assert "- Clean data, deduplicated by hash.\n- A held-out set written *after*" in text
    assert "> Your voice lives in the long tail of your own sentences." in text
    assert "Validation loss flattens after epoch 3." in text
    assert "https://github.com/maya-lindqvist/tiny-twin. Questions? Ask away!" in text
    assert_absent(
        text, "Member-only story", "Follow", "Listen", "Share", "1.2K", "6 min read", "Sign up",
        "Sign in", "Open in app", "Write", "Written by", "More from", "Machine Learning",
        "Help", "Text to speech", "Small Models, Big Wins", "APOLLO",
    )  # fmt: skip


def test_same_story_from_two_url_variants_has_one_id(crawl_env):
    a = crawl_one(MEDIUM_URL)
    b = crawl_one(MEDIUM_URL + "/?utm_source=newsletter")
    assert a.id == b.id and a.content_hash == b.content_hash


def test_custom_domain_pages_keep_their_platform_and_id(crawl_env):
    """The generic crawler hands Medium/Substack pages on other domains to their extractor."""
    assert type(dispatcher.crawler_for("https://tiny.mayalab.dev/@maya.lindqvist/x")) is (
        GenericArticleCrawler
    )
    medium = crawl_one("https://tiny.mayalab.dev/@maya.lindqvist/small-models-big-wins-3f2a1b9c")
    assert medium.platform == "medium" and medium.link == MEDIUM_URL
    assert medium.id == crawl_one(MEDIUM_URL).id
    assert "Member-only story" not in medium.content["text"]
    substack = crawl_one("https://notes.mayalab.dev/p/the-art-of-small-prompts")
    assert substack.platform == "substack" and substack.link == SUBSTACK_URL
    assert substack.content["subtitle"].startswith("What two years of prompting")


# ------------------------------------------------------------------------------ Substack


def test_substack_post(crawl_env):
    doc = crawl_one(SUBSTACK_URL + "?utm_source=substack&utm_medium=email&r=2abc")
    assert doc.platform == "substack" and doc.category == "articles"
    assert doc.link == SUBSTACK_URL
    assert doc.id == document_id_for_link("substack", SUBSTACK_URL)
    assert doc.title == "The Art of Small Prompts"
    assert (
        doc.content["subtitle"] == "What two years of prompting tiny models taught me about clarity"
    )
    assert doc.published_at == datetime(2024, 6, 18, 14, 30, tzinfo=UTC)
    text = doc.content["text"]
    assert text.startswith("I spent two years prompting models smaller than a JPEG of my cat.")
    assert "## Why small?\n\n" in text
    assert "### A template that works" in text
    assert '```\nprompt = f"""Summarise in one sentence:\n{text}\nSentence:"""\n' in text
    assert "1. Say the task first.\n2. Give the input second, clearly fenced.\n3. End where" in text
    assert "every word costs 2.5% of the answer." in text
    assert "[SmolLM2](https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct)" in text
    assert (
        "[github.com/maya-lindqvist/tiny-twin](https://github.com/maya-lindqvist/tiny-twin)" in text
    )
    assert_absent(
        text, "Subscribe", "Thanks for reading", "Type your email", "Share", "pass it on",
        "Discussion about this post", "Great read", "Sign in", "Link", "42", "© 2024",
        "Start Writing", "Maya's Notes", "The Art of Small Prompts",
    )  # fmt: skip


# ------------------------------------------------------------------------------ LinkedIn


def test_linkedin_post_from_json_ld(crawl_env):
    doc = crawl_one(LINKEDIN_URL + "?utm_source=share&utm_medium=member_desktop")
    assert doc.platform == "linkedin" and doc.category == "posts"
    assert doc.link == LINKEDIN_URL
    assert doc.id == document_id_for_link("linkedin", LINKEDIN_URL)
    assert doc.published_at == datetime(2024, 2, 20, 8, 15, tzinfo=UTC)
    assert doc.content["text"] == (
        "Fine-tuning a 135M model on my own writing taught me three things:\n\n"
        "1. Data beats size: 400 clean posts > 40,000 scraped ones.\n"
        "2. Evaluate on text written AFTER the training cut-off.\n"
        "3. Small models need small prompts.\n\n"
        "Code & notes: https://lnkd.in/dXyZ123\n\n#llm #finetuning"
    )
    assert doc.content["image_urls"] == [
        "https://media.licdn.com/dms/image/v2/D4E22AQ/feedshare-shrink_800/0/1708416900000?e=2147483647&v=beta&t=abc"
    ]
    assert set(doc.content) == {"text", "image_urls"}
    assert doc.title == "Fine-tuning a 135M model on my own writing taught me three things:"


def test_linkedin_post_from_commentary_element(crawl_env):
    doc = crawl_one("https://www.linkedin.com/feed/update/urn:li:activity:7180000000000000000/")
    canonical = "https://www.linkedin.com/posts/maya-lindqvist_shipping-day-activity-7180000000000000000-XyZw"
    assert doc.link == canonical and doc.id == document_id_for_link("linkedin", canonical)
    assert doc.published_at == datetime(2024, 4, 2, 16, 45, tzinfo=UTC)
    assert doc.content == {
        "text": "Shipping day! Our tiny twin now answers in my voice.\n\n"
        "Thanks Erik Sand for the reviews. Demo: https://lnkd.in/eDemo42\n#shipit"
    }


# ------------------------------------------------------------------------------ generic blog


def test_generic_blog_article(crawl_env):
    doc = crawl_one(BLOG_URL + "?utm_source=twitter#comments")
    canonical = "https://blog.mayalab.dev/2024/notes-on-rag"
    assert doc.platform == "web" and doc.category == "articles"
    assert doc.link == canonical and doc.id == document_id_for_link("web", canonical)
    assert doc.title == "Notes on RAG evaluation"
    assert doc.published_at == datetime(2023, 11, 2, 9, 0, tzinfo=UTC)  # from <time>, +01:00
    text = doc.content["text"]
    assert text.startswith("Retrieval-augmented generation fails quietly.")
    assert "[my earlier post on tiny evals](https://blog.mayalab.dev/2023/tiny-evals/)" in text
    assert "## Measure retrieval first" in text
    assert (
        "```python\ndef recall_at_k(hits, relevant, k=5):\n"
        "    found = {h.id for h in hits[:k]}\n"
        "    return len(found & relevant) / max(1, len(relevant))\n```"
    ) in text
    assert (
        "- Label 50 questions by hand.\n  - Half easy, half adversarial.\n- Track the numbers"
        in text
    )
    assert "| k | recall |\n|---|---|\n| 5 | 0.82 |" in text
    assert "> If you cannot measure it, you cannot improve it." in text
    assert "https://example.org/rag-eval.py — copy it, break it" in text
    assert_absent(
        text, "cookies", "Accept", "Skip to content", "Home", "Archive", "Small models, honest",
        "Share this", "Twitter", "Related", "Posted in", "Posted on", "Leave a Reply",
        "Very useful", "Recent Posts", "Newsletter", "Proudly powered", "Previous:",
        "trackPageView", "Notes on RAG evaluation",
    )  # fmt: skip


def test_generic_page_without_landmarks_uses_densest_block(crawl_env):
    doc = crawl_one("https://blog.mayalab.dev/plain.html?utm_campaign=x&page=2")
    assert doc.link == "https://blog.mayalab.dev/plain.html?page=2"  # no canonical: cleaned URL
    assert doc.title == "Plain page without landmarks"
    assert doc.published_at == datetime(2022, 8, 15, tzinfo=UTC)
    text = doc.content["text"]
    assert text.startswith("## Why I keep a plain-text journal")
    assert 'grep -i "idea" journal.txt' in text
    assert_absent(text, "Visitors", "Archive 2021", "Contact", "Made by hand")


# ------------------------------------------------------------------------------ failures


def test_empty_page_is_a_failure(crawl_env):
    failure = fail_one("https://blog.mayalab.dev/empty")
    assert failure.item == "https://blog.mayalab.dev/empty" and failure.reason == "empty page"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://blog.mayalab.dev/private/diary", "robots.txt disallows /private/diary"),
        ("https://blog.mayalab.dev/no-such-post/", "HTTP 404"),
        ("https://blog.mayalab.dev/files/paper.pdf", "unsupported content type application/pdf"),
        ("ftp://files.example.com/notes.txt", "unsupported URL: 'ftp:' URLs cannot be crawled"),
        ("mailto:maya@example.com", "unsupported URL: 'mailto:' URLs cannot be crawled"),
        (
            "file:///home/maya/notes.md",
            "unsupported URL: 'file:' URLs cannot be crawled (pass the local path instead)",
        ),
        ("http://10.0.0.7/admin", "refused: resolves to private address 10.0.0.7"),
    ],
)
def test_failures_name_url_and_reason(crawl_env, url, reason):
    failure = fail_one(url)
    assert failure.item == url and failure.reason == reason


def test_redirect_to_unlisted_loopback_host_is_a_failure(crawl_env):
    port = crawl_env.server_address[1]
    failure = fail_one(f"{crawl_env.base_url}/redirect?to=http://localhost:{port}/medium.com/x")
    assert failure.reason.startswith("refused: resolves to loopback address")


def test_retry_and_timeouts_surface_as_failures(crawl_env, monkeypatch):
    from core.settings import reset_settings

    monkeypatch.setenv("CRAWL_TIMEOUT_S", "0.3")
    monkeypatch.setenv("CRAWL_RETRIES", "2")
    reset_settings()
    crawl_env.slow_s = 1.0
    assert fail_one(f"{crawl_env.base_url}/slow").reason == "timed out after 2 tries"
    doc = crawl_one(f"{crawl_env.base_url}/flaky")  # 500, then 200
    assert doc.content["text"] == "Flaky but fine now."


def test_crawler_bug_never_escapes(crawl_env, monkeypatch):
    def boom(self, url, author):
        raise RuntimeError("selector exploded")
        yield  # pragma: no cover

    monkeypatch.setattr(MediumCrawler, "crawl", boom)
    failure = fail_one(MEDIUM_URL)
    assert failure.reason == "crawler error: RuntimeError: selector exploded"


# ------------------------------------------------------------------------------ GitHub


def _git(*args: str, cwd: Path) -> None:
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
           "GIT_AUTHOR_NAME": "Maya", "GIT_AUTHOR_EMAIL": "maya@example.com",
           "GIT_COMMITTER_NAME": "Maya", "GIT_COMMITTER_EMAIL": "maya@example.com"}  # fmt: skip
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


@pytest.fixture
def served_repo(crawl_env, tmp_path):
    """maya-lindqvist/tiny-twin as a bare repo over dumb HTTP at <fixture>/git/…"""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    work = tmp_path / "work"
    (work / "src").mkdir(parents=True)
    (work / "node_modules" / "left-pad").mkdir(parents=True)
    (work / "README.md").write_text("# tiny-twin\n\nA 135M model that writes like me.\n")
    (work / "src" / "app.py").write_text('def main():\n    print("hello from the twin")\n')
    (work / "node_modules" / "left-pad" / "index.js").write_text("module.exports = 1;\n")
    (work / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    (work / "secret-link").symlink_to("/etc/hostname")
    _git("init", "-q", "-b", "main", cwd=work)
    _git("add", "-A", cwd=work)
    _git("commit", "-q", "-m", "initial", cwd=work)
    root = tmp_path / "git"
    bare = root / "maya-lindqvist" / "tiny-twin.git"
    bare.parent.mkdir(parents=True)
    _git("clone", "-q", "--bare", str(work), str(bare), cwd=tmp_path)
    _git("update-server-info", cwd=bare)
    crawl_env.roots["/git/"] = root
    return bare


def test_github_repository_is_cloned_and_handed_to_the_walker(served_repo, crawl_env, monkeypatch):
    seen = {}

    def fake_walker(path: Path, link: str, author: User, platform: str) -> RawDocument:
        seen["files"] = sorted(
            str(p.relative_to(path)) for p in path.rglob("*") if ".git" not in p.parts
        )
        seen["symlink_is_plain_file"] = not (path / "secret-link").is_symlink()
        seen["symlink_text"] = (path / "secret-link").read_text()
        seen["args"] = (link, author.id, platform)
        return RawDocument(
            _id=document_id_for_link(platform, link), author_id=author.id,
            author_full_name=author.full_name, platform=platform, category="repositories",
            link=link, title="tiny-twin", content={"README.md": (path / "README.md").read_text()},
        )  # fmt: skip

    monkeypatch.setattr(github_crawler, "_repository_walker", lambda: fake_walker)
    doc = crawl_one("https://github.com/Maya-Lindqvist/Tiny-Twin/tree/main/src")
    link = "https://github.com/maya-lindqvist/tiny-twin"
    assert seen["args"] == (link, AUTHOR.id, "github")
    assert {"README.md", "src/app.py", "node_modules/left-pad/index.js", "logo.png"} <= set(
        seen["files"]
    )
    assert seen["symlink_is_plain_file"] and seen["symlink_text"] == "/etc/hostname"
    assert doc.id == document_id_for_link("github", link) and doc.link == link
    assert crawl_env.hits("/git/maya-lindqvist/tiny-twin.git/info/refs") >= 1


def test_github_repository_with_the_real_walker(served_repo, crawl_env):
    pytest.importorskip("ingest.importers.git_repo")
    doc = crawl_one("https://github.com/maya-lindqvist/tiny-twin")
    link = "https://github.com/maya-lindqvist/tiny-twin"
    assert doc.platform == "github" and doc.category == "repositories"
    assert doc.link == link and doc.id == document_id_for_link("github", link)
    assert doc.author_id == AUTHOR.id
    assert isinstance(doc.content, dict)
    assert "README.md" in doc.content and "src/app.py" in doc.content
    assert 'print("hello from the twin")' in doc.content["src/app.py"]
    assert not any(key.startswith("node_modules/") for key in doc.content)
    assert "logo.png" not in doc.content


def test_github_missing_repository_is_a_failure(served_repo, crawl_env, monkeypatch):
    monkeypatch.setattr(github_crawler, "_repository_walker", lambda: pytest.fail)
    failure = fail_one("https://github.com/maya-lindqvist/does-not-exist")
    assert failure.reason == "repository not found (or private)"


def test_github_clone_host_must_pass_the_address_check(served_repo, crawl_env, monkeypatch):
    from core.settings import reset_settings

    port = crawl_env.server_address[1]
    monkeypatch.setenv(
        "CRAWL_HOST_MAP", json.dumps({"https://github.com": f"http://localhost:{port}/git"})
    )
    reset_settings()
    monkeypatch.setattr(github_crawler, "_repository_walker", lambda: pytest.fail)
    failure = fail_one("https://github.com/maya-lindqvist/tiny-twin")
    assert failure.reason.startswith("refused: resolves to loopback address")
    assert crawl_env.hits("/git/maya-lindqvist/tiny-twin.git/info/refs") == 0


def test_github_clone_size_cap(served_repo, crawl_env, monkeypatch):
    monkeypatch.setattr(github_crawler, "CLONE_MAX_BYTES", 1)
    monkeypatch.setattr(github_crawler, "_repository_walker", lambda: pytest.fail)
    failure = fail_one("https://github.com/maya-lindqvist/tiny-twin")
    assert failure.reason == "repository larger than 0 MB"


def test_git_clone_is_pinned_to_the_checked_address(served_repo, crawl_env, tmp_path):
    """git never resolves the name itself: `http.curloptResolve` points it at the checked IP."""
    port = crawl_env.server_address[1]
    dest = tmp_path / "clone" / "tiny-twin"
    dest.parent.mkdir()
    url = f"http://twin-fixture.invalid:{port}/git/maya-lindqvist/tiny-twin.git"
    github_crawler.clone_repository(url, dest, addresses=["127.0.0.1"])
    assert (dest / "src" / "app.py").read_text().startswith("def main():")
    assert crawl_env.log and all(
        h.get("host") == f"twin-fixture.invalid:{port}"
        for p, h in crawl_env.log
        if p.startswith("/git/")
    )
