"""Experiment tracking with MLflow: a local SQLite store by default, a server by URL.

- Default: `sqlite:///DATA_DIR/mlflow/mlflow.db` with artifacts under `DATA_DIR/mlflow/artifacts`
  (works offline; browse it with `mlflow ui --backend-store-uri sqlite:///data/mlflow/mlflow.db`
  where the full `mlflow` package is installed).
- `MLFLOW_TRACKING_URI=http://host:5000` (or any MLflow URI) sends runs to that server instead.

Each training run logs its parameters, the dataset version, the loss per step, evaluation
metrics and artifacts (adapter, training config, registry manifest). `get_run(run_id)` reads a
run back through the MLflow API (the tests use it).
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
DEFAULT_EXPERIMENT = "twin-finetune"


def tracking_dir() -> Path:
    from core.settings import get_settings

    return get_settings().DATA_DIR / "mlflow"


def tracking_uri() -> str:
    """`MLFLOW_TRACKING_URI` when set, else the local SQLite store under DATA_DIR."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if uri:
        return uri
    path = tracking_dir().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path / 'mlflow.db'}"


def _is_local(uri: str) -> bool:
    return uri.startswith("sqlite:") or uri.startswith("file:") or "://" not in uri


def get_client() -> Any:
    from core.telemetry import disable_third_party_telemetry

    disable_third_party_telemetry()  # before MLflow reads its settings
    import mlflow
    from mlflow.tracking import MlflowClient

    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    return MlflowClient(tracking_uri=uri)


def ensure_experiment(name: str = DEFAULT_EXPERIMENT) -> str:
    """The experiment id, creating it (with a local artifact folder in local mode)."""
    client = get_client()
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    artifact_location = None
    if _is_local(tracking_uri()):
        artifact_location = (tracking_dir().resolve() / "artifacts" / name).as_uri()
    return client.create_experiment(name, artifact_location=artifact_location)


def _flatten(params: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in params.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{full}."))
        else:
            text = str(value)
            out[full] = text[:6000]  # MLflow's param value limit
    return out


class Run:
    """A thin handle over one MLflow run (explicit client calls: no global fluent state)."""

    def __init__(self, client: Any, run_id: str, experiment: str) -> None:
        self.client = client
        self.run_id = run_id
        self.experiment = experiment

    def log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        flat = _flatten(params)
        items = [Param(k, v) for k, v in sorted(flat.items())]
        for i in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[i : i + 100])

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [
            Metric(k, float(v), now, step or 0)
            for k, v in sorted(metrics.items())
            if v is not None and v == v  # drop None/NaN
        ]
        if items:
            self.client.log_batch(self.run_id, metrics=items)

    def set_tags(self, tags: dict[str, Any]) -> None:
        for key, value in tags.items():
            self.client.set_tag(self.run_id, key, str(value))

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        path = Path(path)
        try:
            if path.is_dir():
                self.client.log_artifacts(self.run_id, str(path), artifact_path)
            elif path.exists():
                self.client.log_artifact(self.run_id, str(path), artifact_path)
        except Exception as exc:  # an artifact store hiccup must not lose the trained model
            log.warning("could not log artifact %s: %s", path, exc)

    def log_dict(self, data: dict[str, Any], name: str) -> None:
        self.client.log_dict(self.run_id, data, name)


@contextmanager
def start_run(
    run_name: str, experiment: str = DEFAULT_EXPERIMENT, tags: dict[str, Any] | None = None
):
    """Open a run; it ends FINISHED on success and FAILED when the body raises."""
    client = get_client()
    experiment_id = ensure_experiment(experiment)
    run = client.create_run(
        experiment_id, run_name=run_name, tags={k: str(v) for k, v in (tags or {}).items()}
    )
    handle = Run(client, run.info.run_id, experiment)
    try:
        yield handle
    except BaseException:
        client.set_terminated(handle.run_id, status="FAILED")
        raise
    client.set_terminated(handle.run_id, status="FINISHED")


def get_run(run_id: str) -> dict[str, Any]:
    """A run as plain data: status, params, latest metrics, tags, loss history, artifacts."""
    client = get_client()
    run = client.get_run(run_id)
    history = {
        key: [(m.step, m.value) for m in client.get_metric_history(run_id, key)]
        for key in run.data.metrics
    }
    return {
        "run_id": run_id,
        "status": run.info.status,
        "experiment_id": run.info.experiment_id,
        "params": dict(run.data.params),
        "metrics": dict(run.data.metrics),
        "tags": {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")},
        "history": history,
        "artifacts": [a.path for a in client.list_artifacts(run_id)],
    }


def log_evaluation(name: str, version: str, result: dict[str, Any]) -> str:
    """Record a gate/eval result as its own run (the evals helper may call this)."""
    with start_run(
        f"gate-{name}-{version}", tags={"kind": "gate", "model": name, "version": version}
    ) as run:
        metrics = {k: v for k, v in _flatten(result.get("metrics", {})).items() if _is_number(v)}
        run.log_metrics({k: float(v) for k, v in metrics.items()})
        run.set_tags({"promote": result.get("promote")})
        run.log_dict(result, "gate.json")
        return run.run_id


def _is_number(text: str) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return text not in ("True", "False")
