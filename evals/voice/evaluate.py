"""`run_voice_eval`: base, candidate and production scored on the same held-out passages,
reported side by side (perplexities, their relative drops, style samples)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from evals.voice.held_out import VoiceEvalError, load_dataset_passages, load_passages_file
from evals.voice.model_refs import DEFAULT_MODEL_NAME, resolve_refs
from evals.voice.passage_perplexity import DEFAULT_MAX_LENGTH, model_perplexities
from evals.voice.style_samples import style_report


def _round(x: float | None, digits: int = 4) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(x, digits)


def run_voice_eval(
    author: str | None = None,
    candidate: str | None = None,
    base: str | None = None,
    name: str = DEFAULT_MODEL_NAME,
    passages_file: str | Path | None = None,
    limit: int | None = None,
    n_samples: int = 3,
    max_new_tokens: int = 96,
    max_length: int = DEFAULT_MAX_LENGTH,
    include_production: bool = True,
) -> dict[str, Any]:
    """Perplexity (template + raw) of base, candidate and production, and style samples.

    Returns at least `base_perplexity` and `candidate_perplexity` (public contract).
    """
    refs = resolve_refs(candidate, base, name)
    author = author or refs.author
    if not author:
        raise VoiceEvalError("which author? pass --author NAME")
    held_out = (
        load_passages_file(passages_file, limit)
        if passages_file
        else load_dataset_passages(author, limit)
    )
    passages = held_out.passages
    models = {"base": refs.base, "candidate": refs.candidate}
    if include_production and refs.production:
        models["production"] = refs.production
    results: dict[str, dict[str, float | int]] = {}
    by_ref: dict[str, dict[str, float | int]] = {}
    for role, ref in models.items():
        if ref not in by_ref:  # the same weights twice (candidate == accepted) score once
            by_ref[ref] = model_perplexities(ref, passages, author, max_length)
        results[role] = by_ref[ref]
    base_ppl = float(results["base"]["template"])
    cand_ppl = float(results["candidate"]["template"])
    prod_ppl = float(results["production"]["template"]) if "production" in results else None
    report: dict[str, Any] = {
        "author": author,
        "candidate": refs.candidate,
        "base": refs.base,
        "production": refs.production if "production" in results else None,
        "passages_source": held_out.source,
        "n_passages": len(passages),
        "n_tokens": int(results["candidate"]["template_tokens"]),
        "base_perplexity": _round(base_ppl),
        "candidate_perplexity": _round(cand_ppl),
        "production_perplexity": _round(prod_ppl),
        "relative_drop": _round((base_ppl - cand_ppl) / base_ppl) if base_ppl else None,
        "relative_drop_vs_production": _round((prod_ppl - cand_ppl) / prod_ppl)
        if prod_ppl
        else None,
        "raw_perplexity": {role: _round(float(r["raw"])) for role, r in results.items()},
        "word_perplexity": {role: _round(float(r["template_word"])) for role, r in results.items()},
        "perplexity_template": "training encoding (core.prompts.render_training_example), answer tokens only",
    }
    if n_samples > 0:
        style_models = {"candidate": refs.candidate}
        if refs.base != refs.candidate:
            style_models["base"] = refs.base
        report["style"] = style_report(style_models, held_out, author, n_samples, max_new_tokens)
    return report
