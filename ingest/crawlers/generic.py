"""The generic crawler: any article page no platform crawler claims."""

from __future__ import annotations

import re
from collections.abc import Iterator

from bs4 import BeautifulSoup

from core.domain import Platform, RawDocument, User
from core.safe_fetch import FetchResult
from ingest.crawlers import extract
from ingest.crawlers.article import ArticleCrawler
from ingest.crawlers.medium import MediumCrawler
from ingest.crawlers.substack import SubstackCrawler
from ingest.errors import CollectFailure


class GenericArticleCrawler(ArticleCrawler):
    """Any page no other crawler claims.

    Pages that turn out to be Medium or Substack posts on a custom domain (or whose canonical
    URL is on medium.com / substack.com) are handed to that platform's extractor, so a story
    gets the same platform, id and cleaning whichever address it was crawled from.
    """

    platform = Platform.WEB.value
    patterns = (r"^https?://",)

    def from_page(
        self, url: str, result: FetchResult, soup: BeautifulSoup, author: User
    ) -> Iterator[RawDocument | CollectFailure]:
        platform_crawler = _platform_of_page(url, result, soup)
        if platform_crawler is not None:
            yield from platform_crawler.from_page(url, result, soup, author)
            return
        yield from super().from_page(url, result, soup, author)


def _platform_of_page(url: str, result: FetchResult, soup: BeautifulSoup) -> ArticleCrawler | None:
    if not result.is_html:
        return None
    canonical = extract.canonical_url(soup, url)
    for crawler in (MediumCrawler, SubstackCrawler):
        if canonical and crawler.matches(canonical):
            return crawler()
    app_name = soup.find("meta", attrs={"property": re.compile(r"^al:(ios|android):app_name$")})
    if (
        app_name
        and app_name.get("content", "").strip().lower() == "medium"
        and soup.find("article")
    ):
        return MediumCrawler()
    if soup.select_one(".available-content .body.markup") and "substackcdn.com" in result.text:
        return SubstackCrawler()
    return None
