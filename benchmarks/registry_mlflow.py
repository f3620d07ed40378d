"""The model registry: today's JSON registry (core/registry.py) against MLflow's model registry.

Issue 11 asks whether moving versions, aliases and tags to MLflow's registry (MLflow is
already the experiment tracker) would remove code without losing the promotion gate's
history, rollback, the quantized exports or `registry:twin@accepted` refs. This runs the
same life cycle on both — register N versions (manifest + artifact folder), promote three,
roll back twice, resolve `@accepted` — and times:
- cold resolve: a fresh Python process that imports the registry and resolves `@accepted`
  (what the server and `graph` pay the first time a request names a registry ref);
- warm median per operation (register, promote, resolve).
`MlflowRegistry` below is the port, written against MlflowClient's public API; its line count
is printed beside core/registry.py's. MLflow keeps no alias history, so the accepted stack
(what rollback needs) and the promotion events stay ours, as a registered-model tag.

    python benchmarks/registry_mlflow.py [--versions 10] [--json]
"""

from __future__ import annotations

import argparse
import inspect
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class MlflowRegistry:
    """What core/registry.ModelRegistry would become on MLflow's registry (same operations)."""

    def __init__(self, tracking_uri: str) -> None:
        from mlflow import MlflowClient

        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    def register(self, name: str, path: Path, manifest: dict[str, Any]) -> str:
        from mlflow.exceptions import MlflowException

        try:
            self.client.create_registered_model(name)
        except MlflowException:
            pass  # already there
        tags = {k: json.dumps(v) for k, v in manifest.items()}
        version = self.client.create_model_version(name, source=str(path), tags=tags)
        self.client.set_registered_model_alias(name, "candidate", version.version)
        return version.version

    def _history(self, name: str) -> list[dict[str, Any]]:
        tags = self.client.get_registered_model(name).tags
        return json.loads(tags.get("history", "[]"))

    def promote(self, name: str, version: str, reason: str, gate: dict[str, Any]) -> None:
        history = self._history(name)
        history.append({"event": "promote", "version": version, "reason": reason, "gate": gate})
        self.client.set_registered_model_tag(name, "history", json.dumps(history))
        self.client.set_registered_model_alias(name, "accepted", version)
        self.client.delete_registered_model_alias(name, "candidate")

    def rollback(self, name: str) -> str:
        from core.registry import accepted_stack

        history = self._history(name)
        stack = accepted_stack({"history": history})
        history.append({"event": "rollback", "version": stack[-1], "to": stack[-2]})
        self.client.set_registered_model_tag(name, "history", json.dumps(history))
        self.client.set_registered_model_alias(name, "accepted", stack[-2])
        return stack[-2]

    def resolve(self, name: str, alias: str) -> tuple[str, dict[str, Any]]:
        version = self.client.get_model_version_by_alias(name, alias)
        return version.source, {k: json.loads(v) for k, v in version.tags.items()}


def _artifact(root: Path, i: int) -> Path:
    path = root / "artifacts" / f"v{i}"
    (path / "quantized").mkdir(parents=True, exist_ok=True)
    (path / "quantized" / "model.Q8_0.gguf").write_bytes(b"GGUF" + bytes(64))
    return path


def _manifest(i: int) -> dict[str, Any]:
    return {
        "base_model": "offline:qwen2.5-coder-0.5b-instruct",
        "dataset_version": f"ds-{i:04d}",
        "artifacts": {"quantized": "quantized/model.Q8_0.gguf"},
        "metrics": {"eval/perplexity": 11.0 + i / 10},
    }


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_json(root: Path, n: int) -> dict[str, Any]:
    from core.registry import ModelRegistry

    reg = ModelRegistry(root / "registry")
    times: dict[str, list[float]] = {"register": [], "promote": [], "resolve": []}
    for i in range(1, n + 1):

        def register(i: int = i) -> None:
            version, path = reg.allocate_version("twin")
            (path / "quantized").mkdir()
            (path / "quantized" / "model.Q8_0.gguf").write_bytes(b"GGUF" + bytes(64))
            reg.register("twin", version, _manifest(i))

        times["register"].append(_timed(register))
    for i in (1, 2, 3):
        times["promote"].append(_timed(lambda i=i: reg.promote("twin", f"v{i}", gate={})))
    reg.rollback("twin")
    reg.rollback("twin")
    for _ in range(20):
        times["resolve"].append(_timed(lambda: reg.resolve("registry:twin@accepted")))
    assert reg.resolve("registry:twin@accepted").version == "v1"
    return times


def run_mlflow(root: Path, n: int) -> dict[str, Any]:
    reg = MlflowRegistry(f"sqlite:///{root / 'mlflow.db'}")
    times: dict[str, list[float]] = {"register": [], "promote": [], "resolve": []}
    for i in range(1, n + 1):
        times["register"].append(
            _timed(lambda i=i: reg.register("twin", _artifact(root, i), _manifest(i)))
        )
    for i in (1, 2, 3):
        times["promote"].append(_timed(lambda i=i: reg.promote("twin", str(i), "gate", {})))
    reg.rollback("twin")
    reg.rollback("twin")
    for _ in range(20):
        times["resolve"].append(_timed(lambda: reg.resolve("twin", "accepted")))
    assert reg.resolve("twin", "accepted")[0].endswith("v1")
    return times


COLD = {
    "json": "from core.registry import ModelRegistry; "
    "ModelRegistry(sys.argv[1] + '/registry').resolve('registry:twin@accepted')",
    "mlflow": "from benchmarks.registry_mlflow import MlflowRegistry; "
    "MlflowRegistry('sqlite:///' + sys.argv[1] + '/mlflow.db').resolve('twin', 'accepted')",
}


def cold_resolve(backend: str, root: Path, runs: int = 3) -> float:
    """Median wall time of a fresh process that imports the registry and resolves @accepted."""
    code = f"import sys; sys.path.insert(0, {str(ROOT)!r}); {COLD[backend]}"
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code, str(root)], check=True, cwd=ROOT)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    import core.registry

    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend, run in (("json", run_json), ("mlflow", run_mlflow)):
            root = Path(tmp) / backend
            root.mkdir()
            times = run(root, args.versions)
            rows[backend] = {
                **{f"{op}_ms": 1000 * statistics.median(t) for op, t in times.items()},
                "cold_resolve_s": cold_resolve(backend, root),
            }
    rows["json"]["lines"] = len(inspect.getsource(core.registry).splitlines())
    rows["mlflow"]["lines"] = len(inspect.getsource(MlflowRegistry).splitlines())
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print("| registry | register ms | promote ms | resolve ms | cold resolve s | lines |")
    print("|---|---|---|---|---|---|")
    for backend, row in rows.items():
        print(
            f"| {backend} | {row['register_ms']:.1f} | {row['promote_ms']:.1f} | "
            f"{row['resolve_ms']:.2f} | {row['cold_resolve_s']:.2f} | {row['lines']} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
