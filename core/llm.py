"""Text generation backends behind one small interface, chosen by what is installed.

`get_llm(ref=None)` returns an object with
  `generate(prompt_or_messages, max_new_tokens=None, temperature=0.0, stop=None) -> str`
  `stream(prompt_or_messages, ...) -> Iterator[str]` (token pieces as they are produced)
loaded once per process. `prompt_or_messages` is either a rendered prompt string or chat
messages (`[{"role": ..., "content": ...}]`, the `core.prompts.twin_messages` shape); messages
are rendered with the model's own chat template through `core.prompts.render_prompt`, the
same path training uses.

Backends (`LLM_BACKEND` env / `backend=` picks one; `auto` is the default):
- `openai`  — an OpenAI-compatible server (vLLM, Ollama, TGI, llama.cpp server) when
  `LLM_BASE_URL` is set: httpx, streaming over SSE.
- `llamacpp` — `llama-cpp-python` serving a GGUF directly (the offline SmolLM2 GGUF, a
  registry version's `quantized/*.gguf`, or a `.gguf` ref). Optional extra
  (`pip install -e '.[llamacpp]'`, an sdist that builds for minutes); picked automatically
  when importable and a GGUF exists for the ref — it was the fastest CPU runtime measured
  (see benchmarks/generation.py).
- `torch-int8` — in-process transformers on CPU with torch dynamic int8 quantization of
  the Linear layers (`torch.ao.quantization.quantize_dynamic`); for registry refs the
  saved `quantized/model_int8.pt` state_dict is loaded when present. Default without
  llama.cpp.
- `torch-fp32` — the unquantized model (baseline for benchmarks and quality checks).

Small int8 models tend to loop: generation uses a mild `repetition_penalty` by default
(`GenerationDefaults`), which benchmarks/generation.py measures (distinct n-gram ratio).
Thread count: `LLM_THREADS` (0 = torch's default, llama.cpp's default of half the cores).

Measured (benchmarks/generation.py, SmolLM2-135M, 64 greedy tokens, a 2-core machine shared
with other jobs at load average 11–14, so absolute numbers are low and noisy):
  2 threads: fp32 5.8 tok/s, int8 9.5, int8 without repetition penalty 9.7, llama.cpp 0.8
             (llama.cpp's spinning threads collapse under contention, as MODELS.md warns);
             distinct-2 / repeated-4-gram share: int8 0.95 / 0.04, int8 without penalty
             0.61 / 0.36 (loops), fp32 and llama.cpp 1.00 / 0.00.
  1 thread:  int8 4.5 tok/s, llama.cpp 5.4 (int8 = 0.83x llama.cpp).
MODELS.md's idle-machine figures (fp32 15, int8 26, llama.cpp Q4 90 tok/s) put int8 at
~0.3x llama.cpp when the CPU is free: prefer llama.cpp where it can be built, and set
`LLM_THREADS=1` (or `LLM_BACKEND=torch-int8`) on a machine shared with other CPU work.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import warnings
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from core.settings import OFFLINE_LLM_FALLBACK, get_settings

log = logging.getLogger(__name__)

Messages = Sequence[dict[str, str]]
PromptOrMessages = str | Messages
BACKENDS = ("auto", "openai", "llamacpp", "torch-int8", "torch-fp32")


class LLMError(RuntimeError):
    """Generation failed for a reason the caller can act on (bad server, missing model)."""


@dataclass(frozen=True)
class GenerationDefaults:
    """Sampling knobs shared by every in-process backend (measured on SmolLM2-135M)."""

    repetition_penalty: float = 1.15
    top_p: float = 0.9


DEFAULTS = GenerationDefaults()


def llamacpp_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


def _threads() -> int:
    return max(0, int(get_settings().LLM_THREADS or 0))


def _as_messages(value: PromptOrMessages) -> list[dict[str, str]] | None:
    if isinstance(value, str):
        return None
    return [{"role": str(m["role"]), "content": str(m["content"])} for m in value]


# --------------------------------------------------------------------------- base class
class BaseLLM:
    """Common surface: `generate`, `stream`, plus what tracing and /health report."""

    backend = "base"

    def __init__(self, ref: str, tokenizer: Any | None = None) -> None:
        self.ref = ref
        self.tokenizer = tokenizer
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return f"{self.backend}:{self.ref}"

    def render(self, prompt_or_messages: PromptOrMessages) -> str:
        """The exact text the model sees (chat template applied to messages)."""
        messages = _as_messages(prompt_or_messages)
        if messages is None:
            return str(prompt_or_messages)
        if self.tokenizer is None:
            raise LLMError(f"{self.name} has no tokenizer to render chat messages")
        from core.prompts import render_prompt

        return render_prompt(self.tokenizer, messages)

    def count_tokens(self, text: str) -> int:
        if self.tokenizer is None:
            return max(1, len(text.split()))
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def stream(
        self,
        prompt_or_messages: PromptOrMessages,
        max_new_tokens: int | None = None,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[str]:
        raise NotImplementedError

    def generate(
        self,
        prompt_or_messages: PromptOrMessages,
        max_new_tokens: int | None = None,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> str:
        return "".join(
            self.stream(prompt_or_messages, max_new_tokens, temperature, stop, **kwargs)
        ).strip()

    def as_chat_model(self, **kwargs: Any) -> TwinChatModel:
        return TwinChatModel(llm=self, **kwargs)


def _cut_at_stop(text: str, stop: Sequence[str] | None) -> tuple[str, bool]:
    for s in stop or ():
        idx = text.find(s)
        if idx >= 0:
            return text[:idx], True
    return text, False


def _until(pieces: Iterator[str], max_time: float | None) -> Iterator[str]:
    """Stop consuming a stream after `max_time` seconds (bounded helper calls)."""
    if not max_time:
        yield from pieces
        return
    deadline = time.monotonic() + float(max_time)
    for piece in pieces:
        yield piece
        if time.monotonic() >= deadline:
            return


def _stop_filtered(pieces: Iterator[str], stop: Sequence[str] | None) -> Iterator[str]:
    """Stream pieces until a stop string appears (held back text never leaks it)."""
    if not stop:
        yield from pieces
        return
    hold = max(len(s) for s in stop)
    buf = ""
    for piece in pieces:
        buf += piece
        cut, hit = _cut_at_stop(buf, stop)
        if hit:
            if cut:
                yield cut
            return
        if len(buf) > hold:
            yield buf[:-hold]
            buf = buf[-hold:]
    if buf:
        yield buf


# --------------------------------------------------------------------------- transformers
class TransformersLLM(BaseLLM):
    """In-process transformers on CPU (fp32 or dynamic int8), streaming via a thread."""

    def __init__(self, ref: str, model: Any, tokenizer: Any, backend: str) -> None:
        super().__init__(ref, tokenizer)
        self.model = model
        self.backend = backend

    def stream(
        self,
        prompt_or_messages: PromptOrMessages,
        max_new_tokens: int | None = None,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[str]:
        import torch
        from transformers import StoppingCriteriaList, TextIteratorStreamer

        prompt = self.render(prompt_or_messages)
        max_new_tokens = int(max_new_tokens or get_settings().LLM_MAX_NEW_TOKENS)
        inputs = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        streamer = TextIteratorStreamer(
            self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=300
        )
        gen_kwargs: dict[str, Any] = {
            **inputs,
            "max_new_tokens": max_new_tokens,
            "streamer": streamer,
            "pad_token_id": self.tokenizer.pad_token_id,
            "repetition_penalty": kwargs.get("repetition_penalty", DEFAULTS.repetition_penalty),
        }
        if kwargs.get("max_time"):
            gen_kwargs["max_time"] = float(kwargs["max_time"])
        if kwargs.get("no_repeat_ngram_size"):
            gen_kwargs["no_repeat_ngram_size"] = int(kwargs["no_repeat_ngram_size"])
        if temperature and temperature > 0:
            gen_kwargs.update(
                do_sample=True, temperature=float(temperature), top_p=kwargs.get("top_p", DEFAULTS.top_p)
            )
        else:
            gen_kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        # Set when the consumer stops early (stop string, closed stream, client gone):
        # generation halts at the next token instead of running to max_new_tokens.
        cancelled = threading.Event()
        gen_kwargs["stopping_criteria"] = StoppingCriteriaList([_EventStop(cancelled)])
        error: list[BaseException] = []

        def run() -> None:
            try:
                with self._lock, torch.inference_mode():
                    self.model.generate(**gen_kwargs)
            except BaseException as exc:  # surfaced to the consumer below
                error.append(exc)
                streamer.end()

        thread = threading.Thread(target=run, name="llm-generate", daemon=True)
        thread.start()
        try:
            yield from _stop_filtered(iter(streamer), stop)
        finally:
            cancelled.set()
            thread.join()
        if error:
            raise LLMError(f"generation failed: {error[0]}") from error[0]


class _EventStop:
    """A transformers stopping criterion that fires once `event` is set."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool)


