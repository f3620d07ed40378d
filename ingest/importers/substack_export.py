"""Substack export → articles (platform substack).

`posts.csv` (post_id, post_date, is_published, email_sent_at, type, audience, title,
subtitle, …) + `posts/<post_id>.html` (body); rows with is_published false are skipped. The
export does not name the publication's domain, so the link is Substack's universal post URL
`https://substack.com/home/post/p-<numeric id>`.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator

from core.domain import Category, Platform, RawDocument, User
from ingest.errors import CollectFailure
from ingest.importers.dates import parse_date
from ingest.importers.reasons import reason_of
from ingest.importers.render import html_to_markdown
from ingest.importers.safe_zip import ArchiveError, Item, SafeArchive, find_member

_SUBSTACK_CHROME = (
    ".subscription-widget-wrap, .subscription-widget, .button-wrapper, "
    ".captioned-button-wrap, .share-dialog, .footer, form"
)


def _substack_link(post_id: str) -> str:
    numeric = post_id.split(".", 1)[0]
    return f"https://substack.com/home/post/p-{numeric}"


def import_substack(archive: SafeArchive, prefix: str, author: User) -> Iterator[Item]:
    from bs4 import BeautifulSoup

    csv_member = find_member(archive, f"{prefix}posts.csv")
    try:
        text = archive.text(csv_member) if csv_member else ""
    except (ArchiveError, zipfile.BadZipFile, OSError) as exc:
        yield CollectFailure(archive.item(str(csv_member)), f"cannot read: {reason_of(exc)}")
        return
    try:
        rows = list(csv.DictReader(io.StringIO(text)))
    except csv.Error as exc:
        yield CollectFailure(archive.item(str(csv_member)), f"malformed CSV: {reason_of(exc)}")
        return
    for row in rows:
        post_id = (row.get("post_id") or "").strip()
        if not post_id:
            continue
        if (row.get("is_published") or "").strip().lower() not in ("true", "1", "yes"):
            continue
        member = find_member(archive, f"{prefix}posts/{post_id}.html")
        if member is None:
            yield CollectFailure(archive.item(f"posts/{post_id}.html"), "post body missing")
            continue
        try:
            soup = BeautifulSoup(archive.text(member), "html.parser")
            for node in soup.select(_SUBSTACK_CHROME):
                node.decompose()
            body = html_to_markdown(str(soup))
        except Exception as exc:  # noqa: BLE001 - one bad post never stops the archive
            yield CollectFailure(archive.item(member), f"could not parse: {reason_of(exc)}")
            continue
        if not body:
            yield CollectFailure(archive.item(member), "empty post body")
            continue
        title = (row.get("title") or "").strip()
        slug = post_id.split(".", 1)[1] if "." in post_id else post_id
        yield RawDocument.for_link(
            author,
            platform=Platform.SUBSTACK,
            category=Category.ARTICLES,
            link=_substack_link(post_id),
            title=title or slug,
            content={"title": title, "subtitle": (row.get("subtitle") or "").strip(), "text": body},
            published_at=parse_date(row.get("post_date") or row.get("email_sent_at")),
        )
