"""Which models the voice evaluation compares: the candidate, its base, and production.

Resolved through the model registry: the candidate defaults to the `candidate` tag (else
`accepted`), its base comes from the version manifest, production is the `accepted` version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.settings import OFFLINE_TRAIN_BASE, get_settings
from evals.voice.held_out import VoiceEvalError

DEFAULT_MODEL_NAME = "twin"


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
