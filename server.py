"""The twin's API: the RAG graph behind LangServe, plus health, feedback, auth and limits.

    python server.py            # uvicorn on SERVER_HOST:SERVER_PORT (127.0.0.1:8000)
    uvicorn server:app          # the same app

Routes
  /twin/invoke, /twin/batch, /twin/stream, /twin/stream_log, /twin/stream_events,
  /twin/input_schema, /twin/output_schema, /twin/config_schema, /twin/playground/
      LangServe over the graph (`graph.serving.TwinRunnable`). Input `{"messages": [{"type"|
      "role": ..., "content": ...}], "query": "..."}` (either or both; `query` is appended
      as the last user turn). Output: the answer as an AI message; `response_metadata`
      carries `answer`, `filters`, `queries`, `context` (retrieved passages with chunk
      ids), `model` (ref, backend and the version that answered). `/twin/stream` streams
      the answer token by token (then one chunk with the metadata); `/twin/stream_events`
      streams every graph/LLM event. Per-run knobs go in `config.configurable` (the graph
      Configuration: k, expand_n, max_new_tokens, …, bounded by `graph.knobs`: 422 naming
      the field); `thread_id` keeps a conversation in the server's threads (SQLite under
      DATA_DIR, or THREADS_URL), which survive a restart. The response metadata's
      `run_id` is what `/feedback` takes.
  /health    status, model (ref, backend, version), vector store counts, load (no auth; no
             filesystem paths)
  /feedback  POST {run_id, score: 0..1 | "up" | "down", comment?} → a JSONL record under
             DATA_DIR/feedback/ and an Opik feedback score on the request's trace
  /ingest    POST {author, sources: [URL…], documents: [{title, content, …}]} → collected,
             synced, retrieved by the next request (`graph.ingest_api`; TWIN_API_KEY or
             the local token)
  /store/…   the embedded vector store lent to other processes on this machine (Qdrant's
             REST subset, local token only: `retrievers.store_share`), so `ingest add`,
             `ingest sync` and `finetune watch` run while the twin serves

Serving limits: LLM_CONCURRENCY generations at once, SERVER_QUEUE_SIZE more requests
admitted (retrieval runs meanwhile), beyond that 429 with Retry-After; a request past
SERVER_REQUEST_TIMEOUT_S is stopped with 504, and a client that disconnects stops its
generation (`core.admission`). Auth: when TWIN_API_KEY is set every route but /health needs
`X-API-Key: KEY` or `Authorization: Bearer KEY` (browsers: HTTP Basic with KEY as the
password, so the playground works). Body size 413 (SERVER_MAX_BODY_BYTES), message
count/length 422. A registry promote/rollback is picked up by the next request. Nothing
loads at import: models load on first use (and in a warm-up started with the server).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from core import feedback as feedback_store
from core import tracing
from core.admission import AdmissionControl, RunGuardMiddleware
from core.http_guards import ApiKeyMiddleware, BodyLimitMiddleware, json_error
from core.settings import get_settings, settings_or_exit
from graph.api_types import LenientSerializer, reject_malformed_run_body
from graph.knobs import InvalidKnob
from graph.serving import TwinRunnable, model_status

log = logging.getLogger("twin.server")

PUBLIC_PATHS = frozenset({"/health", "/health/"})
OWN_AUTH_PREFIXES = ("/store/", "/ingest")  # their routers check TWIN_API_KEY / local token
RUN_ROUTES = frozenset({"invoke", "batch", "stream", "stream_log", "stream_events"})


class FeedbackIn(BaseModel):
    run_id: str = Field(..., min_length=1, max_length=200, description="`metadata.run_id` of /twin")
    score: float | bool | str = Field(..., description="0..1, or thumbs: 'up' / 'down'")
    comment: str | None = Field(None, max_length=4000)

    @field_validator("score")
    @classmethod
    def _score(cls, value: Any) -> float:
        return feedback_store.normalize_score(value)


def is_run_request(scope: Scope) -> bool:
    """A request that runs the graph (`/twin/invoke`, `/twin/c/<config>/stream`, …)."""
    path = scope.get("path", "")
    return (
        scope.get("method") == "POST"
        and path.startswith("/twin/")
        and path.rstrip("/").rsplit("/", 1)[-1] in RUN_ROUTES
    )


def _vector_store_status() -> dict[str, Any]:
    from core.domain import EMBEDDED_COLLECTIONS
    from retrievers.store import get_qdrant_client

    settings = get_settings()
    status: dict[str, Any] = {
        "mode": "server" if settings.QDRANT_URL else "local",
        "reachable": False,
        "counts": {},
    }
    try:
        client = get_qdrant_client()
        existing = {c.name for c in client.get_collections().collections}
        for name in EMBEDDED_COLLECTIONS.values():
            status["counts"][name] = client.count(name, exact=True).count if name in existing else 0
        status["reachable"] = True
    except Exception as exc:  # noqa: BLE001 - health reports, never raises
        # The reason may name folders or hosts: it goes to the log, not to /health.
        log.error("vector store unavailable: %s", exc)
        status["error"] = "unavailable (see the server log)"
    return status


class _ApiKeyUnlessOwnAuth(ApiKeyMiddleware):
    """TWIN_API_KEY on every route but /health and those that check keys themselves."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(OWN_AUTH_PREFIXES):
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


