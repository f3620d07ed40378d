"""Checks on the answer being written, applied while the twin decodes: the plumbing they share.

A check (grounded names, core/llm/grounded_names.py; the recitation guard,
core/llm/recitation.py) looks at the answer so far and at each of the best candidate tokens,
and turns away those it refuses. Both runtimes call it through their public logits-processor
hook with token ids; this module turns the ids back into the prompt and the answer's text
and adapts the one row of scores each runtime passes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np


class AnswerCheck(Protocol):
    def mask(self, text: str, scores: np.ndarray, pieces: Sequence[str]) -> np.ndarray:
        """`scores` with the candidates refused after `text` (the answer so far) at -inf."""
        ...


class TopCandidates:
    """The base of a check: refuses, among the `top_k` best candidates (the ones greedy or
    top-p decoding can pick), those `allows(text, piece)` turns away. When every one of them
    fails, a step that may widen (`widen_to`) looks further down the ranking, best first, for
    the first candidate allowed, and refuses all it passed on the way; when none of the
    `widen_to` best is allowed (or `widen_to` is 0), the step is left alone rather than
    forcing an unlikely token."""

    def __init__(self, top_k: int) -> None:
        self.top_k = top_k
        self.blocked = 0  # tokens turned away, for tests and benchmarks
        self.widened = 0  # steps answered by a candidate below the top_k
        self.gave_up = 0  # steps where every checked candidate failed

    def refuse(
        self,
        scores: np.ndarray,
        pieces: Sequence[str],
        allows: Callable[[str], bool],
        widen_to: int = 0,
    ) -> np.ndarray:
        k = min(self.top_k, scores.shape[-1])
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.isfinite(scores[top])]
        refused = [int(t) for t in top if t < len(pieces) and not allows(pieces[t])]
        if refused and len(refused) == len(top):
            further = self._first_allowed_below(scores, pieces, allows, set(refused), widen_to)
            if further is None:
                self.gave_up += 1
                return scores
            refused.extend(further)
            self.widened += 1
        if refused:
            scores[np.asarray(refused, dtype=np.int64)] = -np.inf
            self.blocked += len(refused)
        return scores

    def _first_allowed_below(
        self,
        scores: np.ndarray,
        pieces: Sequence[str],
        allows: Callable[[str], bool],
        checked: set[int],
        widen_to: int,
    ) -> list[int] | None:
        """The candidates refused on the way down the ranking to the first one allowed
        below the top ones, or None when none of the `widen_to` best is allowed."""
        wide = min(widen_to, scores.shape[-1])
        if wide <= len(checked):
            return None
        ranked = np.argpartition(-scores, wide - 1)[:wide]
        passed: list[int] = []
        for token in ranked[np.argsort(-scores[ranked], kind="stable")]:
            t = int(token)
            if t in checked:
                continue
            if not np.isfinite(scores[t]):
                return None
            if t >= len(pieces) or allows(pieces[t]):
                return passed
            passed.append(t)
        return None


class DecodedAnswer:
    """The answer's text so far, from the token ids a runtime passes to its processors (the
    prompt's ids first: the first call sees the prompt alone)."""

    def __init__(self, pieces: Sequence[str]) -> None:
        self.pieces = pieces
        self.prompt_length: int | None = None
        self.seen = 0
        self.text = ""

    def update(self, ids: Sequence[int]) -> tuple[str, str | None]:
        """(answer text, prompt text on the first call else None)."""
        prompt = None
        if self.prompt_length is None:
            self.prompt_length = self.seen = len(ids)
            prompt = "".join(self.pieces[int(i)] for i in ids if int(i) < len(self.pieces))
        new = ids[self.seen :]
        self.text += "".join(self.pieces[int(i)] for i in new if int(i) < len(self.pieces))
        self.seen = len(ids)
        return self.text, prompt


class AnswerMaskProcessor:
    """What both runtimes' processors share: the answer decoded from the ids they pass, and
    the check, built from the prompt on the first call by `build(prompt)`."""

    def __init__(self, pieces: Sequence[str], build: Callable[[str], AnswerCheck]) -> None:
        self.decoded = DecodedAnswer(pieces)
        self.build = build
        self.check: AnswerCheck | None = None

    def _mask(self, ids: Sequence[int], row: np.ndarray) -> np.ndarray:
        text, prompt = self.decoded.update(ids)
        if prompt is not None:
            self.check = self.build(prompt)
        assert self.check is not None
        return self.check.mask(text, row, self.decoded.pieces)


class LlamaCppAnswerMask(AnswerMaskProcessor):
    """A llama-cpp-python `logits_processor`: (input_ids, scores) → scores."""

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        return self._mask(input_ids, scores)


class TransformersAnswerMask(AnswerMaskProcessor):
    """A transformers `LogitsProcessor` (duck-typed: generate() only calls it); one row."""

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        row = scores[0].float().cpu().numpy()
        masked = self._mask(input_ids[0].tolist(), row.copy())
        refused = np.flatnonzero(np.isneginf(masked) & ~np.isneginf(row))
        if refused.size:
            scores[0, torch.as_tensor(refused, device=scores.device)] = float("-inf")
        return scores
