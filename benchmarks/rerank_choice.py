"""Choose the offline reranking default by measurement.

Seeds the retrieval eval corpus (`evals/data/`) once into a temporary local Qdrant folder
and runs every question through `retrievers.get_retriever` for each variant in
`retrievers.search.VARIANTS` (plus "default"), printing recall@5, MRR, hit@5 and
per-query latency. Optionally also times the first stage on a larger synthetic store
(`--scale N` chunks) because local-mode search cost grows with the collection.

    python benchmarks/rerank_choice.py [--k 5] [--repeat 1] [--scale 0] [--json]

The cross-encoder variant needs RERANKER_MODEL; it is skipped otherwise (no trained
cross-encoder ships offline, and an untrained head only measures cost, not quality).

Measured 2026-11-23 on the 2-core dev machine while it ran several other jobs (load
average 12-16, so latencies are inflated and noisy; compare quality columns, and the
--scale table for cost). 55 documents, 102 questions, k=5:

| variant | recall@5 | MRR | hit@5 | p50 ms (loaded) |
|---|---|---|---|---|
| dense | 1.000 | 0.973 | 1.000 | 1132 |
| sparse | 0.956 | 0.939 | 0.971 | 390 |
| hybrid (RRF of global dense + sparse lists) | 0.980 | 0.976 | 0.990 | 691 |
| hybrid-weighted | 0.976 | 0.969 | 0.990 | 2194 |
| qdrant-rrf (prefetch + FusionQuery per collection) | 0.990 | 0.923 | 0.990 | 2263 |
| hybrid+maxsim-rrf | 0.985 | 0.974 | 0.990 | 6826 |
| dense+pool-rerank | 0.995 | 0.965 | — | 1735 |
| hybrid+pool-rerank | 0.976 | 0.980 | — | 184 |

An earlier, easier 77-question version saturated (recall@5 1.0 for all; MRR dense 0.981,
sparse 0.991, hybrid 0.994, qdrant-rrf 0.950, MaxSim variants 0.994 at 5-7 s/query).
Choice: `dense`. No variant beats it on recall@5, the MRR gaps are within one or two
questions, and it is the cheapest: in local mode the sparse search is a pure-Python scan
over every point (see --scale), and MaxSim costs an encoder pass over all candidates.
Hybrid remains one config key away (`reranker="hybrid"`), worth re-measuring with a Qdrant
server (indexed sparse search) or on corpora heavy in identifiers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
for key, value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(key, value)


def scale_latency(n_chunks: int, n_queries: int = 30) -> list[dict]:
    """First-stage latency per variant on `n_chunks` synthetic points (3 collections).

    Points get random unit dense vectors and Zipf-distributed sparse term weights (what
    matters for local-mode cost is the number of points and non-zeros, not the text);
    queries are the eval questions through the real encoders. Encoding is timed apart.
    """
    import shutil
    import statistics
    import tempfile
    import time
    import uuid

    import numpy as np
    from qdrant_client import QdrantClient, models

    from evals.retrieval import load_questions
    from retrievers.encoders import embedding_dimension
    from retrievers.filters import ALL_COLLECTIONS, SearchFilters
    from retrievers.search import encode_queries, first_stage
    from retrievers.store import DENSE_VECTOR, SPARSE_VECTOR, ensure_collections

    rng = np.random.default_rng(0)
    dim = embedding_dimension()
    tmp = tempfile.mkdtemp(prefix="twin-rerank-scale-")
    client = QdrantClient(path=tmp)
    authors = ["Maya Lindqvist", "Tomás Okafor", "Jonas Weber", "Priya Raman"]
    try:
        ensure_collections(client, dim)
        per = n_chunks // len(ALL_COLLECTIONS)
        for name in ALL_COLLECTIONS:
            for start in range(0, per, 1000):
                points = []
                for _ in range(min(1000, per - start)):
                    vec = rng.normal(size=dim).astype(np.float32)
                    vec /= np.linalg.norm(vec)
                    terms = np.unique(rng.zipf(1.3, size=90) % 30000 + 1000)[:70]
                    author = authors[int(rng.integers(len(authors)))]
                    points.append(
                        models.PointStruct(
                            id=str(uuid.uuid4()),
                            vector={
                                DENSE_VECTOR: vec.tolist(),
                                SPARSE_VECTOR: models.SparseVector(
                                    indices=terms.tolist(),
                                    values=rng.uniform(0.5, 2.0, size=len(terms)).tolist(),
                                ),
                            },
                            payload={
                                "author_full_name": author,
                                "author_id": author,
                                "platform": "medium",
                                "category": name.removeprefix("embedded_"),
                                "published_at": "2024-01-01T00:00:00+00:00",
                                "content": "x",
                            },
                        )
                    )
                client.upsert(name, points=points, wait=True)
        questions = [q.question for q in load_questions()][:n_queries]
        t0 = time.perf_counter()
        encoded = [encode_queries([q]) for q in questions]
        dense = [e[0][0] for e in encoded]
        sparse = [e[1][0] for e in encoded]
        encode_ms = (time.perf_counter() - t0) * 1000 / len(questions)
        rows = []
        for mode, label in (
            ("dense", "dense"),
            ("sparse", "sparse"),
            ("rrf", "hybrid"),
            ("qdrant-rrf", "qdrant-rrf"),
        ):
            for filtered in (False, True):
                qfilter = (
                    SearchFilters.from_config({"author": "Maya Lindqvist"}).to_qdrant()
                    if filtered
                    else None
                )
                times = []
                for d, sp in zip(dense, sparse, strict=True):
                    t = time.perf_counter()
                    first_stage(client, ALL_COLLECTIONS, d.tolist(), sp, qfilter, 20, mode)
                    times.append((time.perf_counter() - t) * 1000)
                times.sort()
                rows.append(
                    {
                        "variant": label,
                        "filtered": filtered,
                        "chunks": n_chunks,
                        "p50_ms": round(statistics.median(times), 1),
                        "p95_ms": round(times[int(0.95 * len(times)) - 1], 1),
                        "encode_ms": round(encode_ms, 1),
                    }
                )
        return rows
    finally:
        client.close()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--variants", nargs="*", default=None)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--scale", type=int, default=0, help="also time the first stage on N chunks"
    )
    parser.add_argument("--scale-only", action="store_true")
    args = parser.parse_args()
    if args.scale:
        rows = scale_latency(args.scale)
        print(
            f"first stage on {args.scale} synthetic chunks, query encoding "
            f"{rows[0]['encode_ms']} ms/query (not included):"
        )
        print("| variant | filter | p50 ms | p95 ms |")
        print("|---|---|---|---|")
        for r in rows:
            print(
                f"| {r['variant']} | {'author' if r['filtered'] else '-'} "
                f"| {r['p50_ms']} | {r['p95_ms']} |"
            )
        if args.scale_only:
            return

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
                print(
                    f"  measured {name}: recall@{args.k} {res[f'recall@{args.k}']} "
                    f"mrr {res['mrr']} p50 {res['latency_ms_p50']} ms",
                    file=sys.stderr,
                    flush=True,
                )
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
    for r in results:
        print(f"misses@{k} {r['name']}: {', '.join(r['misses']) or '-'}")


if __name__ == "__main__":
    main()
