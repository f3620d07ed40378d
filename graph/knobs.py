"""The kinds of rule a per-run setting obeys, and the pydantic type the API builds from one.

Which setting obeys which rule is declared once, on its `Configuration` field
(`graph.configuration.setting`); from there come the rule book (`check_setting`), the
server's request schema (`config_annotation`, so a bad value is a 422 that names the field
before any work starts) and the checks of a Configuration built by Studio or the CLI.

- numbers are bounded (`Number`; `max_new_tokens` by `LLM_MAX_NEW_TOKENS`);
- `llm_model` is `LLM_MODEL`, a name in `LLM_MODEL_ALLOWLIST`, a shipped offline model
  (`offline:…`) or a registry ref of a model the registry holds — never a filesystem path
  or an arbitrary hub id (in-process code that needs one sets `LLM_MODEL` through
  `core.settings.settings_override`);
- prompts differ from the defaults only when `ALLOW_PROMPT_OVERRIDES` is set, and then
  may use only their own placeholders (no attribute or index lookups in format fields);
- `collections`, `reranker` and `filters` take known names only; strings are bounded.
"""

from __future__ import annotations

import dataclasses
import re
import string
from typing import Any

from pydantic_core import core_schema

from graph.state import ALL_COLLECTIONS, FILTER_KEYS

MAX_TEXT_CHARS = 200  # author, filter values, thread ids
MAX_PROMPT_CHARS = 8000
_REGISTRY_REF = re.compile(r"^registry:([A-Za-z0-9][A-Za-z0-9_.-]*)@([A-Za-z0-9][A-Za-z0-9_.-]*)$")


