"""Medium export → articles (platform medium).

`posts/*.html` pages are h-entries: `h1.p-name`, `section[data-field=subtitle]`,
`section[data-field=body].e-content`, `time.dt-published`, `a.p-canonical`. Skipped: drafts
(`draft_` file prefix) and responses (comment-only posts: no `graf--title` block in the
body and a title that is just the body's first words).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import PurePosixPath

from core.domain import Category, Platform, RawDocument, User
from ingest.errors import CollectFailure
from ingest.importers.dates import parse_date
from ingest.importers.render import html_to_markdown
from ingest.importers.safe_zip import Item, SafeArchive, guard_member

logger = logging.getLogger(__name__)


def _medium_post(archive: SafeArchive, member: str, author: User) -> Item | None:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(archive.text(member), "html.parser")
    body = soup.select_one('section[data-field="body"]')
    if body is None:
        return CollectFailure(archive.item(member), "no body section (data-field=body)")
    h1 = soup.select_one("h1.p-name")
    title = h1.get_text(" ", strip=True) if h1 else ""
    body_text = body.get_text(" ", strip=True)
    has_title_block = body.select_one(".graf--title") is not None
    stem = title.rstrip("….").strip()
    if not has_title_block and (not title or body_text.startswith(stem)):
        logger.info("%s: a response (comment), skipped", archive.item(member))
        return None
    subtitle_node = soup.select_one('section[data-field="subtitle"]')
    subtitle = subtitle_node.get_text(" ", strip=True) if subtitle_node else ""
    for node in body.select(".graf--title, .graf--subtitle"):
        node.decompose()
    canonical = soup.select_one("a.p-canonical[href]")
    link = canonical["href"].strip() if canonical else archive.uri(member)
    time_node = soup.select_one("time.dt-published")
    published_at = parse_date(time_node.get("datetime")) if time_node else None
    text = html_to_markdown(str(body))
    if not text:
        return CollectFailure(archive.item(member), "empty post body")
    content = {"title": title, "subtitle": subtitle, "text": text}
    return RawDocument.for_link(
        author,
        platform=Platform.MEDIUM,
        category=Category.ARTICLES,
        link=link,
        title=title or PurePosixPath(member).stem,
        content=content,
        published_at=published_at,
    )


def import_medium(archive: SafeArchive, prefix: str, author: User) -> Iterator[Item]:
    folder = f"{prefix}posts/".lower()
    for member in sorted(archive.members):
        low = member.lower()
        if not (low.startswith(folder) and low.endswith(".html")):
            continue
        if PurePosixPath(member).name.startswith("draft_"):
            continue
        yield from guard_member(archive, member, _medium_post, author)
