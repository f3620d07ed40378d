"""Exports of a trained version: merged weights, torch dynamic-int8, GGUF.

Layout inside a registry version folder:
  adapter/                 the peft LoRA adapter (+ tokenizer)
  merged/                  `merge_and_unload()` in fp32, saved with its tokenizer; loadable by
                           `core.models.load_causal_lm(path)`
  quantized/model_int8.pt  state_dict of `torch.ao.quantization.quantize_dynamic(model,
                           {nn.Linear}, dtype=torch.qint8)` applied to the fp32 model built
                           from merged/; beside it the merged config + tokenizer and
                           `quantization.json`. Rebuild with `load_int8(folder)`: build the
                           fp32 model from the config, apply the same quantize_dynamic,
                           `load_state_dict` the saved one (no retraining, no merged weights).
  quantized/model-Q8_0.gguf llama and qwen2 architectures: the merged weights written as an
                           f16 GGUF with the `gguf` package, then quantized by llama.cpp's own
                           quantizer (`llama_cpp.llama_model_quantize`); the f16 file is
                           deleted. `get_llm("registry:NAME@VERSION")` serves it on llama.cpp.
Q8_0 rather than Q4_K_M: the base weights come dequantized from a Q4 GGUF, so re-quantizing
to Q4 rounds most of the small LoRA deltas back onto the base's own grid
(benchmarks/finetune.py `--gguf-check` measured the perplexity each format keeps).
"""

from __future__ import annotations

import functools
import json
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from core.llm.local import quantize_int8

log = logging.getLogger(__name__)
INT8_FILE = "model_int8.pt"
GGUF_TYPES = {"Q8_0": 7, "Q4_K_M": 15, "Q5_K_M": 17}  # llama.cpp's enum llama_ftype
DEFAULT_GGUF_TYPE = "Q8_0"
# GGUF architectures the writer below knows: HF model_type → (gguf arch, permute Q/K).
# llama.cpp's converter permutes Q/K for llama only (HF rotate-half → GGML interleaved RoPE).
GGUF_ARCHS = {"llama": ("LLAMA", True), "qwen2": ("QWEN2", False)}


def gguf_file(gguf_type: str = DEFAULT_GGUF_TYPE) -> str:
    return f"model-{gguf_type}.gguf"


_CONFIG_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "vocab.json",
    "merges.txt",
)


def merge_adapter(base_path: str, adapter_dir: Path, merged_dir: Path, tokenizer: Any) -> Any:
    """Load the base in fp32 on CPU, apply the adapter, merge, save with the tokenizer."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from finetune.sft import without_checkpointing_notice

    base = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    with without_checkpointing_notice():
        merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    merged.eval()
    merged_dir.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(str(merged_dir))
    tokenizer.save_pretrained(str(merged_dir))
    return merged


def export_int8(merged_dir: Path, out_dir: Path) -> Path:
    """Quantize the merged fp32 model (Linear layers → dynamic int8) and save its state_dict."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(merged_dir), dtype=torch.float32)
    model.eval()
    quantized = quantize_int8(model)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save(quantized.state_dict(), out_dir / INT8_FILE)
    for name in _CONFIG_FILES:
        if (merged_dir / name).exists():
            shutil.copy2(merged_dir / name, out_dir / name)
    (out_dir / "quantization.json").write_text(
        json.dumps(
            {
                "method": "torch.ao.quantization.quantize_dynamic",
                "modules": ["torch.nn.Linear"],
                "dtype": "qint8",
                "state_dict": INT8_FILE,
                "torch": torch.__version__,
                "rebuild": "fp32 model from config -> quantize_dynamic -> load_state_dict",
            },
            indent=2,
        )
    )
    return out_dir / INT8_FILE


