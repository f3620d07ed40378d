"""Invented specifics: names, identifiers and numbers an answer states that nothing it was
given contains.

A small model asked to write "in the author's voice" fills a post with plausible detail —
a function that does not exist, a version number, a colleague's name. Those are the
claims a reader would act on, so each one is checked against the request, the retrieved
context and the author's whole training corpus (case-insensitive, on word boundaries);
what appears in none of them is invented. The author's own held-out writing has a natural
rate too (a new post names new things), reported beside it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from core.llm.grounded_names import BEFORE_PROSE_NAME, NOT_SPECIFIC, number_is_small

# A code span, a URL, and identifier shapes no prose word has.
# ``literal`` (reStructuredText) before `literal` (Markdown), so neither swallows the text
# between two double-backtick spans.
_BACKTICK_RE = re.compile(r"``([^`\n]{1,80})``|`([^`\n]{1,80})`")
# A code span that is one name (`os.path.join`, `run()`): the whole span is the claim.
_NAME_SPAN_RE = re.compile(r"[A-Za-z_][\w.]*(?:\(\))?")
# reStructuredText link text: `PEP 8 <https://…>`_ names a link, not code.
_RST_LINK_RE = re.compile(r"<[^<>\s]+>$")
_URL_RE = re.compile(r"https?://[^\s)>\]\"'`]+")
_CALL_RE = re.compile(r"\b([A-Za-z_][\w.]*)\(")
_SNAKE_RE = re.compile(r"\b[A-Za-z0-9]+(?:_[A-Za-z0-9]+)+\b")
_CAMEL_RE = re.compile(r"\b(?:[A-Z][a-z0-9]+){2,}\b|\b[a-z]+(?:[A-Z][a-z0-9]*)+\b")
_DOTTED_RE = re.compile(r"\b[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+\b")
_NUMBER_RE = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*(?![\w])")
_LIST_NUMBER_RE = re.compile(r"^\s*\d+[.)]\s", re.MULTILINE)
# Capitalised words not at a sentence start: names of people, tools, places.
_NAME_RE = re.compile(
    rf"(?<={BEFORE_PROSE_NAME})[A-Z][\w'’-]*[A-Za-z0-9](?: (?:[A-Z][\w'’-]*[A-Za-z0-9]))*"
)


def _add_identifiers(text: str, add: Callable[[str], None]) -> None:
    for match in _CALL_RE.finditer(text):
        add(match.group(1) + "()")
    for rx in (_DOTTED_RE, _SNAKE_RE, _CAMEL_RE):
        for match in rx.finditer(text):
            add(match.group(0))


def extract_specifics(text: str) -> list[str]:
    """The specifics a text states, in order of first appearance, without repeats."""
    found: list[str] = []
    seen: set[str] = set()

    def add(item: str) -> None:
        item = item.strip().strip(".,;:")
        key = item.removesuffix("()")  # `run()` in code and run() in prose: one claim
        if len(item) >= 2 and item.lower() not in NOT_SPECIFIC and key not in seen:
            seen.add(key)
            found.append(item)

    for match in _BACKTICK_RE.finditer(text):
        span = (match.group(1) or match.group(2)).strip()
        if _NAME_SPAN_RE.fullmatch(span):
            add(span)
        elif not _RST_LINK_RE.search(span):
            _add_identifiers(span, add)  # an expression: the names in it are the claims
    for match in _URL_RE.finditer(text):
        add(match.group(0))
    prose = _URL_RE.sub(" ", _BACKTICK_RE.sub(" ", text))
    _add_identifiers(prose, add)
    unnumbered = _LIST_NUMBER_RE.sub(" ", prose)
    for match in _NUMBER_RE.finditer(unnumbered):
        if not number_is_small(match.group(0)):
            add(match.group(0))
    for match in _NAME_RE.finditer(prose):
        add(match.group(0))
    return found


def _is_name(specific: str) -> bool:
    return " " in specific and all(part[:1].isupper() for part in specific.split())


def _normalize(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower().replace("’", "'"))


@dataclass
class Sources:
    """Text an answer may take specifics from, prepared for repeated look-ups."""

    text: str
    words: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, texts: Iterable[str]) -> Sources:
        text = _normalize("\n".join(texts))
        return cls(text, set(re.findall(r"\w+", text)))

    def mentions(self, specific: str) -> bool:
        if _is_name(specific):
            # A name of several capitalised words is known when each word is: "Standards
            # Track PEPs" rephrases known terms; "Linus Torvalds" brings a new person.
            return all(self._mentions(part) for part in specific.split())
        return self._mentions(specific)

    def _mentions(self, specific: str) -> bool:
        item = _normalize(specific)
        if item.endswith("()"):
            item = item[:-2].rsplit(".", 1)[-1] if "." in item else item[:-2]
        if re.fullmatch(r"\w+", item):
            return item in self.words  # one word: a set look-up, not a scan of the corpus
        if "(" in item:
            item = item.split("(", 1)[0]  # `f(x, y)`: the name is the claim, not the call
        pattern = r"(?<!\w)" + re.escape(item) + r"(?!\w)"
        return bool(item) and re.search(pattern, self.text) is not None


def invented_specifics(answer: str, *sources: Sources) -> list[str]:
    """The answer's specifics that none of `sources` mentions."""
    return [s for s in extract_specifics(answer) if not any(src.mentions(s) for src in sources)]
