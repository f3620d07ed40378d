"""The API server over a real socket: the real graph and offline models on a seeded corpus.

Covers the LangServe routes (invoke, batch, stream, stream_events with token timing,
schemas, playground page), /health, /feedback and its store, auth, limits and clear 4xx on
bad input, the max_new_tokens cap, the locked-store message and import without I/O.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from support.twin_server import CORPUS, FAST_CONFIG, free_port, served_twin

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory):
    with served_twin(tmp_path_factory.mktemp("server") / "data") as running:
        yield running


def _post(twin, path: str, payload=None, **kwargs) -> httpx.Response:
    return httpx.post(f"{twin.url}{path}", json=payload, timeout=300, **kwargs)


def _invoke(twin, query: str, **config) -> httpx.Response:
    cfg = {"configurable": {**FAST_CONFIG["configurable"], **config}}
    return _post(twin, "/twin/invoke", {"input": {"query": query}, "config": cfg})


def _sse_events(response: httpx.Response):
    """(seconds since start, event name, parsed data) for each server-sent event."""
    start = time.monotonic()
    event = None
    for line in response.iter_lines():
        if line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
            if event == "end":  # sent without a data line
                yield time.monotonic() - start, event, None
        elif line.startswith("data:"):
            raw = line.split(":", 1)[1].strip()
            yield time.monotonic() - start, event, json.loads(raw) if raw else None


def test_health_reports_model_store_and_counts(twin):
    body = httpx.get(f"{twin.url}/health", timeout=30).json()
    assert body["status"] == "ok"
    assert body["model"]["ref"]
    assert body["vector_store"]["reachable"] is True
    assert sum(body["counts"].values()) >= len(CORPUS)
    assert body["counts"]["embedded_posts"] >= 2
    assert body["auth"] is False


def test_invoke_answers_with_context_and_remembers_the_run(twin):
    response = _invoke(twin, "Write a LinkedIn post about shipping on Fridays")
    assert response.status_code == 200, response.text
    body = response.json()
    output, run_id = body["output"], body["metadata"]["run_id"]
    assert output["type"] == "ai" and output["content"].strip()
    meta = output["response_metadata"]
    assert meta["answer"].strip() == output["content"].strip()
    assert set(meta["filters"]) == {"author", "category", "platform", "date_from", "date_to"}
    assert meta["queries"] and meta["context"]
    assert all(c["chunk_id"] and c["content"] for c in meta["context"])
    assert any("Fridays" in c["content"] for c in meta["context"])

    from core.feedback import get_run

    run = get_run(run_id)
    assert run is not None
    assert run["request"] == "Write a LinkedIn post about shipping on Fridays"
    assert run["messages"] == [{"role": "user", "content": run["request"]}]
    assert run["answer"] == meta["answer"]
    assert run["context_ids"] == [c["chunk_id"] for c in meta["context"]]


def test_chat_history_and_openai_style_roles_are_accepted(twin):
    payload = {
        "input": {
            "messages": [
                {"role": "user", "content": "Who writes about quantization?"},
                {"role": "assistant", "content": "Maya does."},
                {"type": "human", "content": "Summarise her int8 advice."},
            ]
        },
        "config": FAST_CONFIG,
    }
    response = _post(twin, "/twin/invoke", payload)
    assert response.status_code == 200, response.text
    assert response.json()["output"]["content"].strip()

    from core.feedback import get_run

    # The run is remembered with the turns as sent (roles in the OpenAI spelling).
    run = get_run(response.json()["metadata"]["run_id"])
    assert run is not None and run["request"] == "Summarise her int8 advice."
    assert run["messages"] == [
        {"role": "user", "content": "Who writes about quantization?"},
        {"role": "assistant", "content": "Maya does."},
        {"role": "user", "content": "Summarise her int8 advice."},
    ]


def test_batch_answers_each_input(twin):
    inputs = [{"query": "What about retrieval?"}, {"query": "Any thoughts on sourdough?"}]
    response = _post(twin, "/twin/batch", {"inputs": inputs, "config": FAST_CONFIG})
    assert response.status_code == 200, response.text
    outputs = response.json()["output"]
    assert len(outputs) == 2 and all(o["content"].strip() for o in outputs)


def test_stream_sends_the_answer_token_by_token(twin):
    payload = {"input": {"query": "Write a post about quantized models"}, "config": FAST_CONFIG}
    with httpx.stream("POST", f"{twin.url}/twin/stream", json=payload, timeout=300) as response:
        assert response.status_code == 200
        chunks = [data for _, event, data in _sse_events(response) if event == "data"]
    assert len(chunks) >= 3
    text = "".join(c["content"] for c in chunks)
    final = chunks[-1]["response_metadata"]
    assert final["answer"].strip() == text.strip()
    assert final["context"]


def test_stream_events_tokens_arrive_before_the_end(twin):
    payload = {
        "input": {"query": "What do you think about retrieval and fine-tuning?"},
        "config": FAST_CONFIG,
    }
    token_times, end_time = [], None
    url = f"{twin.url}/twin/stream_events"
    with httpx.stream("POST", url, json=payload, timeout=300) as response:
        assert response.status_code == 200
        for at, event, data in _sse_events(response):
            if event == "end":
                end_time = at
            elif event == "data" and data.get("event") == "on_chat_model_stream":
                if data["metadata"].get("langgraph_node") == "generate":
                    if data["data"]["chunk"]["content"]:
                        token_times.append(at)
    assert end_time is not None
    assert len(token_times) >= 3, "tokens of the answer should stream one by one"
    # Incremental: the first token well before the stream ends, tokens spread over time.
    assert token_times[0] < end_time - 0.2
    assert token_times[-1] - token_times[0] > 0.1


def test_max_new_tokens_is_capped_by_settings(twin):
    # The fixture caps LLM_MAX_NEW_TOKENS at 24: a request for 5000 is refused (422), one
    # for 24 gets at most 24 (plus the sentence grace).
    too_many = {"configurable": {"max_new_tokens": 5000, "expand_n": 0, "k": 2}}
    refused = _post(twin, "/twin/invoke", {"input": {"query": "hi"}, "config": too_many})
    assert refused.status_code == 422 and "max_new_tokens" in refused.text
    payload = {
        "input": {"query": "Write a very long article about retrieval."},
        "config": {"configurable": {"max_new_tokens": 24, "expand_n": 0, "k": 2}},
    }
    tokens = 0
    url = f"{twin.url}/twin/stream_events"
    with httpx.stream("POST", url, json=payload, timeout=300) as response:
        assert response.status_code == 200
        for _, event, data in _sse_events(response):
            if event == "data" and data.get("event") == "on_chat_model_stream":
                chunk = (data.get("data") or {}).get("chunk") or {}
                # Text pieces only: the closing chunk carries token counts, no text.
                if data["metadata"].get("langgraph_node") == "generate" and chunk.get("content"):
                    tokens += 1
    # A piece is at least one token; the answer may run `sentence_grace` tokens past the cap
    # to finish its sentence (still bounded); +2 for detokenizer slack.
    from graph.configuration import Configuration

    assert 0 < tokens <= 24 + Configuration().sentence_grace + 2


def test_schemas_and_playground_are_served(twin):
    schema = httpx.get(f"{twin.url}/twin/input_schema", timeout=30).json()
    assert schema["properties"]["messages"]["type"] == "array"
    assert schema["properties"]["query"]["type"] == "string"
    config_schema = httpx.get(f"{twin.url}/twin/config_schema", timeout=30).json()
    assert "Configurable" in json.dumps(config_schema)
    page = httpx.get(f"{twin.url}/twin/playground/", timeout=30)
    assert page.status_code == 200 and "<html" in page.text.lower()


def test_feedback_is_stored_with_request_and_answer(twin):
    from core.feedback import load_feedback

    run_id = _invoke(twin, "Write a post about Friday deploys").json()["metadata"]["run_id"]
    response = _post(twin, "/feedback", {"run_id": run_id, "score": "up", "comment": "my voice"})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "recorded"
    assert response.json()["opik"] is False  # tracing is off in this module
    response = _post(twin, "/feedback", {"run_id": run_id, "score": 0.25})
    assert response.status_code == 200

    records = [r for r in load_feedback() if r["run_id"] == run_id]
    assert [r["score"] for r in records] == [1.0, 0.25]
    assert records[0]["request"] == "Write a post about Friday deploys"
    assert records[0]["answer"].strip()
    assert records[0]["comment"] == "my voice"
    feedback_file = Path(os.environ["DATA_DIR"]) / "feedback" / "feedback.jsonl"
    assert feedback_file.exists()


@pytest.mark.parametrize(
    ("payload", "status", "needle"),
    [
        ({"run_id": "no-such-run", "score": 1}, 404, "unknown run_id"),
        ({"run_id": "x", "score": 7}, 422, "between 0 and 1"),
        ({"run_id": "x", "score": "meh"}, 422, "thumbs"),
        ({"score": 1}, 422, "run_id"),
    ],
)
def test_feedback_rejects_bad_requests_clearly(twin, payload, status, needle):
    response = _post(twin, "/feedback", payload)
    assert response.status_code == status
    assert needle in response.text


def test_bad_inputs_get_clear_4xx_never_500(twin):
    url = f"{twin.url}/twin/invoke"
    cases = [
        (httpx.post(url, content=b"{not json", timeout=30), 422, "Invalid JSON"),
        (httpx.post(url, json=[1, 2], timeout=30), 422, ""),
        (httpx.post(url, json={"input": 5}, timeout=30), 422, ""),
        (httpx.post(url, json={"input": {"messages": "hi"}}, timeout=30), 422, "messages"),
        (httpx.post(url, json={"input": {"messages": []}}, timeout=30), 422, "empty request"),
        (httpx.post(url, json={"input": {"query": "   "}}, timeout=30), 422, "empty request"),
        (
            httpx.post(url, json={"input": {"messages": [{"type": "robot", "content": "x"}]}}),
            422,
            "type",
        ),
        (
            httpx.post(url, json={"input": {"messages": [{"type": "human", "content": 3}]}}),
            422,
            "text",
        ),
        (
            httpx.post(url, json={"input": {"messages": [{"content": "hi"}] * 51}}, timeout=30),
            422,
            "too many messages",
        ),
        (
            httpx.post(url, json={"input": {"query": "x" * 8001}}, timeout=30),
            422,
            "SERVER_MAX_MESSAGE_CHARS",
        ),
        (
            httpx.post(
                url,
                json={"input": {"query": "hi"}, "config": {"configurable": {"k": "many"}}},
                timeout=30,
            ),
            422,
            "",
        ),
    ]
    for response, status, needle in cases:
        assert response.status_code == status, response.text
        assert needle in response.text


def test_oversized_bodies_get_413(twin):
    big = json.dumps({"input": {"query": "x" * 300_000}}).encode()
    response = httpx.post(f"{twin.url}/twin/invoke", content=big, timeout=30)
    assert response.status_code == 413
    assert "SERVER_MAX_BODY_BYTES" in response.json()["detail"]

    def chunked():  # no Content-Length: the limit is enforced while reading
        for _ in range(40):
            yield b"x" * 10_000

    response = httpx.post(f"{twin.url}/twin/invoke", content=chunked(), timeout=30)
    assert response.status_code == 413


def test_api_key_guards_every_route_but_health(twin, monkeypatch):
    from core.settings import reset_settings

    monkeypatch.setenv("TWIN_API_KEY", "s3cret-key")
    reset_settings()
    try:
        assert httpx.get(f"{twin.url}/health", timeout=30).status_code == 200
        for method, path in [
            ("POST", "/twin/invoke"),
            ("POST", "/feedback"),
            ("GET", "/twin/input_schema"),
            ("GET", "/twin/playground/"),
            ("GET", "/docs"),
        ]:
            response = httpx.request(method, f"{twin.url}{path}", json={}, timeout=30)
            assert response.status_code == 401, path
            assert "API key" in response.json()["detail"]
        wrong = httpx.get(
            f"{twin.url}/twin/input_schema", headers={"X-API-Key": "nope"}, timeout=30
        )
        assert wrong.status_code == 401
        for headers in (
            {"X-API-Key": "s3cret-key"},
            {"Authorization": "Bearer s3cret-key"},
        ):
            ok = httpx.get(f"{twin.url}/twin/input_schema", headers=headers, timeout=30)
            assert ok.status_code == 200, headers
        basic = httpx.get(f"{twin.url}/twin/playground/", auth=("me", "s3cret-key"), timeout=30)
        assert basic.status_code == 200
        answer = httpx.post(
            f"{twin.url}/twin/invoke",
            json={"input": {"query": "Hello"}, "config": FAST_CONFIG},
            headers={"Authorization": "Bearer s3cret-key"},
            timeout=300,
        )
        assert answer.status_code == 200
        assert httpx.get(f"{twin.url}/health", timeout=30).json()["auth"] is True
    finally:
        monkeypatch.delenv("TWIN_API_KEY")
        reset_settings()


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TWIN_API_KEY", "QDRANT_URL")}
    env.update(extra)
    return env


def test_locked_vector_store_gives_a_clear_message(twin):
    # This test process holds the local Qdrant folder; a second server must say so.
    result = subprocess.run(
        [sys.executable, "server.py"],
        cwd=ROOT,
        env=_clean_env(SERVER_PORT=str(free_port())),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 1
    assert "in use by another process" in result.stderr
    assert "QDRANT_URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_importing_the_server_does_no_io(tmp_path):
    data = tmp_path / "never-created"
    code = (
        "import sys, server; "
        "print(sorted(m for m in ('torch', 'transformers', 'sentence_transformers', 'opik') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=_clean_env(DATA_DIR=str(data)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"  # no model libraries, no Opik client
    assert not data.exists()  # no store opened, nothing written


def test_feedback_store_contract(data_dir):
    from core import feedback

    with pytest.raises(feedback.UnknownRun):
        feedback.record_feedback("never-served", 1.0)
    feedback.record_run("r1", "Write about X", "X is great.", trace_id="t1")
    # A line another process appended is picked up too.
    with open(data_dir / "feedback" / "runs.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"run_id": "r2", "request": "Q2", "answer": "A2"}) + "\n")
    assert feedback.get_run("r2")["answer"] == "A2"
    feedback.record_feedback("r1", "down", "not me")
    feedback.record_feedback("r2", 0.9)
    records = feedback.load_feedback()
    assert [(r["run_id"], r["request"], r["answer"], r["score"]) for r in records] == [
        ("r1", "Write about X", "X is great.", 0.0),
        ("r2", "Q2", "A2", 0.9),
    ]
    assert records[0]["trace_id"] == "t1" and records[0]["comment"] == "not me"
    for bad in (1.5, -0.1, "sideways", None):
        with pytest.raises(ValueError):
            feedback.normalize_score(bad)
