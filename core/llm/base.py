"""The common surface of every generation backend: `BaseLLM`, tuned sampling defaults per
model, stop strings and sentence-bounded endings."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.llm.errors import LLMError
from core.prompts import EXCERPT_BREAK
from core.settings import (
    OFFLINE_LLM_FALLBACK,
    OFFLINE_QWEN,
    OFFLINE_QWEN_15,
    OFFLINE_SMOLLM2,
    get_settings,
)

log = logging.getLogger(__name__)


Messages = Sequence[dict[str, str]]
PromptOrMessages = str | Messages
BACKENDS = ("auto", "openai", "llamacpp", "torch-int8", "torch-fp32")


@dataclass(frozen=True)
class GenerationDefaults:
    """Sampling knobs of one model, used when a call does not set them.

    Chosen per model by benchmarks/twin_quality.py (degenerate share, topicality and
    attribution on held-out PEPs); see `MODEL_DEFAULTS`."""

    temperature: float = 0.0
    top_p: float = 0.9
    repetition_penalty: float = 1.15
    # DRY penalty on extending a token run already in the context (core/llm/dry.py); 0: off.
    dry_multiplier: float = 0.0
    # Chat-template control text and the prompt's excerpt separator: generation ends there
    # instead of leaking it (core.prompts.EXCERPT_BREAK).
    stop: tuple[str, ...] = ("<|im_end|>", "<|im_start|>", "<|endoftext|>", EXCERPT_BREAK)


DEFAULTS = GenerationDefaults()
MODEL_DEFAULTS: dict[str, GenerationDefaults] = {
    # DRY 0.8 on the 12 held-out PEPs: degenerate 8% → 0%, topicality +0.23 → +0.30; the
    # fine-tuned twins (which inherit their base model's defaults) 50% → 8%.
    OFFLINE_QWEN: GenerationDefaults(
        temperature=0.3, top_p=0.9, repetition_penalty=1.1, dry_multiplier=0.8
    ),
    OFFLINE_QWEN_15: GenerationDefaults(
        temperature=0.3, top_p=0.9, repetition_penalty=1.1, dry_multiplier=0.8
    ),
    OFFLINE_SMOLLM2: GenerationDefaults(temperature=0.0, top_p=0.9, repetition_penalty=1.15),
}


def generation_defaults(ref: str) -> GenerationDefaults:
    """The tuned defaults of `ref`'s model (a registry version: those of its base model)."""
    if ref in MODEL_DEFAULTS:
        return MODEL_DEFAULTS[ref]
    version = _registry_version(ref) if ref.startswith("registry:") else None
    if version is not None:
        return MODEL_DEFAULTS.get(str(version.manifest.get("base_model") or ""), DEFAULTS)
    if ref.startswith("registry:"):  # not trained yet: the offline model answers
        return MODEL_DEFAULTS.get(OFFLINE_LLM_FALLBACK, DEFAULTS)
    return DEFAULTS


_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]*_`]*\s*$|```\s*$")


def ends_sentence(text: str) -> bool:
    return bool(_SENTENCE_END.search(text))


def trim_to_sentence(text: str) -> str:
    """Drop a trailing unfinished sentence (kept when nothing would be left)."""
    stripped = text.rstrip()
    if not stripped or ends_sentence(stripped):
        return stripped
    cut = max(stripped.rfind(c) for c in (". ", "! ", "? ", ".\n", "!\n", "?\n", "```\n"))
    return stripped[: cut + 1].rstrip() if cut > 0 else stripped


def _sentence_bounded(pieces: Iterator[str], budget: int, count_tokens: Any) -> Iterator[str]:
    """Past `budget` tokens, stop at the first sentence end (the caller asked the backend
    for a few more tokens than the budget, so answers finish their last sentence)."""
    text = ""
    for piece in pieces:
        yield piece
        text += piece
        if ends_sentence(text) and count_tokens(text) >= budget:
            return


async def _asentence_bounded(
    pieces: AsyncIterator[str], budget: int, count_tokens: Any
) -> AsyncIterator[str]:
    """`_sentence_bounded` for an async stream."""
    text = ""
    async for piece in pieces:
        yield piece
        text += piece
        if ends_sentence(text) and count_tokens(text) >= budget:
            return


