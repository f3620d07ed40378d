"""Official data exports (zip archives) → raw documents, detected by what the archive holds.

A LinkedIn export (`Shares.csv`, `Articles/Articles/*.html`), a Medium export (`posts/*.html`
h-entry pages) or a Substack export (`posts.csv` + `posts/<post_id>.html`), also when
re-zipped inside a folder; each platform's format and skip rules are documented in its
importer (`linkedin_export`, `medium_export`, `substack_export`). The archive is vetted and
read in memory by `safe_zip` (zip-bomb limits, unsafe member paths ignored, symlink
members refused, one failure each). An archive that is none of the above fails as
"unrecognised archive".
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Iterator
from pathlib import Path

from core.domain import User
from ingest.errors import CollectFailure
from ingest.importers.linkedin_export import import_linkedin
from ingest.importers.medium_export import import_medium
from ingest.importers.safe_zip import ArchiveError, Item, SafeArchive, open_archive
from ingest.importers.substack_export import import_substack

logger = logging.getLogger(__name__)


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


_IMPORTERS = {"linkedin": import_linkedin, "medium": import_medium, "substack": import_substack}


def import_archive(path: Path, author: User) -> Iterator[Item]:
    """Every document of one export archive; failures for bad items, the rest goes on."""
    try:
        archive = open_archive(path)
    except ArchiveError as exc:
        yield CollectFailure(str(path), str(exc))
        return
    try:
        for member, reason in archive.refused.items():
            yield CollectFailure(archive.item(member), reason)
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
