"""Misuse of the real server on 127.0.0.1 (real graph, offline model, seeded corpus):
more clients than the queue holds, clients that leave mid-stream, requests past their
deadline, bad knobs, oversized batches, auth on every route, threads across a restart and
a registry promotion while serving. Assertions are on states (status codes, the backend's
last generation run, the model cache), never on timing; waits are bounded hang guards.
"""

from __future__ import annotations

import concurrent.futures
import gc
import json
import time
import weakref
from pathlib import Path

import httpx
import pytest
from support.opik_capture import OpikCapture
from support.twin_server import FAST_CONFIG, served_twin
from test_serving_limits import BAD_KNOBS

pytestmark = pytest.mark.slow
# A request the model answers at length (a counting prompt ends after a few lines under the
# repetition penalty): generation, not retrieval, is what takes the time.
LONG_ANSWER = (
    "Write a long, detailed essay in many sections on how retrieval, chunking and fine-tuning"
    " fit together."
)
LONG = {"configurable": {"max_new_tokens": 256, "expand_n": 0, "k": 1, "temperature": 0.0}}
# Where a test only needs a generation that outlasts the HTTP round trips around it (the
# queue filling up, a deadline passing mid-answer), a shorter budget proves the same thing.
QUEUE_TOKENS = 96
QUEUE_LONG = {"configurable": {**LONG["configurable"], "max_new_tokens": QUEUE_TOKENS}}
DEADLINE_TOKENS = 128
DEADLINE_LONG = {"configurable": {**LONG["configurable"], "max_new_tokens": DEADLINE_TOKENS}}


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory):
    env = {"LLM_MAX_NEW_TOKENS": "256", "LLM_CONCURRENCY": "1", "SERVER_QUEUE_SIZE": "1"}
    with served_twin(tmp_path_factory.mktemp("misuse") / "data", **env) as running:
        yield running


def _serving_llm():
    """The backend object the in-process server generates with."""
    from core.llm import get_llm, pinned_ref
    from core.settings import get_settings

    return get_llm(pinned_ref(get_settings().LLM_MODEL))


def _until(predicate, what: str, limit_s: float = 120.0) -> None:
    """Wait for a state (a hang guard, not a timing assertion)."""
    deadline = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"never happened: {what}")
        time.sleep(0.05)


def _idle(twin) -> bool:
    from core.llm import generation_slots

    load = httpx.get(f"{twin.url}/health", timeout=30).json()["load"]
    return load["in_progress"] == 0 and generation_slots().busy == 0


def test_beyond_the_queue_clients_get_429_with_retry_after(twin):
    def call(i: int) -> httpx.Response:
        payload = {"input": {"query": f"{LONG_ANSWER} ({i})"}, "config": QUEUE_LONG}
        return httpx.post(f"{twin.url}/twin/invoke", json=payload, timeout=600)

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(call, range(6)))
    codes = sorted(r.status_code for r in responses)
    assert set(codes) <= {200, 429}, codes  # never a 5xx
    assert codes.count(429) >= 1, "six clients, room for two: some must be turned away"
    for response in responses:
        if response.status_code == 429:
            assert int(response.headers["Retry-After"]) >= 1
            assert "SERVER_QUEUE_SIZE" in response.json()["detail"]
        else:
            assert response.json()["output"]["content"].strip()
    _until(lambda: _idle(twin), "the server drains")
    assert httpx.get(f"{twin.url}/health", timeout=30).json()["status"] == "ok"
    assert _invoke_ok(twin)


def _invoke_ok(twin) -> bool:
    payload = {"input": {"query": "Write about Fridays"}, "config": FAST_CONFIG}
    return httpx.post(f"{twin.url}/twin/invoke", json=payload, timeout=600).status_code == 200


def test_a_client_leaving_mid_stream_stops_its_generation(twin):
    llm = _serving_llm()
    payload = {"input": {"query": LONG_ANSWER}, "config": LONG}
    with httpx.stream("POST", f"{twin.url}/twin/stream", json=payload, timeout=600) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data:") and json.loads(line[5:] or "{}").get("content"):
                break  # the first token arrived: leave now
    run = llm.last_run
    _until(run.finished.is_set, "the generation ends after the client left")
    assert run.cancelled, "the generation was stopped, not run to its end"
    # llama.cpp checks once more after its loop; torch stops at the first check.
    assert run.tokens_after_cancel <= 2
    assert run.tokens < 256
    _until(lambda: _idle(twin), "the model and the queue are free")
    assert not llm.busy
    assert _invoke_ok(twin)  # the next client is served


