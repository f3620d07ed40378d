"""Local documents (.md/.markdown, .html/.htm, .txt, .rst, .pdf, .docx) → raw documents.

Extraction goes through `unstructured` partitioners, offline (see offline_nlp.py); PDFs are
read with `pypdf` and their text partitioned as plain text (no `unstructured[pdf]`);
reStructuredText is rendered to HTML by docutils first (rst.py). The text keeps Markdown
structure: headings as `#` lines, lists, fenced code verbatim, links with their URLs.

Each file becomes one document:
- `_id` = document_id_for_file(author id, sha256 of the file's bytes); `link` = the file's
  `file://` URI; platform `file`.
- title: Markdown/HTML/DOCX — the first heading, else front matter `title:` (Markdown),
  else `<title>` (HTML); reStructuredText — a PEP-style header's `Title:`, else the first
  section heading; PDF — its metadata title; else the first short line (text/PDF); else
  the file name without extension.
- published_at: front matter `date:` of a Markdown/text file when present, a PEP-style
  header's `Created:` (.rst), else a `YYYY-MM-DD-` file name prefix, else None.
- reStructuredText with a PEP-style header (`PEP:`, `Title:`, `Author:`, `Created:` …)
  also keeps the header fields under `header` and the author names (no e-mail addresses)
  under `header_authors` in its content; neither is embedded (cleaning reads text keys).
- category rule: a file inside a folder named `posts` (any depth below, or the folder that
  was given itself, case-insensitive) is a post; a `.txt` file whose text is shorter than
  3,000 characters is a post; everything else (.md/.html/.rst/.pdf/.docx, long .txt) is an
  article. Posts carry `{"text"}`, articles `{"title", "text"}`.
- Failures (one CollectFailure each, naming the file): unsupported extension, empty file,
  file over MAX_FILE_BYTES, binary or mostly undecodable text, unreadable PDF/DOCX, no text
  extracted (reStructuredText that docutils cannot render is read as plain text instead).
  Text that is not UTF-8 is decoded with a detected encoding (charset-normalizer)
  or cp1252, and a warning says which.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from core.domain import Category, Platform, RawDocument, User, document_id_for_file
from ingest.errors import CollectFailure
from ingest.importers.dates import parse_date
from ingest.importers.decoding import UndecodableError, decode_text
from ingest.importers.reasons import reason_of
from ingest.importers.render import (
    elements_to_markdown,
    first_heading,
    partition_docx_bytes,
    partition_html_text,
    partition_markdown,
    partition_plain_text,
)

logger = logging.getLogger(__name__)

MAX_FILE_BYTES = 20 * 1024 * 1024
SHORT_TEXT_POST_CHARS = 3000
POSTS_FOLDER = "posts"

MARKDOWN_SUFFIXES = {".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm"}
TEXT_SUFFIXES = {".txt"}
RST_SUFFIXES = {".rst"}
SUPPORTED_SUFFIXES = (
    MARKDOWN_SUFFIXES | HTML_SUFFIXES | TEXT_SUFFIXES | RST_SUFFIXES | {".pdf", ".docx"}
)

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S)


class FileImportError(Exception):
    """A file that cannot become a document; the message is the reason."""


class Extracted(NamedTuple):
    """One file's extraction; `extra` are content fields besides title and text."""

    text: str
    title: str
    published_at: datetime | None
    extra: dict[str, Any] = {}


