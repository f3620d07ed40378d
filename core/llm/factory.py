"""`get_llm(ref)`: the backend for a model ref, chosen by what is installed, loaded once."""

from __future__ import annotations

import logging
import threading
import time

from core.llm.base import BACKENDS, BaseLLM, LLMError
from core.llm.local import (
    LlamaCppLLM,
    _gguf_for,
    _load_transformers,
    _tokenizer_for,
    llamacpp_available,
)
from core.llm.remote import OpenAICompatLLM
from core.settings import get_settings

log = logging.getLogger(__name__)

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


