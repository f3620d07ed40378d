"""The promotion gate: may registry version NAME@VERSION become `accepted`?

The reference is what the twin SERVES NOW in the candidate's place (`served_reference`):
the accepted version when there is one, else the model `LLM_MODEL` falls back to (the
offline Qwen2.5-Coder-0.5B by default). A fine-tuned model that beats its own small base
but writes worse than the served default is refused.

Rules (thresholds from `EVALS_GATE_*` environment variables or keyword arguments):
1. Voice: the candidate's held-out perplexity (the author's answers under the serving
   prompt, `evals.voice`) must beat the served reference by a relative improvement of at
   least `EVALS_GATE_MIN_IMPROVEMENT` (default 0: any strict improvement), and beat its own
   base model. Compared per WORD of the answers, so models with different tokenizers
   compare fairly.
2. Answers, on the voice yardstick (`evals.gate_answers`): `EVALS_GATE_ANSWER_LIMIT`
   held-out requests (default 8, spread over the held-out documents; 0 skips it) are
   answered greedily by the candidate and the reference through the backend that would
   serve them (llama.cpp on the version's quantized GGUF). Refused: more degenerate answers
   than the reference's beyond `EVALS_GATE_DEGENERATE_TOLERANCE` (default 0.13: one in
   eight), recitation of the training documents beyond the author's own held-out rate,
   page chrome, more invented specifics, or a style further from the author's held-out
   profile. Perplexity is computed on the merged weights; this checks what users get.
3. RAG: on a small RAG sample (`EVALS_GATE_RAG_LIMIT` questions, default 3; 0 skips it),
   no metric may fall more than `EVALS_GATE_RAG_TOLERANCE` (absolute, default 0.05) below
   the reference's: retrieval recall@k and MRR with each model rewriting the queries (the
   graph stops after rerank; the answers are judged by the voice check above). Judged
   faithfulness and relevance are not computed here: the offline 135M judge's verdicts are
   too noisy to block a model on.
Held-out passages: the test split of the dataset version the candidate was trained on
(its manifest's `dataset_version`), else the author's latest instruct dataset, else the
`passages_file` given. Every decision carries its reasons and is recorded
(`evals.report.record`: JSON under DATA_DIR/evals/, the experiment tracker, Opik).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass


log = logging.getLogger(__name__)


def served_reference(name: str) -> tuple[str, str]:
    """(ref, role) of what the twin serves now where `name`'s accepted version would go:
    `production` (an accepted version, pinned), `served default` (`LLM_MODEL` names a
    registry model with nothing accepted yet: the offline fallback answers) or `served`
    (`LLM_MODEL` names a model outside the registry)."""
    from core.registry import RegistryError, get_registry, parse_ref
    from core.settings import OFFLINE_LLM_FALLBACK, get_settings

    registry = get_registry()
    served = get_settings().LLM_MODEL
    if not served.startswith("registry:"):
        return served, "served"
    served_name, _ = parse_ref(served)
    accepted = registry.tags(name).get("accepted") if served_name == name else None
    try:
        version = registry.get(name, accepted) if accepted else registry.resolve(served)
    except RegistryError:
        return OFFLINE_LLM_FALLBACK, "served default"
    return f"registry:{version.name}@{version.version}", "production"


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
    answer_limit: int | None = None,
) -> dict[str, Any]:
    """Decide whether `name@version` may be promoted: `{"promote", "reasons", "metrics"}`."""
    from core.models import ModelNotAvailable
    from core.registry import RegistryError, get_registry
    from core.settings import OFFLINE_TRAIN_BASE, get_settings
    from evals import voice

    cfg = get_settings()
    min_improvement = cfg.EVALS_GATE_MIN_IMPROVEMENT if min_improvement is None else min_improvement
    rag_tolerance = cfg.EVALS_GATE_RAG_TOLERANCE if rag_tolerance is None else rag_tolerance
    rag_limit = cfg.EVALS_GATE_RAG_LIMIT if rag_limit is None else rag_limit
    answer_limit = cfg.EVALS_GATE_ANSWER_LIMIT if answer_limit is None else answer_limit
    thresholds = {
        "min_improvement": min_improvement,
        "rag_tolerance": rag_tolerance,
        "rag_limit": rag_limit,
        "answer_limit": answer_limit,
        "degenerate_tolerance": cfg.EVALS_GATE_DEGENERATE_TOLERANCE,
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
    reference_ref, reference_role = served_reference(name)
    base_ref = manifest.get("base_model") or OFFLINE_TRAIN_BASE
    result.update(
        candidate=candidate_ref,
        reference=reference_ref,
        reference_role=reference_role,
        base=base_ref,
    )

    # 1. Voice.
    try:
        held_out = _held_out(manifest, passages_file, cfg.EVALS_GATE_PASSAGE_LIMIT)
    except voice.VoiceEvalError as exc:
        reasons.append(f"voice evaluation impossible: {exc}")
        return _finish(result, record)
    author = manifest.get("author") or held_out.author or ""
    refs = {"candidate": candidate_ref, reference_role: reference_ref, "base": base_ref}
    try:
        ppl = {
            role: voice.model_perplexities(ref, held_out.passages, author, raw=False)
            for role, ref in refs.items()
        }
    except (ModelNotAvailable, RegistryError, OSError, ValueError) as exc:
        reasons.append(f"voice evaluation failed: {exc}")
        return _finish(result, record)
    word = {role: float(p["template_word"]) for role, p in ppl.items()}
    improvement = _improvement(word[reference_role], word["candidate"])
    result["metrics"]["voice"] = {
        "measure": "word perplexity of held-out answers under the serving prompt",
        "candidate_perplexity": round(word["candidate"], 4),
        f"{reference_role}_perplexity": round(word[reference_role], 4),
        "reference_perplexity": round(word[reference_role], 4),
        "base_perplexity": round(word["base"], 4),
        "relative_improvement": round(improvement, 4),
        "relative_improvement_vs_base": round(_improvement(word["base"], word["candidate"]), 4),
        "token_perplexity": {k: round(float(v["template"]), 4) for k, v in ppl.items()},
        "n_passages": len(held_out.passages),
        "passages_source": held_out.source,
    }
    voice_ok = True
    for role, required in ((reference_role, min_improvement), ("base", 0.0)):
        if role == "base" and base_ref == reference_ref:
            continue  # the served model is the candidate's own base: already compared
        gain = _improvement(word[role], word["candidate"])
        ok = word["candidate"] < word[role] and gain >= required
        voice_ok = voice_ok and ok
        reasons.append(
            f"voice: candidate word perplexity {word['candidate']:.3f} "
            f"{'beats' if ok else 'does not beat'} {role} {refs[role]} {word[role]:.3f} "
            f"(relative improvement {gain:+.2%}, required "
            f"{'>' if required == 0 else '≥'} {required:.2%})"
        )

    # 2. Answers through the serving backend (skipped once the voice check failed).
    answers_ok = True
    if answer_limit <= 0:
        reasons.append("answer check skipped (answer_limit=0)")
    elif not voice_ok:
        reasons.append("answer check skipped: the voice check already failed")
    else:
        from evals.gate_answers import check_answers

        answers_ok = check_answers(
            result, {"candidate": candidate_ref, reference_role: reference_ref},
            held_out, author, cfg, answer_limit,
        )  # fmt: skip

    # 3. RAG (skipped when the voice check already failed: the answer would not change).
    rag_ok = True
    if rag_limit <= 0:
        reasons.append("RAG check skipped (rag_limit=0)")
    elif not voice_ok:
        reasons.append("RAG check skipped: the voice check already failed")
    else:
        import tempfile

        from evals.rag import RagEvalError, run_rag_eval

        try:
            # One stored eval corpus for both models (the graph only reads it). Unjudged, the
            # answers would count for nothing: the graph stops after rerank (the model still
            # rewrites the query in self-query and expansion, which retrieval depends on).
            with tempfile.TemporaryDirectory(prefix="twin-gate-rag-") as store:
                rag = {
                    role: run_rag_eval(
                        limit=rag_limit,
                        model=ref,
                        judge=False,
                        work_dir=Path(store),
                        generate=False,
                    )
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
    result["promote"] = voice_ok and answers_ok and rag_ok
    reasons.insert(
        0,
        f"{'PROMOTE' if result['promote'] else 'REFUSE'} {name}@{version} "
        f"(compared with {reference_role} {reference_ref})",
    )
    return _finish(result, record)


def _improvement(reference: float, candidate: float) -> float:
    return (reference - candidate) / reference if reference else 0.0


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
