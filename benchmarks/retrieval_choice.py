"""Choose the retrieval recipe on real writing: every candidate on the same eval set.

The corpus (a folder of per-author subfolders, e.g. the 93 PEPs of `../shared/corpora/peps`)
is ingested through the production path (`ingest.documents.add_sources`, what
`python -m ingest add` runs: import, clean, chunk, embed) into its own DATA_DIR, once per
embedding-side setting (chunk size/overlap, title context), and every request of the eval
set (`evals/data/peps_requests.jsonl`: 185 requests written from reading the documents)
goes through the graph's retrieval stage (self-query, expansion, retrieval, rerank) with
the candidate's recipe. See `evals/retrieval.py` for the metrics.

    .venv/bin/python benchmarks/retrieval_choice.py --corpus PATH/TO/peps [--only NAME,…]

Prints a table (the default recipe marked) and writes JSON with `--json`. Latencies are
the whole retrieval stage per request on this machine (2 cores); quality columns do not
depend on load, latency columns do.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from _corpus import OFFLINE_ENV  # noqa: E402 - benchmarks/ is on sys.path

BASELINE_EMBEDDING = {"EMBED_CHUNK_CONTEXT": False}
# name → (embedding-side settings, graph Configuration keys)
DENSE = {"reranker": "dense", "max_per_document": 0}  # the first stage's order, no limit
CANDIDATES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "dense, plain chunks (baseline)": (BASELINE_EMBEDDING, DENSE),
    "dense, plain chunks, 1 per doc": (BASELINE_EMBEDDING, {**DENSE, "max_per_document": 1}),
    "dense + title/section context": ({}, DENSE),
    "context, 128-token chunks": ({"CHUNK_TOKENS": 128, "CHUNK_OVERLAP": 16}, DENSE),
    "context, 254-token chunks": ({"CHUNK_TOKENS": 254, "CHUNK_OVERLAP": 32}, DENSE),
    "context, no overlap": ({"CHUNK_OVERLAP": 0}, DENSE),
    "context, 1 per doc": ({}, {**DENSE, "max_per_document": 1}),
    "context, 2 per doc": ({}, {**DENSE, "max_per_document": 2}),
    "context, hybrid RRF (dense + BM25)": ({}, {**DENSE, "reranker": "hybrid"}),
    "context, BM25 only, 2 per doc": ({}, {"reranker": "sparse", "max_per_document": 2}),
    "context, hybrid RRF, 2 per doc": ({}, {"reranker": "hybrid", "max_per_document": 2}),
    "context, weighted 0.5, 2 per doc": ({}, {"reranker": "hybrid-weighted", "max_per_document": 2}),
    "context, query-adaptive, 2 per doc": ({}, {"reranker": "adaptive", "max_per_document": 2}),
    "context, hybrid, 1 per doc": ({}, {"reranker": "hybrid", "max_per_document": 1}),
    "context, dense + MaxSim rerank": ({}, {**DENSE, "reranker": "dense+maxsim"}),
    # The LLM call gets a generous budget here to measure what expansion finds at all; the
    # graph's own limit (expand_timeout_s) is 4 s.
    "context, multi-query expansion (LLM, n=2)": (
        {}, {**DENSE, "expand_n": 2, "expand_timeout_s": 30.0}),
}  # fmt: skip


def run_candidate(corpus: Path, work: Path, settings: dict[str, Any], recipe: dict[str, Any],
                  questions: Path) -> dict[str, Any]:  # fmt: skip
    from core.settings import settings_override
    from evals.retrieval import run_retrieval_eval

    store = work / ("_".join(f"{k}-{v}" for k, v in sorted(settings.items())) or "default")
    with settings_override(**settings):
        return run_retrieval_eval("default", corpus=corpus, questions_file=questions,
                                  work_dir=store, **recipe)  # fmt: skip


def default_recipe() -> tuple[dict[str, Any], dict[str, Any]]:
    """What a fresh install uses: the settings' embedding side and the graph's defaults."""
    from dataclasses import fields

    from core.settings import Settings
    from graph.configuration import Configuration

    settings = Settings()
    embedding = {"CHUNK_TOKENS": settings.CHUNK_TOKENS, "CHUNK_OVERLAP": settings.CHUNK_OVERLAP,
                 "EMBED_CHUNK_CONTEXT": settings.EMBED_CHUNK_CONTEXT}  # fmt: skip
    config = Configuration()
    recipe = {f.name: getattr(config, f.name) for f in fields(config)
              if f.name in ("reranker", "max_per_document", "expand_n", "fetch_k")}  # fmt: skip
    return embedding, recipe


def is_default(settings: dict[str, Any], recipe: dict[str, Any]) -> bool:
    from retrievers.variants import DEFAULT_MAX_PER_DOCUMENT, resolve_variant

    embedding, config = default_recipe()
    resolved = {**embedding, **settings}
    wanted = {"max_per_document": DEFAULT_MAX_PER_DOCUMENT, "expand_n": 0, **recipe}
    same_embedding = all(resolved[k] == v for k, v in embedding.items())
    reranker = wanted.get("reranker", "auto")
    same_recipe = all(wanted.get(k, config[k]) == v for k, v in config.items() if k != "reranker")
    return same_embedding and same_recipe and (
        resolve_variant(reranker)[0] == resolve_variant(config["reranker"])[0]
    )


EVAL_SETS = {"topical": "peps_requests.jsonl", "known-item": "peps_known_items.jsonl",
             "known-item-heldout": "peps_known_items_heldout.jsonl"}  # fmt: skip


def by_kind(report: dict[str, Any], metric: str = "hit@5") -> dict[str, float]:
    """A known-item report's metric per request kind (phrase, identifier, name)."""
    kinds: dict[str, list[float]] = {}
    for row in report.get("rows", []):
        kind = row["id"].rsplit("-", 2)[-2]
        kinds.setdefault(kind, []).append(row[metric])
    return {kind: sum(values) / len(values) for kind, values in sorted(kinds.items())}


