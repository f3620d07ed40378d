"""Official data exports (zip archives) → raw documents, detected by what the archive holds.

- LinkedIn "Get a copy of your data": `Shares.csv` (Date, ShareLink, ShareCommentary,
  SharedUrl, MediaUrl, Visibility) → posts (platform linkedin, link = ShareLink,
  published_at = Date, rows without commentary — plain reshares — are skipped);
  `Articles/Articles/*.html` (`<h1><a href=pulse URL>title</a></h1>`,
  `<p class="created">`, `<p class="published">Published on …</p>`, body) → articles;
  an article without a "Published on" line is a draft and is skipped.
- Medium export: `posts/*.html` (h-entry: `h1.p-name`, `section[data-field=subtitle]`,
  `section[data-field=body].e-content`, `time.dt-published`, `a.p-canonical`) → articles,
  platform medium. Skipped: drafts (`draft_` file prefix) and responses (comment-only
  posts: no `graf--title` block in the body and a title that is just the body's first words).
- Substack export: `posts.csv` (post_id, post_date, is_published, email_sent_at, type,
  audience, title, subtitle, …) + `posts/<post_id>.html` (body) → articles, platform
  substack; rows with is_published false are skipped. The export does not name the
  publication's domain, so the link is Substack's universal post URL
  `https://substack.com/home/post/p-<numeric id>`.
- Safety: the archive is read in memory, never extracted. A broken zip is one failure; more
  than MAX_MEMBERS members, more than MAX_TOTAL_UNCOMPRESSED bytes, or a compression ratio
  above MAX_RATIO (for members or archives over RATIO_MIN_BYTES) is refused as a possible zip
  bomb; members with absolute paths or `..` are ignored; each member read is capped at
  MAX_MEMBER_BYTES. An archive that is none of the above fails as "unrecognised archive".
"""

from __future__ import annotations

import csv
import io
import logging
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from core.domain import Category, Platform, RawDocument, User
from ingest.errors import CollectFailure
from ingest.importers.dates import parse_date
from ingest.importers.decoding import UndecodableError, decode_text
from ingest.importers.render import html_to_markdown

logger = logging.getLogger(__name__)

MAX_MEMBERS = 20_000
MAX_TOTAL_UNCOMPRESSED = 2 * 1024**3
MAX_MEMBER_BYTES = 50 * 1024 * 1024
MAX_RATIO = 200
RATIO_MIN_BYTES = 1024 * 1024

Item = RawDocument | CollectFailure


class ArchiveError(Exception):
    """The archive as a whole cannot be imported; the message is the reason."""


def _safe_name(name: str) -> str | None:
    """The member's normalised posix name, or None when it would escape the archive."""
    name = name.replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return None
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return "/".join(parts)


@dataclass
class SafeArchive:
    path: Path
    zf: zipfile.ZipFile
    members: dict[str, zipfile.ZipInfo] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)

    def item(self, member: str) -> str:
        return f"{self.path}::{member}"

    def read(self, member: str) -> bytes:
        info = self.members[member]
        if info.file_size > MAX_MEMBER_BYTES:
            raise ArchiveError(f"member larger than {MAX_MEMBER_BYTES // 2**20} MB")
        with self.zf.open(info) as handle:
            data = handle.read(MAX_MEMBER_BYTES + 1)
        if len(data) > MAX_MEMBER_BYTES:
            raise ArchiveError(f"member larger than {MAX_MEMBER_BYTES // 2**20} MB")
        return data

    def text(self, member: str) -> str:
        try:
            return decode_text(self.read(member))[0]
        except UndecodableError as exc:
            raise ArchiveError(str(exc)) from exc

    def uri(self, member: str) -> str:
        return f"{self.path.resolve().as_uri()}#{member}"

    def close(self) -> None:
        self.zf.close()


