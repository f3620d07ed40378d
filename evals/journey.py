"""`python -m finetune twin --author NAME`: from an ingested author to a served twin.

    [1/4] dataset   build the author's instruct dataset, or reuse the version their
                    unchanged documents already have (versions are content-addressed)
    [2/4] training  LoRA with the `finetune train` defaults (flags pass through), exported to
                    the served GGUF and registered as `candidate`
    [3/4] gate      `evals.gate.evaluate_candidate`; promoted to `accepted` when it agrees
                    (`evals.promotion.promote`), else kept as the candidate
    [4/4] report    three held-out requests: the served model's answer before, the twin's
                    after, with the gate's figures (DATA_DIR/reports/*.json and *.md)

Before anything is built or trained it counts the author's writing and refuses, naming how
much more is needed, below `MIN_WORDS` / `MIN_DOCUMENTS`; after the build, below
`MIN_TRAIN_PAIRS` / `MIN_TEST_PAIRS`. Progress: `evals.journey_progress`. It chains finetune
(datasets, training) with the gate and promotion, so it lives in evals, above both.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from typing import Any

# How much writing a twin needs (checked before any training):
# - words: the default run trains 60 steps × 2 blocks × 512 tokens ≈ 61k tokens. Below ~5,000
#   words (~6.5k tokens) that is ten or more passes over every passage: the adapter learns
#   the passages, not the voice, and held-out perplexity rises (benchmarks/finetune.py saw
#   overfitting at 150 steps on 10–20 PEPs, i.e. 30k+ words).
# - documents: the held-out split is by document (~20%): with fewer than 5 the gate would
#   judge on a single short document, or there would be nothing left to train on.
# - pairs, after the quality filters (60–400-word passages, English, no duplicates): 20
#   train pairs is ten optimizer steps of distinct requests before any repeats; the gate and
#   the report need at least one held-out request.
MIN_WORDS = 5_000
MIN_DOCUMENTS = 5
MIN_TRAIN_PAIRS = 20
MIN_TEST_PAIRS = 1
REPORT_REQUESTS = 3  # held-out requests in the before/after report
# The whole `finetune twin` run, in minutes, unless `--budget-minutes` says otherwise: the
# training loop gets what the other parts (estimated from the last journey on this DATA_DIR,
# else `journey_progress.PRIORS`) leave of it. `ingest add` of ~50 posts takes about 2
# minutes (23 PEPs: 43 s on an AVX-512 CPU, 1.7 min on an AVX2-only one), so ingest → served
# twin fits 20.
BUDGET_MINUTES = 18.0
# The fewest LoRA steps a budget may leave: the schedule warms up for a tenth of its steps
# and anneals over the rest, and at 2×512 tokens a step, 10 steps are ~10k tokens, about a
# tenth of a 50-post corpus. Below that the journey trains 10 anyway and says it runs over.
MIN_TRAINING_STEPS = 10


class NotEnoughWriting(RuntimeError):
    """The author has too little writing for a twin; the message says how much more."""

    def __init__(self, message: str, counts: dict[str, Any]) -> None:
        super().__init__(message)
        self.counts = counts


@dataclass
class Writing:
    author: str
    documents: int
    words: int


def count_writing(author: str, docs: list[dict[str, Any]] | None = None) -> Writing:
    """The author's cleaned documents and their words (what the dataset is built from)."""
    if docs is None:
        from retrievers.author_corpus import load_cleaned_documents

        docs = load_cleaned_documents(author)
    return Writing(author, len(docs), sum(len(str(d.get("content", "")).split()) for d in docs))


def _about(n: float) -> str:
    """A friendly round-up: 3,760 → 3,800; 42 → 50."""
    step = 100 if n >= 1000 else 10
    return f"{math.ceil(n / step) * step:,}"


def writing_shortfall(w: Writing) -> str | None:
    """None when there is enough writing to start, else what is missing."""
    if w.words >= MIN_WORDS and w.documents >= MIN_DOCUMENTS:
        return None
    asks = []
    if w.words < MIN_WORDS:
        asks.append(f"about {_about(MIN_WORDS - w.words)} more words")
    if w.documents < MIN_DOCUMENTS:
        more = MIN_DOCUMENTS - w.documents
        asks.append(f"{more} more document{'s' if more > 1 else ''}")
    return (
        f"{w.author} has {w.words:,} words in {w.documents} document"
        f"{'' if w.documents == 1 else 's'}; a twin needs at least {MIN_WORDS:,} words in "
        f"{MIN_DOCUMENTS} documents: add {' and '.join(asks)} "
        f'(`python -m ingest add SOURCE --author "{w.author}"`)'
    )


