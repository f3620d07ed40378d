"""Voice (perplexity + style), the judge, the RAG eval and the `python -m evals` CLI, with the
real offline model on tiny data."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.evals_fixtures import (
    AUTHOR,
    BASE_REF,
    PASSAGES,
    register_version,
    write_instruct_dataset,
    write_passages_file,
)

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- style


def test_style_stats_and_distance() -> None:
    from evals.style import style_distance, style_stats

    author = style_stats([a for _, a in PASSAGES])
    assert author["n_words"] > 50
    assert 5 < author["sentence_length_mean"] < 40
    assert 0 < author["type_token_ratio"] <= 1
    assert author["colon_per_100_words"] > 0
    markdown = style_stats("# Title\n\n- one 🚀\n- two!\n- three?\n")
    assert markdown["heading_rate"] > 0 and markdown["list_rate"] > 0
    assert markdown["emoji_per_100_words"] > 0
    same = style_distance(author, author)
    assert same == {"features": 0.0, "function_words": 0.0, "overall": 0.0}
    assert style_distance(markdown, author)["overall"] > 0.2


# --------------------------------------------------------------------------- perplexity


@pytest.mark.slow
def test_perplexity_finite_and_equal_for_the_base_itself(data_dir: Path, tmp_path: Path) -> None:
    from evals.voice import run_voice_eval

    report = run_voice_eval(
        author=AUTHOR,
        candidate=BASE_REF,
        base=BASE_REF,  # the small model as both (the default base is the 0.5B one)
        passages_file=write_passages_file(tmp_path / "passages.jsonl"),
        n_samples=0,
    )
    assert report["n_passages"] == len(PASSAGES)
    assert report["n_tokens"] > 50
    for key in ("base_perplexity", "candidate_perplexity"):
        assert math.isfinite(report[key]) and report[key] > 1
    assert report["base_perplexity"] == report["candidate_perplexity"]
    assert report["relative_drop"] == 0.0
    assert report["raw_perplexity"]["base"] == report["raw_perplexity"]["candidate"]


@pytest.mark.slow
def test_worse_model_ranks_worse(data_dir: Path, perturbed_model: Path) -> None:
    from evals.voice import Passage, model_perplexities

    passages = [Passage(answer=a, instruction=i) for i, a in PASSAGES]
    base = model_perplexities(BASE_REF, passages, AUTHOR)
    worse = model_perplexities(str(perturbed_model), passages, AUTHOR)
    assert math.isfinite(worse["template"]) and math.isfinite(worse["raw"])
    assert worse["template"] > base["template"] * 1.5
    assert worse["raw"] > base["raw"] * 1.5
    # Template perplexity scores the answer tokens only: the prompt adds context, no tokens.
    assert base["template_tokens"] == pytest.approx(base["raw_tokens"], abs=len(passages) * 3)


@pytest.mark.slow
def test_voice_cli_json_from_dataset_and_registry(data_dir: Path) -> None:
    from core.models import resolve_llm_path

    write_instruct_dataset(data_dir)
    register_version("twin", "v1", resolve_llm_path(BASE_REF), tag="candidate")
    env = {**os.environ, "DATA_DIR": str(data_dir)}
    proc = subprocess.run(
        [sys.executable, "-m", "evals", "voice", "--author", AUTHOR, "--json"]
        + ["--samples", "1", "--max-new-tokens", "12"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert isinstance(report["base_perplexity"], float)
    assert isinstance(report["candidate_perplexity"], float)
    assert report["candidate"] == "registry:twin@v1"
    assert report["n_passages"] == len(PASSAGES)
    assert report["passages_source"] == "dataset:ds-test-1"
    assert report["production_perplexity"] is None  # nothing accepted yet
    assert set(report["style"]) >= {"reference", "candidate", "n_samples"}
    assert len(report["style"]["candidate"]["samples"]) == 1
    assert Path(report["recorded"]["report_path"]).exists()


def test_voice_cli_clear_error_without_candidate(data_dir: Path) -> None:
    env = {**os.environ, "DATA_DIR": str(data_dir)}
    proc = subprocess.run(
        [sys.executable, "-m", "evals", "voice", "--author", AUTHOR, "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert "no candidate or accepted version" in proc.stderr
    assert "Traceback" not in proc.stderr


# --------------------------------------------------------------------------- judge


class _GarbageLLM:
    name = "garbage"

    def render(self, messages: list[dict[str, str]]) -> str:
        return "\n".join(m["content"] for m in messages)

    def generate(self, prompt: object, max_new_tokens: int | None = None, stop=None) -> str:
        return "I think it is fine, really nice answer"


def test_weak_judge_parse_failure_is_unscored() -> None:
    from opik.evaluation.metrics import AnswerRelevance, Hallucination

    from evals.judge import TwinJudgeModel, score_metric

    judge = TwinJudgeModel(_GarbageLLM(), "local-weak", prefill_json=True, max_new_tokens=8)
    for metric in (
        Hallucination(model=judge, track=False),
        AnswerRelevance(model=judge, track=False),
    ):
        result = score_metric(metric, input="What is HNSW?", output="A graph.", context=["HNSW"])
        assert result["value"] is None
        assert result["reason"].startswith("unscored")
    assert judge.calls == 2


# --------------------------------------------------------------------------- RAG


@pytest.mark.slow
def test_rag_eval_runs_the_graph_with_opik_metrics(data_dir: Path) -> None:
    """The graph answers and the real local judge scores both Opik metrics: the judge's one
    real-model test (each judge prompt is ~2k tokens, 4-7 s on 2 cores)."""
    from evals.rag import run_rag_eval

    # Two passages: the judge reads them all, and its prompt dominates the run.
    report = run_rag_eval(limit=1, k=2, model=BASE_REF, max_new_tokens=16)
    assert report["judge"] == "local-weak"
    assert report["n_questions"] == 1
    assert 0.0 <= report["recall@k"] <= 1.0 and 0.0 <= report["mrr"] <= 1.0
    assert report["recall@k"] > 0  # the retriever finds known sources
    for name in ("faithfulness", "answer_relevance"):
        assert report["scored"][name] + report["unscored"][name] == 1
        assert report[name] is None or 0.0 <= report[name] <= 1.0
    item = report["items"][0]
    assert item["answer"] and item["retrieved"]
    # The temporary store is gone and the settings are back.
    from core.settings import get_settings

    assert get_settings().DATA_DIR == data_dir
