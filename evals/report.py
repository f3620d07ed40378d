"""Where evaluation results go: a JSON report under `DATA_DIR/evals/`, the experiment
tracker (`finetune.tracking`, when it offers a logging function), and an Opik experiment
when Opik is configured (`core.tracing.opik_configured()`; off otherwise, at no cost)."""

from __future__ import annotations

import logging
import math
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.registry import write_json_atomic
from core.settings import get_settings

log = logging.getLogger(__name__)


def _flat_metrics(data: Any, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a nested report as `a.b.c` keys (what trackers take)."""
    out: dict[str, float] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            if key in ("items", "samples", "reasons"):
                continue
            out.update(_flat_metrics(value, f"{prefix}{key}."))
    elif isinstance(data, bool):
        out[prefix.rstrip(".")] = float(data)
    elif isinstance(data, int | float) and not math.isnan(float(data)):
        out[prefix.rstrip(".")] = float(data)
    return out


def save_report(kind: str, report: dict[str, Any], tag: str = "") -> Path:
    """Write `DATA_DIR/evals/<kind>-<UTC time>[-tag].json` and return its path."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    safe_tag = re.sub(r"[^A-Za-z0-9_.-]+", "_", tag).strip("_")
    path = (
        get_settings().DATA_DIR
        / "evals"
        / f"{kind}-{stamp}{'-' + safe_tag if safe_tag else ''}.json"
    )
    write_json_atomic(path, {"kind": kind, "created_at": stamp, **report})
    return path


def log_to_tracker(kind: str, report: dict[str, Any], params: dict[str, Any]) -> str | None:
    """One run in the experiment tracker (`finetune.tracking`, MLflow) when it is installed:
    the parameters, every numeric result as a metric, the full report as an artifact."""
    try:
        from finetune import tracking
    except ImportError:
        return None
    try:
        metrics = {re.sub(r"[^\w./ -]", "_at_", k): v for k, v in _flat_metrics(report).items()}
        with tracking.start_run(
            f"{kind}-eval", experiment="twin-evals", tags={"kind": kind, **params}
        ) as run:
            run.log_params(params)
            run.log_metrics(metrics)
            run.log_dict(report, f"{kind}.json")
            return run.run_id
    except Exception as exc:  # noqa: BLE001 - the tracker is a side channel
        log.warning("could not log the %s evaluation to the experiment tracker: %s", kind, exc)
        return None


def log_to_opik(kind: str, report: dict[str, Any], items: list[dict[str, Any]]) -> str | None:
    """An Opik experiment: the evaluated items as a dataset, one trace per item (input,
    output, scores as feedback scores) linked as experiment items, the aggregate metrics as
    the experiment config. Only when Opik is configured; returns the experiment name."""
    from core.tracing import opik_configured

    if not opik_configured() or not items:
        return None
    try:
        import opik
        from opik.api_objects.experiment.experiment_item import ExperimentItemReferences

        client = opik.Opik()
        dataset = client.get_or_create_dataset(name=f"twin-{kind}-eval")
        dataset.insert([{"input": i["input"]} for i in items])
        item_ids = {d.get("input"): d.get("id") for d in dataset.get_items()}
        name = f"{kind}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}"
        experiment = client.create_experiment(
            dataset_name=dataset.name, name=name, experiment_config=_flat_metrics(report)
        )
        references, scores = [], []
        for item in items:
            trace = client.trace(
                name=f"{kind}-eval",
                input={"input": item["input"]},
                output={"output": item.get("output")},
                metadata={"experiment": name},
            )
            scores += [
                {"id": trace.id, "name": metric, "value": value}
                for metric, value in (item.get("scores") or {}).items()
                if value is not None
            ]
            if item_ids.get(item["input"]):
                references.append(ExperimentItemReferences(item_ids[item["input"]], trace.id))
        if scores:
            client.log_traces_feedback_scores(scores)
        if references:
            experiment.insert(references)
        client.flush()
        return name
    except Exception as exc:  # noqa: BLE001 - Opik is a side channel
        log.warning("could not log the %s evaluation to Opik: %s", kind, exc)
        return None


def record(
    kind: str,
    report: dict[str, Any],
    params: dict[str, Any] | None = None,
    items: list[dict[str, Any]] | None = None,
    tag: str = "",
) -> dict[str, Any]:
    """Persist a report everywhere it goes; returns where (added to the report by callers)."""
    where: dict[str, Any] = {"report_path": str(save_report(kind, report, tag))}
    run_id = log_to_tracker(kind, report, params or {})
    if run_id:
        where["tracker_run_id"] = run_id
    experiment = log_to_opik(kind, report, items or [])
    if experiment:
        where["opik_experiment"] = experiment
    return where