def load_int8(folder: Path) -> tuple[Any, Any]:
    """(int8 model, tokenizer) from a `quantized/` folder (or a version folder)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder = Path(folder)
    if not (folder / INT8_FILE).exists() and (folder / "quantized" / INT8_FILE).exists():
        folder = folder / "quantized"
    config = AutoConfig.from_pretrained(str(folder))
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.eval()
    quantized = quantize_int8(model)
    state = torch.load(folder / INT8_FILE, weights_only=False)
    quantized.load_state_dict(state)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return quantized, tokenizer


# --- GGUF --------------------------------------------------------------------------------


def _permute_qk(weights: Any, n_head: int) -> Any:
    """HF's rotate-half Q/K layout → GGML's interleaved RoPE layout (as llama.cpp converts)."""
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def _tokenizer_fields_from_gguf(path: Path) -> list[tuple[str, Any, Any]]:
    """tokenizer.* key/values of an existing GGUF (the base's), to copy unchanged."""
    stat = Path(path).stat()
    return list(_read_tokenizer_fields(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns))


@functools.lru_cache(maxsize=1)
def _read_tokenizer_fields(path: str, size: int, mtime_ns: int) -> tuple[tuple[str, Any, Any], ...]:
    """Parsing a base's GGUF takes seconds (a 150k-token vocabulary and its merges, field by
    field): kept for the next export from the same file (its size and mtime in the key)."""
    import gguf

    reader = gguf.GGUFReader(path)
    fields = []
    for name, fld in reader.fields.items():
        if not name.startswith("tokenizer."):
            continue
        vtype = fld.types[0]
        if vtype == gguf.GGUFValueType.ARRAY:
            sub = fld.types[-1]
            if sub == gguf.GGUFValueType.STRING:
                value = [bytes(fld.parts[i]).decode("utf-8", "replace") for i in fld.data]
            else:
                value = [fld.parts[i].tolist()[0] for i in fld.data]
            fields.append((name, value, (vtype, sub)))
        elif vtype == gguf.GGUFValueType.STRING:
            fields.append((name, bytes(fld.parts[fld.data[0]]).decode("utf-8"), (vtype, None)))
        else:
            fields.append((name, fld.parts[fld.data[0]].tolist()[0], (vtype, None)))
    return tuple(fields)


def _tokenizer_fields_from_hf(merged_dir: Path, model_type: str) -> list[tuple[str, Any, Any]]:
    """gpt2-style BPE tokenizer metadata from tokenizer.json (byte-level BPE models)."""
    import gguf

    data = json.loads((merged_dir / "tokenizer.json").read_text("utf-8"))
    model = data.get("model", {})
    if model.get("type") != "BPE":
        raise ValueError("only byte-level BPE tokenizers are exported to GGUF here")
    vocab: dict[str, int] = dict(model["vocab"])
    added = {t["content"]: t for t in data.get("added_tokens", [])}
    for content, tok in added.items():
        vocab.setdefault(content, tok["id"])
    size = max(vocab.values()) + 1
    tokens = [f"[PAD{i}]" for i in range(size)]
    types = [gguf.TokenType.UNUSED] * size
    for text, idx in vocab.items():
        tokens[idx] = text
        special = added.get(text, {}).get("special", False)
        types[idx] = gguf.TokenType.CONTROL if special else gguf.TokenType.NORMAL
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    cfg = json.loads((merged_dir / "tokenizer_config.json").read_text("utf-8"))
    A, S, U = gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.STRING, gguf.GGUFValueType.UINT32
    fields: list[tuple[str, Any, Any]] = [
        ("tokenizer.ggml.model", "gpt2", (S, None)),
        # llama.cpp's pre-tokenizer: qwen2 has its own regex; "default" is GPT-2's.
        ("tokenizer.ggml.pre", "qwen2" if model_type == "qwen2" else "default", (S, None)),
        ("tokenizer.ggml.tokens", tokens, (A, S)),
        ("tokenizer.ggml.token_type", [int(t) for t in types], (A, gguf.GGUFValueType.INT32)),
        ("tokenizer.ggml.merges", merges, (A, S)),
    ]
    for key, name in (("bos_token", "bos"), ("eos_token", "eos"), ("pad_token", "padding")):
        value = cfg.get(key)
        value = value.get("content") if isinstance(value, dict) else value
        if value in vocab:
            fields.append((f"tokenizer.ggml.{name}_token_id", vocab[value], (U, None)))
    template = merged_dir / "chat_template.jinja"
    if template.exists():
        fields.append(("tokenizer.chat_template", template.read_text("utf-8"), (S, None)))
    return fields


def export_gguf(merged_dir: Path, out_path: Path, tokenizer_gguf: Path | None = None) -> Path:
    """Write a merged llama/qwen2 model as an f16 GGUF (llama.cpp tensor layout).

    Tokenizer metadata is copied from `tokenizer_gguf` (the base model's GGUF, when the base
    came from one: fine-tuning never changes the tokenizer) or built from tokenizer.json.
    """
    import gguf
    import numpy as np
    import torch
    from safetensors.torch import load_file

    config = json.loads((merged_dir / "config.json").read_text("utf-8"))
    model_type = config.get("model_type")
    if model_type not in GGUF_ARCHS:
        raise ValueError(f"GGUF export supports {sorted(GGUF_ARCHS)} models, not {model_type!r}")
    arch_name, permute = GGUF_ARCHS[model_type]
    n_layer = int(config["num_hidden_layers"])
    n_head = int(config["num_attention_heads"])
    n_kv = int(config.get("num_key_value_heads") or n_head)
    hidden = int(config["hidden_size"])
    head_dim = int(config.get("head_dim") or hidden // n_head)
    state: dict[str, Any] = {}
    for shard in sorted(merged_dir.glob("*.safetensors")):
        state.update(load_file(str(shard)))
    if "lm_head.weight" not in state and not config.get("tie_word_embeddings", False):
        raise ValueError("merged weights have no lm_head")

    arch = getattr(gguf.MODEL_ARCH, arch_name)
    name_map = gguf.get_tensor_name_map(arch, n_layer)
    tmp = out_path.with_suffix(".tmp")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(tmp), gguf.MODEL_ARCH_NAMES[arch])
    writer.add_name(merged_dir.parent.name or "twin")
    writer.add_context_length(int(config.get("max_position_embeddings", 2048)))
    writer.add_embedding_length(hidden)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(int(config["intermediate_size"]))
    writer.add_rope_dimension_count(head_dim)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_kv)
    writer.add_layer_norm_rms_eps(float(config.get("rms_norm_eps", 1e-5)))
    rope_theta = config.get("rope_theta") or (config.get("rope_parameters") or {}).get(
        "rope_theta", 10000.0
    )
    writer.add_rope_freq_base(float(rope_theta))
    writer.add_vocab_size(int(config["vocab_size"]))
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)

    fields = (
        _tokenizer_fields_from_gguf(tokenizer_gguf)
        if tokenizer_gguf and Path(tokenizer_gguf).exists()
        else _tokenizer_fields_from_hf(merged_dir, model_type)
    )
    for key, value, (vtype, _sub) in fields:
        if vtype == gguf.GGUFValueType.ARRAY:
            writer.add_array(key, value)
        else:
            writer.add_key_value(key, value, vtype)

    for hf_name in sorted(state):
        tensor = state[hf_name].to(torch.float32)
        if permute and hf_name.endswith("q_proj.weight"):
            tensor = _permute_qk(tensor, n_head)
        elif permute and hf_name.endswith("k_proj.weight"):
            tensor = _permute_qk(tensor, n_kv)
        mapped = name_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if mapped is None:
            log.info("GGUF export: skipping tensor %s", hf_name)
            continue
        data = tensor.numpy()
        # 1-D tensors (norms, biases) stay f32, matrices go to f16, as llama.cpp's converter
        # does.
        data = data.astype(np.float32 if data.ndim == 1 else np.float16)
        writer.add_tensor(mapped, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.rename(out_path)
    return out_path


def quantize_gguf(source: Path, out_path: Path, gguf_type: str = DEFAULT_GGUF_TYPE) -> Path:
    """Quantize an f16 GGUF with llama.cpp's own quantizer (`llama_model_quantize`)."""
    import llama_cpp

    if gguf_type not in GGUF_TYPES:
        raise ValueError(f"unknown GGUF type {gguf_type!r}; choose one of {sorted(GGUF_TYPES)}")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = GGUF_TYPES[gguf_type]
    params.nthread = 0  # all cores
    tmp = out_path.with_suffix(".tmp")
    # llama.cpp logs a line per tensor (hundreds) through llama-cpp-python's logger, whose
    # level map is one off from ggml's enum in 0.3.x (ggml INFO arrives as WARNING): only
    # ERROR keeps the listing out. A failure still raises below, with its return code.
    llama_log = logging.getLogger("llama-cpp-python")
    level = llama_log.level
    llama_log.setLevel(max(level, logging.ERROR))
    try:
        code = llama_cpp.llama_model_quantize(
            str(source).encode("utf-8"), str(tmp).encode("utf-8"), params
        )
    finally:
        llama_log.setLevel(level)
    if code != 0 or not tmp.exists():
        tmp.unlink(missing_ok=True)
        raise OSError(f"llama.cpp could not quantize {source} to {gguf_type} (code {code})")
    tmp.rename(out_path)
    return out_path


def export_quantized_gguf(
    merged_dir: Path,
    out_dir: Path,
    tokenizer_gguf: Path | None = None,
    gguf_type: str = DEFAULT_GGUF_TYPE,
    progress: bool = True,
) -> Path:
    """merged/ → f16 GGUF → `gguf_type` GGUF in `out_dir` (the f16 intermediate is removed).
    With `progress`, a line on stderr when it starts and when it ends: the export takes tens
    of seconds to minutes and would otherwise look like a hang after training."""
    started = time.perf_counter()
    if progress:
        _say(f"export: GGUF {gguf_type} of {merged_dir.parent.name} …")
    f16 = export_gguf(merged_dir, out_dir / "model-f16.gguf", tokenizer_gguf)
    try:
        out = quantize_gguf(f16, out_dir / gguf_file(gguf_type), gguf_type)
    finally:
        f16.unlink(missing_ok=True)
    if progress:
        _say(
            f"export: GGUF {gguf_type} written in {time.perf_counter() - started:.0f} s "
            f"({out.stat().st_size / 1e6:.0f} MB)"
        )
    return out


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def source_gguf(base_model: str) -> Path | None:
    """The GGUF a base model came from (following registry versions down to their offline
    base), whose tokenizer metadata the export copies."""
    from core.models import OFFLINE_LLMS, offline_llm_gguf
    from core.registry import RegistryError, get_registry

    seen: set[str] = set()
    while base_model.startswith("registry:") and base_model not in seen:
        seen.add(base_model)
        try:
            base_model = get_registry().resolve(base_model).manifest.get("base_model") or ""
        except RegistryError:
            return None
    if base_model in OFFLINE_LLMS:
        return offline_llm_gguf(base_model)
    if base_model.endswith(".gguf") and Path(base_model).exists():
        return Path(base_model)
    return None
