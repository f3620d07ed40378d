"""RAG evaluation: run the real graph on questions whose source documents are known.

The retrieval eval corpus (`evals/data/`, see `evals.retrieval`) is seeded into a fresh,
temporary local vector store; each question goes through `graph.graph` (self-query,
expansion, retrieval, rerank, generation) with the model under test. Per question:
- retrieval: recall@k (share of the question's source documents among the context's
  documents), reciprocal rank of the first source document (→ MRR), hit@k — scored like
  `evals.retrieval` (`score_ranking`), but on the context the whole graph produced;
- answer: Opik's `Hallucination` (reported as faithfulness = 1 − hallucination) and
  `AnswerRelevance`, judged by `evals.judge.get_judge()` — the OpenAI-compatible server when
  `LLM_BASE_URL` is set, else the local model, labelled `"judge": "local-weak"`. Replies
  the judge cannot format count as unscored (`unscored` per metric), never as a crash.
Keep `limit` small on CPU (default 5 questions: minutes, not hours).
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class RagEvalError(RuntimeError):
    """The RAG evaluation cannot run (no eval set, graph missing …): a message for the user."""


# --------------------------------------------------------------------------- eval set


def load_questions(limit: int | None = None) -> list[dict[str, Any]]:
    """Eval questions (`id`, `question`, `sources`: corpus keys), evenly sampled."""
    from evals import retrieval

    try:
        questions = retrieval.load_questions()
    except (OSError, ValueError, KeyError) as exc:
        raise RagEvalError(f"cannot read the retrieval eval set: {exc}") from None
    rows = [{"id": q.id, "question": q.question, "sources": list(q.sources)} for q in questions]
    if not rows:
        raise RagEvalError("the retrieval eval set has no questions")
    if limit and limit < len(rows):
        step = len(rows) / limit
        rows = [rows[int(i * step)] for i in range(limit)]
    return rows


# --------------------------------------------------------------------------- metrics


def _mean(values: list[float | None]) -> float | None:
    scored = [v for v in values if v is not None]
    return round(statistics.fmean(scored), 4) if scored else None


def _question_message(question: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": question}]}


async def _run_graph(
    questions: list[dict[str, Any]], configurable: dict[str, Any], generate: bool = True
) -> list[dict]:
    try:
        from graph import graph
        from graph.builder import compile_graph
    except ImportError as exc:
        raise RagEvalError(f"the RAG graph is not importable: {exc}") from None
    if not generate:  # the same graph, stopped after rerank
        graph = compile_graph(generate_answer=False)
    outputs = []
    for q in questions:
        config = {"configurable": {**configurable, "thread_id": f"eval-{uuid.uuid4()}"}}
        start = time.perf_counter()
        state = await graph.ainvoke(_question_message(q["question"]), config=config)
        outputs.append({"state": state, "latency_s": time.perf_counter() - start})
    return outputs


# --------------------------------------------------------------------------- entry point


def run_rag_eval(
    limit: int = 5,
    k: int = 5,
    model: str | None = None,
    judge: bool = True,
    judge_model: str | None = None,
    max_new_tokens: int = 96,
    work_dir: Path | None = None,
    generate: bool = True,
) -> dict[str, Any]:
    """Run the graph on `limit` eval questions; retrieval + judged answer metrics.

    `work_dir` keeps the stored eval corpus there for the next call (`corpus_store`): a
    caller comparing models stores it once. `generate=False` (only with `judge=False`)
    stops the graph after rerank: the retrieval metrics without writing answers that
    nothing scores (`answer` is then empty)."""
    if judge and not generate:
        raise ValueError("judged metrics need the generated answers (generate=True)")
    from core.models import resolve_llm_path
    from core.settings import get_settings

    model = model or get_settings().LLM_MODEL
    # Registry refs live under the current DATA_DIR: resolve before switching to the temp store.
    model_path = resolve_llm_path(model) if model.startswith("registry:") else model
    questions = load_questions(limit)
    configurable = {
        "k": k,
        "max_new_tokens": max_new_tokens,
        "temperature": 0.0,
    }
    from core.settings import settings_override
    from evals.retrieval import score_ranking
    from evals.retrieval_corpus import corpus_store

    # The model is trusted in-process input (a path is no per-request knob): set it as the
    # default model while the graph runs.
    with corpus_store(work_dir=work_dir) as store, settings_override(LLM_MODEL=model_path):
        key_by_link = store.key_by_link
        outputs = asyncio.run(_run_graph(questions, configurable, generate))

    metrics: dict[str, Any] = {}
    judge_label = "none"
    if judge:
        from opik.evaluation.metrics import AnswerRelevance, Hallucination

        from core.tracing import opik_configured
        from evals.judge import get_judge, score_metric

        judge_model_obj = get_judge(judge_model)
        judge_label = judge_model_obj.label
        track = opik_configured()
        metrics = {
            "hallucination": Hallucination(model=judge_model_obj, track=track),
            "answer_relevance": AnswerRelevance(model=judge_model_obj, track=track),
        }

    items = []
    for q, out in zip(questions, outputs, strict=True):
        state = out["state"]
        docs = state.get("context") or []
        ranked = [key_by_link.get((d.metadata or {}).get("link"), "?") for d in docs]
        contexts = [d.page_content for d in docs]
        answer = state.get("answer") or ""
        item: dict[str, Any] = {
            "id": q["id"],
            "question": q["question"],
            "sources": q["sources"],
            "retrieved": ranked,
            "answer": answer,
            "latency_s": round(out["latency_s"], 3),
            **score_ranking(ranked, q["sources"], k),
            "scores": {},
        }
        if metrics:
            halluc = score_metric(
                metrics["hallucination"], input=q["question"], output=answer, context=contexts
            )
            relevance = score_metric(
                metrics["answer_relevance"], input=q["question"], output=answer, context=contexts
            )
            faith = None if halluc["value"] is None else 1.0 - halluc["value"]
            item["scores"] = {"faithfulness": faith, "answer_relevance": relevance["value"]}
            item["judge_reasons"] = {
                "faithfulness": halluc["reason"],
                "answer_relevance": relevance["reason"],
            }
        items.append(item)

    def scores(name: str) -> list[float | None]:
        return [i["scores"].get(name) for i in items]

    latencies = [i["latency_s"] for i in items]
    report: dict[str, Any] = {
        "model": model,
        "judge": judge_label,
        "n_questions": len(items),
        "k": k,
        "recall@k": _mean([i["recall"] for i in items]),
        f"recall@{k}": _mean([i["recall"] for i in items]),
        "mrr": _mean([i["rr"] for i in items]),
        f"hit@{k}": _mean([i["hit"] for i in items]),
        "faithfulness": _mean(scores("faithfulness")) if judge else None,
        "answer_relevance": _mean(scores("answer_relevance")) if judge else None,
        "scored": {
            name: sum(v is not None for v in scores(name)) if judge else 0
            for name in ("faithfulness", "answer_relevance")
        },
        "unscored": {
            name: sum(v is None for v in scores(name)) if judge else len(items)
            for name in ("faithfulness", "answer_relevance")
        },
        "latency_s_p50": round(statistics.median(latencies), 3) if latencies else None,
        "items": items,
    }
    if judge_label == "local-weak":
        report["judge_note"] = (
            "local-weak: the offline 135M model judged these answers; its scores are noisy and "
            "often unparseable (counted as unscored). Set LLM_BASE_URL for a real judge."
        )
    return report
