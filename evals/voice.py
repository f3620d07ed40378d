"""Voice evaluation: does the candidate model write more like the author than the base does?

Two perplexities on the author's held-out passages (lower = the text is less surprising to
the model):
- `*_perplexity` — on the ANSWER tokens only, under the exact prompt the model is trained
  and served with (`core.prompts.render_training_example`: system prompt, instruction,
  context). Also per WORD of those answers (`template_word`): the NLL of a text does not
  depend on how a tokenizer cuts it, so this compares models with different tokenizers —
  the number the gate compares (the served Qwen against a fine-tuned SmolLM2, say).
- `raw_perplexity` — on the passage text alone, no prompt (language-model fit to the prose).
Perplexity is pooled over the corpus: exp(total NLL / total scored tokens).

Plus style statistics (`evals.style`) of a few greedy samples from each model, compared
with the author's own text.

Held-out passages come from the latest instruct dataset version's "test" split of that
author (`DATA_DIR/datasets/instruct/…`, written by `python -m finetune dataset build`), or
from `--passages FILE` (JSONL with `answer`/`text`/`content` and optional `instruction`,
`context`; or plain text, passages separated by blank lines or `---` lines).
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.settings import OFFLINE_TRAIN_BASE, get_settings

log = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "twin"
DEFAULT_MAX_LENGTH = 512
# Instruction used for passages that come without one (plain-text --passages files).
GENERIC_INSTRUCTION = "Write a short piece in your own voice."


class VoiceEvalError(RuntimeError):
    """Missing inputs (no held-out passages, no candidate model): a message for the user."""


@dataclass
class Passage:
    answer: str
    instruction: str = GENERIC_INSTRUCTION
    context: str = ""
    document_id: str = ""


@dataclass
class HeldOut:
    passages: list[Passage]
    source: str
    # The author's wider corpus (train + test answers) for the style reference.
    corpus: list[str] = field(default_factory=list)
    author: str = ""


# --------------------------------------------------------------------------- held-out data


def find_instruct_dataset(author: str) -> Path | None:
    """Folder of the author's latest instruct dataset version (`finetune.datasets` pointer)."""
    from finetune.datasets import INSTRUCT, datasets_root, latest_version

    version = latest_version(INSTRUCT, author)
    return datasets_root() / INSTRUCT / version if version else None


def load_dataset_passages(
    author: str | None, limit: int | None = None, path: Path | None = None
) -> HeldOut:
    """Held-out passages: the "test" split of `path` (default: the author's latest instruct
    dataset version), only rows of `author` when given."""
    path = path or (find_instruct_dataset(author) if author else None)
    if path is None:
        raise VoiceEvalError(
            f"no instruct dataset for {author!r} under {get_settings().datasets_dir}/instruct: "
            f'run `python -m finetune dataset build --author "{author}"` first, or pass '
            "--passages FILE"
        )
    from datasets import load_from_disk

    from finetune.datasets import author_slug

    dataset = load_from_disk(str(path))
    if "test" not in dataset:
        raise VoiceEvalError(f"dataset {path} has no 'test' split")

    def rows(split: str) -> list[dict[str, Any]]:
        out = []
        for row in dataset[split]:
            row_author = row.get("author") or ""
            if author and row_author and author_slug(row_author) != author_slug(author):
                continue
            if (row.get("answer") or "").strip():
                out.append(row)
        return out

    test_rows = rows("test")
    passages = [
        Passage(
            answer=r["answer"],
            instruction=r.get("instruction") or GENERIC_INSTRUCTION,
            context=r.get("context") or "",
            document_id=r.get("document_id") or "",
        )
        for r in test_rows
    ]
    if limit:
        passages = passages[:limit]
    if not passages:
        raise VoiceEvalError(f"dataset {path} has no held-out ('test') passages of {author!r}")
    corpus = [r["answer"] for split in dataset for r in rows(split)]
    found_author = author or next((r.get("author") for r in test_rows if r.get("author")), "")
    return HeldOut(passages, source=f"dataset:{path.name}", corpus=corpus, author=found_author)