def pairs_shortfall(w: Writing, counts: dict[str, Any]) -> str | None:
    """None when the dataset has enough pairs to train on and judge, else what is missing."""
    train, test = int(counts.get("train", 0)), int(counts.get("test", 0))
    if train >= MIN_TRAIN_PAIRS and test >= MIN_TEST_PAIRS:
        return None
    words_per_pair = w.words / max(1, train + test)
    missing = max(MIN_TRAIN_PAIRS - train, 0) / 0.8 + max(MIN_TEST_PAIRS - test, 0) / 0.2
    return (
        f"{w.author}'s {w.words:,} words gave {train} training and {test} held-out pairs after "
        f"the quality filters (passages of 60–400 words, English, no duplicates; filtered: "
        f"{counts.get('filtered', {})}); a twin needs at least {MIN_TRAIN_PAIRS} and "
        f"{MIN_TEST_PAIRS}: add about {_about(missing * words_per_pair)} more words of prose "
        "in a few more documents"
    )


def run_journey(
    config: Any,
    *,
    use_llm: bool = False,
    generator: str | None = None,
    progress_file: Any = None,
    budget_minutes: float = BUDGET_MINUTES,
) -> dict[str, Any]:
    """Dataset → training → gate (→ promotion) → before/after report; the result object.
    Raises `NotEnoughWriting` before any training when the author has too little. With
    `budget_minutes` (0: none, the loop then follows `config.max_minutes`) the training loop
    is time-boxed so that the whole run ends within it (`JourneyProgress.training_budget`)."""
    from core.settings import get_settings
    from evals.gate import served_reference
    from evals.journey_progress import (
        HELD_OUT_SHARE,
        JourneyProgress,
        gate_units,
        load_timings,
        save_timings,
    )
    from evals.promotion import PromotionRefused, promote
    from evals.voice import load_dataset_passages
    from finetune import datasets as fds
    from finetune.passages import BuildParams, passages_for
    from finetune.sft import minutes
    from finetune.train import resolved_base_ref, train
    from retrievers.author_corpus import load_cleaned_documents
    from retrievers.store import close_qdrant_client

    author, name = " ".join(config.author.split()), config.registry_name
    config.author = author
    try:
        docs = load_cleaned_documents(author)
    finally:
        close_qdrant_client()
    writing = count_writing(author, docs)
    problem = writing_shortfall(writing)
    if problem:
        raise NotEnoughWriting(problem, vars(writing))
    caches: dict[str, Any] = {}
    base_key = resolved_base_ref(config.base_model)
    # A budget replaces --max-minutes: only its share may shorten the planned steps.
    loop_cap = 0.0 if budget_minutes else config.max_minutes
    ui = JourneyProgress(load_timings(base_key), config.max_steps, loop_cap,
                         file=progress_file, llm_instructions=use_llm)  # fmt: skip
    # Counted before the build so that the first line already estimates the whole journey.
    ui.passages = sum(len(passages_for(d, BuildParams())) for d in docs)
    cfg = get_settings()
    limits = (cfg.EVALS_GATE_PASSAGE_LIMIT, cfg.EVALS_GATE_ANSWER_LIMIT)
    ui.gate_units = gate_units(round(ui.passages * HELD_OUT_SHARE), *limits)
    if budget_minutes:  # the first estimate already counts the steps the budget leaves
        ui.training_budget(budget_minutes * 60, MIN_TRAINING_STEPS)

    # [1/4] dataset
    ui.begin("dataset", f"{writing.words:,} words in {writing.documents} documents")
    try:
        if config.dataset_version:
            _, manifest = fds.load_dataset_version(fds.INSTRUCT, author, config.dataset_version)
            ds_path = fds.datasets_root() / fds.INSTRUCT / config.dataset_version
            built = False
        else:
            ds = fds.build_instruct_dataset(
                author, generator=generator, use_llm=use_llm, progress=True
            )
            manifest, ds_path, built = ds.manifest, ds.path, ds.built
    finally:
        close_qdrant_client()  # training takes minutes: let `ingest` write meanwhile
    counts = manifest.get("counts", {})
    caches["dataset_reused"] = not built
    seconds = ui.end(
        f"version {manifest['version']} {'built' if built else 'reused (documents unchanged)'}: "
        f"{counts.get('train', 0)} train / {counts.get('test', 0)} held-out pairs"
    )
    # Per passage, under the instruction source used (templates, or the generator's).
    ui.dataset_measured(seconds, ui.passages, built)
    problem = pairs_shortfall(writing, counts)
    if problem:
        raise NotEnoughWriting(problem, {**vars(writing), **counts})
    ui.gate_units = gate_units(int(counts.get("test", 0)), *limits)

    # [2/4] training (+ GGUF export, registered as `candidate`)
    config.dataset_version = manifest["version"]
    # The gate measures the held-out perplexity that decides; scoring it around the training
    # loop too would spend the budget's minutes on a diagnostic.
    config.score_held_out = False
    steps = f"{config.max_steps} steps"
    if budget_minutes:
        loop_s, over = ui.training_budget(budget_minutes * 60, MIN_TRAINING_STEPS)
        config.max_minutes = loop_s / 60  # the budget's share replaces --max-minutes
        config.expected_step_seconds = ui.est["per_step"]
        share = (
            f"the {budget_minutes:g}-minute budget leaves less on this machine: it runs over, "
            "--budget-minutes sets it"
            if over
            else f"{minutes(loop_s)} of the {budget_minutes:g}-minute budget"
        )
        steps = f"up to {ui.steps} steps ({share})"
    ui.begin("training", f"{steps} of LoRA on {config.base_model}")
    trained = train(config, progress=ui.train_event)
    version = trained.version
    ui.end(f"registered {name}@{version}")

    # [3/4] gate → promotion
    before_ref, before_role = served_reference(name)  # what answers now, before any promote
    ui.begin("gate", f"{name}@{version} against {before_role} {before_ref}")
    try:
        gate, promoted = promote(name, version)["gate"], True
    except PromotionRefused as exc:
        gate, promoted = exc.gate, False
    ui.end("promoted to accepted" if promoted else "refused: the candidate is kept")
    if limits[1] and not (gate.get("metrics") or {}).get("answers"):
        # Refused on perplexity, it wrote no answers: its time would understate the next gate.
        ui.measured.pop("per_gate_unit", None)

    # [4/4] before/after report
    from evals import journey_report as jr

    ui.begin("report", f"{REPORT_REQUESTS} held-out requests, before and after")
    held_out = load_dataset_passages(author, path=ds_path)
    requests = jr.pick_requests(held_out.passages, gate, REPORT_REQUESTS)
    budget = cfg.EVALS_GATE_ANSWER_MAX_TOKENS
    judged = jr.gate_answers(gate)
    before, hits = jr.answers(before_ref, requests, author, budget, known=judged.get("reference"))
    # Cached too: once promoted, this twin is the next journey's "before".
    after, reused = jr.answers(f"registry:{name}@{version}", requests, author, budget,
                            known=judged.get("candidate"))  # fmt: skip
    caches["before_answers_reused"], caches["after_answers_reused"] = hits, reused
    ui.end(f"{len(requests)} before/after pairs ({hits + reused} of {2 * len(requests)} "
           "answers reused from the gate or the cache)")  # fmt: skip
    save_timings(base_key, ui.measured)
    report = {
        "author": author,
        "status": "promoted" if promoted else "refused",
        "promoted": promoted,
        "name": name,
        "version": version,
        "candidate": f"registry:{name}@{version}",
        "before": {"ref": before_ref, "role": before_role},
        "dataset_version": manifest["version"],
        "dataset_counts": {k: counts.get(k) for k in ("documents", "train", "test")},
        "instructions": manifest.get("generator"),  # "template" unless --llm-instructions
        "writing": vars(writing),
        "gate": gate,
        "pairs": [
            {"request": p.instruction, "before": b, "after": a, "author_text": p.answer}
            for p, b, a in zip(requests, before, after, strict=True)
        ],
        "training": {k: v for k, v in trained.metrics.items() if k.startswith(("train/", "eval"))},
        "stage_seconds": {k: round(v, 1) for k, v in ui.seconds.items()},
        "budget_minutes": budget_minutes,
        "seconds": round(time.perf_counter() - ui.started, 1),
        "caches": caches,
    }
    json_path, md_path = jr.write_report(report, jr.report_stem(fds.author_slug(author), version))
    report["report"] = {"json": str(json_path), "markdown": str(md_path)}
    return report


def journey_command(args: argparse.Namespace) -> int:
    """`python -m finetune twin --author NAME [train flags] [--llm-instructions] [--json]`:
    exit 0 when promoted, 1 when the gate refused (candidate kept), 2 when there is too
    little writing."""
    from pathlib import Path

    from evals.journey_report import print_report
    from finetune.cli import train_config_from_args
    from finetune.sft import quiet_library_bars

    quiet_library_bars()
    config = train_config_from_args(args)
    try:
        use_llm = args.llm_instructions or bool(args.generator)  # naming one asks for it
        budget = BUDGET_MINUTES if args.budget_minutes is None else args.budget_minutes
        result = run_journey(
            config, use_llm=use_llm, generator=args.generator, budget_minutes=budget
        )
    except NotEnoughWriting as exc:
        if args.json:
            print(json.dumps({"status": "not-enough-writing", "message": str(exc),
                              "counts": exc.counts}, indent=2))  # fmt: skip
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        paths = (Path(result["report"]["json"]), Path(result["report"]["markdown"]))
        print_report(result, paths, sys.stdout)
    return 0 if result["promoted"] else 1
