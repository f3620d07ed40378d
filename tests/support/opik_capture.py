"""A stand-in Opik backend on 127.0.0.1 that records every REST call the SDK makes.

Point the SDK at it with `OPIK_URL_OVERRIDE=<capture.url>/api/`; the calls land in
`capture.calls` as (method, path, json body). Answers just enough for the SDK to carry on
(`/api/is-alive/ping`, project look-ups; everything else 204/200 with `{}`).
"""

from __future__ import annotations

import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Handler(BaseHTTPRequestHandler):
    server: _CaptureHTTPServer

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.headers.get("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        if not raw:
            return None
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return {"_raw": raw[:200].decode("latin-1")}

    def _answer(self, status: int, payload: Any = None) -> None:
        data = json.dumps(payload if payload is not None else {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        body = self._body()
        path = self.path.split("?", 1)[0]
        with self.server.lock:
            self.server.calls.append((self.command, path, body))
        if path.endswith("/is-alive/ping"):
            self._answer(200, {"healthy": True})
        elif self.command == "GET" and "/projects" in path:
            self._answer(200, {"content": [], "page": 1, "size": 0, "total": 0})
        elif self.command == "GET":
            self._answer(200, {})
        else:
            self._answer(204 if self.command in ("PATCH", "PUT") else 201)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle


class _CaptureHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.calls: list[tuple[str, str, Any]] = []
        self.lock = threading.Lock()


class OpikCapture:
    def __init__(self) -> None:
        self.httpd = _CaptureHTTPServer()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def calls(self) -> list[tuple[str, str, Any]]:
        with self.httpd.lock:
            return list(self.httpd.calls)

    def bodies(self, method: str, path_suffix: str) -> list[Any]:
        return [b for m, p, b in self.calls if m == method and p.endswith(path_suffix)]

    def __enter__(self) -> OpikCapture:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
