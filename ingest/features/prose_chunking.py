"""Chunking prose and Markdown: cut along headings, then paragraphs; code blocks stay whole.

Each chunk also gets its section path (the headings in force where it starts), which the
embedded text and the retrieved passages carry.
"""

from __future__ import annotations

import re

from ingest.features.cleaning import _split_code_blocks
from ingest.features.packing import Unit, pack, refine
from ingest.features.tokens import Tokenizer, count_tokens, get_tokenizer

_HEADING = re.compile(r"^#{1,6}\s")


def _text_units(text: str) -> list[Unit]:
    """Paragraph-level units; headings open sections; code blocks stay whole."""
    units: list[Unit] = []
    for is_code, segment in _split_code_blocks(text):
        if is_code:
            if segment.strip():
                units.append(Unit(segment, "\n\n", verbatim=True))
            continue
        for para in re.split(r"\n[ \t]*\n", segment):
            if not para.strip():
                continue
            para = para.strip("\n")
            first, _, rest = para.partition("\n")
            if _HEADING.match(first.lstrip()):
                level = len(first.lstrip()) - len(first.lstrip().lstrip("#"))
                units.append(Unit(first, "\n\n", section_start=True, heading_level=level))
                if rest.strip():
                    units.append(Unit(rest.strip("\n"), "\n"))
            else:
                units.append(Unit(para, "\n\n"))
    return units


def chunk_text_sections(
    text: str, budget: int, overlap: int = 0, tokenizer: Tokenizer | None = None
) -> list[tuple[str, str]]:
    """Chunks of prose/Markdown text, each at most `budget` tokens, with the section path
    (its headings, outermost first) where each one starts."""
    tokenizer = tokenizer or get_tokenizer()
    units = refine(tokenizer, _text_units(text), budget)
    counter = lambda texts: count_tokens(tokenizer, texts)  # noqa: E731
    return pack(units, budget, overlap, min_section_fill=budget // 3, counter=counter)


def chunk_text(
    text: str, budget: int, overlap: int = 0, tokenizer: Tokenizer | None = None
) -> list[str]:
    """Chunks of prose/Markdown text, each at most `budget` tokens."""
    return [chunk for chunk, _ in chunk_text_sections(text, budget, overlap, tokenizer)]
