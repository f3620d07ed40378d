"""The corpora retrieval is evaluated on, stored through the production pipeline.

- The in-tree fixture (`evals/data/corpus/*.md`: 55 short technical articles, posts and code
  files by four authors with deliberately confusable topics; the `d*` files are distractors
  no question asks about), each file with front matter naming its author, category,
  platform, link and date. Tests and CI use it.
- Any folder of per-author subfolders of real writing (`.rst`, `.md`, `.txt`, `.html` …),
  collected by the same importers as `python -m ingest add FILE --author NAME`. Develop on
  `../shared/corpora/peps` (93 PEPs by five authors).

Either way the documents go into the eval's own warehouse and local vector store
(`ingest.documents.store_documents`: production cleaning, chunking and embedding), never
into the user's DATA_DIR. A document's key is its corpus file's stem.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

    from core.domain import RawDocument

DATA_DIR = Path(__file__).resolve().parent / "data"
CORPUS_DIR = DATA_DIR / "corpus"
SUFFIXES = {".rst", ".md", ".markdown", ".txt", ".html", ".htm"}
_FILE_LINE = re.compile(r"^(?:#|//)\s*file:\s*(\S+)\s*$")
_HEADING_LINE = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


@dataclass
class CorpusDocument:
    key: str
    author: str
    category: str
    platform: str
    title: str
    link: str
    published_at: str | None
    content: str


def _parse_front_matter(text: str) -> tuple[dict[str, str], str]:
    if not text.startswith("---\n"):
        raise ValueError("corpus file without front matter")
    header, _, body = text[4:].partition("\n---\n")
    meta = {}
    for line in header.splitlines():
        key, _, value = line.partition(":")
        meta[key.strip()] = value.strip()
    return meta, body.strip("\n") + "\n"


def load_corpus(corpus_dir: Path = CORPUS_DIR) -> list[CorpusDocument]:
    """The evaluation corpus, one document per `*.md` file (front matter + content)."""
    docs = []
    for path in sorted(corpus_dir.glob("*.md")):
        meta, body = _parse_front_matter(path.read_text(encoding="utf-8"))
        docs.append(
            CorpusDocument(
                key=path.stem,
                author=meta["author"],
                category=meta["category"],
                platform=meta["platform"],
                title=meta.get("title", ""),
                link=meta["link"],
                published_at=meta.get("published_at") or None,
                content=body,
            )
        )
    return docs


def corpus_documents(docs: Sequence[CorpusDocument] | None = None) -> list[RawDocument]:
    """The corpus as warehouse documents (what a collector would have stored for them)."""
    from datetime import datetime

    from core.domain import Category, RawDocument, User

    raws = []
    for doc in docs if docs is not None else load_corpus():
        published = (
            datetime.fromisoformat(f"{doc.published_at}T09:00:00+00:00")
            if doc.published_at
            else None
        )
        category = Category(doc.category)
        content: dict[str, str] = {"text": doc.content}
        if category is Category.REPOSITORIES:
            # A repository is {path: code}; each corpus file is one source file whose
            # first line names it (`# file: path` or `// file: path`).
            first, _, code = doc.content.partition("\n")
            named = _FILE_LINE.match(first)
            content = {named.group(1): code} if named else {doc.title: doc.content}
        raws.append(
            RawDocument.for_link(
                User.from_full_name(doc.author),
                platform=doc.platform,
                category=category,
                link=doc.link,
                title=doc.title,
                content=content,
                published_at=published,
            )
        )
    return raws


def folder_authors(folder: Path) -> dict[str, tuple[str, list[Path]]]:
    """Subfolder name → (author's full name, documents) of a folder of per-author
    subfolders. The name is the documents' own `Author:` header when they have one, else
    the subfolder's name."""
    from core.domain import User
    from ingest.importers.local_files import load_file

    subfolders = sorted(p for p in Path(folder).iterdir() if p.is_dir())
    found: dict[str, tuple[str, list[Path]]] = {}
    for sub in subfolders:
        files = sorted(f for f in sub.rglob("*") if f.suffix.lower() in SUFFIXES)
        if not files:
            continue
        first = load_file(files[0], User.from_full_name(sub.name))
        named = (getattr(first, "content", None) or {}).get("header_authors") or []
        found[sub.name] = (str(named[0]) if named else sub.name.replace("-", " ").title(), files)
    if not found:
        raise ValueError(f"{folder}: no per-author subfolders with documents")
    return found


def _add_folder(folder: Path) -> None:
    """Each author's documents through the `python -m ingest add` path, into the current
    DATA_DIR; a document that fails stops the evaluation (its numbers would be wrong)."""
    from core.domain import User
    from ingest.documents import add_sources

    failures: list[str] = []
    for name, files in folder_authors(folder).values():
        add_sources([str(f) for f in files], User.from_full_name(name),
                    on_failure=lambda item, reason: failures.append(f"{item}: {reason}"))  # fmt: skip
    if failures:
        raise ValueError(f"{folder}: {len(failures)} documents failed: {failures[:3]}")


def normalise_heading(text: str) -> str:
    """A section heading as compared: no Markdown marks or punctuation, case-folded."""
    text = re.sub(r"^#+\s*", "", text.strip())
    return " ".join(re.sub(r"[^\w\s]", " ", text).casefold().split())


@dataclass
class EvalStore:
    """A stored corpus: its client, document key by link, the sections each chunk covers
    (normalised headings: the one it starts in and every one it opens) and the authors."""

    client: QdrantClient
    key_by_link: dict[str, str]
    sections: dict[str, set[str]] = field(default_factory=dict)
    authors: list[str] = field(default_factory=list)


def chunk_sections(client: QdrantClient) -> dict[str, set[str]]:
    """Chunk id → normalised headings of the sections it covers: every heading of the path
    where it starts (a subsection and its parent both count) and every heading it opens."""
    from ingest.features.store_state import scroll_points

    sections: dict[str, set[str]] = {}
    for name in sorted(c.name for c in client.get_collections().collections):
        if not name.startswith("embedded_"):
            continue
        for point in scroll_points(client, name, ["section", "content"]):
            payload = point.payload or {}
            path = [p for p in str(payload.get("section") or "").split(" > ") if p.strip()]
            opened = _HEADING_LINE.findall(payload.get("content") or "")
            sections[str(point.id)] = {normalise_heading(h) for h in [*path, *opened]}
    return sections


@contextmanager
def corpus_store(folder: Path | None = None, work_dir: Path | None = None) -> Iterator[EvalStore]:
    """The corpus (the in-tree fixture, or `folder`) stored in its own DATA_DIR, which is in
    force (settings and vector-store client) until the block ends.

    With `work_dir` the store is kept there and reused while the corpus files and the
    features settings are unchanged (a marker file records them); without, it lives in a
    temporary folder for the call.
    """
    from core.settings import get_settings, settings_override
    from ingest.features.recipe import features_key
    from retrievers.store import close_qdrant_client, get_qdrant_client

    root = Path(tempfile.mkdtemp(prefix="twin-retrieval-eval-")) if work_dir is None else work_dir
    root.mkdir(parents=True, exist_ok=True)
    files = sorted(Path(folder).rglob("*") if folder else CORPUS_DIR.glob("*.md"))
    # What is stored: the features recipe, the store's engine and the corpus files.
    wanted = [features_key(), "qdrant-edge"]
    wanted += [f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files if p.is_file()]
    marker = root / "stored.json"
    close_qdrant_client()
    try:
        # Converted model weights stay where they are: only the stores move.
        with settings_override(DATA_DIR=root, MODELS_CACHE_DIR=get_settings().models_cache_dir,
                               QDRANT_URL="", MONGODB_URI=""):  # fmt: skip
            if not (marker.exists() and json.loads(marker.read_text()) == wanted):
                if folder is None:
                    from ingest.documents import store_documents

                    store_documents(corpus_documents())
                else:
                    _add_folder(Path(folder))
                marker.write_text(json.dumps(wanted))
            yield _describe_store(get_qdrant_client(), folder)
            close_qdrant_client()
    finally:
        close_qdrant_client()
        if work_dir is None:
            shutil.rmtree(root, ignore_errors=True)


def _describe_store(client: QdrantClient, folder: Path | None) -> EvalStore:
    """Document keys by link (file stems), chunk sections and authors of the stored corpus."""
    from core.warehouse import get_warehouse

    with get_warehouse() as wh:
        authors = sorted({str(u.get("full_name")) for u in wh.find("users")})
        if folder is None:
            key_by_link = {d.link: d.key for d in load_corpus()}
        else:
            key_by_link = {
                str(doc["link"]): Path(str(doc["link"]).removeprefix("file://")).stem
                for category in ("articles", "posts", "repositories")
                for doc in wh.find(category)
            }
    return EvalStore(client, key_by_link, chunk_sections(client), authors)


def corpus_keys(folder: Path | None = None) -> set[str]:
    """The document keys of a corpus (file stems), without storing anything."""
    if folder is None:
        return {d.key for d in load_corpus()}
    return {p.stem for p in Path(folder).rglob("*") if p.suffix.lower() in SUFFIXES}


