"""The graph as a LangServe runnable: `TwinRunnable` (messages/query in, answer streamed out).

Each run: the caller's settings checked (the request schema carries each Configuration
field's rule, so LangServe answers 422 before the run starts), the model ref pinned to the
version it resolves to now (the whole run, its trace and its answer name that version, even
if a promote lands meanwhile), one Opik trace (when configured), stateless unless the caller
names a `thread_id` (then the server's persistent checkpointer, `graph.threads`), and a
record in the feedback store so `/feedback` can name the run later.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import typing
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import MISSING, fields
from typing import Any

from langchain_core.callbacks import BaseCallbackManager
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, message_chunk_to_message
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import ensure_config
from langchain_core.runnables.utils import ConfigurableFieldSpec
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from core.aio import run_coroutine_sync
from graph.api_types import TwinInput, TwinOutput, doc_summary, jsonable
from graph.knobs import MAX_TEXT_CHARS, InvalidKnob, Text, config_annotation
from graph.threads import ThreadedGraph, thread_id_of

log = logging.getLogger(__name__)
ANSWER_NODE = "generate"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_NAME = re.compile(r"^[A-Za-z0-9][\w-]*$")


def public_model_name(ref: str) -> str:
    """`ref` where it names a model (a registry ref or version id, an offline model, a hub
    id), not where it is: a local path or file shows as `local model` (answers and /health
    reveal no filesystem paths)."""
    if ref.startswith(("registry:", "offline:")) or (_HUB_ID.match(ref) and ".." not in ref):
        if not ref.endswith(".gguf"):
            return ref
    if _NAME.match(ref):  # a version id such as "v3": no separator, no file suffix
        return ref
    return "local model"


def model_status(ref: str | None = None) -> dict[str, Any]:
    """Which model a request gets now: ref, backend and resolved version (no loading)."""
    from core.settings import get_settings

    ref = ref or get_settings().LLM_MODEL
    info: dict[str, Any] = {"ref": public_model_name(ref), "version": None, "backend": None}
    try:
        from core.llm import choose_backend
        from core.llm.factory import resolved_version

        info["backend"] = choose_backend(ref)  # openai / llamacpp / torch-int8 / torch-fp32
        info["version"] = public_model_name(resolved_version(ref))
    except Exception as exc:  # noqa: BLE001 - reported, never raised
        log.warning("cannot resolve the model %s: %s", info["ref"], exc)
        info["error"] = "the configured model cannot be resolved (see the server log)"
    return info


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


@functools.lru_cache(maxsize=4)
def configuration_specs(max_new_tokens_cap: int) -> list[ConfigurableFieldSpec]:
    """`config.configurable` keys LangServe accepts: the graph Configuration's fields, each
    with the rule and description it was declared with (cached per token cap, which bounds
    `max_new_tokens`)."""
    from graph.configuration import Configuration

    specs = [
        ConfigurableFieldSpec(
            id="thread_id",
            annotation=config_annotation("thread_id", str, Text()),
            name="thread id",
            description=f"keep a conversation in the server's threads (at most {MAX_TEXT_CHARS} "
            "characters; send only new turns)",
            default="",
        )
    ]
    hints = typing.get_type_hints(Configuration, include_extras=False)
    for f in fields(Configuration):
        annotation = hints.get(f.name, Any)
        default = f.default if f.default is not MISSING else None  # factories: per run
        if default is None:
            annotation = annotation | None
        specs.append(
            ConfigurableFieldSpec(
                id=f.name,
                annotation=config_annotation(f.name, annotation, f.metadata["rule"]),
                description=f.metadata["description"],
                default=default,
            )
        )
    return specs


class TwinRunnable(Runnable[dict[str, Any], BaseMessage]):
    """The graph as a chat runnable (see the module docstring).

    `graph`: a compiled graph (stateless) or a `ThreadedGraph`; default `graph.graph`.
    `last_model` names the model version of the latest answer (for /health)."""

    name: str = "twin"

    def __init__(self, graph: Any = None, answer_node: str = ANSWER_NODE) -> None:
        self._graph = graph
        self._graph_lock = threading.Lock()
        self.answer_node = answer_node
        self.last_model: dict[str, Any] | None = None

    @property
    def graph(self) -> Any:
        if self._graph is None:
            with self._graph_lock:
                if self._graph is None:
                    from graph import graph as compiled

                    self._graph = compiled
        return self._graph

    def use_graph(self, graph: Any) -> None:
        """Serve `graph` from now on (the server attaches its threads at startup)."""
        self._graph = graph

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
        from core.settings import get_settings

        return list(configuration_specs(get_settings().LLM_MAX_NEW_TOKENS))

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> AIMessage:
        return run_coroutine_sync(self.ainvoke(input, config, **kwargs))

    def stream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[AIMessageChunk]:
        yield self.invoke(input, config, **kwargs)  # type: ignore[misc]

    async def abatch(
        self, inputs: list[Any], config: Any = None, **kwargs: Any
    ) -> list[BaseMessage]:
        from core.settings import get_settings

        limit = get_settings().SERVER_MAX_BATCH
        if len(inputs) > limit:
            raise InvalidKnob("inputs", f"{len(inputs)} in one batch (the limit is {limit}, SERVER_MAX_BATCH)")
        return await super().abatch(inputs, config, **kwargs)

    async def ainvoke(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AIMessage:
        final: AIMessageChunk | None = None
        async for chunk in self.astream(input, config, **kwargs):
            final = chunk if final is None else final + chunk
        assert final is not None
        return message_chunk_to_message(final)  # type: ignore[return-value]

    def _prepare(self, config: RunnableConfig | None) -> tuple[RunnableConfig, dict[str, Any]]:
        """The run's config with the model pinned; the model's status. (Its settings were
        checked by the request schema, and are again when the nodes build their
        Configuration, so a direct caller gets the same errors.)"""
        from core.llm import choose_backend, pinned_ref
        from core.settings import get_settings

        config = ensure_config(config)
        config["run_id"] = config.get("run_id") or uuid.uuid4()
        configurable = dict(config.get("configurable") or {})
        ref = configurable.get("llm_model") or get_settings().LLM_MODEL
        if choose_backend(ref) != "openai":  # a server names its own model
            configurable["llm_model"] = pinned_ref(ref)
        config["configurable"] = configurable
        return config, model_status(configurable.get("llm_model") or ref)

    async def astream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[AIMessageChunk]:
        from core import feedback as feedback_store
        from core import tracing

        request = input if isinstance(input, TwinInput) else TwinInput.model_validate(input)
        config, model = await run_in_threadpool(self._prepare, config)
        run_id = str(config["run_id"])
        thread_id = thread_id_of(config)  # none: a stateless run
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
        if "answer" not in outcome:
            return
        self.last_model = outcome["model"]
        if thread_id and isinstance(self.graph, ThreadedGraph):
            await self.graph.bound_history(thread_id)
        await run_in_threadpool(
            feedback_store.record_run,
            run_id,
            outcome["request"],
            outcome["answer"],
            messages=outcome["turns"],
            trace_id=tracing.trace_id_of(tracer),
            model=outcome["model"].get("version") or outcome["model"]["ref"],
            context_ids=outcome.get("context_ids"),
        )

    async def _answer(
        self,
        inputs: AsyncIterator[TwinInput],
        config: RunnableConfig,
        outcome: dict[str, Any],
        model: dict[str, Any],
    ) -> AsyncIterator[AIMessageChunk]:
        from core.llm import lc_to_dicts

        request: TwinInput | None = None
        async for item in inputs:
            request = item
        assert request is not None
        graph = self.graph.for_config(config) if isinstance(self.graph, ThreadedGraph) else self.graph
        streamed: list[str] = []
        state: dict[str, Any] = {}
        async for mode, data in graph.astream(
            # `query` goes through as it is: the graph's self_query makes it the user's turn.
            {"messages": request.history(), "query": request.query},
            config,
            stream_mode=["messages", "values"],
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
        context = [doc_summary(d) for d in state.get("context") or []]
        # The version that actually answered, as the generating node reported it.
        messages = state.get("messages") or []
        answered = (messages[-1].response_metadata or {}) if messages else {}
        if answered.get("model_version"):
            model = {**model, "version": public_model_name(str(answered["model_version"]))}
        # This run's turns as the graph holds them (the caller's messages, then the turn
        # self_query made of `query`), before the answer: what the feedback record keeps.
        added = len(request.messages) + (1 if request.query.strip() else 0)
        turns = messages[-(added + 1) : -1] if messages else []
        outcome.update(
            request=str(state.get("request") or ""),
            turns=lc_to_dicts(turns),
            answer=answer,
            context_ids=[c.get("chunk_id") for c in context],
            model=model,
        )
        metadata = {
            "answer": answer,
            "filters": state.get("filters"),
            "queries": list(state.get("queries") or []),
            "context": context,
            "notes": list(state.get("notes") or []),
            "model": model,
        }
        yield AIMessageChunk(content=tail, response_metadata=jsonable(metadata))
