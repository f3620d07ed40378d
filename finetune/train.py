"""LoRA / QLoRA supervised fine-tuning on an instruct dataset version, into the registry.

`python -m finetune train --author NAME [--max-steps N] [--base-model REF]`

- Base model: any HF causal LM — default the offline Qwen2.5-Coder-0.5B-Instruct that the
  twin serves (`core.settings.OFFLINE_TRAIN_BASE`); a Hub id such as
  `meta-llama/Llama-3.1-8B-Instruct` works where the Hub (or its cache) is reachable; a
  `registry:NAME@TAG` ref continues from a registered model.
- CPU: LoRA (r=16, all linear layers), bf16 autocast where the CPU has it; minutes for tens
  of steps on 2 cores.
- CUDA: QLoRA automatically (`--quantization auto`): bitsandbytes 4-bit nf4, double quant,
  bf16 compute, gradient checkpointing; a 7B/8B example is in `python -m finetune train
  --help`. The adapter is merged into the base in bf16/fp32 (not 4-bit) for `merged/`.
- Prompts: `core.prompts.render_training_example` (the exact serving prompt); the loss covers
  only the completion tokens (the author's text + EOS).
- Tracking: MLflow (finetune.tracking) gets params, dataset version, loss per step, held-out
  perplexity base vs fine-tuned, tokens/s and the adapter + manifest as artifacts.
- Registry: each run registers a version (`candidate`) with adapter/, merged/, quantized/
  (int8 state_dict, and a GGUF for llama-architecture models); see finetune/export.py.
- Progress: `train(config, progress=fn)` reports each stage (load base, score base, fine-tune,
  score tuned, export) and each step to `fn` (`finetune.sft.ProgressFn`, `TrainConsole`).
- Cache: the base model's held-out scores, per eval set, under
  `DATA_DIR/finetune/cache/base-scores/` (see `finetune.held_out_scoring.cached_base_scores`): a rerun on the same
  base and data scores only the tuned model.
"""

from __future__ import annotations

import logging
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.settings import OFFLINE_TRAIN_BASE
from finetune.held_out_scoring import EvalSets, cached_base_scores, held_out_split, score_sets

if TYPE_CHECKING:
    from finetune.sft import ProgressFn

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    author: str
    method: str = "sft"  # sft | dpo
    base_model: str = OFFLINE_TRAIN_BASE
    dataset_version: str | None = None
    # Chosen on held-out PEPs (benchmarks/finetune.py): held-out document perplexity stops
    # improving near 60 steps at this learning rate and rises (overfits) by 150.
    max_steps: int = 60
    # Wall-clock cap on the training loop (0 = none): a loaded CPU ends early, not late.
    max_minutes: float = 20.0
    # Seconds a step is expected to take on this machine (0: unknown): sizes the loop to
    # max_minutes from its first step instead of from the third (`finetune.sft.TimeBox`).
    expected_step_seconds: float = 0.0
    batch_size: int = 2
    grad_accum: int = 1
    seq_len: int = 512
    objective: str = "mix"  # mix | instruct | raw (finetune/train_data.py)
    packing: bool = True
    precision: str = "auto"  # auto (bf16 where the hardware has it) | bf16 | fp32
    learning_rate: float = 5e-4
    warmup_ratio: float = 0.1
    weight_decay: float = 0.0
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: str = "all-linear"  # or a comma list of module names
    quantization: str = "auto"  # auto (4-bit on CUDA) | 4bit | none
    seed: int = 42
    beta: float = 0.1  # DPO temperature
    # Base-vs-tuned perplexity on held-out sets, before and after the loop (a diagnostic in
    # the tracker). `finetune twin` turns it off: its gate measures the held-out perplexity
    # that decides, and on an AVX2-only CPU the two scorings took 10.4 of its 41 minutes.
    score_held_out: bool = True
    eval_max_examples: int = 64
    eval_window: int = 512  # tokens per window of the held-out document perplexity
    # Words of the held-out documents scored, shared among them (0 = the whole documents).
    eval_document_words: int = 0
    registry_name: str = "twin"
    register: bool = True
    export_int8: bool = True
    export_gguf: bool = True
    gguf_type: str = "Q8_0"  # Q8_0 | Q4_K_M | Q5_K_M (finetune/export.py)
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

    from finetune.sft import without_checkpointing_notice

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
    with without_checkpointing_notice():
        return get_peft_model(model, lora)


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


def _eval_sets(
    tokenizer: Any,
    dd: Any,
    config: TrainConfig,
    extra_eval: dict[str, list[dict]] | None,
    extra_documents: dict[str, list[str]] | None,
) -> EvalSets | None:
    """The held-out sets scored before and after training; None when `score_held_out` is
    off."""
    from finetune.train_data import document_texts, encode_split, leading_words

    if not config.score_held_out:
        return None
    test_rows = list(held_out_split(dd, config.eval_max_examples))
    return EvalSets(
        pairs={
            "eval": encode_split(tokenizer, test_rows, config.seq_len),
            # The same training examples before/after: a noise-free view of whether it fit.
            "train": encode_split(
                tokenizer, list(dd["train"])[: config.eval_max_examples], config.seq_len
            ),
            **{
                f"eval_{name}": encode_split(tokenizer, rows, config.seq_len)
                for name, rows in (extra_eval or {}).items()
            },
        },
        documents={
            name: texts
            for name, texts in {
                "eval_documents": leading_words(
                    document_texts(dd["test"]), config.eval_document_words
                ),
                **{f"eval_{n}": t for n, t in (extra_documents or {}).items()},
            }.items()
            if texts
        },
    )


