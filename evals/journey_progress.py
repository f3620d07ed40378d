"""Progress of `python -m finetune twin`: one line per stage and per training step, each with
the journey's elapsed time and an estimate of the time left for the WHOLE journey.

    [2/4] training … step 12/60, loss 2.3100, 3.1 min elapsed, ~9.0 min left

On a terminal the step line rewrites itself in place; off one (a log file, a pipe, CI) every
update is its own line, the steps at most every 5% unless 30 s passed since the last. Lines
go to stderr: stdout keeps the report (or the `--json` object).

The estimate adds, for what is still ahead, the seconds each part took last time on this
DATA_DIR (`DATA_DIR/reports/journey-timings.json`, per base model) or, on a first run, the
`PRIORS` below; during training it uses the measured speed of the steps instead.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from core.registry import write_json_atomic
from finetune.sft import minutes

STAGES = ("dataset", "training", "gate", "report")
# Seconds per part on a first run: the journey on Alyssa Coghlan's 23 PEPs (93,787 words,
# 458 passages) with the default base (Qwen2.5-Coder-0.5B: LoRA steps of 2×512 tokens, Q8_0
# export, the gate's 32 scored passages and 8 llama.cpp answers per model, the report reusing
# the gate's answers) on the slowest 2-core CPU measured, an AVX2-only EPYC (fp32 LoRA).
# They size the training's share of a `--budget-minutes` budget on a first run, so a first
# journey ends on time there; a faster CPU (AVX-512, bf16: 8.5–10 s a step, gate 4.7 min)
# trains a few steps less than it could, once: the journey measures and remembers its own.
PRIORS: dict[str, float] = {
    "per_passage": 0.013,  # templates: the passages cut and checked (the default)
    "per_passage_llm": 1.6,  # `--llm-instructions` (AVX-512 CPU): one request per passage
    "load base": 9.0,
    "per_step": 34.7,
    "export": 69.0,
    # The gate: per held-out passage it scores (twin and base) and twice per answer (each
    # model writes one; `gate_units`): 486 s for 32 passages and 8 answers.
    "per_gate_unit": 10.1,
    "report": 1.0,
}
TRAIN_PARTS = ("load base", "fine-tune", "export")
# The share of an author's passages the dataset holds out (its test split is ~20% of the
# documents): the gate's size before the dataset is built.
HELD_OUT_SHARE = 0.2
LINE_EVERY_S = 30.0


def gate_units(held_out_pairs: int, passage_limit: int, answer_limit: int) -> int:
    """The gate's work in passage-scorings: it scores up to `passage_limit` held-out
    passages with each model, and an answer (up to `answer_limit`, drawn from those
    passages) costs about two (measured: 5 s a passage and 10 s an answer per model)."""
    passages = min(passage_limit, held_out_pairs)
    return passages + 2 * min(answer_limit, passages)


def timings_path() -> Path:
    from core.settings import get_settings

    return get_settings().DATA_DIR / "reports" / "journey-timings.json"


def load_timings(base_model: str) -> dict[str, float]:
    """The PRIORS, overridden by what the last journey on `base_model` measured."""
    path = timings_path()
    known = json.loads(path.read_text("utf-8")) if path.exists() else {}
    return {**PRIORS, **known.get(base_model, {})}


def save_timings(base_model: str, measured: dict[str, float]) -> None:
    path = timings_path()
    known = json.loads(path.read_text("utf-8")) if path.exists() else {}
    known[base_model] = {**known.get(base_model, {}), **measured}
    write_json_atomic(path, known)


class JourneyProgress:
    """Stage and step lines with the whole journey's elapsed time and time left."""

    def __init__(
        self,
        estimates: dict[str, float],
        max_steps: int,
        max_minutes: float,
        file: TextIO | None = None,
        tty: bool | None = None,
        llm_instructions: bool = False,
    ) -> None:
        self.est = dict(estimates)
        self.per_passage = "per_passage_llm" if llm_instructions else "per_passage"
        self.steps = max_steps
        if max_minutes:  # the time box shortens the run on a slow CPU
            self.steps = min(self.steps, max(1, int(max_minutes * 60 / self.est["per_step"])))
        self.passages = 0
        self.file = file or sys.stderr
        self.tty = self.file.isatty() if tty is None else tty
        self.started = time.perf_counter()
        self.stage = ""
        self.stage_done = False
        self.stage_started = self.started
        self.part = ""  # the training part running now
        self.part_started = self.started
        self.loop_left: float | None = None  # the step loop's own estimate, once it runs
        self.measured: dict[str, float] = {}
        self.seconds: dict[str, float] = {}
        self.gate_units = gate_units(32, 32, 8)  # the defaults' gate; the journey sets its own
        self._open_line = False
        self._last_line = 0.0

    # --- estimates ---------------------------------------------------------------------

    def _part_estimate(self, part: str) -> float:
        if part == "fine-tune":
            return self.est["per_step"] * self.steps
        return self.est[part]

    def _stage_estimate(self, stage: str) -> float:
        if stage == "dataset":
            return self.est[self.per_passage] * self.passages
        if stage == "training":
            return sum(self._part_estimate(p) for p in TRAIN_PARTS)
        if stage == "gate":
            return self.est["per_gate_unit"] * self.gate_units
        return self.est[stage]

    def left(self) -> float:
        """Seconds left for the whole journey, at the current point."""
        now = time.perf_counter()
        ahead = STAGES[STAGES.index(self.stage) + 1 :] if self.stage else STAGES
        total = sum(self._stage_estimate(s) for s in ahead)
        if self.stage == "training" and not self.stage_done:
            later = TRAIN_PARTS[TRAIN_PARTS.index(self.part) + 1 :] if self.part else TRAIN_PARTS
            total += sum(self._part_estimate(p) for p in later)
            if self.part == "fine-tune" and self.loop_left is not None:
                total += self.loop_left
            elif self.part:
                total += max(0.0, self._part_estimate(self.part) - (now - self.part_started))
        elif self.stage and not self.stage_done:
            total += max(0.0, self._stage_estimate(self.stage) - (now - self.stage_started))
        return total

    def training_budget(self, budget_s: float, min_steps: int) -> tuple[float, bool]:
        """Seconds the LoRA loop may run for the journey to end `budget_s` after it started:
        the budget less the time elapsed and the estimates of every other part still ahead
        (loading the base, the export, the gate, the report). Never below `min_steps` at the
        estimated step speed; then the journey runs over, and the flag says so. Call it
        between the dataset and the training; the step count shown follows it."""
        ahead = STAGES[STAGES.index(self.stage) + 1 :] if self.stage else STAGES
        others = sum(self._stage_estimate(s) for s in ahead) - self._part_estimate("fine-tune")
        loop = budget_s - (time.perf_counter() - self.started) - others
        floor = min_steps * self.est["per_step"]
        self.steps = min(self.steps, max(min_steps, int(loop / self.est["per_step"])))
        return max(loop, floor), loop < floor

    # --- lines -------------------------------------------------------------------------

    def _print(self, text: str, rewrite: bool = False) -> None:
        head = f"[{STAGES.index(self.stage) + 1}/{len(STAGES)}] {self.stage}"
        elapsed = time.perf_counter() - self.started
        line = f"{head} … {text}, {minutes(elapsed)} elapsed, ~{minutes(self.left())} left"
        if self.tty and rewrite:
            print(f"\r\x1b[K{line}", end="", file=self.file, flush=True)
            self._open_line = True
            return
        if self._open_line:
            print(file=self.file)
            self._open_line = False
        print(line, file=self.file, flush=True)

    def begin(self, stage: str, text: str) -> None:
        self.stage, self.stage_started, self.part = stage, time.perf_counter(), ""
        self.stage_done = False
        self._print(text)

    def end(self, text: str) -> float:
        """Close the current stage; returns its seconds (kept for the timings)."""
        seconds = time.perf_counter() - self.stage_started
        self.seconds[self.stage] = seconds
        self.stage_done = True
        if self.stage == "gate":
            self.measured["per_gate_unit"] = seconds / max(1, self.gate_units)
        elif self.stage == "report":
            self.measured[self.stage] = seconds
        self._print(f"{text} ({minutes(seconds)})")
        return seconds

    def dataset_measured(self, seconds: float, passages: int, built: bool) -> None:
        if built and passages:  # a reused version says nothing about the build's speed
            self.measured[self.per_passage] = seconds / passages

    def train_event(self, event: dict[str, Any]) -> None:
        """The `progress` of `finetune.train.train`: its parts and its steps."""
        if event.get("event") == "step":
            self.steps = int(event["total"])
            self.loop_left = float(event["eta"])
            if int(event["step"]) >= 2:
                self.est["per_step"] = float(event["seconds"]) / int(event["step"])
            self._step_line(event)
            return
        if event.get("event") != "stage" or event["stage"] not in TRAIN_PARTS:
            return
        part = event["stage"]
        if event["state"] == "start":
            self.part, self.part_started = part, time.perf_counter()
            self._print(f"{part} …")
            return
        seconds = float(event.get("seconds", 0.0))
        if part == "fine-tune":
            self.loop_left = 0.0
            steps = int(event.get("steps") or self.steps) or 1
            self.measured["per_step"] = seconds / steps
        else:
            self.est[part] = seconds  # done: nothing of it is left
            self.measured[part] = seconds
        detail = f": {event['detail']}" if event.get("detail") else ""
        self._print(f"{part} done in {minutes(seconds)}{detail}")

    def _step_line(self, event: dict[str, Any]) -> None:
        step, total = int(event["step"]), int(event["total"])
        text = f"step {step}/{total}, loss {float(event['loss']):.4f}"
        if self.tty:
            self._print(text, rewrite=True)
            return
        now = time.perf_counter()
        if step % max(1, total // 20) and step != total and now - self._last_line < LINE_EVERY_S:
            return
        self._last_line = now
        self._print(text)
