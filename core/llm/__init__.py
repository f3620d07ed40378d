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

from core.llm.base import (
    BACKENDS,
    DEFAULTS,
    MODEL_DEFAULTS,
    BaseLLM,
    GenerationDefaults,
    LLMError,
    ends_sentence,
    generation_defaults,
    trim_to_sentence,
)
from core.llm.chat_model import TwinChatModel, get_chat_model, lc_to_dicts
from core.llm.factory import choose_backend, clear_llm_cache, get_llm
from core.llm.local import LlamaCppLLM, TransformersLLM, _quantize_int8, llamacpp_available
from core.llm.remote import OpenAICompatLLM

__all__ = [
    "BACKENDS",
    "DEFAULTS",
    "MODEL_DEFAULTS",
    "BaseLLM",
    "GenerationDefaults",
    "LLMError",
    "LlamaCppLLM",
    "OpenAICompatLLM",
    "TransformersLLM",
    "TwinChatModel",
    "_quantize_int8",
    "choose_backend",
    "clear_llm_cache",
    "ends_sentence",
    "generation_defaults",
    "get_chat_model",
    "get_llm",
    "lc_to_dicts",
    "llamacpp_available",
    "trim_to_sentence",
]
