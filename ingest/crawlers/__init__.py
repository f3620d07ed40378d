"""URL crawlers: `crawl_url(url, author)` yields warehouse documents or `CollectFailure`s.

A dispatcher picks the crawler by URL shape (first match wins, the generic article crawler
takes everything else):

| crawler | URLs | category / platform |
|---|---|---|
| `MediumCrawler` | medium.com/@user/slug, medium.com/publication/slug, user.medium.com/slug | articles / medium |
| `SubstackCrawler` | name.substack.com/p/slug | articles / substack |
| `LinkedInPostCrawler` | linkedin.com/posts/…, linkedin.com/feed/update/urn:li:activity:… | posts / linkedin |
| `LinkedInArticleCrawler` | linkedin.com/pulse/… | articles / linkedin |
| `GitHubCrawler` | github.com/owner/repo[/…] (cloned, then the repository walker) | repositories / github |
| `GenericArticleCrawler` | any other http(s) page | articles / web |

Articles' content is `{"title", "subtitle", "text"}` with Markdown-ish text (headings,
paragraphs, lists, fenced code blocks, links as `[text](url)`); posts' content is
`{"text"}` plus `"image_urls"` when the post has images. `_id` is
`document_id_for_link(platform, canonical link)`: the page's `og:url`/`rel=canonical`, else
the URL without fragment and tracking parameters (and without any query on platform sites).
Every network access goes through `core.safe_fetch` (SSRF checks, robots.txt, rate limit,
retries, size and time caps). Nothing escapes `crawl_url`: every problem is a
`CollectFailure(url, reason)`.

An address that names a collection rather than one article (a site root, a Medium profile, a
Substack publication, a feed, a sitemap, a GitHub user or organisation) yields every post on
it: `ingest.crawlers.discovery`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from core.domain import RawDocument, User
from ingest.crawlers.article import ArticleCrawler
from ingest.crawlers.base import BaseCrawler, CrawlerDispatcher, strip_tracking
from ingest.crawlers.generic import GenericArticleCrawler
from ingest.crawlers.github import GitHubCrawler
from ingest.crawlers.linkedin import LinkedInArticleCrawler, LinkedInPostCrawler
from ingest.crawlers.medium import MediumCrawler
from ingest.crawlers.substack import SubstackCrawler
from ingest.errors import CollectFailure

__all__ = [
    "ArticleCrawler",
    "BaseCrawler",
    "CrawlerDispatcher",
    "GenericArticleCrawler",
    "GitHubCrawler",
    "LinkedInArticleCrawler",
    "LinkedInPostCrawler",
    "MediumCrawler",
    "SubstackCrawler",
    "crawl_url",
    "dispatcher",
    "is_url",
    "strip_tracking",
]

dispatcher = (
    CrawlerDispatcher()
    .register(MediumCrawler)
    .register(SubstackCrawler)
    .register(LinkedInPostCrawler)
    .register(LinkedInArticleCrawler)
    .register(GitHubCrawler)
    .register_fallback(GenericArticleCrawler)
)

_SCHEME_RE = re.compile(r"^([a-z][a-z0-9+.-]*):", re.I)


def is_url(source: str) -> bool:
    """True for anything that is meant as a URL rather than a local path.

    `scheme://…` (any scheme, so `ftp://` gets a clear "unsupported" failure from
    `crawl_url` instead of "no such file"), `mailto:`, and bare `www.host/…` names.
    A Windows drive path (`C:\\…`) is not a URL.
    """
    source = source.strip()
    if re.match(r"^[a-z][a-z0-9+.-]*://", source, re.I):
        return True
    if source.lower().startswith(("mailto:", "www.")):
        return True
    return False


def _normalise(url: str) -> str:
    url = url.strip()
    if url.lower().startswith("www."):
        return "https://" + url
    return url


def crawl_url(url: str, author: User) -> Iterator[RawDocument | CollectFailure]:
    """Crawl one URL. Yields documents (usually one) and/or failures; never raises."""
    original = url
    try:
        url = _normalise(url)
        match = _SCHEME_RE.match(url)
        scheme = match.group(1).lower() if match else ""
        if scheme not in ("http", "https"):
            what = f"'{scheme}:' URLs" if scheme else "URLs without http:// or https://"
            hint = " (pass the local path instead)" if scheme == "file" else ""
            yield CollectFailure(original, f"unsupported URL: {what} cannot be crawled{hint}")
            return
        from ingest.crawlers import discovery

        crawler = dispatcher.crawler_for(url)
        if discovery.is_collection_address(url):
            items = discovery.crawl_collection(url, author)
        elif isinstance(crawler, GenericArticleCrawler):
            items = discovery.crawl_page_or_collection(url, author)
        else:
            items = crawler.crawl(url, author)
        yielded = False
        for item in items:
            yielded = True
            yield item
        if not yielded:
            yield CollectFailure(original, "nothing found at this URL")
    except GeneratorExit:
        raise
    except Exception as exc:  # noqa: BLE001 - a crawler bug must not stop the whole run
        yield CollectFailure(original, f"crawler error: {exc.__class__.__name__}: {exc}")
