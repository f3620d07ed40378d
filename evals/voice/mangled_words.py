"""Mangled words: the marks a decoder leaves when it routes around a penalty on copying.

A penalty on extending a verbatim run (DRY, `core.llm.dry`) makes the next word of a
copied phrase expensive; a small model that still wants the phrase then writes the same
word without its leading space ("are currently" becomes "arecurrently", "of locals()"
becomes "oflocals()") or breaks a word in two ("metho d"). Neither is a word a reader
accepts, and no other figure of the yardstick sees them (the style features barely move).

A glued word is one that none of the sources spells, that splits into two words they do
spell, and whose two halves they also spell as a phrase: "withthe" counts, "codebases" does
not (nobody wrote "code bases"). A split word is two words one space apart that the
sources spell joined, where one half is not a word of theirs.
"""

from __future__ import annotations

import re

from evals.voice.invented_specifics import Sources

_WORD_RE = re.compile(r"[A-Za-z]+")
MIN_GLUED_CHARS = 5
MIN_PART_CHARS = 2


def mangled_words(answer: str, *sources: Sources) -> list[str]:
    """The glued and split words of `answer`, judged against `sources` (the request, the
    retrieved context, the author's corpus), in order of appearance."""

    def known(word: str) -> bool:
        return any(word in source.words for source in sources)

    def spelled(phrase: str) -> bool:
        pattern = re.compile(rf"\b{phrase}\b")
        return any(pattern.search(source.text) for source in sources)

    words = list(_WORD_RE.finditer(answer))
    found: list[str] = []
    for i, match in enumerate(words):
        word = match.group().lower()
        if len(word) >= MIN_GLUED_CHARS and not known(word):
            for cut in range(MIN_PART_CHARS, len(word) - MIN_PART_CHARS + 1):
                head, tail = word[:cut], word[cut:]
                if known(head) and known(tail) and spelled(f"{head} {tail}"):
                    found.append(match.group())
                    break
        if i + 1 < len(words):
            after = words[i + 1]
            if answer[match.end() : after.start()] != " ":
                continue
            tail = after.group().lower()
            if not (match.group().islower() and after.group().islower()):
                continue  # "RISC OS", "Py Pi": names are spelled as their owners like
            if known(word + tail) and not (known(word) and known(tail)):
                found.append(f"{match.group()} {after.group()}")
    return found
