"""One address, every post: a site root, a profile, a feed or a sitemap → each post on it.

`crawl_url` hands an address here when it names a collection rather than one article:
path `/`, a Medium profile (`medium.com/@user`, `user.medium.com`), a Substack publication
root, a GitHub user or organisation, a feed or sitemap URL (by its response), or a page that
advertises a feed and is not itself an article. Posts are found, in order, from:

1. a feed: `<link rel=alternate>` autodiscovery, then `/feed`, `/rss`, `/atom.xml`,
   `/feed.xml`, `/index.xml`, `/rss.xml` (Medium: `medium.com/feed/@user`). An entry that
   carries the whole post (`content:encoded`, Atom `content`, JSON Feed `content_html`)
   becomes a document directly, through the same extraction as a crawled page, so a post
   behind a bot challenge still arrives whole; a summary-only entry sends the crawler to
   the page. The entry's link (tracking removed) is the document's link, so the feed and
   the page make ONE document. A malformed feed is one failure line; discovery goes on.
2. sitemaps: `Sitemap:` lines in robots.txt, `sitemap.xml` (indexes, gzip, bomb limits in
   `sitemaps`), for posts the feed did not list (feeds keep only the latest few).
3. Substack's public archive (`/api/v1/archive`), when the site is a Substack.

Every URL goes through `core.safe_fetch` (SSRF guard, robots.txt, rate limit) and must be on
the same site (host, and the path the address names) or a platform's own post hosts
(medium.com ↔ user.medium.com; a Substack's custom domain named by its feed). Options for
one run (`--max-documents`, `--since`, a notice hook) come from `discovery_options`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from urllib.parse import urljoin, urlsplit

from bs4 import BeautifulSoup

from core.domain import User
from core.safe_fetch import FetchError, FetchResult, fetch
from ingest.crawlers import extract, feeds, sitemaps
from ingest.crawlers.article import ArticleCrawler
from ingest.crawlers.base import BaseCrawler, strip_tracking
from ingest.crawlers.discovery_run import (
    DiscoveryOptions,
    Item,
    Run,
    Scope,
    current_options,
    discovery_options,
)
from ingest.crawlers.generic import GenericArticleCrawler
from ingest.crawlers.github import GitHubCrawler
from ingest.crawlers.github_user import account_of, public_repositories
from ingest.crawlers.linkedin import LinkedInArticleCrawler, LinkedInPostCrawler
from ingest.crawlers.medium import MediumCrawler
from ingest.crawlers.substack import SubstackCrawler
from ingest.errors import CollectFailure

__all__ = [
    "DiscoveryOptions",
    "crawl_collection",
    "crawl_page_or_collection",
    "current_options",
    "discovery_options",
    "is_article",
    "is_collection_address",
]
_MEDIUM_PROFILE = re.compile(r"^https?://(?:www\.)?medium\.com/(@[^/?#]+)/?(?:[?#].*)?$", re.I)
_MEDIUM_SUBDOMAIN = re.compile(
    r"^https?://(?!www\.|help\.|policy\.|blog\.)([a-z0-9-]+)\.medium\.com/?(?:[?#].*)?$", re.I
)
_SUBSTACK_ROOT = re.compile(
    r"^https?://([a-z0-9-]+)\.substack\.com(?:/|/archive/?)?(?:[?#].*)?$", re.I
)
_FEED_OR_SITEMAP_PATH = re.compile(
    r"/(feed|rss|atom)/?$|/(feed|rss|atom|index|sitemap[\w-]*)\.(xml|json)(\.gz)?$", re.I
)
_ARTICLE_TYPES = {"Article", "BlogPosting", "NewsArticle", "TechArticle", "SocialMediaPosting"}
_PLATFORM_CRAWLERS: tuple[type[BaseCrawler], ...] = (
    MediumCrawler, SubstackCrawler, LinkedInPostCrawler, LinkedInArticleCrawler, GitHubCrawler,
)  # fmt: skip
SUBSTACK_ARCHIVE_PAGE = 50
MAX_ARCHIVE_PAGES = 40


def is_collection_address(url: str) -> bool:
    """Known by its shape alone: `/`, a profile, a publication root, a feed or sitemap path."""
    path = urlsplit(url).path
    return bool(
        path in ("", "/")
        or _MEDIUM_PROFILE.match(url)
        or _MEDIUM_SUBDOMAIN.match(url)
        or _SUBSTACK_ROOT.match(url)
        or account_of(url)
        or _FEED_OR_SITEMAP_PATH.search(path)
    )


def _og_type(soup: BeautifulSoup) -> str:
    tag = soup.find("meta", attrs={"property": "og:type"})
    return tag.get("content", "").strip().lower() if tag else ""


def is_article(soup: BeautifulSoup) -> bool:
    """The page says it is one article (og:type, article:published_time, JSON-LD type)."""
    if _og_type(soup) == "article":
        return True
    if soup.find("meta", attrs={"property": "article:published_time"}):
        return True
    return any(extract.ld_types(o) & _ARTICLE_TYPES for o in extract.json_ld(soup))


def crawl_page_or_collection(url: str, author: User) -> Iterator[Item]:
    """An address with no known shape: one fetch decides article vs feed/sitemap/site."""
    try:
        result = fetch(url)
    except FetchError as exc:
        yield CollectFailure(url, exc.reason)
        return
    if _is_feed_or_sitemap(result):
        yield from crawl_collection(url, author, first=result)
        return
    if not result.is_html and result.content_type not in ("text/plain", ""):
        yield CollectFailure(url, f"unsupported content type {result.content_type}")
        return
    soup = extract.parse_html(result.text)
    if result.is_html and not is_article(soup) and (
        feeds.find_feed_links(soup, _base(result)) or _og_type(soup) == "website"
    ):
        yield from crawl_collection(url, author, first=result, soup=soup)
        return
    yield from GenericArticleCrawler().from_page(url, result, soup, author)


def _base(result: FetchResult) -> str:
    return result.final_url or result.url


def _is_feed_or_sitemap(result: FetchResult) -> bool:
    if result.is_html:
        return False
    body = result.content
    if body[:2] == b"\x1f\x8b":  # a gzip body where a page was expected: sitemap.xml.gz
        return True
    return feeds.looks_like_feed(result.content_type, body) or feeds.xml_root(body) in (
        "urlset", "sitemapindex"
    )


def _site_root(url: str) -> str:
    parts = urlsplit(url)
    path = _FEED_OR_SITEMAP_PATH.sub("/", parts.path)
    path = path if path.endswith("/") else path.rsplit("/", 1)[0] + "/"
    return f"{parts.scheme}://{parts.netloc}{path}"


def crawl_collection(
    url: str, author: User, *, first: FetchResult | None = None, soup: BeautifulSoup | None = None
) -> Iterator[Item]:
    """Every post at a collection address (module docstring); never raises."""
    owner = account_of(url)
    if owner:
        yield from _github_account(url, owner, author)
        return
    feed_urls: list[str] = []
    platform = ""
    medium = _MEDIUM_PROFILE.match(url) or _MEDIUM_SUBDOMAIN.match(url)
    if medium:
        user = medium.group(1).lstrip("@")
        feed_urls, platform, root = [f"https://medium.com/feed/@{user}"], "medium", url
    elif _SUBSTACK_ROOT.match(url):
        root = _site_root(url.split("/archive")[0] + "/")
        feed_urls, platform = [urljoin(root, "feed")], "substack"
    else:
        root = _site_root(_base(first) if first else url)
    run = Run(url, author, Scope(root if root.endswith("/") else root + "/", platform))
    feed = None
    if first is not None and feeds.looks_like_feed(first.content_type, first.content):
        feed = _read_feed(run, first)
    elif first is not None and _is_feed_or_sitemap(first):
        yield from _from_sitemaps(run, [first.url], first=first)
        return
    else:
        announced = set(feed_urls)
        if not feed_urls:
            first, soup = _home_page(url, first, soup)
            if first is not None and soup is not None:
                feed_urls = feeds.find_feed_links(soup, _base(first))
                announced = set(feed_urls)
            if not feed_urls:  # none announced: the usual places
                feed_urls = [urljoin(run.scope.root, p) for p in feeds.COMMON_FEED_PATHS]
        failed_feeds: list[CollectFailure] = []
        for feed_url in dict.fromkeys(feed_urls):
            feed, problem = _fetch_feed(run, feed_url, announced=feed_url in announced)
            if problem is not None:
                failed_feeds.append(problem)
            if feed is not None:
                break
        yield from failed_feeds
    if isinstance(feed, CollectFailure):
        yield feed
        feed = None
    if feed is not None:
        if "substack" in feed.generator.lower():
            run.scope.platform = run.scope.platform or "substack"
        site_host = (urlsplit(feed.site_link).hostname or "").lower().removeprefix("www.")
        if run.scope.platform == "substack" and site_host:
            run.scope.extra_hosts.add(site_host)
        run.options.note(f"feed: {feed.url} ({len(feed.entries)} entries)")
        yield from _from_feed(run, feed)
    if run.scope.platform != "medium" and not run.full:
        yield from _from_sitemaps(run, _sitemap_starts(run))
    if run.scope.platform == "substack" and not run.full:
        yield from _from_substack_archive(run)
    if not run.seen and not run.documents:
        run.options.note(f"no feed or sitemap found at {url}; collecting the page itself")
        yield from _crawl_page(url, author, first, soup)


def _home_page(
    url: str, first: FetchResult | None, soup: BeautifulSoup | None
) -> tuple[FetchResult | None, BeautifulSoup | None]:
    if first is not None:
        return first, soup if soup is not None else extract.parse_html(first.text)
    try:
        page = fetch(url)
    except FetchError:
        return None, None
    return page, (extract.parse_html(page.text) if page.is_html else None)


def _crawl_page(url: str, author: User, first: FetchResult | None, soup: BeautifulSoup | None):
    if first is not None and first.is_html:
        yield from GenericArticleCrawler().from_page(url, first, soup or extract.parse_html(first.text), author)
    else:
        yield from GenericArticleCrawler().crawl(url, author)


def _fetch_feed(
    run: Run, feed_url: str, *, announced: bool
) -> tuple[feeds.Feed | CollectFailure | None, CollectFailure | None]:
    """(feed, None) when read; (None, failure) when an announced feed failed; (None, None)
    when a guessed path simply is not a feed."""
    try:
        result = fetch(feed_url)
    except FetchError as exc:
        quiet = not announced and re.match(r"HTTP (404|410)|robots", exc.reason)
        return None, None if quiet else CollectFailure(feed_url, f"feed: {exc.reason}")
    if not feeds.looks_like_feed(result.content_type, result.content):
        return None, None
    feed = _read_feed(run, result)
    return (None, feed) if isinstance(feed, CollectFailure) else (feed, None)


def _read_feed(run: Run, result: FetchResult) -> feeds.Feed | CollectFailure:
    try:
        return feeds.parse_feed(result.content, _base(result))
    except feeds.FeedError as exc:
        return CollectFailure(exc.url, f"{exc.reason}; falling back to the sitemap")


def _from_feed(run: Run, feed: feeds.Feed) -> Iterator[Item]:
    for entry in feed.entries:
        if run.full:
            return
        if not run.claim(entry.link, entry.published):
            continue
        if entry.html:
            yield from run.emit(iter([_entry_document(entry, feed, run)]))
        else:
            yield from run.emit(_crawler_for(entry.link, feed).crawl(entry.link, run.author))


def _crawler_for(link: str, feed: feeds.Feed | None = None) -> BaseCrawler:
    crawler: BaseCrawler = GenericArticleCrawler()
    for kind in _PLATFORM_CRAWLERS:  # the order of `ingest.crawlers.dispatcher`
        if kind.matches(link):
            crawler = kind()
            break
    if isinstance(crawler, GenericArticleCrawler) and feed is not None:
        generator = feed.generator.lower()
        if "substack" in generator:
            return SubstackCrawler()
        if "medium" in generator:
            return MediumCrawler()
    return crawler


def _entry_document(entry: feeds.FeedEntry, feed: feeds.Feed, run: Run) -> Item:
    """A feed entry's full HTML through the page pipeline (platform cleaning, Markdown)."""
    crawler = _crawler_for(entry.link, feed)
    if not isinstance(crawler, ArticleCrawler):
        crawler = GenericArticleCrawler()
    link = strip_tracking(entry.link, drop_query=crawler.drop_query)
    soup = extract.parse_html(f"<html><body><article>{entry.html}</article></body></html>")
    root = soup.find("article")
    if root is None:
        return CollectFailure(entry.link, "feed entry has no readable content")
    crawler.clean_root(root)
    extract.remove_short_texts(root, crawler.chrome_phrases)
    text = extract.drop_leading_heading(extract.to_markdown(root, link, whole_page=False), entry.title)
    if not text.strip():
        return CollectFailure(entry.link, "feed entry has no text")
    title = entry.title or extract.clean_inline(text.split("\n", 1)[0].lstrip("#"))[:120]
    subtitle = ""
    if crawler.platform == "substack" and entry.summary and len(entry.summary) < 300:
        subtitle = extract.clean_inline(BeautifulSoup(entry.summary, "html.parser").get_text(" "))
    return crawler.make_document(
        run.author, link, title=title, published_at=entry.published,
        content={"title": title, "subtitle": subtitle, "text": text},
    )  # fmt: skip


