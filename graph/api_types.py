"""The request and response shapes of the served graph (LangServe `/twin/*`).

Input `{"messages": [{"type"|"role": ..., "content": ...}], "query": "..."}` (either or
both; `query` becomes the last user turn), bounded by `SERVER_MAX_MESSAGES` and
`SERVER_MAX_MESSAGE_CHARS`. Output: the answer as an AI message whose `response_metadata`
carries `answer`, `filters`, `queries`, `context`, `notes` and `model`.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Literal

import orjson
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
)
from langserve.serialization import WellKnownLCSerializer
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    ValidationError,
    field_validator,
    model_validator,
)
from starlette.requests import Request

ROLE_TO_TYPE = {
    "user": "human",
    "assistant": "ai",
    "human": "human",
    "ai": "ai",
    "system": "system",
}


def _limits() -> tuple[int, int]:
    from core.settings import get_settings

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

    def history(self) -> list[BaseMessage]:
        """`messages` as LangChain messages, the one form they keep up to the chat model
        (`query` is not among them: the graph's self_query makes it the user's turn)."""
        classes = {"human": HumanMessage, "ai": AIMessage, "system": SystemMessage}
        return [classes[ROLE_TO_TYPE[t.type]](content=t.content) for t in self.messages]


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


def doc_summary(doc: Any) -> dict[str, Any]:
    """A retrieved passage as the response shows it (content plus identifying metadata)."""
    meta = dict(getattr(doc, "metadata", None) or {})
    keep = (
        "chunk_id", "document_id", "title", "link", "author_full_name", "category",
        "platform", "published_at", "score", "collection", "chunk_index",
    )  # fmt: skip
    out = {k: meta.get(k) for k in keep if k in meta}
    out["content"] = getattr(doc, "page_content", str(doc))
    return out


def jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


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


_RUN_ENDPOINTS = ("/invoke", "/batch", "/stream", "/stream_log", "/stream_events")


async def reject_malformed_run_body(request: Request) -> None:
    """A FastAPI dependency for the `/twin` routes: LangServe's request schemas accept
    `null` (and the wrong shapes) where its handlers need an object or a list, and then
    answer 500. Such bodies get a 422 naming the field instead."""
    from fastapi import HTTPException

    if request.method != "POST" or not request.url.path.endswith(_RUN_ENDPOINTS):
        return
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        return  # not JSON at all: LangServe's own 422
    if not isinstance(body, dict):
        raise HTTPException(422, "the request body must be a JSON object")
    is_batch = request.url.path.endswith("/batch")
    if is_batch and not isinstance(body.get("inputs"), list):
        raise HTTPException(422, "inputs: expected a list of inputs")
    if is_batch:  # LangServe validates batch items without catching the error
        for i, item in enumerate(body["inputs"]):
            try:
                TwinInput.model_validate(item)
            except ValidationError as exc:
                reason = exc.errors()[0].get("msg", "invalid")
                raise HTTPException(422, f"inputs[{i}]: {reason}") from None
    config = body.get("config", {})
    if is_batch and isinstance(config, list):
        if len(config) != len(body["inputs"]) or not all(isinstance(c, dict) for c in config):
            raise HTTPException(422, "config: expected one object per input")
    elif "config" in body and not isinstance(config, dict | str):
        raise HTTPException(422, "config: expected an object")
    if "kwargs" in body and not isinstance(body["kwargs"], dict):
        raise HTTPException(422, "kwargs: expected an object")