def test_a_request_past_its_deadline_gets_504_and_frees_the_model(twin, monkeypatch):
    from core.settings import reset_settings

    llm = _serving_llm()
    payload = {"input": {"query": LONG_ANSWER}, "config": DEADLINE_LONG}
    # The deadline is half of what the full answer takes on this machine, so it passes
    # while generating on a slow or a fast CPU alike.
    started = time.monotonic()
    full = httpx.post(f"{twin.url}/twin/invoke", json=payload, timeout=600)
    full_s = time.monotonic() - started
    assert full.status_code == 200
    assert llm.last_run.tokens >= DEADLINE_TOKENS, "the premise: the answer runs to its budget"
    before = llm.last_run
    monkeypatch.setenv("SERVER_REQUEST_TIMEOUT_S", f"{full_s / 2:.2f}")
    reset_settings()
    try:
        response = httpx.post(f"{twin.url}/twin/invoke", json=payload, timeout=600)
        assert response.status_code == 504
        assert "SERVER_REQUEST_TIMEOUT_S" in response.json()["detail"]
        run = llm.last_run
        assert run is not before, "the deadline passed while generating"
        _until(run.finished.is_set, "the generation ends")
        assert run.cancelled and run.tokens < DEADLINE_TOKENS
    finally:
        monkeypatch.delenv("SERVER_REQUEST_TIMEOUT_S")
        reset_settings()
    _until(lambda: _idle(twin), "the model and the queue are free")
    assert not llm.busy


@pytest.mark.parametrize(("name", "value"), BAD_KNOBS)
def test_every_bad_knob_gets_422_naming_the_field(twin, name, value):
    payload = {"input": {"query": "hi"}, "config": {"configurable": {name: value}}}
    for route in ("invoke", "stream"):
        response = httpx.post(f"{twin.url}/twin/{route}", json=payload, timeout=60)
        assert response.status_code == 422, (route, response.text)
        assert name in response.text


def test_batches_are_bounded(twin):
    inputs = [{"query": f"q{i}"} for i in range(9)]
    response = httpx.post(f"{twin.url}/twin/batch", json={"inputs": inputs}, timeout=60)
    assert response.status_code == 422
    assert "SERVER_MAX_BATCH" in response.text


def test_every_route_but_health_needs_the_key(twin, monkeypatch):
    import re

    from fastapi.routing import APIRoute

    from core.settings import reset_settings

    monkeypatch.setenv("TWIN_API_KEY", "k3y")
    reset_settings()
    try:
        app = twin.server.config.app
        checked = 0
        # Included routers (/ingest, /store) show up as one entry without a path of their
        # own; their routes check keys themselves and are probed below.
        for route in [r for r in app.routes if getattr(r, "path", None)]:
            path = re.sub(r"\{[^}]+\}", "x", route.path)
            methods = route.methods if isinstance(route, APIRoute) else {"GET"}
            for method in methods:
                response = httpx.request(method, f"{twin.url}{path}", json={}, timeout=30)
                if path.startswith("/health"):
                    assert response.status_code == 200
                else:
                    assert response.status_code == 401, (method, path)
                    checked += 1
        assert checked >= 15  # LangServe routes, schemas, playground, docs, feedback
        # The store share takes only its local token, /ingest the key or that token.
        assert httpx.post(f"{twin.url}/ingest", json={}, timeout=30).status_code == 401
        assert httpx.get(f"{twin.url}/store/collections", timeout=30).status_code == 401
        health = httpx.get(f"{twin.url}/health", timeout=30).text
        assert "k3y" not in health
    finally:
        monkeypatch.delenv("TWIN_API_KEY")
        reset_settings()


def test_health_reveals_no_paths(twin):
    body = httpx.get(f"{twin.url}/health", timeout=30).json()
    text = json.dumps(body)
    assert str(Path.cwd()) not in text and "/tmp" not in text and "data" not in body
    assert set(body["model"]) >= {"ref", "version", "backend", "next_version"}


def test_a_restarted_server_continues_a_thread(tmp_path):
    config = {"configurable": {**FAST_CONFIG["configurable"], "thread_id": "survivor"}}
    first_query = "Write a post about shipping on Fridays"
    with served_twin(tmp_path / "data") as twin:
        response = httpx.post(
            f"{twin.url}/twin/invoke",
            json={"input": {"query": first_query}, "config": config},
            timeout=600,
        )
        assert response.status_code == 200
        first_answer = response.json()["output"]["content"]
    with served_twin(tmp_path / "data") as twin:  # a new process would read the same file
        response = httpx.post(
            f"{twin.url}/twin/invoke",
            json={"input": {"query": "Make it shorter."}, "config": config},
            timeout=600,
        )
        assert response.status_code == 200
    import asyncio

    from graph.threads import open_checkpointer

    async def messages() -> list:
        async with open_checkpointer() as saver:
            latest = await saver.aget_tuple({"configurable": {"thread_id": "survivor"}})
            return latest.checkpoint["channel_values"]["messages"]

    from core.settings import reset_settings

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DATA_DIR", str(tmp_path / "data"))
        reset_settings()
        stored = asyncio.run(messages())
    reset_settings()
    assert [m.type for m in stored] == ["human", "ai", "human", "ai"]
    assert stored[0].content == first_query
    assert stored[1].content.strip() == first_answer.strip()
    assert stored[2].content == "Make it shorter."