def _sitemap_starts(run: Run) -> list[str]:
    root = urlsplit(run.scope.root)
    host_root = f"{root.scheme}://{root.netloc}/"
    named: list[str] = []
    try:
        robots = fetch(urljoin(host_root, "robots.txt"))
        if robots.status == 200 and "html" not in robots.content_type:
            named = sitemaps.robots_sitemaps(robots.text, urljoin(host_root, "robots.txt"))
    except FetchError:
        pass
    # Sitemaps on this host, under this site's path or at the host's root.
    named = [u for u in named if feeds.same_host(u, host_root) and (
        urlsplit(u).path.startswith(root.path) or urlsplit(u).path.count("/") == 1)]  # fmt: skip
    return named or list(dict.fromkeys([urljoin(run.scope.root, "sitemap.xml"),
                                        urljoin(host_root, "sitemap.xml")]))  # fmt: skip


def _fetch_bytes(url: str) -> bytes:
    return fetch(url).content


def _from_sitemaps(run: Run, starts: list[str], first: FetchResult | None = None) -> Iterator[Item]:
    problems: list[CollectFailure] = []

    def on_problem(url: str, reason: str) -> None:
        if re.match(r"HTTP (404|410)", reason) and url not in (run.address,):
            return  # a guessed sitemap.xml that is not there
        problems.append(CollectFailure(url, f"sitemap: {reason}"))

    def fetch_bytes(url: str) -> bytes:
        return first.content if first is not None and url == first.url else _fetch_bytes(url)

    urls = [u for u in sitemaps.walk_sitemaps(starts, fetch_bytes, on_problem=on_problem)
            if not (run.options.since and u.lastmod and u.lastmod < run.options.since)]  # fmt: skip
    yield from problems
    links = sitemaps.post_like([u.loc for u in urls], run.scope.root)
    if links:
        new = sum(1 for u in links if strip_tracking(u) not in run.seen)
        run.options.note(f"sitemap: {len(links)} post URLs, {new} not seen in a feed")
    for link in links:
        if run.full:
            return
        if run.claim(link, None):
            yield from run.emit(_crawler_for(link).crawl(link, run.author), need_date=True)


