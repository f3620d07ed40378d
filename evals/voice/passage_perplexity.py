"""Perplexity of a model on the author's held-out passages (lower = the text is less
surprising to the model), pooled over the corpus: exp(total NLL / total scored tokens).

- template — on the ANSWER tokens only, under the exact prompt the model is trained and
  served with; also per WORD of those answers (`template_word`): the NLL of a text does not
  depend on how a tokenizer cuts it, so this compares models with different tokenizers.
- raw — on the passage text alone, no prompt (language-model fit to the prose).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from evals.voice.held_out import Passage

DEFAULT_MAX_LENGTH = 512


def template_nll(
    model: Any,
    tokenizer: Any,
    passage: Passage,
    author: str,
    max_length: int = DEFAULT_MAX_LENGTH,
) -> tuple[float, int, int]:
    """NLL of the answer tokens under the training/serving prompt: the training encoder
    itself (`finetune.train_data.encode_example`: render_training_example, completion-only
    labels, same truncation), so eval and training score exactly the same tokens.
    Returns (NLL, scored tokens, words of the scored text)."""
    from finetune.perplexity import sequence_nll
    from finetune.train_data import encode_example

    item = encode_example(
        tokenizer, passage.instruction, passage.answer, passage.context, author, max_length
    )
    if item is None:
        return 0.0, 0, 0
    n_prompt = sum(1 for label in item["labels"] if label == -100)
    nll, n = sequence_nll(model, item["input_ids"], n_prompt)
    scored = tokenizer.decode(item["input_ids"][n_prompt:], skip_special_tokens=True)
    return nll, n, len(scored.split())


def raw_nll(
    model: Any, tokenizer: Any, text: str, max_length: int = DEFAULT_MAX_LENGTH
) -> tuple[float, int]:
    """NLL of the text alone, in consecutive windows of `max_length` tokens."""
    from finetune.perplexity import document_nll

    return document_nll(model, tokenizer, text, max_length)


def _ppl(total: float, count: int) -> float:
    return math.exp(total / count) if count else float("nan")


# (weights folder, its config mtime, passages, author, max_length) → result: the gate and
# `watch` score the same production/base model again and again in one process.
_PPL_CACHE: dict[tuple[Any, ...], dict[str, float | int]] = {}


def model_perplexities(
    ref: str,
    passages: list[Passage],
    author: str,
    max_length: int = DEFAULT_MAX_LENGTH,
    *,
    raw: bool = True,
) -> dict[str, float | int]:
    """Template and (with `raw`) raw perplexity of one model over the passages (memoized
    per process). The gate decides on the template measure alone and skips `raw`: it
    doubles the scoring time."""
    from core.models import load_causal_lm, resolve_llm_path

    path = resolve_llm_path(ref)
    config = Path(path) / "config.json"
    key = (
        str(Path(path).resolve()) if config.exists() else path,
        config.stat().st_mtime_ns if config.exists() else 0,
        tuple((p.instruction, p.context, p.answer) for p in passages),
        author,
        max_length,
        raw,
    )
    if key in _PPL_CACHE:
        return dict(_PPL_CACHE[key])
    model, tokenizer = load_causal_lm(path)
    t_total = t_count = t_words = r_total = r_count = 0.0
    for passage in passages:
        nll, n, words = template_nll(model, tokenizer, passage, author, max_length)
        t_total, t_count, t_words = t_total + nll, t_count + n, t_words + words
        if raw:
            nll, n = raw_nll(model, tokenizer, passage.answer, max_length)
            r_total, r_count = r_total + nll, r_count + n
    result: dict[str, float | int] = {
        "template": _ppl(t_total, int(t_count)),
        # Per word of the scored answers: comparable across tokenizers (the gate's measure).
        "template_word": _ppl(t_total, int(t_words)),
        "raw": _ppl(r_total, int(r_count)),
        "template_tokens": int(t_count),
        "raw_tokens": int(r_count),
    }
    _PPL_CACHE[key] = result
    return dict(result)
