"""The twin's API: the RAG graph behind LangServe, plus health, feedback, auth and limits.

    python server.py            # uvicorn on SERVER_HOST:SERVER_PORT (127.0.0.1:8000)
    uvicorn server:app          # the same app

Routes
  /twin/invoke, /twin/batch, /twin/stream, /twin/stream_log, /twin/stream_events,
  /twin/input_schema, /twin/output_schema, /twin/config_schema, /twin/playground/
      LangServe over the graph. Input `{"messages": [{"type"|"role": ..., "content": ...}],
      "query": "..."}` (either or both; `query` is appended as the last user turn).
      Output: the answer as an AI message; `response_metadata` carries `answer`, `filters`,
      `queries`, `context` (retrieved passages with chunk ids), `model`. `/twin/stream`
      streams the answer token by token (then one chunk with the metadata);
      `/twin/stream_events` streams every graph/LLM event. Per-run knobs go in
      `config.configurable` (the graph Configuration: k, expand_n, max_new_tokens, …;
      `thread_id` keeps a conversation in the graph's checkpointer).
      The response metadata's `run_id` is what `/feedback` takes.
  /health    status, model in use, vector store reachability and counts (no auth)
  /feedback  POST {run_id, score: 0..1 | "up" | "down", comment?} → a JSONL record under
             DATA_DIR/feedback/ and an Opik feedback score on the request's trace

Auth: when TWIN_API_KEY is set every route but /health needs `X-API-Key: KEY` or
`Authorization: Bearer KEY` (browsers: HTTP Basic with KEY as the password, so the
playground works). Limits: body size (413), message count/length (422), max_new_tokens
capped at LLM_MAX_NEW_TOKENS and other per-run knobs clamped (`_knob_limits`). Nothing loads at import: models load on first use (and in a
background warm-up started with the server).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import functools
import hmac
import json
import logging
import sys
import threading
import time
import typing
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import MISSING, fields
from typing import Any, Literal

import orjson
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from langchain_core.callbacks import BaseCallbackManager
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    message_chunk_to_message,
)
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import ensure_config
from langchain_core.runnables.utils import ConfigurableFieldSpec
from langserve.serialization import WellKnownLCSerializer
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    field_validator,
    model_validator,
)
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core import feedback as feedback_store
from core import tracing
from core.settings import OFFLINE_LLM_FALLBACK, get_settings

log = logging.getLogger("twin.server")

PUBLIC_PATHS = frozenset({"/health", "/health/"})
ANSWER_NODE = "generate"
ROLE_TO_TYPE = {
    "user": "human",
    "assistant": "ai",
    "human": "human",
    "ai": "ai",
    "system": "system",
}


# --------------------------------------------------------------------------- input types
def _limits() -> tuple[int, int]:
    settings = get_settings()
    return settings.SERVER_MAX_MESSAGES, settings.SERVER_MAX_MESSAGE_CHARS


class ChatTurn(BaseModel):
    """One chat message: LangChain (`type`: human/ai/system) or OpenAI (`role`) spelling."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["human", "ai", "system", "user", "assistant"] = Field(
        "human", validation_alias=AliasChoices("type", "role")
    )
    content: str = Field(..., description="the message text")

    @field_validator("content", mode="before")
    @classmethod
    def _text_only(cls, value: Any) -> Any:
        if isinstance(value, list):  # LangChain content blocks: keep the text parts only
            parts = [p.get("text", "") if isinstance(p, dict) else p for p in value]
            if all(isinstance(p, str) for p in parts):
                return "".join(parts)
        if not isinstance(value, str):
            raise ValueError("message content must be text")
        return value


