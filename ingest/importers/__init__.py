"""Collect documents from local paths: export archives, files, folders, git repositories.

`import_path(path, author)` decides by what the path is:
1. a zip file → an official data export (LinkedIn, Medium, Substack), detected by its
   contents (exports.py);
2. a folder holding `.git`, or a folder of source code (`as_code=True`, or the rule in
   git_repo.looks_like_code_folder) → one `repositories` document, platform git
   (git_repo.py);
3. a folder → walked recursively in sorted order, hidden folders skipped: each file is
   imported on its own (zip files inside as exports, sub-folders with `.git` as
   repositories), with a progress bar;
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

from core.domain import Platform, RawDocument, User
from ingest.errors import CollectFailure

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
        return CollectFailure(str(path), f"repository not imported: {exc}")


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

    entries: list[tuple[Path, tuple[str, ...], bool]] = []  # (path, folder parts, is repo)
    for current, dirs, files in os.walk(root):
        current_path = Path(current)
        rel_parts = (root.resolve().name, *current_path.relative_to(root).parts)
        kept = []
        for name in sorted(dirs):
            if name.startswith(".") or name in ("__pycache__", "node_modules"):
                continue
            if is_git_repository(current_path / name):
                entries.append((current_path / name, rel_parts, True))
                continue
            kept.append(name)
        dirs[:] = kept
        for name in sorted(files):
            if name.startswith("."):
                continue
            entries.append((current_path / name, rel_parts, False))
    entries.sort(key=lambda e: e[0].as_posix())
    for path, parts, is_repo in tqdm(
        entries, desc=f"importing {root.name}", unit="file", leave=False, disable=None
    ):
        if is_repo:
            yield _repository(path, author)
        else:
            yield from _file(path, author, parts)


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
        yield CollectFailure(str(path), f"{type(exc).__name__}: {exc}")
