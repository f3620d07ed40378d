"""LinkedIn "Get a copy of your data" export → posts and articles.

- `Shares.csv` (Date, ShareLink, ShareCommentary, SharedUrl, MediaUrl, Visibility) → posts
  (platform linkedin, link = ShareLink, published_at = Date); rows without commentary —
  plain reshares — are skipped: nothing the author wrote.
- `Articles/Articles/*.html` (`<h1><a href=pulse URL>title</a></h1>`, `<p class="created">`,
  `<p class="published">Published on …</p>`, body) → articles; an article without a
  "Published on" line is a draft and is skipped.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import zipfile
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any

from core.domain import Category, Platform, RawDocument, User
from ingest.errors import CollectFailure
from ingest.importers.dates import parse_date
from ingest.importers.reasons import reason_of
from ingest.importers.render import html_to_markdown
from ingest.importers.safe_zip import ArchiveError, Item, SafeArchive, find_member, guard_member

logger = logging.getLogger(__name__)


def _first_line(text: str, limit: int = 100) -> str:
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def _linkedin_shares(archive: SafeArchive, member: str, author: User) -> Iterator[Item]:
    try:
        text = archive.text(member)
    except (ArchiveError, zipfile.BadZipFile, OSError) as exc:
        yield CollectFailure(archive.item(member), f"cannot read: {reason_of(exc)}")
        return
    reader = csv.DictReader(io.StringIO(text))
    try:
        for row in reader:
            row_item = archive.item(f"{member} line {reader.line_num}")
            commentary = (row.get("ShareCommentary") or "").strip()
            if not commentary:
                continue  # a plain reshare: nothing the author wrote
            link = (row.get("ShareLink") or "").strip()
            if not link:
                yield CollectFailure(row_item, "share without ShareLink")
                continue
            content: dict[str, Any] = {"text": commentary}
            media = (row.get("MediaUrl") or "").strip()
            if media:
                content["image_urls"] = [media]
            shared = (row.get("SharedUrl") or "").strip()
            if shared:
                content["shared_url"] = shared
            yield RawDocument.for_link(
                author,
                platform=Platform.LINKEDIN,
                category=Category.POSTS,
                link=link,
                title=_first_line(commentary),
                content=content,
                published_at=parse_date(row.get("Date")),
            )
    except csv.Error as exc:
        yield CollectFailure(archive.item(member), f"malformed CSV: {reason_of(exc)}")


def _linkedin_article(archive: SafeArchive, member: str, author: User) -> Item | None:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(archive.text(member), "html.parser")
    published = soup.select_one("p.published")
    if published is None:
        logger.info("%s: no 'Published on' line, a draft: skipped", archive.item(member))
        return None
    published_at = parse_date(re.sub(r"^\s*Published on\s*", "", published.get_text(" ")))
    h1 = soup.find("h1")
    anchor = h1.find("a", href=True) if h1 else None
    title = h1.get_text(" ", strip=True) if h1 else ""
    if not title and soup.title:
        title = soup.title.get_text(" ", strip=True)
    link = anchor["href"].strip() if anchor else archive.uri(member)
    body = soup.body or soup
    for node in body.find_all(["h1", "style", "script"]):
        node.decompose()
    for node in body.select("p.created, p.published"):
        node.decompose()
    text = html_to_markdown(str(body))
    if not text:
        return CollectFailure(archive.item(member), "empty article")
    return RawDocument.for_link(
        author,
        platform=Platform.LINKEDIN,
        category=Category.ARTICLES,
        link=link,
        title=title or PurePosixPath(member).stem,
        content={"title": title, "text": text},
        published_at=published_at,
    )


def import_linkedin(archive: SafeArchive, prefix: str, author: User) -> Iterator[Item]:
    shares = find_member(archive, f"{prefix}Shares.csv")
    if shares:
        yield from _linkedin_shares(archive, shares, author)
    folder = f"{prefix}Articles/Articles/".lower()
    for member in sorted(archive.members):
        if member.lower().startswith(folder) and member.lower().endswith(".html"):
            yield from guard_member(archive, member, _linkedin_article, author)
