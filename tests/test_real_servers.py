"""The scale-out switches against real servers on 127.0.0.1 (each test skips, saying why,
where its server cannot run here):

- `LLM_BASE_URL` → llama.cpp's own OpenAI-compatible server (`python -m llama_cpp.server`,
  llama-cpp-python[server]) on the shipped Qwen GGUF, loaded once for the module: an answer
  through /chat/completions and /completions, streaming, a cancelled stream (the server sees
  the disconnect and serves the next request), DRY parameters, and the client's retries
  while the server is down and restarting.
- `THREADS_URL=postgresql://…` → a real PostgreSQL (Debian's, started by .ci/run, URL in
  `TWIN_TEST_POSTGRES_URL`): two `python server.py` processes started together on one
  fresh schema; a thread started through one continues through the other and back.

No assertion depends on how fast anything runs; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from support.real_servers import (
    LlamaCppServer,
    TwinServerProcess,
    llama_server_importable,
    postgres_url,
)
from support.twin_server import FAST_CONFIG, SHARED_MODELS_CACHE, seed_corpus

pytestmark = pytest.mark.slow

ALIAS = "twin-qwen"  # the name the llama.cpp server lists under /v1/models
MESSAGES = [{"role": "user", "content": "Name three colours."}]
LONG = [{"role": "user", "content": "Write a long essay about the history of the bicycle."}]
DISCONNECTED = "Disconnected from client"  # llama_cpp.server's line for a client gone


# --------------------------------------------------------------------------- LLM_BASE_URL
def _shipped_gguf() -> Path:
    """The default Qwen GGUF, assembled from its data packages into the shared cache."""
    from core.models import ModelNotAvailable, offline_llm_gguf
    from core.settings import OFFLINE_QWEN, reset_settings

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MODELS_CACHE_DIR", str(SHARED_MODELS_CACHE))
        reset_settings()
        try:
            return offline_llm_gguf(OFFLINE_QWEN)
        except ModelNotAvailable as exc:
            pytest.skip(f"the shipped GGUF is not installed: {exc}")
        finally:
            reset_settings()


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaCppServer]:
    why = llama_server_importable()
    if why:
        pytest.skip(why)
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    server = LlamaCppServer(_shipped_gguf(), ALIAS, log)
    server.start()
    try:
        server.wait_ready(timeout=300)
        yield server
    finally:
        server.stop()


def _use_server(
    monkeypatch: pytest.MonkeyPatch, url: str, retries: int = 3, backoff_s: float = 0.2
) -> Any:
    """Our client (get_llm through the settings a user sets) pointed at `url`."""
    from core.llm import clear_llm_cache, get_llm
    from core.settings import reset_settings

    monkeypatch.setenv("LLM_BASE_URL", f"{url}/v1")
    monkeypatch.setenv("LLM_RETRIES", str(retries))
    monkeypatch.setenv("LLM_RETRY_BACKOFF_S", str(backoff_s))
    for var in ("LLM_MODEL", "LLM_BACKEND", "LLM_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    reset_settings()
    clear_llm_cache()
    return get_llm()


@pytest.fixture
def remote(
    llama_server: LlamaCppServer, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    from core.llm import clear_llm_cache

    yield _use_server(monkeypatch, llama_server.url)
    clear_llm_cache()


def _wait_for_disconnects(server: LlamaCppServer, count: int) -> bool:
    """Whether the server logs its `count`-th client disconnect within a bounded wait."""
    for _ in range(600):
        if server.log_text().count(DISCONNECTED) >= count:
            return True
        time.sleep(0.1)
    return False


def test_answers_through_the_llama_cpp_server(remote: Any) -> None:
    assert remote.backend == "openai"
    # LLM_MODEL left at its default (a registry ref): the name is the server's first model.
    assert remote.model == ALIAS
    chat = remote.generate(MESSAGES, max_new_tokens=24, temperature=0.0)  # /chat/completions
    assert chat.strip()
    assert "<|im_" not in chat  # the server applied the GGUF's chat template
    code = remote.generate("def add(a, b):\n    return", max_new_tokens=8, temperature=0.0)
    assert code.strip()  # /completions
    assert not remote.busy


async def test_answers_stream_piece_by_piece(remote: Any) -> None:
    pieces = list(remote.stream(MESSAGES, max_new_tokens=24, temperature=0.0))
    assert len(pieces) >= 3 and "".join(pieces).strip()
    apieces = [p async for p in remote.astream(MESSAGES, max_new_tokens=24, temperature=0.0)]
    assert len(apieces) >= 3 and "".join(apieces).strip()
    assert not remote.busy


def test_a_cancelled_stream_frees_the_server_for_the_next_request(
    remote: Any, llama_server: LlamaCppServer
) -> None:
    from core.llm.base import GenerationRun

    seen = llama_server.log_text().count(DISCONNECTED)
    run = GenerationRun()
    stream = remote.stream(LONG, max_new_tokens=400, temperature=0.0, run=run)
    pieces = [next(stream) for _ in range(3)]
    run.cancel.set()  # as the server does when its client goes away
    pieces += list(stream)
    assert len(pieces) <= 4  # stopped at the next token, not after 400
    assert not remote.busy
    # The HTTP stream was closed: llama.cpp's server noticed and stopped decoding …
    assert _wait_for_disconnects(llama_server, seen + 1), llama_server.log_tail()
    # … and answers the next request in full.
    assert remote.generate(MESSAGES, max_new_tokens=16, temperature=0.0).strip()


async def test_a_cancelled_async_stream_frees_the_server(
    remote: Any, llama_server: LlamaCppServer
) -> None:
    seen = llama_server.log_text().count(DISCONNECTED)
    started = asyncio.Event()
    pieces: list[str] = []

    async def consume() -> None:
        async for piece in remote.astream(LONG, max_new_tokens=400, temperature=0.0):
            pieces.append(piece)
            if len(pieces) == 3:
                started.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(started.wait(), timeout=300)
    task.cancel()  # a request handler cancelled mid-answer
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(pieces) < 400 and not remote.busy
    assert await asyncio.to_thread(_wait_for_disconnects, llama_server, seen + 1)
    answer = [p async for p in remote.astream(MESSAGES, max_new_tokens=16, temperature=0.0)]
    assert "".join(answer).strip()


def test_dry_parameters_are_ignored_by_this_server_and_do_not_break_it(remote: Any) -> None:
    from llama_cpp.server.types import CreateChatCompletionRequest, CreateCompletionRequest

    # llama_cpp.server 0.3.36 has no DRY sampler fields (llama.cpp's C++ llama-server does).
    fields = {*CreateChatCompletionRequest.model_fields, *CreateCompletionRequest.model_fields}
    assert not {f for f in fields if f.startswith("dry")}, "DRY fields now accepted: use them"
    # A request carrying llama.cpp's DRY fields is answered (unknown fields ignored, no 422).
    dry = {"dry_multiplier": 0.8, "dry_base": 1.75, "dry_allowed_length": 2,
           "dry_penalty_last_n": -1, "dry_sequence_breakers": ["\n"]}  # fmt: skip
    response = httpx.post(
        f"{remote.base_url}/chat/completions",
        json={"model": ALIAS, "messages": MESSAGES, "max_tokens": 8, **dry},
        timeout=300,
    )
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"].strip()
    # Our client: Qwen's tuned DRY default (0.8) does not break a remote answer.
    assert remote.defaults.dry_multiplier > 0
    assert remote.generate(MESSAGES, max_new_tokens=16, dry_multiplier=0.8).strip()


def test_the_client_waits_for_a_restarting_server(
    llama_server: LlamaCppServer,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Last in the module: it restarts the shared server (one more model load)."""
    from core.llm import LLMError, clear_llm_cache

    llama_server.stop()
    try:
        # Down: refused connections are retried, then reported with the number of tries.
        down = _use_server(monkeypatch, llama_server.url, retries=2, backoff_s=0.05)
        with caplog.at_level(logging.WARNING, logger="core.llm.remote"):
            with pytest.raises(LLMError, match="unreachable after 2 tries"):
                down.generate(MESSAGES, max_new_tokens=8)
        assert any("trying again" in r.getMessage() for r in caplog.records)
        # Restarting (the port refuses while the model loads): a fresh client, asked at
        # once, keeps trying (0.25 s doubling, 12 tries: bounded at about 2.5 minutes) and
        # gets the answer and the served model's name once the server is up.
        llama_server.start()
        waiting = _use_server(monkeypatch, llama_server.url, retries=12, backoff_s=0.25)
        assert waiting.generate(MESSAGES, max_new_tokens=16, temperature=0.0).strip()
        assert waiting.model == ALIAS
    finally:
        clear_llm_cache()
        llama_server.wait_ready(timeout=300)  # left running for the fixture to stop


