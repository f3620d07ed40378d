"""The promotion gate: may registry version NAME@VERSION become `accepted`?

Rules (thresholds from `EVALS_GATE_*` environment variables or keyword arguments):
1. Voice: the candidate's held-out perplexity (answer tokens under the training prompt,
   `evals.voice`) must beat the reference — production (`accepted`) when there is one,
   else the candidate's base model — by a relative improvement of at least
   `EVALS_GATE_MIN_IMPROVEMENT` (default 0: any strict improvement).
2. RAG: on a small RAG sample (`EVALS_GATE_RAG_LIMIT` questions, default 3; 0 skips it),
   no metric may fall more than `EVALS_GATE_RAG_TOLERANCE` (absolute, default 0.05) below
   the reference's. Retrieval recall@k and MRR always count; the judged faithfulness and
   relevance count only with a real judge (an OpenAI-compatible `LLM_BASE_URL`): the
   offline 135M judge's verdicts are too noisy to block a model on.
Held-out passages: the test split of the dataset version the candidate was trained on
(its manifest's `dataset_version`), else the author's latest instruct dataset, else the
`passages_file` given. Every decision carries its reasons and is recorded
(`evals.report.record`: JSON under DATA_DIR/evals/, the experiment tracker, Opik).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)


class GateSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EVALS_GATE_", extra="ignore")

    MIN_IMPROVEMENT: float = 0.0
    RAG_TOLERANCE: float = 0.05
    RAG_LIMIT: int = 3
    PASSAGE_LIMIT: int = 64


def _held_out(manifest: dict[str, Any], passages_file: str | Path | None, limit: int) -> Any:
    from core.settings import get_settings
    from evals import voice

    if passages_file:
        return voice.load_passages_file(passages_file, limit)
    dataset_version = manifest.get("dataset_version")
    if isinstance(dataset_version, dict):
        dataset_version = dataset_version.get("id") or dataset_version.get("version")
    if dataset_version:
        path = get_settings().datasets_dir / "instruct" / str(dataset_version)
        if path.is_dir():
            return voice.load_dataset_passages(manifest.get("author"), limit, path=path)
    author = manifest.get("author")
    if not author:
        raise voice.VoiceEvalError(
            "the candidate's manifest names no dataset_version or author: no held-out passages"
        )
    return voice.load_dataset_passages(author, limit)


def _compare_rag(
    candidate: dict[str, Any], reference: dict[str, Any], tolerance: float
) -> tuple[bool, list[str]]:
    ok, reasons = True, []
    gating = ["recall@k", "mrr"]
    if candidate.get("judge") != "local-weak" and reference.get("judge") != "local-weak":
        gating += ["faithfulness", "answer_relevance"]
    for metric in gating:
        c, r = candidate.get(metric), reference.get(metric)
        if c is None or r is None:
            reasons.append(f"RAG {metric}: not compared (unscored: candidate {c}, reference {r})")
            continue
        if c < r - tolerance:
            ok = False
            reasons.append(
                f"RAG {metric} regressed: {c:.3f} vs reference {r:.3f} (tolerance {tolerance})"
            )
        else:
            reasons.append(f"RAG {metric} ok: {c:.3f} vs reference {r:.3f}")
    return ok, reasons


def evaluate_candidate(
    name: str,
    version: str,
    *,
    min_improvement: float | None = None,
    rag_tolerance: float | None = None,
    rag_limit: int | None = None,
    passages_file: str | Path | None = None,
    record: bool = True,
) -> dict[str, Any]:
    """Decide whether `name@version` may be promoted: `{"promote", "reasons", "metrics"}`."""
    from core.models import ModelNotAvailable
    from core.registry import RegistryError, get_registry
    from evals import voice

    cfg = GateSettings()
    min_improvement = cfg.MIN_IMPROVEMENT if min_improvement is None else min_improvement
    rag_tolerance = cfg.RAG_TOLERANCE if rag_tolerance is None else rag_tolerance
    rag_limit = cfg.RAG_LIMIT if rag_limit is None else rag_limit
    thresholds = {
        "min_improvement": min_improvement,
        "rag_tolerance": rag_tolerance,
        "rag_limit": rag_limit,
    }
    result: dict[str, Any] = {
        "promote": False,
        "reasons": [],
        "metrics": {},
        "name": name,
        "version": version,
        "thresholds": thresholds,
    }
    reasons: list[str] = result["reasons"]
    registry = get_registry()
    try:
        candidate_version = registry.get(name, version)
    except RegistryError as exc:
        reasons.append(str(exc))
        return result
    accepted = registry.tags(name).get("accepted")
    if accepted == version:
        reasons.append(f"{name}@{version} is already the accepted version")
        return result
    manifest = candidate_version.manifest
    candidate_ref = f"registry:{name}@{version}"
    if accepted:
        reference_ref, reference_role = f"registry:{name}@{accepted}", "production"
    else:
        reference_ref = manifest.get("base_model") or voice.OFFLINE_TRAIN_BASE
        reference_role = "base"
    result.update(candidate=candidate_ref, reference=reference_ref, reference_role=reference_role)

    # 1. Voice.
    try:
        held_out = _held_out(manifest, passages_file, cfg.PASSAGE_LIMIT)
    except voice.VoiceEvalError as exc:
        reasons.append(f"voice evaluation impossible: {exc}")
        return _finish(result, record)
    author = manifest.get("author") or held_out.author or ""
    try:
        ppl = {
            role: voice.model_perplexities(ref, held_out.passages, author)
            for role, ref in (("candidate", candidate_ref), ("reference", reference_ref))
        }
    except (ModelNotAvailable, RegistryError, OSError, ValueError) as exc:
        reasons.append(f"voice evaluation failed: {exc}")
        return _finish(result, record)
    cand_ppl, ref_ppl = float(ppl["candidate"]["template"]), float(ppl["reference"]["template"])
    improvement = (ref_ppl - cand_ppl) / ref_ppl if ref_ppl else 0.0
    result["metrics"]["voice"] = {
        "candidate_perplexity": round(cand_ppl, 4),
        f"{reference_role}_perplexity": round(ref_ppl, 4),
        "reference_perplexity": round(ref_ppl, 4),
        "relative_improvement": round(improvement, 4),
        "raw_perplexity": {k: round(float(v["raw"]), 4) for k, v in ppl.items()},
        "n_passages": len(held_out.passages),
        "passages_source": held_out.source,
    }
    voice_ok = cand_ppl < ref_ppl and improvement >= min_improvement
    verdict = "beats" if voice_ok else "does not beat"
    reasons.append(
        f"voice: candidate perplexity {cand_ppl:.3f} {verdict} {reference_role} "
        f"{ref_ppl:.3f} (relative improvement {improvement:+.2%}, required "
        f"{'>' if min_improvement == 0 else '≥'} {min_improvement:.2%})"
    )

    # 2. RAG (skipped when the voice check already failed: the answer would not change).
    rag_ok = True
    if rag_limit <= 0:
        reasons.append("RAG check skipped (rag_limit=0)")
    elif not voice_ok:
        reasons.append("RAG check skipped: the voice check already failed")
    else:
        from evals.rag import RagEvalError, run_rag_eval

        try:
            rag = {
                role: run_rag_eval(limit=rag_limit, model=ref, judge=False)
                for role, ref in (("candidate", candidate_ref), ("reference", reference_ref))
            }
        except Exception as exc:  # noqa: BLE001 - a gate refuses, it does not crash promote
            rag_ok = False
            kind = "" if isinstance(exc, RagEvalError) else f"{type(exc).__name__}: "
            reasons.append(f"RAG evaluation failed: {kind}{exc}")
        else:
            for report in rag.values():
                report.pop("items", None)
            result["metrics"]["rag"] = rag
            rag_ok, rag_reasons = _compare_rag(rag["candidate"], rag["reference"], rag_tolerance)
            reasons.extend(rag_reasons)
    result["promote"] = voice_ok and rag_ok
    reasons.insert(
        0,
        f"{'PROMOTE' if result['promote'] else 'REFUSE'} {name}@{version} "
        f"(compared with {reference_role} {reference_ref})",
    )
    return _finish(result, record)


def _finish(result: dict[str, Any], record: bool) -> dict[str, Any]:
    if record:
        from evals.report import record as record_report

        result["recorded"] = record_report(
            "gate",
            result,
            params={"name": result["name"], "version": result["version"], **result["thresholds"]},
            tag=f"{result['name']}-{result['version']}",
        )
    return result
