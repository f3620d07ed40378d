"""The recitation guard: the twin writes in the author's words, not a copy of their pages.

A small model tuned on an author's documents learns their phrasing, and with it whole
sentences it can recite (the yardstick's "longest verbatim run", evals/voice/yardstick.py:
a median of 7 words for the tuned twins against 4 for the authors' own held-out passages).
While decoding, this check follows the longest run of the answer's last words that the
author's documents hold (the suffix automaton of `core.verbatim.CopyIndex`, the index the
yardstick measures with) and turns away a candidate token that would start the word making
that run longer than `max_words`. The model then says it another way.

A word is refused where it starts, never where it ends: refusing the space after a copied
word would make the model glue another piece onto it ("statement" → "statementt"). So a
candidate is refused when the word it opens is, so far, one of the words that would
continue the run (or the first three or more letters of one). Only the `top_k` best
candidates are checked (core/llm/answer_masks.py); the answer's own earlier words, the
prompt and the excerpts it quotes are not the corpus. Words of code (fenced or in a `span`),
links and headings are never refused: they are spelt one way, and a refused word breaks
them. They still count towards the run, as the yardstick counts them: a copied sentence
with a `name` in it is still a copied sentence ("Here, 'block' and `as` are new keywords;
`EXPR1` is an arbitrary expression (but not…" ran to 20 words when they ended the run).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from core.llm.answer_masks import LlamaCppAnswerMask, TopCandidates, TransformersAnswerMask
from core.llm.grounded_names import in_code_span
from core.verbatim import CopyIndex

# Words as `core.verbatim.copy_tokens` reads them; the open word may end in an apostrophe
# ("it'" of "it's").
_WORD_RE = re.compile(r"\w+(?:['’]\w+)*")
_OPEN_WORD_RE = re.compile(r"\w+(?:['’]\w+)*['’]?$")
_LAST_CHUNK_RE = re.compile(r"\S*$")
# An open word this long that begins a word continuing the run is refused already.
_PREFIX_LETTERS = 3


def _word(text: str) -> str:
    return text.lower().replace("’", "'")


def _formulaic(before: str) -> bool:
    """Whether the word after `before` (the answer up to the word) is code, part of a link
    or of a heading: a signature, a URL or a section's title is spelt one way, and refusing
    one of its words breaks it ("peps.python-ideas-guide. org", "Functions and Clauses with
    Short Names"). Such words are never refused, but they count towards the run."""
    line = before[before.rfind("\n") + 1 :]
    if before.count("```") % 2 or in_code_span(line):
        return True
    if line.lstrip().startswith("#"):
        return True  # a heading: the section's title, which the request names
    chunk = _LAST_CHUNK_RE.search(before).group(0)  # type: ignore[union-attr]
    return "://" in chunk or "](" in chunk or chunk.startswith("www.")


def _opens_one_of(word: str, continuing: set[str]) -> bool:
    """Whether the open `word` is, so far, one of `continuing` (or its first letters)."""
    return word in continuing or (
        len(word) >= _PREFIX_LETTERS and any(w.startswith(word) for w in continuing)
    )


class RecitationGuard(TopCandidates):
    """Which candidate continuations would copy more than `max_words` consecutive words of
    the author's documents."""

    def __init__(self, index: CopyIndex, max_words: int, top_k: int = 40) -> None:
        if max_words < 1:
            raise ValueError(f"max_words must be at least 1, got {max_words}")
        super().__init__(top_k)
        self.index, self.max_words = index, max_words
        self._read_upto = 0  # characters of the answer whose finished words were read
        self._state = self._run = 0
        self._next_cache: dict[tuple[int, int], set[str]] = {}

    def _read(self, text: str) -> int:
        """Reads the answer's finished words; returns where its open word starts."""
        open_word = _OPEN_WORD_RE.search(text)
        start = open_word.start() if open_word else len(text)
        if start < self._read_upto:  # a new answer: start over
            self._read_upto, self._state, self._run = 0, 0, 0
        for match in _WORD_RE.finditer(text, self._read_upto, start):
            self._state, self._run = self.index.advance(
                self._state, self._run, self.index.word_id(_word(match.group(0)))
            )
        self._read_upto = start
        return start

    def _continuing(self, state: int, run: int) -> set[str]:
        key = (state, run)
        if key not in self._next_cache:
            self._next_cache[key] = self.index.continuations(state, run, self.max_words + 1)
        return self._next_cache[key]

    def allows(self, text: str, piece: str) -> bool:
        """Whether `piece` may follow `text` (the answer so far)."""
        start = self._read(text)
        joined = text[start:] + piece
        piece_from = len(joined) - len(piece)
        state, run = self._state, self._run
        for match in _WORD_RE.finditer(joined):
            word = _word(match.group(0))
            finished = match.end() < len(joined)
            # Only the open word and the piece's own whole words can be refused.
            checked = not finished or match.start() >= piece_from
            if checked and not _formulaic(text[:start] + joined[: match.start()]):
                continuing = self._continuing(state, run)
                if not finished:
                    return not _opens_one_of(word, continuing)
                if word in continuing:
                    return False  # a whole copied word inside this piece
            if not finished:
                break
            state, run = self.index.advance(state, run, self.index.word_id(word))
        return True

    def mask(self, text: str, scores: np.ndarray, pieces: Sequence[str]) -> np.ndarray:
        """`scores` (one row of logits) with the top candidates that would recite set to
        -inf."""
        return self.refuse(scores, pieces, lambda piece: self.allows(text, piece))


class LlamaCppRecitationGuard(LlamaCppAnswerMask):
    """A llama-cpp-python `logits_processor` keeping the answer from reciting `index`."""

    def __init__(
        self, pieces: Sequence[str], index: CopyIndex, max_words: int, top_k: int = 40
    ) -> None:
        super().__init__(pieces, lambda _prompt: RecitationGuard(index, max_words, top_k))


class TransformersRecitationGuard(TransformersAnswerMask):
    """A transformers `LogitsProcessor` keeping the answer from reciting `index`."""

    def __init__(
        self, pieces: Sequence[str], index: CopyIndex, max_words: int, top_k: int = 40
    ) -> None:
        super().__init__(pieces, lambda _prompt: RecitationGuard(index, max_words, top_k))
