"""Generic ASGI middleware of the API server: API key (401) and request body size (413).

Both are plain ASGI (no request buffering): a key is checked before the body is read, and
a body is counted while it streams in, so an oversized upload is refused even without a
Content-Length header.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Callable, Collection

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def json_error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The API's error shape: `{"detail": "..."}`."""
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def credentials(scope: Scope) -> list[str]:
    """Keys a request presents: `X-API-Key`, `Authorization: Bearer`, or Basic's password."""
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    found = []
    if headers.get("x-api-key"):
        found.append(headers["x-api-key"].strip())
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        found.append(value.strip())
    elif scheme.lower() == "basic" and value.strip():
        try:
            decoded = base64.b64decode(value.strip()).decode("utf-8")
            found.append(decoded.partition(":")[2])
        except (ValueError, UnicodeDecodeError):
            pass
    return found


class ApiKeyMiddleware:
    """When `api_key()` returns a key, every path but `public_paths` needs it (constant-time
    comparison); browsers may send it as the HTTP Basic password (the playground works)."""

    def __init__(
        self, app: ASGIApp, api_key: Callable[[], str], public_paths: Collection[str]
    ) -> None:
        self.app = app
        self.api_key = api_key
        self.public_paths = frozenset(public_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = self.api_key() if scope["type"] == "http" else ""
        if not key or scope["path"] in self.public_paths:
            await self.app(scope, receive, send)
            return
        expected = key.encode("utf-8")
        if any(hmac.compare_digest(c.encode("utf-8"), expected) for c in credentials(scope)):
            await self.app(scope, receive, send)
            return
        response = json_error(
            401,
            "missing or invalid API key: send `X-API-Key: <key>` or "
            "`Authorization: Bearer <key>` (TWIN_API_KEY is set on this server)",
            headers={"WWW-Authenticate": 'Bearer, Basic realm="twin"'},
        )
        await response(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """413 for request bodies over `max_bytes()` (declared or streamed)."""

    def __init__(self, app: ASGIApp, max_bytes: Callable[[], int], setting: str) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.setting = setting

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes()
        message = f"request body too large: the limit is {limit} bytes ({self.setting})"
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    too_big = int(value) > limit
                except ValueError:
                    too_big = False
                if too_big:
                    await json_error(413, message)(scope, receive, send)
                    return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            msg = await receive()
            if msg["type"] == "http.request":
                received += len(msg.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge
            return msg

        async def tracking_send(msg: Message) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await json_error(413, message)(scope, receive, send)
