"""A source-code repository (a git checkout, or a folder of code) → one `repositories` document.

`repository_document(path, link, author, platform)` is also what the GitHub crawler calls
after cloning. Content is `{relative_posix_path: file_text}` of source files only:
- files: `git ls-files --cached --others --exclude-standard` in a git repository (so
  `.gitignore` is respected); a plain walk otherwise;
- skipped: vendored/generated folders (node_modules, vendor, dist, build, .venv, venv,
  __pycache__, target, …, any hidden folder), minified/bundled files (*.min.js, *.min.css,
  *.map), lock files (package-lock.json, yarn.lock, poetry.lock, Cargo.lock, go.sum, *.lock,
  …), binaries (known binary extensions or NUL bytes in the first 8 KB), undecodable text,
  empty files, files over MAX_FILE_BYTES (1 MB), symbolic links, files reached through a
  linked folder that leads out of the repository (symlinks.py); the walk stops adding files
  once the total reaches MAX_TOTAL_BYTES or MAX_FILES (a warning says so).
- title = the repository name (last segment of the link, or the folder name);
  `_id` = document_id_for_link(platform, link); published_at = the last commit's date when
  git can tell, else None.

Folder-of-code rule (`looks_like_code_folder`): a folder without `.git` is treated as a
repository when, among its files (hidden and vendored folders skipped, at most 2,000
looked at), more than half have a source-code extension (SOURCE_EXTENSIONS: .py, .js, .ts,
.go, .rs, .java, …; documents such as .md/.txt/.html/.pdf do not count) and there is at
least one such file.
"""

from __future__ import annotations

import logging
import os
import subprocess
from datetime import datetime
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

from core.domain import Category, RawDocument, User, document_id_for_link
from ingest.importers.decoding import UndecodableError, decode_text, looks_binary

logger = logging.getLogger(__name__)

MAX_FILE_BYTES = 1024 * 1024
MAX_TOTAL_BYTES = 20 * 1024 * 1024
MAX_FILES = 5000
GIT_TIMEOUT_S = 60

SKIP_DIRS = frozenset(
    {
        "node_modules",
        "vendor",
        "vendors",
        "dist",
        "build",
        ".venv",
        "venv",
        "__pycache__",
        ".git",
        ".hg",
        ".svn",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".idea",
        ".vscode",
        "target",
        "bower_components",
        ".next",
        ".nuxt",
        ".gradle",
        "site-packages",
        "coverage",
        "htmlcov",
        ".eggs",
        "third_party",
        "third-party",
    }
)
LOCK_FILES = frozenset(
    {
        "package-lock.json",
        "npm-shrinkwrap.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "poetry.lock",
        "pipfile.lock",
        "cargo.lock",
        "composer.lock",
        "gemfile.lock",
        "go.sum",
        "uv.lock",
        "pdm.lock",
        "bun.lockb",
        "flake.lock",
        "mix.lock",
        "podfile.lock",
        "packages.lock.json",
    }
)
GENERATED_SUFFIXES = (".min.js", ".min.css", ".map", ".lock", ".bundle.js", "_pb2.py", ".pb.go")
BINARY_EXTENSIONS = frozenset(
    """
    .png .jpg .jpeg .gif .bmp .ico .icns .webp .tif .tiff .psd .ai .sketch .svgz .heic
    .pdf .doc .docx .xls .xlsx .ppt .pptx .odt .ods .odp .epub
    .zip .gz .tgz .bz2 .xz .7z .rar .tar .zst .jar .war .ear .whl .egg .apk .dmg .iso .deb .rpm
    .exe .dll .so .dylib .a .lib .o .obj .class .pyc .pyo .pyd .wasm .bin .dat
    .woff .woff2 .ttf .otf .eot
    .mp3 .mp4 .m4a .wav .flac .ogg .oga .webm .mov .avi .mkv .wmv
    .db .sqlite .sqlite3 .parquet .feather .arrow .npy .npz .pkl .pickle .pt .pth .ckpt
    .onnx .safetensors .gguf .h5 .hdf5 .tflite .mlmodel
    """.split()
)
SOURCE_EXTENSIONS = frozenset(
    """
    .py .pyi .ipynb .js .mjs .cjs .jsx .ts .tsx .vue .svelte .go .rs .java .kt .kts .scala
    .groovy .c .h .cc .cpp .cxx .hpp .hh .cs .fs .swift .m .mm .rb .php .pl .pm .lua .r .jl
    .dart .ex .exs .erl .hrl .hs .ml .mli .clj .cljs .elm .nim .zig .sol .sh .bash .zsh
    .fish .ps1 .bat .sql .proto .graphql .css .scss .sass .less .tf .hcl .cmake .gradle
    """.split()
) | {"makefile", "dockerfile", "cmakelists.txt"}


class EmptyRepositoryError(ValueError):
    """No source file survived the filters."""


def _is_source_name(name: str) -> bool:
    lower = name.lower()
    return lower in SOURCE_EXTENSIONS or PurePosixPath(lower).suffix in SOURCE_EXTENSIONS


