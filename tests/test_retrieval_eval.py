"""The retrieval evaluation set and `evals.retrieval.run_retrieval_eval`."""

from __future__ import annotations

import pytest


def test_corpus_and_questions_are_consistent():
    from core.domain import Category
    from evals.retrieval import load_corpus, load_questions, score_ranking

    docs = load_corpus()
    questions = load_questions()
    assert len(docs) >= 40 and len(questions) >= 60
    keys = {d.key for d in docs}
    assert len(keys) == len(docs) and len({d.link for d in docs}) == len(docs)
    assert {d.category for d in docs} == {c.value for c in Category}
    assert len({d.author for d in docs}) >= 4
    assert len({q.id for q in questions}) == len(questions)
    for q in questions:
        assert q.sources and set(q.sources) <= keys, q.id
        assert set(q.filters) <= {"author", "category", "platform", "date_from", "date_to"}
    # Every document answers some question, except the distractors (d*), which exist only
    # to sit close to other documents' topics.
    answered = {k for q in questions for k in q.sources}
    assert {k for k in keys - answered if not k.startswith("d")} == set()
    assert len([k for k in keys if k.startswith("d")]) >= 10

    assert score_ranking(["a", "b", "c"], ["b"], k=5) == {"recall": 1.0, "rr": 0.5, "hit": 1.0}
    assert score_ranking(["a", "b"], ["b", "z"], k=1) == {"recall": 0.0, "rr": 0.0, "hit": 0.0}


@pytest.mark.slow
def test_run_retrieval_eval_default(data_dir):
    from evals.retrieval import run_retrieval_eval
    from retrievers.search import DEFAULT_VARIANT

    result = run_retrieval_eval()
    assert {"recall@5", "mrr", "n_questions", "variant", "latency_ms_p50"} <= set(result)
    assert result["n_questions"] >= 60
    assert result["variant"] == DEFAULT_VARIANT
    # Measured 0.9+ recall@5 / 0.8+ MRR for the default (benchmarks/rerank_choice.py);
    # leave headroom for encoder numerics on other CPUs.
    assert result["recall@5"] >= 0.85, result
    assert result["mrr"] >= 0.75, result
    assert result["latency_ms_p50"] > 0