class TwinInput(BaseModel):
    """A request to the twin: the conversation so far and/or a new request."""

    messages: list[ChatTurn] = Field(
        default_factory=list,
        description="chat history, oldest first (the last user message is the request)",
    )
    query: str = Field("", description="your request, e.g. 'Write a LinkedIn post about RAG'")

    @model_validator(mode="after")
    def _check_limits(self) -> TwinInput:
        max_messages, max_chars = _limits()
        count = len(self.messages) + (1 if self.query.strip() else 0)
        if count > max_messages:
            raise ValueError(
                f"too many messages: {count} (the limit is {max_messages}, SERVER_MAX_MESSAGES)"
            )
        for i, turn in enumerate(self.messages):
            if len(turn.content) > max_chars:
                raise ValueError(
                    f"message {i} is {len(turn.content)} characters long "
                    f"(the limit is {max_chars}, SERVER_MAX_MESSAGE_CHARS)"
                )
        if len(self.query) > max_chars:
            raise ValueError(
                f"query is {len(self.query)} characters long "
                f"(the limit is {max_chars}, SERVER_MAX_MESSAGE_CHARS)"
            )
        if not self.query.strip() and not any(
            ROLE_TO_TYPE[t.type] == "human" and t.content.strip() for t in self.messages
        ):
            raise ValueError(
                "empty request: send a non-empty `query` or at least one user message in `messages`"
            )
        return self

    def request_text(self) -> str:
        """The instruction of this turn: `query`, else the last user message."""
        if self.query.strip():
            return self.query.strip()
        for turn in reversed(self.messages):
            if ROLE_TO_TYPE[turn.type] == "human" and turn.content.strip():
                return turn.content.strip()
        return ""

    def lc_messages(self) -> list[BaseMessage]:
        classes = {"human": HumanMessage, "ai": AIMessage, "system": SystemMessage}
        out: list[BaseMessage] = [
            classes[ROLE_TO_TYPE[t.type]](content=t.content) for t in self.messages
        ]
        if self.query.strip():
            out.append(HumanMessage(content=self.query.strip()))
        return out

    def as_dicts(self) -> list[dict[str, str]]:
        roles = {"human": "user", "ai": "assistant", "system": "system"}
        turns = [{"role": roles[ROLE_TO_TYPE[t.type]], "content": t.content} for t in self.messages]
        if self.query.strip():
            turns.append({"role": "user", "content": self.query.strip()})
        return turns


class TwinAnswer(AIMessage):
    """The twin's answer: `content` is the text, `response_metadata` has `answer`, `filters`,
    `queries`, `context` (retrieved passages) and `model`."""

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        # LangServe's chat playground recognises an AI message by `type` having an enum.
        schema = handler(core_schema)
        target = handler.resolve_ref_schema(schema)
        target.setdefault("properties", {}).setdefault("type", {})["enum"] = ["ai"]
        return schema


class TwinOutput(RootModel[TwinAnswer | AIMessageChunk]):
    """Output schema of /twin: an AI message (a chunk while streaming)."""


class FeedbackIn(BaseModel):
    run_id: str = Field(..., min_length=1, max_length=200, description="`metadata.run_id` of /twin")
    score: float | bool | str = Field(..., description="0..1, or thumbs: 'up' / 'down'")
    comment: str | None = Field(None, max_length=4000)

    @field_validator("score")
    @classmethod
    def _score(cls, value: Any) -> float:
        return feedback_store.normalize_score(value)


# ------------------------------------------------------------------------------- helpers
_MODEL_INFO_TTL_S = 30.0
_model_info_cache: dict[tuple[str, ...], tuple[float, dict[str, Any]]] = {}


def model_info() -> dict[str, Any]:
    """Which model answers: the configured ref and what it resolves to (no loading).

    Cached for a few seconds: it is reported on every request (trace metadata, response).
    """
    settings = get_settings()
    key = (settings.LLM_MODEL, settings.LLM_BASE_URL, str(settings.DATA_DIR))
    cached = _model_info_cache.get(key)
    if cached and time.monotonic() - cached[0] < _MODEL_INFO_TTL_S:
        return dict(cached[1])
    info = _resolve_model_info(settings)
    _model_info_cache[key] = (time.monotonic(), info)
    return dict(info)


