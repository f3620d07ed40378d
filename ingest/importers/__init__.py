"""Collect documents from local paths: export archives, files, folders, git repositories.

`import_path(path, author)` decides by what the path is:
1. a zip file → an official data export (LinkedIn, Medium, Substack), detected by its
   contents (exports.py);
2. a folder holding `.git`, or a folder of source code (`as_code=True`, or the rule in
   git_repo.looks_like_code_folder) → one `repositories` document, platform git
   (git_repo.py);
3. a folder → walked recursively in sorted order, hidden folders skipped: each file is
   imported on its own (zip files inside as exports, sub-folders with `.git` as
   repositories), with a progress bar; symbolic links follow the rule in symlinks.py (one
   resolving outside the folder is a failure naming it and its target, never read);
4. a file → one local document (local_files.py: .md/.markdown, .html/.htm, .txt, .pdf,
   .docx, .rst; category rule documented there).
Every bad item is a CollectFailure(item, reason); nothing raises out of `import_path`.
"""

from __future__ import annotations

import logging
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from core.domain import Platform, RawDocument, User
from ingest.errors import CollectFailure
from ingest.importers.reasons import reason_of

logger = logging.getLogger(__name__)

__all__ = ["import_path", "CollectFailure"]


def _is_archive(path: Path) -> bool:
    """`.zip`, or a zip without that suffix that is not a document format (.docx is a zip)."""
    from ingest.importers.local_files import is_supported_file

    suffix = path.suffix.lower()
    if suffix == ".zip":
        return True
    return not is_supported_file(path) and zipfile.is_zipfile(path)


def _repository(path: Path, author: User) -> RawDocument | CollectFailure:
    from ingest.importers.git_repo import repository_document

    try:
        return repository_document(path, path.resolve().as_uri(), author, Platform.GIT.value)
    except Exception as exc:  # noqa: BLE001 - one bad repository never stops a run
        return CollectFailure(str(path), f"repository not imported: {reason_of(exc)}")


def _file(
    path: Path, author: User, folder_parts: tuple[str, ...]
) -> Iterator[RawDocument | CollectFailure]:
    if _is_archive(path):
        from ingest.importers.exports import import_archive

        yield from import_archive(path, author)
        return
    from ingest.importers.local_files import load_file

    yield load_file(path, author, folder_parts)


def _walk_folder(root: Path, author: User) -> Iterator[RawDocument | CollectFailure]:
    from tqdm import tqdm

    from ingest.importers.git_repo import is_git_repository
    from ingest.importers.symlinks import judge_link, real_root

    root_real = real_root(root)
    entries: list[_Entry] = []
    refused: list[CollectFailure] = []
    # followlinks=False: a linked folder is judged below and never entered, so a link cannot
    # pull in a folder outside the one given, nor loop back to an ancestor.
    for current, dirs, files in os.walk(root):
        current_path = Path(current)
        rel_parts = (root_real.name, *current_path.relative_to(root).parts)
        kept = []
        for name in sorted(dirs):
            if name.startswith(".") or name in ("__pycache__", "node_modules"):
                continue
            sub = current_path / name
            if sub.is_symlink():
                # A folder link that stays inside needs no following: its target is walked
                # in its own place (or is a hidden folder the rule skips).
                verdict = judge_link(sub, root_real)
                if isinstance(verdict, CollectFailure):
                    refused.append(verdict)
                continue
            if is_git_repository(sub):
                entries.append(_Entry(sub, rel_parts, True, os.path.realpath(sub), False))
                continue
            kept.append(name)
        dirs[:] = kept
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = current_path / name
            if not path.is_symlink():
                entries.append(_Entry(path, rel_parts, False, os.path.realpath(path), False))
                continue
            verdict = judge_link(path, root_real)
            if isinstance(verdict, CollectFailure):
                refused.append(verdict)
            elif verdict is not None:
                entries.append(_Entry(path, rel_parts, False, str(verdict), True))
    entries = _without_duplicates(entries)
    yield from sorted(refused, key=lambda f: f.item)
    for entry in tqdm(
        entries, desc=f"importing {root.name}", unit="file", leave=False, disable=None
    ):
        if entry.is_repo:
            yield _repository(entry.path, author)
        else:
            yield from _file(entry.path, author, entry.parts)


class _Entry(NamedTuple):
    """One item the folder walk found: `real` is its path with every link resolved."""

    path: Path
    parts: tuple[str, ...]
    is_repo: bool
    real: str
    via_link: bool


def _without_duplicates(entries: list[_Entry]) -> list[_Entry]:
    """Sorted by path; a file reached through links inside the folder is imported once, from
    its own place when the walk saw it there, else from the first link to it."""
    entries.sort(key=lambda e: e.path.as_posix())
    seen = {e.real for e in entries if not e.via_link}
    kept = []
    for entry in entries:
        if entry.via_link:
            if entry.real in seen:
                continue
            seen.add(entry.real)
        kept.append(entry)
    return kept


def import_path(
    path: Path, author: User, *, as_code: bool | None = None
) -> Iterator[RawDocument | CollectFailure]:
    """Documents from a local path (see the module docstring). `as_code=True` treats a folder
    as a code repository even without `.git`; `False` never does; None applies the rule."""
    path = Path(path)
    try:
        if not path.exists():
            yield CollectFailure(str(path), "no such file or directory")
            return
        if path.is_dir():
            from ingest.importers.git_repo import is_git_repository, looks_like_code_folder

            if (
                as_code
                or is_git_repository(path)
                or (as_code is None and looks_like_code_folder(path))
            ):
                yield _repository(path, author)
                return
            yield from _walk_folder(path, author)
            return
        yield from _file(path, author, tuple(path.parts[:-1]))
    except Exception as exc:  # noqa: BLE001 - report, never raise
        logger.debug("import of %s failed", path, exc_info=True)
        yield CollectFailure(str(path), f"{type(exc).__name__}: {reason_of(exc)}")
