"""Retrieval evaluation: recall@k and MRR of `retrievers.get_retriever` on a known corpus.

The corpus (`evals/data/corpus/*.md`: 55 technical articles, short posts and code files by
four authors, with deliberately confusable topics; the `d*` files are distractors that no
question asks about) is chunked and seeded into a fresh local
Qdrant folder through the ingest-side schema (`retrievers.seed`), then every question of
`evals/data/retrieval_eval.jsonl` is asked through the public retriever. A question lists
its source documents (corpus keys) and, for some, the filters a self-query step would set.

    from evals.retrieval import run_retrieval_eval
    run_retrieval_eval()  # {"recall@5": …, "mrr": …, "n_questions": 102, …}

Metrics, per question then averaged: recall@k = share of the source documents that appear
among the top-k chunks; MRR = 1 / rank of the first chunk from a source document (0 when
none is in the top k); hit@k = 1 when any source document is in the top k.
"""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

    from core.domain import Chunk

DATA_DIR = Path(__file__).resolve().parent / "data"
CORPUS_DIR = DATA_DIR / "corpus"
QUESTIONS_FILE = DATA_DIR / "retrieval_eval.jsonl"
CHUNK_TOKENS = 200


@dataclass
class CorpusDocument:
    key: str
    author: str
    category: str
    platform: str
    title: str
    link: str
    published_at: str | None
    content: str


@dataclass
class Question:
    id: str
    question: str
    sources: list[str]
    filters: dict[str, Any] = field(default_factory=dict)


def _parse_front_matter(text: str) -> tuple[dict[str, str], str]:
    if not text.startswith("---\n"):
        raise ValueError("corpus file without front matter")
    header, _, body = text[4:].partition("\n---\n")
    meta = {}
    for line in header.splitlines():
        key, _, value = line.partition(":")
        meta[key.strip()] = value.strip()
    return meta, body.strip("\n") + "\n"


def load_corpus(corpus_dir: Path = CORPUS_DIR) -> list[CorpusDocument]:
    """The evaluation corpus, one document per `*.md` file (front matter + content)."""
    docs = []
    for path in sorted(corpus_dir.glob("*.md")):
        meta, body = _parse_front_matter(path.read_text(encoding="utf-8"))
        docs.append(
            CorpusDocument(
                key=path.stem,
                author=meta["author"],
                category=meta["category"],
                platform=meta["platform"],
                title=meta.get("title", ""),
                link=meta["link"],
                published_at=meta.get("published_at") or None,
                content=body,
            )
        )
    return docs


def load_questions(path: Path = QUESTIONS_FILE) -> list[Question]:
    questions = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            questions.append(
                Question(row["id"], row["question"], list(row["sources"]), row.get("filters") or {})
            )
    return questions


def corpus_chunks(docs: Sequence[CorpusDocument] | None = None) -> list[Chunk]:
    """The corpus as chunks with ingest-side ids (document id from platform + link)."""
    from retrievers.seed import make_chunks

    chunks: list[Chunk] = []
    for doc in docs if docs is not None else load_corpus():
        chunks.extend(
            make_chunks(
                doc.content,
                author=doc.author,
                category=doc.category,
                title=doc.title,
                link=doc.link,
                platform=doc.platform,
                published_at=f"{doc.published_at}T09:00:00+00:00" if doc.published_at else None,
                max_tokens=CHUNK_TOKENS,
            )
        )
    return chunks


@contextmanager
def seeded_store(path: Path | None = None) -> Iterator[tuple[QdrantClient, dict[str, str]]]:
    """A fresh local Qdrant folder seeded with the corpus: (client, corpus key by link)."""
    from qdrant_client import QdrantClient

    from retrievers.seed import seed_chunks

    tmp = Path(tempfile.mkdtemp(prefix="twin-retrieval-eval-")) if path is None else path
    client = QdrantClient(path=str(tmp))
    try:
        docs = load_corpus()
        seed_chunks(client, corpus_chunks(docs))
        yield client, {d.link: d.key for d in docs}
    finally:
        client.close()
        if path is None:
            shutil.rmtree(tmp, ignore_errors=True)


def score_ranking(ranked_keys: Sequence[str], sources: Sequence[str], k: int) -> dict[str, float]:
    """recall@k, reciprocal rank and hit@k of one ranked list of document keys."""
    top = list(ranked_keys[:k])
    relevant = set(sources)
    found = relevant & set(top)
    rr = next((1.0 / (i + 1) for i, key in enumerate(top) if key in relevant), 0.0)
    return {"recall": len(found) / len(relevant), "rr": rr, "hit": 1.0 if found else 0.0}


def evaluate(
    client: QdrantClient,
    key_by_link: dict[str, str],
    variant: str = "default",
    k: int = 5,
    questions: Sequence[Question] | None = None,
    **retriever_config: Any,
) -> dict[str, Any]:
    """Ask every question through `get_retriever` on `client` and aggregate the metrics."""
    from retrievers import get_retriever
    from retrievers.search import resolve_variant

    reranker = "auto" if variant in ("default", "auto") else variant
    resolved, _ = resolve_variant(reranker)
    questions = list(questions if questions is not None else load_questions())
    # Warm up (model load, first query) outside the timed loop.
    get_retriever(k=k, reranker=reranker, client=client, **retriever_config).invoke("warm up")
    rows, latencies = [], []
    for q in questions:
        retriever = get_retriever(
            k=k, reranker=reranker, client=client, filters=q.filters, **retriever_config
        )
        start = time.perf_counter()
        docs = retriever.invoke(q.question)
        latencies.append((time.perf_counter() - start) * 1000)
        ranked = [key_by_link.get(d.metadata.get("link"), "?") for d in docs]
        scores = score_ranking(ranked, q.sources, k)
        rows.append({"id": q.id, "ranked": ranked, **scores})
    n = len(rows)
    latencies.sort()
    return {
        f"recall@{k}": round(sum(r["recall"] for r in rows) / n, 4),
        "mrr": round(sum(r["rr"] for r in rows) / n, 4),
        f"hit@{k}": round(sum(r["hit"] for r in rows) / n, 4),
        "n_questions": n,
        "variant": resolved,
        "latency_ms_p50": round(statistics.median(latencies), 1),
        "latency_ms_p95": round(latencies[min(n - 1, int(0.95 * n))], 1),
        "misses": [r["id"] for r in rows if r["hit"] == 0.0],
    }


def run_retrieval_eval(variant: str = "default", k: int = 5) -> dict[str, Any]:
    """Seed a temporary local store with the corpus and evaluate the retriever on it.

    `variant`: "default" (what `get_retriever` uses: RERANKER_MODEL's cross-encoder when set,
    else the measured default) or a name from `retrievers.search.VARIANTS`.
    Returns `{"recall@5", "mrr", "hit@5", "n_questions", "variant", "latency_ms_p50",
    "latency_ms_p95", "misses"}` (keys follow `k`).
    """
    with seeded_store() as (client, key_by_link):
        return evaluate(client, key_by_link, variant=variant, k=k)
