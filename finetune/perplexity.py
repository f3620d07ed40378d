"""Perplexity scoring shared by training (base vs tuned), the voice eval and the gate.

Kept free of training and evals imports so that both sides can use it (evals imports
finetune, never the reverse).

- Completion perplexity: the author's answer tokens under the serving prompt (labels -100
  elsewhere), pooled over examples: exp(total NLL / answer tokens).
- Document perplexity: whole documents scored in consecutive windows of `window` tokens.
- Word perplexity: exp(total NLL / words of the scored text). The NLL of a text does not
  depend on how a tokenizer cuts it, so unlike token perplexity this compares models with
  different tokenizers (SmolLM2's 49k vocabulary against Qwen's 151k).
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from typing import Any

DOCUMENT_WINDOW = 512


def _no_grad_context(model: Any, bf16: bool) -> Any:
    import torch

    if not bf16:
        return nullcontext()
    device = next(model.parameters()).device.type
    return torch.autocast(device, dtype=torch.bfloat16)


def _ppl(total: float, count: float) -> float:
    return math.exp(total / count) if count else float("nan")


def sequence_nll(
    model: Any, ids: list[int], score_from: int, bf16: bool = False
) -> tuple[float, int]:
    """Summed NLL of ids[score_from:] given everything before them, and how many tokens."""
    import torch

    if len(ids) < 2 or score_from >= len(ids):
        return 0.0, 0
    device = next(model.parameters()).device
    input_ids = torch.tensor([ids], device=device)
    with torch.inference_mode(), _no_grad_context(model, bf16):
        logits = model(input_ids=input_ids).logits[0, :-1].float()
    targets = input_ids[0, 1:]
    start = max(score_from - 1, 0)
    loss = torch.nn.functional.cross_entropy(logits[start:], targets[start:], reduction="sum")
    return float(loss), len(ids) - 1 - start


def completion_nll(
    model: Any,
    items: list[dict[str, list[int]]],
    pad_id: int,
    batch_size: int = 4,
    bf16: bool = False,
) -> tuple[float, int]:
    """(summed NLL, token count) over the labelled tokens of `items`."""
    import torch

    from finetune.train_data import collate

    device = next(model.parameters()).device
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    with torch.inference_mode(), _no_grad_context(model, bf16):
        for start in range(0, len(items), batch_size):
            batch = collate(items[start : start + batch_size], pad_id, device)
            logits = model(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
            ).logits
            shift_logits = logits[:, :-1].float()
            shift_labels = batch["labels"][:, 1:]
            loss = torch.nn.functional.cross_entropy(
                shift_logits.reshape(-1, shift_logits.size(-1)),
                shift_labels.reshape(-1),
                ignore_index=-100,
                reduction="sum",
            )
            total += float(loss)
            count += int((shift_labels != -100).sum())
    model.train(was_training)
    return total, count


def perplexity(
    model: Any, items: list[dict[str, list[int]]], pad_id: int, bf16: bool = False
) -> float:
    total, count = completion_nll(model, items, pad_id, bf16=bf16)
    return _ppl(total, count)


def document_nll(
    model: Any, tokenizer: Any, text: str, window: int = DOCUMENT_WINDOW, bf16: bool = False
) -> tuple[float, int]:
    """NLL of a whole text in consecutive windows of `window` tokens (no special tokens)."""
    ids = tokenizer(text.strip(), add_special_tokens=False)["input_ids"]
    total, count = 0.0, 0
    for start in range(0, len(ids), window):
        nll, n = sequence_nll(model, ids[start : start + window], 1, bf16)
        total, count = total + nll, count + n
    return total, count


def document_perplexity(
    model: Any,
    tokenizer: Any,
    texts: list[str],
    window: int = DOCUMENT_WINDOW,
    bf16: bool = False,
) -> dict[str, float]:
    """Token and word perplexity of whole documents, pooled over all of them."""
    was_training = model.training
    model.eval()
    total = tokens = words = 0.0
    for text in texts:
        nll, n = document_nll(model, tokenizer, text, window, bf16)
        total, tokens = total + nll, tokens + n
        # The first token of each window is context only; its words are a rounding error.
        words += len(text.split())
    model.train(was_training)
    return {
        "perplexity": _ppl(total, tokens),
        "word_perplexity": _ppl(total, words),
        "tokens": tokens,
        "words": words,
    }


def relative_drop(base: float, tuned: float) -> float:
    return (base - tuned) / base if base else 0.0