# --------------------------------------------------------------------------- THREADS_URL
def _with_search_path(url: str, schema: str) -> str:
    """`url` with every connection's search_path set to `schema` (libpq `options`)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "options"]
    query.append(("options", f"-csearch_path={schema}"))
    return urlunsplit(parts._replace(query=urlencode(query)))


@pytest.fixture
def threads_url() -> Iterator[str]:
    """A fresh schema of the test PostgreSQL, dropped afterwards (the tables are created by
    the servers themselves, as on a new deployment)."""
    url, why = postgres_url()
    if not url:
        pytest.skip(why)
    try:
        import langgraph.checkpoint.postgres  # noqa: F401
    except ImportError:
        pytest.skip("langgraph-checkpoint-postgres is not installed: pip install -e '.[postgres]'")
    import psycopg

    schema = f"twin_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield _with_search_path(url, schema)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _seeded_data_dir(path: Path) -> Path:
    """A DATA_DIR with the small test corpus in its own embedded stores (closed after)."""
    from core.settings import reset_settings
    from retrievers.store import close_qdrant_client

    with pytest.MonkeyPatch.context() as mp:
        for var in ("MONGODB_URI", "QDRANT_URL", "QDRANT_API_KEY", "LLM_BASE_URL"):
            mp.delenv(var, raising=False)
        mp.setenv("DATA_DIR", str(path))
        mp.setenv("MODELS_CACHE_DIR", str(SHARED_MODELS_CACHE))
        close_qdrant_client()
        reset_settings()
        try:
            seed_corpus()
        finally:
            close_qdrant_client()
            reset_settings()
    return path


def _turn(server: TwinServerProcess, query: str, thread_id: str) -> str:
    config = {"configurable": {**FAST_CONFIG["configurable"], "thread_id": thread_id}}
    response = httpx.post(
        f"{server.url}/twin/invoke",
        json={"input": {"query": query}, "config": config},
        timeout=600,
    )
    assert response.status_code == 200, f"{response.text}\n{server.log_tail()}"
    return response.json()["output"]["content"]


async def _thread_messages(url: str, thread_id: str) -> list[Any]:
    from graph.threads import open_checkpointer

    async with open_checkpointer(url) as saver:
        latest = await saver.aget_tuple({"configurable": {"thread_id": thread_id}})
        assert latest is not None, "the thread is not in PostgreSQL"
        return list(latest.checkpoint["channel_values"]["messages"])


def test_two_server_processes_share_threads_through_postgres(
    tmp_path: Path, threads_url: str
) -> None:
    first = _seeded_data_dir(tmp_path / "a" / "data")
    second = tmp_path / "b" / "data"
    shutil.copytree(first, second)  # same corpus, each server its own embedded store
    servers = [
        TwinServerProcess(data, SHARED_MODELS_CACHE, data.parent / "server.log", THREADS_URL=threads_url)
        for data in (first, second)
    ]  # fmt: skip
    try:
        # Started together on a schema with no tables: both set it up at the same moment.
        for server in servers:
            server.start()
        for server in servers:
            server.wait_ready(timeout=600)
        a, b = servers
        thread = f"shared-{uuid.uuid4().hex[:8]}"
        queries = [
            "Write a post about shipping on Fridays",
            "Make it shorter.",
            "Now end it with a question.",
        ]
        answers = [_turn(a, queries[0], thread), _turn(b, queries[1], thread)]
        answers.append(_turn(a, queries[2], thread))  # A sees B's turn too
    finally:
        for server in servers:
            server.stop()
    stored = asyncio.run(_thread_messages(threads_url, thread))
    # One history, written by two processes: each turn found the turns before it.
    assert [m.type for m in stored] == ["human", "ai"] * 3
    assert [m.content for m in stored[::2]] == queries
    assert [m.content.strip() for m in stored[1::2]] == [x.strip() for x in answers]


def test_savers_opened_together_on_a_fresh_database_all_start(threads_url: str) -> None:
    """Server processes starting at once each set the database up (tables, migrations);
    without graph/threads.py's setup lock all but one failed with UniqueViolation."""
    from graph.threads import open_checkpointer

    async def open_and_count() -> int:
        async with open_checkpointer(threads_url) as saver:
            return len([c async for c in saver.alist(None, limit=1)])

    async def together() -> list[int]:
        return await asyncio.gather(*(open_and_count() for _ in range(4)))

    assert asyncio.run(together()) == [0, 0, 0, 0]
