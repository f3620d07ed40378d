"""Grounded names: the twin states a code name, an identifier or a number only when what it
was given holds it.

Asked to write in an author's voice, a small model fills the page with plausible detail the
author never wrote: `my_function`, `QuestionAnswerRetriever`, `asyncio.get_event_loop()`,
"PEP 401" (benchmarks/twin_quality.py, the yardstick's "invented specifics"). Those are the
claims a reader would act on. While decoding, each candidate token that would extend or
finish such a name is checked against the prompt the model was given (the request, the
author's excerpts, earlier turns): a name must be one the prompt spells (or the start of
one, while it is being written), else that token is not sampled. Words in prose, small
numbers and everything else stay free.

What counts as a name follows the yardstick (`evals.voice.invented_specifics`): a word with
an inner underscore or dot (`snake_case`, `os.path`), an inner capital (`CamelCase`,
`camelCase`), a call (`name(`), any word inside a `code span`, numbers above 10, and links
(`https://…`): a link must be one the prompt or the corpus holds, or the start of one while
it is being written (the tuned twins wrote "https://peps.python.org/pep-0178a" and a
150-character GitHub path that exist nowhere). A capitalised word inside a sentence (a
person, a tool, a place: "Atrium") must be a word the prompt or the author's corpus holds, in
any case; with the prompt alone that would refuse ordinary words, so it is checked only when
the corpus is given.

Only the `top_k` best candidates are checked at each step (core/llm/answer_masks.py), as a
logits processor, the public hook of both runtimes, like DRY (core/llm/dry.py) and the
script mask.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Sequence

import numpy as np

from core.llm.answer_masks import LlamaCppAnswerMask, TopCandidates, TransformersAnswerMask

_RUN_RE = re.compile(r"[\w.]+")
_OPEN_WORD_RE = re.compile(r"[\w.]*$")
_CAMEL_RE = re.compile(r"[A-Z][a-z0-9]+[A-Z]|[a-z][A-Z]")
_NUMBER_RE = re.compile(r"\d+(?:[.,]\d+)*\.?")
# A link, as the yardstick reads one (evals.voice.invented_specifics).
_URL_RE = re.compile(r"https?://[^\s)>\]\"'`]+")
_LAST_CHUNK_RE = re.compile(r"\S*$")
# What may end a sentence right after a link; not part of it.
_AFTER_URL = ".,;:!?"
# Characters that end a word inside a link: a link the corpus holds is also grounded up to
# one of these ("…/pep-0634" of "…/pep-0634.html"), as the yardstick matches on word ends.
_URL_BOUNDARIES = "./-#?&=:%~+,;!@$*("
# Dotted abbreviations of prose, not names (the yardstick skips them too).
_PROSE_ABBREVIATIONS = frozenset({"e.g", "i.e", "etc", "vs", "a.k.a", "u.s", "p.s"})
# What comes before a capitalised word inside a sentence, which makes it a name; shared
# with the yardstick (evals.voice.invented_specifics), as are the words that name nothing.
BEFORE_PROSE_NAME = r"[a-z0-9,;)] "
_BEFORE_PROSE_NAME_RE = re.compile(BEFORE_PROSE_NAME + "$")
NOT_SPECIFIC = frozenset({"i", "i'm", "i've", "i'd", "i'll", "e.g", "i.e", "etc", "vs", "ok"})
# In a code example, attributes of these are the example's own.
_LOCAL_HEADS = frozenset({"self", "cls"})
# Numbers too small to be a claim ("2 reasons", "step 3"), as the yardstick counts them.
SMALL_NUMBER = 10
# When every one of the top candidates would start an ungrounded name (a code span the
# prompt's names cannot fill), how far down the ranking a grounded start is looked for,
# rather than letting the invented name through. Only at a word's start: inside a word,
# forcing a rare piece only mangles it ("configuraormat"), so that step is left alone.
WIDEN_TO = 400
# How far back the current line and word are looked for (a name is shorter than this).
_TAIL_CHARS = 240


class NameIndex:
    """The names a text spells, lower-cased: every run of word characters and dots, and
    each dotted run's tails (`os.path.join` also gives `path.join` and `join`)."""

    def __init__(self, text: str) -> None:
        runs: set[str] = set()
        for match in _RUN_RE.finditer(text.lower()):
            parts = match.group(0).strip(".").split(".")
            for start in range(len(parts)):
                tail = ".".join(parts[start:])
                if tail:
                    runs.add(tail)
        self._names = runs
        self._sorted = sorted(runs)
        self._urls = sorted({u.rstrip(_AFTER_URL) for u in _URL_RE.findall(text.lower())})

    def __repr__(self) -> str:  # it travels in LLM call kwargs (traces): no contents
        return f"NameIndex({len(self._names)} names)"

    def starts(self, partial: str) -> bool:
        """Whether some name begins with `partial` (a name still being written)."""
        i = bisect_left(self._sorted, partial)
        return i < len(self._sorted) and self._sorted[i].startswith(partial)

    def starts_url(self, partial: str) -> bool:
        """Whether some link begins with `partial` (lower-cased)."""
        i = bisect_left(self._urls, partial)
        return i < len(self._urls) and self._urls[i].startswith(partial)

    def spells_url(self, url: str) -> bool:
        """Whether `url` (lower-cased) is a link of the text, or one's start up to a word end."""
        return self.starts_url(url) and (
            url in self._urls or any(self.starts_url(url + c) for c in _URL_BOUNDARIES)
        )

    def spells(self, word: str) -> bool:
        """Whether `word` is a whole name, or a dotted head of one (`os.path` of
        `os.path.join`)."""
        return word in self._names or self.starts(word + ".")


