"""Registry views for the CLI: list and show versions with their tags, and rollback.

Storage and refs live in `core/registry.py`. Promotion is not here: a version becomes
`accepted` only through the evals gate, so it lives above both layers (evals/promotion.py).
"""

from __future__ import annotations

from typing import Any

from core.registry import RegistryError, accepted_stack, get_registry


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


def rollback(name: str, reason: str = "") -> dict[str, Any]:
    tags = get_registry().rollback(name, reason=reason)
    return {"accepted": tags["accepted"], "history": tags["history"][-1]}


__all__ = ["RegistryError", "list_versions", "rollback", "show", "version_tags"]
