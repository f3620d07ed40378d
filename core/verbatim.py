"""How much of a text is copied verbatim from an author's documents.

A twin that recites its training text looks like the author to any classifier trained on
that text. The yardstick (evals/voice/yardstick.py) measures it with these two numbers, and
the recitation guard (core/llm/recitation.py) walks the same index while the twin decodes:
- `longest_span(text)`: the longest run of consecutive words the answer shares with any one
  training document (exact, by a suffix automaton over word ids: linear in the corpus to
  build, linear in the answer to query — a 100k-word corpus builds in about a second);
- `ngram_share(text)`: the share of the answer's distinct word 8-grams that occur in the
  training documents (hashed 8-grams in a set).
The author's own held-out writing shares short spans with the training text (common
phrases, the author's pet expressions); that natural rate is the reference, not zero.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

NGRAM = 8
# Words as the copy measures see them: case-folded, punctuation and markup ignored, so a
# recited paragraph re-wrapped or re-formatted still counts as copied.
_WORD = re.compile(r"\w+(?:['’]\w+)*")


def copy_tokens(text: str) -> list[str]:
    return [w.replace("’", "'") for w in _WORD.findall(text.lower())]


class CopyIndex:
    """One author's training documents, indexed for verbatim-overlap queries."""

    def __init__(self, documents: Sequence[str], n: int = NGRAM) -> None:
        self.n = n
        self._vocab: dict[str, int] = {}
        self._words: list[str] = []  # word id → word
        self._grams: set[int] = set()
        # Suffix automaton (Blumer et al.): state → transitions, suffix link, longest length.
        self._next: list[dict[int, int]] = [{}]
        self._link: list[int] = [-1]
        self._len: list[int] = [0]
        self._last = 0
        self.words = 0
        for document in documents:
            ids = [self._word_id_adding(w) for w in copy_tokens(document)]
            self.words += len(ids)
            self._grams.update(hash(tuple(ids[i : i + n])) for i in range(len(ids) - n + 1))
            for token in ids:
                self._extend(token)
            # A separator no answer contains, so no matched span crosses two documents.
            self._extend(-1 - len(self._link))

    def __repr__(self) -> str:  # it travels in LLM call kwargs (traces): no contents
        return f"CopyIndex({self.words} words)"

    def _word_id_adding(self, word: str) -> int:
        found = self._vocab.get(word)
        if found is None:
            found = self._vocab[word] = len(self._words)
            self._words.append(word)
        return found

    def _extend(self, token: int) -> None:
        nxt, link, length = self._next, self._link, self._len
        cur = len(length)
        nxt.append({})
        length.append(length[self._last] + 1)
        link.append(0)
        p = self._last
        while p != -1 and token not in nxt[p]:
            nxt[p][token] = cur
            p = link[p]
        if p != -1:
            q = nxt[p][token]
            if length[p] + 1 == length[q]:
                link[cur] = q
            else:
                clone = len(length)
                nxt.append(dict(nxt[q]))
                length.append(length[p] + 1)
                link.append(link[q])
                while p != -1 and nxt[p].get(token) == q:
                    nxt[p][token] = clone
                    p = link[p]
                link[q] = clone
                link[cur] = clone
        self._last = cur

    def _ids(self, text: str) -> list[int]:
        # -1 for a word the corpus never uses: no transition, so a match restarts there.
        return [self._vocab.get(w, -1) for w in copy_tokens(text)]

    def word_id(self, word: str) -> int:
        """The id of a word as `copy_tokens` spells it; -1 for one the corpus never uses."""
        return self._vocab.get(word, -1)

    def advance(self, state: int, matched: int, token: int) -> tuple[int, int]:
        """After `token` (a word id), the state of the longest suffix of the text read so far
        that the corpus holds, and its length in words. Start from (0, 0)."""
        if token < 0:
            return 0, 0
        nxt, link, length = self._next, self._link, self._len
        while state and token not in nxt[state]:
            state = link[state]
            matched = length[state]
        if token in nxt[state]:
            return nxt[state][token], matched + 1
        return 0, 0

    def continuations(self, state: int, matched: int, min_run: int) -> set[str]:
        """The words that, read next, would end a verbatim run of at least `min_run` words
        (from `advance`'s state and length)."""
        words: set[str] = set()
        nxt, link, length = self._next, self._link, self._len
        while state != -1 and matched + 1 >= min_run:
            words.update(self._words[t] for t in nxt[state] if t >= 0)
            state = link[state]
            matched = length[state] if state != -1 else -1
        return words

    def longest_span(self, text: str) -> tuple[int, str]:
        """(length in words, the words) of the longest verbatim span shared with the corpus."""
        tokens = copy_tokens(text)
        state = matched = best = end = 0
        for i, word in enumerate(tokens):
            state, matched = self.advance(state, matched, self.word_id(word))
            if matched > best:
                best, end = matched, i + 1
        return best, " ".join(tokens[end - best : end])

    def ngram_share(self, text: str) -> float:
        """Share of the text's distinct word n-grams found in the corpus (0 when too short)."""
        ids = self._ids(text)
        grams = {hash(tuple(ids[i : i + self.n])) for i in range(len(ids) - self.n + 1)}
        # An n-gram with a word the corpus never uses (-1) is not in it (up to 64-bit hash
        # collisions, negligible at these sizes).
        return len(grams & self._grams) / len(grams) if grams else 0.0
