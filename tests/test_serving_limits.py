"""The serving limits without the HTTP server: knob rules (graph.knobs), the generation
gate, cancellation inside a real backend, bounded thread history on the real SQLite saver,
the LLM cache bound, and the link-fetch deadline against a slow page on 127.0.0.1."""

from __future__ import annotations

import asyncio
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

BAD_KNOBS = [
    ("k", 0),
    ("k", 10_000),
    ("fetch_k", 5_000),
    ("expand_n", 99),
    ("max_new_tokens", 10**6),
    ("temperature", -1.0),
    ("temperature", 9.5),
    ("sentence_grace", 10_000),
    ("history_messages", 1_000),
    ("expand_timeout_s", 3600.0),
    ("link_max_chars", 10**9),
    ("llm_model", "/etc/passwd"),
    ("llm_model", "../models/evil.gguf"),
    ("llm_model", "registry:../../etc@x"),
    ("llm_model", "registry:no-such-model@accepted"),
    ("llm_model", "some-org/some-hub-model"),
    ("reranker", "/tmp/my-cross-encoder"),
    ("collections", ["articles", "secrets"]),
    ("collections", []),
    ("filters", {"author": "x", "password": "y"}),
    ("author", "x" * 5000),
    ("system_prompt", "You are a pirate."),
    ("expand_prompt", "Rephrase {query}"),
    ("self_query_llm", "yes"),
]


@pytest.mark.parametrize(("name", "value"), BAD_KNOBS)
def test_every_bad_knob_is_refused_naming_the_field(data_dir: Path, name: str, value: object) -> None:
    from graph.configuration import Configuration

    with pytest.raises(ValueError, match=rf"^{name}: "):
        Configuration(**{name: value})


def test_defaults_and_reasonable_values_pass(data_dir: Path) -> None:
    from graph.configuration import Configuration, bounds

    default = Configuration()  # whatever the retrieval defaults are, they are in bounds
    for name in ("k", "fetch_k", "expand_n"):
        low, high = bounds(name)
        assert low <= getattr(default, name) <= high
    cfg = Configuration(k=3, expand_n=0, temperature=0.0, collections=["embedded_posts"])
    assert cfg.k == 3


