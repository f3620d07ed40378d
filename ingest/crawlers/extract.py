"""HTML → metadata and Markdown-ish text, shared by every page crawler.

- `page_metadata(soup, url)`: title, subtitle, published date, canonical URL from
  `<meta>` (Open Graph, `article:published_time` …), JSON-LD and `<link rel=canonical>`.
- `strip_chrome(root)`: removes navigation, headers/footers, asides, scripts, forms, buttons,
  share/subscribe/cookie widgets … (by tag, ARIA role and class/id tokens).
- `main_content(soup)`: `<article>` / `<main>` / `[role=main]`, else the densest text block.
- `to_markdown(root, base_url)`: headings as `#`, paragraphs, nested lists, fenced code blocks
  kept verbatim (with their language when the page says), links as `[text](absolute URL)`,
  block quotes, simple tables.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

from bs4 import BeautifulSoup, Comment, NavigableString, Tag

try:  # lxml is faster and more forgiving; html.parser is the stdlib fallback
    import lxml  # noqa: F401

    _PARSER = "lxml"
except ImportError:  # pragma: no cover
    _PARSER = "html.parser"


def parse_html(text: str) -> BeautifulSoup:
    return BeautifulSoup(text, _PARSER)


# ---------------------------------------------------------------------------------------------
# Metadata


def _meta(soup: BeautifulSoup, *names: str) -> str:
    for name in names:
        for attr in ("property", "name", "itemprop"):
            tag = soup.find("meta", attrs={attr: name})
            if tag and tag.get("content", "").strip():
                return tag["content"].strip()
    return ""


def json_ld(soup: BeautifulSoup) -> list[dict[str, Any]]:
    """Every JSON-LD object on the page (`@graph` members flattened)."""
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            found.append(node)
            if "@graph" in node:
                walk(node["@graph"])

    for script in soup.find_all("script", attrs={"type": re.compile(r"ld\+json", re.I)}):
        raw = script.string or script.get_text() or ""
        try:
            walk(json.loads(raw.strip(), strict=False))
        except (ValueError, TypeError):
            continue
    return found


def ld_types(obj: dict[str, Any]) -> set[str]:
    kind = obj.get("@type", [])
    return {kind} if isinstance(kind, str) else {str(k) for k in kind if isinstance(k, str)}


def ld_first(objects: Iterable[dict[str, Any]], key: str) -> str:
    for obj in objects:
        value = obj.get(key)
        if isinstance(value, list):
            value = value[0] if value else None
        if isinstance(value, dict):
            value = value.get("url") or value.get("@id") or value.get("name")
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def parse_date(value: str | None) -> datetime | None:
    """ISO 8601 / RFC 2822 / a bare date → aware UTC datetime, else None."""
    if not value:
        return None
    value = value.strip()
    parsed: datetime | None = None
    candidate = value.replace("Z", "+00:00") if value.endswith("Z") else value
    try:
        parsed = datetime.fromisoformat(candidate)
    except ValueError:
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            match = re.match(r"(\d{4})-(\d{2})-(\d{2})", value)
            if match:
                parsed = datetime(int(match[1]), int(match[2]), int(match[3]))
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


_ARTICLE_LD = {
    "Article",
    "NewsArticle",
    "BlogPosting",
    "TechArticle",
    "Report",
    "ScholarlyArticle",
    "SocialMediaPosting",
    "DiscussionForumPosting",
    "WebPage",
}


def published_date(soup: BeautifulSoup, root: Tag | None = None) -> datetime | None:
    ld = [o for o in json_ld(soup) if ld_types(o) & _ARTICLE_LD] or json_ld(soup)
    for value in (
        _meta(soup, "article:published_time", "og:published_time", "datePublished"),
        ld_first(ld, "datePublished"),
        _meta(soup, "pubdate", "publishdate", "date", "dc.date", "DC.date.issued", "sailthru.date"),
        ld_first(ld, "dateCreated"),
    ):
        date = parse_date(value)
        if date:
            return date
    for scope in (root, soup):
        if scope is None:
            continue
        for time_tag in scope.find_all("time"):
            date = parse_date(time_tag.get("datetime") or time_tag.get_text(" ", strip=True))
            if date:
                return date
    return None


def canonical_url(soup: BeautifulSoup, url: str) -> str:
    """The page's own canonical http(s) URL (`og:url`, `<link rel=canonical>`), or ''."""
    candidates = [_meta(soup, "og:url")]
    link = soup.find("link", rel=lambda v: v and "canonical" in (v if isinstance(v, list) else [v]))
    if link and link.get("href"):
        candidates.insert(0, link["href"].strip())
    for candidate in candidates:
        if not candidate:
            continue
        absolute = urljoin(url, candidate)
        if urlsplit(absolute).scheme in ("http", "https") and urlsplit(absolute).netloc:
            return absolute
    return ""


