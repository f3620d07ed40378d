"""The LangChain chat model over `get_llm()`: graph nodes stream tokens to callbacks."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from core.llm.base import BaseLLM, LLMError
from core.llm.factory import get_llm

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- LangChain
def lc_to_dicts(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    roles = {"human": "user", "ai": "assistant", "system": "system", "tool": "user"}
    out = []
    for m in messages:
        content = m.content if isinstance(m.content, str) else m.text
        out.append({"role": roles.get(m.type, "user"), "content": content})
    return out


def _usage(llm: BaseLLM, dicts: list[dict[str, str]], text: str) -> dict[str, int]:
    """Token counts for tracing (Opik reads `usage_metadata`)."""
    try:
        prompt = llm.render(dicts)
    except LLMError:  # a remote model without a local tokenizer: approximate
        prompt = "\n".join(m.get("content", "") for m in dicts)
    prompt_tokens = llm.count_tokens(prompt)
    output_tokens = llm.count_tokens(text) if text else 0
    return {
        "input_tokens": prompt_tokens,
        "output_tokens": output_tokens,
        "total_tokens": prompt_tokens + output_tokens,
    }


class TwinChatModel(BaseChatModel):
    """LangChain chat model over `get_llm()`, so graph nodes stream tokens to callbacks
    (LangServe `/stream_events`, LangGraph `stream_mode="messages"`, Opik spans)."""

    ref: str | None = None
    backend: str | None = None
    max_new_tokens: int | None = None
    temperature: float | None = None  # None: the model's tuned default
    llm: Any = None  # a loaded BaseLLM; resolved lazily from ref/backend otherwise

    @property
    def _llm_type(self) -> str:
        return "llm-twin"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"ref": self.ref, "backend": self.backend, "max_new_tokens": self.max_new_tokens}

    def _get(self) -> BaseLLM:
        # Looked up per call, not kept: a chat model that outlives its request (held by a
        # trace or a callback) must not keep a replaced model version's weights alive.
        return self.llm if self.llm is not None else get_llm(self.ref, self.backend)

    def _args(self, stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {
            "max_new_tokens": kwargs.pop("max_new_tokens", None) or self.max_new_tokens,
            "temperature": kwargs.pop("temperature", self.temperature),
            "stop": stop,
            **kwargs,
        }

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        llm = self._get()
        dicts = lc_to_dicts(messages)
        pieces = []
        for piece in llm.stream(dicts, **self._args(stop, kwargs)):
            pieces.append(piece)
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk
        yield self._final_chunk(llm, dicts, "".join(pieces))

    def _final_chunk(
        self, llm: BaseLLM, dicts: list[dict[str, str]], text: str
    ) -> ChatGenerationChunk:
        """An empty closing chunk that carries token counts and the model ref."""
        return ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                usage_metadata=_usage(llm, dicts, text),
                response_metadata={"model_name": llm.name, "model_version": llm.version},
            )
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        llm = self._get()
        dicts = lc_to_dicts(messages)
        text = llm.generate(dicts, **self._args(stop, kwargs))
        message = AIMessage(
            content=text,
            usage_metadata=_usage(llm, dicts, text),
            response_metadata={"model_name": llm.name, "model_version": llm.version},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        """Pieces from the backend's `astream`: it waits for a generation slot and stops
        decoding when this task is cancelled (client gone, deadline passed)."""
        import asyncio

        llm = await asyncio.to_thread(self._get)
        dicts = lc_to_dicts(messages)
        pieces: list[str] = []
        async for piece in llm.astream(dicts, **self._args(stop, kwargs)):
            pieces.append(piece)
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager:
                await run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk
        yield await asyncio.to_thread(self._final_chunk, llm, dicts, "".join(pieces))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        merged: ChatGenerationChunk | None = None
        async for chunk in self._astream(messages, stop, run_manager, **kwargs):
            merged = chunk if merged is None else merged + chunk
        message = merged.message if merged is not None else AIMessageChunk(content="")
        result = AIMessage(
            content=str(message.content).strip(),
            usage_metadata=message.usage_metadata,
            response_metadata=message.response_metadata,
        )
        return ChatResult(generations=[ChatGeneration(message=result)])


def get_chat_model(ref: str | None = None, **kwargs: Any) -> TwinChatModel:
    return TwinChatModel(ref=ref, **kwargs)

