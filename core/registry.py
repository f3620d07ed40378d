"""Model registry storage, shared by `finetune` (writes), `evals` (gate) and `graph` (serves).

Layout under `DATA_DIR/registry/NAME/`:
  versions/<VERSION>/manifest.json   base model, artifacts (adapter/merged/quantized paths,
                                     relative to the version folder), training config,
                                     dataset version id, metrics, created_at
  tags.json                          {"accepted": "v3", "candidate": "v4", "history": [...]}
Refs: `registry:NAME@TAG` or `registry:NAME@VERSION`.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REF_PREFIX = "registry:"


class RegistryError(LookupError):
    """A registry ref that names nothing, or a malformed ref."""


@dataclass
class ModelVersion:
    name: str
    version: str
    path: Path
    manifest: dict[str, Any] = field(default_factory=dict)

    def artifact(self, key: str) -> Path | None:
        """Absolute path of an artifact named in the manifest (`adapter`, `merged`, `quantized`)."""
        rel = self.manifest.get("artifacts", {}).get(key)
        return (self.path / rel) if rel else None


def parse_ref(ref: str) -> tuple[str, str]:
    if not ref.startswith(REF_PREFIX) or "@" not in ref:
        raise RegistryError(f"not a registry ref (want registry:NAME@TAG|VERSION): {ref!r}")
    name, _, selector = ref[len(REF_PREFIX) :].partition("@")
    if not name or not selector:
        raise RegistryError(f"malformed registry ref: {ref!r}")
    return name, selector


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so a crash never leaves a half-written file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class ModelRegistry:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _model_dir(self, name: str) -> Path:
        return self.root / name

    def tags(self, name: str) -> dict[str, Any]:
        path = self._model_dir(name) / "tags.json"
        return json.loads(path.read_text("utf-8")) if path.exists() else {}

    def set_tags(self, name: str, tags: dict[str, Any]) -> None:
        write_json_atomic(self._model_dir(name) / "tags.json", tags)

    def versions(self, name: str) -> list[ModelVersion]:
        base = self._model_dir(name) / "versions"
        if not base.exists():
            return []
        found = [self.get(name, p.name) for p in base.iterdir() if (p / "manifest.json").exists()]
        return sorted(found, key=lambda v: v.manifest.get("created_at", ""))

    def get(self, name: str, version: str) -> ModelVersion:
        path = self._model_dir(name) / "versions" / version
        manifest_path = path / "manifest.json"
        if not manifest_path.exists():
            raise RegistryError(f"model {name!r} has no version {version!r}")
        return ModelVersion(name, version, path, json.loads(manifest_path.read_text("utf-8")))

    def resolve(self, ref: str) -> ModelVersion:
        """`registry:NAME@TAG` or `registry:NAME@VERSION` → the version it names."""
        name, selector = parse_ref(ref)
        tagged = self.tags(name).get(selector)
        if isinstance(tagged, str):
            return self.get(name, tagged)
        return self.get(name, selector)


def get_registry() -> ModelRegistry:
    from core.settings import get_settings

    return ModelRegistry(get_settings().registry_dir)
