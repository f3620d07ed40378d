"""Reading an untrusted zip archive in memory, never extracting it.

A broken zip is one failure; more than MAX_MEMBERS members, more than MAX_TOTAL_UNCOMPRESSED
bytes, or a compression ratio above MAX_RATIO (for members or archives over RATIO_MIN_BYTES)
is refused as a possible zip bomb; members with absolute paths or `..` are ignored; members
stored as symbolic links (Unix mode S_IFLNK in external_attr) are refused, each listed in
`refused` with the reason (the importer reports them as failures); each member read is
capped at MAX_MEMBER_BYTES. One member that cannot be read or parsed is that
member's CollectFailure (`guard_member`); the rest of the archive goes on.
"""

from __future__ import annotations

import logging
import re
import stat
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from core.domain import RawDocument, User
from ingest.errors import CollectFailure
from ingest.importers.decoding import UndecodableError, decode_text
from ingest.importers.reasons import reason_of

logger = logging.getLogger(__name__)

MAX_MEMBERS = 20_000
MAX_TOTAL_UNCOMPRESSED = 2 * 1024**3
MAX_MEMBER_BYTES = 50 * 1024 * 1024
MAX_RATIO = 200
RATIO_MIN_BYTES = 1024 * 1024

# What an importer yields: a document, or the reason one item could not be imported.
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
    """A vetted archive: its safe member names, and reads capped at MAX_MEMBER_BYTES."""

    path: Path
    zf: zipfile.ZipFile
    members: dict[str, zipfile.ZipInfo] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    # member name -> why it is not imported (symbolic links)
    refused: dict[str, str] = field(default_factory=dict)

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
        raise ArchiveError(f"broken zip archive: {reason_of(exc)}") from exc
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
        if _is_symlink(info):
            # Its bytes are a path, not a document; an extracting tool would follow it
            # out of the archive, so the user hears that it was left out.
            archive.refused[name] = f"refused: symlink member (points to {_link_target(zf, info)})"
            continue
        archive.members[name] = info
    return archive


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    """Whether the member was stored as a symbolic link (Unix mode in the high 16 bits)."""
    return stat.S_ISLNK(info.external_attr >> 16)


def _link_target(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    """The path a symlink member names (its stored bytes), for the refusal message."""
    try:
        with zf.open(info) as handle:
            target = handle.read(256).decode("utf-8", "replace")
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, ValueError, NotImplementedError):
        return "?"
    # Arbitrary bytes: keep the failure one printable line.
    return "".join(c if c.isprintable() else "?" for c in target) or "?"


def find_member(archive: SafeArchive, name: str) -> str | None:
    """The archive's real member name for `name`, case-insensitively."""
    if name in archive.members:
        return name
    wanted = name.lower()
    for member in archive.members:
        if member.lower() == wanted:
            return member
    return None


def guard_member(
    archive: SafeArchive,
    member: str,
    parse: Callable[[SafeArchive, str, User], Item | None],
    author: User,
) -> Iterator[Item]:
    """Run one member's parser; any error becomes that member's CollectFailure."""
    try:
        result = parse(archive, member, author)
    except (ArchiveError, zipfile.BadZipFile, OSError, EOFError) as exc:
        yield CollectFailure(archive.item(member), f"cannot read: {reason_of(exc)}")
        return
    except Exception as exc:  # noqa: BLE001
        logger.debug("failed on %s", member, exc_info=True)
        reason = f"could not parse: {type(exc).__name__}: {reason_of(exc)}"
        yield CollectFailure(archive.item(member), reason)
        return
    if result is not None:
        yield result
