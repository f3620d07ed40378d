"""DRY ("don't repeat yourself"): a penalty on continuing a token run seen earlier in the context.

A small model that has the author's passages in its prompt tends to copy them, echo the
request, or loop on its own last paragraph (benchmarks/twin_quality.py: "copied",
"prompt-echo", "repetitive"). A flat repetition penalty punishes every reused token, the
words a topic needs included. DRY (the sampler of llama.cpp and text-generation-webui)
punishes only the *extension* of a repeat: when the last L tokens of the context also occur
earlier, followed there by token t, t's logit loses `multiplier · base^(L − allowed_length)`
once L ≥ allowed_length. Short shared phrases cost little; a verbatim copy grows costly
fast. Runs do not reach across line breaks (a sequence breaker), so markup that recurs at the
start of lines (list bullets, headings) is free.

A penalised word is penalised in both spellings, with and without its leading space: else a
model that still wants the copied phrase writes its next word glued on ("are currently" →
"arecurrently") or breaks a word ("metho d"), which no reader accepts (counted by
`evals.voice.mangled_words`; 11 such words in one of six tuned-twin answers before).

llama-cpp-python's high-level API does not expose llama.cpp's native DRY sampler, so this is
applied as a logits processor, the public hook both runtimes offer (`LlamaCppDry`,
`TransformersDry`). The scan is over the context's token ids with numpy: well under a
millisecond per token for the twin's ~1k-token contexts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Dry:
    """DRY settings; `multiplier` 0 switches it off. Defaults: llama.cpp's recommended ones."""

    multiplier: float = 0.8
    base: float = 1.75
    allowed_length: int = 2
    max_run: int = 48  # longer runs are all equally forbidden (the penalty is huge already)

    def penalties(
        self,
        tokens: np.ndarray,
        breakers: frozenset[int] = frozenset(),
        spellings: dict[int, int] | None = None,
    ) -> dict[int, float]:
        """token id → logit penalty for the next token after `tokens` (prompt + answer so far);
        `spellings` (`spacing_variants`) extends each penalty to the other spelling."""
        n = len(tokens)
        if self.multiplier <= 0 or n < 2:
            return {}
        last = tokens[-1]
        if int(last) in breakers:
            return {}
        runs: dict[int, int] = {}
        # Every earlier place the last token occurs: how far back does the match reach?
        for i in np.flatnonzero(tokens[:-1] == last):
            length = 1
            while (
                length < self.max_run
                and i - length >= 0
                and tokens[i - length] == tokens[n - 1 - length]
                and int(tokens[i - length]) not in breakers
            ):
                length += 1
            following = int(tokens[i + 1])
            if following not in breakers and length > runs.get(following, 0):
                runs[following] = length
        penalties = {
            token: self.multiplier * self.base ** (length - self.allowed_length)
            for token, length in runs.items()
            if length >= self.allowed_length
        }
        for token, penalty in list(penalties.items()) if spellings else ():
            other = spellings.get(token)
            if other is not None and penalty > penalties.get(other, 0.0):
                penalties[other] = penalty
        return penalties


def breaker_tokens(pieces: Iterable[tuple[int, str]]) -> frozenset[int]:
    """The ids whose text holds a line break: runs stop there."""
    return frozenset(token for token, text in pieces if "\n" in text)


def spacing_variants(pieces: Iterable[tuple[int, str]]) -> dict[int, int]:
    """token id → the id of the same word with (or without) its leading space, where the
    vocabulary has both (" currently" ↔ "currently"); letters only, so punctuation and
    markup keep their own spellings."""
    pieces = list(pieces)
    by_text = {text: token for token, text in pieces}
    variants: dict[int, int] = {}
    for token, text in pieces:
        word = text[1:]
        if text.startswith(" ") and word.isalpha():
            other = by_text.get(word)
            if other is not None:
                variants[token], variants[other] = other, token
    return variants


class LlamaCppDry:
    """A llama-cpp-python `logits_processor`: (input_ids, scores) → scores."""

    def __init__(
        self, dry: Dry, breakers: frozenset[int], spellings: dict[int, int] | None = None
    ) -> None:
        self.dry, self.breakers, self.spellings = dry, breakers, spellings

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        penalties = self.dry.penalties(np.asarray(input_ids), self.breakers, self.spellings)
        if penalties:
            ids = np.fromiter(penalties, dtype=np.int64, count=len(penalties))
            scores[ids] -= np.fromiter(penalties.values(), dtype=scores.dtype, count=len(ids))
        return scores


class TransformersDry:
    """A transformers `LogitsProcessor` (duck-typed: generate() only calls it)."""

    def __init__(
        self, dry: Dry, breakers: frozenset[int], spellings: dict[int, int] | None = None
    ) -> None:
        self.dry, self.breakers, self.spellings = dry, breakers, spellings

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        for row in range(input_ids.shape[0]):
            ids = input_ids[row].cpu().numpy()
            penalties = self.dry.penalties(ids, self.breakers, self.spellings)
            for token, penalty in penalties.items():
                if token < scores.shape[1]:
                    scores[row, token] -= penalty
        return scores
