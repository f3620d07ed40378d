"""DPO on the preference dataset with TRL's `DPOTrainer` over the same peft LoRA model.

`python -m finetune train --author NAME --method dpo [--base-model registry:twin@accepted]`

TRL 1.16 resolves against the pinned stack without changing any pinned package (checked
with `pip install --dry-run trl==1.16.0`), so it is used rather than a hand-written loss.
The policy is the LoRA-wrapped model; the reference is the same model with the adapter
disabled (TRL does this for peft models, so no second copy is loaded). Prompts are the
serving prompt (`core.prompts.render_prompt(twin_messages(...))`), so DPO sees exactly what
SFT and serving see; TRL appends EOS to both answers. Per-step loss, reward margins and
accuracies go to the tracker; held-out reward accuracy and the perplexity of the author's
(chosen) text, base vs tuned, are the evaluation metrics.
"""

from __future__ import annotations

import tempfile
from typing import Any


def _rendered(tokenizer: Any, split: Any, author: str) -> Any:
    from core.prompts import render_prompt, twin_messages

    def render(row: dict[str, str]) -> dict[str, str]:
        return {
            "prompt": render_prompt(tokenizer, twin_messages(row["prompt"], "", author)),
            "chosen": row["chosen"].strip(),
            "rejected": row["rejected"].strip(),
        }

    return split.map(
        render,
        remove_columns=[c for c in split.column_names if c not in ("prompt", "chosen", "rejected")],
    )


def dpo_train(
    model: Any, tokenizer: Any, dd: Any, config: Any, run: Any
) -> tuple[list[float], dict[str, float], dict[str, float]]:
    import time

    import torch
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback
    from trl import DPOConfig, DPOTrainer

    from finetune.perplexity import perplexity
    from finetune.train_data import encode_example

    train_ds = _rendered(tokenizer, dd["train"], config.author)
    eval_src = dd["test"] if len(dd["test"]) else dd["train"]
    eval_src = eval_src.select(range(min(config.eval_max_examples, len(eval_src))))
    eval_ds = _rendered(tokenizer, eval_src, config.author)
    losses: list[float] = []

    class _Log(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **_: Any) -> None:
            if not logs or "loss" not in logs:
                return
            losses.append(float(logs["loss"]))
            run.log_metrics(
                {
                    f"train/{k.replace('/', '_')}": float(v)
                    for k, v in logs.items()
                    if isinstance(v, int | float)
                },
                step=state.global_step,
            )

    eval_items = [
        item
        for row in eval_src
        if (
            item := encode_example(
                tokenizer, row["prompt"], row["chosen"], "", config.author, config.seq_len
            )
        )
    ]
    with model.disable_adapter():
        base_ppl = perplexity(model, eval_items, tokenizer.pad_token_id)

    cuda = torch.cuda.is_available()
    with tempfile.TemporaryDirectory(prefix="dpo-") as out_dir:
        args = DPOConfig(
            output_dir=out_dir,
            max_steps=config.max_steps,
            per_device_train_batch_size=config.batch_size,
            per_device_eval_batch_size=config.batch_size,
            gradient_accumulation_steps=config.grad_accum,
            learning_rate=config.learning_rate,
            warmup_steps=int(config.max_steps * config.warmup_ratio),
            beta=config.beta,
            max_length=config.seq_len,
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            use_cpu=not cuda,
            bf16=cuda,
            seed=config.seed,
            disable_tqdm=True,
        )
        trainer = DPOTrainer(
            model=model,
            args=args,
            train_dataset=train_ds,
            eval_dataset=eval_ds,
            processing_class=tokenizer,
            callbacks=[_Log()],
        )
        trainer.remove_callback(PrinterCallback)  # the tracker gets the logs; keep stdout clean
        started = time.perf_counter()
        trainer.train()
        elapsed = time.perf_counter() - started
        evaluated = trainer.evaluate()
    tuned_ppl = perplexity(model, eval_items, tokenizer.pad_token_id)
    train_metrics = {
        "train/seconds": elapsed,
        "train/first_loss": losses[0] if losses else float("nan"),
        "train/final_loss": losses[-1] if losses else float("nan"),
        "train/examples": float(len(train_ds)),
    }
    eval_metrics = {
        f"eval/{k.removeprefix('eval_').replace('/', '_')}": float(v)
        for k, v in evaluated.items()
        if isinstance(v, int | float)
    }
    eval_metrics.update(
        {
            "eval/base_perplexity": base_ppl,
            "eval/perplexity": tuned_ppl,
            "eval/relative_drop": (base_ppl - tuned_ppl) / base_ppl if base_ppl else 0.0,
            "eval/examples": float(len(eval_items)),
        }
    )
    return losses, train_metrics, eval_metrics
