"""Decoding constrained to the author's script: tokens that spell letters of another script
cannot be sampled.

Qwen's vocabulary is about a sixth Chinese; the small Qwen models drift into it mid-sentence
("…the retriever 检索 the passages"), and no reader of an English author wants that. Masking
those tokens is exact where a penalty is a guess: their logits become -inf, so neither
greedy nor sampled decoding can pick them. Tokens that are only part of a character's
UTF-8 bytes (emoji, rare letters) stay allowed: they are shared by every script.

`LLM_SCRIPT` names the script the twin writes in (`latin` by default; `any` switches the
mask off for authors who write in another script). Applied as a logits processor, the
public hook of both runtimes, like DRY (core/llm/dry.py).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import numpy as np

# Letters of these scripts are allowed beside the named one: Greek letters are maths in
# technical English (α, λ, Σ), not another language.
ALWAYS_ALLOWED = frozenset({"GREEK"})
SCRIPTS = ("latin", "cyrillic", "greek", "arabic", "hebrew", "cjk", "any")


@lru_cache(maxsize=4096)
def _script_of(char: str) -> str:
    name = unicodedata.name(char, "")
    head = name.split(" ", 1)[0]
    if head in ("CJK", "HIRAGANA", "KATAKANA", "HANGUL", "BOPOMOFO", "IDEOGRAPHIC"):
        return "CJK"
    return head


def foreign_letters(text: str, script: str) -> bool:
    """Whether `text` holds a letter of a script other than `script` (and Greek)."""
    wanted = script.upper()
    for char in text:
        if char.isalpha():
            found = _script_of(char)
            if found != wanted and found not in ALWAYS_ALLOWED:
                return True
    return False


def foreign_tokens(pieces: Iterable[tuple[int, str]], script: str) -> np.ndarray:
    """The ids whose decoded text spells a letter of another script (sorted, int64)."""
    if script not in SCRIPTS:
        raise ValueError(f"unknown script {script!r}; choose one of {', '.join(SCRIPTS)}")
    if script == "any":
        return np.zeros(0, dtype=np.int64)
    ids = [token for token, text in pieces if foreign_letters(text, script)]
    return np.asarray(sorted(ids), dtype=np.int64)


class LlamaCppScriptMask:
    """A llama-cpp-python `logits_processor`: (input_ids, scores) → scores."""

    def __init__(self, banned: np.ndarray) -> None:
        self.banned = banned

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        if self.banned.size:
            scores[self.banned[self.banned < scores.shape[-1]]] = -np.inf
        return scores


class TransformersScriptMask:
    """A transformers `LogitsProcessor` (duck-typed: generate() only calls it)."""

    def __init__(self, banned: np.ndarray) -> None:
        self.banned = banned

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self.banned.size:
            import torch

            ids = torch.as_tensor(self.banned[self.banned < scores.shape[-1]], device=scores.device)
            scores[:, ids] = float("-inf")
        return scores
