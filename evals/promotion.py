"""Promotion: a registry version becomes `accepted` only when the evals gate says so.

This chains the two layers below it — the registry (core/registry.py, written by finetune's
training runs) and the gate (evals/gate.py) — so it stands above both. `python -m finetune
registry promote` runs `promote_command`; the watch loop (evals/watch.py) calls `promote`.
A refusal can be overridden with `force=True` and a reason; both are recorded in the tags.json
history (the gate itself records its report in DATA_DIR/evals/ and the experiment tracker).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from core.registry import get_registry
from evals.gate import evaluate_candidate


class PromotionRefused(RuntimeError):
    """The gate said no (and the promotion was not forced)."""

    def __init__(self, name: str, version: str, gate: dict[str, Any]) -> None:
        reasons = "; ".join(gate.get("reasons", [])) or "no reason given"
        super().__init__(f"gate refused to promote {name}@{version}: {reasons}")
        self.gate = gate


def promote(name: str, version: str, *, force: bool = False, reason: str = "") -> dict[str, Any]:
    """Run the gate on `version` (vN or a tag); tag it `accepted` when the gate agrees, or when
    forced with a reason (recorded)."""
    registry = get_registry()
    selector = registry.tags(name).get(version)
    version = selector if isinstance(selector, str) else version
    registry.get(name, version)  # RegistryError when missing
    if force and not reason:
        raise ValueError("--force needs --reason: say why the gate may be overridden")
    result = evaluate_candidate(name, version)
    gate = {
        "promote": bool(result.get("promote")),
        "reasons": list(result.get("reasons", [])),
        "metrics": dict(result.get("metrics", {})),
    }
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


def promote_command(args: argparse.Namespace) -> int:
    """`python -m finetune registry promote VERSION [--force --reason …]`: exit 1 on refusal."""
    from finetune.cli import print_result

    try:
        result = promote(args.name, args.version, force=args.force, reason=args.reason)
    except PromotionRefused as exc:
        print(f"refused: {exc}", file=sys.stderr)
        for reason in exc.gate.get("reasons", []):
            print(f"  - {reason}", file=sys.stderr)
        if args.json:
            print(json.dumps({"promoted": False, "gate": exc.gate}, indent=2, default=str))
        return 1
    print_result(result, args.json)
    return 0