def is_supported_file(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED_SUFFIXES


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """(front matter mapping, body). Front matter that is not a YAML mapping is left alone."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    import yaml

    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        # Hand-written front matter is often not strict YAML: read plain `key: value` lines.
        data = {}
        for line in match.group(1).splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip().isidentifier() and key.strip() not in data:
                data[key.strip()] = value.strip().strip("'\"")
    if not isinstance(data, dict):
        return {}, text
    return data, text[match.end() :]


_FILENAME_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:\b|_)")


def date_from_filename(path: Path) -> datetime | None:
    """A `YYYY-MM-DD-…` file name prefix (a common way to keep notes) → a publication date."""
    match = _FILENAME_DATE.match(path.name)
    if not match:
        return None
    try:
        return datetime(*map(int, match.groups()), tzinfo=UTC)
    except ValueError:
        return None


def _first_short_line(text: str, limit: int = 120) -> str:
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line if len(line) <= limit else ""
    return ""


def category_for(path: Path, text: str, folder_parts: tuple[str, ...] = ()) -> Category:
    """The documented rule: under a `posts` folder, or a short .txt → posts; else articles."""
    parents = {part.casefold() for part in folder_parts}
    if POSTS_FOLDER in parents:
        return Category.POSTS
    if path.suffix.lower() in TEXT_SUFFIXES and len(text) < SHORT_TEXT_POST_CHARS:
        return Category.POSTS
    return Category.ARTICLES


def _decode(path: Path, data: bytes) -> str:
    try:
        text, encoding = decode_text(data)
    except UndecodableError as exc:
        raise FileImportError(str(exc)) from exc
    if encoding != "utf-8":
        logger.warning("%s is not UTF-8: decoded as %s", path, encoding)
    return text


def _extract_pdf(data: bytes) -> tuple[str, str]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise FileImportError("encrypted PDF")
        pages = [page.extract_text() or "" for page in reader.pages]
        meta_title = ""
        if reader.metadata is not None and reader.metadata.title:
            meta_title = str(reader.metadata.title).strip()
    except FileImportError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise FileImportError(f"unreadable PDF (damaged or not a PDF): {reason_of(exc)}") from exc
    text = "\n\n".join(page.strip() for page in pages if page.strip())
    if not text:
        raise FileImportError("no extractable text in PDF (scanned images?)")
    markdown = elements_to_markdown(partition_plain_text(text), headings=False)
    return markdown, meta_title or _first_short_line(markdown)


def extract(path: Path, data: bytes) -> Extracted:
    """(markdown text, title, published_at, extra content fields) for one file's bytes."""
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        text, title = _extract_pdf(data)
        return Extracted(text, title, None)
    if suffix == ".docx":
        if not zipfile.is_zipfile(io.BytesIO(data)):
            raise FileImportError("unreadable DOCX: not a ZIP archive (damaged or not a DOCX)")
        try:
            elements = partition_docx_bytes(data)
        except Exception as exc:  # noqa: BLE001 - python-docx raises many kinds
            raise FileImportError(
                f"unreadable DOCX (damaged or not a DOCX): {reason_of(exc)}"
            ) from exc
        return Extracted(elements_to_markdown(elements), first_heading(elements), None)

    raw = _decode(path, data)
    if suffix in RST_SUFFIXES:
        # Imported here: docutils is only loaded when a folder holds .rst files.
        from ingest.importers.rst import extract_rst

        rst = extract_rst(raw, str(path))
        return Extracted(rst.text, rst.title, rst.published_at, rst.extra)
    front, body = split_front_matter(raw)
    published_at = parse_date(front.get("date"))
    if suffix in MARKDOWN_SUFFIXES:
        elements = partition_markdown(body)
        title = first_heading(elements) or str(front.get("title") or "").strip()
        return Extracted(elements_to_markdown(elements), title, published_at)
    if suffix in HTML_SUFFIXES:
        from bs4 import BeautifulSoup

        elements = partition_html_text(raw)
        title = first_heading(elements)
        if not title:
            head_title = BeautifulSoup(raw, "html.parser").title
            title = head_title.get_text(" ", strip=True) if head_title else ""
        return Extracted(elements_to_markdown(elements), title, None)
    # Plain text: paragraphs only, no guessed headings.
    text = elements_to_markdown(partition_plain_text(body), headings=False)
    title = str(front.get("title") or "").strip() or _first_short_line(text)
    return Extracted(text, title, published_at)


def load_file(
    path: Path, author: User, folder_parts: tuple[str, ...] = ()
) -> RawDocument | CollectFailure:
    """One local file → a RawDocument, or a CollectFailure naming the file and the reason.

    `folder_parts`: the folder names between the imported root (included) and the file,
    for the `posts` folder rule; for a single file, its parent folder names as given.
    """
    item = str(path)
    try:
        if not is_supported_file(path):
            supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
            raise FileImportError(
                f"unsupported file type '{path.suffix or path.name}' (supported: {supported})"
            )
        size = path.stat().st_size
        if size == 0:
            raise FileImportError("empty file")
        if size > MAX_FILE_BYTES:
            raise FileImportError(
                f"file too large ({size / 1e6:.1f} MB > {MAX_FILE_BYTES / 1e6:.0f} MB)"
            )
        data = path.read_bytes()
        text, title, published_at, extra = extract(path, data)
        if not text.strip():
            raise FileImportError("empty file" if not data.strip() else "no text extracted")
    except FileImportError as exc:
        return CollectFailure(item, str(exc))
    except OSError as exc:
        return CollectFailure(item, f"cannot read: {exc.strerror or exc}")
    except Exception as exc:  # noqa: BLE001 - one bad file never stops a run
        logger.debug("failed to import %s", path, exc_info=True)
        return CollectFailure(item, f"could not parse: {type(exc).__name__}: {reason_of(exc)}")

    title = title or path.stem
    published_at = published_at or date_from_filename(path)
    category = category_for(path, text, folder_parts)
    content: dict[str, Any] = (
        {"text": text}
        if category == Category.POSTS
        else {
            "title": title,
            "text": text,
        }
    )
    # Metadata only (e.g. an .rst header): cleaning embeds the text keys, not these.
    content.update(extra)
    return RawDocument(
        _id=document_id_for_file(author.id, hashlib.sha256(data).hexdigest()),
        author_id=author.id,
        author_full_name=author.full_name,
        platform=Platform.FILE,
        category=category,
        link=path.resolve().as_uri(),
        title=title,
        content=content,
        published_at=published_at,
    )
