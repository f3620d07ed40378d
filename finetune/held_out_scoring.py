"""Held-out scoring around a training run: the eval sets, their perplexities, and the
content-keyed cache of the base model's scores (a rerun on the same base and data scores
only the tuned model)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.registry import write_json_atomic

# `config` below is a finetune.train.TrainConfig (only its `eval_window` is read here);
# typed loosely because train imports this module.


def held_out_split(dd: Any, max_examples: int) -> Any:
    split = dd["test"] if len(dd["test"]) else dd["train"]
    return split.select(range(min(max_examples, len(split))))


@dataclass
class EvalSets:
    """What is scored before and after training (base = the adapter disabled)."""

    pairs: dict[str, list[dict[str, list[int]]]]  # name → encoded instruct examples
    documents: dict[str, list[str]]  # name → whole documents (raw text)


def score_sets(model: Any, tokenizer: Any, sets: EvalSets, config: Any, bf16: bool) -> dict:
    from finetune.perplexity import document_perplexity, perplexity

    scores: dict[str, float] = {}
    for name, items in sets.pairs.items():
        scores[f"{name}/perplexity"] = perplexity(model, items, tokenizer.pad_token_id, bf16)
    for name, texts in sets.documents.items():
        doc = document_perplexity(model, tokenizer, texts, config.eval_window, bf16)
        scores[f"{name}/perplexity"] = doc["perplexity"]
        scores[f"{name}/word_perplexity"] = doc["word_perplexity"]
    return scores


def model_fingerprint(path: str) -> str:
    """What identifies a model folder without reading gigabytes: its place and each file's
    name, size and modification time (weights, config, tokenizer). Rewritten files change
    it; a registry version or a converted offline model is written once."""
    folder = Path(path)
    if not folder.is_dir():
        return path  # a Hub id: the name is all there is
    digest = hashlib.sha256(str(folder.resolve()).encode("utf-8"))
    for item in sorted(p for p in folder.iterdir() if p.is_file()):
        stat = item.stat()
        digest.update(f"{item.name}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def scoring_identity(base_path: str, config: Any, bf16: bool, four_bit: bool) -> list[Any]:
    """Everything besides the data that a base score depends on: the weights, the scoring
    code and its libraries, the precision and device."""
    import torch
    import transformers

    from finetune import perplexity

    return [
        model_fingerprint(base_path),
        hashlib.sha256(Path(perplexity.__file__).read_bytes()).hexdigest()[:16],
        torch.__version__,
        transformers.__version__,
        config.eval_window,
        bf16,
        four_bit,
        torch.cuda.is_available(),
    ]


def cached_base_scores(
    model: Any,
    tokenizer: Any,
    sets: EvalSets,
    config: Any,
    bf16: bool,
    base_path: str,
    four_bit: bool = False,
) -> tuple[dict[str, float], int]:
    """The base model's (adapter disabled) scores on each eval set, read from
    `DATA_DIR/finetune/cache/base-scores/<key>.json` when the same weights scored the same
    encoded examples / documents under the same code before: reruns on unchanged data, and
    runs whose held-out split did not change, score only the tuned model. Returns (scores,
    how many sets came from the cache)."""
    from core.settings import get_settings

    folder = get_settings().DATA_DIR / "finetune" / "cache" / "base-scores"
    identity = scoring_identity(base_path, config, bf16, four_bit)
    scores: dict[str, float] = {}
    hits = 0
    groups = [("pairs", n, v) for n, v in sets.pairs.items()]
    groups += [("documents", n, v) for n, v in sets.documents.items()]
    for kind, name, items in groups:
        blob = json.dumps([identity, kind, items], sort_keys=True)
        path = folder / f"{hashlib.sha256(blob.encode('utf-8')).hexdigest()}.json"
        if path.exists():
            cached = json.loads(path.read_text("utf-8"))
            hits += 1
        else:
            one = EvalSets(
                pairs={name: items} if kind == "pairs" else {},
                documents={name: items} if kind == "documents" else {},
            )
            with model.disable_adapter():
                fresh = score_sets(model, tokenizer, one, config, bf16)
            cached = {key.partition("/")[2]: value for key, value in fresh.items()}
            write_json_atomic(path, cached)
        scores.update({f"{name}/{measure}": value for measure, value in cached.items()})
    return scores, hits