class InvalidKnob(ValueError):
    """A per-run setting outside what callers may ask for; the message names the field."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


class Rule:
    """What values a caller may give one setting. `check` returns the value or raises
    InvalidKnob naming the field; `bounds` is a numeric range for the JSON schema."""

    def check(self, name: str, value: Any) -> Any:
        return value

    def bounds(self) -> tuple[float, float] | None:
        return None

    def for_default(self, default: Any) -> Rule:
        """This rule for a field whose default is `default` (a prompt's default is always
        allowed); most rules do not care."""
        return self


@dataclasses.dataclass(frozen=True)
class Number(Rule):
    low: float
    high: float | None  # None: LLM_MAX_NEW_TOKENS, read when checked

    def bounds(self) -> tuple[float, float]:
        if self.high is None:
            from core.settings import get_settings

            return self.low, get_settings().LLM_MAX_NEW_TOKENS
        return self.low, self.high

    def check(self, name: str, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidKnob(name, f"expected a number, got {type(value).__name__}")
        if isinstance(value, float) and value != value:  # NaN compares false everywhere
            raise InvalidKnob(name, "expected a number, got NaN")
        low, high = self.bounds()
        if not low <= value <= high:
            raise InvalidKnob(name, f"{value!r} is out of range (allowed {low:g} to {high:g})")
        return value


@dataclasses.dataclass(frozen=True)
class Text(Rule):
    limit: int = MAX_TEXT_CHARS

    def check(self, name: str, value: Any) -> str:
        if not isinstance(value, str):
            raise InvalidKnob(name, f"expected text, got {type(value).__name__}")
        if len(value) > self.limit:
            raise InvalidKnob(name, f"{len(value)} characters (the limit is {self.limit})")
        return value


class Flag(Rule):
    def check(self, name: str, value: Any) -> Any:
        if not isinstance(value, bool):
            raise InvalidKnob(name, f"expected true or false, got {type(value).__name__}")
        return value


@dataclasses.dataclass(frozen=True)
class Prompt(Rule):
    """A prompt template: its default always; another only with ALLOW_PROMPT_OVERRIDES, and
    then with `placeholders` as its only format fields (None: filled by plain replacement,
    so any text)."""

    placeholders: frozenset[str] | None
    default: str = ""

    def for_default(self, default: Any) -> Prompt:
        return dataclasses.replace(self, default=default)

    def check(self, name: str, value: Any) -> str:
        from core.settings import get_settings

        Text(MAX_PROMPT_CHARS).check(name, value)
        if value == self.default:
            return value
        if not get_settings().ALLOW_PROMPT_OVERRIDES:
            raise InvalidKnob(
                name, "prompt overrides are off on this server (ALLOW_PROMPT_OVERRIDES)"
            )
        if self.placeholders is None:
            return value
        try:
            parsed = [
                (field, spec, conv)
                for _, field, spec, conv in string.Formatter().parse(value)
                if field is not None
            ]
        except ValueError as exc:
            reason = f"not a valid template ({exc}); double literal braces"
            raise InvalidKnob(name, reason) from None
        # `{query.__class__}`, `{0}`, `{query!r}`, `{n:>99999}`: lookups and formatting that a
        # caller could use to read objects or blow up the prompt.
        allowed = self.placeholders
        bad = sorted({"{" + f + "}" for f, spec, conv in parsed
                      if f not in allowed or spec or conv})  # fmt: skip
        if bad:
            names = ", ".join("{" + p + "}" for p in sorted(allowed))
            found = ", ".join(bad)
            raise InvalidKnob(name, f"only the placeholders {names} are allowed, found {found}")
        return value


class LlmModel(Rule):
    def check(self, name: str, value: Any) -> str:
        from core.models import OFFLINE_LLMS
        from core.settings import get_settings

        Text(300).check(name, value)
        settings = get_settings()
        # The shipped offline models are names, not paths: always allowed.
        if value in (settings.LLM_MODEL, *settings.LLM_MODEL_ALLOWLIST, *OFFLINE_LLMS):
            return value
        if _REGISTRY_REF.match(value) is None:
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


class Reranker(Rule):
    def check(self, name: str, value: Any) -> str:
        from retrievers.variants import VARIANTS

        Text().check(name, value)
        allowed = ("auto", "default", *VARIANTS)
        if value.strip().lower() not in allowed:
            choices = ", ".join(allowed)
            raise InvalidKnob(name, f"unknown reranker {value!r}; choose one of {choices}")
        return value


class Collections(Rule):
    def check(self, name: str, value: Any) -> Any:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple) or not items:
            raise InvalidKnob(name, f"expected a non-empty list of {', '.join(ALL_COLLECTIONS)}")
        for item in items:
            bare = str(item).strip().removeprefix("embedded_").removeprefix("cleaned_")
            if not isinstance(item, str) or bare not in ALL_COLLECTIONS:
                choices = ", ".join(ALL_COLLECTIONS)
                raise InvalidKnob(name, f"unknown collection {item!r}; choose from {choices}")
        if len(items) > len(ALL_COLLECTIONS) * 2:
            raise InvalidKnob(name, "too many entries")
        return value


class Filters(Rule):
    def check(self, name: str, value: Any) -> Any:
        if not isinstance(value, dict):
            raise InvalidKnob(name, f"expected an object of {', '.join(FILTER_KEYS)}")
        unknown = sorted(set(value) - set(FILTER_KEYS))
        if unknown:
            raise InvalidKnob(name, f"unknown keys {unknown}; use {sorted(FILTER_KEYS)}")
        for key, item in value.items():
            if item is not None:
                Text().check(f"{name}.{key}", item)
        return value


def config_annotation(name: str, annotation: Any, rule: Rule) -> Any:
    """A pydantic type for setting `name`: `annotation` checked by `rule`, numeric bounds in
    its JSON schema. A type of its own rather than `Annotated` metadata, because LangServe
    rebuilds its request model from bare field annotations (metadata would be dropped and
    the rules with it)."""

    def validate(value: Any) -> Any:
        return value if value is None else rule.check(name, value)

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
            bounds = rule.bounds()
            if bounds is not None:
                target = handler.resolve_ref_schema(json_schema)
                for branch in target.get("anyOf") or [target]:
                    if branch.get("type") in ("integer", "number"):
                        branch.update(minimum=bounds[0], maximum=bounds[1])
            return json_schema

    Knob.__name__ = Knob.__qualname__ = f"{name}_knob"
    return Knob
