"""LoRA / QLoRA supervised fine-tuning on an instruct dataset version, into the registry.

`python -m finetune train --author NAME [--max-steps N] [--base-model REF]`

- Base model: any HF causal LM — default the offline SmolLM2-135M-Instruct
  (`core.models.resolve_llm_path("offline:SmolLM2-135M-Instruct")`); a Hub id such as
  `meta-llama/Llama-3.1-8B-Instruct` works where the Hub (or its cache) is reachable; a
  `registry:NAME@TAG` ref continues from a registered model.
- CPU: plain fp32 LoRA (r=8 on q/k/v/o by default). It runs end to end on a 2-core CPU with
  the 135M model in minutes for tens of steps.
- CUDA: QLoRA automatically (`--quantization auto`): bitsandbytes 4-bit nf4 with double
  quantization, bf16 compute, `prepare_model_for_kbit_training` (gradient checkpointing).
  For a 7B/8B model on one 24 GB+ GPU, e.g.:
      python -m finetune train --author NAME --base-model meta-llama/Llama-3.1-8B-Instruct \
          --lora-r 16 --lora-alpha 32 --target-modules all-linear --seq-len 2048 \
          --batch-size 4 --grad-accum 4 --lr 1e-4 --max-steps 500
  `--quantization none` trains bf16 LoRA on GPU instead. The adapter is then merged into the
  base loaded in bf16/fp32 (not into the 4-bit weights) for `merged/`.
- Prompts: `core.prompts.render_training_example` (the exact serving prompt); the loss covers
  only the completion tokens (the author's text + EOS).
- Tracking: MLflow (finetune.tracking) gets params, dataset version, loss per step, held-out
  perplexity base vs fine-tuned, tokens/s and the adapter + manifest as artifacts.
- Registry: each run registers a version (`candidate`) with adapter/, merged/, quantized/
  (int8 state_dict, and a GGUF for llama-architecture models); see finetune/export.py.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.settings import OFFLINE_TRAIN_BASE

log = logging.getLogger(__name__)
DEFAULT_TARGETS = "q_proj,k_proj,v_proj,o_proj"


@dataclass
class TrainConfig:
    author: str
    method: str = "sft"  # sft | dpo
    base_model: str = OFFLINE_TRAIN_BASE
    dataset_version: str | None = None
    max_steps: int = 60
    batch_size: int = 2
    grad_accum: int = 1
    seq_len: int = 512
    learning_rate: float = 2e-4
    warmup_ratio: float = 0.1
    weight_decay: float = 0.0
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    target_modules: str = DEFAULT_TARGETS  # comma list or "all-linear"
    quantization: str = "auto"  # auto (4-bit on CUDA) | 4bit | none
    seed: int = 42
    beta: float = 0.1  # DPO temperature
    eval_max_examples: int = 64
    registry_name: str = "twin"
    register: bool = True
    export_int8: bool = True
    export_gguf: bool = True
    threads: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainResult:
    run_id: str
    version: str | None
    version_path: Path | None
    dataset_version: str
    metrics: dict[str, float]
    losses: list[float]


# --- model loading -----------------------------------------------------------------------


def wants_4bit(config: TrainConfig) -> bool:
    import torch

    if config.quantization == "4bit":
        return True
    return config.quantization == "auto" and torch.cuda.is_available()


def resolved_base_ref(ref: str) -> str:
    """Pin a `registry:NAME@TAG` base to the version it names now (reproducible manifests)."""
    if ref.startswith("registry:"):
        from core.registry import get_registry

        version = get_registry().resolve(ref)
        return f"registry:{version.name}@{version.version}"
    return ref


def load_base(config: TrainConfig) -> tuple[Any, Any, str, bool]:
    """(model, tokenizer, local path, is_4bit) ready for peft."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from core.models import resolve_llm_path

    path = resolve_llm_path(config.base_model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    four_bit = wants_4bit(config)
    if four_bit:
        from peft import prepare_model_for_kbit_training
        from transformers import BitsAndBytesConfig

        bnb = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
        model = AutoModelForCausalLM.from_pretrained(
            path, quantization_config=bnb, device_map={"": 0} if torch.cuda.is_available() else None
        )
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    elif torch.cuda.is_available():
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16).to("cuda")
    else:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    return model, tokenizer, path, four_bit


def add_lora(model: Any, config: TrainConfig) -> Any:
    from peft import LoraConfig, get_peft_model

    targets: Any = config.target_modules
    if targets != "all-linear":
        targets = [t.strip() for t in targets.split(",") if t.strip()]
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=targets,
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


# --- data --------------------------------------------------------------------------------


