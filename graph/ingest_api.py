"""`POST /ingest`: teach the running twin new writing through the API.

    POST /ingest  {"author": "Maya Lindqvist",
                   "sources": ["https://medium.com/@maya/a-post"],          # URLs only
                   "documents": [{"title": "…", "content": "…", "category": "posts"}]}
    → 200 {"collected": {"added": 1, …}, "sync": {"new": 1, …}, "failed": [{item, reason}]}

URLs go through the same crawler dispatch as `python -m ingest add` (`ingest.collect`, the
safe fetcher: no loopback/private targets unless CRAWL_ALLOW_HOSTS lists the host, size
and time caps); local paths are refused here (the CLI reads them on this machine). Text in
hand becomes a document as `ingest.documents.document_from_text` builds it. Then the
server's vector store is synced, so the next request retrieves the new writing.

Auth: TWIN_API_KEY, or the local token of the server's store share
(`DATA_DIR/qdrant/share.json`), as `X-API-Key` or `Authorization: Bearer`; the route needs
one even when TWIN_API_KEY is unset (401 none, 403 wrong). Bounded: MAX_SOURCES URLs,
MAX_DOCUMENTS documents, SERVER_MAX_BODY_BYTES; one job at a time (429 with Retry-After
while one runs); bad bodies 422, and 422 when nothing could be collected.
"""

from __future__ import annotations

import hmac
import logging
import threading
from collections.abc import Callable
from datetime import date
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.concurrency import run_in_threadpool

from core.http_guards import credentials

log = logging.getLogger(__name__)
MAX_SOURCES = 5
MAX_DOCUMENTS = 20
MAX_DOCUMENT_CHARS = 100_000
RETRY_AFTER_S = 10
TokenGetter = Callable[[], "str | None"]


class InlineDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: str = Field(..., min_length=1, max_length=MAX_DOCUMENT_CHARS)
    title: str = Field("", max_length=300)
    category: Literal["articles", "posts"] = "posts"
    platform: str | None = Field(None, max_length=40, pattern=r"^[A-Za-z0-9][\w.-]*$")
    link: str | None = Field(None, max_length=2000, pattern=r"^https?://\S+$")
    published_at: date | None = None


class IngestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    author: str = Field(..., min_length=1, max_length=200, pattern=r"\S")
    sources: list[str] = Field(default_factory=list, max_length=MAX_SOURCES,
                               description="http(s) URLs (no local paths)")  # fmt: skip
    documents: list[InlineDocument] = Field(default_factory=list, max_length=MAX_DOCUMENTS)

    @model_validator(mode="after")
    def _check(self) -> IngestRequest:
        for source in self.sources:
            if not source.lower().startswith(("http://", "https://")) or len(source) > 2000:
                raise ValueError(
                    f"source {source[:200]!r}: only http(s) URLs (local files are added with "
                    "`python -m ingest add` on the server's machine)"
                )
        if not self.sources and not self.documents:
            raise ValueError("nothing to ingest: give `sources` (URLs) or `documents`")
        return self


def _authorize(request: Request, api_key: str, local_token: str | None) -> None:
    presented = credentials(request.scope)
    if not presented:
        raise HTTPException(
            401,
            "ingesting needs a key: TWIN_API_KEY or the server's local token "
            "(DATA_DIR/qdrant/share.json), as `X-API-Key` or `Authorization: Bearer`",
            headers={"WWW-Authenticate": "Bearer"},
        )
    accepted = [k for k in (api_key, local_token) if k]
    for given in presented:
        if any(hmac.compare_digest(given.encode("utf-8"), k.encode("utf-8")) for k in accepted):
            return
    raise HTTPException(403, "wrong key for /ingest")


def run_ingest(body: IngestRequest, client: Any) -> dict[str, Any]:
    """Collect `body` into the warehouse and sync `client`'s store (in a worker thread)."""
    from collections import Counter

    from core.domain import User
    from core.warehouse import get_warehouse
    from ingest.documents import add_sources, document_from_text, store_documents
    from ingest.features.sync import sync

    failed: list[dict[str, str]] = []

    def fail(item: str, reason: str) -> None:
        failed.append({"item": item, "reason": reason})

    author = User.from_full_name(body.author)
    counts: Counter[str] = Counter()
    if body.sources:
        report = add_sources(body.sources, author, client=client, sync_store=False, on_failure=fail)
        counts.update(report.counts)
    docs = []
    for i, doc in enumerate(body.documents):
        try:
            docs.append(document_from_text(
                doc.content, author=author.full_name, category=doc.category, title=doc.title,
                link=doc.link, platform=doc.platform, published_at=doc.published_at.isoformat()
                if doc.published_at else None,
            ))  # fmt: skip
        except ValueError as exc:
            counts["failed"] += 1
            fail(f"documents[{i}]", str(exc))
    if docs:
        stored, _ = store_documents(docs, client=client, sync_store=False)
        counts.update(stored)
    collected = {k: counts[k] for k in ("added", "updated", "unchanged", "failed")}
    if not (counts["added"] or counts["updated"] or counts["unchanged"]):
        return {"collected": collected, "sync": None, "failed": failed}
    with get_warehouse() as wh:
        synced = sync(wh, client, on_failure=fail)
    summary = {
        "new": synced.new, "changed": synced.changed, "deleted": synced.deleted,
        "unchanged": synced.unchanged, "chunks_embedded": synced.chunks_embedded,
        "chunks_deleted": synced.chunks_deleted, "failed": len(synced.failed),
    }  # fmt: skip
    return {"collected": collected, "sync": summary, "failed": failed}


def ingest_router(api_key: Callable[[], str], local_token: TokenGetter,
                  client: Callable[[], Any]) -> APIRouter:  # fmt: skip
    """The `/ingest` route: `api_key()` is TWIN_API_KEY, `local_token()` the store share's
    token (None when the server does not share one), `client()` the server's store."""
    busy = threading.Lock()

    def authorized(request: Request) -> None:  # before the body is read or checked
        _authorize(request, api_key(), local_token())

    router = APIRouter(dependencies=[Depends(authorized)])

    def job(body: IngestRequest) -> dict[str, Any]:
        try:
            return run_ingest(body, client())
        finally:
            busy.release()

    @router.post("/ingest")
    async def ingest(body: IngestRequest) -> dict[str, Any]:
        if not busy.acquire(blocking=False):
            raise HTTPException(429, "another ingest job is running: retry shortly",
                                headers={"Retry-After": str(RETRY_AFTER_S)})  # fmt: skip
        result = await run_in_threadpool(job, body)
        if result["sync"] is None:
            raise HTTPException(422, {"message": "nothing could be collected", **result})
        log.info("ingest for %s: %s", body.author, result)
        return result

    return router
