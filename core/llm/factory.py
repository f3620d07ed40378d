"""`get_llm(ref)`: the backend for a model ref, chosen by what is installed, loaded once."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict

from core.llm.base import BACKENDS, BaseLLM, LLMError, _registry_version
from core.llm.local import (
    LlamaCppLLM,
    _gguf_for,
    _load_transformers,
    _tokenizer_for,
    llamacpp_available,
)
from core.llm.remote import OpenAICompatLLM
from core.settings import OFFLINE_LLM_FALLBACK, get_settings

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- factory
# (model slot, backend, server URL, resolved version) → the loaded backend, least recently
# used first; at most LLM_CACHE_SIZE entries.
_cache: OrderedDict[tuple[str, str, str, str], BaseLLM] = OrderedDict()
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


def resolved_version(ref: str) -> str:
    """What `ref` points at now: a registry version id, the offline fallback for a registry
    ref with no such version yet, or the ref itself."""
    if not ref.startswith("registry:"):
        return ref
    version = _registry_version(ref)
    return version.version if version is not None else OFFLINE_LLM_FALLBACK


def pinned_ref(ref: str) -> str:
    """`ref` fixed to what it resolves to now (`registry:twin@accepted` → `registry:twin@v3`),
    so every call of one request uses the same weights even if a promote lands meanwhile."""
    if not ref.startswith("registry:"):
        return ref
    version = _registry_version(ref)
    if version is None:
        return OFFLINE_LLM_FALLBACK
    return f"registry:{version.name}@{version.version}"


def _slot(ref: str) -> str:
    """Versions of one registry model share a slot: loading one unloads the others."""
    return ref.partition("@")[0] if ref.startswith("registry:") else ref


def get_llm(ref: str | None = None, backend: str | None = None) -> BaseLLM:
    """The generation backend for `ref` (default `LLM_MODEL`), loaded once per process.

    Cached by the version the ref resolves to now, so a registry promote/rollback changes
    the weights that answer at the next call, and the previous version of that model is
    dropped (its memory is freed once no request uses it any more). At most
    `LLM_CACHE_SIZE` models stay loaded, least recently used dropped first."""
    settings = get_settings()
    ref = ref or settings.LLM_MODEL
    chosen = choose_backend(ref, backend)
    slot = (_slot(ref), chosen, settings.LLM_BASE_URL if chosen == "openai" else "")
    resolved = resolved_version(ref) if chosen != "openai" else ref
    key = (*slot, resolved)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        for stale in [k for k in _cache if k[:3] == slot]:
            log.info("%s now resolves to %s: unloading %s", ref, resolved, stale[3])
            del _cache[stale]
        while len(_cache) >= max(1, settings.LLM_CACHE_SIZE):
            evicted, _ = _cache.popitem(last=False)
            log.info("model cache full (LLM_CACHE_SIZE): unloading %s", evicted[0])
        start = time.perf_counter()
        if chosen == "openai":
            if not settings.LLM_BASE_URL:
                raise LLMError("backend 'openai' needs LLM_BASE_URL")
            llm: BaseLLM = OpenAICompatLLM(
                ref,
                settings.LLM_BASE_URL,
                settings.LLM_API_KEY,
                retries=settings.LLM_RETRIES,
                retry_backoff_s=settings.LLM_RETRY_BACKOFF_S,
            )
        elif chosen == "llamacpp":
            gguf = _gguf_for(ref)
            if gguf is None or not gguf.exists():
                raise LLMError(f"no GGUF file for {ref} (llama.cpp backend)")
            llm = LlamaCppLLM(ref, gguf, _tokenizer_for(ref))
        else:
            llm = _load_transformers(ref, chosen)
        llm.version = resolved
        log.info("LLM %s (%s) ready in %.1fs", llm.name, resolved, time.perf_counter() - start)
        _cache[key] = llm
        return llm


def clear_llm_cache() -> None:
    with _cache_lock:
        _cache.clear()


