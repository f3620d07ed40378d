"""Retrieval evaluation: does the retriever find the author's own passage for a request?

Two eval sets, one method (`evals.retrieval_corpus` stores the corpus through the
production pipeline into the eval's own store):
- real writing: `evals/data/peps_requests.jsonl` — 185 requests phrased as users ask the
  twin, written from reading the 93 PEPs of `../shared/corpora/peps` (how: peps_requests.md),
  each with its gold document(s) and, where one exists, the gold section;
- the in-tree fixture `evals/data/retrieval_eval.jsonl` over `evals/data/corpus/` (tests, CI).

Every request goes through the graph's retrieval stage (`graph.builder.compile_graph(
generate_answer=False)`: self-query, query expansion when `expand_n` > 0 — off unless the
recipe asks —, retrieval, reranking) asked for `K_MAX` passages, exactly as the twin
retrieves before it writes.

    from evals.retrieval import run_retrieval_eval
    run_retrieval_eval()  # {"recall@5": …, "mrr": …, "n_questions": 102, …}

Metrics, per request then averaged. The document ranking is the distinct documents of the
chunk ranking, in order. recall@k = share of the gold documents among the documents of the
top-k chunks (k = 1, 5, 10); hit@k = 1 when any is; MRR = 1 / rank of the first gold chunk
(0 beyond `K_MAX`); nDCG@10 on the document ranking (binary gains); section recall@k
(k = 1, 5; requests with a gold section) = 1 when one of the top-k chunks is of a gold
document and covers that section.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evals.retrieval_corpus import DATA_DIR, EvalStore, corpus_store, normalise_heading

QUESTIONS_FILE = DATA_DIR / "retrieval_eval.jsonl"
PEPS_REQUESTS_FILE = DATA_DIR / "peps_requests.jsonl"
K_MAX = 10
CUTOFFS = (1, 5, 10)


@dataclass
class Question:
    id: str
    question: str
    sources: list[str]
    filters: dict[str, Any] = field(default_factory=dict)
    section: str | None = None
    author_named: str | None = None


def load_questions(path: Path = QUESTIONS_FILE) -> list[Question]:
    """An eval set: JSON lines with `id`, `question` or `request`, `sources` or
    `gold_documents`, and optional `filters`, `gold_section`, `author_named`."""
    questions = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        try:
            questions.append(
                Question(
                    id=str(row["id"]),
                    question=row.get("question") or row["request"],
                    sources=list(row.get("sources") or row["gold_documents"]),
                    filters=row.get("filters") or {},
                    section=row.get("gold_section") or None,
                    author_named=row.get("author_named") or None,
                )
            )
        except KeyError as exc:
            raise ValueError(f"{path}:{number}: missing field {exc}") from None
    return questions


def score_ranking(ranked_keys: Sequence[str], sources: Sequence[str], k: int) -> dict[str, float]:
    """recall@k, reciprocal rank and hit@k of one ranked list of document keys."""
    top = list(ranked_keys[:k])
    relevant = set(sources)
    found = relevant & set(top)
    rr = next((1.0 / (i + 1) for i, key in enumerate(top) if key in relevant), 0.0)
    return {"recall": len(found) / len(relevant), "rr": rr, "hit": 1.0 if found else 0.0}


def ndcg(ranked_documents: Sequence[str], sources: Sequence[str], k: int = K_MAX) -> float:
    """nDCG@k of a document ranking with binary gains."""
    relevant = set(sources)
    gain = sum(1.0 / math.log2(i + 2) for i, d in enumerate(ranked_documents[:k]) if d in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), k)))
    return gain / ideal if ideal else 0.0


def score_request(
    chunk_keys: Sequence[str],
    chunk_sections: Sequence[set[str]],
    question: Question,
) -> dict[str, Any]:
    """Every metric of one request from its ranked chunks' document keys and sections."""
    relevant = set(question.sources)
    documents = list(dict.fromkeys(chunk_keys))
    row: dict[str, Any] = {"id": question.id, "ranked": documents[:K_MAX]}
    for k in CUTOFFS:
        found = relevant & set(chunk_keys[:k])
        row[f"recall@{k}"] = len(found) / len(relevant)
        row[f"hit@{k}"] = 1.0 if found else 0.0
    row["rr"] = next(
        (1.0 / (i + 1) for i, key in enumerate(chunk_keys[:K_MAX]) if key in relevant), 0.0
    )
    row["ndcg@10"] = ndcg(documents, question.sources)
    if question.section:
        wanted = normalise_heading(question.section)
        for k in (1, 5):
            row[f"section@{k}"] = float(
                any(
                    key in relevant and wanted in sections
                    for key, sections in zip(chunk_keys[:k], chunk_sections[:k], strict=False)
                )
            )
    return row


