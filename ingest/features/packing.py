"""Packing units of text into chunks within a token budget, shared by prose and code.

A document is first cut into units (paragraphs, headings, code blocks — see
`prose_chunking` and `code_chunking`); `refine` splits the units over budget (lines, then
sentences, then token windows) and `pack` fills chunks with them, opening a new chunk at a
section start once the current one is full enough, and carrying the last units or sentences
of a chunk into the next as overlap so a thought cut in two is still found whole.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from ingest.features.tokens import Tokenizer, count_tokens, split_by_tokens


@dataclass
class Unit:
    """A piece of a document that packing never cuts: a paragraph, heading, line or block."""

    text: str
    sep: str  # separator before this unit when it follows another one in a chunk
    tokens: int = 0
    section_start: bool = False
    verbatim: bool = False  # code: never cut into sentences or repeated as overlap
    heading_level: int = 0  # a Markdown heading unit: its level (1 = `#`)


_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"')\]]*\s+(?=\S)")


def _sentences(line: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(line) if s.strip()] or [line]


def refine(tokenizer: Tokenizer, units: list[Unit], budget: int) -> list[Unit]:
    """Split units over budget: lines, then sentences, then token windows."""
    if not units:
        return units
    for unit, n in zip(units, count_tokens(tokenizer, [u.text for u in units]), strict=True):
        unit.tokens = n
    out: list[Unit] = []
    for unit in units:
        if unit.tokens <= budget:
            out.append(unit)
            continue
        # Lines, each keeping the blank lines that follow it (code stays verbatim).
        lines = [line for line in re.split(r"\n(?=[^\n])", unit.text) if line.strip()]
        if len(lines) > 1:
            subs = [Unit(line, "\n") for line in lines]
        else:
            subs = [] if unit.verbatim else [Unit(s, " ") for s in _sentences(unit.text)]
            if len(subs) <= 1:
                subs = [Unit(p, " ") for p in split_by_tokens(tokenizer, unit.text, budget)]
        for sub in subs:
            sub.verbatim = unit.verbatim
        subs[0].sep, subs[0].section_start = unit.sep, unit.section_start
        if len(subs) == 1:
            subs[0].tokens = count_tokens(tokenizer, [subs[0].text])[0]
            if subs[0].tokens > budget:  # token windows never exceed the budget; guard anyway
                subs[0].tokens = budget
            out.append(subs[0])
            continue
        out.extend(refine(tokenizer, subs, budget))
    return out


def _tail_sentences(unit: Unit, room: int, counter: Callable[[list[str]], list[int]]) -> Unit | None:
    """The last sentences of a prose unit that fit in `room` tokens (the overlap)."""
    if unit.verbatim or room <= 0:
        return None
    sentences = _sentences(unit.text.rsplit("\n", 1)[-1])
    if len(sentences) < 2:
        return None
    tail: list[str] = []
    used = 0
    for sentence, n in zip(reversed(sentences), reversed(counter(sentences)), strict=True):
        if used + n > room:
            break
        tail.insert(0, sentence)
        used += n
    if not tail or len(tail) == len(sentences):
        return None
    return Unit(" ".join(tail), "\n\n", tokens=used)


def _heading_text(unit: Unit) -> str:
    return unit.text.strip().lstrip("#").strip().rstrip("#").strip()


def pack(
    units: list[Unit],
    budget: int,
    overlap: int,
    min_section_fill: int,
    counter: Callable[[list[str]], list[int]] | None = None,
) -> list[tuple[str, str]]:
    """Units packed into chunks of at most `budget` tokens: [(text, section path)], the
    path being the headings (outermost first, " > "-joined) in force where the chunk's own
    text starts."""
    chunks: list[tuple[str, str]] = []
    current: list[Unit] = []
    used = 0
    path: list[str] = []
    section = ""
    started = False  # the current chunk holds more than the overlap carried into it

    def render(parts: list[Unit]) -> str:
        text = "".join((u.sep if i else "") + u.text for i, u in enumerate(parts))
        return text.strip("\n").rstrip()

    for unit in units:
        if current and unit.section_start and used >= min_section_fill:
            chunks.append((render(current), section))
            current, used, started = [], 0, False
        elif current and used + unit.tokens > budget:
            chunks.append((render(current), section))
            started = False
            room = min(overlap, budget - unit.tokens)
            carry: list[Unit] = []
            carried = 0
            for prev in reversed(current):
                if prev.verbatim or carried + prev.tokens > room:
                    break
                carry.insert(0, prev)
                carried += prev.tokens
            if len(carry) == len(current):
                carry, carried = [], 0  # never repeat a whole chunk
            if not carry and counter is not None:
                tail = _tail_sentences(current[-1], room, counter)
                if tail is not None:
                    carry, carried = [tail], tail.tokens
            current, used = carry, carried
        if unit.heading_level:
            path = [*path[: unit.heading_level - 1], _heading_text(unit)]
        if not started:
            section, started = " > ".join(p for p in path if p), True
        current.append(unit)
        used += unit.tokens
    if current:
        chunks.append((render(current), section))
    return [(text, sec) for text, sec in chunks if text]