def page_title(soup: BeautifulSoup, root: Tag | None = None) -> str:
    ld = [o for o in json_ld(soup) if ld_types(o) & _ARTICLE_LD]
    for value in (
        _meta(soup, "og:title", "twitter:title"),
        ld_first(ld, "headline"),
    ):
        if value:
            return clean_inline(value)
    for scope in (root, soup):
        if scope is not None and (h1 := scope.find("h1")):
            text = clean_inline(h1.get_text(" ", strip=True))
            if text:
                return text
    if soup.title and soup.title.string:
        title = clean_inline(soup.title.string)
        site = _meta(soup, "og:site_name")
        for sep in (" | ", " - ", " — ", " – ", " · "):
            if site and title.endswith(sep + site):
                return title[: -len(sep + site)].strip()
        return title
    return ""


def meta_description(soup: BeautifulSoup) -> str:
    return _meta(soup, "og:description", "description", "twitter:description")


def clean_inline(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


# ---------------------------------------------------------------------------------------------
# Chrome removal and main-content selection

_DROP_TAGS = (
    "script", "style", "noscript", "template", "iframe", "object", "embed", "svg", "canvas",
    "form", "button", "input", "select", "textarea", "nav", "footer", "aside", "dialog",
    "link", "meta", "header", "picture", "video", "audio", "source",
)  # fmt: skip
_DROP_ROLES = {"navigation", "banner", "contentinfo", "complementary", "dialog", "alertdialog",
               "search", "menu", "menubar", "toolbar", "button"}  # fmt: skip
_CHROME_TOKEN = re.compile(
    r"(?:^|[-_])(?:share|sharing|social|subscribe|subscription|newsletter|cookies?|consent|gdpr|"
    r"signup|sign-up|signin|login|related|relatedposts|recommended|recommendations|comments?|popup|modal|"
    r"advert|advertisement|ads?|sponsor(?:ed)?|promo|paywall|breadcrumbs?|sidebar|menu|navbar|"
    r"nav|toolbar|clap|claps|follow|footer|masthead|byline-actions|skip-link|sr-only|"
    r"visually-hidden|tags?|author-bio|post-ufi|ufi|captioned-button|button-wrapper|cta)"
    r"(?:[-_]|$)",
    re.I,
)
_PROTECTED = {"html", "body", "article", "main"}


def _tokens(tag: Tag) -> list[str]:
    classes = tag.get("class") or []
    if isinstance(classes, str):
        classes = classes.split()
    tokens = list(classes)
    for attr in ("id", "data-testid", "data-test-id"):
        if tag.get(attr):
            tokens.append(str(tag[attr]))
    return tokens


def is_chrome(tag: Tag) -> bool:
    if tag.name in _DROP_TAGS:
        return True
    if (tag.get("role") or "").lower() in _DROP_ROLES:
        return True
    if tag.get("aria-hidden") == "true" and tag.name not in _PROTECTED:
        return True
    if tag.has_attr("hidden"):
        return True
    style = (tag.get("style") or "").replace(" ", "").lower()
    if "display:none" in style or "visibility:hidden" in style:
        return True
    return any(_CHROME_TOKEN.search(token) for token in _tokens(tag))


def strip_chrome(root: Tag, keep: Iterable[Tag] = ()) -> Tag:
    """Remove page chrome under `root` in place (never `root` itself or an ancestor of `keep`)."""
    protected: set[int] = set()
    for tag in keep:
        protected.add(id(tag))
        protected.update(id(parent) for parent in tag.parents)
    for comment in root.find_all(string=lambda s: isinstance(s, Comment)):
        comment.extract()
    # Snapshot first: decompose() while iterating find_all would skip siblings.
    for tag in list(root.find_all(True)):
        if getattr(tag, "decomposed", False):
            continue
        if id(tag) in protected or tag is root or tag.name in _PROTECTED:
            continue
        if tag.name not in _DROP_TAGS and tag.find_parent(["pre", "code"]) is not None:
            continue  # syntax-highlighting spans ("hljs-comment") are code, not chrome
        if is_chrome(tag):
            # <pre>/<code> blocks are content even when a class token looks like chrome.
            if (
                tag.name not in _DROP_TAGS
                and tag.find(["pre", "code"]) is not None
                and not tag.get("role")
            ):
                continue
            tag.decompose()
    return root


def remove_short_texts(root: Tag, phrases: Iterable[str]) -> None:
    """Drop small elements whose whole text is one of `phrases` (e.g. "Member-only story")."""
    wanted = {p.casefold() for p in phrases}
    for tag in list(root.find_all(["p", "div", "span", "a", "li", "h2", "h3", "h4", "h5", "h6"])):
        if getattr(tag, "decomposed", False):
            continue
        text = clean_inline(tag.get_text(" ", strip=True)).casefold()
        if text in wanted:
            tag.decompose()


def _text_len(tag: Tag) -> int:
    return len(clean_inline(tag.get_text(" ", strip=True)))


def main_content(soup: BeautifulSoup) -> Tag:
    """The element holding the article: article/main/role=main, else the densest text block."""
    body = soup.body or soup
    for finder in (
        lambda: body.find_all("article"),
        lambda: body.find_all("main"),
        lambda: body.find_all(attrs={"role": "main"}),
        lambda: body.find_all(attrs={"itemprop": "articleBody"}),
    ):
        candidates = [c for c in finder() if _text_len(c) > 0]
        if candidates:
            return max(candidates, key=_text_len)
    # Readability-lite: credit each paragraph's text to its parent (and half to grandparent).
    scores: dict[int, float] = {}
    nodes: dict[int, Tag] = {}
    for p in body.find_all(["p", "pre", "li", "blockquote"]):
        length = _text_len(p)
        if length < 20:
            continue
        parent = p.parent
        if isinstance(parent, Tag):
            scores[id(parent)] = scores.get(id(parent), 0) + length
            nodes[id(parent)] = parent
            grand = parent.parent
            if isinstance(grand, Tag):
                scores[id(grand)] = scores.get(id(grand), 0) + length / 2
                nodes[id(grand)] = grand
    if scores:
        return nodes[max(scores, key=scores.__getitem__)]
    return body


def largest_block(candidates: Iterable[Tag]) -> Tag | None:
    best = None
    for tag in candidates:
        if best is None or _text_len(tag) > _text_len(best):
            best = tag
    return best


# ---------------------------------------------------------------------------------------------
# HTML → Markdown-ish text

_BLOCK_TAGS = {
    "p", "div", "section", "article", "main", "header", "figure", "figcaption", "ul", "ol",
    "li", "pre", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "table", "tr", "hr",
    "dl", "dt", "dd", "details", "summary", "address", "center",
}  # fmt: skip
_LANG_RE = re.compile(r"(?:^|\s)(?:lang(?:uage)?-|highlight-source-|brush:\s*)([\w#+.-]+)", re.I)


def _code_language(pre: Tag) -> str:
    for tag in [pre, *pre.find_all(True)]:
        for attr in ("data-lang", "data-language", "data-code-block-lang", "lang"):
            if tag.get(attr):
                return str(tag[attr]).strip()
        classes = " ".join(tag.get("class") or [])
        match = _LANG_RE.search(classes)
        if match:
            return match.group(1)
    return ""


def _pre_text(pre: Tag) -> str:
    parts: list[str] = []
    for node in pre.descendants:
        if isinstance(node, NavigableString) and not isinstance(node, Comment):
            parts.append(str(node))
        elif isinstance(node, Tag) and node.name == "br":
            parts.append("\n")
    return "".join(parts).strip("\n")


class _Writer:
    def __init__(self, base_url: str):
        self.base_url = base_url
        self.blocks: list[str] = []

    # Inline content of one block, with links kept as [text](url) and inline code in backticks.
    def inline(self, node: Tag | NavigableString) -> str:
        if isinstance(node, Comment):
            return ""
        if isinstance(node, NavigableString):
            return re.sub(r"\s+", " ", str(node))
        name = node.name
        if name == "br":
            return "\n"
        if name == "img":
            return ""
        if name == "code":
            code = node.get_text()
            return f"`{code}`" if code.strip() else ""
        inner = "".join(self.inline(child) for child in node.children)
        if name == "a":
            href = (node.get("href") or "").strip()
            text = clean_inline(inner)
            if href and not href.startswith(("#", "javascript:", "mailto:", "tel:")):
                absolute = urljoin(self.base_url, href) if self.base_url else href
                if not text or text == absolute or text == href:
                    return f" {absolute} " if not text else absolute
                return f"[{text}]({absolute})"
            if href.startswith("mailto:") and text:
                return text
            return inner
        return inner

    def flush_inline(self, parts: list[str], prefix: str = "") -> None:
        text = "".join(parts)
        lines = [clean_inline(line) for line in text.split("\n")]
        text = "\n".join(line for line in lines if line)
        if text:
            self.blocks.append(prefix + text)
        parts.clear()

    def block(self, node: Tag, list_depth: int = 0) -> None:
        pending: list[str] = []
        for child in node.children:
            if isinstance(child, Comment):
                continue
            if isinstance(child, NavigableString) or child.name not in _BLOCK_TAGS:
                pending.append(self.inline(child))
                continue
            self.flush_inline(pending)
            self.element(child, list_depth)
        self.flush_inline(pending)

    def element(self, tag: Tag, list_depth: int) -> None:
        name = tag.name
        if name in ("h1", "h2", "h3", "h4", "h5", "h6"):
            text = clean_inline("".join(self.inline(c) for c in tag.children))
            if text:
                self.blocks.append("#" * int(name[1]) + " " + text)
        elif name == "pre":
            code = _pre_text(tag)
            if code.strip():
                self.blocks.append(f"```{_code_language(tag)}\n{code}\n```")
        elif name in ("ul", "ol"):
            self.list_block(tag, list_depth)
        elif name == "blockquote":
            inner = _Writer(self.base_url)
            inner.block(tag)
            if inner.blocks:
                quoted = "\n>\n".join(
                    "\n".join("> " + line if line else ">" for line in block.split("\n"))
                    for block in inner.blocks
                )
                self.blocks.append(quoted)
        elif name == "hr":
            self.blocks.append("---")
        elif name == "table":
            self.table(tag)
        else:
            self.block(tag, list_depth)

    def list_block(self, tag: Tag, depth: int) -> None:
        ordered = tag.name == "ol"
        lines: list[str] = []
        number = int(tag.get("start", 1)) if str(tag.get("start", "1")).isdigit() else 1
        for item in tag.find_all("li", recursive=False):
            marker = f"{number}." if ordered else "-"
            number += 1
            inner = _Writer(self.base_url)
            inner.block(item, depth + 1)
            if not inner.blocks:
                continue
            indent = "  " * depth
            first, *rest = inner.blocks
            item_lines = [f"{indent}{marker} {first}"]
            for block in rest:
                if re.match(r"\s*(?:-|\d+\.) ", block):  # a nested list keeps its own indent
                    item_lines.append(block)
                else:
                    item_lines.append("\n".join(indent + "  " + ln for ln in block.split("\n")))
            lines.append("\n".join(item_lines))
        if lines:
            self.blocks.append("\n".join(lines))

    def table(self, tag: Tag) -> None:
        rows = []
        for tr in tag.find_all("tr"):
            cells = [clean_inline("".join(self.inline(c) for c in cell.children))
                     for cell in tr.find_all(["th", "td"])]  # fmt: skip
            if any(cells):
                rows.append("| " + " | ".join(cells) + " |")
        if rows:
            if len(rows) > 1:
                width = rows[0].count(" | ") + 1
                rows.insert(1, "|" + " --- |" * width)
            self.blocks.append("\n".join(rows))


def to_markdown(root: Tag, base_url: str = "") -> str:
    writer = _Writer(base_url)
    if root.name in _BLOCK_TAGS or root.name in ("body", "[document]", "html"):
        writer.block(root)
    else:
        writer.element(root, 0)
    text = "\n\n".join(block.strip("\n") for block in writer.blocks if block.strip())
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def drop_leading_heading(markdown: str, *titles: str) -> str:
    """Remove heading/paragraph blocks at the top that repeat the title or subtitle."""
    wanted = {clean_inline(t).casefold() for t in titles if t and t.strip()}
    blocks = markdown.split("\n\n")
    while blocks and clean_inline(blocks[0].lstrip("#").strip()).casefold() in wanted:
        blocks.pop(0)
    return "\n\n".join(blocks)


def image_src(img: Tag, base_url: str) -> str:
    src = (img.get("data-delayed-url") or img.get("data-src") or img.get("src") or "").strip()
    if not src or src.startswith("data:"):
        return ""
    return urljoin(base_url, src)


def iter_images(root: Tag, base_url: str) -> Iterator[str]:
    for img in root.find_all("img"):
        if src := image_src(img, base_url):
            yield src
