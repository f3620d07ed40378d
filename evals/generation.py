"""Greedy chat generation with an already-loaded (model, tokenizer) pair.

Evaluations score the fp32 weights they also compute perplexity with (loaded once through
`core.models.load_causal_lm`), so style samples and the local judge need no second copy of
a model and stay deterministic.
"""

from __future__ import annotations

from typing import Any

from core.prompts import render_prompt


def generate_chat(
    model: Any,
    tokenizer: Any,
    messages: list[dict[str, str]],
    max_new_tokens: int = 96,
    prefill: str = "",
    repetition_penalty: float = 1.15,
) -> str:
    """The assistant's reply to `messages` (greedy). `prefill` starts the reply for it."""
    import torch

    prompt = render_prompt(tokenizer, messages) + prefill
    inputs = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(
            **inputs,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            temperature=None,
            top_p=None,
            top_k=None,
            repetition_penalty=repetition_penalty,
            pad_token_id=tokenizer.pad_token_id,
        )
    return tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