def _sft(
    model: Any,
    tokenizer: Any,
    dd: Any,
    config: TrainConfig,
    run: Any,
    extra_eval: dict[str, list[dict]] | None,
    extra_documents: dict[str, list[str]] | None,
    fit: Any = None,
    base_path: str = "",
    progress: ProgressFn | None = None,
) -> tuple[list[float], dict[str, float]]:
    """Score base → train (`fit`, default `sft_train`) → score tuned, on the same held-out
    sets (only the training when `config.score_held_out` is off)."""
    from finetune.perplexity import relative_drop
    from finetune.sft import progress_stage, sft_train, use_bf16
    from finetune.train_data import to_dataset, training_items, windows

    bf16 = use_bf16(config.precision)
    items = training_items(
        tokenizer, list(dd["train"]), config.objective, config.seq_len, config.seed
    )
    if not config.packing:
        items = windows(items, config.seq_len)
    if not items:
        raise ValueError(f"nothing to train on in dataset {config.dataset_version}")
    sets = _eval_sets(tokenizer, dd, config, extra_eval, extra_documents)
    base: dict[str, float] = {}
    hits = 0
    if sets:
        with progress_stage(progress, "score base") as stage:
            base, hits = cached_base_scores(
                model, tokenizer, sets, config, bf16, base_path, four_bit=wants_4bit(config)
            )
            stage["detail"] = f"{hits} of {len(sets.pairs) + len(sets.documents)} sets cached"
            stage["cached_sets"] = hits
    with progress_stage(progress, "fine-tune") as stage:
        if fit is not None:  # the benchmark's own loop: no step events
            losses, metrics = fit(model, tokenizer, to_dataset(items), config, run, bf16)
        else:
            losses, metrics = sft_train(
                model, tokenizer, to_dataset(items), config, run, bf16, progress=progress
            )
        stage["steps"] = int(metrics.get("train/steps", len(losses)))
        stage["detail"] = f"{stage['steps']} steps"
    metrics["train/examples"] = float(len(items))
    metrics["train/bf16"] = float(bf16)
    if not sets:
        return losses, metrics
    with progress_stage(progress, "score tuned"):
        tuned = score_sets(model, tokenizer, sets, config, bf16)
    metrics["train/base_scores_cached"] = float(hits)
    for key, value in tuned.items():
        name, _, measure = key.partition("/")
        metrics[f"{name}/base_{measure}"] = base[key]
        metrics[key] = value
        if measure == "perplexity":
            metrics[f"{name}/relative_drop"] = relative_drop(base[key], value)
    for name, group in sets.pairs.items():
        if name != "train":
            metrics[f"{name}/examples"] = float(len(group))
    for name, texts in sets.documents.items():
        metrics[f"{name}/documents"] = float(len(texts))
    return losses, metrics


def train(
    config: TrainConfig,
    extra_eval: dict[str, list[dict]] | None = None,
    extra_documents: dict[str, list[str]] | None = None,
    fit: Any = None,
    progress: ProgressFn | None = None,
) -> TrainResult:
    """Train, export and register one version; returns the tracker run id and version.

    `extra_eval` (name → rows with instruction/answer/context/author) and `extra_documents`
    (name → whole texts) are more held-out sets, scored base vs tuned like the dataset's
    test split (SFT only; benchmarks/finetune.py uses them for documents never ingested).
    `fit(model, tokenizer, dataset, config, run, bf16)` replaces the `sft_train` run (the
    benchmark's hand-written reference loop). `progress` (`finetune.sft.ProgressFn`) gets a
    start and an end event per stage and, from `sft_train`, one event per step.
    """
    from finetune import tracking
    from finetune.datasets import INSTRUCT, PREFERENCE, load_dataset_version
    from finetune.sft import progress_stage

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
        with progress_stage(progress, "load base") as stage:
            model, tokenizer, base_path, four_bit = load_base(config)
            stage["detail"] = config.base_model
        run.set_tags({"qlora_4bit": four_bit, "base_path": base_path})
        model = add_lora(model, config)
        if config.method == "dpo":
            from finetune.dpo import dpo_train

            with progress_stage(progress, "fine-tune"):
                losses, train_metrics, eval_metrics = dpo_train(model, tokenizer, dd, config, run)
            metrics = {**train_metrics, **eval_metrics}
        else:
            losses, metrics = _sft(
                model, tokenizer, dd, config, run, extra_eval, extra_documents, fit,
                base_path, progress,
            )  # fmt: skip
        run.log_metrics(metrics, step=max(len(losses), 1))

        version = version_path = None
        if config.register:
            from finetune.publish import register_run

            # merge, int8 and GGUF exports, then the manifest (finetune/publish.py)
            with progress_stage(progress, "export") as stage:
                version, version_path = register_run(
                    model, tokenizer, base_path, config, metrics, run, four_bit, ds_manifest
                )
                stage["detail"] = f"{config.registry_name}@{version}"
        return TrainResult(run.run_id, version, version_path, dataset_version, metrics, losses)
