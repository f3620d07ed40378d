"""The commands of `python -m finetune …` whose work is finetune's own: datasets, training,
registry list/show/rollback. `twin`, `registry promote` and `watch` chain training with the
evals gate, so their work lives above both layers (evals/journey.py, evals/promotion.py,
evals/watch.py) and the entry point (finetune/__main__.py) hands them to `main` as
`commands`.

Kept import-light: heavy libraries load only inside the command that needs them.
GPU / 7B+ models: `train` uses QLoRA (4-bit nf4) automatically when CUDA is present; see
`python -m finetune train --help` and finetune/train.py for a Llama-3.1-8B example.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

TRAIN_EPILOG = """\
CPU (default): LoRA on the offline Qwen2.5-Coder-0.5B-Instruct, the model the twin serves
(bf16 autocast where the CPU has it, else fp32); 60 steps take about 6 minutes on 2 cores.
GPU: QLoRA (bitsandbytes 4-bit nf4, double quant, bf16 compute,
prepare_model_for_kbit_training) is used automatically when CUDA is available. A 7B/8B
example on one 24 GB+ GPU:
  python -m finetune train --author "NAME" --base-model meta-llama/Llama-3.1-8B-Instruct \\
      --lora-r 16 --lora-alpha 32 --target-modules all-linear --seq-len 2048 \\
      --batch-size 4 --grad-accum 4 --lr 1e-4 --max-steps 500
  (--quantization none: bf16 LoRA instead; --quantization 4bit forces QLoRA)
