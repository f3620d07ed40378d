"""Model registry storage, shared by `finetune` (writes), `evals` (gate) and `graph` (serves).

Layout under `DATA_DIR/registry/NAME/`:
  versions/<VERSION>/manifest.json   base model, artifacts (adapter/merged/quantized paths,
                                     relative to the version folder), training config,
                                     dataset version id, metrics, created_at
  tags.json                          {"accepted": "v3", "candidate": "v4", "history": [...]}
Refs: `registry:NAME@TAG` or `registry:NAME@VERSION`.

Write side (used by `finetune`): `allocate_version` reserves `vN`, artifacts are written into
it, `register` writes the manifest last (the commit marker) and tags it `candidate`;
`promote` (callers run `evals.gate` first) and `rollback` move `accepted` and append an
event to `history`, from which `accepted_stack` replays the chain of accepted versions.
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


def _now_iso() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat()


def accepted_stack(tags: dict[str, Any]) -> list[str]:
    """Versions accepted so far, oldest first, replayed from the tag history.

    `promote` pushes a version, `rollback` pops the current one; the top is `accepted`.
    """
    stack: list[str] = []
    for event in tags.get("history", []):
        kind = event.get("event")
        if kind == "promote":
            stack.append(event["version"])
        elif kind == "rollback" and stack:
            stack.pop()
    return stack


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

    # --- write side: finetune registers, promotes (after the gate) and rolls back ---

    def allocate_version(self, name: str) -> tuple[str, Path]:
        """Reserve the next `vN` folder (atomic mkdir) and return (version, path).

        A version becomes visible to readers only once `register` writes its manifest.
        """
        base = self._model_dir(name) / "versions"
        base.mkdir(parents=True, exist_ok=True)
        numbers = [
            int(p.name[1:]) for p in base.iterdir() if p.name[:1] == "v" and p.name[1:].isdigit()
        ]
        n = max(numbers, default=0) + 1
        while True:
            path = base / f"v{n}"
            try:
                path.mkdir()
                return f"v{n}", path
            except FileExistsError:
                n += 1

    def register(
        self,
        name: str,
        version: str,
        manifest: dict[str, Any],
        tag: str = "candidate",
    ) -> ModelVersion:
        """Write the version's manifest (the commit marker) and tag it `candidate`."""
        path = self._model_dir(name) / "versions" / version
        if not path.is_dir():
            raise RegistryError(f"version folder {path} was not allocated")
        data = {"name": name, "version": version, "created_at": _now_iso(), **manifest}
        write_json_atomic(path / "manifest.json", data)
        tags = self.tags(name)
        tags[tag] = version
        tags.setdefault("history", []).append(
            {"event": "register", "tag": tag, "version": version, "at": _now_iso()}
        )
        self.set_tags(name, tags)
        return self.get(name, version)

    def promote(
        self,
        name: str,
        version: str,
        *,
        reason: str = "",
        forced: bool = False,
        gate: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Tag `version` as `accepted` (the caller runs the gate first) and record why."""
        self.get(name, version)  # raises if missing
        tags = self.tags(name)
        event = {
            "event": "promote",
            "version": version,
            "previous": tags.get("accepted"),
            "at": _now_iso(),
            "forced": forced,
            "reason": reason,
        }
        if gate is not None:
            event["gate"] = gate
        tags.setdefault("history", []).append(event)
        tags["accepted"] = version
        if tags.get("candidate") == version:
            tags.pop("candidate")
        self.set_tags(name, tags)
        return tags

    def rollback(self, name: str, reason: str = "") -> dict[str, Any]:
        """Move `accepted` back to the version accepted before the current one."""
        tags = self.tags(name)
        stack = accepted_stack(tags)
        if len(stack) < 2:
            raise RegistryError(f"model {name!r} has no earlier accepted version to roll back to")
        current, previous = stack[-1], stack[-2]
        tags.setdefault("history", []).append(
            {
                "event": "rollback",
                "version": current,
                "to": previous,
                "at": _now_iso(),
                "reason": reason,
            }
        )
        tags["accepted"] = previous
        self.set_tags(name, tags)
        return tags

    def names(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "versions").is_dir())


def get_registry() -> ModelRegistry:
    from core.settings import get_settings

    return ModelRegistry(get_settings().registry_dir)
