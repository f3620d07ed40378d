"""Any OpenAI-compatible server (vLLM, Ollama, TGI, llama.cpp server) over httpx + SSE."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from core.llm.base import (
    BaseLLM,
    GenerationRun,
    LLMError,
    PromptOrMessages,
    _as_messages,
    _asentence_bounded,
    _until,
)

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- OpenAI-compatible
class OpenAICompatLLM(BaseLLM):
    """Any OpenAI-compatible server: `/chat/completions` for messages, `/completions` else."""

    backend = "openai"

    def __init__(self, ref: str, base_url: str, api_key: str = "", timeout: float = 120.0) -> None:
        super().__init__(ref, None)
        import httpx

        url = base_url.rstrip("/")
        if httpx.URL(url).path in ("", "/"):
            url += "/v1"
        self.base_url = url
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(base_url=url, headers=headers, timeout=timeout)
        self._client_args = {"base_url": url, "headers": headers, "timeout": timeout}
        self._model: str | None = None
        self._active = 0  # open HTTP streams (the server, not this process, decodes)

    @property
    def busy(self) -> bool:
        return self._active > 0

    @property
    def model(self) -> str:
        """The served model: an explicit `LLM_MODEL`, else the server's first model."""
        if self._model is None:
            explicit = not self.ref.startswith(("registry:", "offline:"))
            if explicit:
                self._model = self.ref
            else:
                try:
                    resp = self.client.get("/models")
                    resp.raise_for_status()
                    data = resp.json().get("data") or []
                    self._model = str(data[0]["id"]) if data else self.ref
                except Exception:  # noqa: BLE001 - some servers have no /models
                    self._model = self.ref
        return self._model

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
        yield from _until(
            self._request(prompt_or_messages, max_new_tokens, temperature, stop, run),
            kwargs.get("max_time"),
        )

    def _body(
        self,
        prompt_or_messages: PromptOrMessages,
        max_new_tokens: int,
        temperature: float,
        stop: Sequence[str],
    ) -> tuple[str, dict[str, Any]]:
        messages = _as_messages(prompt_or_messages)
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": max_new_tokens,
            "temperature": temperature,
            "stream": True,
        }
        if stop:
            body["stop"] = list(stop)
        if messages is not None:
            path, body["messages"] = "/chat/completions", messages
        else:
            path, body["prompt"] = "/completions", str(prompt_or_messages)
        return path, body

    def _error(self, path: str, resp: Any) -> LLMError:
        return LLMError(
            f"LLM server {self.base_url}{path} answered HTTP {resp.status_code}: "
            f"{resp.text[:300]}"
        )

    def _request(
        self,
        prompt_or_messages: PromptOrMessages,
        max_new_tokens: int,
        temperature: float,
        stop: Sequence[str],
        run: GenerationRun,
    ) -> Iterator[str]:
        import httpx

        path, body = self._body(prompt_or_messages, max_new_tokens, temperature, stop)
        self._active += 1
        try:
            # Leaving the `with` (cancelled run, consumer gone) closes the HTTP stream: the
            # server sees the disconnect and stops decoding.
            with self.client.stream("POST", path, json=body) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise self._error(path, resp)
                for line in resp.iter_lines():
                    for piece in _sse_pieces(line):
                        if run.token():
                            return
                        yield piece
        except httpx.HTTPError as exc:
            raise LLMError(f"LLM server {self.base_url} unreachable: {exc}") from exc
        finally:
            self._active -= 1

    async def _astream_unlocked(
        self,
        prompt_or_messages: PromptOrMessages,
        max_new_tokens: int | None,
        temperature: float | None,
        stop: Sequence[str] | None,
        **kwargs: Any,
    ) -> AsyncIterator[str]:
        """Natively async: a cancelled task closes the HTTP stream at once (no thread)."""
        budget, grace, temp, stops = self._sampling(max_new_tokens, temperature, stop, kwargs)
        pieces = self._arequest(prompt_or_messages, budget + grace, temp, stops, kwargs)
        if grace:
            pieces = _asentence_bounded(pieces, budget, self.count_tokens)
        async for piece in pieces:
            yield piece

    async def _arequest(
        self,
        prompt_or_messages: PromptOrMessages,
        max_new_tokens: int,
        temperature: float,
        stop: Sequence[str],
        kwargs: dict[str, Any],
    ) -> AsyncIterator[str]:
        import httpx

        # Resolving the served model may ask the server once: not on the event loop.
        model_name = await _in_thread(lambda: self.model)
        path, body = self._body(prompt_or_messages, max_new_tokens, temperature, stop)
        body["model"] = model_name
        run = GenerationRun()
        self.last_run = run
        deadline = time.monotonic() + float(kwargs["max_time"]) if kwargs.get("max_time") else None
        self._active += 1
        try:
            async with httpx.AsyncClient(**self._client_args) as client:
                async with client.stream("POST", path, json=body) as resp:
                    if resp.status_code >= 400:
                        await resp.aread()
                        raise self._error(path, resp)
                    async for line in resp.aiter_lines():
                        for piece in _sse_pieces(line):
                            run.token()
                            yield piece
                        if deadline is not None and time.monotonic() >= deadline:
                            return
        except httpx.HTTPError as exc:
            raise LLMError(f"LLM server {self.base_url} unreachable: {exc}") from exc
        except BaseException:
            run.cancel.set()  # cancelled or closed early: the stream is closed on the way out
            raise
        finally:
            self._active -= 1
            run.finished.set()


async def _in_thread(fn: Any) -> Any:
    import asyncio

    return await asyncio.to_thread(fn)


def _sse_pieces(line: str) -> list[str]:
    """Text pieces in one server-sent-events line of an OpenAI-compatible stream."""
    line = line.strip()
    if not line.startswith("data:"):
        return []
    data = line[5:].strip()
    if data == "[DONE]":
        return []
    try:
        event = json.loads(data)
    except json.JSONDecodeError:
        return []
    pieces = []
    for choice in event.get("choices") or []:
        piece = (choice.get("delta") or {}).get("content") or choice.get("text")
        if piece:
            pieces.append(piece)
    return pieces


