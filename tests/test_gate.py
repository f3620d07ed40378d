"""The promotion gate with real models: a candidate must beat what is served now (and its own
base); a worse one is refused, a better one promoted, and every decision says why.

The served model here is the small offline SmolLM2 (`LLM_MODEL`), so that no test needs the
0.5B default in torch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.evals_fixtures import (
    BASE_REF,
    make_perturbed_model,
    register_version,
    write_instruct_dataset,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def base_dir(data_dir: Path) -> Path:
    from core.models import resolve_llm_path

    return Path(resolve_llm_path(BASE_REF))


@pytest.fixture
def served_smollm2(monkeypatch: pytest.MonkeyPatch) -> str:
    from core.settings import reset_settings

    monkeypatch.setenv("LLM_MODEL", BASE_REF)
    reset_settings()
    return BASE_REF


def test_served_reference_is_what_answers_now(data_dir: Path, base_dir: Path, monkeypatch) -> None:
    from core.settings import OFFLINE_LLM_FALLBACK, reset_settings
    from evals.gate import served_reference

    # Nothing accepted yet: the default LLM_MODEL (registry:twin@accepted) serves the fallback.
    assert served_reference("twin") == (OFFLINE_LLM_FALLBACK, "served default")
    register_version("twin", "v1", base_dir, tag="accepted")
    assert served_reference("twin") == ("registry:twin@v1", "production")
    monkeypatch.setenv("LLM_MODEL", BASE_REF)  # a model outside the registry is served
    reset_settings()
    assert served_reference("twin") == (BASE_REF, "served")


def test_worse_candidate_refused_against_the_served_model(
    data_dir: Path, perturbed_model: Path, served_smollm2: str
) -> None:
    from evals.gate import evaluate_candidate

    write_instruct_dataset(data_dir, "ds-1")
    register_version("twin", "v1", perturbed_model, dataset_version="ds-1")
    result = evaluate_candidate("twin", "v1", rag_limit=0)
    assert result["promote"] is False
    assert result["reference_role"] == "served" and result["reference"] == BASE_REF
    voice = result["metrics"]["voice"]
    assert voice["candidate_perplexity"] > voice["served_perplexity"]
    assert voice["token_perplexity"]["candidate"] > voice["token_perplexity"]["base"]
    assert voice["passages_source"] == "dataset:ds-1"
    assert any("does not beat served" in r for r in result["reasons"])
    assert any("answer check skipped" in r for r in result["reasons"])
    # Recorded: JSON report and a run in the experiment tracker.
    report = json.loads(Path(result["recorded"]["report_path"]).read_text())
    assert report["promote"] is False and report["version"] == "v1"


def test_better_candidate_promoted_over_production(
    data_dir: Path, perturbed_model: Path, base_dir: Path, monkeypatch
) -> None:
    from evals.gate import evaluate_candidate

    monkeypatch.setenv("EVALS_GATE_ANSWER_MAX_TOKENS", "48")
    from core.settings import reset_settings

    reset_settings()
    write_instruct_dataset(data_dir, "ds-1")
    register_version("twin", "v1", perturbed_model, tag="accepted", dataset_version="ds-1")
    register_version(
        "twin", "v2", base_dir, dataset_version="ds-1", base_model=str(perturbed_model)
    )
    result = evaluate_candidate("twin", "v2", rag_limit=1, answer_limit=2)
    assert result["reference_role"] == "production"
    assert result["reference"] == "registry:twin@v1"
    assert result["metrics"]["voice"]["relative_improvement"] > 0.2
    assert result["metrics"]["voice"]["relative_improvement_vs_base"] > 0.2
    answers = result["metrics"]["answers"]
    assert len(answers["candidate"]["answers"]) == 2 and answers["production"]["answers"]
    assert any(r.startswith("answers: ") and "(ok;" in r for r in result["reasons"])
    rag = result["metrics"]["rag"]
    assert set(rag) == {"candidate", "reference"}
    assert any(r.startswith("RAG recall@k") for r in result["reasons"])
    assert result["promote"] is True, result["reasons"]
    assert result["reasons"][0].startswith("PROMOTE twin@v2")


def test_beating_its_own_base_is_not_enough(
    data_dir: Path, perturbed_model: Path, tmp_path: Path, served_smollm2: str
) -> None:
    """A fine-tuned model that improves on its (weak) base but writes worse than the model
    served now would make the twin worse: refused."""
    from evals.gate import evaluate_candidate
    from tests.support.evals_fixtures import write_passages_file

    slightly_worse = make_perturbed_model(tmp_path / "slightly-worse", scale=0.05, seed=1)
    passages = write_passages_file(tmp_path / "p.jsonl")
    register_version("twin", "v1", slightly_worse, base_model=str(perturbed_model))
    result = evaluate_candidate("twin", "v1", rag_limit=0, passages_file=passages, record=False)
    voice = result["metrics"]["voice"]
    assert voice["relative_improvement_vs_base"] > 0 > voice["relative_improvement"]
    assert result["promote"] is False
    assert any("beats base" in r for r in result["reasons"])
    assert any("does not beat served" in r for r in result["reasons"])


def test_no_improvement_and_threshold_refuse(
    data_dir: Path, base_dir: Path, tmp_path: Path, served_smollm2: str
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
    from core.settings import reset_settings

    reset_settings()
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


def _summary(**values: float) -> dict:
    base = {"n": 8, "degenerate_share": 0.0, "copy_8gram_share_median": 0.0,
            "copy_longest_span_median": 4, "chrome_answer_share": 0.0, "invented_share": 0.25,
            "delta_own": 0.5, "mangled_share": 0.0}  # fmt: skip
    return {**base, **values}


@pytest.mark.parametrize(
    ("candidate", "failing_rule"),
    [
        (_summary(), None),
        (_summary(degenerate_share=0.25), "answers:"),
        (_summary(copy_8gram_share_median=0.6, copy_longest_span_median=80), "copying:"),
        (_summary(copy_longest_span_median=40), "copying:"),
        (_summary(chrome_answer_share=0.125), "page chrome:"),
        (_summary(invented_share=0.5), "grounding:"),
        (_summary(delta_own=0.9), "style:"),
        (_summary(mangled_share=0.25), "words:"),
    ],
)
def test_the_gate_judges_answers_on_the_yardstick(candidate: dict, failing_rule: str | None) -> None:
    """Each yardstick rule refuses on its own; a twin that recites is refused with the reason."""
    from evals.gate_answers import judge

    gold = {"copy_8gram_share_median": 0.0}
    verdicts = judge(candidate, _summary(), gold, "served default", degenerate_tolerance=0.13)
    failed = [text for ok, text in verdicts if not ok]
    if failing_rule is None:
        assert not failed, failed
    else:
        assert len(failed) == 1 and failed[0].startswith(failing_rule), failed
    if failing_rule == "copying:":
        assert "recites its training text" in failed[0]


def test_gate_requests_are_spread_over_held_out_documents() -> None:
    from evals.gate_answers import spread_requests
    from evals.voice.held_out import Passage

    passages = [Passage(f"a{i}", document_id="a") for i in range(5)] + [
        Passage(f"b{i}", document_id="b") for i in range(2)
    ]
    picked = spread_requests(passages, 4)
    assert [p.answer for p in picked] == ["a0", "b0", "a1", "b1"]