def encode_example(
    tokenizer: Any, instruction: str, answer: str, context: str, author: str, seq_len: int
) -> dict[str, list[int]] | None:
    """input_ids + labels (-100 over the prompt) for one pair, or None if nothing to learn."""
    from core.prompts import render_training_example

    prompt, completion = render_training_example(tokenizer, instruction, answer, context, author)
    p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    c_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    if len(p_ids) + len(c_ids) > seq_len:
        if len(p_ids) > seq_len // 2:
            p_ids = p_ids[-(seq_len // 2) :]
        c_ids = c_ids[: seq_len - len(p_ids)]
    if not c_ids:
        return None
    return {"input_ids": p_ids + c_ids, "labels": [-100] * len(p_ids) + c_ids}


def encode_split(tokenizer: Any, rows: Any, seq_len: int) -> list[dict[str, list[int]]]:
    out = []
    for row in rows:
        item = encode_example(
            tokenizer,
            row["instruction"],
            row["answer"],
            row.get("context", ""),
            row["author"],
            seq_len,
        )
        if item:
            out.append(item)
    return out


def collate(items: list[dict[str, list[int]]], pad_id: int, device: Any = "cpu") -> dict[str, Any]:
    import torch

    width = max(len(i["input_ids"]) for i in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    labels = torch.full((len(items), width), -100, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for row, item in enumerate(items):
        n = len(item["input_ids"])
        ids[row, :n] = torch.tensor(item["input_ids"])
        labels[row, :n] = torch.tensor(item["labels"])
        mask[row, :n] = 1
    return {
        "input_ids": ids.to(device),
        "attention_mask": mask.to(device),
        "labels": labels.to(device),
    }


def completion_nll(
    model: Any, items: list[dict[str, list[int]]], pad_id: int, batch_size: int = 4
) -> tuple[float, int]:
    """(summed NLL, token count) over completion tokens only."""
    import torch

    device = next(model.parameters()).device
    total, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for start in range(0, len(items), batch_size):
            batch = collate(items[start : start + batch_size], pad_id, device)
            logits = model(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
            ).logits
            shift_logits = logits[:, :-1].float()
            shift_labels = batch["labels"][:, 1:]
            loss = torch.nn.functional.cross_entropy(
                shift_logits.reshape(-1, shift_logits.size(-1)),
                shift_labels.reshape(-1),
                ignore_index=-100,
                reduction="sum",
            )
            total += float(loss)
            count += int((shift_labels != -100).sum())
    return total, count


def perplexity(model: Any, items: list[dict[str, list[int]]], pad_id: int) -> float:
    total, count = completion_nll(model, items, pad_id)
    return math.exp(total / count) if count else float("nan")


# --- the run -----------------------------------------------------------------------------


def _set_threads(config: TrainConfig) -> None:
    import torch

    threads = config.threads
    if not threads:
        from core.settings import get_settings

        threads = get_settings().LLM_THREADS
    if threads:
        torch.set_num_threads(threads)


def _seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def sft_loop(
    model: Any,
    tokenizer: Any,
    train_items: list[dict[str, list[int]]],
    config: TrainConfig,
    run: Any,
) -> tuple[list[float], dict[str, float]]:
    """A plain AdamW loop (linear warmup/decay, grad clipping); loss logged per step."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    device = next(model.parameters()).device
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(config.max_steps * config.warmup_ratio), config.max_steps
    )
    rng = random.Random(config.seed)
    order: list[int] = []
    losses: list[float] = []
    tokens = 0
    model.train()
    started = time.perf_counter()
    for step in range(1, config.max_steps + 1):
        step_loss = 0.0
        for _ in range(config.grad_accum):
            batch_idx = []
            for _ in range(config.batch_size):
                if not order:
                    order = list(range(len(train_items)))
                    rng.shuffle(order)
                batch_idx.append(order.pop())
            batch = collate([train_items[i] for i in batch_idx], tokenizer.pad_token_id, device)
            out = model(**batch)
            (out.loss / config.grad_accum).backward()
            step_loss += out.loss.item() / config.grad_accum
            tokens += int(batch["attention_mask"].sum())
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(step_loss)
        run.log_metrics(
            {"train/loss": step_loss, "train/lr": scheduler.get_last_lr()[0]}, step=step
        )
        log.info("step %d/%d loss %.4f", step, config.max_steps, step_loss)
    elapsed = time.perf_counter() - started
    return losses, {
        "train/tokens": float(tokens),
        "train/seconds": elapsed,
        "train/tokens_per_s": tokens / elapsed if elapsed else 0.0,
        "train/first_loss": losses[0] if losses else float("nan"),
        "train/final_loss": losses[-1] if losses else float("nan"),
    }


def _held_out(dd: Any, max_examples: int) -> Any:
    split = dd["test"] if len(dd["test"]) else dd["train"]
    return split.select(range(min(max_examples, len(split))))


def train(config: TrainConfig, extra_eval: dict[str, list[dict]] | None = None) -> TrainResult:
    """Train, export and register one version; returns the tracker run id and version.

    `extra_eval`: more held-out sets (name → rows with instruction/answer/context/author),
    scored base vs tuned like the test split (SFT only; the benchmark uses it).
    """
    from finetune import tracking
    from finetune.datasets import INSTRUCT, PREFERENCE, load_dataset_version

    _set_threads(config)
    _seed_everything(config.seed)
    kind = PREFERENCE if config.method == "dpo" else INSTRUCT
    dd, ds_manifest = load_dataset_version(kind, config.author, config.dataset_version)
    dataset_version = ds_manifest["version"]
    config.dataset_version = dataset_version
    base_ref = resolved_base_ref(config.base_model)
    config.base_model = base_ref

    with tracking.start_run(
        f"{config.method}-{dataset_version[:8]}",
        tags={"author": config.author, "method": config.method, "dataset_version": dataset_version},
    ) as run:
        run.log_params(
            {
                **asdict(config),
                "dataset_kind": kind,
                "dataset_counts": ds_manifest.get("counts", {}),
            }
        )
        model, tokenizer, base_path, four_bit = load_base(config)
        run.set_tags({"qlora_4bit": four_bit, "base_path": base_path})
        model = add_lora(model, config)
        if config.method == "dpo":
            from finetune.dpo import dpo_train

            losses, train_metrics, eval_metrics = dpo_train(model, tokenizer, dd, config, run)
        else:
            train_items = encode_split(tokenizer, dd["train"], config.seq_len)
            eval_items = encode_split(
                tokenizer, _held_out(dd, config.eval_max_examples), config.seq_len
            )
            fit_items = train_items[: config.eval_max_examples]
            extra_items = {
                name: encode_split(tokenizer, rows, config.seq_len)
                for name, rows in (extra_eval or {}).items()
            }
            with model.disable_adapter():
                base_ppl = perplexity(model, eval_items, tokenizer.pad_token_id)
                base_fit = perplexity(model, fit_items, tokenizer.pad_token_id)
                extra_base = {
                    n: perplexity(model, items, tokenizer.pad_token_id)
                    for n, items in extra_items.items()
                }
            losses, train_metrics = sft_loop(model, tokenizer, train_items, config, run)
            tuned_ppl = perplexity(model, eval_items, tokenizer.pad_token_id)
            # Same examples before/after: a noise-free view of whether training fit at all.
            train_metrics["train/base_perplexity"] = base_fit
            train_metrics["train/perplexity"] = perplexity(model, fit_items, tokenizer.pad_token_id)
            eval_metrics = {
                "eval/base_perplexity": base_ppl,
                "eval/perplexity": tuned_ppl,
                "eval/relative_drop": (base_ppl - tuned_ppl) / base_ppl if base_ppl else 0.0,
                "eval/examples": float(len(eval_items)),
                "train/examples": float(len(train_items)),
            }
            for name, items in extra_items.items():
                tuned = perplexity(model, items, tokenizer.pad_token_id)
                eval_metrics[f"eval_{name}/base_perplexity"] = extra_base[name]
                eval_metrics[f"eval_{name}/perplexity"] = tuned
                eval_metrics[f"eval_{name}/relative_drop"] = (
                    extra_base[name] - tuned
                ) / extra_base[name]
                eval_metrics[f"eval_{name}/examples"] = float(len(items))
        metrics = {**train_metrics, **eval_metrics}
        run.log_metrics(metrics, step=config.max_steps)

        version = version_path = None
        if config.register:
            version, version_path = register_run(
                model, tokenizer, base_path, config, metrics, run, four_bit, ds_manifest
            )
        return TrainResult(run.run_id, version, version_path, dataset_version, metrics, losses)


def register_run(
    model: Any,
    tokenizer: Any,
    base_path: str,
    config: TrainConfig,
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
            source_gguf = None
            from core.models import OFFLINE_LLMS, offline_llm_gguf

            if config.base_model in OFFLINE_LLMS:
                source_gguf = offline_llm_gguf(config.base_model)
            export.export_gguf(path / "merged", path / "quantized" / export.GGUF_FILE, source_gguf)
            artifacts["gguf"] = f"quantized/{export.GGUF_FILE}"
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
