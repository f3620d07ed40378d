"""Versioned preference datasets (DPO): prompt, chosen = the author's answer, rejected =
what the BASE model writes for the same instruction with no persona; plus `/feedback`
records (`core.feedback.load_feedback()`, when the store exists): well-rated answers are
chosen, poorly rated ones rejected (a request with only a well-rated answer gets the base
model's answer as rejected). Built on an instruct version (`finetune.datasets`), versioned,
saved and pointed at the same way.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict
from typing import Any

from core.domain import utcnow
from finetune.datasets import (
    PREFERENCE,
    SPLITS,
    DatasetVersion,
    build_instruct_dataset,
    builder_code_version,
    datasets_root,
    existing_version,
    save_version,
    set_latest,
    version_id,
)
from finetune.passages import BuildParams

log = logging.getLogger(__name__)


def _feedback_records() -> list[dict[str, Any]]:
    try:
        from core.feedback import load_feedback
    except ImportError:
        return []
    try:
        return list(load_feedback() or [])
    except Exception as exc:  # a missing/corrupt store means no feedback, not a failed build
        log.warning("could not read feedback records: %s", exc)
        return []


def _score(value: Any) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("up", "thumbs_up", "good", "+1", "like"):
            return 1.0
        if lowered in ("down", "thumbs_down", "bad", "-1", "dislike"):
            return 0.0
        try:
            value = float(lowered)
        except ValueError:
            return None
    if isinstance(value, int | float):
        value = float(value)
        return value / 5.0 if value > 1 else max(0.0, value)
    return None


def _request_text(request: Any) -> str:
    if isinstance(request, str):
        return request.strip()
    if isinstance(request, dict):
        for key in ("query", "instruction", "prompt", "input"):
            if isinstance(request.get(key), str):
                return request[key].strip()
        messages = request.get("messages")
        if isinstance(messages, list):
            return _request_text(messages)
    if isinstance(request, list):
        users = [
            m.get("content", "")
            for m in request
            if isinstance(m, dict) and m.get("role", m.get("type")) in ("user", "human")
        ]
        return users[-1].strip() if users else ""
    return ""


def feedback_pairs(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Group rated answers by request: well-rated → chosen, poorly rated → rejected."""
    by_request: dict[str, dict[str, list[tuple[float, str]]]] = {}
    for record in records:
        request = _request_text(record.get("request"))
        answer = str(record.get("answer") or "").strip()
        score = _score(record.get("score"))
        if not request or not answer or score is None:
            continue
        side = "good" if score >= 0.5 else "bad"
        by_request.setdefault(request, {"good": [], "bad": []})[side].append((score, answer))
    pairs = []
    for request in sorted(by_request):
        good = sorted(by_request[request]["good"], key=lambda t: (-t[0], t[1]))
        bad = sorted(by_request[request]["bad"], key=lambda t: (t[0], t[1]))
        if good:
            pairs.append(
                {"prompt": request, "chosen": good[0][1], "rejected": bad[0][1] if bad else None}
            )
    return pairs


def build_preference_dataset(
    author: str,
    *,
    params: BuildParams | None = None,
    base_model: str | None = None,
    instruct: DatasetVersion | None = None,
    use_llm: bool = True,
    force: bool = False,
    progress: bool = False,
    **instruct_kwargs: Any,
) -> DatasetVersion:
    """Preference pairs (prompt, chosen = author, rejected = base model) + feedback pairs.

    `use_llm` is about the rejected side only: the base model writes those answers, else a
    generic template does. The instruct version the pairs come from is `instruct`, or one
    built with `instruct_kwargs` (its requests from templates unless they say
    `use_llm=True`)."""
    from core.settings import OFFLINE_TRAIN_BASE
    from finetune.generator import GenerationClient, generator_id, generic_answer

    params = params or BuildParams()
    author = " ".join(author.split())
    if instruct is None:
        instruct = build_instruct_dataset(author, params=params, progress=progress, **instruct_kwargs)
    base_model = base_model or OFFLINE_TRAIN_BASE
    feedback = feedback_pairs(_feedback_records())
    identity = {
        "kind": PREFERENCE,
        "author": author,
        "instruct_version": instruct.version,
        "rejected_model": generator_id(base_model) if use_llm else "template",
        "rejected_max_new_tokens": params.rejected_max_new_tokens,
        "feedback": hashlib.sha256(json.dumps(feedback, sort_keys=True).encode()).hexdigest(),
        "builder": builder_code_version(),
    }
    version = version_id(identity)
    found = existing_version(PREFERENCE, version, author)
    if found and not force:
        set_latest(PREFERENCE, author, version)
        return found

    client = GenerationClient(base_model, cache_dir=datasets_root() / "cache") if use_llm else None
    dd = instruct.load()
    rows: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    for split in SPLITS:
        items: Any = list(dd[split])
        if progress:
            from tqdm import tqdm

            items = tqdm(items, desc=f"rejected answers ({split})", unit="pair")
        for row in items:
            rejected = generic_answer(client, row["instruction"], params.rejected_max_new_tokens)
            rows[split].append(
                {
                    "prompt": row["instruction"],
                    "chosen": row["answer"],
                    "rejected": rejected,
                    "source": "author",
                }
            )
    for pair in feedback:
        rejected = pair["rejected"] or generic_answer(
            client, pair["prompt"], params.rejected_max_new_tokens
        )
        if rejected.strip() == pair["chosen"].strip():
            continue
        rows["train"].append({**pair, "rejected": rejected, "source": "feedback"})
    manifest = {
        "kind": PREFERENCE,
        "version": version,
        "author": author,
        "created_at": utcnow().isoformat(),
        "instruct_version": instruct.version,
        "sources": instruct.manifest.get("sources", []),
        "generator": identity["rejected_model"],
        "params": asdict(params),
        "builder": identity["builder"],
        "counts": {
            **{s: len(rows[s]) for s in SPLITS},
            "feedback_pairs": sum(r["source"] == "feedback" for r in rows["train"]),
        },
    }
    path = save_version(PREFERENCE, version, rows, manifest)
    set_latest(PREFERENCE, author, version)
    return DatasetVersion(PREFERENCE, version, author, path, manifest, built=True)
