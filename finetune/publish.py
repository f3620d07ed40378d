"""A trained run into the registry: adapter → merged → int8 + quantized GGUF → manifest.

The version folder is allocated first and the manifest written last (the registry's commit
marker), so readers never see a half-exported version.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def register_run(
    model: Any,
    tokenizer: Any,
    base_path: str,
    config: Any,
    metrics: dict[str, float],
    run: Any,
    four_bit: bool,
    ds_manifest: dict[str, Any],
) -> tuple[str, Path]:
    """Save adapter → merge → int8 (+ GGUF) into a new registry version; tag `candidate`."""
    import torch

    from core.registry import get_registry
    from finetune import export
    from finetune.tracking import tracking_uri

    registry = get_registry()
    version, path = registry.allocate_version(config.registry_name)
    adapter_dir = path / "adapter"
    model.save_pretrained(str(adapter_dir))
    tokenizer.save_pretrained(str(adapter_dir))
    artifacts: dict[str, str] = {"adapter": "adapter"}

    merged = export.merge_adapter(base_path, adapter_dir, path / "merged", tokenizer)
    artifacts["merged"] = "merged"
    if not four_bit and not torch.cuda.is_available():
        # The merged weights must reproduce the adapter model: measure it.
        sample = tokenizer("The quick brown fox", return_tensors="pt")
        model.eval()
        with torch.no_grad():
            diff = (model(**sample).logits - merged(**sample).logits).abs().max().item()
        metrics["export/merge_max_abs_diff"] = diff
    del merged

    if config.export_int8:
        export.export_int8(path / "merged", path / "quantized")
        artifacts["quantized"] = "quantized"
        artifacts["int8"] = f"quantized/{export.INT8_FILE}"
    if config.export_gguf:
        try:
            started = time.perf_counter()
            gguf = export.export_quantized_gguf(
                path / "merged",
                path / "quantized",
                export.source_gguf(config.base_model),
                config.gguf_type,
            )
            artifacts["quantized"] = "quantized"
            artifacts["gguf"] = str(gguf.relative_to(path))
            metrics["export/gguf_seconds"] = time.perf_counter() - started
            metrics["export/gguf_mb"] = gguf.stat().st_size / 1e6
        except (ValueError, KeyError, ImportError, OSError) as exc:
            log.info("no GGUF export for this model: %s", exc)
            metrics["export/gguf_skipped"] = 1.0

    manifest = {
        "base_model": config.base_model,
        "method": config.method,
        "author": config.author,
        "dataset_version": config.dataset_version,
        "dataset_kind": ds_manifest.get("kind"),
        "artifacts": artifacts,
        "training_config": asdict(config),
        "metrics": metrics,
        "quantization": {"training": "qlora-nf4" if four_bit else "none"},
        "tracking": {
            "run_id": run.run_id,
            "experiment": run.experiment,
            "tracking_uri": tracking_uri(),
        },
    }
    (path / "training_config.json").write_text(json.dumps(asdict(config), indent=2, default=str))
    registry.register(config.registry_name, version, manifest)
    run.log_metrics({k: v for k, v in metrics.items() if k.startswith("export/")})
    run.set_tags({"registry_name": config.registry_name, "registry_version": version})
    run.log_artifact(adapter_dir, "adapter")
    run.log_artifact(path / "manifest.json")
    run.log_artifact(path / "training_config.json")
    return version, path
