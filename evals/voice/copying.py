"""How much of an answer is copied verbatim from the author's training documents.

A twin that recites its training text looks like the author to any classifier trained on
that text; these two numbers catch it:
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
        self._grams: set[int] = set()
        # Suffix automaton (Blumer et al.): state → transitions, suffix link, longest length.
        self._next: list[dict[int, int]] = [{}]
        self._link: list[int] = [-1]
        self._len: list[int] = [0]
        self._last = 0
        self.words = 0
        for document in documents:
            ids = [self._vocab.setdefault(w, len(self._vocab)) for w in copy_tokens(document)]
            self.words += len(ids)
            self._grams.update(hash(tuple(ids[i : i + n])) for i in range(len(ids) - n + 1))
            for token in ids:
                self._extend(token)
            # A separator no answer contains, so no matched span crosses two documents.
            self._extend(-1 - len(self._link))

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

    def longest_span(self, text: str) -> tuple[int, str]:
        """(length in words, the words) of the longest verbatim span shared with the corpus."""
        tokens = copy_tokens(text)
        ids = [self._vocab.get(w, -1) for w in tokens]
        nxt, link, length = self._next, self._link, self._len
        state = matched = best = end = 0
        for i, token in enumerate(ids):
            if token < 0:
                state = matched = 0
                continue
            while state and token not in nxt[state]:
                state = link[state]
                matched = length[state]
            if token in nxt[state]:
                state = nxt[state][token]
                matched += 1
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