Tracking: MLflow, local SQLite under DATA_DIR/mlflow unless MLFLOW_TRACKING_URI is set.
"""


def minutes_arg(value: str) -> float:
    """A budget in minutes: a number, 0 or more (0 = none)."""
    try:
        if float(value) >= 0:  # nan fails this too
            return float(value)
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"not a number of minutes ≥ 0: {value!r}")


def print_result(data: Any, as_json: bool) -> None:
    """JSON with --json, else one `key: value` line per field (one line per row for lists)."""
    if as_json:
        print(json.dumps(data, indent=2, default=str))
    elif isinstance(data, list):
        for row in data:
            print("  ".join(f"{k}={v}" for k, v in row.items()))
    elif isinstance(data, dict):
        for key, value in data.items():
            print(
                f"{key}: {json.dumps(value, default=str) if isinstance(value, dict | list) else value}"
            )
    else:
        print(data)


def _add_train_args(
    p: argparse.ArgumentParser,
    with_author: bool = True,
    dataset_help: str = "default: the author's latest",
) -> None:
    # One set of defaults: TrainConfig's (chosen by benchmarks/finetune.py).
    from finetune.export import GGUF_TYPES
    from finetune.sft import PRECISIONS
    from finetune.train import TrainConfig
    from finetune.train_data import OBJECTIVES

    d = TrainConfig(author="")
    if with_author:
        p.add_argument("--author", required=True, help="author full name (as ingested)")
    p.add_argument("--method", choices=("sft", "dpo"), default=d.method)
    p.add_argument(
        "--base-model",
        default=d.base_model,
        help="HF id, local folder, .gguf, offline:… or registry:NAME@TAG",
    )
    p.add_argument("--dataset-version", default=None, help=dataset_help)
    p.add_argument("--max-steps", type=int, default=d.max_steps)
    p.add_argument(
        "--max-minutes",
        type=minutes_arg,
        default=d.max_minutes,
        help="wall-clock budget of the training loop: fewer steps (still annealed) when the "
        "CPU is too busy for --max-steps; 0 = no budget",
    )
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--grad-accum", type=int, default=d.grad_accum)
    p.add_argument("--seq-len", type=int, default=d.seq_len)
    p.add_argument(
        "--objective",
        choices=OBJECTIVES,
        default=d.objective,
        help="mix: the author's documents as raw text + the instruct pairs",
    )
    p.add_argument(
        "--no-packing", action="store_true", help="pad examples instead of packing blocks"
    )
    p.add_argument("--precision", choices=PRECISIONS, default=d.precision)
    p.add_argument("--lr", type=float, default=d.learning_rate)
    p.add_argument("--lora-r", type=int, default=d.lora_r)
    p.add_argument("--lora-alpha", type=int, default=d.lora_alpha)
    p.add_argument("--lora-dropout", type=float, default=d.lora_dropout)
    p.add_argument("--target-modules", default=d.target_modules, help='comma list or "all-linear"')
    p.add_argument(
        "--quantization",
        choices=("auto", "4bit", "none"),
        default=d.quantization,
        help="auto: QLoRA 4-bit nf4 when CUDA is present, LoRA on CPU",
    )
    p.add_argument("--beta", type=float, default=d.beta, help="DPO beta")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--name", default=d.registry_name, help="registry model name")
    p.add_argument("--no-gguf", action="store_true", help="skip the GGUF export")
    p.add_argument(
        "--gguf-type",
        choices=sorted(GGUF_TYPES),
        default=d.gguf_type,
        help="llama.cpp quantization of the served GGUF",
    )
    p.add_argument("--threads", type=int, default=d.threads, help="torch threads (0: all)")


def train_config_from_args(args: argparse.Namespace, author: str = "") -> Any:
    """The TrainConfig that `train` / `watch` flags describe."""
    from finetune.train import TrainConfig

    return TrainConfig(
        author=author or getattr(args, "author", "") or "",
        method=args.method,
        base_model=args.base_model,
        dataset_version=getattr(args, "dataset_version", None),
        max_steps=args.max_steps,
        max_minutes=args.max_minutes,
        batch_size=args.batch_size,
        grad_accum=args.grad_accum,
        seq_len=args.seq_len,
        objective=args.objective,
        packing=not args.no_packing,
        precision=args.precision,
        learning_rate=args.lr,
        lora_r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        target_modules=args.target_modules,
        quantization=args.quantization,
        beta=args.beta,
        seed=args.seed,
        registry_name=args.name,
        export_gguf=not args.no_gguf,
        gguf_type=args.gguf_type,
        threads=args.threads,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m finetune",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    ds = sub.add_parser("dataset", help="build/list dataset versions")
    ds_sub = ds.add_subparsers(dest="action", required=True)
    build = ds_sub.add_parser("build", help="build the author's dataset version(s)")
    build.add_argument("--author", required=True)
    build.add_argument("--kind", choices=("instruct", "preference", "all"), default="instruct")
    build.add_argument(
        "--generator",
        default=None,
        help="the LLM that writes the requests (implies --llm-instructions)",
    )
    build.add_argument("--base-model", default=None, help="model for preference 'rejected' answers")
    build.add_argument(
        "--llm-instructions",
        action="store_true",
        help="the generator writes each passage's request (default: templates)",
    )
    build.add_argument(
        "--no-llm", action="store_true", help="preference 'rejected' answers from templates"
    )
    build.add_argument("--max-pairs", type=int, default=0)
    build.add_argument("--test-fraction", type=float, default=0.2)
    build.add_argument("--force", action="store_true", help="rebuild even if the version exists")
    build.add_argument("--json", action="store_true")
    lst = ds_sub.add_parser("list", help="list dataset versions")
    lst.add_argument("--kind", choices=("instruct", "preference"), default="instruct")
    lst.add_argument("--author", default=None)
    lst.add_argument("--json", action="store_true")

    tr = sub.add_parser(
        "train",
        help="LoRA/QLoRA SFT or DPO, then register a candidate",
        epilog=TRAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_train_args(tr)
    tr.add_argument("--no-register", action="store_true")
    tr.add_argument("--json", action="store_true")

    reg = sub.add_parser("registry", help="model registry: list|show|promote|rollback")
    reg_sub = reg.add_subparsers(dest="action", required=True)
    for action in ("list", "show", "promote", "rollback"):
        p = reg_sub.add_parser(action)
        p.add_argument("--name", default="twin")
        p.add_argument("--json", action="store_true")
        if action in ("show", "promote"):
            p.add_argument("version", help="vN or a tag (candidate, accepted)")
        if action == "promote":
            p.add_argument("--force", action="store_true", help="override a gate refusal")
        if action in ("promote", "rollback"):
            p.add_argument("--reason", default="", help="recorded in the tag history")

    tw = sub.add_parser(
        "twin",
        help="one command from an ingested author to a served twin: dataset → train → gate → "
        "promote → before/after report",
        description="Build (or reuse) the author's dataset, train a candidate with the train "
        "defaults, run the promotion gate, promote when it agrees, and compare the served "
        "model's answers before with the twin's after on three held-out requests. Refuses "
        "before training when the author has too little writing. Exit status: 0 promoted, "
        "1 the gate refused (the candidate is kept), 2 not enough writing or an error.",
        epilog=TRAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_train_args(tw, dataset_help="default: build the author's dataset (a no-op when "
                    "their documents did not change)")  # fmt: skip
    tw.add_argument(
        "--llm-instructions",
        action="store_true",
        help="an LLM writes each passage's request (default: templates from each section's "
        "heading and its document's title; 12 more minutes on 458 passages)",
    )
    tw.add_argument("--no-llm", action="store_true", help=argparse.SUPPRESS)  # the default now
    tw.add_argument("--generator", default=None, help="the LLM that writes the requests")
    tw.add_argument("--budget-minutes", type=minutes_arg, default=None,
                    help="the whole run's budget (default 18: ingest of ~50 posts and this fit "
                    "20 minutes); the LoRA loop gets what the rest, timed here last run, leaves "
                    "(in place of --max-minutes); 0 = none")  # fmt: skip
    tw.add_argument("--json", action="store_true", help="print the result object as JSON")

    w = sub.add_parser(
        "watch",
        help="poll for new data: build → train → gate → promote",
        epilog=TRAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    w.add_argument("--author", action="append", default=None, help="repeatable; default: all")
    w.add_argument("--interval", type=float, default=3600.0, help="seconds between polls")
    w.add_argument("--once", action="store_true")
    w.add_argument("--llm-instructions", action="store_true", help="as for `twin`")
    w.add_argument("--no-llm", action="store_true", help=argparse.SUPPRESS)  # the default now
    w.add_argument("--json", action="store_true")
    _add_train_args(w, with_author=False)
    return parser


Command = Callable[[argparse.Namespace], int]
ORCHESTRATED = ("twin", "registry promote", "watch")  # their work lives above finetune (evals/)


def main(argv: list[str] | None = None, commands: Mapping[str, Command] | None = None) -> int:
    """Parse and run one command; `commands` supplies the ORCHESTRATED ones (the entry point
    passes evals' journey, promotion and watch loop)."""
    args = build_parser().parse_args(argv)
    from core.settings import settings_or_exit

    settings_or_exit()  # a bad setting: one line and exit 2, not a traceback
    # OpenMP threads that spin while waiting collapse when other jobs share the cores: LoRA
    # steps ran 2.5x slower than with sleeping waits on a loaded 2-core machine
    # (benchmarks/finetune.py notes). Read once, when torch first loads OpenMP.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from core.telemetry import disable_third_party_telemetry

    disable_third_party_telemetry()
    from core.logs import setup_cli_logging

    setup_cli_logging(args.verbose)
    try:
        return _dispatch(args, commands or {})
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # known failures print one clear line, not a traceback
        from core.registry import RegistryError
        from finetune.datasets import DatasetError

        if isinstance(exc, DatasetError | RegistryError | ValueError):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        from retrievers.store_share import share_lost

        if type(exc).__name__ == "VectorStoreLocked":
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if share_lost(exc):  # the API server lending the store stopped: the next run opens it
            print(f"error: the vector store's server stopped answering ({exc}); rerun the "
                  "command", file=sys.stderr)  # fmt: skip
            return 2
        raise


def _dispatch(args: argparse.Namespace, commands: Mapping[str, Command]) -> int:
    key = f"registry {args.action}" if args.command == "registry" else args.command
    if key in ORCHESTRATED:
        if key not in commands:
            raise ValueError(f"`{key}` runs the evals gate: run it as `python -m finetune {key}`")
        return commands[key](args)
    if args.command == "dataset":
        return _dataset(args)
    if args.command == "train":
        from finetune.sft import TrainConsole, quiet_library_bars
        from finetune.train import train

        quiet_library_bars()
        config = train_config_from_args(args)
        config.register = not args.no_register
        result = train(config, progress=TrainConsole())
        print_result(
            {
                "run_id": result.run_id,
                "version": result.version,
                "path": str(result.version_path) if result.version_path else None,
                "dataset_version": result.dataset_version,
                "metrics": result.metrics,
            },
            args.json,
        )
        return 0
    if args.command == "registry":
        return _registry(args)
    return 2


def _dataset(args: argparse.Namespace) -> int:
    from finetune import datasets as fds

    if args.action == "list":
        rows = [
            {
                "version": m["version"],
                "author": m["author"],
                "created_at": m["created_at"],
                **{s: m.get("counts", {}).get(s) for s in fds.SPLITS},
            }
            for m in fds.list_versions(args.kind, args.author)
        ]
        print_result(rows, args.json)
        return 0
    from retrievers.store import close_qdrant_client

    params = fds.BuildParams(max_pairs=args.max_pairs, test_fraction=args.test_fraction)
    out: dict[str, Any] = {}
    try:
        instruct = fds.build_instruct_dataset(
            args.author,
            params=params,
            generator=args.generator,
            use_llm=args.llm_instructions or bool(args.generator),
            force=args.force,
            progress=not args.json,
        )
    finally:
        close_qdrant_client()
    out["instruct"] = {
        "version": instruct.version,
        "path": str(instruct.path),
        "built": instruct.built,
        "counts": instruct.manifest.get("counts"),
    }
    if args.kind in ("preference", "all"):
        from finetune.preferences import build_preference_dataset

        pref = build_preference_dataset(
            args.author,
            params=params,
            base_model=args.base_model,
            instruct=instruct,
            use_llm=not args.no_llm,
            force=args.force,
            progress=not args.json,
        )
        out["preference"] = {
            "version": pref.version,
            "path": str(pref.path),
            "built": pref.built,
            "counts": pref.manifest.get("counts"),
        }
    print_result(out, args.json)
    return 0


def _registry(args: argparse.Namespace) -> int:
    from finetune import registry_views as freg

    if args.action == "list":
        print_result(freg.list_versions(args.name), args.json)
        return 0
    if args.action == "show":
        print_result(freg.show(args.name, args.version), args.json)
        return 0
    if args.action == "rollback":
        print_result(freg.rollback(args.name, args.reason), args.json)
        return 0
    raise AssertionError(f"unknown registry action {args.action!r}")