def _registry_with_two_versions(data_dir: Path) -> None:
    """Two registry versions of the small offline model (weights linked, not copied)."""
    from core.models import offline_llm_gguf, resolve_llm_path
    from core.registry import ModelRegistry, write_json_atomic
    from core.settings import OFFLINE_SMOLLM2

    merged = Path(resolve_llm_path(OFFLINE_SMOLLM2))
    gguf = offline_llm_gguf(OFFLINE_SMOLLM2)
    registry = ModelRegistry(data_dir / "registry")
    for version in ("v1", "v2"):
        folder = registry.root / "twin-hot" / "versions" / version
        (folder / "quantized").mkdir(parents=True)
        (folder / "merged").symlink_to(merged, target_is_directory=True)
        (folder / "quantized" / "model.gguf").symlink_to(gguf)
        manifest = {
            "artifacts": {"merged": "merged", "quantized": "quantized"},
            "base_model": OFFLINE_SMOLLM2,
            "created_at": f"2026-01-0{version[1]}",
        }
        write_json_atomic(folder / "manifest.json", manifest)
    registry.promote("twin-hot", "v1", reason="first")


def test_a_promotion_while_serving_changes_the_answering_model(tmp_path):
    from core.llm import factory
    from core.registry import ModelRegistry

    data = tmp_path / "data"
    _registry_with_two_versions(data)
    registry = ModelRegistry(data / "registry")

    def ask() -> dict:
        payload = {"input": {"query": "Write about Fridays"}, "config": FAST_CONFIG}
        response = httpx.post(f"{twin.url}/twin/invoke", json=payload, timeout=600)
        assert response.status_code == 200, response.text
        return response.json()["output"]["response_metadata"]["model"]

    with OpikCapture() as capture:
        env = {
            "LLM_MODEL": "registry:twin-hot@accepted",
            "OPIK_URL_OVERRIDE": f"{capture.url}/api/",
            "OPIK_WORKSPACE": "default",
            "OPIK_TRACK_DISABLE": None,
            "OPIK_API_KEY": None,
        }
        with served_twin(data, **env) as twin:
            assert ask()["version"] == "v1"
            old = weakref.ref(next(m for m in factory._cache.values() if m.version == "v1"))
            registry.promote("twin-hot", "v2", reason="better")  # `finetune registry promote`
            health = httpx.get(f"{twin.url}/health", timeout=30).json()["model"]
            assert (health["version"], health["next_version"]) == ("v1", "v2")
            assert ask()["version"] == "v2"
            health = httpx.get(f"{twin.url}/health", timeout=30).json()["model"]
            assert health["version"] == health["next_version"] == "v2"
            # Other models earlier tests loaded in this process may be cached too.
            cached = [m.version for m in factory._cache.values()]
            assert "v2" in cached and "v1" not in cached, cached
            # Unloaded once the last request that used it has let go (a bounded wait).
            _until(lambda: gc.collect() >= 0 and old() is None, "the old weights are freed")
            registry.rollback("twin-hot", reason="back")
            assert ask()["version"] == "v1"

            from core import tracing

            def traced_versions() -> list:
                tracing.flush()
                bodies = capture.bodies("POST", "/v1/private/traces/batch")
                # One entry per trace (a trace may be sent more than once), in request order.
                versions = {t["id"]: t["metadata"].get("model_version")
                            for b in bodies for t in b["traces"]}  # fmt: skip
                return list(versions.values())

            _until(lambda: traced_versions()[-3:] == ["v1", "v2", "v1"], "traces name versions", 60)


@pytest.mark.parametrize(
    ("route", "body", "field"),
    [
        ("invoke", {"config": None, "input": {"query": "hi"}}, "config"),
        ("stream_events", {"config": [], "input": {"query": "hi"}}, "config"),
        ("batch", {"config": [], "inputs": None}, "inputs"),
        ("batch", {"config": [{}], "inputs": [{"query": "a"}, {"query": "b"}]}, "config"),
        ("invoke", {"input": {"query": "hi"}, "kwargs": []}, "kwargs"),
        ("c/0/batch", {"inputs": "no list"}, "inputs"),
        ("batch", {"inputs": [{"query": "ok"}, {}]}, "inputs[1]"),
    ],
)
def test_null_and_misshapen_bodies_get_422_not_500(twin, route, body, field):
    """Shapes LangServe's schema lets through but its handlers crash on (found by the
    OpenAPI fuzz run)."""
    response = httpx.post(f"{twin.url}/twin/{route}", json=body, timeout=60)
    assert response.status_code == 422, response.text
    assert field in response.text
