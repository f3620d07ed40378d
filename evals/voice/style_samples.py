"""Style of a few greedy samples from each model, compared with the author's own text
(`evals.style`): perplexity says how likely the author's text is, this how the model writes."""

from __future__ import annotations

from typing import Any

from evals.voice.held_out import HeldOut


def style_report(
    refs: dict[str, str],
    held_out: HeldOut,
    author: str,
    n_samples: int,
    max_new_tokens: int,
) -> dict[str, Any]:
    """Style of `n_samples` greedy generations per model vs the author's own text."""
    from core.models import load_causal_lm, resolve_llm_path
    from core.prompts import twin_messages
    from evals.generation import generate_chat
    from evals.style import style_distance, style_stats, summarize

    reference = style_stats(held_out.corpus)
    report: dict[str, Any] = {"n_samples": n_samples, "reference": summarize(reference)}
    prompts = held_out.passages[:n_samples]
    for role, ref in refs.items():
        model, tokenizer = load_causal_lm(resolve_llm_path(ref))
        samples = [
            generate_chat(
                model,
                tokenizer,
                twin_messages(p.instruction, p.context, author),
                max_new_tokens=max_new_tokens,
            )
            for p in prompts
        ]
        stats = style_stats(samples)
        report[role] = {
            "stats": summarize(stats),
            "distance": style_distance(stats, reference),
            "samples": [s[:300] for s in samples],
        }
    return report
