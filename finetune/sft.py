"""Supervised fine-tuning with transformers' `Trainer` over a peft LoRA model.

The examples arrive tokenized (`finetune.train_data`: input_ids + labels); TRL's
`pack_dataset` packs them (`"wrapped"`: concatenated and cut into `seq_len` blocks, no
padding) and the Trainer runs the loop (AdamW, clipping, bf16 autocast, logging).

Why not TRL's `SFTTrainer`: on CPU it always computes its fused LM head's entropy and top-1
accuracy over the whole vocabulary (152k for Qwen) for its metrics. On the same packed
blocks (Qwen-0.5B, LoRA r=16 all-linear, 2×512 tokens, bf16, 2 cores shared with other
work) it took 12.6 s/step against 8.0–8.4 s for `Trainer` and 7.3–7.8 s for the
hand-written loop this replaced; `benchmarks/finetune.py --compare-loop` measures all three.

Precision: `auto` trains under bf16 autocast where the hardware has bf16 units (CUDA, or a
CPU with AVX512-BF16/AMX: 2.0–2.3x the fp32 tokens/s of LoRA on a 2-core Xeon), else fp32.

Progress: `sft_train(progress=fn)` calls `fn` with one `{"event": "step", …}` dict per
optimizer step (step, total, loss, seconds, eta); `TrainConsole` turns those and the stage
events of `finetune.train.train` into a tqdm bar on a terminal and plain lines in a log.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

log = logging.getLogger(__name__)
# A progress event: {"event": "stage", "stage": …, "state": "start"|"end", …} or
# {"event": "step", "step", "total", "loss", "seconds", "eta"} (see `TrainConsole`).
ProgressFn = Callable[[dict[str, Any]], None]
PRECISIONS = ("auto", "bf16", "fp32")
_CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (Linux: /proc/cpuinfo flags)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = next((line for line in text.splitlines() if line.startswith("flags")), "")
    return any(flag in flags.split() for flag in _CPU_BF16_FLAGS)


def use_bf16(precision: str) -> bool:
    import torch

    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {PRECISIONS}")
    if precision != "auto":
        return precision == "bf16"
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return cpu_has_bf16()


class TimeBox:
    """Linear warmup then linear decay to zero over a step total that shrinks, while training
    runs, to what fits the wall-clock budget at the measured speed: on a busy CPU the run
    ends on time AND with its learning rate annealed, instead of being cut mid-schedule."""

    def __init__(
        self, max_steps: int, warmup_ratio: float, budget_s: float, step_s_estimate: float = 0.0
    ) -> None:
        self.max_steps = max(1, max_steps)
        self.total = self.max_steps
        if budget_s and step_s_estimate > 0:
            # Sized from the start, so the first steps' totals and time left already fit the
            # budget; refitted (down or back up to max_steps) at the measured speed.
            self.total = min(self.max_steps, max(1, int(budget_s / step_s_estimate)))
        self.warmup = max(0, round(max_steps * warmup_ratio))
        self.budget_s = budget_s
        self.started = self.first_step_done = 0.0

    @property
    def cut(self) -> bool:
        """Whether the budget planned fewer steps than max_steps."""
        return self.total < self.max_steps

    def lr_factor(self, step: int) -> float:
        """LambdaLR factor for optimizer step `step` (0-based)."""
        if step < self.warmup:
            return (step + 1) / (self.warmup + 1)
        return max(0.0, (self.total - step) / max(1, self.total - self.warmup))

    def start(self) -> None:
        self.started = time.perf_counter()

    def should_stop(self, step: int) -> bool:
        """After optimizer step `step` (1-based): refit the total, say whether to stop."""
        now = time.perf_counter()
        if step == 1:
            self.first_step_done = now  # the first step carries one-off setup costs
        elif self.budget_s and step >= 3:
            per_step = (now - self.first_step_done) / (step - 1)
            fits = step + int((self.budget_s - (now - self.started)) / per_step)
            self.total = min(self.max_steps, max(step, fits))
        return step >= self.total or bool(self.budget_s and now - self.started > self.budget_s)

    def eta(self, step: int) -> float:
        """Seconds left to `self.total` at the speed measured after the first step (which
        carries one-off setup costs and would inflate the estimate)."""
        now = time.perf_counter()
        if step >= 2 and self.first_step_done:
            per_step = (now - self.first_step_done) / (step - 1)
        else:
            per_step = (now - self.started) / max(1, step)
        return max(0, self.total - step) * per_step


def sft_train(
    model: Any,
    tokenizer: Any,
    train_dataset: Any,
    config: Any,
    run: Any,
    bf16: bool,
    callbacks: list[Any] | None = None,
    progress: ProgressFn | None = None,
) -> tuple[list[float], dict[str, float]]:
    """Train `model` (already LoRA-wrapped) for `config.max_steps`, or fewer when
    `config.max_minutes` would not fit them (`TimeBox`); returns per-step losses and
    throughput metrics. `progress` gets one step event per optimizer step."""
    import torch
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainerCallback, TrainingArguments
    from transformers.trainer_callback import PrinterCallback
    from trl import pack_dataset

    losses: list[float] = []
    box = TimeBox(
        config.max_steps,
        config.warmup_ratio,
        float(config.max_minutes) * 60 if config.max_minutes else 0.0,
        config.expected_step_seconds,
    )
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, box.lr_factor)

    class _Track(TrainerCallback):
        """Per-step loss to the tracker; the time box decides when to stop."""

        def on_train_begin(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            box.start()

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **_: Any) -> None:
            if not logs or "loss" not in logs:
                return
            losses.append(float(logs["loss"]))
            metrics = {"train/loss": float(logs["loss"])}
            if "learning_rate" in logs:
                metrics["train/lr"] = float(logs["learning_rate"])
            run.log_metrics(metrics, step=state.global_step)
            log.info("step %d/%d loss %.4f", state.global_step, box.total, logs["loss"])
            if progress is not None:
                step = state.global_step
                progress(
                    {
                        "event": "step",
                        "step": step,
                        # After a stop the box's total may still be the planned one.
                        "total": step if control.should_training_stop else box.total,
                        "loss": float(logs["loss"]),
                        "seconds": time.perf_counter() - box.started,
                        "eta": 0.0 if control.should_training_stop else box.eta(step),
                    }
                )

        def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            if box.should_stop(state.global_step):
                control.should_training_stop = True

    if config.packing:
        train_dataset = pack_dataset(train_dataset, config.seq_len, "wrapped")
    with tempfile.TemporaryDirectory(prefix="sft-") as out_dir:
        args = TrainingArguments(
            output_dir=out_dir,
            max_steps=config.max_steps,
            per_device_train_batch_size=config.batch_size,
            gradient_accumulation_steps=config.grad_accum,
            max_grad_norm=1.0,
            bf16=bf16,
            use_cpu=not torch.cuda.is_available(),
            seed=config.seed,
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
            dataloader_num_workers=0,
            remove_unused_columns=False,
            include_num_input_tokens_seen="non_padding",
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=train_dataset,
            # Pads the last, shorter block (labels with -100) and builds the attention mask.
            data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True),
            optimizers=(optimizer, scheduler),
            callbacks=[_Track(), *(callbacks or [])],
        )
        trainer.remove_callback(PrinterCallback)  # the tracker gets the logs; keep stdout clean
        started = time.perf_counter()
        trainer.train()
        elapsed = time.perf_counter() - started
        # Accelerate wrapped the model's forward in bf16 autocast for training; take the
        # wrapper off so that scoring and the merge check run in the precision they ask for.
        trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)
        tokens = float(trainer.state.num_input_tokens_seen)
        steps = int(trainer.state.global_step)
    model.eval()
    return losses, {
        "train/steps": float(steps),
        "train/planned_steps": float(config.max_steps),
        "train/stopped_at_budget": 1.0 if box.cut or steps < config.max_steps else 0.0,
        "train/tokens": tokens,
        "train/seconds": elapsed,
        "train/tokens_per_s": tokens / elapsed if elapsed else 0.0,
        "train/steps_per_s": steps / elapsed if elapsed else 0.0,
        "train/first_loss": losses[0] if losses else float("nan"),
        "train/final_loss": losses[-1] if losses else float("nan"),
    }


def minutes(seconds: float) -> str:
    """`42 s` under two minutes, else `3.1 min`: what a progress line shows."""
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


class TrainConsole:
    """`finetune train`'s progress on stderr (stdout keeps the result, `--json` included).

    On a terminal: a line per stage and a tqdm bar over the steps. Off one (a log file, a
    pipe, CI), where a bar's carriage returns pile up into one unreadable line: a line per
    stage, then the first step and one every 5% of the steps, or sooner when 30 s passed since
    the last line (a slow CPU still shows signs of life), and always the last step."""

    LINE_EVERY_S = 30.0

    def __init__(self, file: TextIO | None = None, tty: bool | None = None) -> None:
        self.file = file or sys.stderr
        self.tty = self.file.isatty() if tty is None else tty
        self.started = time.perf_counter()
        self._bar: Any = None
        self._last_line = 0.0

    def __call__(self, event: dict[str, Any]) -> None:
        if event.get("event") == "step":
            self._step(event)
        elif event.get("event") == "stage":
            if event["stage"] == "fine-tune" and event["state"] == "end" and self._bar is not None:
                self._bar.close()
                self._bar = None
            self._line(stage_line(event, time.perf_counter() - self.started))

    def _line(self, text: str) -> None:
        if self._bar is not None:
            self._bar.write(text, file=self.file)
        else:
            print(text, file=self.file, flush=True)

    def _step(self, event: dict[str, Any]) -> None:
        step, total = int(event["step"]), int(event["total"])
        if self.tty:
            if self._bar is None:
                from tqdm import tqdm

                self._bar = tqdm(total=total, desc="train", unit="step", file=self.file)
            if self._bar.total != total:
                self._bar.total = total  # the time budget shortened the run
            self._bar.set_postfix(loss=f"{event['loss']:.4f}", refresh=False)
            self._bar.update(step - self._bar.n)
            return
        now = time.perf_counter()
        every = max(1, total // 20)
        if step % every and step != total and now - self._last_line < self.LINE_EVERY_S:
            return
        self._last_line = now
        self._line(
            f"train: step {step}/{total}, loss {event['loss']:.4f}, "
            f"{minutes(event['seconds'])} elapsed, ~{minutes(event['eta'])} left"
        )


def quiet_library_bars(file: TextIO | None = None) -> None:
    """Off a terminal, switch off the libraries' own tqdm bars (weights loading, dataset
    maps and packing): their carriage returns turn a log into one unreadable line, and the
    command prints its own progress lines there."""
    if (file or sys.stderr).isatty():
        return
    import datasets
    import huggingface_hub.utils
    import transformers

    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    huggingface_hub.utils.disable_progress_bars()


@contextmanager
def without_checkpointing_notice() -> Iterator[None]:
    """peft reads `model.is_gradient_checkpointing`, which transformers 5 deprecates: a
    FutureWarning amid every run's progress (adding the adapter, merging it for the export)
    that no user can act on."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=".*is_gradient_checkpointing", category=FutureWarning
        )
        yield


def stage_line(event: dict[str, Any], elapsed: float) -> str:
    """`train: score base … started` / `… done in 12 s` for a stage event."""
    detail = f" ({event['detail']})" if event.get("detail") else ""
    if event["state"] == "start":
        return f"train: {event['stage']} …{detail} [{minutes(elapsed)} elapsed]"
    took = f" in {minutes(event['seconds'])}" if "seconds" in event else ""
    return f"train: {event['stage']} done{took}{detail} [{minutes(elapsed)} elapsed]"


@contextmanager
def progress_stage(progress: ProgressFn | None, name: str) -> Iterator[dict[str, Any]]:
    """Report a stage's start and its end (seconds, and whatever the body put in the yielded
    dict: a `detail` to show, figures for the caller) to `progress`, when there is one."""
    info: dict[str, Any] = {}
    started = time.perf_counter()
    if progress is not None:
        progress({"event": "stage", "stage": name, "state": "start"})
    yield info
    if progress is not None:
        seconds = time.perf_counter() - started
        progress({"event": "stage", "stage": name, "state": "end", "seconds": seconds, **info})
