"""Decoding constrained to the author's script (core/llm/script_mask.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def test_foreign_letters_by_script() -> None:
    from core.llm.script_mask import foreign_letters

    assert not foreign_letters("naïve café, déjà vu — 42%", "latin")
    assert not foreign_letters("the λ term and Σ over i", "latin")  # Greek is maths here
    assert foreign_letters("the retriever 检索 passages", "latin")
    assert foreign_letters("привет", "latin")
    assert not foreign_letters("привет, мир", "cyrillic")
    assert foreign_letters("hello", "cyrillic")


def test_foreign_tokens_and_the_mask() -> None:
    from core.llm.script_mask import LlamaCppScriptMask, foreign_tokens

    pieces = [(0, " the"), (1, "检索"), (2, "\ufffd"), (3, "é"), (4, "мир"), (5, "🙂")]
    banned = foreign_tokens(pieces, "latin")
    assert banned.tolist() == [1, 4]  # byte pieces and emoji stay allowed
    assert foreign_tokens(pieces, "any").size == 0
    with pytest.raises(ValueError, match="unknown script"):
        foreign_tokens(pieces, "klingon")
    scores = np.zeros(6, dtype=np.float32)
    out = LlamaCppScriptMask(banned)(np.array([0]), scores)
    assert np.isneginf(out[[1, 4]]).all() and (out[[0, 2, 3, 5]] == 0).all()


@pytest.mark.slow
def test_the_served_model_cannot_switch_script(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Asked outright for Chinese, the default model answers without a Chinese letter; with
    the mask off (`LLM_SCRIPT=any`) the same greedy request writes them."""
    from core.llm import get_llm
    from core.llm.script_mask import foreign_letters

    request = [
        {
            "role": "user",
            "content": "Write the Chinese characters for 'search engine' and nothing else.",
        }
    ]
    llm = get_llm()
    free = llm.generate(request, max_new_tokens=12, temperature=0.0, script="any")
    masked = llm.generate(request, max_new_tokens=12, temperature=0.0)
    assert foreign_letters(free, "latin"), free
    assert not foreign_letters(masked, "latin"), masked
