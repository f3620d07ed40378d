"""Latency of the graph's retrieval stage (self-query → search → fusion → rerank, no LLM
expansion) on production chunks at 10,000 and 100,000 chunks, with and without an author
filter.

    .venv/bin/python benchmarks/retrieval_latency.py --corpus PATH/TO/peps [--sizes 10000,100000]
        [--queries 60] [--variants dense,hybrid] [--work-dir DIR]

The corpus (a folder of per-author subfolders) is ingested once through the production path
(`ingest.documents.add_sources`: import, clean, chunk, embed). To reach 10k/100k chunks, its
stored points are then copied into a store of that size: each copy keeps the chunk's text
and payload, gets its own id, one of `--authors` synthetic authors (so an author filter
keeps about 1/authors of the points) and its vector plus small noise, re-normalised (so no
two points are identical). Requests are the eval set's (`evals/data/peps_requests.jsonl`),
asked with the author pinned (`Configuration.author`) or not. Prints p50/p95 per size,
filter and variant; timings depend on load (the 2-core machine's load average is printed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from _corpus import OFFLINE_ENV  # noqa: E402 - benchmarks/ is on sys.path

NOISE = 0.02


def base_points(corpus: Path, work: Path) -> list[tuple[str, dict, list[float], object]]:
    """(collection, payload, dense, sparse) of every chunk of the corpus, ingested once."""
    from evals.retrieval_corpus import corpus_store

    points = []
    with corpus_store(corpus, work / "base") as store:
        client = store.client
        for name in ("embedded_articles", "embedded_posts", "embedded_repositories"):
            if name not in {c.name for c in client.get_collections().collections}:
                continue
            offset = None
            while True:
                batch, offset = client.scroll(name, limit=1024, offset=offset,
                                              with_payload=True, with_vectors=True)  # fmt: skip
                for p in batch:
                    points.append((name, p.payload, p.vector["dense"], p.vector.get("sparse")))
                if offset is None:
                    break
    return points


def scaled_store(work: Path, base: list, size: int, authors: list[str]) -> Path:
    """A DATA_DIR whose store holds `size` copies of the base points (built once)."""
    import numpy as np
    from qdrant_client import models

    from core.domain import User, author_id_for
    from core.settings import get_settings, settings_override
    from core.warehouse import get_warehouse
    from retrievers.store import (
        DENSE_VECTOR,
        SPARSE_VECTOR,
        close_qdrant_client,
        ensure_collections,
        get_qdrant_client,
    )

    data = work / f"scaled-{size}"
    marker = data / "built.json"
    if marker.exists() and json.loads(marker.read_text()) == {"size": size, "authors": authors}:
        return data
    rng = np.random.default_rng(size)
    close_qdrant_client()
    with settings_override(DATA_DIR=data, MODELS_CACHE_DIR=get_settings().models_cache_dir,
                           QDRANT_URL="", MONGODB_URI=""):  # fmt: skip
        with get_warehouse() as wh:
            for name in authors:
                wh.upsert("users", User.from_full_name(name).model_dump(by_alias=True))
        client = get_qdrant_client()
        ensure_collections(client, len(base[0][2]))
        started, batch = time.perf_counter(), {}
        for i in range(size):
            collection, payload, dense, sparse = base[i % len(base)]
            author = authors[i % len(authors)]
            vector = np.asarray(dense) + rng.normal(0, NOISE, len(dense))
            vector /= np.linalg.norm(vector)
            copy = dict(payload, author_full_name=author, author_id=author_id_for(author),
                        document_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{payload['document_id']}/{i // len(base)}")))  # fmt: skip
            vectors = {DENSE_VECTOR: vector.tolist()}
            if sparse is not None:
                vectors[SPARSE_VECTOR] = sparse
            batch.setdefault(collection, []).append(models.PointStruct(
                id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"copy/{i}")), vector=vectors, payload=copy))  # fmt: skip
            if sum(len(v) for v in batch.values()) >= 1024 or i == size - 1:
                for name, points in batch.items():
                    client.upsert(name, points=points, wait=True)
                batch = {}
        print(f"built {size} chunks in {time.perf_counter() - started:.0f}s", flush=True)
        close_qdrant_client()
    marker.write_text(json.dumps({"size": size, "authors": authors}))
    return data


async def time_requests(requests: list[str], configurable: dict) -> list[float]:
    from graph.builder import compile_graph

    stage = compile_graph(generate_answer=False)
    await stage.ainvoke({"query": requests[0]}, {"configurable": configurable})  # warm-up
    times = []
    for request in requests:
        started = time.perf_counter()
        out = await stage.ainvoke({"query": request}, {"configurable": configurable})
        times.append((time.perf_counter() - started) * 1000)
        assert out.get("context"), request
    return times


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True, help="per-author subfolders")
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--variants", default="auto", help="rerankers (auto = the default)")
    parser.add_argument("--authors", type=int, default=20, help="synthetic authors to spread over")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "data" / "bench" / "latency")
    args = parser.parse_args()
    os.environ.update(OFFLINE_ENV)
    os.environ.setdefault("MODELS_CACHE_DIR", str(ROOT / "data" / "models"))
    from core.logs import setup_cli_logging
    from core.settings import get_settings, settings_override
    from evals.retrieval import PEPS_REQUESTS_FILE, load_questions
    from retrievers.store import close_qdrant_client

    setup_cli_logging()
    work = args.work_dir.resolve()
    base = base_points(args.corpus.resolve(), work)
    print(f"{len(base)} production chunks from {args.corpus.name}", flush=True)
    authors = [f"Writer {chr(65 + i % 26)}{i // 26 or ''} Example" for i in range(args.authors)]
    requests = [q.question for q in load_questions(PEPS_REQUESTS_FILE)][: args.queries]
    rows = []
    for size in [int(s) for s in args.sizes.split(",") if s]:
        data = scaled_store(work, base, size, authors)
        with settings_override(DATA_DIR=data, MODELS_CACHE_DIR=get_settings().models_cache_dir,
                               QDRANT_URL="", MONGODB_URI=""):  # fmt: skip
            for variant in args.variants.split(","):
                for author in ("", authors[3]):
                    configurable = {"expand_n": 0, "reranker": variant, "author": author}
                    times = asyncio.run(time_requests(requests, configurable))
                    rows.append((size, variant, "author" if author else "none",
                                 statistics.median(times), pct(times, 95)))  # fmt: skip
                    print(f"{size} {variant} filter={rows[-1][2]}: p50 {rows[-1][3]:.0f} ms",
                          flush=True)  # fmt: skip
            close_qdrant_client()
    print(f"\nload average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
    print("| chunks | reranker | filter | p50 ms | p95 ms |\n|---|---|---|---|---|")
    for size, variant, filt, p50, p95 in rows:
        print(f"| {size:,} | {variant} | {filt} | {p50:.0f} | {p95:.0f} |")


if __name__ == "__main__":
    main()
