"""LangGraph Studio's local API: `langgraph dev` loads langgraph.json's "twin" graph and a
`langgraph_sdk` client creates a thread, streams a run and continues the conversation."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_langgraph_json_registers_the_twin_graph() -> None:
    config = json.loads((ROOT / "langgraph.json").read_text())
    assert config["graphs"] == {"twin": "./graph/builder.py:graph"}
    assert config["dependencies"] == ["."]


@pytest.fixture
def studio(data_dir: Path, tmp_path: Path):
    from support.corpus import store_corpus

    from core.domain import User
    from core.warehouse import get_warehouse
    from retrievers.store import close_qdrant_client

    store_corpus([{
        "content": "Retrieval-augmented generation grounds an LLM in your own documents: "
                   "chunk, embed, search, then generate.",
        "author": "Paul Iusztin",
        "category": "posts",
        "title": "RAG in one post",
    }])  # fmt: skip
    with get_warehouse() as wh:
        wh.upsert("users", User.from_full_name("Paul Iusztin").model_dump(by_alias=True))
    close_qdrant_client()  # local Qdrant: one process per folder — hand it to the server

    binary = Path(sys.executable).parent / "langgraph"
    if not binary.exists():
        pytest.skip("langgraph CLI not installed in this environment")
    port = _free_port()
    env = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "LANGGRAPH_NO_VERSION_CHECK": "true",
        "LANGSMITH_TRACING": "false",
    }
    log = (tmp_path / "langgraph-dev.log").open("wb")
    proc = subprocess.Popen(
        [str(binary), "dev", "--no-browser", "--no-reload", "--port", str(port),
         "--config", str(ROOT / "langgraph.json")],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            if proc.poll() is not None:
                pytest.fail("langgraph dev exited:\n" + (tmp_path / "langgraph-dev.log").read_text()[-3000:])
            try:
                if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("langgraph dev did not start in 240 s")
            time.sleep(1)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


async def test_studio_api_runs_the_graph(studio: str) -> None:
    from langgraph_sdk import get_client

    client = get_client(url=studio)
    assistants = await client.assistants.search(graph_id="twin")
    assert assistants and assistants[0]["graph_id"] == "twin"
    thread = await client.threads.create()
    config = {"configurable": {"max_new_tokens": 12, "temperature": 0, "expand_n": 0}}
    events: list[str] = []
    tokens = 0
    final: dict = {}
    async for part in client.runs.stream(
        thread["thread_id"],
        "twin",
        input={"messages": [{"role": "user", "content": "I am Paul Iusztin. Write a post about RAG"}]},
        config=config,
        stream_mode=["values", "messages-tuple"],
    ):
        events.append(part.event)
        if part.event == "values":
            final = part.data
        elif part.event == "messages" and part.data[1].get("langgraph_node") == "generate":
            tokens += 1
    assert "error" not in events, events
    assert isinstance(final.get("answer"), str) and final["answer"]
    assert final["filters"]["author"] == "Paul Iusztin"
    assert final["context"] and final["queries"]
    assert tokens > 1  # the answer streamed token by token

    # Same thread: the platform's persistence keeps the conversation.
    result = await client.runs.wait(
        thread["thread_id"], "twin", input={"query": "Shorter, please."}, config=config
    )
    assert [m["type"] for m in result["messages"]] == ["human", "ai", "human", "ai"]