def _skipped_path(rel: str) -> str | None:
    """Why `rel` (posix, relative) is skipped by name alone, or None."""
    parts = rel.split("/")
    for part in parts[:-1]:
        if part in SKIP_DIRS or part.startswith("."):
            return "vendored/generated/hidden folder"
    name = parts[-1].lower()
    if name in LOCK_FILES:
        return "lock file"
    if name.endswith(GENERATED_SUFFIXES):
        return "minified/generated file"
    if PurePosixPath(name).suffix in BINARY_EXTENSIONS:
        return "binary extension"
    return None


def _git(path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["git", "-c", f"safe.directory={path}", "-C", str(path), *args],
        capture_output=True,
        timeout=GIT_TIMEOUT_S,
        check=True,
    )


def is_git_repository(path: Path) -> bool:
    return (path / ".git").exists()


def _walk(path: Path) -> list[str]:
    found: list[str] = []
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        rel_root = Path(root).relative_to(path)
        for name in sorted(files):
            found.append((rel_root / name).as_posix())
    return found


def list_files(path: Path) -> list[str]:
    """Candidate files (relative posix paths), sorted: git's view when it is a git repo."""
    if is_git_repository(path):
        try:
            out = _git(path, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
            names = {n.decode("utf-8", "surrogateescape") for n in out.stdout.split(b"\0") if n}
            return sorted(names)
        except (OSError, subprocess.SubprocessError) as exc:
            logger.warning("git ls-files failed in %s (%s); walking the folder instead", path, exc)
    return _walk(path)


def _last_commit_date(path: Path) -> datetime | None:
    if not is_git_repository(path):
        return None
    try:
        out = _git(path, "log", "-1", "--format=%cI").stdout.decode().strip()
        return datetime.fromisoformat(out) if out else None
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def looks_like_code_folder(path: Path, sample: int = 2000) -> bool:
    """The documented folder-of-code rule (see module docstring)."""
    total = source = 0
    for rel in _walk(path):
        if _skipped_path(rel) == "vendored/generated/hidden folder":
            continue
        if PurePosixPath(rel).name.startswith("."):
            continue
        total += 1
        source += _is_source_name(PurePosixPath(rel).name)
        if total >= sample:
            break
    return source > 0 and source * 2 > total


def collect_sources(path: Path) -> dict[str, str]:
    """{relative path: text} of the repository's source files, filtered as documented."""
    from ingest.importers.symlinks import is_inside, real_root

    content: dict[str, str] = {}
    total_bytes = 0
    skipped: dict[str, int] = {}
    root_real = real_root(path)
    for rel in list_files(path):
        reason = _skipped_path(rel)
        file_path = path / rel
        if reason is None:
            try:
                if file_path.is_symlink() or not file_path.is_file():
                    reason = "not a regular file"
                elif not is_inside(file_path, root_real):
                    # git lists index entries even where the checkout has a linked folder
                    # (`docs -> /etc`): the file named would be read outside the repository.
                    reason = "behind a symlink out of the repository"
                else:
                    size = file_path.stat().st_size
                    if size == 0:
                        reason = "empty"
                    elif size > MAX_FILE_BYTES:
                        reason = "over 1 MB"
            except OSError:
                reason = "unreadable"
        if reason is None:
            if len(content) >= MAX_FILES or total_bytes + size > MAX_TOTAL_BYTES:
                logger.warning(
                    "%s: repository size cap reached (%d files, %d bytes); rest skipped",
                    path,
                    len(content),
                    total_bytes,
                )
                break
            try:
                data = file_path.read_bytes()
            except OSError:
                reason = "unreadable"
            else:
                if looks_binary(data):
                    reason = "binary"
                else:
                    try:
                        text, _ = decode_text(data)
                    except UndecodableError:
                        reason = "undecodable"
                    else:
                        if text.strip():
                            content[rel] = text
                            total_bytes += size
                            continue
                        reason = "empty"
        skipped[reason] = skipped.get(reason, 0) + 1
    if skipped:
        logger.info(
            "%s: skipped %s", path, ", ".join(f"{n} {r}" for r, n in sorted(skipped.items()))
        )
    return content


def repository_name(path: Path, link: str) -> str:
    parsed = urlparse(link)
    if parsed.scheme and parsed.scheme != "file":
        segments = [s for s in unquote(parsed.path).split("/") if s]
        if segments:
            name = segments[-1]
            return name[:-4] if name.endswith(".git") else name
    return path.resolve().name


def repository_document(path: Path, link: str, author: User, platform: str) -> RawDocument:
    """One repository checkout → a `repositories` RawDocument (see module docstring).

    Raises EmptyRepositoryError (a ValueError) when no source file is left, and
    NotADirectoryError when `path` is not a folder.
    """
    path = Path(path)
    if not path.is_dir():
        raise NotADirectoryError(f"not a folder: {path}")
    content = collect_sources(path)
    if not content:
        raise EmptyRepositoryError(f"no source files in {path}")
    return RawDocument(
        _id=document_id_for_link(str(platform), link),
        author_id=author.id,
        author_full_name=author.full_name,
        platform=platform,
        category=Category.REPOSITORIES,
        link=link,
        title=repository_name(path, link),
        content=content,
        published_at=_last_commit_date(path),
    )