def evaluate(
    store: EvalStore,
    questions: Sequence[Question],
    recipe: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Ask every question through the graph's retrieval stage with `recipe` (graph
    Configuration keys) on the store in force; aggregate. Per-request rows are under
    `"rows"`."""
    import asyncio

    from retrievers.variants import resolve_variant

    recipe = {"expand_n": 0, **(recipe or {}), "k": K_MAX}
    resolved, _ = resolve_variant(recipe.get("reranker"))
    results = asyncio.run(_retrieve_all(questions, recipe))
    rows, latencies = [], []
    for question, (docs, filters, queries, elapsed_ms) in zip(questions, results, strict=True):
        latencies.append(elapsed_ms)
        keys = [store.key_by_link.get(d.metadata.get("link"), "?") for d in docs]
        sections = [store.sections.get(str(d.metadata.get("chunk_id")), set()) for d in docs]
        used = {k: v for k, v in filters.items() if v is not None}
        rows.append({**score_request(keys, sections, question), "filters": used, "queries": queries})
    report = summarise(rows, latencies, resolved)
    report["rows"] = rows
    return report


async def _retrieve_all(
    questions: Sequence[Question], recipe: dict[str, Any]
) -> list[tuple[list[Any], dict[str, Any], list[str], float]]:
    """(context, filters, queries, milliseconds) of each question from the graph's
    retrieval stage: self-query (filters a question lists itself are pinned), query
    expansion when `expand_n` > 0, retrieval and reranking."""
    from graph.builder import compile_graph

    stage = compile_graph(generate_answer=False)
    await stage.ainvoke({"query": "warm up"}, {"configurable": recipe})  # models load, untimed
    results = []
    for question in questions:
        configurable = {**recipe, "filters": question.filters} if question.filters else recipe
        start = time.perf_counter()
        out = await stage.ainvoke({"query": question.question}, {"configurable": configurable})
        elapsed = (time.perf_counter() - start) * 1000
        results.append(
            (list(out.get("context") or []), dict(out.get("filters") or {}),
             list(out.get("queries") or []), elapsed)  # fmt: skip
        )
    return results


def summarise(rows: list[dict[str, Any]], latencies: list[float], variant: str) -> dict[str, Any]:
    n = len(rows)

    def mean(key: str) -> float | None:
        values = [r[key] for r in rows if key in r]
        return round(sum(values) / len(values), 4) if values else None

    report: dict[str, Any] = {f"recall@{k}": mean(f"recall@{k}") for k in CUTOFFS}
    report.update(
        {
            "mrr": mean("rr"),
            "ndcg@10": mean("ndcg@10"),
            "section_recall@1": mean("section@1"),
            "section_recall@5": mean("section@5"),
            "hit@5": mean("hit@5"),
            "n_questions": n,
            "n_with_section": sum(1 for r in rows if "section@5" in r),
            "variant": variant,
        }
    )
    latencies = sorted(latencies)
    report["latency_ms_p50"] = round(statistics.median(latencies), 1) if latencies else 0.0
    report["latency_ms_p95"] = round(latencies[min(n - 1, int(0.95 * n))], 1) if latencies else 0.0
    report["misses"] = [r["id"] for r in rows if r["hit@5"] == 0.0]
    return report


def run_retrieval_eval(
    variant: str = "default",
    corpus: Path | None = None,
    questions_file: Path | None = None,
    work_dir: Path | None = None,
    **recipe: Any,
) -> dict[str, Any]:
    """Store the corpus (the in-tree fixture, or a folder of per-author subfolders) in its
    own store and evaluate the retriever on its eval set.

    `variant`: "default" (what the graph uses: RERANKER_MODEL's cross-encoder when set,
    else the measured default) or a name from `retrievers.variants.VARIANTS`; `recipe`: other
    graph Configuration keys (`max_per_document`, `expand_n`, …). The embedding-side
    recipe (chunk size, title context) comes from the settings in force.
    """
    if questions_file is None:
        questions_file = QUESTIONS_FILE if corpus is None else PEPS_REQUESTS_FILE
    questions = load_questions(questions_file)
    if variant not in ("default", "auto"):
        recipe["reranker"] = variant
    with corpus_store(corpus, work_dir) as store:
        known = set(store.key_by_link.values())
        unknown = sorted({s for q in questions for s in q.sources} - known)
        if unknown:
            raise ValueError(f"{questions_file}: gold documents not in the corpus: {unknown[:5]}")
        return evaluate(store, questions, recipe)
