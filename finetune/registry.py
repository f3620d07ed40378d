"""Registry operations for the CLI: list/show, promote THROUGH the evals gate, rollback.

Storage and refs live in `core/registry.py`; this module adds policy: a version becomes
`accepted` only when `evals.gate.evaluate_candidate(name, version)` says so, or with
`force=True` and a reason, both recorded in the tags.json history (the gate itself records
its report in DATA_DIR/evals/ and the experiment tracker).
"""

from __future__ import annotations

import logging
from typing import Any

from core.registry import RegistryError, accepted_stack, get_registry

log = logging.getLogger(__name__)


class PromotionRefused(RuntimeError):
    """The gate said no (and the promotion was not forced)."""

    def __init__(self, name: str, version: str, gate: dict[str, Any]) -> None:
        reasons = "; ".join(gate.get("reasons", [])) or "no reason given"
        super().__init__(f"gate refused to promote {name}@{version}: {reasons}")
        self.gate = gate


def version_tags(name: str) -> dict[str, list[str]]:
    """version → tags currently pointing at it (plus `previously-accepted`)."""
    tags = get_registry().tags(name)
    out: dict[str, list[str]] = {}
    for tag, value in tags.items():
        if isinstance(value, str):
            out.setdefault(value, []).append(tag)
    for version in accepted_stack(tags)[:-1]:
        if "accepted" not in out.get(version, []):
            out.setdefault(version, []).append("previously-accepted")
    return out


def list_versions(name: str) -> list[dict[str, Any]]:
    tagged = version_tags(name)
    rows = []
    for version in get_registry().versions(name):
        metrics = version.manifest.get("metrics", {})
        rows.append(
            {
                "version": version.version,
                "created_at": version.manifest.get("created_at"),
                "tags": sorted(tagged.get(version.version, [])),
                "method": version.manifest.get("method"),
                "base_model": version.manifest.get("base_model"),
                "dataset_version": version.manifest.get("dataset_version"),
                "perplexity": metrics.get("eval/perplexity"),
                "base_perplexity": metrics.get("eval/base_perplexity"),
            }
        )
    return rows


def show(name: str, version: str) -> dict[str, Any]:
    registry = get_registry()
    selector = registry.tags(name).get(version)
    resolved = registry.get(name, selector if isinstance(selector, str) else version)
    return {
        **resolved.manifest,
        "path": str(resolved.path),
        "tags": sorted(version_tags(name).get(resolved.version, [])),
    }


def run_gate(name: str, version: str) -> dict[str, Any]:
    try:
        from evals.gate import evaluate_candidate
    except ImportError as exc:
        return {
            "promote": False,
            "reasons": [f"the evals gate is not available: {exc}"],
            "metrics": {},
        }
    result = evaluate_candidate(name, version)
    return {
        "promote": bool(result.get("promote")),
        "reasons": list(result.get("reasons", [])),
        "metrics": dict(result.get("metrics", {})),
    }


def promote(name: str, version: str, *, force: bool = False, reason: str = "") -> dict[str, Any]:
    """Run the gate; tag `accepted` when it agrees (or when forced, recording why)."""
    registry = get_registry()
    selector = registry.tags(name).get(version)
    version = selector if isinstance(selector, str) else version
    registry.get(name, version)  # RegistryError when missing
    if force and not reason:
        raise ValueError("--force needs --reason: say why the gate may be overridden")
    gate = run_gate(name, version)  # the gate records its own report (evals.report)
    if not gate["promote"] and not force:
        raise PromotionRefused(name, version, gate)
    forced = not gate["promote"]
    registry.promote(
        name,
        version,
        reason=reason or "; ".join(gate["reasons"]) or "gate passed",
        forced=forced,
        gate=gate,
    )
    return {"promoted": True, "forced": forced, "version": version, "gate": gate}


def rollback(name: str, reason: str = "") -> dict[str, Any]:
    tags = get_registry().rollback(name, reason=reason)
    return {"accepted": tags["accepted"], "history": tags["history"][-1]}


__all__ = ["PromotionRefused", "RegistryError", "list_versions", "promote", "rollback", "show"]