def _resolve_model_info(settings: Any) -> dict[str, Any]:
    ref = settings.LLM_MODEL
    info: dict[str, Any] = {"ref": ref, "version": None, "backend": None}
    try:
        from core.llm import choose_backend

        info["backend"] = choose_backend(ref)  # openai / llamacpp / torch-int8 / torch-fp32
    except Exception as exc:  # noqa: BLE001 - health reports, never raises
        info["backend_error"] = str(exc)
    if settings.LLM_BASE_URL:
        info["base_url"] = settings.LLM_BASE_URL
        return info
    if ref.startswith("registry:"):
        from core.registry import RegistryError, get_registry

        try:
            version = get_registry().resolve(ref)
            info.update(version=version.version, base_model=version.manifest.get("base_model"))
        except RegistryError:
            info.update(version=None, serving=OFFLINE_LLM_FALLBACK, note="no such registry tag yet")
    return info


def _doc_summary(doc: Any) -> dict[str, Any]:
    meta = dict(getattr(doc, "metadata", None) or {})
    keep = (
        "chunk_id", "document_id", "title", "link", "author_full_name", "category",
        "platform", "published_at", "score", "collection", "chunk_index",
    )  # fmt: skip
    out = {k: meta.get(k) for k in keep if k in meta}
    out["content"] = getattr(doc, "page_content", str(doc))
    return out


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _with_handler(callbacks: Any, handler: Any) -> Any:
    if callbacks is None:
        return [handler]
    if isinstance(callbacks, list):
        return [*callbacks, handler]
    if isinstance(callbacks, BaseCallbackManager):
        manager = callbacks.copy()
        manager.add_handler(handler, inherit=True)
        return manager
    return [handler]


@functools.lru_cache(maxsize=1)
def _configuration_specs() -> list[ConfigurableFieldSpec]:
    """`config.configurable` keys LangServe accepts: the graph Configuration's fields."""
    specs = [
        ConfigurableFieldSpec(
            id="thread_id",
            annotation=str,
            name="thread id",
            description="keep a conversation in the graph's checkpointer (send only new turns)",
            default="",
        )
    ]
    try:
        from graph.configuration import Configuration
    except Exception as exc:  # noqa: BLE001 - the graph package may be absent in a stand-in
        log.debug("graph.configuration unavailable (%s): no per-run knobs exposed", exc)
        return specs
    hints = typing.get_type_hints(Configuration)
    for f in fields(Configuration):
        annotation = hints.get(f.name, Any)
        if f.default is not MISSING:
            default = f.default
        elif f.default_factory is not MISSING:  # type: ignore[misc]
            default = None  # settings-derived defaults are resolved per run by the graph
        else:
            default = None
        if default is None:
            annotation = annotation | None
        specs.append(ConfigurableFieldSpec(id=f.name, annotation=annotation, default=default))
    return specs


def _lenient_default(obj: Any) -> Any:
    """JSON for what LangServe's serializer rejects (graph events carry LangGraph `Send`s)."""
    if isinstance(obj, BaseModel):
        return obj.model_dump()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, set | frozenset):
        return list(obj)
    if hasattr(obj, "node") and hasattr(obj, "arg"):  # langgraph.types.Send
        return {"send": obj.node, "arg": obj.arg}
    return repr(obj)


class LenientSerializer(WellKnownLCSerializer):
    def dumps(self, obj: Any) -> bytes:
        return orjson.dumps(obj, default=_lenient_default)


def _knob_limits() -> dict[str, tuple[float, float]]:
    """Bounds on per-run knobs a caller may send; generation budgets capped by settings."""
    cap = get_settings().LLM_MAX_NEW_TOKENS
    return {
        "max_new_tokens": (1, cap),
        "self_query_max_new_tokens": (1, cap),
        "expand_max_new_tokens": (1, cap),
        "k": (1, 20),
        "fetch_k": (1, 200),
        "expand_n": (0, 5),
        "history_messages": (0, 50),
        "temperature": (0.0, 2.0),
        "expand_timeout_s": (0.0, 30.0),
        "link_max_chars": (0, 20_000),
    }