def _from_substack_archive(run: Run) -> Iterator[Item]:
    links: list[str] = []
    for page in range(MAX_ARCHIVE_PAGES):
        api = urljoin(run.scope.root, "api/v1/archive")
        api += f"?sort=new&offset={page * SUBSTACK_ARCHIVE_PAGE}&limit={SUBSTACK_ARCHIVE_PAGE}"
        try:
            posts = json.loads(fetch(api).text)
        except (FetchError, ValueError):
            break
        if not isinstance(posts, list):
            break
        new = [str(p["canonical_url"]) for p in posts
               if isinstance(p, dict) and p.get("canonical_url") and p["canonical_url"] not in links]  # fmt: skip
        links += new
        if len(posts) < SUBSTACK_ARCHIVE_PAGE or not new:
            break
    for link in links:
        if run.full:
            return
        if run.claim(link, None):
            yield from run.emit(_crawler_for(link, feeds.Feed("", "", generator="Substack")).crawl(link, run.author))


def _github_account(url: str, owner: str, author: User) -> Iterator[Item]:
    run = Run(url, author, Scope("https://github.com/"))
    try:
        for repo_url, reason in public_repositories(owner):
            if run.full:
                return
            if reason:
                run.skip(repo_url, reason)
                continue
            if run.claim(repo_url, None):
                yield from run.emit(GitHubCrawler().crawl(repo_url, author))
    except FetchError as exc:
        yield CollectFailure(url, f"GitHub repository list: {exc.reason}")
