"""core/llm/remote.py retries against a scripted OpenAI-compatible server on 127.0.0.1:
a busy or restarting server is asked again before the first token, never after it."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

MESSAGES = [{"role": "user", "content": "Name three colours."}]
WORDS = ["Red", ",", " green", " and", " blue", "."]
ANSWER = "".join(WORDS)


class _ScriptedServer(BaseHTTPRequestHandler):
    """Answers each POST with the next step of `script`; the last step repeats.

    A step is "ok" (the whole answer as SSE), "cut" (one token, then the connection drops
    mid-body), or an error status, optionally with a Retry-After: (503, "1")."""

    script: list[object] = ["ok"]
    posts: list[float] = []  # arrival times

    def log_message(self, *args: object) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:  # noqa: N802
        self._send_json(200, {"object": "list", "data": [{"id": "scripted"}]})

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        step_index = min(len(self.posts), len(self.script) - 1)
        self.posts.append(time.monotonic())
        step = self.script[step_index]
        if step == "ok":
            self._stream(WORDS)
        elif step == "cut":
            self._stream(WORDS[:1], declared_length=10_000)
        else:
            status, retry_after = step if isinstance(step, tuple) else (step, None)
            self._send_json(int(status), {"error": f"status {status}"}, retry_after)

    def _send_json(self, status: int, body: dict, retry_after: str | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if retry_after is not None:
            self.send_header("Retry-After", retry_after)
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, words: list[str], declared_length: int | None = None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        if declared_length is not None:  # more than is sent: the client sees a broken body
            self.send_header("Content-Length", str(declared_length))
        self.end_headers()
        for word in words:
            event = {"choices": [{"index": 0, "delta": {"content": word}}]}
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
            self.wfile.flush()
        if declared_length is None:
            self.wfile.write(b"data: [DONE]\n\n")
        else:
            self.close_connection = True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(port: int = 0) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", port), _ScriptedServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _use_server(
    monkeypatch: pytest.MonkeyPatch, port: int, retries: int = 3, backoff_s: float = 0.01
) -> None:
    from core.llm import clear_llm_cache
    from core.settings import reset_settings

    monkeypatch.setenv("LLM_BASE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("LLM_RETRIES", str(retries))
    monkeypatch.setenv("LLM_RETRY_BACKOFF_S", str(backoff_s))
    reset_settings()
    clear_llm_cache()


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> Iterator[type[_ScriptedServer]]:
    from core.llm import clear_llm_cache

    _ScriptedServer.script = ["ok"]
    _ScriptedServer.posts = []
    server = _serve()
    _use_server(monkeypatch, server.server_port)
    yield _ScriptedServer
    server.shutdown()
    server.server_close()
    clear_llm_cache()


def _llm():
    from core.llm import get_llm

    return get_llm("scripted")


async def _astream_all(pieces: list[str]) -> None:
    async for piece in _llm().astream(MESSAGES, max_new_tokens=16):
        pieces.append(piece)


def test_busy_server_is_asked_again_until_it_answers(scripted) -> None:
    scripted.script = [503, 429, "ok"]
    assert _llm().generate(MESSAGES, max_new_tokens=16) == ANSWER
    assert len(scripted.posts) == 3


async def test_async_path_retries_a_busy_server(scripted) -> None:
    scripted.script = [502, "ok"]
    pieces: list[str] = []
    await _astream_all(pieces)
    assert "".join(pieces) == ANSWER
    assert len(scripted.posts) == 2


def test_persistent_503_fails_after_the_configured_tries(scripted, monkeypatch) -> None:
    from core.llm import LLMError, clear_llm_cache
    from core.settings import reset_settings

    monkeypatch.setenv("LLM_RETRIES", "4")
    reset_settings()
    clear_llm_cache()
    scripted.script = [503]
    with pytest.raises(LLMError) as err:
        _llm().generate(MESSAGES, max_new_tokens=16)
    message = str(err.value)
    assert "HTTP 503 after 4 tries" in message
    assert f"{_llm().base_url}/chat/completions" in message and "status 503" in message
    assert len(scripted.posts) == 4


async def test_async_path_gives_up_with_the_same_message(scripted) -> None:
    from core.llm import LLMError

    scripted.script = [504]
    with pytest.raises(LLMError, match="HTTP 504 after 3 tries"):
        await _astream_all([])
    assert len(scripted.posts) == 3


@pytest.mark.parametrize("status", [400, 500])
def test_other_errors_are_not_retried(scripted, status: int) -> None:
    from core.llm import LLMError

    scripted.script = [status, "ok"]
    with pytest.raises(LLMError, match=f"HTTP {status}: ") as err:
        _llm().generate(MESSAGES, max_new_tokens=16)
    assert "tries" not in str(err.value)
    assert len(scripted.posts) == 1


def test_retry_after_is_honoured(scripted) -> None:
    scripted.script = [(429, "1"), "ok"]
    assert _llm().generate(MESSAGES, max_new_tokens=16) == ANSWER
    first, second = scripted.posts
    assert second - first >= 0.9  # the server's 1 s, not the 0.01 s back-off


def test_failure_after_the_first_token_is_not_retried(scripted) -> None:
    from core.llm import LLMError

    scripted.script = ["cut", "ok"]
    pieces: list[str] = []
    with pytest.raises(LLMError, match="unreachable"):
        for piece in _llm().stream(MESSAGES, max_new_tokens=16):
            pieces.append(piece)
    assert pieces == WORDS[:1]  # the token already given is not repeated
    assert len(scripted.posts) == 1


async def test_async_failure_after_the_first_token_is_not_retried(scripted) -> None:
    from core.llm import LLMError

    scripted.script = ["cut", "ok"]
    pieces: list[str] = []
    with pytest.raises(LLMError, match="unreachable"):
        await _astream_all(pieces)
    assert pieces == WORDS[:1]
    assert len(scripted.posts) == 1


def test_restarting_server_is_waited_for(data_dir: Path, monkeypatch) -> None:
    """Connection refused at first; the server comes up while the client backs off."""
    from core.llm import clear_llm_cache, get_llm

    _ScriptedServer.script = ["ok"]
    _ScriptedServer.posts = []
    port = _free_port()
    _use_server(monkeypatch, port, retries=8, backoff_s=0.05)  # waits 0.05, 0.1, 0.2, 0.4, …
    started: list[ThreadingHTTPServer] = []
    timer = threading.Timer(0.3, lambda: started.append(_serve(port)))
    timer.start()
    try:
        assert get_llm("scripted").generate(MESSAGES, max_new_tokens=16) == ANSWER
        assert len(_ScriptedServer.posts) == 1
    finally:
        timer.join()
        for server in started:
            server.shutdown()
            server.server_close()
        clear_llm_cache()


def test_unreachable_server_fails_after_the_configured_tries(data_dir: Path, monkeypatch) -> None:
    from core.llm import LLMError, clear_llm_cache, get_llm

    _use_server(monkeypatch, _free_port(), retries=2)
    try:
        with pytest.raises(LLMError, match=r"unreachable after 2 tries"):
            get_llm("scripted").generate(MESSAGES, max_new_tokens=16)
    finally:
        clear_llm_cache()
