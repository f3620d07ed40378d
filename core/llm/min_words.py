"""A written piece does not stop after a sentence: the twin's answer to a writing request
runs to at least `min_words` words.

A tuned twin sometimes stopped after a sentence or two: asked for the "Author's Note" of
one of her PEPs, Alyssa Coghlan's twin wrote 16 words and stopped (the gate counts under 25 as
"short", a degenerate answer). Every passage a twin learns from has at least 60 words
(`finetune.passages`), and so has every held-out passage it is judged against. While the
answer is shorter than `min_words`, the tokens that would end it (the model's end of
sequence, and the chat template's end tokens) are not sampled, nor is a token that would
write a stop string, or its first four characters: generation also ends at the excerpts'
separator ("* * *", which 4 of 30 held-out PEP answers wrote, core/prompts.py). Once the
answer is long enough, nothing changes. The words counted are those the served answer
keeps: an answer that stops mid-sentence loses that sentence (`trim_to_sentence`), so a
59-token answer that ended mid-sentence at 41 words was served as 29. Small talk ("hi")
asks for no minimum (graph/generation_nodes.py).

Like the other answer checks (core/llm/answer_masks.py), it runs as a logits processor,
the public hook of both runtimes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from core.llm.answer_masks import LlamaCppAnswerMask, TopCandidates, TransformersAnswerMask
from core.llm.base import trim_to_sentence

# Words as the gate's "short" check counts them (evals.answer_quality.words).
_WORD_RE = re.compile(r"[A-Za-z0-9_']+")
# A stop string's start this long is refused: shorter ones are ordinary text ("\n* " opens
# a bullet, "\n\n" a paragraph).
_STOP_START = 4


def word_count(text: str) -> int:
    return len(_WORD_RE.findall(text))


def end_tokens(
    eos: Iterable[int | None], stops: Iterable[str], encode: Callable[[str], Sequence[int]]
) -> np.ndarray:
    """The ids that end an answer: the model's end-of-sequence ids, and each stop string a
    tokenizer spells as one token (`<|im_end|>`, `<|endoftext|>`)."""
    ids = {int(token) for token in eos if token is not None and int(token) >= 0}
    for stop in stops:
        spelt = list(encode(stop))
        if len(spelt) == 1:
            ids.add(int(spelt[0]))
    return np.asarray(sorted(ids), dtype=np.int64)


class MinimumWords(TopCandidates):
    """Refuses `end_tokens`, and among the best candidates those that would write one of
    `stops` (or its start), while the answer has fewer than `min_words` words."""

    def __init__(
        self, end_tokens: np.ndarray, min_words: int, stops: Sequence[str] = (), top_k: int = 40
    ) -> None:
        super().__init__(top_k)
        self.end_tokens = end_tokens
        self.min_words = min_words
        self.stops = [stop for stop in stops if stop.strip()]
        # The answer only grows, and so do its finished sentences: once long enough, it
        # stays so, and the remaining steps skip the count.
        self.reached = False

    def allows(self, text: str, piece: str) -> bool:
        """Whether `piece` may follow `text` without writing a stop string or its start."""
        tail = text[-64:]
        joined = tail + piece
        for stop in self.stops:
            if stop in joined and stop not in tail:
                return False
            for k in range(min(len(stop), len(joined)), _STOP_START - 1, -1):
                if joined.endswith(stop[:k]) and len(piece) > 0 and not tail.endswith(stop[:k]):
                    return False
        return True

    def mask(self, text: str, scores: np.ndarray, pieces: Sequence[str]) -> np.ndarray:
        """`scores` with the ways to end at -inf while `text` is short."""
        self.reached = self.reached or word_count(trim_to_sentence(text)) >= self.min_words
        if self.reached:
            return scores
        ends = self.end_tokens[self.end_tokens < scores.shape[-1]]
        finite = np.isfinite(scores)
        if ends.size and finite[ends].any() and finite.sum() > finite[ends].sum():
            scores[ends] = -np.inf
            self.blocked += 1
        if self.stops:
            scores = self.refuse(scores, pieces, lambda piece: self.allows(text, piece))
        return scores


class LlamaCppMinimumWords(LlamaCppAnswerMask):
    """A llama-cpp-python `logits_processor` holding back the end of a short answer."""

    def __init__(
        self, pieces: Sequence[str], end_tokens: np.ndarray, min_words: int, stops: Sequence[str]
    ) -> None:
        super().__init__(pieces, lambda _prompt: MinimumWords(end_tokens, min_words, stops))


class TransformersMinimumWords(TransformersAnswerMask):
    """A transformers `LogitsProcessor` holding back the end of a short answer."""

    def __init__(
        self, pieces: Sequence[str], end_tokens: np.ndarray, min_words: int, stops: Sequence[str]
    ) -> None:
        super().__init__(pieces, lambda _prompt: MinimumWords(end_tokens, min_words, stops))
