"""Latency of the graph's retrieval stage alone: self-query → expansion → fan-out search →
rerank (no answer generation), on a local-mode Qdrant store of ≥ 10,000 chunks.

    python benchmarks/retrieval_latency.py [--chunks 10000] [--queries 50]
        [--expand 0,2] [--data-dir DIR (reuse a seeded store)]

Chunks are generated text (several authors, topics, categories, platforms, dates) embedded
with the real encoders through `retrievers.seed.seed_chunks` (the ingest-side schema).
Queries mix plain questions with self-query cues (author names, categories, years).
Prints p50/p95 per expansion setting; with expand_n > 0 the LLM call dominates.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
for _k, _v in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "DO_NOT_TRACK": "1",
    "OPIK_TRACK_DISABLE": "true",
    "LANGSMITH_TRACING": "false",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(_k, _v)

AUTHORS = ["Paul Iusztin", "Maya Lindqvist", "Maxime Labonne", "Ada Okafor", "Lin Wei"]
TOPICS = [
    "vector databases", "retrieval-augmented generation", "fine-tuning small models",
    "quantization on CPUs", "prompt engineering", "sourdough baking", "trail running",
    "Kubernetes operators", "feature stores", "data pipelines", "LLM evaluation",
    "reranking with cross-encoders", "chunking strategies", "observability for LLM apps",
    "Rust async runtimes", "garden composting", "home espresso", "distributed tracing",
    "embedding models", "preference optimisation",
]
VERBS = ["explains", "compares", "questions", "simplifies", "benchmarks", "revisits", "debugs"]
DETAILS = [
    "with a worked example", "from a production incident", "using open-source tools",
    "on a laptop", "for a small team", "with numbers from last quarter",
    "after reading three papers", "in plain language", "with a checklist at the end",
]
CATEGORIES = [("posts", "linkedin"), ("articles", "medium"), ("articles", "substack"),
              ("repositories", "github")]


def make_text(rng: random.Random, topic: str) -> str:
    sentences = []
    for _ in range(rng.randint(3, 6)):
        other = rng.choice(TOPICS)
        sentences.append(
            f"This note {rng.choice(VERBS)} {topic} {rng.choice(DETAILS)}, and how it relates "
            f"to {other}."
        )
    return " ".join(sentences)


def seed(n_chunks: int, rng: random.Random) -> None:
    from core.domain import User
    from core.warehouse import get_warehouse
    from retrievers.seed import make_chunks, seed_chunks
    from retrievers.store import get_qdrant_client

    with get_warehouse() as wh:
        for name in AUTHORS:
            wh.upsert("users", User.from_full_name(name).model_dump(by_alias=True))
    chunks = []
    i = 0
    while len(chunks) < n_chunks:
        topic = rng.choice(TOPICS)
        category, platform = rng.choice(CATEGORIES)
        year = rng.choice([2021, 2022, 2023, 2024, 2025])
        chunks += make_chunks(
            make_text(rng, topic),
            author=rng.choice(AUTHORS),
            category=category,
            platform=platform,
            title=f"{topic} #{i}",
            link=f"https://example.test/{platform}/{i}",
            published_at=f"{year}-{rng.randint(1, 12):02d}-15T00:00:00+00:00",
            split=False,
        )
        i += 1
    start = time.perf_counter()
    written = seed_chunks(get_qdrant_client(), chunks)
    print(f"seeded {sum(written.values())} chunks {written} in {time.perf_counter() - start:.0f} s")


def make_queries(n: int, rng: random.Random) -> list[str]:
    forms = [
        "How do you approach {t}?",
        "Write a LinkedIn post about {t}",
        "I am {a}. Write an article about {t}",
        "What did {a} write about {t} in {y}?",
        "posts about {t} since March {y}",
        "Summarise my Medium articles on {t}",
        "code examples for {t} from my GitHub",
        "{t} tips",
    ]
    return [
        rng.choice(forms).format(t=rng.choice(TOPICS), a=rng.choice(AUTHORS), y=rng.choice([2022, 2023, 2024]))
        for _ in range(n)
    ]


async def run(queries: list[str], expand_n: int) -> list[float]:
    from graph.graph import compile_graph

    retrieval = compile_graph(generate_answer=False)
    config = {"configurable": {"expand_n": expand_n}}
    await retrieval.ainvoke({"query": queries[0]}, config)  # warm-up: models load once
    times = []
    for q in queries:
        start = time.perf_counter()
        out = await retrieval.ainvoke({"query": q}, config)
        times.append((time.perf_counter() - start) * 1000)
        assert out.get("context") is not None
    return times


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--expand", default="0,2", help="expand_n settings to measure")
    parser.add_argument("--data-dir", default="", help="reuse/keep a seeded DATA_DIR")
    parser.add_argument("--backend", default="", help="LLM_BACKEND for expansion (default auto)")
    args = parser.parse_args()
    if args.backend:
        os.environ["LLM_BACKEND"] = args.backend
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="twin-retrieval-bench-"))
    os.environ["DATA_DIR"] = str(data_dir)
    os.environ.setdefault(
        "MODELS_CACHE_DIR", str(Path(__file__).resolve().parent.parent / "data" / "models")
    )
    rng = random.Random(7)
    from retrievers.store import get_qdrant_client

    client = get_qdrant_client()
    existing = sum(
        client.count(c.name).count
        for c in client.get_collections().collections
        if c.name.startswith("embedded_")
    )
    if existing < args.chunks:
        seed(args.chunks - existing, rng)
    else:
        print(f"reusing {existing} chunks in {data_dir}")
    queries = make_queries(args.queries, random.Random(11))
    print(f"{'expand_n':>8}{'queries':>9}{'p50 ms':>9}{'p95 ms':>9}{'mean ms':>9}  (loadavg {os.getloadavg()[0]:.1f}, {os.cpu_count()} cpus)")
    for expand_n in [int(x) for x in args.expand.split(",") if x.strip()]:
        times = asyncio.run(run(queries, expand_n))
        print(
            f"{expand_n:>8}{len(times):>9}{pct(times, 50):>9.0f}{pct(times, 95):>9.0f}"
            f"{statistics.mean(times):>9.0f}"
        )
    from retrievers.store import close_qdrant_client

    close_qdrant_client()  # release the local store before interpreter shutdown


if __name__ == "__main__":
    main()
