"""HTML → metadata and Markdown text, shared by every page crawler.

- Metadata: `page_title`, `published_date`, `canonical_url`, `meta_description` from `<meta>`
  (Open Graph, `article:published_time` …), JSON-LD and `<link rel=canonical>`.
- `to_markdown(root, base_url)`: the main text as Markdown. trafilatura finds the article
  (on a whole page, or inside the element a platform crawler picked) and writes headings,
  paragraphs, lists, tables, links and code; on top of it, code blocks get back their exact
  text and the language the page declares, block quotes their `>`, a link whose text is
  its URL becomes the bare URL. `benchmarks/extraction.py` measured this against the
  hand-written DOM extractor it replaced (`benchmarks/results/extraction.md`).
- `remove_short_texts`, `largest_block`, `drop_leading_heading`: helpers for the platform
  crawlers' own touches.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import trafilatura
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
# Platform touches


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


def largest_block(candidates: Iterable[Tag]) -> Tag | None:
    best = None
    for tag in candidates:
        if best is None or _text_len(tag) > _text_len(best):
            best = tag
    return best


# ---------------------------------------------------------------------------------------------
# HTML → Markdown: trafilatura, then code blocks, quotes and bare links put back

_LANG_RE = re.compile(r"(?:^|\s)(?:lang(?:uage)?-|highlight-source-|brush:\s*)([\w#+.-]+)", re.I)
_LANG_ATTRS = ("data-lang", "data-language", "data-code-block-lang", "lang")
# Sphinx `highlight-python`, Rouge `language-python highlighter-rouge` on the <pre>'s wrappers.
_WRAPPER_LANG = re.compile(r"(?:^|\s)(?:highlight|language)-([\w#+.-]+)")
_NO_LANG = {"text", "plaintext", "plain", "none", "default", "nohighlight"}
_FENCE_OPEN = re.compile(r"^\s*(`{3,}|~{3,})")
_GLUED_FENCE = re.compile(r"^(.*?[^`\s])(`{3,})[ \t]*$", re.M)  # "… as follows:```" + newline
_INLINE_CODE_ONLY = re.compile(r"^(`+)([^`].*?)\1$", re.S)
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s")
_SELF_LINK = re.compile(r"\[(https?://[^\]\s]+)\]\(\1\)")
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)[ \t]*")
_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


def _code_language(pre: Tag) -> str:
    """The language a page declares for a <pre> (its attributes, classes or wrappers), or ''."""
    for tag in [pre, *pre.find_all(True)]:
        for attr in _LANG_ATTRS:
            if tag.get(attr):
                return str(tag[attr]).strip()
        classes = tag.get("class") or []
        if match := _LANG_RE.search(" ".join(classes)):
            return match.group(1)
        if tag is pre and "highlight" in classes and len(classes) == 2:  # dev.to, GitLab
            return next(c for c in classes if c != "highlight")
    for wrapper in (pre.parent, pre.parent.parent if pre.parent else None):
        if isinstance(wrapper, Tag):
            match = _WRAPPER_LANG.search(" ".join(wrapper.get("class") or []))
            if match and match.group(1) not in _NO_LANG:
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


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", _ESCAPE.sub(r"\1", text))


def _words(text: str) -> str:
    return " ".join(re.findall(r"\w+", re.sub(r"\]\([^)]*\)", "]", text).casefold()))


def _fence(text: str, lang: str) -> str:
    fence = "````" if "```" in text else "```"
    return f"{fence}{lang}\n{text}\n{fence}"


def _blocks(markdown: str) -> list[str]:
    """Blank-line separated blocks; a fenced code block is one block, blank lines and all."""
    blocks: list[str] = []
    current: list[str] = []
    fence = ""
    for line in _GLUED_FENCE.sub(r"\1\n\n\2", markdown).split("\n"):
        if fence:
            current.append(line)
            if line.strip().startswith(fence) and not line.strip().strip(fence[0]):
                blocks.append("\n".join(current))
                current, fence = [], ""
        elif match := _FENCE_OPEN.match(line):
            if current:
                blocks.append("\n".join(current))
            current, fence = [line.strip()], match.group(1)
        elif line.strip():
            current.append(line.rstrip())
        elif current:
            blocks.append("\n".join(current))
            current = []
    if current:
        blocks.append("\n".join(current))
    return blocks


class _Touches:
    """What trafilatura's Markdown loses, read from the page: code blocks' exact text and
    language (it drops both, and writes a one-line block as inline code), quotes' `>`."""

    def __init__(self, root: Tag):
        self.code: dict[str, tuple[str, str]] = {}
        for pre in root.find_all("pre"):
            if (text := _pre_text(pre)).strip():
                self.code.setdefault(_squash(text), (text, _code_language(pre)))
        self.quotes = {
            words
            for quote in root.find_all("blockquote")
            for part in quote.find_all("p") or [quote]
            if (words := _words(part.get_text(" ")))
        }

    def code_for(self, text: str) -> str | None:
        found = self.code.get(_squash(text)) if text.strip() else None
        return _fence(*found) if found else None

    def block(self, block: str) -> list[str]:
        if _FENCE_OPEN.match(block):
            lines = block.split("\n")
            return [self.code_for("\n".join(lines[1:-1])) or block]
        if restored := self.code_for(block):  # a code block written as text
            return [restored]
        out: list[str] = []
        pending: list[str] = []
        for line in block.split("\n"):  # a one-line code block written as inline code
            inline = _INLINE_CODE_ONLY.match(line.strip())
            if inline and (restored := self.code_for(inline.group(2))):
                out.extend([self.prose("\n".join(pending))] if pending else [])
                out.append(restored)
                pending = []
            else:
                pending.append(line)
        return out + ([self.prose("\n".join(pending))] if pending else [])

    def prose(self, block: str) -> str:
        block = _SELF_LINK.sub(r"\1", _IMAGE.sub("", block))  # images go, their captions stay
        block = re.sub(r"(?<=\w)\\_(?=\w)", "_", block)  # snake_case needs no escape
        if _LIST_ITEM.match(block) or block.startswith(("|", "#", ">")):
            return block
        block = "\n".join(line.strip() for line in block.split("\n"))
        if _words(block) in self.quotes:
            return "\n".join("> " + line for line in block.split("\n"))
        return block


def to_markdown(root: Tag, base_url: str = "", *, whole_page: bool = True) -> str:
    """The main text under `root` (a whole page, or a platform's content element) as Markdown."""
    touches = _Touches(root)
    if not whole_page:  # a platform's content element: its class names must not read as chrome
        for tag in root.find_all(True):
            tag.attrs.pop("class", None)
            tag.attrs.pop("id", None)
            if tag.name == "figcaption":  # trafilatura drops a caption next to a <picture>
                tag.name = "p"
    # trafilatura keeps more structure (headings) inside an <article> than in its fallbacks.
    html = str(root) if whole_page else f"<html><body><article>{root}</article></body></html>"
    markdown = trafilatura.extract(
        html, url=base_url or None, output_format="markdown", include_formatting=True,
        include_links=True, include_tables=True, include_comments=False,
        # Inside a platform's post every figure caption is the author's; on a whole page the
        # pictures are as often teasers of other stories.
        include_images=not whole_page, favor_precision=whole_page, favor_recall=not whole_page,
    )  # fmt: skip
    blocks = [out for block in _blocks(markdown or "") for out in touches.block(block)]
    return "\n\n".join(block for block in blocks if block.strip())


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