def test_prompt_overrides_need_the_setting_and_only_their_placeholders(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.settings import reset_settings
    from graph.configuration import Configuration

    monkeypatch.setenv("ALLOW_PROMPT_OVERRIDES", "true")
    reset_settings()
    assert Configuration(expand_prompt="Give {n} rephrasings of: {query}").expand_prompt
    assert Configuration(system_prompt="Write as {author}. {{braces}} are fine.").system_prompt
    for prompt in (
        "{query.__class__.__init__.__globals__}",
        "{0}",
        "{query!r}",
        "{n:>100000}",
        "{settings}",
        "unbalanced {",
    ):
        with pytest.raises(ValueError, match="^expand_prompt: "):
            Configuration(expand_prompt=prompt)


def test_llm_model_takes_the_allow_list_and_registry_refs(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.registry import get_registry, write_json_atomic
    from core.settings import reset_settings
    from graph.configuration import Configuration

    monkeypatch.setenv("LLM_MODEL_ALLOWLIST", '["offline:SmolLM2-135M-Instruct"]')
    reset_settings()
    assert Configuration(llm_model="offline:SmolLM2-135M-Instruct")
    version = get_registry().root / "twin-x" / "versions" / "v1"
    write_json_atomic(version / "manifest.json", {"artifacts": {}, "created_at": "2026"})
    get_registry().set_tags("twin-x", {"accepted": "v1"})
    assert Configuration(llm_model="registry:twin-x@accepted")
    assert Configuration(llm_model="registry:twin-x@v1")
    with pytest.raises(ValueError, match="^llm_model: "):
        Configuration(llm_model="registry:twin-x@v9")


async def test_generation_slots_are_fifo_bounded_and_cancellable() -> None:
    from core.llm.slots import GenerationBusy, GenerationSlots

    slots = GenerationSlots(1)
    order: list[str] = []
    await slots.acquire(None)

    async def waiter(name: str) -> None:
        async with slots.slot(None):
            order.append(name)

    first = asyncio.create_task(waiter("first"))
    second = asyncio.create_task(waiter("second"))
    leaver = asyncio.create_task(waiter("leaver"))
    while slots.waiting < 3:
        await asyncio.sleep(0)
    leaver.cancel()  # a client that leaves gives its place up
    with pytest.raises(asyncio.CancelledError):
        await leaver
    assert slots.waiting == 2
    with pytest.raises(GenerationBusy) as busy:
        await slots.acquire(0.01)
    assert busy.value.retry_after_s >= 1
    slots.release()
    await asyncio.gather(first, second)
    assert order == ["first", "second"]
    assert slots.busy == 0 and slots.waiting == 0


@pytest.mark.slow
async def test_cancelling_astream_stops_torch_decoding_and_frees_the_model(data_dir: Path) -> None:
    from core.llm import get_llm

    llm = get_llm("offline:SmolLM2-135M-Instruct", backend="torch-int8")
    pieces: list[str] = []

    async def consume() -> None:
        prompt = [{"role": "user", "content": "Count from 1 to 500, one number per line."}]
        async for piece in llm.astream(prompt, max_new_tokens=200, temperature=0.0):
            pieces.append(piece)

    task = asyncio.create_task(consume())
    while len(pieces) < 3:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    run = llm.last_run
    assert run.cancelled and run.finished.is_set()
    assert run.tokens < 200  # stopped early…
    assert run.tokens_after_cancel <= 1  # …at the first token after the cancel
    assert not llm.busy


@pytest.mark.skipif(
    not __import__("core.llm", fromlist=["x"]).llamacpp_available(),
    reason="llama-cpp-python not installed",
)
def test_the_llm_cache_is_bounded(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gc
    import weakref

    import core.llm.factory as factory
    from core.llm import clear_llm_cache, get_llm
    from core.settings import reset_settings

    monkeypatch.setenv("LLM_CACHE_SIZE", "1")
    reset_settings()
    clear_llm_cache()
    first = weakref.ref(get_llm("offline:SmolLM2-135M-Instruct", backend="llamacpp"))
    get_llm("offline:Qwen2.5-Coder-0.5B-Instruct", backend="llamacpp")
    assert len(factory._cache) == 1
    gc.collect()
    assert first() is None  # the evicted model's memory is gone, not just unlisted
    clear_llm_cache()


async def test_sqlite_threads_keep_bounded_history(data_dir: Path) -> None:
    """The pruning adapter against the pinned saver: fails loudly if its tables change."""
    from langchain_core.messages import AIMessage, HumanMessage
    from langgraph.graph import START, MessagesState, StateGraph

    from graph.threads import HistoryLimits, ThreadedGraph, open_checkpointer

    def answer(state: MessagesState) -> dict:
        return {"messages": [AIMessage(content=f"answer to {state['messages'][-1].content}")]}

    builder = StateGraph(MessagesState)
    builder.add_node("generate", answer)
    builder.add_edge(START, "generate")
    plain = builder.compile(name="twin")
    async with open_checkpointer() as saver:
        threads = ThreadedGraph(plain, saver, HistoryLimits(4, 3, 2))
        for turn in range(5):
            config = {"configurable": {"thread_id": "a"}}
            await threads.ainvoke({"messages": [HumanMessage(content=f"q{turn}")]}, config)
            await threads.bound_history("a")
        state = (await threads.aget_state({"configurable": {"thread_id": "a"}})).values
        assert [m.content for m in state["messages"]] == ["q3", "answer to q3", "q4", "answer to q4"]
        kept = [c async for c in saver.alist({"configurable": {"thread_id": "a"}})]
        assert len(kept) == 3
        for name in ("b", "c"):  # two more threads: the least recently used goes
            await threads.ainvoke({"messages": [("user", "hi")]}, {"configurable": {"thread_id": name}})
            threads._runs = 0  # evict on this call
            await threads.bound_history(name)
        remaining = {c.config["configurable"]["thread_id"] async for c in saver.alist(None)}
        assert remaining == {"b", "c"}
        solo = await threads.ainvoke({"messages": [("user", "hi")]}, {"configurable": {}})
        assert len(solo["messages"]) == 2  # no thread id: stateless, not an error
    assert (data_dir / "threads" / "threads.sqlite").exists()


class _SlowPage(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/robots.txt":
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        try:
            for _ in range(100):  # a page that trickles for 10 s
                self.wfile.write(b"<p>slow</p>")
                self.wfile.flush()
                time.sleep(0.1)
        except OSError:
            pass


def test_link_fetch_has_an_overall_deadline(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.safe_fetch import FetchError, clear_caches, fetch
    from core.settings import reset_settings

    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowPage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("CRAWL_ALLOW_HOSTS", '["127.0.0.1"]')
    monkeypatch.setenv("CRAWL_MIN_INTERVAL_S", "0")
    monkeypatch.setenv("CRAWL_RETRIES", "3")
    reset_settings()
    clear_caches()
    try:
        with pytest.raises(FetchError, match="deadline"):
            fetch(f"http://127.0.0.1:{server.server_port}/page", deadline_s=0.5)
        with pytest.raises(FetchError, match="larger than"):
            fetch(f"http://127.0.0.1:{server.server_port}/page", deadline_s=30, max_bytes=50)
    finally:
        server.shutdown()
        clear_caches()
