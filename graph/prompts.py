"""Prompts the graph uses. The twin's own format lives in `core.prompts` (the same one
training renders); the helper-step prompts are defaults that a run can override through
`Configuration` (Studio, LangServe `configurable`)."""

from core.prompts import (
    EXPAND_QUERY_PROMPT,
    SELF_QUERY_PROMPT,
    TWIN_SYSTEM_PROMPT,
    format_context,
    render_prompt,
    twin_messages,
)

# The system prompt of the twin; `{author}` is filled with the resolved author's name.
SYSTEM_PROMPT = TWIN_SYSTEM_PROMPT

# Shown in the context when a linked page could not be read.
LINK_FAILED_NOTE = "The page at {url} could not be read ({reason}); answer without it."

__all__ = [
    "EXPAND_QUERY_PROMPT",
    "LINK_FAILED_NOTE",
    "SELF_QUERY_PROMPT",
    "SYSTEM_PROMPT",
    "format_context",
    "render_prompt",
    "twin_messages",
]
