"""Article pages: the shared pipeline every article crawler (generic and per platform) runs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from bs4 import BeautifulSoup, Tag

from core.domain import Category, RawDocument, User
from core.safe_fetch import FetchError, FetchResult
from ingest.crawlers import extract
from ingest.crawlers.base import BaseCrawler
from ingest.errors import CollectFailure

# Whole-element texts that are chrome on any site.
COMMON_CHROME_PHRASES = (
    "Share", "Share this post", "Subscribe", "Sign up", "Sign in", "Log in", "Follow",
    "Accept", "Accept all cookies", "Reject all", "Read more", "Continue reading",
    "Skip to content", "Skip to main content", "Back to top", "Copy link", "Tweet",
    "Leave a comment", "Advertisement",
)  # fmt: skip


class ArticleCrawler(BaseCrawler):
    """Fetch a page → title/subtitle/date/canonical link → main content as Markdown."""

    category = Category.ARTICLES
    chrome_phrases: ClassVar[tuple[str, ...]] = COMMON_CHROME_PHRASES

    # Hooks for site crawlers ---------------------------------------------------------------
    def content_root(self, soup: BeautifulSoup) -> Tag | None:
        return None

    def find_title(self, soup: BeautifulSoup) -> str:
        return extract.page_title(soup, self.content_root(soup))

    def find_subtitle(self, soup: BeautifulSoup) -> str:
        return ""

    def clean_root(self, root: Tag) -> None:
        """Site-specific removals, before the common chrome stripping."""

    # The pipeline ---------------------------------------------------------------------------
    def crawl(self, url: str, author: User) -> Iterator[RawDocument | CollectFailure]:
        try:
            result, soup = self.fetch_html(url)
        except FetchError as exc:
            yield CollectFailure(url, exc.reason)
            return
        yield from self.from_page(url, result, soup, author)

    def from_page(
        self, url: str, result: FetchResult, soup: BeautifulSoup, author: User
    ) -> Iterator[RawDocument | CollectFailure]:
        link = self.canonical_link(soup, url, result)
        base_url = result.final_url or url
        if result.content_type == "text/plain":
            text = result.text.strip()
            title = text.splitlines()[0].strip()[:120] if text else ""
            if not text:
                yield CollectFailure(url, "empty page")
                return
            yield self.make_document(
                author, link, title=title, content={"title": title, "subtitle": "", "text": text}
            )
            return
        # Metadata first: the chrome stripping below removes <header>, <time> in bylines, JSON-LD.
        title = self.find_title(soup)
        subtitle = self.find_subtitle(soup)
        published = extract.published_date(soup, self.content_root(soup))
        # A platform's own content element when it has one (trafilatura then keeps all of it),
        # else the whole page (trafilatura finds the article).
        root = self.content_root(soup)
        if root is not None:
            self.clean_root(root)
            extract.remove_short_texts(root, self.chrome_phrases)
        text = extract.to_markdown(root or soup, base_url, whole_page=root is None)
        text = extract.drop_leading_heading(text, title, subtitle)
        if not text.strip():
            yield CollectFailure(url, "empty page")
            return
        if not title:
            title = extract.clean_inline(text.split("\n", 1)[0].lstrip("#"))[:120]
        yield self.make_document(
            author,
            link,
            title=title,
            content={"title": title, "subtitle": subtitle, "text": text},
            published_at=published,
        )