def _clamp_knobs(configurable: dict[str, Any]) -> dict[str, Any]:
    """Clamp numeric knobs into their bounds (a request never buys unbounded work)."""
    out = dict(configurable)
    for name, (low, high) in _knob_limits().items():
        value = out.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = type(value)(max(low, min(value, high)))
    return out


def _run_sync(coro: Any) -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    result: dict[str, Any] = {}

    def target() -> None:
        result["value"] = asyncio.run(coro)

    worker = threading.Thread(target=target)
    worker.start()
    worker.join()
    return result["value"]


# ------------------------------------------------------------------------------ runnable
class TwinRunnable(Runnable[dict[str, Any], BaseMessage]):
    """The graph as a chat runnable: messages/query in, the answer (streamed) out.

    Each run: one Opik trace (when configured), stateless unless the caller names a
    `thread_id`, per-run knobs clamped, and a record in the feedback store so `/feedback`
    can name the run later.
    """

    name: str = "twin"

    def __init__(self, graph: Any = None, answer_node: str = ANSWER_NODE) -> None:
        self._graph = graph
        self._graph_lock = threading.Lock()
        self.answer_node = answer_node

    @property
    def graph(self) -> Any:
        if self._graph is None:
            with self._graph_lock:
                if self._graph is None:
                    from graph import graph as compiled

                    self._graph = compiled
        return self._graph

    @property
    def InputType(self) -> type[TwinInput]:  # noqa: N802 - LangChain's name
        return TwinInput

    @property
    def OutputType(self) -> type[AIMessage]:  # noqa: N802
        return AIMessage

    def get_input_schema(self, config: RunnableConfig | None = None) -> type[BaseModel]:
        return TwinInput

    def get_output_schema(self, config: RunnableConfig | None = None) -> type[BaseModel]:
        return TwinOutput

    @property
    def config_specs(self) -> list[ConfigurableFieldSpec]:
        return list(_configuration_specs())

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> AIMessage:
        return _run_sync(self.ainvoke(input, config, **kwargs))

    def stream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[AIMessageChunk]:
        yield self.invoke(input, config, **kwargs)  # type: ignore[misc]

    async def ainvoke(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AIMessage:
        final: AIMessageChunk | None = None
        async for chunk in self.astream(input, config, **kwargs):
            final = chunk if final is None else final + chunk
        assert final is not None
        return message_chunk_to_message(final)  # type: ignore[return-value]

    async def astream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[AIMessageChunk]:
        request = input if isinstance(input, TwinInput) else TwinInput.model_validate(input)
        config = ensure_config(config)
        config["run_id"] = config.get("run_id") or uuid.uuid4()
        run_id = str(config["run_id"])
        configurable = dict(config.get("configurable") or {})
        thread_id = configurable.get("thread_id") or ""  # none: a stateless run
        config["configurable"] = _clamp_knobs(configurable)
        model = model_info()
        tracer = tracing.new_tracer(
            metadata={
                "run_id": run_id,
                "model_ref": model["ref"],
                "model_version": model.get("version"),
            },
            thread_id=thread_id or None,
        )
        if tracer is not None:
            config["callbacks"] = _with_handler(config.get("callbacks"), tracer)

        outcome: dict[str, Any] = {}

        async def one() -> AsyncIterator[TwinInput]:
            yield request

        async def transform(
            inputs: AsyncIterator[TwinInput], run_manager: Any, config: RunnableConfig
        ) -> AsyncIterator[AIMessageChunk]:
            async for chunk in self._answer(inputs, config, outcome, model):
                yield chunk

        async for chunk in self._atransform_stream_with_config(one(), transform, config, **kwargs):
            yield chunk
        if "answer" in outcome:
            trace_id = tracing.trace_id_of(tracer)
            await run_in_threadpool(
                feedback_store.record_run,
                run_id,
                request.request_text(),
                outcome["answer"],
                messages=request.as_dicts(),
                trace_id=trace_id,
                model=model.get("version") or model["ref"],
                context_ids=outcome.get("context_ids"),
            )

    async def _answer(
        self,
        inputs: AsyncIterator[TwinInput],
        config: RunnableConfig,
        outcome: dict[str, Any],
        model: dict[str, Any],
    ) -> AsyncIterator[AIMessageChunk]:
        request: TwinInput | None = None
        async for item in inputs:
            request = item
        assert request is not None
        streamed: list[str] = []
        state: dict[str, Any] = {}
        async for mode, data in self.graph.astream(
            {"messages": request.lc_messages()}, config, stream_mode=["messages", "values"]
        ):
            if mode == "values":
                state = data
                continue
            message, meta = data
            if (
                isinstance(message, AIMessageChunk)
                and (meta or {}).get("langgraph_node") == self.answer_node
                and isinstance(message.content, str)
                and message.content
            ):
                streamed.append(message.content)
                yield AIMessageChunk(content=message.content)
        answer = str(state.get("answer") or "")
        # The node may tidy the streamed text (strip): send only what the stream lacks.
        text = "".join(streamed).strip()
        tail = answer[len(text) :] if answer.startswith(text) else ""
        context = [_doc_summary(d) for d in state.get("context") or []]
        outcome.update(answer=answer, context_ids=[c.get("chunk_id") for c in context])
        metadata = {
            "answer": answer,
            "filters": state.get("filters"),
            "queries": list(state.get("queries") or []),
            "context": context,
            "notes": list(state.get("notes") or []),
            "model": model,
        }
        yield AIMessageChunk(content=tail, response_metadata=_jsonable(metadata))


# ---------------------------------------------------------------------------- middleware
def _json_response(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _credentials(scope: Scope) -> list[str]:
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    found = []
    if headers.get("x-api-key"):
        found.append(headers["x-api-key"].strip())
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        found.append(value.strip())
    elif scheme.lower() == "basic" and value.strip():
        try:
            decoded = base64.b64decode(value.strip()).decode("utf-8")
            found.append(decoded.partition(":")[2])
        except (ValueError, UnicodeDecodeError):
            pass
    return found


class ApiKeyMiddleware:
    """When TWIN_API_KEY is set, every route but /health needs the key (constant-time check)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = get_settings().TWIN_API_KEY if scope["type"] == "http" else ""
        if not key or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        expected = key.encode("utf-8")
        if any(hmac.compare_digest(c.encode("utf-8"), expected) for c in _credentials(scope)):
            await self.app(scope, receive, send)
            return
        response = _json_response(
            401,
            "missing or invalid API key: send `X-API-Key: <key>` or "
            "`Authorization: Bearer <key>` (TWIN_API_KEY is set on this server)",
            headers={"WWW-Authenticate": 'Bearer, Basic realm="twin"'},
        )
        await response(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """413 for request bodies over SERVER_MAX_BODY_BYTES (declared or streamed)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = get_settings().SERVER_MAX_BODY_BYTES
        message = f"request body too large: the limit is {limit} bytes (SERVER_MAX_BODY_BYTES)"
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    too_big = int(value) > limit
                except ValueError:
                    too_big = False
                if too_big:
                    await _json_response(413, message)(scope, receive, send)
                    return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            msg = await receive()
            if msg["type"] == "http.request":
                received += len(msg.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge
            return msg

        async def tracking_send(msg: Message) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _json_response(413, message)(scope, receive, send)


# ----------------------------------------------------------------------------------- app
def _vector_store_status() -> dict[str, Any]:
    from core.domain import EMBEDDED_COLLECTIONS
    from retrievers.store import VectorStoreLocked, get_qdrant_client

    settings = get_settings()
    status: dict[str, Any] = {
        "mode": "server" if settings.QDRANT_URL else "local",
        "location": settings.QDRANT_URL or str(settings.qdrant_path),
        "reachable": False,
        "counts": {},
    }
    try:
        client = get_qdrant_client()
        existing = {c.name for c in client.get_collections().collections}
        for name in EMBEDDED_COLLECTIONS.values():
            status["counts"][name] = client.count(name, exact=True).count if name in existing else 0
        status["reachable"] = True
    except VectorStoreLocked as exc:
        status["error"] = str(exc)
    except Exception as exc:  # noqa: BLE001 - health reports, never raises
        status["error"] = f"{type(exc).__name__}: {exc}"
    return status


def _warm_up() -> None:
    """Load the graph, the LLM and the embedding model off the request path."""
    try:
        import graph  # noqa: F401  (compiles the graph)
        from core.llm import get_llm
        from core.models import get_embedding_model

        get_embedding_model()
        get_llm()
        log.info("models loaded")
    except Exception as exc:  # noqa: BLE001 - the first request will report the problem
        log.warning("warm-up failed (the first request will retry): %s", exc)


def create_app(graph: Any = None, *, warmup: bool = True) -> FastAPI:
    """The API app. `graph`: a compiled LangGraph to serve (default: `graph.graph`, lazily)."""
    from langserve import add_routes

    runnable = TwinRunnable(graph)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tracing.tracing_enabled()  # decide now: one notice in the log when off
        store = await run_in_threadpool(_vector_store_status)
        if not store["reachable"]:
            log.error("vector store unavailable: %s", store.get("error"))
        if warmup:
            asyncio.get_running_loop().run_in_executor(None, _warm_up)
        yield
        tracing.flush()
        from retrievers.store import close_qdrant_client

        close_qdrant_client()

    app = FastAPI(
        title="LLM Twin",
        version="0.1.0",
        description="Writes like its author: retrieval-augmented generation over their own work.",
        lifespan=lifespan,
    )
    app.state.runnable = runnable

    from core.models import ModelNotAvailable
    from retrievers.store import VectorStoreLocked

    @app.exception_handler(VectorStoreLocked)
    @app.exception_handler(ModelNotAvailable)
    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        return _json_response(503, str(exc))

    @app.get("/health")
    async def health() -> dict[str, Any]:
        store = await run_in_threadpool(_vector_store_status)
        return {
            "status": "ok" if store["reachable"] else "degraded",
            "model": await run_in_threadpool(model_info),
            "vector_store": store,
            "counts": store["counts"],
            "tracing": tracing.tracing_enabled(),
            "auth": bool(get_settings().TWIN_API_KEY),
        }

    @app.post("/feedback")
    async def feedback(body: FeedbackIn) -> dict[str, Any]:
        run = await run_in_threadpool(feedback_store.get_run, body.run_id)
        if run is None:
            raise HTTPException(404, f"unknown run_id {body.run_id!r}: no answer served with it")
        score = float(body.score)
        opik_logged = False
        if run.get("trace_id"):
            opik_logged = await run_in_threadpool(
                tracing.log_feedback, run["trace_id"], score, body.comment
            )
        record = await run_in_threadpool(
            lambda: feedback_store.record_feedback(
                body.run_id, score, body.comment, opik_logged=opik_logged
            )
        )
        return {
            "status": "recorded",
            "run_id": body.run_id,
            "score": score,
            "opik": opik_logged,
            "trace_id": record.get("trace_id"),
        }

    add_routes(app, runnable, path="/twin", playground_type="chat", serializer=LenientSerializer())
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(ApiKeyMiddleware)  # outermost: unauthenticated bodies are not read
    return app


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    from retrievers.store import VectorStoreLocked, get_qdrant_client

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from core.logs import quiet_noisy_libraries

    quiet_noisy_libraries()
    settings = get_settings()
    try:
        get_qdrant_client()  # the local store allows one process: fail clearly, early
    except VectorStoreLocked as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if settings.SERVER_HOST not in ("127.0.0.1", "localhost", "::1") and not settings.TWIN_API_KEY:
        log.warning(
            "listening on %s without TWIN_API_KEY: anyone who can reach it can use it",
            settings.SERVER_HOST,
        )
    uvicorn.run(app, host=settings.SERVER_HOST, port=settings.SERVER_PORT)
    return 0


app = create_app()

if __name__ == "__main__":
    raise SystemExit(main())
