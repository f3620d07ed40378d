"""core/llm/: the generation backends with the real offline model (small token budgets),
an OpenAI-compatible fake server on 127.0.0.1, and registry int8 exports."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

OFFLINE = "offline:SmolLM2-135M-Instruct"
MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Name three colours."},
]


@pytest.fixture(scope="module")
def int8_llm():
    from core.llm import get_llm

    return get_llm(OFFLINE, backend="torch-int8")


def test_int8_backend_quantizes_linear_layers(int8_llm) -> None:
    from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear

    assert int8_llm.backend == "torch-int8"
    quantized = [m for m in int8_llm.model.modules() if isinstance(m, DynamicQuantizedLinear)]
    assert len(quantized) >= 30  # every attention/MLP projection of the 30 layers and more


def test_generate_and_stream_agree(int8_llm) -> None:
    text = int8_llm.generate(MESSAGES, max_new_tokens=16, temperature=0)
    pieces = list(int8_llm.stream(MESSAGES, max_new_tokens=16, temperature=0))
    assert isinstance(text, str) and text
    assert len(pieces) > 1  # streamed incrementally, not one blob
    assert "".join(pieces).strip() == text


def test_prompt_is_rendered_with_the_training_template(int8_llm) -> None:
    from core.prompts import render_prompt

    assert int8_llm.render(MESSAGES) == render_prompt(int8_llm.tokenizer, MESSAGES)
    assert int8_llm.render("plain prompt") == "plain prompt"


def test_stop_strings_cut_the_output(int8_llm) -> None:
    full = int8_llm.generate("Count: 1, 2, 3,", max_new_tokens=16, temperature=0)
    assert full
    stop = full.strip()[:2]
    cut = int8_llm.generate("Count: 1, 2, 3,", max_new_tokens=16, temperature=0, stop=[stop])
    assert stop not in cut


def test_get_llm_loads_once_per_process(int8_llm) -> None:
    from core.llm import get_llm

    assert get_llm(OFFLINE, backend="torch-int8") is int8_llm


def test_auto_backend_choice(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    import core.llm as llm
    import core.llm.factory as factory
    from core.settings import reset_settings

    monkeypatch.setattr(factory, "llamacpp_available", lambda: False)
    assert llm.choose_backend(OFFLINE) == "torch-int8"
    monkeypatch.setattr(factory, "llamacpp_available", lambda: True)
    assert llm.choose_backend(OFFLINE) == "llamacpp"  # the offline GGUF exists
    monkeypatch.setenv("LLM_BASE_URL", "http://127.0.0.1:9/v1")
    reset_settings()
    assert llm.choose_backend(OFFLINE) == "openai"
    with pytest.raises(llm.LLMError):
        llm.choose_backend(OFFLINE, "nonsense")


async def test_chat_model_streams_tokens_to_callbacks(int8_llm) -> None:
    from langchain_core.callbacks import BaseCallbackHandler
    from langchain_core.messages import HumanMessage

    from core.llm import TwinChatModel

    class Tokens(BaseCallbackHandler):
        def __init__(self) -> None:
            self.tokens: list[str] = []

        def on_llm_new_token(self, token: str, **kwargs: object) -> None:
            self.tokens.append(token)

    model = TwinChatModel(llm=int8_llm, max_new_tokens=12, temperature=0)
    chunks = [c async for c in model.astream([HumanMessage(content="Say hello.")])]
    assert len(chunks) > 1
    handler = Tokens()
    reply = await model.ainvoke([HumanMessage(content="Say hello.")], config={"callbacks": [handler]})
    assert reply.content and len(handler.tokens) > 1
    assert "".join(str(c.content) for c in chunks).strip() == reply.content
    assert model.invoke([HumanMessage(content="Say hello.")]).content == reply.content


# ------------------------------------------------------------------ OpenAI-compatible server
class _FakeOpenAI(BaseHTTPRequestHandler):
    requests: list[dict] = []

    def log_message(self, *args: object) -> None:  # keep pytest output clean
        pass

    def _send_json(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/v1/models":
            self._send_json(200, {"object": "list", "data": [{"id": "fake-twin"}]})
        else:
            self._send_json(404, {"error": "not found"})

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append(
            {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
        )
        if body.get("model") == "broken":
            self._send_json(500, {"error": "boom"})
            return
        words = ["Hello", " from", " the", " fake", " server", "."]
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for word in words[: body.get("max_tokens", 99)]:
            if self.path.endswith("/chat/completions"):
                choice = {"index": 0, "delta": {"content": word}}
            else:
                choice = {"index": 0, "text": word}
            self.wfile.write(f"data: {json.dumps({'choices': [choice]})}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")


@pytest.fixture
def fake_openai(monkeypatch: pytest.MonkeyPatch, data_dir: Path):
    from core.llm import clear_llm_cache
    from core.settings import reset_settings

    _FakeOpenAI.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("LLM_BASE_URL", f"http://127.0.0.1:{server.server_port}/v1")
    monkeypatch.setenv("LLM_API_KEY", "sekret")
    reset_settings()
    clear_llm_cache()
    yield _FakeOpenAI.requests
    server.shutdown()
    clear_llm_cache()


def test_openai_compatible_backend_streams_sse(fake_openai: list[dict]) -> None:
    from core.llm import get_llm

    llm = get_llm()
    assert llm.backend == "openai"
    pieces = list(llm.stream(MESSAGES, max_new_tokens=6))
    assert pieces == ["Hello", " from", " the", " fake", " server", "."]
    assert llm.generate("Once upon a time", max_new_tokens=3) == "Hello from the"
    chat, completion = fake_openai
    assert chat["path"] == "/v1/chat/completions" and chat["body"]["messages"] == MESSAGES
    assert chat["body"]["model"] == "fake-twin"  # default ref → the server's first model
    assert chat["body"]["stream"] is True and chat["body"]["max_tokens"] == 6
    assert chat["auth"] == "Bearer sekret"
    assert completion["path"] == "/v1/completions" and completion["body"]["prompt"]


def test_openai_compatible_errors_are_clear(fake_openai: list[dict]) -> None:
    from core.llm import LLMError, get_llm

    llm = get_llm("broken")
    with pytest.raises(LLMError, match="HTTP 500"):
        llm.generate(MESSAGES, max_new_tokens=4)


# ------------------------------------------------------------------ registry exports
def test_registry_int8_export_is_loaded(data_dir: Path, int8_llm) -> None:
    """A registry version with `merged/` + `quantized/model_int8.pt` is served from the
    saved int8 state_dict (the finetune helper's export format)."""
    import torch

    from core.llm import get_llm
    from core.models import load_causal_lm
    from core.registry import get_registry, write_json_atomic
    from finetune.export import quantize_int8

    model, tokenizer = load_causal_lm(OFFLINE)
    version_dir = get_registry().root / "twin-test" / "versions" / "v1"
    merged = version_dir / "merged"
    model.save_pretrained(merged)
    tokenizer.save_pretrained(merged)
    quantized = quantize_int8(model)
    # Mark the export (one projection zeroed) so the test can tell it was loaded rather
    # than re-quantized from merged/.
    layer = quantized.model.layers[0].self_attn.q_proj
    weight, bias = layer._packed_params._weight_bias()
    zero = torch.quantize_per_tensor(
        torch.zeros_like(weight.dequantize()), scale=1.0, zero_point=0, dtype=torch.qint8
    )
    layer.set_weight_bias(zero, bias)
    (version_dir / "quantized").mkdir(parents=True)
    torch.save(quantized.state_dict(), version_dir / "quantized" / "model_int8.pt")
    write_json_atomic(
        version_dir / "manifest.json",
        {"artifacts": {"merged": "merged", "quantized": "quantized"}, "created_at": "2026"},
    )
    get_registry().set_tags("twin-test", {"accepted": "v1"})

    llm = get_llm("registry:twin-test@accepted", backend="torch-int8")
    loaded = llm.model.model.layers[0].self_attn.q_proj
    loaded_weight, _ = loaded._packed_params._weight_bias()
    assert float(loaded_weight.dequantize().abs().sum()) == 0.0
    other = llm.model.model.layers[1].self_attn.q_proj._packed_params._weight_bias()[0]
    assert float(other.dequantize().abs().sum()) > 0.0
    assert llm.generate(MESSAGES, max_new_tokens=8, temperature=0)


@pytest.mark.skipif(
    not __import__("core.llm", fromlist=["x"]).llamacpp_available(),
    reason="llama-cpp-python not installed (optional extra: pip install -e '.[llamacpp]')",
)
def test_llamacpp_backend_serves_the_gguf() -> None:
    from core.llm import get_llm

    llm = get_llm(OFFLINE, backend="llamacpp")
    pieces = list(llm.stream(MESSAGES, max_new_tokens=12, temperature=0))
    assert len(pieces) > 1 and "".join(pieces).strip()


def test_promotion_changes_the_weights_that_answer_without_a_restart(data_dir: Path) -> None:
    """The cache is keyed by the version a registry ref resolves to: retagging swaps the
    model at the next call, unloads the old one, and names the version that answered."""
    import core.llm.factory as factory
    from core.llm import get_llm
    from core.models import load_causal_lm
    from core.registry import get_registry, write_json_atomic

    model, tokenizer = load_causal_lm(OFFLINE)
    registry = get_registry()
    for version in ("v1", "v2"):
        version_dir = registry.root / "twin-swap" / "versions" / version
        model.save_pretrained(version_dir / "merged")
        tokenizer.save_pretrained(version_dir / "merged")
        write_json_atomic(
            version_dir / "manifest.json",
            {"artifacts": {"merged": "merged"}, "base_model": OFFLINE, "created_at": "2026"},
        )
    ref = "registry:twin-swap@accepted"
    registry.set_tags("twin-swap", {"accepted": "v1"})
    first = get_llm(ref, backend="torch-fp32")
    assert first.version == "v1" and get_llm(ref, backend="torch-fp32") is first
    registry.set_tags("twin-swap", {"accepted": "v2"})
    second = get_llm(ref, backend="torch-fp32")
    assert second is not first and second.version == "v2"
    assert first not in factory._cache.values()  # the old version is unloaded
    from core.llm import TwinChatModel

    reply = TwinChatModel(llm=second, max_new_tokens=4, temperature=0.0).invoke("Hi")
    assert reply.response_metadata["model_version"] == "v2"