class _BodyLimitWithStore(BodyLimitMiddleware):
    """SERVER_MAX_BODY_BYTES, but the store share's own cap on `/store/` (a sync upserts
    a few MB of vectors in one call; only the local token opens it)."""

    def __init__(self, app: Any, max_bytes: Any, setting: str) -> None:
        from retrievers.store_api import MAX_BODY_BYTES

        super().__init__(app, max_bytes=max_bytes, setting=setting)
        self.store = BodyLimitMiddleware(app, lambda: MAX_BODY_BYTES, "the store share's cap")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/store/"):
            await self.store(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def _share_store() -> Any:
    """Lend the embedded store this server holds to other local processes (None when it
    uses QDRANT_URL, or borrows the store itself)."""
    from retrievers.store import borrowed_from, get_qdrant_client
    from retrievers.store_share import local_url, publish_share

    settings = get_settings()
    if settings.QDRANT_URL:
        return None
    try:
        get_qdrant_client()
    except Exception:  # noqa: BLE001 - already reported by the store status
        return None
    if borrowed_from() is not None:
        return None
    url = local_url(settings.SERVER_HOST, settings.SERVER_PORT)
    share = publish_share(settings.qdrant_path, url)
    log.info("vector store shared at %s/store: `ingest`, `finetune watch` can run meanwhile", url)
    return share


def _warm_up() -> None:
    """Load the graph, the LLM and the embedding model off the request path."""
    try:
        import graph  # noqa: F401  (compiles the graph)
        from core.llm import get_llm, pinned_ref
        from core.models import get_embedding_model

        get_embedding_model()
        get_llm(pinned_ref(get_settings().LLM_MODEL))
        log.info("models loaded")
    except Exception as exc:  # noqa: BLE001 - the first request will report the problem
        log.warning("warm-up failed (the first request will retry): %s", exc)


def _health_model(runnable: TwinRunnable) -> dict[str, Any]:
    """The model: the version that answered the latest request (`version`) and the one the
    next request gets (`next_version`; they differ right after a promote or rollback)."""
    upcoming = model_status()
    answered = runnable.last_model
    # The answer names the pinned ref (`registry:twin@v3`), settings the moving one
    # (`registry:twin@accepted`): the same model when they name the same registry entry.
    same = answered and str(answered.get("ref")).partition("@")[0] == upcoming["ref"].partition("@")[0]
    if same:
        return {**upcoming, "version": answered.get("version"), "next_version": upcoming["version"]}
    return {**upcoming, "next_version": upcoming["version"]}


def create_app(graph: Any = None, *, warmup: bool = True) -> FastAPI:
    """The API app. `graph`: a compiled LangGraph to serve (default: `graph.graph`); runs
    with a `thread_id` use a checkpointer opened at startup (`graph.threads`)."""
    from langserve import add_routes

    runnable = TwinRunnable(graph)
    admission = AdmissionControl(
        slots=lambda: get_settings().LLM_CONCURRENCY,
        queue_size=lambda: get_settings().SERVER_QUEUE_SIZE,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from core.telemetry import disable_third_party_telemetry
        from graph.threads import ThreadedGraph, open_checkpointer

        disable_third_party_telemetry()  # at startup, not when `server` is imported
        tracing.tracing_enabled()  # decide now: one notice in the log when off
        store = await run_in_threadpool(_vector_store_status)
        if not store["reachable"]:
            log.error("the vector store is unavailable: answers will lack context")
        app.state.store_share = await run_in_threadpool(_share_store)
        async with open_checkpointer() as saver:
            base = graph if graph is not None else await run_in_threadpool(_default_graph)
            runnable.use_graph(ThreadedGraph(base, saver))
            if warmup:
                asyncio.get_running_loop().run_in_executor(None, _warm_up)
            yield
        tracing.flush()
        from retrievers.store import close_qdrant_client
        from retrievers.store_share import withdraw_share

        if app.state.store_share is not None:
            withdraw_share(get_settings().qdrant_path, app.state.store_share)
            app.state.store_share = None
        close_qdrant_client()

    app = FastAPI(
        title="LLM Twin",
        version="0.1.0",
        description="Writes like its author: retrieval-augmented generation over their own work.",
        lifespan=lifespan,
    )
    app.state.runnable = runnable
    app.state.admission = admission
    app.state.store_share = None

    from core.llm import GenerationBusy
    from core.models import ModelNotAvailable
    from retrievers.store import VectorStoreLocked

    @app.exception_handler(VectorStoreLocked)
    @app.exception_handler(ModelNotAvailable)
    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s: %s", type(exc).__name__, exc)
        return json_error(503, "a store or model this server needs is unavailable (see its log)")

    @app.exception_handler(GenerationBusy)
    async def _busy(request: Request, exc: GenerationBusy) -> JSONResponse:
        return json_error(429, str(exc), headers={"Retry-After": str(exc.retry_after_s)})

    @app.exception_handler(InvalidKnob)
    async def _invalid(request: Request, exc: InvalidKnob) -> JSONResponse:
        return json_error(422, str(exc))

    @app.get("/health")
    async def health() -> dict[str, Any]:
        store = await run_in_threadpool(_vector_store_status)
        return {
            "status": "ok" if store["reachable"] else "degraded",
            "model": await run_in_threadpool(_health_model, runnable),
            "vector_store": store,
            "counts": store["counts"],
            "load": admission.status(),
            "tracing": tracing.tracing_enabled(),
            "auth": bool(get_settings().TWIN_API_KEY),
        }

    @app.post("/feedback")
    async def feedback(body: FeedbackIn) -> dict[str, Any]:
        run = await run_in_threadpool(feedback_store.get_run, body.run_id)
        if run is None:
            raise HTTPException(404, f"unknown run_id {body.run_id!r}: no answer served with it")
        score = float(body.score)
        opik_logged = False
        if run.get("trace_id"):
            opik_logged = await run_in_threadpool(
                tracing.log_feedback, run["trace_id"], score, body.comment
            )
        record = await run_in_threadpool(
            lambda: feedback_store.record_feedback(
                body.run_id, score, body.comment, opik_logged=opik_logged
            )
        )
        return {
            "status": "recorded",
            "run_id": body.run_id,
            "score": score,
            "opik": opik_logged,
            "trace_id": record.get("trace_id"),
        }

    from graph.ingest_api import ingest_router
    from retrievers.store import get_qdrant_client
    from retrievers.store_api import store_router

    def share() -> Any:
        return app.state.store_share

    app.include_router(store_router(share, get_qdrant_client), prefix="/store")
    app.include_router(ingest_router(lambda: get_settings().TWIN_API_KEY,
                                     lambda: share().token if share() else None,
                                     get_qdrant_client))  # fmt: skip
    add_routes(
        app,
        runnable,
        path="/twin",
        playground_type="chat",
        serializer=LenientSerializer(),
        dependencies=[Depends(reject_malformed_run_body)],
    )
    # Outermost first: the key is checked before a body is read, the body size before a
    # request is admitted, and admission before the graph runs.
    app.add_middleware(
        RunGuardMiddleware,
        admission=admission,
        guarded=is_run_request,
        timeout_s=lambda: get_settings().SERVER_REQUEST_TIMEOUT_S,
    )
    app.add_middleware(
        _BodyLimitWithStore,
        max_bytes=lambda: get_settings().SERVER_MAX_BODY_BYTES,
        setting="SERVER_MAX_BODY_BYTES",
    )
    app.add_middleware(
        _ApiKeyUnlessOwnAuth, api_key=lambda: get_settings().TWIN_API_KEY, public_paths=PUBLIC_PATHS
    )
    return app


def _default_graph() -> Any:
    from graph import graph as compiled

    return compiled


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    from retrievers.store import VectorStoreLocked, borrowed_from, get_qdrant_client

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from core.logs import quiet_noisy_libraries

    quiet_noisy_libraries()
    settings = settings_or_exit()  # a bad setting: one line and exit 2
    try:
        get_qdrant_client()  # the local store allows one process: fail clearly, early
    except VectorStoreLocked as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    lender = borrowed_from()
    if lender is not None:
        print(
            f"error: another twin server (process {lender.pid}, {lender.url}) already serves "
            f"{settings.DATA_DIR}: stop it, or give this one its own DATA_DIR",
            file=sys.stderr,
        )
        return 1
    if settings.SERVER_HOST not in ("127.0.0.1", "localhost", "::1") and not settings.TWIN_API_KEY:
        log.warning(
            "listening on %s without TWIN_API_KEY: anyone who can reach it can use it",
            settings.SERVER_HOST,
        )
    uvicorn.run(app, host=settings.SERVER_HOST, port=settings.SERVER_PORT)
    return 0


if __name__ == "__main__":
    settings_or_exit()  # create_app reads settings: a bad one is one line and exit 2
app = create_app()

if __name__ == "__main__":
    raise SystemExit(main())
