"""Any OpenAI-compatible server (vLLM, Ollama, TGI, llama.cpp server) over httpx + SSE."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception,
    sleep_using_event,
    stop_after_attempt,
)

from core.backoff import retry_after_seconds, wait_backoff_or_retry_after
from core.llm.base import (
    BaseLLM,
    GenerationRun,
    LLMError,
    PromptOrMessages,
    _as_messages,
    _asentence_bounded,
    _until,
)

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)
MAX_STOP_STRINGS = 4

# Answers that mean "busy or restarting, ask again shortly" (rate limited, or a proxy in
# front of a server that is not up); any other error status is final.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
MAX_RETRY_WAIT_S = 30.0  # a longer Retry-After is not waited out in full


class _ServerBusy(Exception):
    """A retryable error answer: its status, the start of its body and its Retry-After."""

    def __init__(self, status: int, text: str, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status}: {text}")
        self.status = status
        self.text = text
        self.retry_after = retry_after


def _worth_retrying(exc: BaseException) -> bool:
    import httpx

    # Refused, reset or timed out while connecting, or closed before answering: the server
    # is (re)starting. Retries happen before anything was streamed, so they cannot
    # duplicate text.
    return isinstance(
        exc, _ServerBusy | httpx.ConnectError | httpx.ConnectTimeout | httpx.RemoteProtocolError
    )


# --------------------------------------------------------------------------- OpenAI-compatible
class OpenAICompatLLM(BaseLLM):
    """Any OpenAI-compatible server: `/chat/completions` for messages, `/completions` else."""

    backend = "openai"

    def __init__(
        self,
        ref: str,
        base_url: str,
        api_key: str = "",
        timeout: float = 120.0,
        *,
        retries: int = 3,
        retry_backoff_s: float = 0.5,
    ) -> None:
        """`retries` attempts of each request while the server answers 429/502/503/504 or
        cannot be reached, `retry_backoff_s` before the second, doubling after that
        (a longer Retry-After honoured, up to MAX_RETRY_WAIT_S)."""
        super().__init__(ref, None)
        import httpx

        url = base_url.rstrip("/")
        if httpx.URL(url).path in ("", "/"):
            url += "/v1"
        self.base_url = url
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(base_url=url, headers=headers, timeout=timeout)
        self._client_args = {"base_url": url, "headers": headers, "timeout": timeout}
        self.retries = max(1, retries)
        self.retry_backoff_s = max(0.0, retry_backoff_s)
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
                self._model = self._first_served_model()
        return self._model

    def _first_served_model(self) -> str:
        """The first model `/models` lists; the ref itself when the server has none."""

        def attempt() -> str:
            resp = self.client.get("/models")
            if resp.status_code in RETRY_STATUSES:
                raise self._busy_or_error("/models", resp)
            resp.raise_for_status()
            data = resp.json().get("data") or []
            return str(data[0]["id"]) if data else self.ref

        try:
            # Retried like requests: a server still starting must not pin the wrong name.
            return Retrying(**self._retry_policy())(attempt)
        except Exception:  # noqa: BLE001 - some servers have no /models
            return self.ref

    def _retry_policy(self) -> dict[str, Any]:
        """tenacity arguments shared by the sync and async paths."""
        return {
            "stop": stop_after_attempt(self.retries),
            "wait": wait_backoff_or_retry_after(self.retry_backoff_s, MAX_RETRY_WAIT_S),
            "retry": retry_if_exception(_worth_retrying),
            "before_sleep": self._log_retry,
        }

    def _log_retry(self, state: RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "LLM server %s: %s; trying again in %.1fs (attempt %d of %d)",
            self.base_url, failure, delay, state.attempt_number + 1, self.retries,
        )  # fmt: skip

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
            # The OpenAI API takes at most four; the caller's own come first in `stop`.
            body["stop"] = list(stop)[:MAX_STOP_STRINGS]
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

    def _busy_or_error(self, path: str, resp: Any) -> Exception:
        """The exception for an error answer: retryable (`_ServerBusy`) or final."""
        if resp.status_code in RETRY_STATUSES:
            return _ServerBusy(resp.status_code, resp.text[:300], retry_after_seconds(resp.headers))
        return self._error(path, resp)

    def _gave_up(self, path: str, error: RetryError) -> LLMError:
        failure = error.last_attempt.exception()
        count = error.last_attempt.attempt_number
        tries = f"{count} {'try' if count == 1 else 'tries'}"
        if isinstance(failure, _ServerBusy):
            return LLMError(
                f"LLM server {self.base_url}{path} answered HTTP {failure.status} after "
                f"{tries}: {failure.text}"
            )
        return LLMError(f"LLM server {self.base_url} unreachable after {tries}: {failure}")

    def _open(self, path: str, body: dict[str, Any], run: GenerationRun) -> httpx.Response | None:
        """POST `body` and wait for the answer's head, asking again while the server is busy
        or restarting (nothing has been streamed yet). None when the run was cancelled
        while waiting to ask again."""

        def attempt() -> httpx.Response | None:
            if run.cancelled:
                return None
            resp = self.client.send(self.client.build_request("POST", path, json=body), stream=True)
            if resp.status_code < 400:
                return resp
            try:
                resp.read()
            finally:
                resp.close()
            raise self._busy_or_error(path, resp)

        # A cancelled run wakes the back-off sleep at once.
        retrying = Retrying(sleep=sleep_using_event(run.cancel), **self._retry_policy())
        try:
            return retrying(attempt)
        except RetryError as exc:
            if run.cancelled:
                return None
            raise self._gave_up(path, exc) from exc.last_attempt.exception()

    async def _aopen(
        self, client: httpx.AsyncClient, path: str, body: dict[str, Any]
    ) -> httpx.Response:
        """`_open` for the event loop (a cancelled task stops the back-off sleep)."""

        async def attempt() -> httpx.Response:
            resp = await client.send(client.build_request("POST", path, json=body), stream=True)
            if resp.status_code < 400:
                return resp
            try:
                await resp.aread()
            finally:
                await resp.aclose()
            raise self._busy_or_error(path, resp)

        try:
            return await AsyncRetrying(**self._retry_policy())(attempt)
        except RetryError as exc:
            raise self._gave_up(path, exc) from exc.last_attempt.exception()

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
            resp = self._open(path, body, run)
            if resp is None:
                return
            # Closing the stream (cancelled run, consumer gone) lets the server see the
            # disconnect and stop decoding. Past this point nothing is retried: text may
            # already have been yielded.
            try:
                for line in resp.iter_lines():
                    for piece in _sse_pieces(line):
                        if run.token():
                            return
                        yield piece
            finally:
                resp.close()
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
                resp = await self._aopen(client, path, body)
                try:  # no retry past this point: text may already have been yielded
                    async for line in resp.aiter_lines():
                        for piece in _sse_pieces(line):
                            run.token()
                            yield piece
                        if deadline is not None and time.monotonic() >= deadline:
                            return
                finally:
                    await resp.aclose()
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


