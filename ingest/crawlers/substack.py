"""Substack posts: <publication>.substack.com/p/<slug>.

The post body is `div.available-content > div.body.markup` (paid posts show only the free part
followed by a paywall). Title `h1.post-title`, subtitle `h3.subtitle`, date in JSON-LD
`datePublished` (NewsArticle) or the byline `<time>`. Chrome inside the body: subscription
widgets (`.subscription-widget-wrap`, `.subscribe-widget`), "Share" / "Subscribe now" buttons
(`.button-wrapper`, `.captioned-button-wrap`), the like/comment/share bar (`.post-ufi`) and the
post footer.
"""

from __future__ import annotations

from bs4 import BeautifulSoup, Tag

from core.domain import Platform
from ingest.crawlers import extract
from ingest.crawlers.article import COMMON_CHROME_PHRASES, ArticleCrawler


class SubstackCrawler(ArticleCrawler):
    platform = Platform.SUBSTACK.value
    patterns = (r"^https?://[a-z0-9-]+\.substack\.com/p/[^/?#]+",)
    drop_query = True
    chrome_phrases = COMMON_CHROME_PHRASES + (
        "Subscribe now", "Share this post", "Give a gift subscription", "Upgrade to paid",
        "Leave a comment", "Discussion about this post", "Ready for more?",
        "Type your email…", "Keep reading with a 7-day free trial",
    )  # fmt: skip

    def content_root(self, soup: BeautifulSoup) -> Tag | None:
        available = soup.select_one(".available-content")
        if available is not None:
            return available.select_one(".body.markup") or available
        return soup.select_one(".body.markup")

    def find_title(self, soup: BeautifulSoup) -> str:
        h1 = soup.select_one("h1.post-title")
        if h1 and h1.get_text(strip=True):
            return extract.clean_inline(h1.get_text(" ", strip=True))
        return extract.page_title(soup, self.content_root(soup))

    def find_subtitle(self, soup: BeautifulSoup) -> str:
        sub = soup.select_one("h3.subtitle") or soup.select_one(".subtitle")
        return extract.clean_inline(sub.get_text(" ", strip=True)) if sub else ""

    def clean_root(self, root: Tag) -> None:
        for selector in (
            ".subscription-widget-wrap", ".subscription-widget-wrap-editor", ".subscribe-widget",
            ".captioned-button-wrap", ".button-wrapper", ".post-ufi", ".post-footer",
            ".paywall", ".paywall-jump", ".image-link-expand", ".header-anchor-parent",
        ):  # fmt: skip
            for tag in list(root.select(selector)):
                if not getattr(tag, "decomposed", False):
                    tag.decompose()
