"""Small corpora for tests, stored through the production path (warehouse upsert, then
the feature sync's clean → chunk → embed) — the chunks tests search are the ones the
product makes."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from core.domain import RawDocument

_FILE_LINE = re.compile(r"^(?:#|//)\s*file:\s*(\S+)\s*$")


def raw_documents(docs: Iterable[dict[str, Any]]) -> list[RawDocument]:
    """Dicts with `content`, `author` and optional `category`, `platform`, `title`,
    `published_at`, `link` or `key` (→ `https://example.test/<key>`) as documents. A
    repository's content may start with `# file: <path>` to name its file."""
    from ingest.documents import document_from_text

    out = []
    for doc in docs:
        doc = dict(doc)
        key = doc.pop("key", None)
        if key and "link" not in doc:
            doc["link"] = f"https://example.test/{key}"
        content = doc.pop("content")
        if doc.get("category") == "repositories" and isinstance(content, str):
            first, _, rest = content.partition("\n")
            named = _FILE_LINE.match(first)
            content = {named.group(1): rest} if named else {doc.get("title") or "main.py": content}
        out.append(document_from_text(content, **doc))
    return out


def store_corpus(docs: Iterable[dict[str, Any]], **kwargs: Any) -> int:
    """Store `docs` (see `raw_documents`) in the current DATA_DIR (or the given
    `warehouse`/`client`); returns the number of chunks embedded."""
    from ingest.documents import store_documents

    _, report = store_documents(raw_documents(docs), **kwargs)
    assert report is not None and not report.failed, report
    return report.chunks_embedded