def open_archive(path: Path) -> SafeArchive:
    """Open and vet a zip archive (see module docstring); raise ArchiveError with the reason."""
    try:
        zf = zipfile.ZipFile(path)
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        raise ArchiveError(f"broken zip archive: {exc}") from exc
    try:
        if len(infos) > MAX_MEMBERS:
            raise ArchiveError(
                f"refused, possible zip bomb: {len(infos)} members (limit {MAX_MEMBERS})"
            )
        total = sum(i.file_size for i in infos)
        packed = sum(i.compress_size for i in infos)
        if total > MAX_TOTAL_UNCOMPRESSED:
            raise ArchiveError(
                f"refused, possible zip bomb: {total} bytes uncompressed "
                f"(limit {MAX_TOTAL_UNCOMPRESSED})"
            )
        for info in infos:
            if info.file_size > RATIO_MIN_BYTES and info.file_size > MAX_RATIO * max(
                info.compress_size, 1
            ):
                raise ArchiveError(
                    f"refused, possible zip bomb: {info.filename} expands "
                    f"{info.file_size // max(info.compress_size, 1)}x (limit {MAX_RATIO}x)"
                )
        if total > RATIO_MIN_BYTES and total > MAX_RATIO * max(packed, 1):
            raise ArchiveError(
                f"refused, possible zip bomb: expands {total // max(packed, 1)}x "
                f"(limit {MAX_RATIO}x)"
            )
    except ArchiveError:
        zf.close()
        raise
    archive = SafeArchive(path=path, zf=zf)
    for info in infos:
        if info.is_dir():
            continue
        name = _safe_name(info.filename)
        if name is None:
            archive.ignored.append(info.filename)
            logger.warning("%s: ignoring unsafe member path %r", path, info.filename)
            continue
        if name.startswith("__MACOSX/"):
            continue
        archive.members[name] = info
    return archive


# ---------------------------------------------------------------- detection


def _prefixes(names: list[str]) -> list[str]:
    """ "" plus each top-level folder: exports are sometimes re-zipped inside a folder."""
    tops = sorted({n.split("/", 1)[0] + "/" for n in names if "/" in n})
    return ["", *tops]


def detect_export(archive: SafeArchive) -> tuple[str, str] | None:
    """(kind, prefix) with kind in linkedin|substack|medium, or None."""
    lower = {n.lower(): n for n in archive.members}
    names = list(lower)
    for prefix in _prefixes(names):
        p = prefix.lower()
        if f"{p}shares.csv" in lower or any(
            n.startswith(f"{p}articles/articles/") and n.endswith(".html") for n in names
        ):
            return "linkedin", prefix
        if f"{p}posts.csv" in lower:
            return "substack", prefix
        post_pages = [lower[n] for n in names if n.startswith(f"{p}posts/") and n.endswith(".html")]
        for member in post_pages[:5]:
            try:
                head = archive.read(member)[:200_000]
            except (ArchiveError, zipfile.BadZipFile, OSError):
                continue
            if b'data-field="body"' in head or b"p-canonical" in head or b"h-entry" in head:
                return "medium", prefix
    return None


def _member(archive: SafeArchive, name: str) -> str | None:
    """The archive's real member name for `name`, case-insensitively."""
    if name in archive.members:
        return name
    wanted = name.lower()
    for member in archive.members:
        if member.lower() == wanted:
            return member
    return None


def _first_line(text: str, limit: int = 100) -> str:
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def _document(
    author: User,
    *,
    platform: Platform,
    category: Category,
    link: str,
    title: str,
    content: dict[str, Any],
    published_at: Any,
) -> RawDocument:
    return RawDocument.for_link(
        author,
        platform=platform,
        category=category,
        link=link,
        title=title,
        content=content,
        published_at=published_at,
    )


# ---------------------------------------------------------------- LinkedIn


def _linkedin_shares(archive: SafeArchive, member: str, author: User) -> Iterator[Item]:
    try:
        text = archive.text(member)
    except (ArchiveError, zipfile.BadZipFile, OSError) as exc:
        yield CollectFailure(archive.item(member), f"cannot read: {exc}")
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
            yield _document(
                author,
                platform=Platform.LINKEDIN,
                category=Category.POSTS,
                link=link,
                title=_first_line(commentary),
                content=content,
                published_at=parse_date(row.get("Date")),
            )
    except csv.Error as exc:
        yield CollectFailure(archive.item(member), f"malformed CSV: {exc}")


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
    return _document(
        author,
        platform=Platform.LINKEDIN,
        category=Category.ARTICLES,
        link=link,
        title=title or PurePosixPath(member).stem,
        content={"title": title, "text": text},
        published_at=published_at,
    )


