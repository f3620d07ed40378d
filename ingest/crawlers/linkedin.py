"""LinkedIn public posts (linkedin.com/posts/… and /feed/update/urn:li:activity:…) and Pulse
articles (linkedin.com/pulse/…).

A public post page (served without sign-in) carries the post three ways, tried in order:
JSON-LD `SocialMediaPosting`/`DiscussionForumPosting` (`articleBody`/`text`, `datePublished`,
`image`); the commentary element `p[data-test-id=main-feed-activity-card__commentary]`
(`.attributed-text-segment-list__content`; the first one on the page is the post itself, later
ones are "more posts" by others); and `og:description` (often truncated). Hashtag and mention
links keep only their text; other links keep their URL. A redirect to the sign-in wall gives no
text and becomes a failure that says so.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urljoin, urlsplit

from bs4 import BeautifulSoup, NavigableString, Tag

from core.domain import Category, Platform, RawDocument, User
from core.safe_fetch import FetchError
from ingest.crawlers import extract
from ingest.crawlers.article import ArticleCrawler
from ingest.crawlers.base import BaseCrawler
from ingest.errors import CollectFailure

_POST_TYPES = {"SocialMediaPosting", "DiscussionForumPosting", "BlogPosting", "Article"}
_COMMENTARY = (
    '[data-test-id="main-feed-activity-card__commentary"]',
    '[data-testid="main-feed-activity-card__commentary"]',
    ".attributed-text-segment-list__content",
    ".feed-shared-update-v2__description",
    ".update-components-text",
)


def _is_linkedin(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host == "linkedin.com" or host.endswith(".linkedin.com")


def _post_text(node: Tag, base_url: str) -> str:
    parts: list[str] = []

    def walk(el: Tag) -> None:
        for child in el.children:
            if isinstance(child, NavigableString):
                parts.append(re.sub(r"[ \t\r\f\v]+", " ", str(child).replace("\n", " ")))
            elif isinstance(child, Tag):
                if child.name == "br":
                    parts.append("\n")
                elif child.name in ("p", "div", "li") and parts and not parts[-1].endswith("\n"):
                    parts.append("\n")
                    walk(child)
                    parts.append("\n")
                elif child.name == "a":
                    text = child.get_text(" ", strip=True)
                    href = urljoin(base_url, (child.get("href") or "").strip())
                    if (
                        not text.startswith(("#", "@"))
                        and href
                        and "linkedin.com/feed/hashtag" not in href
                        and "linkedin.com/in/" not in href
                        and text != href
                    ):
                        parts.append(f"{text} ({href})" if text else href)
                    elif text.lower().startswith("hashtag"):
                        parts.append(text[len("hashtag") :].strip())
                    else:
                        parts.append(text)
                elif child.name in ("script", "style", "button"):
                    continue
                else:
                    walk(child)

    walk(node)
    lines = [line.strip() for line in "".join(parts).split("\n")]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _ld_images(obj: dict) -> list[str]:
    images = obj.get("image")
    found: list[str] = []
    for item in images if isinstance(images, list) else [images]:
        if isinstance(item, str):
            found.append(item)
        elif isinstance(item, dict) and isinstance(item.get("url"), str):
            found.append(item["url"])
    return found


class LinkedInPostCrawler(BaseCrawler):
    platform = Platform.LINKEDIN.value
    category = Category.POSTS
    patterns = (
        r"^https?://([a-z]{2,3}\.|www\.)?linkedin\.com/posts/[^/?#]+",
        r"^https?://([a-z]{2,3}\.|www\.)?linkedin\.com/feed/update/urn:li:(activity|share|ugcPost):\d+",
    )
    drop_query = True

    def accepts_canonical(self, canonical: str) -> bool:
        return _is_linkedin(canonical)

    def crawl(self, url: str, author: User) -> Iterator[RawDocument | CollectFailure]:
        try:
            result, soup = self.fetch_html(url)
        except FetchError as exc:
            yield CollectFailure(url, exc.reason)
            return
        base_url = result.final_url or url
        if "/authwall" in urlsplit(base_url).path or "/login" in urlsplit(base_url).path:
            yield CollectFailure(url, "LinkedIn asks to sign in: the post is not public")
            return
        link = self.canonical_link(soup, url, result)
        posts = [o for o in extract.json_ld(soup) if extract.ld_types(o) & _POST_TYPES]
        text = ""
        images: list[str] = []
        published = None
        for obj in posts:
            body = obj.get("articleBody") or obj.get("text") or ""
            if isinstance(body, str) and body.strip():
                text = body.strip()
                images = _ld_images(obj)
                published = extract.parse_date(obj.get("datePublished") or obj.get("dateCreated"))
                break
        if not published and posts:
            published = extract.parse_date(extract.ld_first(posts, "datePublished"))
        commentary = None
        for selector in _COMMENTARY:
            commentary = soup.select_one(selector)
            if commentary is not None and commentary.get_text(strip=True):
                break
            commentary = None
        if not text and commentary is not None:
            text = _post_text(commentary, base_url)
        if not text:
            text = extract.meta_description(soup).strip()
        if not text:
            yield CollectFailure(url, "empty page: no post text found (the post may not be public)")
            return
        if not images:
            card = None
            if commentary is not None:
                card = commentary.find_parent(
                    attrs={"data-activity-urn": True}
                ) or commentary.find_parent("article")
            scope = card or soup
            gallery = scope.select(
                '[data-test-id="feed-images-content"] img, .feed-images-content img'
            )
            images = [src for img in gallery if (src := extract.image_src(img, base_url))]
        images = list(dict.fromkeys(images))
        if published is None:
            published = extract.published_date(soup)
        content: dict = {"text": text}
        if images:
            content["image_urls"] = images
        title = text.split("\n", 1)[0].strip()
        if len(title) > 100:
            title = title[:97].rstrip() + "…"
        yield self.make_document(author, link, title=title, content=content, published_at=published)


class LinkedInArticleCrawler(ArticleCrawler):
    """LinkedIn long-form articles (Pulse): the generic article pipeline, platform linkedin."""

    platform = Platform.LINKEDIN.value
    patterns = (r"^https?://([a-z]{2,3}\.|www\.)?linkedin\.com/pulse/[^/?#]+",)
    drop_query = True

    def accepts_canonical(self, canonical: str) -> bool:
        return _is_linkedin(canonical)

    def content_root(self, soup: BeautifulSoup) -> Tag | None:
        return soup.select_one('[data-test-id="article-content-blocks"]') or soup.select_one(
            ".article-main__content"
        )
