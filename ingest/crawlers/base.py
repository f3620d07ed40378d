"""Crawler base class, the registry/dispatcher, and URL helpers shared by the crawlers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from bs4 import BeautifulSoup

from core.domain import Category, RawDocument, User
from core.safe_fetch import FetchError, FetchResult, fetch
from ingest.crawlers import extract
from ingest.errors import CollectFailure

# Query parameters that only track where a click came from.
_TRACKING_PARAMS = re.compile(
    r"^(utm_\w+|fbclid|gclid|dclid|msclkid|mc_cid|mc_eid|igshid|ref|ref_src|ref_url|source|"
    r"sk|trk|trkinfo|lipi|midtoken|midsig|rcm|s|r|triedredirect|publication_id|post_id|"
    r"isfreemail|token|_hsenc|_hsmi|hss_channel|spm|share|cmpid|campaign)$",
    re.I,
)


def strip_tracking(url: str, *, drop_query: bool = False) -> str:
    """Lower-case scheme/host, no default port, no fragment, no tracking (or any) query."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    netloc = host
    if parts.port and not (
        (scheme == "http" and parts.port == 80) or (scheme == "https" and parts.port == 443)
    ):
        netloc = f"{host}:{parts.port}"
    path = parts.path or "/"
    if len(path) > 1:
        path = path.rstrip("/")
    query = ""
    if not drop_query and parts.query:
        kept = [
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not _TRACKING_PARAMS.match(k)
        ]
        query = urlencode(kept)
    return urlunsplit((scheme, netloc, path, query, ""))


class BaseCrawler:
    """One kind of URL. Subclasses set `platform`, `category`, `patterns` and implement `crawl`."""

    platform: ClassVar[str] = "web"
    category: ClassVar[Category] = Category.ARTICLES
    # Regular expressions matched (re.search, case-insensitive) against the whole URL.
    patterns: ClassVar[tuple[str, ...]] = ()
    # Platform URLs carry no meaningful query string: canonical links drop it entirely.
    drop_query: ClassVar[bool] = False

    @classmethod
    def matches(cls, url: str) -> bool:
        return any(re.search(p, url, re.I) for p in cls.patterns)

    def crawl(self, url: str, author: User) -> Iterator[RawDocument | CollectFailure]:
        raise NotImplementedError

    # Helpers for page crawlers -----------------------------------------------------------

    def fetch_html(self, url: str) -> tuple[FetchResult, BeautifulSoup]:
        """Fetch and parse; raises FetchError (also for a non-HTML response)."""
        result = fetch(url)
        if not result.is_html and result.content_type not in ("text/plain", ""):
            raise FetchError(url, f"unsupported content type {result.content_type}")
        return result, extract.parse_html(result.text)

    def canonical_link(
        self, soup: BeautifulSoup, url: str, result: FetchResult | None = None
    ) -> str:
        """og:url / rel=canonical when it is on this crawler's platform, else the cleaned URL."""
        page_canonical = extract.canonical_url(soup, url)
        if page_canonical and self.accepts_canonical(page_canonical):
            return strip_tracking(page_canonical, drop_query=self.drop_query)
        final = result.final_url if result else url
        return strip_tracking(final or url, drop_query=self.drop_query)

    def accepts_canonical(self, canonical: str) -> bool:
        return True

    def make_document(
        self,
        author: User,
        link: str,
        *,
        title: str,
        content: str | dict,
        published_at=None,
    ) -> RawDocument:
        return RawDocument.for_link(
            author,
            platform=self.platform,
            category=self.category,
            link=link,
            title=title,
            content=content,
            published_at=published_at,
        )


class CrawlerDispatcher:
    """Picks the first registered crawler whose pattern matches; the fallback takes the rest."""

    def __init__(self) -> None:
        self._crawlers: list[type[BaseCrawler]] = []
        self._fallback: type[BaseCrawler] | None = None

    def register(self, crawler: type[BaseCrawler]) -> CrawlerDispatcher:
        self._crawlers.append(crawler)
        return self

    def register_fallback(self, crawler: type[BaseCrawler]) -> CrawlerDispatcher:
        self._fallback = crawler
        return self

    def crawler_for(self, url: str) -> BaseCrawler:
        for crawler in self._crawlers:
            if crawler.matches(url):
                return crawler()
        if self._fallback is None:
            raise LookupError(f"no crawler for {url}")
        return self._fallback()