def import_linkedin(archive: SafeArchive, prefix: str, author: User) -> Iterator[Item]:
    shares = _member(archive, f"{prefix}Shares.csv")
    if shares:
        yield from _linkedin_shares(archive, shares, author)
    folder = f"{prefix}Articles/Articles/".lower()
    for member in sorted(archive.members):
        if member.lower().startswith(folder) and member.lower().endswith(".html"):
            yield from _guard(archive, member, _linkedin_article, author)


# ---------------------------------------------------------------- Medium


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
    return _document(
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
        yield from _guard(archive, member, _medium_post, author)


# ---------------------------------------------------------------- Substack

_SUBSTACK_CHROME = (
    ".subscription-widget-wrap, .subscription-widget, .button-wrapper, "
    ".captioned-button-wrap, .share-dialog, .footer, form"
)


def _substack_link(post_id: str) -> str:
    numeric = post_id.split(".", 1)[0]
    return f"https://substack.com/home/post/p-{numeric}"


def import_substack(archive: SafeArchive, prefix: str, author: User) -> Iterator[Item]:
    from bs4 import BeautifulSoup

    csv_member = _member(archive, f"{prefix}posts.csv")
    try:
        text = archive.text(csv_member) if csv_member else ""
    except (ArchiveError, zipfile.BadZipFile, OSError) as exc:
        yield CollectFailure(archive.item(str(csv_member)), f"cannot read: {exc}")
        return
    try:
        rows = list(csv.DictReader(io.StringIO(text)))
    except csv.Error as exc:
        yield CollectFailure(archive.item(str(csv_member)), f"malformed CSV: {exc}")
        return
    for row in rows:
        post_id = (row.get("post_id") or "").strip()
        if not post_id:
            continue
        if (row.get("is_published") or "").strip().lower() not in ("true", "1", "yes"):
            continue
        member = _member(archive, f"{prefix}posts/{post_id}.html")
        if member is None:
            yield CollectFailure(archive.item(f"posts/{post_id}.html"), "post body missing")
            continue
        try:
            soup = BeautifulSoup(archive.text(member), "html.parser")
            for node in soup.select(_SUBSTACK_CHROME):
                node.decompose()
            body = html_to_markdown(str(soup))
        except Exception as exc:  # noqa: BLE001 - one bad post never stops the archive
            yield CollectFailure(archive.item(member), f"could not parse: {exc}")
            continue
        if not body:
            yield CollectFailure(archive.item(member), "empty post body")
            continue
        title = (row.get("title") or "").strip()
        slug = post_id.split(".", 1)[1] if "." in post_id else post_id
        yield _document(
            author,
            platform=Platform.SUBSTACK,
            category=Category.ARTICLES,
            link=_substack_link(post_id),
            title=title or slug,
            content={"title": title, "subtitle": (row.get("subtitle") or "").strip(), "text": body},
            published_at=parse_date(row.get("post_date") or row.get("email_sent_at")),
        )


# ---------------------------------------------------------------- entry point


def _guard(archive: SafeArchive, member: str, parse: Any, author: User) -> Iterator[Item]:
    """Run one member's parser; any error becomes that member's CollectFailure."""
    try:
        result = parse(archive, member, author)
    except (ArchiveError, zipfile.BadZipFile, OSError, EOFError) as exc:
        yield CollectFailure(archive.item(member), f"cannot read: {exc}")
        return
    except Exception as exc:  # noqa: BLE001
        logger.debug("failed on %s", member, exc_info=True)
        yield CollectFailure(archive.item(member), f"could not parse: {type(exc).__name__}: {exc}")
        return
    if result is not None:
        yield result


_IMPORTERS = {"linkedin": import_linkedin, "medium": import_medium, "substack": import_substack}


def import_archive(path: Path, author: User) -> Iterator[Item]:
    """Every document of one export archive; failures for bad items, the rest goes on."""
    try:
        archive = open_archive(path)
    except ArchiveError as exc:
        yield CollectFailure(str(path), str(exc))
        return
    try:
        detected = detect_export(archive)
        if detected is None:
            yield CollectFailure(
                str(path), "unrecognised archive (not a LinkedIn, Medium or Substack export)"
            )
            return
        kind, prefix = detected
        logger.info("%s: %s export", path, kind)
        yield from _IMPORTERS[kind](archive, prefix, author)
    finally:
        archive.close()