@dataclass(eq=False)
class GenerationRun:
    """One generation: its cancel flag and what the backend produced.

    Backends call `token()` once per decoded token and stop decoding as soon as it returns
    True, so a cancelled run (client gone, deadline passed, consumer closed) frees the model
    within a token. Kept as `BaseLLM.last_run` for health checks and tests."""

    cancel: threading.Event = field(default_factory=threading.Event)
    tokens: int = 0
    tokens_after_cancel: int = 0
    finished: threading.Event = field(default_factory=threading.Event)

    def token(self) -> bool:
        """Count one decoded token; True when the run should stop."""
        if self.cancel.is_set():
            self.tokens_after_cancel += 1
            return True
        self.tokens += 1
        return False

    @property
    def cancelled(self) -> bool:
        return self.cancel.is_set()


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
        self.defaults = generation_defaults(ref)
        self.version = ref  # what the ref resolved to when loaded (set by get_llm)
        self._lock = threading.Lock()  # in-process weights decode one request at a time
        self.last_run: GenerationRun | None = None

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

    @property
    def busy(self) -> bool:
        """Whether a generation holds the model now."""
        return self._lock.locked()

    def _sampling(
        self,
        max_new_tokens: int | None,
        temperature: float | None,
        stop: Sequence[str] | None,
        kwargs: dict[str, Any],
    ) -> tuple[int, int, float, list[str]]:
        """(budget, sentence grace, temperature, stop strings); fills `kwargs` defaults."""
        budget = int(max_new_tokens or get_settings().LLM_MAX_NEW_TOKENS)
        grace = max(0, int(kwargs.pop("sentence_grace", 0) or 0))
        if temperature is None:
            temperature = self.defaults.temperature
        kwargs.setdefault("top_p", self.defaults.top_p)
        kwargs.setdefault("repetition_penalty", self.defaults.repetition_penalty)
        kwargs.setdefault("dry_multiplier", self.defaults.dry_multiplier)
        # DRY's penalty on both spellings of a word (core/llm/dry.py) and grounded names'
        # check of capitalised prose words; False: the earlier recipes, kept for
        # benchmarks/twin_quality.py's comparison.
        kwargs.setdefault("dry_spellings", True)
        kwargs.setdefault("prose_names", True)
        kwargs.setdefault("script", get_settings().LLM_SCRIPT)
        # Off unless asked: the twin's answers ask (retrievers.author_corpus.grounding_kwargs);
        # JSON for self-query, expansions and judges must not be steered.
        kwargs.setdefault("grounded_names", False)
        # Likewise the recitation guard (core/llm/recitation.py): the author's corpus index.
        kwargs.setdefault("recitation_index", None)
        stops = list(dict.fromkeys([*(stop or ()), *self.defaults.stop]))
        return budget, grace, float(temperature), stops

    def stream(
        self,
        prompt_or_messages: PromptOrMessages,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] | None = None,
        *,
        run: GenerationRun | None = None,
        **kwargs: Any,
    ) -> Iterator[str]:
        """Token pieces as they are produced. Unset sampling knobs take the model's tuned
        `defaults`; `sentence_grace=N` lets the answer run up to N tokens past
        `max_new_tokens` to finish its sentence (and stops at the first sentence end).
        Setting `run.cancel` (from any thread) stops decoding at the next token."""
        run = run or GenerationRun()
        self.last_run = run
        budget, grace, temperature, stops = self._sampling(
            max_new_tokens, temperature, stop, kwargs
        )
        pieces = self._stream_pieces(
            prompt_or_messages, budget + grace, temperature, stops, run=run, **kwargs
        )
        if grace:
            pieces = _sentence_bounded(pieces, budget, self.count_tokens)
        try:
            for piece in pieces:
                yield piece
                if run.cancelled:
                    return
        finally:
            pieces.close()
            run.finished.set()

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
        raise NotImplementedError

    async def astream(
        self,
        prompt_or_messages: PromptOrMessages,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[str]:
        """`stream` for the event loop: waits for a free generation slot, decodes in
        a worker thread, and cancels decoding when the consumer goes away (task cancelled,
        generator closed), so the model is free again within a token."""
        from core.admission import request_cancelled
        from core.llm.slots import generation_slots

        # An abandoned HTTP request (client gone, deadline) cancels this task directly:
        # frameworks may leave the request's own generators suspended instead of
        # cancelling them, and the graph's node tasks would then generate on.
        abandoned = request_cancelled()
        watcher = (
            asyncio.create_task(_cancel_when(abandoned, asyncio.current_task()))
            if abandoned is not None
            else None
        )
        try:
            async with generation_slots().slot(get_settings().LLM_QUEUE_WAIT_S):
                async for piece in self._astream_unlocked(
                    prompt_or_messages, max_new_tokens, temperature, stop, **kwargs
                ):
                    yield piece
        finally:
            if watcher is not None:
                watcher.cancel()

    async def _astream_unlocked(
        self,
        prompt_or_messages: PromptOrMessages,
        max_new_tokens: int | None,
        temperature: float | None,
        stop: Sequence[str] | None,
        **kwargs: Any,
    ) -> AsyncIterator[str]:
        run = GenerationRun()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

        def produce() -> None:
            try:
                for piece in self.stream(
                    prompt_or_messages, max_new_tokens, temperature, stop, run=run, **kwargs
                ):
                    loop.call_soon_threadsafe(queue.put_nowait, ("piece", piece))
                loop.call_soon_threadsafe(queue.put_nowait, ("done", None))
            except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
                loop.call_soon_threadsafe(queue.put_nowait, ("error", exc))

        worker = loop.run_in_executor(None, produce)
        try:
            while True:
                kind, value = await queue.get()
                if kind == "done":
                    return
                if kind == "error":
                    raise value
                yield value
        finally:
            if not worker.done():
                run.cancel.set()
            # The thread ends within a token; wait for it so the model is free afterwards.
            await asyncio.shield(worker)

    def generate(
        self,
        prompt_or_messages: PromptOrMessages,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> str:
        """The whole answer (see `stream`)."""
        text = "".join(
            self.stream(prompt_or_messages, max_new_tokens, temperature, stop, **kwargs)
        ).strip()
        return trim_to_sentence(text) if kwargs.get("sentence_grace") else text


async def _cancel_when(event: asyncio.Event, task: asyncio.Task[Any] | None) -> None:
    await event.wait()
    if task is not None:
        task.cancel()


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


def _registry_version(ref: str) -> Any | None:
    if not ref.startswith("registry:"):
        return None
    from core.registry import RegistryError, get_registry

    try:
        return get_registry().resolve(ref)
    except RegistryError:
        return None