def in_code_span(line: str) -> bool:
    """Whether the end of `line` is inside a `code span` (fences and ``double`` ticks
    count as one tick)."""
    return line.replace("```", "").replace("``", "`").count("`") % 2 == 1


def _is_number(word: str) -> bool:
    return _NUMBER_RE.fullmatch(word) is not None


def number_is_small(word: str) -> bool:
    """Whether a number is too small to be a claim ("2 reasons", "step 3"); the yardstick
    (`evals.voice.invented_specifics`) counts numbers by the same rule."""
    try:
        return float(word.rstrip(".").replace(",", "")) <= SMALL_NUMBER
    except ValueError:
        return False


def _claims_a_name(word: str, in_code: bool, called: bool) -> bool:
    """Whether `word` (possibly unfinished) has the shape of a specific the yardstick
    checks."""
    core = word.strip(".")
    if not core or not re.search(r"[A-Za-z_]", core) or core.lower() in _PROSE_ABBREVIATIONS:
        return False
    if in_code or called:
        return True
    return "_" in core.lstrip("_") or "." in core or _CAMEL_RE.search(core) is not None


def _names_in_prose(text: str, start: int, word: str, finished: bool) -> bool:
    """Whether `word`, at `start` of `text`, is a capitalised word inside a sentence (after a
    lower-case letter, a digit, a comma, a semicolon or a bracket, and a space): a person, a
    tool, a place ("Atrium", "Linus Torvalds"), as the yardstick reads one. A sentence's
    first word and "I" are free; so is a word the author's corpus spells in any case."""
    if not word[:1].isupper() or word.lower() in NOT_SPECIFIC:
        return False
    if finished and len(word.rstrip(".")) < 2:
        return False
    return _BEFORE_PROSE_NAME_RE.search(text, max(0, start - 2), start) is not None


