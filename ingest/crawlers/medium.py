"""Medium articles: medium.com/@user/slug, medium.com/publication/slug, user.medium.com/slug.

Medium renders the story server-side inside `<article>`: the title is
`h1[data-testid=storyTitle]` (class `pw-post-title`), the subtitle `h2.pw-subtitle-paragraph`,
paragraphs `p.pw-post-body-paragraph`, code in `<pre>` (lines split by `<br>`). The byline,
clap/response/share/listen buttons and "Follow" sit in `div.speechify-ignore` blocks and
`data-testid` controls; the metered/member paywall adds "Member-only story" and "Sign up"
prompts. Dates: `article:published_time` meta, JSON-LD `datePublished`. Custom domains look like
any other site and go to the generic crawler.
"""

from __future__ import annotations

import re

from bs4 import BeautifulSoup, Tag

from core.domain import Platform
from ingest.crawlers import extract
from ingest.crawlers.article import COMMON_CHROME_PHRASES, ArticleCrawler

_CHROME_TESTIDS = re.compile(
    r"^(header|footer|authorPhoto|authorName|publicationName|storyReadTime|storyPublishDate|"
    r"headerClapButton|footerClapButton|headerSocialShareButton|footerSocialShareButton|"
    r"audioPlayButton|headerBookmarkButton|footerBookmarkButton|responsesButton|"
    r"post-sidebar|paywall|meteredContent|follow)",
    re.I,
)


class MediumCrawler(ArticleCrawler):
    platform = Platform.MEDIUM.value
    patterns = (
        r"^https?://(www\.)?medium\.com/@[^/?#]+/[^/?#]+",
        r"^https?://(www\.)?medium\.com/(?!@|m/|tag/|search|me/|plans|membership)[^/?#]+/[^/?#]+",
        r"^https?://(?!www\.|help\.|policy\.|blog\.)[a-z0-9-]+\.medium\.com/[^/?#]+",
    )
    drop_query = True
    chrome_phrases = COMMON_CHROME_PHRASES + (
        "Member-only story", "Listen", "Open in app", "Write", "Get started", "Top highlight",
        "Sign up to discover human stories that deepen your understanding of the world.",
        "Become a member", "Responses", "More from Medium", "Recommended from Medium",
        "Follow publication", "--", "·",
    )  # fmt: skip

    def content_root(self, soup: BeautifulSoup) -> Tag | None:
        return extract.largest_block(soup.find_all("article"))

    def find_title(self, soup: BeautifulSoup) -> str:
        h1 = soup.find("h1", attrs={"data-testid": "storyTitle"}) or soup.find(
            "h1", class_="pw-post-title"
        )
        if h1 and h1.get_text(strip=True):
            return extract.clean_inline(h1.get_text(" ", strip=True))
        title = extract.page_title(soup, self.content_root(soup))
        # <title> reads "Title | by Author | Publication | Medium".
        return re.sub(r"\s+\|\s+by\s+.*$", "", re.sub(r"\s+\|\s+Medium$", "", title)).strip()

    def find_subtitle(self, soup: BeautifulSoup) -> str:
        h2 = soup.find(class_="pw-subtitle-paragraph")
        return extract.clean_inline(h2.get_text(" ", strip=True)) if h2 else ""

    def clean_root(self, root: Tag) -> None:
        for tag in list(root.find_all(class_="speechify-ignore")):
            if not getattr(tag, "decomposed", False) and tag.find("pre") is None:
                tag.decompose()
        for tag in list(root.find_all(attrs={"data-testid": _CHROME_TESTIDS})):
            if not getattr(tag, "decomposed", False):
                tag.decompose()
