"""Fine-tuning benchmark: training tokens/s and held-out perplexity, base vs fine-tuned.

    .venv/bin/python benchmarks/finetune.py [--max-steps 40] [--seq-len 256] [--llm] [--json]

A fixed small corpus of one author's writing (`finetune.demo_corpus`: articles, LinkedIn
posts, a repository in one voice) is seeded into a temporary store, the instruct dataset
is built (deterministic templates by default; `--llm` uses the offline generator model),
and LoRA SFT runs on the offline SmolLM2-135M-Instruct on CPU (QLoRA on CUDA). Reported:
- training tokens/s (non-padding tokens through forward+backward per wall second);
- perplexity of the author's text (answer tokens under the training prompt) for the base
  and the fine-tuned model, and the relative drop (goal >= 20%), on
  (a) the dataset's held-out "test" split (documents never trained on; the corpus reuses a
      topic's sentences across its article and posts, so this overlaps in wording), and
  (b) an UNSEEN TOPIC: all documents of a topic left out of the corpus entirely — the
      stricter number.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
for key, value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "DO_NOT_TRACK": "1",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(key, value)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-steps", type=int, default=40)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--llm", action="store_true", help="generate instructions with the LLM")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data dir")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="finetune-bench-"))
    os.environ["DATA_DIR"] = str(tmp / "data")
    os.environ.setdefault("MODELS_CACHE_DIR", str(ROOT / "data" / "models"))
    from core.settings import reset_settings

    reset_settings()
    import torch

    from finetune import datasets as fds
    from finetune import demo_corpus
    from finetune.generator import template_instruction
    from finetune.train import TrainConfig, train
    from retrievers.store import close_qdrant_client, get_qdrant_client

    topics = len(demo_corpus.TOPICS)
    train_docs = demo_corpus.corpus(n_topics=topics - 1)
    all_docs = demo_corpus.corpus()
    seen = {d.document_id for d in train_docs}
    unseen_docs = [
        d for d in all_docs if d.document_id not in seen and d.category != "repositories"
    ]
    demo_corpus.seed_cleaned(get_qdrant_client(), train_docs)
    started = time.perf_counter()
    ds = fds.build_instruct_dataset(demo_corpus.AUTHOR, use_llm=args.llm)
    build_s = time.perf_counter() - started
    close_qdrant_client()

    params = fds.BuildParams()
    unseen_rows = []
    for doc in unseen_docs:
        payload = doc.model_dump(mode="json")
        for passage in fds.passages_for(payload, params):
            unseen_rows.append(
                {"instruction": template_instruction(passage, payload), "answer": passage["text"],
                 "context": "", "author": demo_corpus.AUTHOR}
            )  # fmt: skip

    config = TrainConfig(
        author=demo_corpus.AUTHOR, max_steps=args.max_steps, seq_len=args.seq_len,
        batch_size=args.batch_size, learning_rate=args.lr, register=False,
    )  # fmt: skip
    result = train(config, extra_eval={"unseen_topic": unseen_rows})
    m = result.metrics
    report = {
        "device": "cuda"
        if torch.cuda.is_available()
        else f"cpu ({torch.get_num_threads()} threads)",
        "base_model": config.base_model,
        "dataset_version": ds.version,
        "dataset_counts": {k: ds.manifest["counts"][k] for k in ("train", "test")},
        "dataset_build_s": round(build_s, 1),
        "max_steps": args.max_steps,
        "seq_len": args.seq_len,
        "batch_size": args.batch_size,
        "train_seconds": round(m["train/seconds"], 1),
        "train_tokens": int(m["train/tokens"]),
        "train_tokens_per_s": round(m["train/tokens_per_s"], 1),
        "loss_first_last": [round(m["train/first_loss"], 3), round(m["train/final_loss"], 3)],
        "heldout_test_split": {
            "n": int(m["eval/examples"]),
            "base_perplexity": round(m["eval/base_perplexity"], 2),
            "finetuned_perplexity": round(m["eval/perplexity"], 2),
            "drop": round(m["eval/relative_drop"], 3),
        },
        "unseen_topic": {
            "n": int(m["eval_unseen_topic/examples"]),
            "base_perplexity": round(m["eval_unseen_topic/base_perplexity"], 2),
            "finetuned_perplexity": round(m["eval_unseen_topic/perplexity"], 2),
            "drop": round(m["eval_unseen_topic/relative_drop"], 3),
        },
        "goal_drop": 0.2,
        "tracker_run_id": result.run_id,
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"device {report['device']}  base {report['base_model']}")
        print(f"dataset {ds.version}: {report['dataset_counts']} (built in {build_s:.1f}s)")
        print(f"training: {args.max_steps} steps x {args.batch_size} x <= {args.seq_len} tokens, "
              f"{report['train_tokens']} tokens in {report['train_seconds']}s = "
              f"{report['train_tokens_per_s']} tokens/s; loss {report['loss_first_last']}")  # fmt: skip
        for name in ("heldout_test_split", "unseen_topic"):
            r = report[name]
            ok = "meets" if r["drop"] >= 0.2 else "below"
            print(f"{name:>18}: n={r['n']} perplexity base {r['base_perplexity']} -> "
                  f"fine-tuned {r['finetuned_perplexity']}  drop {r['drop']:.1%} ({ok} the 20% goal)")  # fmt: skip
    if not args.keep:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
