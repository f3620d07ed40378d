"""Importing the project changes nothing in the process environment and writes no file:
settings, telemetry switches and thread counts are applied by entry points, never on import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "ingest", "retrievers", "graph", "finetune", "evals")

PROBE = """
import importlib, json, os, pkgutil, sys
before = dict(os.environ)
names = ["server"]
for package in sys.argv[1:]:
    module = importlib.import_module(package)
    names += [m.name for m in pkgutil.walk_packages(module.__path__, package + ".")
              if not m.name.endswith("__main__")]
for name in names:
    importlib.import_module(name)
after = dict(os.environ)
changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
print(json.dumps({"modules": len(names), "changed": changed}))
"""


def test_importing_every_module_leaves_the_environment_and_data_dir_alone(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {**os.environ, "DATA_DIR": str(data), "HF_HUB_OFFLINE": "1"}
    for name in ("OPIK_ANALYTICS_ENABLE", "MLFLOW_DISABLE_TELEMETRY", "OMP_WAIT_POLICY"):
        env.pop(name, None)
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *PACKAGES],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["modules"] > 100
    assert report["changed"] == []
    assert not data.exists(), sorted(str(p) for p in data.rglob("*"))
