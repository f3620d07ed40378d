"""Which real author a request names, as people write names.

"Guido, …", "what would guido say", "as victor", "Brett's take", "per Stinner",
"van Rossum's idea", "Barry Warsaw": a full name, a surname (one or several words), a
first name, any case, with or without a possessive. Only authors that exist in the
warehouse are matched. A name shared by several authors ("Paul" with two Pauls) matches
none of them, and the match says so, so the answer can tell the user why no author filter
was applied.

Lowercase first names that are also common English words ("will", "may", "mark") count
only where the sentence addresses or quotes a person ("as will", "will's", "will, write …").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# First names that are everyday words: lowercase, they are read as words unless the
# request addresses or quotes someone by them.
COMMON_WORD_NAMES = frozenset(
    "will may mark june april august grant rich art joy hope faith grace rose max frank ray "
    "dawn sky summer chase hunter page drew gene pat sue don ken jack rob nick penny ruby "
    "amber iris lily bill sunny river bob rusty buck cliff dean glen heath lane miles reed "
    "wade jay robin ivy autumn destiny honor justice king major price said".split()
)
_SURNAME_PARTICLES = frozenset("van von de der den la le da del della di du ter ten st".split())
_POSSESSIVE = re.compile(r"(?<=\w)['’]s?\b")
# Cues that a word is a person's name: "as X", "like X", "by X", "per X", "ask X",
# "would X say/think", "X," opening the request, "X's".
_NAME_CUES = (
    r"\b(?:as|like|by|per|from|ask|asked|dear|hey|hi|thanks|i am|i'm|im|this is|"
    r"my name is|channel|channeling|channelling)\s+{name}\b",
    r"\bwould\s+{name}\s+(?:say|think|write|argue|do|answer|explain|put)\b",
    r"(?:^|[.!?;]\s+)\s*{name}\s*[,:!]",
    r",\s*{name}\s*[?.!]?\s*$",
    r"\b{name}['’]s\b",
)


@dataclass
class AuthorMatch:
    """The author a request names (None when none or ambiguous) and, when a name matched
    several authors, the name and who it could be."""

    author: str | None = None
    ambiguous_name: str = ""  # "" when the request names several authors by different names
    candidates: list[str] = field(default_factory=list)

    @property
    def note(self) -> str | None:
        if not self.candidates:
            return None
        who = ", ".join(self.candidates)
        what = (
            f"'{self.ambiguous_name}' could be any of {who}"
            if self.ambiguous_name
            else f"the request names several authors ({who})"
        )
        return f"{what}: no author filter applied; name one author in full to search their writing"


def _has(text: str, phrase: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(phrase)}(?![\w-])", text) is not None


def _cued(text: str, name: str) -> bool:
    escaped = re.escape(name)
    return any(re.search(cue.format(name=escaped), text) for cue in _NAME_CUES)


def resolve_author(text: str, authors: list[str]) -> AuthorMatch:
    """The one real author named in `text`: a full name first, then surnames, then first
    names (see the module docstring)."""
    original = " ".join(text.split())
    low = original.casefold()
    bare = _POSSESSIVE.sub("", low)  # "brett's" → "brett", "cannon’s" → "cannon"
    full = [a for a in authors if _has(low, a.casefold()) or _has(bare, a.casefold())]
    if full:
        return AuthorMatch(max(full, key=len))
    for part in ("surname", "first name"):
        found: dict[str, list[str]] = {}
        for author in authors:
            words = author.casefold().split()
            if len(words) < 2:
                name = words[0] if words and part == "first name" else ""
            elif part == "surname":
                name = _surname(author)
            else:
                name = words[0]
            # "van Rossum" is also written "Rossum".
            forms = [name, name.split()[-1]] if " " in name else [name]
            hit = next((form for form in forms if _named(original, low, bare, form)), None)
            if hit and part == "first name" and _other_person(original, hit, author):
                hit = None
            if hit:
                found.setdefault(hit, []).append(author)
        resolved = {a for names in found.values() for a in names}
        if len(found) > 1:
            # Several names: the one the request addresses or speaks as wins ("After
            # Guido stepped down … Barry, make the case" asks Barry).
            cued = {a for name, names in found.items() if _cued(bare, name) for a in names}
            if len(cued) == 1:
                return AuthorMatch(cued.pop())
        if len(resolved) == 1:
            return AuthorMatch(resolved.pop())
        if resolved:
            name = next(iter(found)) if len(found) == 1 else ""
            return AuthorMatch(None, name, sorted(resolved))
    return AuthorMatch()


def _other_person(original: str, first: str, author: str) -> bool:
    """Every mention of the first name is followed by a capitalised word that is not the
    author's surname: someone else ("Paul Graham's essay" is not Paul Iusztin)."""
    surname = _surname(author).split()[-1]
    # The first name in any case, then (not after a possessive: "Maya's LinkedIn posts")
    # the next word when it is capitalised.
    pattern = rf"(?<![\w-])(?i:{re.escape(first)})(?![\w-])(?!['’])(?:\s+([A-Z][\w-]*))?"
    mentions = re.finditer(pattern, original)
    nexts = [m.group(1) for m in mentions]
    return bool(nexts) and all(
        word is not None and word.casefold() != surname and word.casefold() not in _SURNAME_PARTICLES
        for word in nexts
    )


def _surname(author: str) -> str:
    """The surname with its particles ("van Rossum", "de la Cruz"), else the last word."""
    words = author.split()
    start = len(words) - 1
    while start > 1 and words[start - 1].casefold() in _SURNAME_PARTICLES:
        start -= 1
    return " ".join(words[start:]).casefold()


def _named(original: str, low: str, bare: str, name: str) -> bool:
    """`name` (casefolded) appears as a name: whole words, and for a lowercase first name
    that is also an everyday word, capitalised or in a naming cue."""
    if not (_has(low, name) or _has(bare, name)):
        return False
    if name not in COMMON_WORD_NAMES:
        return True
    capitalised = re.search(rf"(?<![\w-]){re.escape(name.capitalize())}(?![\w-])", original)
    at_start = original.casefold().startswith(name)
    return bool(capitalised and not at_start) or _cued(low, name)