def print_table(results: dict[str, dict[str, dict[str, Any]]], defaults: set[str]) -> None:
    """One row per recipe: each eval set's R@1, R@5 and MRR, the known-item hit@5 per
    kind, and the topical set's median latency."""
    sets = list(next(iter(results.values())))
    header = ["recipe"] + [f"{name} {m}" for name in sets for m in ("R@1", "R@5", "MRR")]
    kinds = sorted({k for r in results.values() for k in by_kind(r.get("known-item", {}))})
    header += [f"{k} R@5" for k in kinds] + ["p50 ms", "p95 ms"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, reports in results.items():
        label = f"**{name} (default)**" if name in defaults else name
        cells = [f"{reports[s][m]:.3f}" for s in sets for m in ("recall@1", "recall@5", "mrr")]
        per_kind = by_kind(reports.get("known-item", {}))
        cells += [f"{per_kind.get(k, float('nan')):.3f}" for k in kinds]
        first = reports[sets[0]]
        cells += [f"{first['latency_ms_p50']:.0f}", f"{first['latency_ms_p95']:.0f}"]
        print("| " + " | ".join([label, *cells]) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True,
                        help="folder of per-author subfolders (e.g. ../shared/corpora/peps)")  # fmt: skip
    parser.add_argument("--only", default="", help="candidate names separated by semicolons")
    parser.add_argument("--evals", default=",".join(EVAL_SETS),
                        help=f"eval sets, comma-separated: {', '.join(EVAL_SETS)}")  # fmt: skip
    parser.add_argument("--work-dir", type=Path, default=ROOT / "data" / "bench" / "retrieval")
    parser.add_argument("--json", type=Path, default=None, help="write the report here")
    args = parser.parse_args()
    os.environ.update(OFFLINE_ENV)
    os.environ.setdefault("MODELS_CACHE_DIR", str(ROOT / "data" / "models"))
    from core.logs import setup_cli_logging
    from evals.retrieval_corpus import DATA_DIR

    setup_cli_logging()
    chosen = [c.strip() for c in args.only.split(";") if c.strip()] or list(CANDIDATES)
    unknown = [c for c in chosen if c not in CANDIDATES]
    eval_sets = [e.strip() for e in args.evals.split(",") if e.strip()]
    if unknown or not set(eval_sets) <= set(EVAL_SETS):
        raise SystemExit(f"unknown candidates {unknown} or eval sets {eval_sets}; "
                         f"known: {list(CANDIDATES)}, {list(EVAL_SETS)}")  # fmt: skip
    results: dict[str, dict[str, dict[str, Any]]] = {}
    defaults = set()
    for name in chosen:
        settings, recipe = CANDIDATES[name]
        started = time.perf_counter()
        results[name] = {}
        for eval_set in eval_sets:
            report = run_candidate(args.corpus.resolve(), args.work_dir.resolve(), settings,
                                   dict(recipe), DATA_DIR / EVAL_SETS[eval_set])  # fmt: skip
            results[name][eval_set] = report
            print(f"{name} / {eval_set}: R@1 {report['recall@1']:.3f}, R@5 {report['recall@5']:.3f}, "
                  f"MRR {report['mrr']:.3f} ({time.perf_counter() - started:.0f}s)", flush=True)  # fmt: skip
        if is_default(settings, recipe):
            defaults.add(name)
    print()
    print_table(results, defaults)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