def _quantize_int8(model: Any) -> Any:
    import torch
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=False)


def _registry_version(ref: str) -> Any | None:
    if not ref.startswith("registry:"):
        return None
    from core.registry import RegistryError, get_registry

    try:
        return get_registry().resolve(ref)
    except RegistryError:
        return None


def _quantized_files(version: Any) -> tuple[Path | None, Path | None]:
    """(int8 state_dict, gguf) of a registry version, wherever the manifest puts them."""
    candidates: list[Path] = []
    art = version.artifact("quantized")
    if art is not None:
        candidates.append(art)
    candidates.append(version.path / "quantized")
    int8 = gguf = None
    for c in candidates:
        if c.is_file():
            if c.suffix == ".gguf":
                gguf = gguf or c
            elif c.suffix == ".pt":
                int8 = int8 or c
        elif c.is_dir():
            pt = c / "model_int8.pt"
            if pt.exists():
                int8 = int8 or pt
            ggufs = sorted(c.glob("*.gguf"))
            if ggufs:
                gguf = gguf or ggufs[0]
    gguf_art = version.artifact("gguf")
    if gguf is None and gguf_art is not None and gguf_art.exists():
        gguf = gguf_art
    return int8, gguf


def _load_transformers(ref: str, backend: str) -> TransformersLLM:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from core.models import resolve_llm_path

    if _threads():
        torch.set_num_threads(_threads())
    path = resolve_llm_path(ref)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    model.eval()
    if backend == "torch-int8":
        model = _quantize_int8(model)
        version = _registry_version(ref)
        int8_file = _quantized_files(version)[0] if version is not None else None
        if int8_file is not None:
            state = torch.load(int8_file, map_location="cpu", weights_only=False)
            model.load_state_dict(state)
            log.info("loaded the registry's int8 export %s", int8_file)
        model.eval()
    return TransformersLLM(ref, model, tokenizer, backend)