class GroundedNames(TopCandidates):
    """Which candidate continuations would state a name that neither the prompt, the
    author's corpus nor the answer itself holds."""

    def __init__(
        self, indexes: Sequence[NameIndex], top_k: int = 40, prose_names: bool = False
    ) -> None:
        super().__init__(top_k)
        self.indexes = list(indexes)
        self.prose_names = prose_names  # capitalised words inside sentences are checked too
        self._own = NameIndex("")
        self._own_text = ""

    def _starts(self, partial: str) -> bool:
        return any(index.starts(partial) for index in (*self.indexes, self._own))

    def _spells(self, word: str) -> bool:
        return any(index.spells(word) for index in (*self.indexes, self._own))

    def _links_allow(self, tail: str, piece: str) -> bool:
        """Whether `piece` keeps a link being written to one the sources hold (a finished
        link: one of them, or one of them up to a word end; an open one: the start of one,
        or one of them followed by a sentence's end)."""
        joined = tail + piece
        start = len(tail) - len(_LAST_CHUNK_RE.search(tail).group(0))  # type: ignore[union-attr]
        indexes = (*self.indexes, self._own)
        for match in _URL_RE.finditer(joined, start):
            if match.end() < len(tail):
                continue  # written before this step
            url = match.group(0).lower()
            whole = url.rstrip(_AFTER_URL)
            if any(index.spells_url(whole) for index in indexes):
                continue
            if match.end() == len(joined) and any(index.starts_url(url) for index in indexes):
                continue  # still being written
            return False
        return True

    def _learn_own_names(self, text: str) -> None:
        """Names the answer has written (an example's `my_dict`, a `def` in its code) may
        be named again: the answer grounds them itself."""
        open_word = _OPEN_WORD_RE.search(text)
        done = text[: open_word.start()] if open_word else text
        if done != self._own_text:
            self._own_text, self._own = done, NameIndex(done)

    def allows(self, text: str, piece: str, in_fence: bool = False) -> bool:
        """Whether `piece` may follow `text` (the answer so far); `in_fence`: inside a
        ``` code block, where an example's own names, headers and attributes are free and only
        a call on something it did not define (`asyncio.get_event_loop(`) is a claim."""
        tail = text[-_TAIL_CHARS:]
        if not in_fence and not self._links_allow(tail, piece):
            return False
        if in_fence and tail.endswith(" ") and piece.lstrip(" ").startswith("("):
            # `asyncio.get_event_loop ()`: a space does not make a call any less a claim.
            tail, piece = tail.rstrip(" "), piece.lstrip(" ")
        open_word = _OPEN_WORD_RE.search(tail)
        start = open_word.start() if open_word else len(tail)
        joined = tail + piece
        line_start = joined.rfind("\n", 0, start) + 1
        for match in _RUN_RE.finditer(joined, start):
            word = match.group(0)
            finished = match.end() < len(joined)
            if finished:
                word = word.rstrip(".")
            lowered = word.lstrip(".").lower()
            if not lowered:
                continue
            if in_fence:
                # An API claim: a call on something the example did not define.
                head, dot, _ = lowered.partition(".")
                local = head in _LOCAL_HEADS or (
                    self._own.spells(head) and not self._spells_given(head)
                )
                called = finished and joined[match.end()] == "("
                if not (dot and head and called) or local:
                    continue
            elif _is_number(lowered):
                if finished and not number_is_small(lowered) and not self._spells(lowered):
                    return False
                if not finished and not self._starts(lowered.rstrip(".")):
                    if not number_is_small(lowered):
                        return False
                continue
            else:
                called = finished and joined[match.end()] == "("
                in_code = in_code_span(joined[line_start : match.start()])
                named = _claims_a_name(word, in_code, called) or (
                    self.prose_names and _names_in_prose(joined, match.start(), word, finished)
                )
                if not named:
                    continue
            known = self._spells(lowered) if finished else self._starts(lowered.rstrip("."))
            if not known:
                return False
        return True

    def _spells_given(self, word: str) -> bool:
        return any(index.spells(word) for index in self.indexes)

    def mask(self, text: str, scores: np.ndarray, pieces: Sequence[str]) -> np.ndarray:
        """`scores` (one row of logits) with the top candidates that state an ungrounded
        name set to -inf."""
        self._learn_own_names(text)
        in_fence = text.count("```") % 2 == 1
        at_word_start = not text or not (text[-1].isalnum() or text[-1] in "_.")
        return self.refuse(
            scores,
            pieces,
            lambda piece: self.allows(text, piece, in_fence),
            widen_to=WIDEN_TO if at_word_start else 0,
        )


def grounded_names(
    prompt: str, sources: NameIndex | None, top_k: int, prose_names: bool = True
) -> GroundedNames:
    """The check for one generation: the prompt's names, plus `sources` (the author's
    corpus) when given, which is enough words to check capitalised words of prose too."""
    return GroundedNames(
        [NameIndex(prompt), *([sources] if sources else [])],
        top_k,
        prose_names=prose_names and sources is not None,
    )


class LlamaCppGroundedNames(LlamaCppAnswerMask):
    """A llama-cpp-python `logits_processor` keeping the answer to grounded names."""

    def __init__(
        self,
        pieces: Sequence[str],
        sources: NameIndex | None = None,
        top_k: int = 40,
        prose_names: bool = True,
    ) -> None:
        super().__init__(pieces, lambda prompt: grounded_names(prompt, sources, top_k, prose_names))


class TransformersGroundedNames(TransformersAnswerMask):
    """A transformers `LogitsProcessor` keeping the answer to grounded names."""

    def __init__(
        self,
        pieces: Sequence[str],
        sources: NameIndex | None = None,
        top_k: int = 40,
        prose_names: bool = True,
    ) -> None:
        super().__init__(pieces, lambda prompt: grounded_names(prompt, sources, top_k, prose_names))
