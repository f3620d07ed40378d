"""The shared store's HTTP face: the part of Qdrant's REST API this project's code calls,
served by the process that holds the embedded store (`retrievers.store_share`).

`store_router(share, client)` is mounted at `/store` by the API server. qdrant-client's
REST client (what `QDRANT_URL` uses) talks to it unchanged: collections (list, exists, get,
create, delete), payload indexes, upsert, delete, count, scroll, retrieve, query and query
batch. Bodies parse into qdrant-client's own `models` and go to the holder's client, so the
engine, its WAL and the server's readers all see one store. Every request needs the share's
token in `api-key` (the local token; TWIN_API_KEY does not open it): 401 without, 403 wrong.
Bad bodies get 422, unknown collections 404, Qdrant-style `{"status": {"error": …}}`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter, ValidationError
from qdrant_client.http import models
from starlette.concurrency import run_in_threadpool

from retrievers.store_share import StoreShare

log = logging.getLogger(__name__)
ShareGetter = Callable[[], "StoreShare | None"]
ClientGetter = Callable[[], Any]
_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}
MAX_BODY_BYTES = 128 * 1024 * 1024  # a sync's upsert of 256 chunks is ~2.5 MB


def _ok(result: Any, started: float) -> JSONResponse:
    body = {"result": _plain(result), "status": "ok", "time": time.perf_counter() - started}
    return JSONResponse(body)


def _plain(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"status": {"error": message}, "time": 0.0}, status_code=status)


async def _body(request: Request, kind: Any) -> Any:
    adapter = _ADAPTERS.get(kind)
    if adapter is None:
        adapter = _ADAPTERS[kind] = TypeAdapter(kind)
    try:
        return adapter.validate_json(await request.body())
    except ValidationError as exc:
        raise HTTPException(422, f"bad request body: {exc.errors(include_url=False)[:3]}") from None


def store_router(share: ShareGetter, client: ClientGetter) -> APIRouter:
    """The `/store` routes over `client()` (the holder's store), opened by `share()`'s token."""

    def authorized(api_key: str | None = Header(None, alias="api-key")) -> None:
        current = share()
        if current is None:
            raise HTTPException(404, "this server does not share a vector store")
        if not api_key:
            raise HTTPException(401, "the shared store needs its token in `api-key` "
                                     "(DATA_DIR/qdrant/share.json)")  # fmt: skip
        if not current.accepts(api_key):
            raise HTTPException(403, "wrong token for the shared store")

    router = APIRouter(dependencies=[Depends(authorized)], include_in_schema=False)

    async def run(call: Callable[[], Any]) -> JSONResponse:
        started = time.perf_counter()
        try:
            result = await run_in_threadpool(call)
        except ValueError as exc:  # EdgeClient: unknown / existing collection, bad request
            status = 404 if "not found" in str(exc) else 400
            return _error(status, str(exc))
        except Exception as exc:  # noqa: BLE001 - the engine's failure, reported to the caller
            log.exception("shared store request failed")
            return _error(500, f"{type(exc).__name__}: {exc}")
        return _ok(result, started)

    @router.get("/collections")
    async def collections() -> JSONResponse:
        return await run(lambda: client().get_collections())

    @router.get("/collections/{name}/exists")
    async def exists(name: str) -> JSONResponse:
        return await run(
            lambda: models.CollectionExistence(exists=client().collection_exists(name))
        )

    @router.get("/collections/{name}")
    async def get_collection(name: str) -> JSONResponse:
        return await run(lambda: client().get_collection(name))

    @router.put("/collections/{name}")
    async def create_collection(name: str, request: Request) -> JSONResponse:
        body = await _body(request, models.CreateCollection)
        return await run(lambda: client().create_collection(
            name, vectors_config=body.vectors, sparse_vectors_config=body.sparse_vectors
        ))  # fmt: skip

    @router.delete("/collections/{name}")
    async def delete_collection(name: str) -> JSONResponse:
        return await run(lambda: client().delete_collection(name))

    def updated() -> models.UpdateResult:
        return models.UpdateResult(operation_id=0, status=models.UpdateStatus.COMPLETED)

    @router.put("/collections/{name}/index")
    async def create_index(name: str, request: Request) -> JSONResponse:
        body = await _body(request, models.CreateFieldIndex)

        def call() -> models.UpdateResult:
            client().create_payload_index(name, body.field_name, field_schema=body.field_schema)
            return updated()

        return await run(call)

    @router.put("/collections/{name}/points")
    async def upsert(name: str, request: Request) -> JSONResponse:
        body = await _body(request, models.PointInsertOperations)
        if not isinstance(body, models.PointsList):
            raise HTTPException(422, "send points as a list (`points`), not as a batch")

        def call() -> models.UpdateResult:
            client().upsert(name, points=body.points)
            return updated()

        return await run(call)

    @router.post("/collections/{name}/points/delete")
    async def delete(name: str, request: Request) -> JSONResponse:
        body = await _body(request, models.PointsSelector)

        def call() -> models.UpdateResult:
            client().delete(name, points_selector=body)
            return updated()

        return await run(call)

    @router.post("/collections/{name}/points/count")
    async def count(name: str, request: Request) -> JSONResponse:
        body = await _body(request, models.CountRequest)
        return await run(lambda: client().count(name, count_filter=body.filter))

    @router.post("/collections/{name}/points/scroll")
    async def scroll(name: str, request: Request) -> JSONResponse:
        body = await _body(request, models.ScrollRequest)

        def call() -> models.ScrollResult:
            points, offset = client().scroll(
                name, scroll_filter=body.filter, limit=body.limit or 10, offset=body.offset,
                with_payload=body.with_payload if body.with_payload is not None else True,
                with_vectors=body.with_vector or False,
            )  # fmt: skip
            return models.ScrollResult(points=points, next_page_offset=offset)

        return await run(call)

    @router.post("/collections/{name}/points")
    async def retrieve(name: str, request: Request) -> JSONResponse:
        body = await _body(request, models.PointRequest)
        return await run(lambda: client().retrieve(
            name, body.ids,
            with_payload=body.with_payload if body.with_payload is not None else True,
            with_vectors=body.with_vector or False,
        ))  # fmt: skip

    @router.post("/collections/{name}/points/query")
    async def query(name: str, request: Request) -> JSONResponse:
        body = await _body(request, models.QueryRequest)
        return await run(lambda: client().query_batch_points(name, [body])[0])

    @router.post("/collections/{name}/points/query/batch")
    async def query_batch(name: str, request: Request) -> JSONResponse:
        body = await _body(request, models.QueryRequestBatch)
        return await run(lambda: client().query_batch_points(name, body.searches))

    return router
