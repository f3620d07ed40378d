"""What a caller may change per run, and within which bounds.

`check_knob(name, value)` is the one rule book: `Configuration` applies it to every field
when it is built (so LangGraph Studio runs, `python -m graph` and the API server all obey
it), and the server turns the same rules into its request schema (`config_annotations`),
so a bad value is a 422 that names the field before any work starts.

- numbers are bounded (`NUMERIC_BOUNDS`; `max_new_tokens` by `LLM_MAX_NEW_TOKENS`);
- `llm_model` is `LLM_MODEL`, a name in `LLM_MODEL_ALLOWLIST`, a shipped offline model
  (`offline:…`) or a registry ref of a model the registry holds — never a filesystem path
  or an arbitrary hub id (in-process code that needs one sets `LLM_MODEL` through
  `core.settings.settings_override`);
- prompts differ from the defaults only when `ALLOW_PROMPT_OVERRIDES` is set, and then
  may use only their own placeholders (no attribute or index lookups in format fields);
- `collections`, `reranker` and `filters` take known names only; strings are bounded.
"""

from __future__ import annotations

import re
import string
from typing import Any

from pydantic_core import core_schema

from graph import prompts
from graph.state import ALL_COLLECTIONS, FILTER_KEYS

NUMERIC_BOUNDS: dict[str, tuple[float, float | None]] = {
    "k": (1, 20),
    "fetch_k": (1, 200),
    "max_per_document": (0, 50),
    "expand_n": (0, 5),
    "max_new_tokens": (1, None),  # None: LLM_MAX_NEW_TOKENS
    "temperature": (0.0, 2.0),
    "sentence_grace": (0, 128),
    "history_messages": (0, 50),
    "style_examples": (0, 20),
    "style_example_tokens": (16, 2000),
    "self_query_max_new_tokens": (1, 256),
    "expand_max_new_tokens": (1, 256),
    "expand_timeout_s": (0.0, 30.0),
    "link_max_chars": (0, 20_000),
}
# Prompt fields: their default and the placeholders `str.format` fills in them (the system
# prompt is filled by plain replacement of `{author}`, so it has no format fields).
PROMPTS: dict[str, tuple[str, frozenset[str] | None]] = {
    "self_query_prompt": (prompts.SELF_QUERY_PROMPT, frozenset({"query"})),
    "expand_prompt": (prompts.EXPAND_QUERY_PROMPT, frozenset({"n", "query"})),
    "system_prompt": (prompts.SYSTEM_PROMPT, None),
}
MAX_TEXT_CHARS = 200  # author, filter values, thread ids
MAX_PROMPT_CHARS = 8000
_REGISTRY_REF = re.compile(r"^registry:([A-Za-z0-9][A-Za-z0-9_.-]*)@([A-Za-z0-9][A-Za-z0-9_.-]*)$")


