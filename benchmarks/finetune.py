"""Fine-tuning on real writing: does `finetune train` learn an author's voice in minutes?

    .venv/bin/python benchmarks/finetune.py --corpus ../shared/corpora/peps \
        [--authors barry-warsaw,...] [--config default --config raw --config lr=1e-3,lora_r=32]
        [--register] [--compare-loop] [--json out.json]

Data: a folder of per-author subfolders (as benchmarks/twin_quality.py, same seeded split
and work dir, so twin_quality can serve the versions registered here). Whole documents are
held out per author and never ingested; the rest go through `python -m ingest add`, then
`finetune.datasets.build_instruct_dataset` (deterministic instructions unless `--llm`)
and `finetune.train.train` with each config, one author at a time.

Configs: `default` (TrainConfig's defaults, i.e. what `python -m finetune train` runs), a
preset name from PRESETS, or `key=value,...` overrides of the defaults.

Reported per author × config (the table and `--json`):
- held-out DOCUMENTS: token perplexity of each held-out whole document (consecutive
  512-token windows, pooled), base → tuned and the relative drop (goal ≥ 30%); word
  perplexity too, which compares models with different tokenizers;
- held-out PAIRS: the same documents as instruct pairs (answer tokens under the serving
  prompt), base → tuned;
- wall minutes of the training loop and of the whole run (load, scoring, exports),
  training tokens/s and steps/s, and the 1-minute load average before and after (the CPU
  may be shared: say so when quoting).
`--compare-loop` also trains each config with the hand-written AdamW loop the project used
before, and with TRL's SFTTrainer (same examples, packing, optimizer, schedule, precision,
steps), next to transformers' Trainer that `finetune train` uses. `--curve N` scores the
held-out documents every N steps (a learning curve from one run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from _corpus import OFFLINE_ENV, author_name, ingest, load_corpus  # noqa: E402 - benchmarks/ is on sys.path

GOAL_DROP = 0.30
# name → overrides of TrainConfig's defaults (the candidates the defaults were chosen from)
PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "smollm2": {"base_model": "offline:SmolLM2-135M-Instruct"},
    "qwen": {"base_model": "offline:Qwen2.5-Coder-0.5B-Instruct"},
    "raw": {"objective": "raw"},
    # Context-grounded pairs: each request carries two excerpts of the author's other
    # documents, as served (finetune/grounding.py); longer blocks for the longer prompts.
    "context": {"dataset": {"context_passages": 2}, "seq_len": 1024, "batch_size": 1},
    "instruct": {"objective": "instruct"},
    "instruct-nopack": {"objective": "instruct", "packing": False},
    "fp32": {"precision": "fp32"},
    "old-defaults": {
        "base_model": "offline:SmolLM2-135M-Instruct", "objective": "instruct", "packing": False,
        "max_steps": 60, "batch_size": 2, "seq_len": 512, "learning_rate": 2e-4, "lora_r": 8,
        "lora_alpha": 16, "target_modules": "q_proj,k_proj,v_proj,o_proj", "precision": "fp32",
    },
}  # fmt: skip


def parse_config(spec: str) -> dict[str, Any]:
    """A preset name or `key=value,...` (values parsed as JSON where they parse)."""
    if spec in PRESETS:
        return dict(PRESETS[spec])
    from finetune.train import TrainConfig

    names = {f.name for f in fields(TrainConfig)}
    out: dict[str, Any] = {}
    for part in filter(None, spec.split(",")):
        key, sep, value = part.partition("=")
        if not sep or key not in names:
            raise SystemExit(f"bad config {spec!r}: {part!r} is not KEY=VALUE of TrainConfig")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def held_out_rows(doc: dict, author: str) -> list[dict]:
    """The held-out document as instruct pairs, built the way the dataset builder does."""
    from finetune.generator import template_instruction
    from finetune.passages import BuildParams, passages_for

    payload = {"category": "articles", "content": doc["text"], "title": doc["title"]}
    return [
        {"instruction": template_instruction(p, payload), "answer": p["text"], "context": "",
         "author": author}
        for p in passages_for(payload, BuildParams())
    ]  # fmt: skip


def hand_loop(model: Any, tokenizer: Any, dataset: Any, config: Any, run: Any, bf16: bool):
    """The hand-written AdamW loop that finetune/train.py used before TRL's SFTTrainer, on
    the same packed blocks (trl.pack_dataset, as SFTTrainer packs), for comparison."""
    import random
    from contextlib import nullcontext

    import torch
    from trl import pack_dataset

    from finetune.sft import TimeBox
    from finetune.train_data import collate

    if config.packing:
        dataset = pack_dataset(dataset, config.seq_len, "wrapped")
    blocks = [{"input_ids": r["input_ids"], "labels": r["labels"]} for r in dataset]
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    # The same warmup + linear decay as SFTTrainer gets (no time budget: fixed steps).
    box = TimeBox(config.max_steps, config.warmup_ratio, 0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, box.lr_factor)
    rng, order, losses, tokens = random.Random(config.seed), [], [], 0
    model.train()
    started = time.perf_counter()
    for step in range(1, config.max_steps + 1):
        step_loss = 0.0
        for _ in range(config.grad_accum):
            picked = []
            for _ in range(config.batch_size):
                if not order:
                    order = list(range(len(blocks)))
                    rng.shuffle(order)
                picked.append(blocks[order.pop()])
            batch = collate(picked, tokenizer.pad_token_id)
            autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()
            with autocast:
                out = model(**batch)
            (out.loss / config.grad_accum).backward()
            step_loss += out.loss.item() / config.grad_accum
            tokens += int(batch["attention_mask"].sum())
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(step_loss)
        run.log_metrics({"train/loss": step_loss}, step=step)
    elapsed = time.perf_counter() - started
    model.eval()
    return losses, {
        "train/steps": float(config.max_steps), "train/stopped_at_budget": 0.0,
        "train/tokens": float(tokens), "train/seconds": elapsed,
        "train/tokens_per_s": tokens / elapsed, "train/steps_per_s": config.max_steps / elapsed,
        "train/first_loss": losses[0], "train/final_loss": losses[-1],
    }  # fmt: skip


def trl_sft(model: Any, tokenizer: Any, dataset: Any, config: Any, run: Any, bf16: bool):
    """TRL's SFTTrainer on the same pre-tokenized examples (it packs them itself), same
    optimizer and schedule: the library first tried, kept here for the comparison."""
    import tempfile

    import torch
    from trl import SFTConfig, SFTTrainer

    from finetune.sft import TimeBox

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    box = TimeBox(config.max_steps, config.warmup_ratio, 0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, box.lr_factor)
    with tempfile.TemporaryDirectory() as out:
        args = SFTConfig(
            output_dir=out, max_steps=config.max_steps, per_device_train_batch_size=config.batch_size,
            gradient_accumulation_steps=config.grad_accum, max_grad_norm=1.0, bf16=bf16,
            use_cpu=not torch.cuda.is_available(), max_length=config.seq_len,
            packing=config.packing, packing_strategy="wrapped", gradient_checkpointing=False,
            seed=config.seed, logging_steps=1, save_strategy="no", report_to="none",
            disable_tqdm=True, include_num_input_tokens_seen="non_padding",
        )  # fmt: skip
        trainer = SFTTrainer(model=model, args=args, train_dataset=dataset,
                             processing_class=tokenizer, optimizers=(optimizer, scheduler))  # fmt: skip
        started = time.perf_counter()
        out_state = trainer.train()
        elapsed = time.perf_counter() - started
        tokens = float(trainer.state.num_input_tokens_seen)
    model.eval()
    loss = float(out_state.training_loss)
    return [loss], {
        "train/steps": float(config.max_steps), "train/stopped_at_budget": 0.0,
        "train/tokens": tokens, "train/seconds": elapsed, "train/tokens_per_s": tokens / elapsed,
        "train/steps_per_s": config.max_steps / elapsed, "train/first_loss": loss,
        "train/final_loss": loss,
    }  # fmt: skip


FITS = {"trainer": None, "hand loop": hand_loop, "trl SFTTrainer": trl_sft}


def with_curve(every: int, texts: list[str], curve: list) -> Any:
    """The default fit, scoring the held-out documents every `every` steps (a learning
    curve from one run; the scoring time counts in the run's minutes)."""
    from transformers import TrainerCallback

    from finetune.perplexity import document_perplexity
    from finetune.sft import sft_train

    def fit(model: Any, tokenizer: Any, dataset: Any, config: Any, run: Any, bf16: bool):
        class Curve(TrainerCallback):
            def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
                if state.global_step % every == 0:
                    doc = document_perplexity(model, tokenizer, texts, config.eval_window, bf16)
                    curve.append((state.global_step, round(doc["perplexity"], 3)))
                    print(f"  step {state.global_step}: held-out docs ppl {doc['perplexity']:.2f}",
                          flush=True)  # fmt: skip

        return sft_train(model, tokenizer, dataset, config, run, bf16, callbacks=[Curve()])

    return fit


def run_one(author: str, slug: str, name: str, overrides: dict, docs: list[dict], args,
            fit_name: str = "trainer") -> dict:  # fmt: skip
    from finetune.train import TrainConfig, train

    config = replace(TrainConfig(author=author), **overrides)
    config.register = args.register
    config.registry_name = f"{name}-{slug}"[:60] if name in PRESETS else f"custom-{slug}"
    rows = [r for d in docs for r in held_out_rows(d, author)]
    texts = [d["text"] for d in docs]
    curve: list = []
    fit = FITS[fit_name]
    if args.curve:
        fit = with_curve(args.curve, texts, curve)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    result = train(config, extra_eval={"heldout_pairs": rows},
                   extra_documents={"heldout_docs": texts}, fit=fit)  # fmt: skip
    m = result.metrics
    return {
        "author": author, "config": name + ("" if fit_name == "trainer" else f" [{fit_name}]"),
        "overrides": overrides, "base_model": config.base_model, "version": result.version,
        "registry_name": config.registry_name if args.register else None,
        "steps": int(m["train/steps"]), "train_minutes": m["train/seconds"] / 60,
        "run_minutes": (time.perf_counter() - started) / 60,
        "tokens_per_s": m["train/tokens_per_s"], "steps_per_s": m["train/steps_per_s"],
        "loss_first_last": [m["train/first_loss"], m["train/final_loss"]],
        "docs_base": m["eval_heldout_docs/base_perplexity"],
        "docs_tuned": m["eval_heldout_docs/perplexity"],
        "docs_drop": m["eval_heldout_docs/relative_drop"],
        "docs_word_base": m["eval_heldout_docs/base_word_perplexity"],
        "docs_word_tuned": m["eval_heldout_docs/word_perplexity"],
        "pairs_base": m["eval_heldout_pairs/base_perplexity"],
        "pairs_tuned": m["eval_heldout_pairs/perplexity"],
        "pairs_drop": m["eval_heldout_pairs/relative_drop"],
        "split_test_drop": m.get("eval/relative_drop"),
        "split_docs_drop": m.get("eval_documents/relative_drop"),
        "curve": curve,
        "load_before_after": [load_before, os.getloadavg()[0]],
        "held_out": [d["title"] for d in docs],
    }  # fmt: skip


def print_table(rows: list[dict]) -> None:
    head = ("author", "config", "steps", "train min", "run min", "tok/s", "steps/s",
            "held-out docs ppl base → tuned", "drop", "word ppl base → tuned",
            "held-out pairs ppl base → tuned", "drop", "load")  # fmt: skip
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for r in rows:
        ok = "" if r["docs_drop"] >= GOAL_DROP else " ✗"
        print(f"| {r['author']} | {r['config']} | {r['steps']} | {r['train_minutes']:.1f} "
              f"| {r['run_minutes']:.1f} | {r['tokens_per_s']:.0f} | {r['steps_per_s']:.3f} "
              f"| {r['docs_base']:.2f} → {r['docs_tuned']:.2f} | {r['docs_drop']:.1%}{ok} "
              f"| {r['docs_word_base']:.1f} → {r['docs_word_tuned']:.1f} "
              f"| {r['pairs_base']:.2f} → {r['pairs_tuned']:.2f} | {r['pairs_drop']:.1%} "
              f"| {r['load_before_after'][0]:.1f}/{r['load_before_after'][1]:.1f} |")  # fmt: skip
    by_config: dict[str, list[dict]] = {}
    for r in rows:
        by_config.setdefault(r["config"], []).append(r)
    if any(len(v) > 1 for v in by_config.values()):
        print("\nmedians per config over authors")
        for name, group in by_config.items():
            print(f"  {name}: drop {statistics.median(r['docs_drop'] for r in group):.1%}, "
                  f"train {statistics.median(r['train_minutes'] for r in group):.1f} min, "
                  f"{statistics.median(r['tokens_per_s'] for r in group):.0f} tok/s, "
                  f"{sum(r['docs_drop'] >= GOAL_DROP for r in group)}/{len(group)} authors "
                  f"≥ {GOAL_DROP:.0%}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--authors", default="", help="author folders (default: all)")
    parser.add_argument("--holdout", type=int, default=3, help="documents held out per author")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", action="append", default=None,
                        help="preset or key=value,... (repeatable; default: default)")  # fmt: skip
    parser.add_argument("--llm", action="store_true", help="instructions by the generator LLM")
    parser.add_argument("--register", action="store_true",
                        help="export + register each run as registry:CONFIG-AUTHOR")  # fmt: skip
    parser.add_argument("--compare-loop", action="store_true",
                        help="also train each config with the hand-written loop and with "
                             "TRL's SFTTrainer")  # fmt: skip
    parser.add_argument("--curve", type=int, default=0,
                        help="score the held-out documents every N steps")  # fmt: skip
    parser.add_argument("--work-dir", type=Path, default=ROOT / "data" / "bench" / "twin_quality")
    parser.add_argument("--json", type=Path, default=None, help="append rows (JSON lines) here")
    args = parser.parse_args()

    work = args.work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    # As `python -m finetune` does: sleeping OpenMP waits (spinning ones collapse under load).
    os.environ.update({**OFFLINE_ENV, "TOKENIZERS_PARALLELISM": "false"})
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ["DATA_DIR"] = str(work / "data")
    os.environ.setdefault("MODELS_CACHE_DIR", str(ROOT / "data" / "models"))
    from core.logs import setup_cli_logging
    from core.settings import reset_settings

    setup_cli_logging()
    reset_settings()
    from twin_quality import held_out_documents, split

    from finetune.datasets import build_instruct_dataset
    from finetune.passages import BuildParams
    from retrievers.store import close_qdrant_client

    corpus = load_corpus(args.corpus.resolve())
    train_docs, held = split(corpus, args.holdout, args.seed)
    names = {a: author_name(a, files) for a, files in corpus.items()}
    ingest(work, train_docs, names)
    chosen = [a for a in args.authors.split(",") if a] or list(corpus)
    configs = [(spec, parse_config(spec)) for spec in (args.config or ["default"])]
    rows = []
    for folder in chosen:
        author = names[folder]
        docs = held_out_documents({folder: held[folder]}, names)
        for spec, overrides in configs:
            overrides = dict(overrides)
            params = BuildParams(**overrides.pop("dataset", {}))
            ds = build_instruct_dataset(author, params=params, use_llm=args.llm)
            close_qdrant_client()
            overrides["dataset_version"] = ds.version
            print(f"{author}: dataset {ds.version} {ds.manifest['counts']['train']} train / "
                  f"{ds.manifest['counts']['test']} test pairs", flush=True)  # fmt: skip
            for fit_name in list(FITS) if args.compare_loop else ["trainer"]:
                row = run_one(author, folder, spec, overrides, docs, args, fit_name)
                rows.append(row)
                print_table([row])
                if args.json:
                    with open(args.json, "a") as fh:
                        fh.write(json.dumps(row, default=str) + "\n")
    print()
    print_table(rows)


if __name__ == "__main__":
    main()
