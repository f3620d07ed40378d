"""Feeds an address announces: RSS 0.9x/1.0/2.0 and Atom (feedparser), JSON Feed 1.x (json).

Parsing only: the bytes come from `core.safe_fetch.fetch` (SSRF guard, robots.txt, rate limit,
size cap), never from the parsers' own HTTP. feedparser is handed a byte stream (never a
string, which it would treat as a URL to open) with its HTML sanitiser and relative-URI
rewriting off: the entry HTML goes through the same extraction as a crawled page.

- `find_feed_links(soup, base_url)`: `<link rel=alternate>` RSS / Atom / JSON Feed links.
- `COMMON_FEED_PATHS`: the usual places when a page names none.
- `looks_like_feed(content_type, body)`: by media type, else by the first element.
- `parse_feed(body, url)` → `Feed` (entries with link, title, published date, full HTML when
  the feed carries the whole post) or `FeedError` with a one-line reason.
"""

from __future__ import annotations

import io
import json
import re
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

from bs4 import BeautifulSoup

from ingest.crawlers import extract

FEED_TYPES = (
    "application/rss+xml",
    "application/atom+xml",
    "application/feed+json",
    "application/json",
    "application/rdf+xml",
)
COMMON_FEED_PATHS = ("feed", "rss", "atom.xml", "feed.xml", "index.xml", "rss.xml")
MAX_ENTRIES = 5000
# Entry HTML shorter than this (in words) that ends like a teaser is a summary, not the post.
SUMMARY_WORDS = 60
_TEASER_END = re.compile(r"(\[(…|&#8230;|\.\.\.)\]|…|\.\.\.|read more|continue reading)\W*$", re.I)
_XML_ROOT = re.compile(rb"<(?:[a-z]+:)?(rss|feed|rdf|urlset|sitemapindex)\b", re.I)


class FeedError(Exception):
    """A feed that cannot be read; `reason` is one line for the user."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


@dataclass(frozen=True)
class FeedEntry:
    link: str
    title: str = ""
    published: datetime | None = None
    html: str = ""  # the whole post when the feed carries it, else ""
    summary: str = ""


@dataclass
class Feed:
    url: str
    kind: str  # "rss20", "atom10", "json", …
    title: str = ""
    site_link: str = ""
    generator: str = ""
    entries: list[FeedEntry] = field(default_factory=list)


def find_feed_links(soup: BeautifulSoup, base_url: str) -> list[str]:
    """Feed URLs a page announces with `<link rel="alternate" type="…rss/atom/feed+json">`,
    in page order, comment feeds last."""
    found: list[str] = []
    for link in soup.find_all("link", href=True):
        rel = link.get("rel") or []
        rels = {r.lower() for r in (rel if isinstance(rel, list) else [rel])}
        kind = (link.get("type") or "").lower().strip()
        if "alternate" in rels and kind in FEED_TYPES and kind != "application/json":
            found.append(urljoin(base_url, link["href"].strip()))
    comments = [u for u in found if re.search(r"comments?", u, re.I)]
    return [u for u in found if u not in comments] + comments


def xml_root(body: bytes) -> str:
    """The first element's local name in an XML body ("rss", "feed", "urlset" …) or ""."""
    match = _XML_ROOT.search(body[:4096])
    return match.group(1).decode("ascii").lower() if match else ""


def looks_like_feed(content_type: str, body: bytes) -> bool:
    if content_type in FEED_TYPES and content_type != "application/json":
        return True
    head = body[:4096].lstrip()
    if head.startswith(b"{"):
        return b"jsonfeed.org/version" in head
    return xml_root(body) in ("rss", "feed", "rdf")


def parse_feed(body: bytes, url: str) -> Feed:
    """Entries of an RSS/Atom/JSON feed; FeedError("malformed feed: …") when it is not one."""
    if body.lstrip()[:1] == b"{":
        return _parse_json_feed(body, url)
    import feedparser

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = feedparser.parse(io.BytesIO(body), sanitize_html=False, resolve_relative_uris=False)
    problem = parsed.get("bozo_exception")
    if problem is not None and not isinstance(problem, feedparser.CharacterEncodingOverride):
        detail = " ".join(str(problem).split())[:160] or problem.__class__.__name__
        raise FeedError(url, f"malformed feed ({detail})")
    if not parsed.get("version"):
        raise FeedError(url, "not an RSS, Atom or JSON feed")
    meta = parsed.feed
    site_link = urljoin(url, meta.get("link", "") or "")
    feed = Feed(url, parsed.version, extract.clean_inline(meta.get("title", "")), site_link,
                str(meta.get("generator", "")))  # fmt: skip
    for raw in parsed.entries[:MAX_ENTRIES]:
        link = raw.get("link") or (raw.get("id") if str(raw.get("id", "")).startswith("http") else "")
        if not link:
            continue
        html = ""
        for content in raw.get("content", []) or []:
            if "html" in (content.get("type") or "html") and len(content.get("value", "")) > len(html):
                html = content["value"]
        summary = raw.get("summary", "") or ""
        parsed_time = raw.get("published_parsed") or raw.get("updated_parsed")
        published = datetime(*parsed_time[:6], tzinfo=UTC) if parsed_time else None
        feed.entries.append(FeedEntry(
            link=urljoin(site_link or url, link.strip()),
            title=extract.clean_inline(raw.get("title", "")),
            published=published,
            html=html if is_full_text(html) else "",
            summary=summary,
        ))  # fmt: skip
    return feed


def _parse_json_feed(body: bytes, url: str) -> Feed:
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise FeedError(url, f"malformed JSON feed ({exc})") from None
    if not isinstance(data, dict) or "jsonfeed.org/version" not in str(data.get("version", "")):
        raise FeedError(url, "not a JSON Feed (no jsonfeed.org version)")
    items = data.get("items")
    if not isinstance(items, list):
        raise FeedError(url, "malformed JSON feed (no items list)")
    site_link = urljoin(url, str(data.get("home_page_url") or ""))
    feed = Feed(url, "json", extract.clean_inline(str(data.get("title", ""))), site_link)
    for item in items[:MAX_ENTRIES]:
        if not isinstance(item, dict):
            continue
        link = item.get("url") or item.get("external_url") or ""
        if not isinstance(link, str) or not link:
            continue
        html = item.get("content_html") or ""
        if not html and item.get("content_text"):
            paragraphs = str(item["content_text"]).split("\n\n")
            html = "".join(f"<p>{_escape(p)}</p>" for p in paragraphs)
        published = extract.parse_date(str(item.get("date_published") or item.get("date_modified") or ""))
        feed.entries.append(FeedEntry(
            link=urljoin(site_link or url, link.strip()),
            title=extract.clean_inline(str(item.get("title") or "")),
            published=published,
            html=html if isinstance(html, str) and is_full_text(html) else "",
            summary=str(item.get("summary") or ""),
        ))  # fmt: skip
    return feed


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def is_full_text(html: str) -> bool:
    """Whether entry HTML is the post itself rather than a teaser."""
    if not html.strip():
        return False
    text = extract.clean_inline(BeautifulSoup(html, "html.parser").get_text(" "))
    return len(text.split()) >= SUMMARY_WORDS or not _TEASER_END.search(text)


def same_host(a: str, b: str) -> bool:
    """Same host and port, ignoring a leading "www."."""
    pa, pb = urlsplit(a), urlsplit(b)
    ha = (pa.hostname or "").removeprefix("www.")
    hb = (pb.hostname or "").removeprefix("www.")
    return ha == hb and (pa.port or 0) == (pb.port or 0)