def load_passages_file(path: str | Path, limit: int | None = None) -> HeldOut:
    path = Path(path)
    if not path.exists():
        raise VoiceEvalError(f"passages file not found: {path}")
    text = path.read_text("utf-8")
    passages: list[Passage] = []
    if path.suffix in (".jsonl", ".json") or text.lstrip().startswith("{"):
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise VoiceEvalError(f"{path}:{n}: not valid JSON ({exc})") from None
            answer = row.get("answer") or row.get("text") or row.get("content") or ""
            if answer.strip():
                passages.append(
                    Passage(
                        answer=answer,
                        instruction=row.get("instruction") or GENERIC_INSTRUCTION,
                        context=row.get("context") or "",
                        document_id=row.get("document_id") or "",
                    )
                )
    else:
        sep = r"^\s*---\s*$" if re.search(r"^\s*---\s*$", text, re.M) else r"\n\s*\n"
        passages = [Passage(p.strip()) for p in re.split(sep, text, flags=re.M) if p.strip()]
    if not passages:
        raise VoiceEvalError(f"no passages in {path}")
    corpus = [p.answer for p in passages]
    return HeldOut(passages[:limit] if limit else passages, source=f"file:{path}", corpus=corpus)


# --------------------------------------------------------------------------- models


@dataclass
class ModelRefs:
    candidate: str
    base: str
    production: str | None
    candidate_version: str | None = None
    production_version: str | None = None
    author: str | None = None


def _registry_ref(name: str, version: str) -> str:
    return f"registry:{name}@{version}"


def resolve_refs(
    candidate: str | None = None,
    base: str | None = None,
    name: str = DEFAULT_MODEL_NAME,
) -> ModelRefs:
    """Which models to compare: candidate (default: the `candidate` tag, else `accepted`),
    its base model (from the version manifest) and production (the `accepted` version)."""
    from core.registry import RegistryError, get_registry, parse_ref

    registry = get_registry()
    tags = registry.tags(name)
    accepted = tags.get("accepted") if isinstance(tags.get("accepted"), str) else None
    manifest: dict[str, Any] = {}
    candidate_version = None
    if candidate is None:
        chosen = tags.get("candidate") or accepted
        if not isinstance(chosen, str):
            raise VoiceEvalError(
                f"model {name!r} has no candidate or accepted version in the registry "
                f"({get_settings().registry_dir}); train one with `python -m finetune train`, "
                "or pass --candidate REF (a registry ref, a model folder, or "
                f"{OFFLINE_TRAIN_BASE})"
            )
        candidate = _registry_ref(name, chosen)
    if candidate.startswith("registry:"):
        try:
            version = registry.resolve(candidate)
        except RegistryError as exc:
            raise VoiceEvalError(str(exc)) from None
        name = parse_ref(candidate)[0]
        accepted_tag = registry.tags(name).get("accepted")
        accepted = accepted_tag if isinstance(accepted_tag, str) else None
        manifest = version.manifest
        candidate_version = version.version
        candidate = _registry_ref(name, version.version)
    base = base or manifest.get("base_model") or OFFLINE_TRAIN_BASE
    production = _registry_ref(name, accepted) if accepted else None
    return ModelRefs(
        candidate=candidate,
        base=base,
        production=production,
        candidate_version=candidate_version,
        production_version=accepted,
        author=manifest.get("author") or None,
    )


# --------------------------------------------------------------------------- perplexity


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
) -> dict[str, float | int]:
    """Template and raw perplexity of one model over the passages (memoized per process)."""
    from core.models import load_causal_lm, resolve_llm_path

    path = resolve_llm_path(ref)
    config = Path(path) / "config.json"
    key = (
        str(Path(path).resolve()) if config.exists() else path,
        config.stat().st_mtime_ns if config.exists() else 0,
        tuple((p.instruction, p.context, p.answer) for p in passages),
        author,
        max_length,
    )
    if key in _PPL_CACHE:
        return dict(_PPL_CACHE[key])
    model, tokenizer = load_causal_lm(path)
    t_total = t_count = t_words = r_total = r_count = 0.0
    for passage in passages:
        nll, n, words = template_nll(model, tokenizer, passage, author, max_length)
        t_total, t_count, t_words = t_total + nll, t_count + n, t_words + words
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


# --------------------------------------------------------------------------- style


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


# --------------------------------------------------------------------------- entry point


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
