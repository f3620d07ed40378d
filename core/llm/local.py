"""In-process backends: transformers on CPU (fp32 / dynamic int8) and llama.cpp on a GGUF."""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from core.llm.base import (
    BaseLLM,
    GenerationRun,
    LLMError,
    PromptOrMessages,
    _as_messages,
    _registry_version,
    _stop_filtered,
    _threads,
    _until,
)
from core.llm.vocab_masks import VocabMasks
from core.settings import OFFLINE_LLM_FALLBACK

log = logging.getLogger(__name__)


def llamacpp_available() -> bool:
    """llama-cpp-python is installed and runs on this CPU (`core.llm.probe`)."""
    from core.llm.probe import llamacpp_runs

    return llamacpp_runs()


# --------------------------------------------------------------------------- transformers
class TransformersLLM(VocabMasks, BaseLLM):
    """In-process transformers on CPU (fp32 or dynamic int8), streaming via a thread."""

    def __init__(self, ref: str, model: Any, tokenizer: Any, backend: str) -> None:
        super().__init__(ref, tokenizer)
        self.model = model
        self.backend = backend

    def _eos_ids(self) -> list[int | None]:
        eos = self.model.generation_config.eos_token_id
        return [*(eos if isinstance(eos, list) else [eos]), self.tokenizer.eos_token_id]

    def _encode_special(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    @cached_property
    def _vocab_pieces(self) -> list[tuple[int, str]]:
        vocab = range(len(self.tokenizer))
        return list(zip(vocab, self.tokenizer.batch_decode([[i] for i in vocab]), strict=True))

    def _stream_pieces(
        self,
        prompt_or_messages: PromptOrMessages,
        max_new_tokens: int,
        temperature: float,
        stop: Sequence[str],
        *,
        run: GenerationRun,
        **kwargs: Any,
    ) -> Iterator[str]:
        import torch
        from transformers import StoppingCriteriaList, TextIteratorStreamer

        prompt = self.render(prompt_or_messages)
        inputs = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        streamer = TextIteratorStreamer(
            self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=300
        )
        gen_kwargs: dict[str, Any] = {
            **inputs,
            "max_new_tokens": max_new_tokens,
            "streamer": streamer,
            "pad_token_id": self.tokenizer.pad_token_id,
            "repetition_penalty": kwargs["repetition_penalty"],
        }
        if kwargs.get("max_time"):
            gen_kwargs["max_time"] = float(kwargs["max_time"])
        if kwargs.get("no_repeat_ngram_size"):
            gen_kwargs["no_repeat_ngram_size"] = int(kwargs["no_repeat_ngram_size"])
        processors = self._logits_processors(kwargs, llamacpp=False, stops=stop)
        if processors:
            gen_kwargs["logits_processor"] = processors
        if temperature and temperature > 0:
            gen_kwargs.update(do_sample=True, temperature=float(temperature), top_p=kwargs["top_p"])
        else:
            gen_kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        # The run's cancel flag (client gone, deadline) and the consumer stopping early
        # (stop string, closed stream) both halt generation at the next token.
        consumer_done = threading.Event()
        gen_kwargs["stopping_criteria"] = StoppingCriteriaList([_RunStop(run, consumer_done)])
        error: list[BaseException] = []

        def decode() -> None:
            try:
                with self._lock, torch.inference_mode():
                    self.model.generate(**gen_kwargs)
            except BaseException as exc:  # surfaced to the consumer below
                error.append(exc)
                streamer.end()

        thread = threading.Thread(target=decode, name="llm-generate", daemon=True)
        thread.start()
        try:
            yield from _stop_filtered(iter(streamer), stop)
        finally:
            consumer_done.set()
            thread.join()
        if error:
            raise LLMError(f"generation failed: {error[0]}") from error[0]


class _RunStop:
    """A transformers stopping criterion (called once per new token): counts the token and
    fires once the run is cancelled or the consumer has stopped reading."""

    def __init__(self, run: GenerationRun, consumer_done: threading.Event) -> None:
        self.run = run
        self.consumer_done = consumer_done

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        stop = self.run.token() or self.consumer_done.is_set()
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool)


def quantize_int8(model: Any) -> Any:
    """Dynamic int8 of every Linear layer: the one recipe the registry's int8 export is
    saved with and loaded back into (finetune.export), so the state_dict keys match."""
    import torch
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=False)


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

    from core.models import _load_lock, resolve_llm_path

    if _threads():
        torch.set_num_threads(_threads())
    path = resolve_llm_path(ref)
    # One transformers load at a time per process: concurrent loads (the server's warm-up
    # beside a first request loading the embedding model) left weights on the meta device.
    with _load_lock:
        tokenizer = AutoTokenizer.from_pretrained(path)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    model.eval()
    if backend == "torch-int8":
        model = quantize_int8(model)
        version = _registry_version(ref)
        int8_file = _quantized_files(version)[0] if version is not None else None
        if int8_file is not None:
            state = torch.load(int8_file, map_location="cpu", weights_only=False)
            model.load_state_dict(state)
            log.info("loaded the registry's int8 export %s", int8_file)
        model.eval()
    return TransformersLLM(ref, model, tokenizer, backend)


