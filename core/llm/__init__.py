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
  `LLM_BASE_URL` is set: httpx, streaming over SSE (`remote.py`).
- `llamacpp` — `llama-cpp-python` serving a GGUF directly (an offline model's GGUF, a
  registry version's `quantized/*.gguf`, or a `.gguf` ref), built by `make install`;
  picked automatically when importable and a GGUF exists for the ref (`local.py`).
- `torch-int8` — in-process transformers on CPU with torch dynamic int8 quantization of
  the Linear layers; for registry refs the saved `quantized/model_int8.pt` is loaded when
  present. The fallback where llama.cpp did not build.
- `torch-fp32` — the unquantized model (baseline for benchmarks and quality checks).

Sampling knobs a call leaves unset come from the model's tuned `GenerationDefaults`
(`MODEL_DEFAULTS`, chosen by benchmarks/twin_quality.py); chat-template control tokens are
stop strings; `sentence_grace=N` lets an answer run up to N tokens past its budget to end
on a full sentence. Threads: `LLM_THREADS` (0 = all cores).

Serving: `BaseLLM.astream` waits for a free generation slot (`LLM_CONCURRENCY`
slots, at most `LLM_QUEUE_WAIT_S` in line, else `GenerationBusy`) and stops decoding within
a token when its task is cancelled (llama.cpp and torch through a per-token stopping
criterion, the OpenAI-compatible backend by closing the HTTP stream); `last_run` records
what the backend decoded. At most `LLM_CACHE_SIZE` models stay loaded; a registry ref's
cache entry follows promote/rollback (`pinned_ref` fixes one request to one version).

Measured on held-out PEPs (benchmarks/twin_quality.py, 2 cores): Qwen2.5-Coder-0.5B on
llama.cpp decodes ~42 tokens/s with a first token after ~1.2 s for a 300-token prompt;
the same model on torch int8 is several times slower, and SmolLM2-135M is faster but far
less on topic and in voice (numbers in the README / the benchmark's table).
"""

from core.llm.base import (
    BACKENDS,
    DEFAULTS,
    MODEL_DEFAULTS,
    BaseLLM,
    GenerationDefaults,
    GenerationRun,
    LLMError,
    ends_sentence,
    generation_defaults,
    trim_to_sentence,
)
from core.llm.chat_model import TwinChatModel, get_chat_model, lc_to_dicts
from core.llm.factory import choose_backend, clear_llm_cache, get_llm, pinned_ref
from core.llm.local import LlamaCppLLM, TransformersLLM, llamacpp_available
from core.llm.remote import OpenAICompatLLM
from core.llm.slots import GenerationBusy, generation_slots

__all__ = [
    "BACKENDS",
    "DEFAULTS",
    "MODEL_DEFAULTS",
    "BaseLLM",
    "GenerationBusy",
    "GenerationDefaults",
    "GenerationRun",
    "LLMError",
    "LlamaCppLLM",
    "OpenAICompatLLM",
    "TransformersLLM",
    "TwinChatModel",
    "choose_backend",
    "clear_llm_cache",
    "ends_sentence",
    "generation_defaults",
    "generation_slots",
    "get_chat_model",
    "get_llm",
    "lc_to_dicts",
    "llamacpp_available",
    "pinned_ref",
    "trim_to_sentence",
]
