"""Page chrome: the lines of a text that are the page's, not the author's words.

Exports and scraped posts repeat the same non-prose lines in every document: share widgets
("Facebook", "Note", "Other"), the byline, the date, like counts, "N min read", a subscribe
or course plug paragraph, a sign-off. A twin fine-tuned on them recites them. Two detectors:

- generic patterns that need no corpus (`is_generic_chrome`; `chrome_lines` in context): a
  date or a bare counter alone on a line, share-widget words, "5 min read", "Written by
  Maya …", subscribe/share/sign-in calls to action. Label-like widget words ("Note",
  "Other") count only next to other chrome and a date only when it heads no list, so an
  admonition's "Note" and a changelog's dates stay. `cleaning.clean_text` applies them.
- `CorpusChrome`, fitted on one author's documents: like the line-level filters of web-text
  corpora (C4, Gopher, RefinedWeb line dedup), each line is normalised (case, digits → 0 in
  short lines, link targets, decoration, whitespace) and a line that recurs in at least
  `min_documents` documents and `min_share` of them is chrome; so is a recurring multi-line
  paragraph. A recurring one-word line is chrome only next to other chrome ("Output" over
  an example stays), a line without letters never is (footnote labels), and no document is
  emptied (copies of a post are not each other's chrome).

Structure is never chrome: headings (ATX, setext and reStructuredText underlines), thematic
breaks, table rows, reStructuredText directives and every line of a code block (fenced or
indented) stay, even when they recur ("Motivation", "References", `import numpy as np`).

This module also owns `split_code_blocks` (what is code in a text), which cleaning and
chunking share: chrome detection must agree with them on where code is.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence

# Bumped when the normalisation or the structure rules change: a different fingerprint for
# the same corpus, so the documents are re-cleaned.
_CHROME_VERSION = 1

# --- code blocks --------------------------------------------------------------------------

_FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})")
_LIST_ITEM = re.compile(r"\s*(?:[-*+]|\d+[.)])\s")


def split_code_blocks(text: str) -> list[tuple[bool, str]]:
    """[(is_code, segment)]: fenced blocks (with their fences) and indented code are code."""
    lines = text.split("\n")
    segments: list[tuple[bool, list[str]]] = []
    i = 0
    prose: list[str] = []

    def flush_prose() -> None:
        if prose:
            segments.append((False, prose.copy()))
            prose.clear()

    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        if fence:
            marker = fence.group(2)
            block = [line]
            i += 1
            while i < len(lines):
                block.append(lines[i])
                closing = _FENCE.match(lines[i])
                if closing and closing.group(2)[0] == marker[0] and len(closing.group(2)) >= len(marker) and not lines[i].strip()[len(closing.group(2)):].strip():
                    i += 1
                    break
                i += 1
            flush_prose()
            segments.append((True, block))
            continue
        # Indented code: 4+ spaces or a tab after a blank line (not a nested list item).
        if (line.startswith(("    ", "\t")) and line.strip()
                and (not prose or not prose[-1].strip())
                and not _LIST_ITEM.match(line)):
            block = []
            while i < len(lines) and (lines[i].startswith(("    ", "\t")) or not lines[i].strip()):
                block.append(lines[i])
                i += 1
            trailing_blank = []
            while block and not block[-1].strip():
                trailing_blank.append(block.pop())
            flush_prose()
            segments.append((True, block))
            prose.extend(trailing_blank)
            continue
        prose.append(line)
        i += 1
    flush_prose()
    return [(is_code, "\n".join(seg)) for is_code, seg in segments]


# --- generic chrome lines -------------------------------------------------------------------

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_DAY = r"\d{1,2}(?:st|nd|rd|th)?"
_DATE = (
    rf"(?:{_MONTH} {_DAY}(?:,? \d{{4}})?|{_DAY} {_MONTH},? \d{{4}}|{_MONTH},? \d{{4}}|"
    r"\d{4}-\d{2}-\d{2}|\d{1,2}[/.]\d{1,2}[/.]\d{2,4}|"
    r"\d+ ?(?:[smhdwy]|mo|mins?|hrs?|hours?|days?|weeks?|months?|years?)(?: ago)?)"
)
# A widget's word or a counter: what a share/like bar leaves on its own line.
_WIDGET = (
    r"(?:facebook|twitter|linkedin|reddit|email|e-mail|whatsapp|telegram|hacker ?news|pocket|"
    r"mastodon|bluesky|threads|share|copy link|restack|print|tweet|pin it|"
    r"like|likes|comment|comments|repost|reposts|send|reply|follow)"
)
# Widget words that are also labels of real text (a "Note" admonition, "More"): chrome only
# next to other chrome, as in a share bar ("Twitter", "Note", "Other", "Share").
_WEAK_WIDGET = re.compile(r"^(?:note|notes|other|more|save|bookmark|edited)$", re.IGNORECASE)
_COUNTER = r"\d{1,6}(?:[.,]\d{1,3})*[kKmM]?"
_DATE_LINE = re.compile(rf"^(?:(?:published|posted|updated|last updated|edited)(?: on)?:? )?{_DATE}$", re.IGNORECASE)
_BOILERPLATE = re.compile(
    r"^(?:"
    r"sign (?:up|in)(?: for free| now)?|log ?in|register|get started|"
    r"subscribe(?: now| for free| to .{0,60})?|subscribed|upgrade to paid|"
    r"share(?: this (?:post|article|story))?(?: on (?:twitter|x|facebook|linkedin|reddit|email))?|"
    rf"{_WIDGET}|{_COUNTER}|{_COUNTER} {_WIDGET}|{_WIDGET} {_COUNTER}|"
    r"listen|clap|claps?|\d+ (?:claps?|likes?|comments?|reposts?|shares?|restacks?|followers)|"
    r"responses?|\d+ responses?|"
    r"get the app|open in app|member-only story|top highlight|"
    r"read more|continue reading|see more|show more|view (?:all )?comments?|leave a comment|"
    r"back to top|skip to (?:main )?content|previous (?:post|article)|next (?:post|article)|"
    r"\d+ min(?:ute)? read|"
    r"thanks for reading[^.!?]{0,80}[.!?]? subscribe .{0,100}|thanks for reading(?:[,!.]? ?[^.!?]{0,40})?|"
    r"check out the full (?:lesson|article|post|course|tutorial|series) on .{1,40}|"
    r"originally published (?:at|on|in) .{1,160}|"
    r"discussion about this (?:post|article)|no posts|ready for more\??|"
    r"(?:accept|reject) (?:all )?cookies|we use cookies.{0,120}|"
    r"advertisement|sponsored|recommended (?:for you|from medium)|"
    r"sign up to discover human stories.{0,120}"
    r")$",
    re.IGNORECASE,
)
# Byline chrome, only when followed by a capitalised name: "Written by Maya Lindqvist".
_BYLINE = re.compile(
    r"^(?:[Ww]ritten by|[Pp]ublished in|[Mm]ore from|[Bb]y) [A-Z][\w.'-]*(?: [A-Z][\w.'-]*){0,4}$"
)
_MARKDOWN_SEPARATOR = re.compile(r"^\s*(?:[-*_]\s*){3,}$|^\s*(?:[.·•]\s*){3,}$")
_LONE_MARK = re.compile(r"^[·•|\-–—]{1,2}$")
_LIST_MARKER = re.compile(r"^(?:\d+|[a-z])[.)]$")
_LINK_TEXT = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_LINE_DECOR = re.compile(r"^[\s>#*_\-+•·|]*|[\s*_|.:!•·]*$")
# "Jul 20, 2024 · 5 min read", "Share · Facebook · Twitter": chrome parts on one line.
_PART_SEPARATOR = re.compile(r"\s*[·•|]\s*|\s{2,}")


def _strong(text: str) -> bool:
    return bool(_BOILERPLATE.match(text) or _BYLINE.match(text) or _DATE_LINE.match(text))


def _generic_kind(line: str) -> str:
    """"strong" (chrome wherever it is), "date" (chrome unless it labels a list: a
    changelog's entry), "weak" (chrome next to chrome) or "" (not generic chrome)."""
    stripped = line.strip()
    if not stripped or len(stripped) > 240:
        return ""
    if _MARKDOWN_SEPARATOR.match(stripped) or stripped.startswith("|") or _LIST_MARKER.match(stripped):
        return ""  # a thematic break, a table row or a list marker is structure, not junk
    if stripped.startswith("#") and not _LINK_TEXT.search(stripped):
        return ""  # headings are structure
    core = _LINE_DECOR.sub("", _LINK_TEXT.sub(r"\1", stripped))
    if not core:
        return "strong" if _LONE_MARK.match(stripped) else ""  # Medium's "·" and "--"
    if _WEAK_WIDGET.match(core):
        return "weak"
    if _DATE_LINE.match(core):
        return "date"
    if _BOILERPLATE.match(core) or _BYLINE.match(core):
        return "strong"
    parts = [p for p in _PART_SEPARATOR.split(core) if p]
    if len(parts) > 1 and all(_strong(p) or _WEAK_WIDGET.match(p) for p in parts):
        return "strong"
    return ""


def is_generic_chrome(line: str) -> bool:
    """A chrome line that needs no corpus to be recognised (see the module docstring). Out
    of context a lone "Note" counts; `chrome_lines` keeps it when it labels real text."""
    return bool(_generic_kind(line))


# --- structure ------------------------------------------------------------------------------

_ATX_HEADING = re.compile(r"^ {0,3}#{1,6}(?:\s|$)")
# A setext / reStructuredText adornment line: one punctuation character repeated.
_ADORNMENT = re.compile(r"""^([=\-~^"'`#*+_.:<>])\1{2,}\s*$""")
_RST_MARKUP = re.compile(r"^\s*\.\.\s+\S")  # ".. note::", ".. [1]", ".. _target:"
_TABLE = re.compile(r"^\s*[|+]")


def _is_structure(line: str, next_line: str) -> bool:
    """Headings, breaks, tables and directives: never chrome, even when they recur."""
    stripped = line.strip()
    return bool(
        _ATX_HEADING.match(line)
        or _ADORNMENT.match(stripped)
        or _MARKDOWN_SEPARATOR.match(stripped)
        or _TABLE.match(line)
        or _RST_MARKUP.match(line)
        or (stripped and _ADORNMENT.match(next_line.strip()))
    )


def _structure_flags(lines: Sequence[str]) -> list[bool]:
    return [_is_structure(line, nxt) for line, nxt in zip(lines, [*lines[1:], ""], strict=True)]


def chrome_lines(
    lines: Sequence[str], known: Iterable[int] = (), weak: Iterable[int] = ()
) -> set[int]:
    """The indexes of the chrome among the prose `lines` (no code): the generic chrome, the
    `known` chrome (the corpus's) and the `weak` candidates (the corpus's one-word lines).
    A weak widget word or candidate is chrome only when the nearest non-blank line above or
    below is chrome; a date only when it does not head a list (a changelog's entries).
    Structure is never chrome."""
    structure = _structure_flags(lines)
    filled = [i for i, line in enumerate(lines) if line.strip()]
    above = {i: p for p, i in zip([-1, *filled], filled, strict=False)}
    below = {i: n for i, n in zip(filled, [*filled[1:], -1], strict=False)}
    drop = set(known)
    candidates = {i for i in weak if not structure[i]}
    for i in filled:
        kind = "" if structure[i] or i in drop else _generic_kind(lines[i])
        if kind == "strong" or (kind == "date" and not (below[i] >= 0 and _LIST_ITEM.match(lines[below[i]]))):
            drop.add(i)
        elif kind == "weak":
            candidates.add(i)
    grew = True
    while grew:  # a run of them ("Note", "Other") between chrome lines goes as a whole
        grew = False
        for i in sorted(candidates):
            if i not in drop and (above[i] in drop or below[i] in drop):
                drop.add(i)
                grew = True
    return drop


# --- normalisation ---------------------------------------------------------------------------

_URL = re.compile(r"(?:https?://|www\.)([^\s?#]*)\S*", re.IGNORECASE)
_DIGITS = re.compile(r"\d+")
_INNER_DECOR = re.compile(r"[*_`~\"'“”‘’«»]+")
_WS = re.compile(r"\s+")
_LETTER = re.compile(r"[^\W\d_]")
_SHORT_LINE_WORDS = 10


def normalize_line(line: str) -> str:
    """The key a line is counted by: case, link targets, a URL's query (tracking), decoration
    and whitespace do not tell two copies of a chrome line apart, nor do digits in a short
    line ("7 likes", "Jul 20, 2024"). A long line keeps its digits: two sentences that
    differ only in their numbers are the author's (a series, a template), not the page's;
    so does a URL ("bugs.python.org/issue1429601" is not every other issue)."""
    text = _LINK_TEXT.sub(r"\1", line.strip())
    short = len(text.split()) <= _SHORT_LINE_WORDS

    def words(part: str) -> str:
        part = _INNER_DECOR.sub("", part).casefold()
        return _DIGITS.sub("0", part) if short else part

    parts, last = [], 0
    for match in _URL.finditer(text):
        parts += [words(text[last:match.start()]), match.group(1).rstrip(".,;:!?)/").casefold()]
        last = match.end()
    parts.append(words(text[last:]))
    return _WS.sub(" ", _LINE_DECOR.sub("", "".join(parts))).strip()


def _paragraphs(lines: list[str], structure: list[bool]) -> Iterable[list[int]]:
    """Indexes of each run of consecutive non-blank, non-structure lines."""
    run: list[int] = []
    for i, line in enumerate(lines):
        if line.strip() and not structure[i]:
            run.append(i)
            continue
        if run:
            yield run
        run = []
    if run:
        yield run


def _keys(text: str) -> tuple[set[str], set[str]]:
    """The line keys and multi-line paragraph keys of a text's prose. A line without a
    letter ("[1]", "(2, 3)", a bare number) is never counted: what it means is per document
    (a footnote label, a count), and the generic patterns already know the chrome ones."""
    lines_seen: set[str] = set()
    blocks_seen: set[str] = set()
    for is_code, segment in split_code_blocks(text):
        if is_code:
            continue
        lines = segment.split("\n")
        for para in _paragraphs(lines, _structure_flags(lines)):
            keys = [normalize_line(lines[i]) for i in para]
            lines_seen.update(k for k in keys if _LETTER.search(k))
            if len(para) > 1:
                blocks_seen.add("\n".join(keys))
    return lines_seen, blocks_seen


_BLANK_RUN = re.compile(r"\n{3,}")


class CorpusChrome:
    """The chrome of one author's corpus: recurring lines and paragraphs, plus the generic
    patterns. Fit it on the author's documents, then `strip` each of them."""

    def __init__(self, lines: Iterable[str] = (), blocks: Iterable[str] = ()) -> None:
        self.lines = frozenset(lines)
        self.blocks = frozenset(blocks)
        digest = hashlib.sha256(f"v{_CHROME_VERSION}".encode())
        for key in sorted(self.lines):
            digest.update(b"\x00L" + key.encode())
        for key in sorted(self.blocks):
            digest.update(b"\x00B" + key.encode())
        # Stable over runs and machines (for cache keys and the sync commit markers).
        self.fingerprint: str = digest.hexdigest()[:16]

    @classmethod
    def fit(
        cls, documents: Sequence[str], min_documents: int = 3, min_share: float = 0.3
    ) -> CorpusChrome:
        """Learn the lines and paragraphs that recur in ≥ `min_documents` documents and in
        ≥ `min_share` of them (fewer documents than that: only the generic patterns)."""
        line_counts: Counter[str] = Counter()
        block_counts: Counter[str] = Counter()
        for text in documents:
            lines_seen, blocks_seen = _keys(text)
            line_counts.update(lines_seen)
            block_counts.update(blocks_seen)
        threshold = max(min_documents, math.ceil(min_share * len(documents)), 2)
        return cls(
            (k for k, n in line_counts.items() if n >= threshold),
            (k for k, n in block_counts.items() if n >= threshold),
        )

    def is_chrome(self, line: str) -> bool:
        """A recurring line of the corpus or a generic chrome line (headings are not)."""
        if _is_structure(line, ""):
            return False
        return is_generic_chrome(line) or normalize_line(line) in self.lines

    def strip(self, text: str) -> str:
        """`text` without its chrome lines and paragraphs; code blocks stay byte for byte,
        headings and other structure stay, blank-line runs left behind are collapsed. The
        corpus never empties a document: when every line of its prose recurs, the document
        is a copy of the others (a template, a re-post), not their chrome, and only the
        generic patterns apply to it."""
        stripped, prose_left = self._strip(text, corpus=True)
        if not prose_left:
            stripped, _ = self._strip(text, corpus=False)
        return stripped

    def _strip(self, text: str, corpus: bool) -> tuple[str, bool]:
        """(the text without chrome, whether any prose line is left)."""
        parts: list[str] = []
        prose_left = False
        for is_code, segment in split_code_blocks(text):
            if is_code:
                parts.append(segment)
                continue
            lines = segment.split("\n")
            structure = _structure_flags(lines)
            learned: set[int] = set()
            one_word: set[int] = set()  # "Output", "Examples": labels unless among chrome
            for para in _paragraphs(lines, structure) if corpus else ():
                keys = [normalize_line(lines[i]) for i in para]
                if len(para) > 1 and "\n".join(keys) in self.blocks:
                    learned.update(para)
                    continue
                for i, key in zip(para, keys, strict=True):
                    if key in self.lines:
                        (learned if " " in key else one_word).add(i)
            drop = chrome_lines(lines, learned, one_word)
            prose_left = prose_left or any(
                line.strip() and not structure[i] and i not in drop for i, line in enumerate(lines)
            )
            kept: list[str] = []
            for i, line in enumerate(lines):
                if i not in drop and (line.strip() or not kept or kept[-1].strip()):
                    kept.append(line)  # one blank line where chrome left several
            parts.append("\n".join(kept))
        return _collapse_blank_runs("\n".join(parts)), prose_left


def _collapse_blank_runs(text: str) -> str:
    """At most one blank line between blocks, outside code (code keeps its blank lines)."""
    parts = [
        segment if is_code else _BLANK_RUN.sub("\n\n", segment)
        for is_code, segment in split_code_blocks(text)
    ]
    return "\n".join(parts).strip("\n").strip()