class InvalidKnob(ValueError):
    """A per-run setting outside what callers may ask for; the message names the field."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


def bounds(name: str) -> tuple[float, float]:
    low, high = NUMERIC_BOUNDS[name]
    if high is None:
        from core.settings import get_settings

        high = get_settings().LLM_MAX_NEW_TOKENS
    return low, high


def check_knob(name: str, value: Any) -> Any:
    """`value` if a caller may set `name` to it; else InvalidKnob naming the field."""
    if value is None:
        return value
    if name in NUMERIC_BOUNDS:
        return _check_number(name, value)
    if name in PROMPTS:
        return _check_prompt(name, value)
    checker = _CHECKERS.get(name)
    return checker(name, value) if checker else value


def _check_number(name: str, value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidKnob(name, f"expected a number, got {type(value).__name__}")
    if isinstance(value, float) and value != value:  # NaN compares false everywhere
        raise InvalidKnob(name, "expected a number, got NaN")
    low, high = bounds(name)
    if not low <= value <= high:
        raise InvalidKnob(name, f"{value!r} is out of range (allowed {low:g} to {high:g})")
    return value


def _check_text(name: str, value: Any, limit: int = MAX_TEXT_CHARS) -> str:
    if not isinstance(value, str):
        raise InvalidKnob(name, f"expected text, got {type(value).__name__}")
    if len(value) > limit:
        raise InvalidKnob(name, f"{len(value)} characters (the limit is {limit})")
    return value


def _check_prompt(name: str, value: Any) -> str:
    from core.settings import get_settings

    default, placeholders = PROMPTS[name]
    _check_text(name, value, MAX_PROMPT_CHARS)
    if value == default:
        return value
    if not get_settings().ALLOW_PROMPT_OVERRIDES:
        raise InvalidKnob(name, "prompt overrides are off on this server (ALLOW_PROMPT_OVERRIDES)")
    if placeholders is None:
        return value
    try:
        parsed = [
            (field, spec, conv)
            for _, field, spec, conv in string.Formatter().parse(value)
            if field is not None
        ]
    except ValueError as exc:
        raise InvalidKnob(name, f"not a valid template ({exc}); double literal braces") from None
    # `{query.__class__}`, `{0}`, `{query!r}`, `{n:>99999}`: lookups and formatting that a
    # caller could use to read objects or blow up the prompt.
    bad = sorted({"{" + f + "}" for f, spec, conv in parsed if f not in placeholders or spec or conv})
    if bad:
        allowed = ", ".join("{" + p + "}" for p in sorted(placeholders))
        raise InvalidKnob(name, f"only the placeholders {allowed} are allowed, found {', '.join(bad)}")
    return value


def _check_llm_model(name: str, value: Any) -> str:
    from core.settings import get_settings

    _check_text(name, value, 300)
    settings = get_settings()
    from core.models import OFFLINE_LLMS

    # The shipped offline models are names, not paths: always allowed.
    if value == settings.LLM_MODEL or value in settings.LLM_MODEL_ALLOWLIST or value in OFFLINE_LLMS:
        return value
    match = _REGISTRY_REF.match(value)
    if match is None:
        raise InvalidKnob(
            name,
            f"{value!r} is not allowed: name a registry ref (registry:NAME@TAG or @VERSION) "
            "or a model in LLM_MODEL_ALLOWLIST",
        )
    from core.registry import RegistryError, get_registry

    try:
        get_registry().resolve(value)
    except RegistryError as exc:
        raise InvalidKnob(name, f"{value!r} is not in the model registry ({exc})") from None
    return value


def _check_reranker(name: str, value: Any) -> str:
    from retrievers.variants import VARIANTS

    _check_text(name, value)
    allowed = ("auto", "default", *VARIANTS)
    if value.strip().lower() not in allowed:
        raise InvalidKnob(name, f"unknown reranker {value!r}; choose one of {', '.join(allowed)}")
    return value


def _check_collections(name: str, value: Any) -> Any:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise InvalidKnob(name, f"expected a non-empty list of {', '.join(ALL_COLLECTIONS)}")
    for item in items:
        bare = str(item).strip().removeprefix("embedded_").removeprefix("cleaned_")
        if not isinstance(item, str) or bare not in ALL_COLLECTIONS:
            raise InvalidKnob(name, f"unknown collection {item!r}; choose from {', '.join(ALL_COLLECTIONS)}")
    if len(items) > len(ALL_COLLECTIONS) * 2:
        raise InvalidKnob(name, "too many entries")
    return value


def _check_filters(name: str, value: Any) -> Any:
    if not isinstance(value, dict):
        raise InvalidKnob(name, "expected an object of author, category, platform, date_from, date_to")
    unknown = sorted(set(value) - set(FILTER_KEYS))
    if unknown:
        raise InvalidKnob(name, f"unknown keys {unknown}; use {sorted(FILTER_KEYS)}")
    for key, item in value.items():
        if item is not None:
            _check_text(f"{name}.{key}", item)
    return value


def _check_bool(name: str, value: Any) -> Any:
    if not isinstance(value, bool):
        raise InvalidKnob(name, f"expected true or false, got {type(value).__name__}")
    return value


_CHECKERS = {
    "llm_model": _check_llm_model,
    "reranker": _check_reranker,
    "collections": _check_collections,
    "filters": _check_filters,
    "author": _check_text,
    "thread_id": _check_text,
    "self_query_llm": _check_bool,
    "fetch_links": _check_bool,
}


def config_annotation(name: str, annotation: Any) -> Any:
    """A pydantic type for knob `name`: `annotation` checked by `check_knob`, numeric bounds
    in its JSON schema. A type of its own rather than `Annotated` metadata, because
    LangServe rebuilds its request model from bare field annotations (metadata would be
    dropped and the rules with it)."""

    def validate(value: Any) -> Any:
        return check_knob(name, value)

    class Knob:
        @classmethod
        def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
            # Checked before pydantic's lax coercion: "yes" is no boolean, "5" no number.
            return core_schema.no_info_before_validator_function(
                validate, handler.generate_schema(annotation)
            )

        @classmethod
        def __get_pydantic_json_schema__(cls, schema: Any, handler: Any) -> dict[str, Any]:
            json_schema = handler(schema)
            if name in NUMERIC_BOUNDS:
                low, high = bounds(name)
                target = handler.resolve_ref_schema(json_schema)
                for branch in target.get("anyOf") or [target]:
                    if branch.get("type") in ("integer", "number"):
                        branch.update(minimum=low, maximum=high)
            return json_schema

    Knob.__name__ = Knob.__qualname__ = f"{name}_knob"
    return Knob
