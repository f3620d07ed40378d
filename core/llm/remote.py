"""Any OpenAI-compatible server (vLLM, Ollama, TGI, llama.cpp server) over httpx + SSE."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from typing import Any

from core.llm.base import BaseLLM, LLMError, PromptOrMessages, _as_messages, _until

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
        self._model: str | None = None

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
        **kwargs: Any,
    ) -> Iterator[str]:
        yield from _until(
            self._request(prompt_or_messages, max_new_tokens, temperature, stop),
            kwargs.get("max_time"),
        )

    def _request(
        self,
        prompt_or_messages: PromptOrMessages,
        max_new_tokens: int,
        temperature: float,
        stop: Sequence[str],
    ) -> Iterator[str]:
        import httpx

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
        try:
            with self.client.stream("POST", path, json=body) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise LLMError(
                        f"LLM server {self.base_url}{path} answered HTTP {resp.status_code}: "
                        f"{resp.text[:300]}"
                    )
                for line in resp.iter_lines():
                    line = line.strip()
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    try:
                        event = json.loads(data)
                    except json.JSONDecodeError:
                        continue
                    for choice in event.get("choices") or []:
                        piece = (choice.get("delta") or {}).get("content") or choice.get("text")
                        if piece:
                            yield piece
        except httpx.HTTPError as exc:
            raise LLMError(f"LLM server {self.base_url} unreachable: {exc}") from exc