# --------------------------------------------------------------------------- llama.cpp
class LlamaCppLLM(BaseLLM):
    backend = "llamacpp"

    def __init__(self, ref: str, gguf: Path, tokenizer: Any | None) -> None:
        super().__init__(ref, tokenizer)
        from llama_cpp import Llama

        self.gguf = gguf
        kwargs: dict[str, Any] = {"model_path": str(gguf), "n_ctx": 4096, "verbose": False}
        if _threads():
            kwargs["n_threads"] = _threads()
            kwargs["n_threads_batch"] = _threads()
        self.llama = Llama(**kwargs)

    def count_tokens(self, text: str) -> int:
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def stream(
        self,
        prompt_or_messages: PromptOrMessages,
        max_new_tokens: int | None = None,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[str]:
        max_new_tokens = int(max_new_tokens or get_settings().LLM_MAX_NEW_TOKENS)
        common = {
            "max_tokens": max_new_tokens,
            "temperature": float(temperature or 0.0),
            "top_p": kwargs.get("top_p", DEFAULTS.top_p),
            "repeat_penalty": kwargs.get("repetition_penalty", DEFAULTS.repetition_penalty),
            "stop": list(stop or []) or None,
            "stream": True,
        }
        yield from _until(self._stream(prompt_or_messages, common), kwargs.get("max_time"))

    def _stream(self, prompt_or_messages: PromptOrMessages, common: dict[str, Any]) -> Iterator[str]:
        messages = _as_messages(prompt_or_messages)
        with self._lock:
            if messages is not None and self.tokenizer is None:
                # No HF tokenizer: the GGUF's own chat template renders the messages.
                for part in self.llama.create_chat_completion(messages=messages, **common):
                    piece = part["choices"][0].get("delta", {}).get("content")
                    if piece:
                        yield piece
                return
            prompt = self.render(prompt_or_messages)
            for part in self.llama.create_completion(prompt=prompt, **common):
                piece = part["choices"][0].get("text")
                if piece:
                    yield piece


def _gguf_for(ref: str) -> Path | None:
    """The GGUF file that llama.cpp can serve for `ref`, if any."""
    if ref == OFFLINE_LLM_FALLBACK:
        from core.models import offline_llm_gguf

        return offline_llm_gguf()
    if ref.endswith(".gguf"):
        return Path(ref)
    if ref.startswith("registry:"):
        version = _registry_version(ref)
        if version is None:
            return _gguf_for(OFFLINE_LLM_FALLBACK)
        return _quantized_files(version)[1]
    return None


def _tokenizer_for(ref: str) -> Any | None:
    """The HF tokenizer (chat template) for `ref` — the same renderer training uses."""
    from transformers import AutoTokenizer

    from core.models import resolve_llm_path

    try:
        return AutoTokenizer.from_pretrained(resolve_llm_path(ref))
    except Exception as exc:  # noqa: BLE001 - fall back to the GGUF's own template
        log.warning("no HF tokenizer for %s (%s); using the GGUF chat template", ref, exc)
        return None


# --------------------------------------------------------------------------- OpenAI-compatible
class OpenAICompatLLM(BaseLLM):
    """Any OpenAI-compatible server: `/chat/completions` for messages, `/completions` else."""

    backend = "openai"

    def __init__(self, ref: str, base_url: str, api_key: str = "", timeout: float = 120.0) -> None:
        super().__init__(ref, None)
        import httpx

        url = base_url.rstrip("/")
        if httpx.URL(url).path in ("", "/"):
            url += "/v1"
        self.base_url = url
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(base_url=url, headers=headers, timeout=timeout)
        self._model: str | None = None

    @property
    def model(self) -> str:
        """The served model: an explicit `LLM_MODEL`, else the server's first model."""
        if self._model is None:
            explicit = not self.ref.startswith(("registry:", "offline:"))
            if explicit:
                self._model = self.ref
            else:
                try:
                    resp = self.client.get("/models")
                    resp.raise_for_status()
                    data = resp.json().get("data") or []
                    self._model = str(data[0]["id"]) if data else self.ref
                except Exception:  # noqa: BLE001 - some servers have no /models
                    self._model = self.ref
        return self._model

    def stream(
        self,
        prompt_or_messages: PromptOrMessages,
        max_new_tokens: int | None = None,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[str]:
        yield from _until(
            self._stream(prompt_or_messages, max_new_tokens, temperature, stop),
            kwargs.get("max_time"),
        )

    def _stream(
        self,
        prompt_or_messages: PromptOrMessages,
        max_new_tokens: int | None,
        temperature: float,
        stop: Sequence[str] | None,
    ) -> Iterator[str]:
        import httpx

        messages = _as_messages(prompt_or_messages)
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": int(max_new_tokens or get_settings().LLM_MAX_NEW_TOKENS),
            "temperature": float(temperature or 0.0),
            "stream": True,
        }
        if stop:
            body["stop"] = list(stop)
        if messages is not None:
            path, body["messages"] = "/chat/completions", messages
        else:
            path, body["prompt"] = "/completions", str(prompt_or_messages)
        try:
            with self.client.stream("POST", path, json=body) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise LLMError(
                        f"LLM server {self.base_url}{path} answered HTTP {resp.status_code}: "
                        f"{resp.text[:300]}"
                    )
                for line in resp.iter_lines():
                    line = line.strip()
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    try:
                        event = json.loads(data)
                    except json.JSONDecodeError:
                        continue
                    for choice in event.get("choices") or []:
                        piece = (choice.get("delta") or {}).get("content") or choice.get("text")
                        if piece:
                            yield piece
        except httpx.HTTPError as exc:
            raise LLMError(f"LLM server {self.base_url} unreachable: {exc}") from exc


# --------------------------------------------------------------------------- factory
_cache: dict[tuple[str, str, str], BaseLLM] = {}
_cache_lock = threading.Lock()


def choose_backend(ref: str, backend: str | None = None) -> str:
    """Resolve `auto`: server if configured, else llama.cpp with a GGUF, else torch int8."""
    backend = (backend or get_settings().LLM_BACKEND or "auto").strip().lower()
    if backend not in BACKENDS:
        raise LLMError(f"unknown LLM backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend != "auto":
        return backend
    if get_settings().LLM_BASE_URL:
        return "openai"
    if llamacpp_available():
        try:
            gguf = _gguf_for(ref)
        except Exception:  # noqa: BLE001 - no GGUF → in-process torch
            gguf = None
        if gguf is not None and gguf.exists():
            return "llamacpp"
    return "torch-int8"


def get_llm(ref: str | None = None, backend: str | None = None) -> BaseLLM:
    """The generation backend for `ref` (default `LLM_MODEL`), loaded once per process."""
    settings = get_settings()
    ref = ref or settings.LLM_MODEL
    chosen = choose_backend(ref, backend)
    key = (ref, chosen, settings.LLM_BASE_URL if chosen == "openai" else "")
    with _cache_lock:
        if key in _cache:
            return _cache[key]
        start = time.perf_counter()
        if chosen == "openai":
            if not settings.LLM_BASE_URL:
                raise LLMError("backend 'openai' needs LLM_BASE_URL")
            llm: BaseLLM = OpenAICompatLLM(ref, settings.LLM_BASE_URL, settings.LLM_API_KEY)
        elif chosen == "llamacpp":
            gguf = _gguf_for(ref)
            if gguf is None or not gguf.exists():
                raise LLMError(f"no GGUF file for {ref} (llama.cpp backend)")
            llm = LlamaCppLLM(ref, gguf, _tokenizer_for(ref))
        else:
            llm = _load_transformers(ref, chosen)
        log.info("LLM %s ready in %.1fs", llm.name, time.perf_counter() - start)
        _cache[key] = llm
        return llm


def clear_llm_cache() -> None:
    with _cache_lock:
        _cache.clear()


# --------------------------------------------------------------------------- LangChain
def lc_to_dicts(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    roles = {"human": "user", "ai": "assistant", "system": "system", "tool": "user"}
    out = []
    for m in messages:
        content = m.content if isinstance(m.content, str) else m.text
        out.append({"role": roles.get(m.type, "user"), "content": content})
    return out


def _usage(llm: BaseLLM, dicts: list[dict[str, str]], text: str) -> dict[str, int]:
    """Token counts for tracing (Opik reads `usage_metadata`)."""
    try:
        prompt = llm.render(dicts)
    except LLMError:  # a remote model without a local tokenizer: approximate
        prompt = "\n".join(m.get("content", "") for m in dicts)
    prompt_tokens = llm.count_tokens(prompt)
    output_tokens = llm.count_tokens(text) if text else 0
    return {
        "input_tokens": prompt_tokens,
        "output_tokens": output_tokens,
        "total_tokens": prompt_tokens + output_tokens,
    }


class TwinChatModel(BaseChatModel):
    """LangChain chat model over `get_llm()`, so graph nodes stream tokens to callbacks
    (LangServe `/stream_events`, LangGraph `stream_mode="messages"`, Opik spans)."""

    ref: str | None = None
    backend: str | None = None
    max_new_tokens: int | None = None
    temperature: float = 0.0
    llm: Any = None  # a loaded BaseLLM; resolved lazily from ref/backend otherwise

    @property
    def _llm_type(self) -> str:
        return "llm-twin"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"ref": self.ref, "backend": self.backend, "max_new_tokens": self.max_new_tokens}

    def _get(self) -> BaseLLM:
        if self.llm is None:
            self.llm = get_llm(self.ref, self.backend)
        return self.llm

    def _args(self, stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {
            "max_new_tokens": kwargs.pop("max_new_tokens", None) or self.max_new_tokens,
            "temperature": kwargs.pop("temperature", self.temperature),
            "stop": stop,
            **kwargs,
        }

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        llm = self._get()
        dicts = lc_to_dicts(messages)
        pieces = []
        for piece in llm.stream(dicts, **self._args(stop, kwargs)):
            pieces.append(piece)
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk
        yield self._final_chunk(llm, dicts, "".join(pieces))

    def _final_chunk(
        self, llm: BaseLLM, dicts: list[dict[str, str]], text: str
    ) -> ChatGenerationChunk:
        """An empty closing chunk that carries token counts and the model ref."""
        return ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                usage_metadata=_usage(llm, dicts, text),
                response_metadata={"model_name": llm.name},
            )
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        llm = self._get()
        dicts = lc_to_dicts(messages)
        text = llm.generate(dicts, **self._args(stop, kwargs))
        message = AIMessage(
            content=text,
            usage_metadata=_usage(llm, dicts, text),
            response_metadata={"model_name": llm.name},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        """Generation runs in a worker thread; pieces cross to the event loop via a queue,
        so the loop stays free while the CPU generates."""
        import asyncio

        llm = await asyncio.to_thread(self._get)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        args = self._args(stop, kwargs)
        dicts = lc_to_dicts(messages)

        def produce() -> None:
            try:
                for piece in llm.stream(dicts, **args):
                    loop.call_soon_threadsafe(queue.put_nowait, ("piece", piece))
                loop.call_soon_threadsafe(queue.put_nowait, ("done", None))
            except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
                loop.call_soon_threadsafe(queue.put_nowait, ("error", exc))

        task = loop.run_in_executor(None, produce)
        pieces: list[str] = []
        try:
            while True:
                kind, value = await queue.get()
                if kind == "done":
                    break
                if kind == "error":
                    raise value
                pieces.append(value)
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=value))
                if run_manager:
                    await run_manager.on_llm_new_token(value, chunk=chunk)
                yield chunk
        finally:
            await task
        yield await asyncio.to_thread(self._final_chunk, llm, dicts, "".join(pieces))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        merged: ChatGenerationChunk | None = None
        async for chunk in self._astream(messages, stop, run_manager, **kwargs):
            merged = chunk if merged is None else merged + chunk
        message = merged.message if merged is not None else AIMessageChunk(content="")
        result = AIMessage(
            content=str(message.content).strip(),
            usage_metadata=message.usage_metadata,
            response_metadata=message.response_metadata,
        )
        return ChatResult(generations=[ChatGeneration(message=result)])


def get_chat_model(ref: str | None = None, **kwargs: Any) -> TwinChatModel:
    return TwinChatModel(ref=ref, **kwargs)
