"""The promotion gate with real models: a worse candidate is refused, a better one promoted,
and every decision says why."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.support.evals_fixtures import (
    BASE_REF,
    make_perturbed_model,
    register_version,
    write_instruct_dataset,
)

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def perturbed_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    os.environ.setdefault("MODELS_CACHE_DIR", str(ROOT / "data" / "models"))
    return make_perturbed_model(tmp_path_factory.mktemp("models") / "perturbed")


@pytest.fixture
def base_dir(data_dir: Path) -> Path:
    from core.models import resolve_llm_path

    return Path(resolve_llm_path(BASE_REF))


def test_worse_candidate_refused_against_base(data_dir: Path, perturbed_model: Path) -> None:
    from evals.gate import evaluate_candidate

    write_instruct_dataset(data_dir, "ds-1")
    register_version("twin", "v1", perturbed_model, dataset_version="ds-1")
    result = evaluate_candidate("twin", "v1", rag_limit=0)
    assert result["promote"] is False
    assert result["reference_role"] == "base"
    voice = result["metrics"]["voice"]
    assert voice["candidate_perplexity"] > voice["base_perplexity"]
    assert voice["passages_source"] == "dataset:ds-1"
    assert any("does not beat base" in r for r in result["reasons"])
    # Recorded: JSON report and a run in the experiment tracker.
    report = json.loads(Path(result["recorded"]["report_path"]).read_text())
    assert report["promote"] is False and report["version"] == "v1"


def test_better_candidate_promoted_over_production(
    data_dir: Path, perturbed_model: Path, base_dir: Path
) -> None:
    from evals.gate import evaluate_candidate

    write_instruct_dataset(data_dir, "ds-1")
    register_version("twin", "v1", perturbed_model, tag="accepted", dataset_version="ds-1")
    register_version("twin", "v2", base_dir, tag="candidate", dataset_version="ds-1")
    result = evaluate_candidate("twin", "v2", rag_limit=1)
    assert result["reference_role"] == "production"
    assert result["reference"] == "registry:twin@v1"
    assert result["metrics"]["voice"]["relative_improvement"] > 0.2
    rag = result["metrics"]["rag"]
    assert set(rag) == {"candidate", "reference"}
    assert any(r.startswith("RAG recall@k") for r in result["reasons"])
    assert result["promote"] is True, result["reasons"]
    assert result["reasons"][0].startswith("PROMOTE twin@v2")


def test_no_improvement_and_threshold_refuse(
    data_dir: Path, base_dir: Path, tmp_path: Path
) -> None:
    from evals.gate import evaluate_candidate
    from tests.support.evals_fixtures import write_passages_file

    passages = write_passages_file(tmp_path / "p.jsonl")
    register_version("twin", "v1", base_dir)  # the base model itself: no improvement
    same = evaluate_candidate("twin", "v1", rag_limit=0, passages_file=passages, record=False)
    assert same["promote"] is False
    assert same["metrics"]["voice"]["relative_improvement"] == 0.0


def test_perplexity_threshold_is_configurable(
    data_dir: Path, perturbed_model: Path, base_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    from evals.gate import evaluate_candidate
    from tests.support.evals_fixtures import write_passages_file

    passages = write_passages_file(tmp_path / "p.jsonl")
    register_version("twin", "v1", perturbed_model, tag="accepted")
    register_version("twin", "v2", base_dir)
    monkeypatch.setenv("EVALS_GATE_MIN_IMPROVEMENT", "0.9999")  # demand the impossible
    result = evaluate_candidate("twin", "v2", rag_limit=0, passages_file=passages, record=False)
    assert result["promote"] is False
    assert result["thresholds"]["min_improvement"] == 0.9999
    assert any("required ≥ 99.99%" in r for r in result["reasons"])


def test_unknown_version_and_already_accepted(data_dir: Path, base_dir: Path) -> None:
    from evals.gate import evaluate_candidate

    missing = evaluate_candidate("twin", "nope", record=False)
    assert missing["promote"] is False and "no version 'nope'" in missing["reasons"][0]
    register_version("twin", "v1", base_dir, tag="accepted")
    again = evaluate_candidate("twin", "v1", record=False)
    assert again["promote"] is False and "already the accepted" in again["reasons"][0]


def test_rag_regression_refuses() -> None:
    from evals.gate import _compare_rag

    ok, reasons = _compare_rag(
        {"recall@k": 0.5, "mrr": 0.5, "judge": "none"},
        {"recall@k": 0.8, "mrr": 0.52, "judge": "none"},
        tolerance=0.05,
    )
    assert ok is False
    assert any("recall@k regressed" in r for r in reasons)
    assert any("mrr ok" in r for r in reasons)