# --------------------------------------------------------------------------- llama.cpp
class LlamaCppLLM(VocabMasks, BaseLLM):
    backend = "llamacpp"

    def __init__(self, ref: str, gguf: Path, tokenizer: Any | None) -> None:
        super().__init__(ref, tokenizer)
        from llama_cpp import Llama

        self.gguf = gguf
        # llama.cpp decodes on half the cores unless told; all cores measured 1.6x faster on
        # an idle 2-core machine (LLM_THREADS lowers it where other work shares the CPU).
        threads = _threads() or os.cpu_count() or 1
        self.llama = Llama(
            model_path=str(gguf),
            n_ctx=4096,
            n_threads=threads,
            n_threads_batch=threads,
            verbose=False,
        )

    def count_tokens(self, text: str) -> int:
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def _eos_ids(self) -> list[int | None]:
        return [self.llama.token_eos()]

    def _encode_special(self, text: str) -> list[int]:
        return self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    @cached_property
    def _vocab_pieces(self) -> list[tuple[int, str]]:
        detokenize = self.llama.detokenize
        return [
            (i, detokenize([i]).decode("utf-8", "replace")) for i in range(self.llama.n_vocab())
        ]

    def _stream_pieces(
        self,
        prompt_or_messages: PromptOrMessages,
        max_new_tokens: int,
        temperature: float,
        stop: Sequence[str],
        *,
        run: GenerationRun,
        **kwargs: Any,
    ) -> Iterator[str]:
        from llama_cpp import StoppingCriteriaList

        common: dict[str, Any] = {
            "max_tokens": max_new_tokens,
            "temperature": temperature,
            "top_p": kwargs["top_p"],
            "repeat_penalty": kwargs["repetition_penalty"],
            "stop": list(stop) or None,
            "stream": True,
        }
        processors = self._logits_processors(kwargs, llamacpp=True, stops=stop)
        if processors:
            from llama_cpp import LogitsProcessorList

            common["logits_processor"] = LogitsProcessorList(processors)
        stop_check = StoppingCriteriaList([lambda _ids, _logits: run.token()])
        pieces = self._stream(prompt_or_messages, common, stop_check, run)
        yield from _until(pieces, kwargs.get("max_time"))

    def _stream(
        self,
        prompt_or_messages: PromptOrMessages,
        common: dict[str, Any],
        stop_check: Any,
        run: GenerationRun,
    ) -> Iterator[str]:
        messages = _as_messages(prompt_or_messages)
        with self._lock:
            if messages is not None and self.tokenizer is None:
                # No HF tokenizer: the GGUF's own chat template renders the messages. The
                # chat API takes no stopping criteria: a cancelled run stops at the next
                # streamed token instead.
                for part in self.llama.create_chat_completion(messages=messages, **common):
                    if run.token():
                        return
                    piece = part["choices"][0].get("delta", {}).get("content")
                    if piece:
                        yield piece
                return
            prompt = self.render(prompt_or_messages)
            # Checked by llama.cpp after each sampled token: a cancelled run stops there.
            for part in self.llama.create_completion(
                prompt=prompt, stopping_criteria=stop_check, **common
            ):
                piece = part["choices"][0].get("text")
                if piece:
                    yield piece


def _gguf_for(ref: str) -> Path | None:
    """The GGUF file that llama.cpp can serve for `ref`, if any."""
    from core.models import OFFLINE_LLMS, offline_llm_gguf

    if ref in OFFLINE_LLMS:
        return offline_llm_gguf(ref)
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
    from core.models import (
        OFFLINE_LLMS,
        gguf_tokenizer_dir,
        load_tokenizer,
        offline_llm_gguf,
        resolve_llm_path,
    )

    try:
        if ref in OFFLINE_LLMS or ref.endswith(".gguf"):
            gguf = offline_llm_gguf(ref) if ref in OFFLINE_LLMS else Path(ref)
            return load_tokenizer(str(gguf_tokenizer_dir(gguf)))
        if ref.startswith("registry:") and _registry_version(ref) is None:
            return _tokenizer_for(OFFLINE_LLM_FALLBACK)
        return load_tokenizer(str(resolve_llm_path(ref)))
    except Exception as exc:  # noqa: BLE001 - fall back to the GGUF's own template
        # The message, not the exception: a kept log record would keep its traceback's
        # frames (and the model they loaded) alive.
        log.warning("no HF tokenizer for %s (%s); using the GGUF chat template", ref, str(exc))
        return None
