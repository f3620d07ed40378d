"""GGUF export of merged weights for the qwen2 architecture (the served base), quantized by
llama.cpp's own quantizer, read back by llama.cpp: a tiny randomly initialised Qwen2 with the
real Qwen tokenizer keeps this fast while every component is the real one."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python is not installed"
)
QWEN = "offline:Qwen2.5-Coder-0.5B-Instruct"
TEXT = "Explicit is better than implicit. Simple is better than complex."


@pytest.fixture(scope="module")
def tiny_qwen(tmp_path_factory):
    """A 2-layer Qwen2 with the real vocabulary, saved like finetune's merged/ folder."""
    import torch
    from conftest import SHARED_MODELS_CACHE
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from core.models import gguf_tokenizer_dir, offline_llm_gguf
    from core.settings import reset_settings

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MODELS_CACHE_DIR", str(SHARED_MODELS_CACHE))
        reset_settings()
        source = offline_llm_gguf(QWEN)
        tokenizer = AutoTokenizer.from_pretrained(gguf_tokenizer_dir(source))
    reset_settings()
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=151936, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        rms_norm_eps=1e-6, tie_word_embeddings=False,
    )  # fmt: skip
    model = Qwen2ForCausalLM(config).eval()
    with torch.no_grad():  # peaked logits, so that the comparison below is meaningful
        model.lm_head.weight.mul_(40)
        for layer in model.model.layers:
            layer.self_attn.q_proj.bias.normal_(0, 0.5)
    merged = tmp_path_factory.mktemp("version") / "merged"
    model.save_pretrained(merged)
    tokenizer.save_pretrained(merged)
    ids = tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0].numpy()
    return merged, source, ids, logits


def _llama_logits(path, ids):
    from llama_cpp import Llama

    llama = Llama(model_path=str(path), n_ctx=64, n_threads=2, logits_all=True, verbose=False)
    llama.eval(ids)
    return np.array(llama.scores[: len(ids)]), llama


@pytest.mark.slow  # GGUF writes, a quantization and two llama.cpp loads (~20 s on 2 cores)
def test_qwen2_gguf_matches_transformers_and_quantizes(tiny_qwen, tmp_path):
    from finetune.export import export_gguf, export_quantized_gguf

    merged, source, ids, reference = tiny_qwen
    f16 = export_gguf(merged, tmp_path / "f16" / "model-f16.gguf", source)
    # The metadata as llama.cpp reads it (gguf's own reader takes 6 s on the 150k-token
    # vocabulary). Its tensors are proven by the logits below: the q/k/v biases and the
    # untied output head all change them.
    logits, llama = _llama_logits(f16, ids)
    assert llama.metadata["general.architecture"] == "qwen2"
    assert llama.metadata["tokenizer.ggml.pre"] == "qwen2"
    # llama.cpp tokenizes like the HF tokenizer (tokenizer metadata copied from the base).
    assert llama.tokenize(TEXT.encode(), add_bos=False, special=False) == ids
    assert (logits.argmax(-1) == reference.argmax(-1)).mean() == 1.0
    assert np.abs(logits - reference).max() < 0.05 * np.abs(reference).max()
    del llama

    q8 = export_quantized_gguf(merged, tmp_path / "q8", source, "Q8_0")
    assert q8.name == "model-Q8_0.gguf"
    assert [p.name for p in q8.parent.iterdir()] == ["model-Q8_0.gguf"]  # f16 removed
    assert q8.stat().st_size < 0.6 * f16.stat().st_size
    quantized, llama = _llama_logits(q8, ids)
    assert (quantized.argmax(-1) == reference.argmax(-1)).mean() >= 0.9
    del llama


def test_unknown_architecture_and_gguf_type_are_refused(tiny_qwen, tmp_path):
    import json
    import shutil

    from finetune.export import export_gguf, quantize_gguf

    merged, source, _, _ = tiny_qwen
    other = tmp_path / "merged"
    shutil.copytree(merged, other)
    config = json.loads((other / "config.json").read_text())
    config["model_type"] = "gemma3_text"
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="gemma3_text"):
        export_gguf(other, tmp_path / "x.gguf", source)
    with pytest.raises(ValueError, match="Q3_X"):
        quantize_gguf(tmp_path / "x.gguf", tmp_path / "y.gguf", "Q3_X")
