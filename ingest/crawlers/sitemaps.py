"""Sitemaps: `Sitemap:` lines in robots.txt, `/sitemap.xml`, sitemap indexes, gzip.

The bytes come from `core.safe_fetch.fetch`; this module only reads them, under limits
that make a hostile sitemap cheap ("sitemap bomb"): at most `SitemapLimits.max_urls` page
URLs considered, `max_sitemaps` sitemap files fetched, `max_depth` levels of nested indexes,
`max_bytes` of decompressed XML per file (gzip is inflated incrementally and abandoned past
it). The XML parser resolves no entities and touches no network.

Child sitemaps that hold no posts by their usual names (WordPress `wp-sitemap-taxonomies-*`,
`-users-`, `-posts-page-`; Yoast/Ghost `page-`, `tag-`, `category-`, `author-` sitemaps) are
skipped, and so are listing pages (tags, categories, pagination, a section's own index).
"""

from __future__ import annotations

import re
import urllib.robotparser
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urljoin, urlsplit

from lxml import etree

from ingest.crawlers import extract

_NOT_POST_SITEMAP = re.compile(
    r"(taxonom|categor|(^|[-_/])tags?([-_.]|$)|(^|[-_/])authors?([-_.]|$)|users?[-_.]|"
    r"posts-page|(^|[-_/])pages?[-_.]|video|image|news-sitemap)",
    re.I,
)
_NOT_POST_PATH = re.compile(
    r"/(tags?|categor(y|ies)|authors?|page|archives?|search|feed|rss|series|topics?|"
    r"wp-content|wp-json|wp-admin|amp)(/|$)",
    re.I,
)
_STATIC_FILE = re.compile(r"\.(png|jpe?g|gif|webp|svg|pdf|zip|mp3|mp4|css|js|xml|json)$", re.I)


class SitemapError(Exception):
    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


@dataclass(frozen=True)
class SitemapLimits:
    max_urls: int = 5000  # page URLs considered, all sitemaps together
    max_sitemaps: int = 50  # sitemap files fetched
    max_depth: int = 3  # index → index → urlset
    max_bytes: int = 20 * 1024 * 1024  # decompressed XML per file


@dataclass(frozen=True)
class SitemapURL:
    loc: str
    lastmod: datetime | None


def robots_sitemaps(robots_text: str, robots_url: str) -> list[str]:
    """The `Sitemap:` URLs a robots.txt names (stdlib parser)."""
    parser = urllib.robotparser.RobotFileParser(robots_url)
    parser.parse(robots_text.splitlines())
    return [urljoin(robots_url, u.strip()) for u in (parser.site_maps() or [])]


def inflate(body: bytes, url: str, max_bytes: int) -> bytes:
    """gzip bodies inflated (at most `max_bytes`), others returned as they are."""
    if body[:2] != b"\x1f\x8b":
        if len(body) > max_bytes:
            raise SitemapError(url, f"sitemap larger than {max_bytes // (1024 * 1024)} MB")
        return body
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise SitemapError(url, f"broken gzip ({exc})") from None
    if len(out) > max_bytes or inflater.unconsumed_tail:
        raise SitemapError(
            url, f"sitemap inflates past {max_bytes // (1024 * 1024)} MB (refused as a bomb)"
        )
    return out


def parse_sitemap(xml: bytes, url: str, max_urls: int) -> tuple[str, list[SitemapURL]]:
    """("urlset" | "sitemapindex", its <loc>s with <lastmod>), at most `max_urls` of them."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False,
                             recover=False, remove_comments=True)  # fmt: skip
    try:
        root = etree.fromstring(xml, parser)
    except etree.XMLSyntaxError as exc:
        raise SitemapError(url, f"malformed sitemap ({' '.join(str(exc).split())[:160]})") from None
    kind = etree.QName(root).localname.lower()
    if kind not in ("urlset", "sitemapindex"):
        raise SitemapError(url, f"not a sitemap (root element <{kind}>)")
    found: list[SitemapURL] = []
    for child in root:
        if not isinstance(child.tag, str):
            continue
        loc = lastmod = ""
        for part in child:
            if not isinstance(part.tag, str):
                continue
            name = etree.QName(part).localname
            if name == "loc":
                loc = (part.text or "").strip()
            elif name == "lastmod":
                lastmod = (part.text or "").strip()
        if loc:
            found.append(SitemapURL(urljoin(url, loc), extract.parse_date(lastmod)))
            if len(found) >= max_urls:
                break
    return kind, found


def holds_posts(sitemap_url: str) -> bool:
    """False for child sitemaps named after pages, tags, categories, authors, media."""
    name = urlsplit(sitemap_url).path.rsplit("/", 1)[-1]
    return not _NOT_POST_SITEMAP.search(name)


def post_like(urls: list[str], root_url: str) -> list[str]:
    """Page URLs that can be posts: not the root, not listing/tag/author pages, not files,
    and not the index of a section whose pages are listed too."""
    root = urlsplit(root_url).path.rstrip("/")
    paths = {urlsplit(u).path.rstrip("/") for u in urls}
    kept = []
    for url in urls:
        path = urlsplit(url).path.rstrip("/")
        if path == root or _NOT_POST_PATH.search(path + "/") or _STATIC_FILE.search(path):
            continue
        prefix = path + "/"
        if any(p.startswith(prefix) for p in paths):  # a section page: /posts above /posts/x
            continue
        kept.append(url)
    return kept


Fetcher = Callable[[str], bytes]


def walk_sitemaps(
    starts: list[str],
    fetch_bytes: Fetcher,
    *,
    limits: SitemapLimits | None = None,
    on_problem: Callable[[str, str], None] | None = None,
) -> Iterator[SitemapURL]:
    """Page URLs from `starts` and every index below them, breadth-first, within `limits`.

    `fetch_bytes(url)` returns the body or raises (any exception: reported through
    `on_problem(url, reason)` and skipped)."""
    limits = limits or SitemapLimits()
    seen: set[str] = set()
    queue = [(u, 0) for u in dict.fromkeys(starts)]
    fetched = given = 0
    capped = ""
    while queue and given < limits.max_urls:
        url, depth = queue.pop(0)
        if url in seen:
            continue
        seen.add(url)
        if fetched >= limits.max_sitemaps:
            capped = f"more than {limits.max_sitemaps} sitemap files; the rest were not read"
            break
        fetched += 1
        try:
            xml = inflate(fetch_bytes(url), url, limits.max_bytes)
            kind, entries = parse_sitemap(xml, url, limits.max_urls - given)
        except Exception as exc:  # noqa: BLE001 - one bad sitemap must not stop the others
            if on_problem is not None:
                on_problem(url, getattr(exc, "reason", None) or str(exc))
            continue
        if kind == "sitemapindex":
            if depth + 1 > limits.max_depth:
                capped = f"sitemap indexes nested deeper than {limits.max_depth} levels"
                continue
            queue.extend((e.loc, depth + 1) for e in entries if holds_posts(e.loc))
            continue
        for entry in entries:
            given += 1
            yield entry
    if given >= limits.max_urls:
        capped = f"stopped after {limits.max_urls} URLs"
    if capped and on_problem is not None:
        on_problem(starts[0] if starts else "", f"sitemap limit: {capped}")
