"""`python -m finetune twin`: too little writing is refused before any training, with how
much more is needed; on a small corpus the journey runs end to end with real components
(dataset → 2 LoRA steps → GGUF → the real gate → promotion as the gate says → a before/after
report), printing progress lines into a captured (non-terminal) output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from finetune import demo_corpus

AUTHOR = demo_corpus.AUTHOR
BASE = "offline:SmolLM2-135M-Instruct"


def _seed(docs: list) -> None:
    from retrievers.store import close_qdrant_client, get_qdrant_client

    demo_corpus.seed_cleaned(get_qdrant_client(), docs)
    close_qdrant_client()


def test_too_little_writing_is_refused_before_training(data_dir: Path, capsys) -> None:
    from evals import journey
    from finetune.__main__ import main

    _seed(demo_corpus.corpus()[:1])  # one article
    assert main(["twin", "--author", AUTHOR, "--base-model", BASE]) == 2
    err = capsys.readouterr().err
    words = journey.count_writing(AUTHOR).words
    assert f"{AUTHOR} has {words:,} words in 1 document;" in err
    assert f"at least {journey.MIN_WORDS:,} words in {journey.MIN_DOCUMENTS} documents" in err
    assert "more words" in err and f"{journey.MIN_DOCUMENTS - 1} more documents" in err
    # Nothing was built, trained or registered.
    assert not (data_dir / "datasets").exists() and not (data_dir / "registry").exists()

    assert main(["twin", "--author", AUTHOR, "--json"]) == 2
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "not-enough-writing"
    assert result["counts"] == {"author": AUTHOR, "documents": 1, "words": words}


@pytest.mark.parametrize("flag", ["--budget-minutes", "--max-minutes"])
def test_a_budget_must_be_minutes(flag: str, capsys) -> None:
    from finetune.__main__ import main

    for bad in ("-5", "soon", "nan"):
        with pytest.raises(SystemExit) as exit_info:
            main(["twin", "--author", AUTHOR, flag, bad])
        assert exit_info.value.code == 2
        assert f"{flag}: not a number of minutes ≥ 0: '{bad}'" in capsys.readouterr().err


def test_shortfall_messages_name_what_is_missing() -> None:
    from evals.journey import MIN_DOCUMENTS, MIN_WORDS, Writing, writing_shortfall

    assert writing_shortfall(Writing("A", MIN_DOCUMENTS, MIN_WORDS)) is None
    message = writing_shortfall(Writing("Maya Lindqvist", 3, 1_240))
    assert message is not None and message.startswith(
        "Maya Lindqvist has 1,240 words in 3 documents; a twin needs at least 5,000 words in "
        "5 documents: add about 3,800 more words and 2 more documents"
    )
    only_docs = writing_shortfall(Writing("B", 2, 9_000))
    assert only_docs is not None and "add 3 more documents" in only_docs
    assert "more words" not in only_docs


def test_too_few_pairs_after_the_filters_say_how_much_more() -> None:
    from evals.journey import MIN_TRAIN_PAIRS, Writing, pairs_shortfall

    writing = Writing("C", 6, 6_000)
    assert pairs_shortfall(writing, {"train": MIN_TRAIN_PAIRS, "test": 3}) is None
    message = pairs_shortfall(writing, {"train": 5, "test": 0, "filtered": {"language": 9}})
    assert message is not None
    assert message.startswith("C's 6,000 words gave 5 training and 0 held-out pairs")
    assert "'language': 9" in message and "add about" in message and "more words" in message


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_journey_end_to_end(data_dir: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.registry import get_registry
    from core.settings import reset_settings
    from evals import journey
    from finetune.__main__ import main

    # The fixture corpus (~1,000 words) is below the real minimums: lower them for this test.
    monkeypatch.setattr(journey, "MIN_WORDS", 500)
    monkeypatch.setattr(journey, "MIN_DOCUMENTS", 3)
    monkeypatch.setattr(journey, "MIN_TRAIN_PAIRS", 3)
    # The gate's voice + answer checks, no RAG graph; short answers; the small model is both
    # trained and served (the gate's reference), so CI never loads the 0.5B default in torch.
    monkeypatch.setenv("EVALS_GATE_RAG_LIMIT", "0")
    monkeypatch.setenv("EVALS_GATE_ANSWER_MAX_TOKENS", "24")
    # Three gate answers: exactly the report's three requests, which it then reuses.
    monkeypatch.setenv("EVALS_GATE_ANSWER_LIMIT", "3")
    monkeypatch.setenv("EVALS_GATE_PASSAGE_LIMIT", "4")
    monkeypatch.setenv("LLM_MODEL", BASE)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    reset_settings()
    _seed(demo_corpus.corpus(n_topics=2))

    # --max-minutes would stop the loop at once; the journey's budget replaces it.
    args = ["twin", "--author", AUTHOR, "--base-model", BASE, "--max-steps", "2",
            "--max-minutes", "0.001", "--seq-len", "128", "--batch-size", "2",
            "--lr", "1e-3"]  # fmt: skip
    code = main([*args, "--json"])
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert code == (0 if result["promoted"] else 1)
    assert result["instructions"] == "template"  # the default: no generator run

    # Progress: a line per stage, step and export part, each with the journey's clock.
    err = captured.err
    for stage in ("[1/4] dataset", "[2/4] training", "[3/4] gate", "[4/4] report"):
        assert stage in err
    assert "[2/4] training … step 2/2, loss" in err
    assert "export: GGUF Q8_0" in err
    assert "elapsed, ~" in err and "left" in err
    assert "up to 2 steps (" in err and "of the 18-minute budget) of LoRA" in err
    # The gate measures the held-out perplexity that decides: no scoring around the loop.
    assert "score base" not in err and "score tuned" not in err
    assert not any(k.startswith("eval") for k in result["training"])
    assert result["budget_minutes"] == 18
    assert "\r" not in err  # not a terminal: whole lines, no bar redraws
    assert "Warning" not in err  # no library deprecation notices between the lines

    # A registry version, promoted exactly when the gate said so.
    version = result["version"]
    registry = get_registry()
    assert registry.get("twin", version).artifact("gguf").exists()
    assert result["gate"]["reasons"]
    assert result["gate"]["promote"] is result["promoted"]
    tags = registry.tags("twin")
    assert (tags.get("accepted") == version) is result["promoted"]
    if not result["promoted"]:  # refused: kept as the candidate
        assert tags.get("candidate") == version

    # The before/after report, as JSON and Markdown under DATA_DIR/reports.
    report_json = Path(result["report"]["json"])
    assert report_json.parent == data_dir / "reports"
    report = json.loads(report_json.read_text("utf-8"))
    assert len(report["pairs"]) == 3
    for pair in report["pairs"]:
        assert pair["request"] and pair["author_text"]
        assert isinstance(pair["before"], str) and isinstance(pair["after"], str)
    assert report["before"]["ref"] == BASE and report["candidate"] == f"registry:twin@{version}"
    # The gate answered exactly these requests: the report shows its answers, whole.
    assert result["caches"]["after_answers_reused"] == 3
    assert result["caches"]["before_answers_reused"] == 3
    markdown = Path(result["report"]["markdown"]).read_text("utf-8")
    assert markdown.count("**Before**") == 3 and markdown.count("**After**") == 3

    # A second journey on unchanged writing reuses the dataset and the served model's answers
    # (LLM_MODEL names a model outside the registry: promoted or not, the same model serves).
    code = main(args)
    captured = capsys.readouterr()
    assert "reused (documents unchanged)" in captured.err
    assert "report: " in captured.out and "Request 1:" in captured.out
    second = json.loads(sorted((data_dir / "reports").glob("twin-*.json"))[-1].read_text())
    assert second["caches"]["dataset_reused"] is True
    assert second["stage_seconds"]["training"] > 0
    assert second["caches"]["before_answers_reused"] == 3
    assert second["before"]["ref"] == BASE


def test_journey_progress_estimates_the_whole_journey() -> None:
    """The time left counts every stage still ahead, uses the measured step speed while
    training, and reaches zero at the end; on a terminal the step line rewrites itself."""
    import io

    from evals.journey_progress import PRIORS, JourneyProgress

    gate = PRIORS["per_gate_unit"] * (32 + 2 * 8)  # the defaults: 32 passages, 8 answers
    out = io.StringIO()
    ui = JourneyProgress(dict(PRIORS), max_steps=10, max_minutes=0, file=out, tty=True)
    ui.passages = 10
    whole = ui.left()
    assert whole == pytest.approx(
        10 * PRIORS["per_passage"]
        + 10 * PRIORS["per_step"]
        + gate
        + PRIORS["report"]
        + sum(PRIORS[p] for p in ("load base", "export"))
    )
    ui.begin("dataset", "10 passages")
    ui.end("built")
    ui.begin("training", "10 steps")
    ui.train_event({"event": "stage", "stage": "fine-tune", "state": "start"})
    ui.train_event({"event": "step", "step": 5, "total": 10, "loss": 1.0, "seconds": 5.0,
                    "eta": 5.0})  # fmt: skip
    left = ui.left()
    assert left == pytest.approx(5.0 + PRIORS["export"] + gate + PRIORS["report"])
    assert "\r\x1b[K[2/4] training … step 5/10, loss 1.0000" in out.getvalue()
    for stage in ("gate", "report"):
        ui.begin(stage, "…")
        ui.end("done")
    # Remembered per unit of gate work, so the next journey's estimate follows its own size.
    assert ui.measured["per_gate_unit"] == pytest.approx(ui.seconds["gate"] / 48)
    assert ui.left() == 0.0
    assert out.getvalue().endswith("~0 s left\n")


def test_the_budget_sizes_the_training_loop() -> None:
    """`--budget-minutes`: the LoRA loop gets what the estimates of every other part leave of
    the budget, and the step count shown follows; a budget too small for the fewest steps
    still trains them and says the journey runs over."""
    import io

    from evals.journey_progress import PRIORS, JourneyProgress, gate_units

    per_step = PRIORS["per_step"]
    ui = JourneyProgress(dict(PRIORS), max_steps=60, max_minutes=0, file=io.StringIO(), tty=False)
    # The gate's share follows the held-out set: 6 pairs are 6 scorings and 6 answers.
    ui.gate_units = gate_units(6, passage_limit=32, answer_limit=8)
    assert ui.gate_units == 18 and gate_units(76, 32, 8) == 48
    gate = PRIORS["per_gate_unit"] * 18
    others = PRIORS["load base"] + PRIORS["export"] + gate + PRIORS["report"]
    ui.passages = 10
    ui.begin("dataset", "10 passages")
    ui.end("built")
    spent = ui.left()  # everything ahead, with the 60 planned steps
    assert spent == pytest.approx(others + 60 * per_step)

    loop, over = ui.training_budget(others + 20.5 * per_step, min_steps=10)
    assert not over and loop == pytest.approx(20.5 * per_step, abs=1.0)
    assert ui.steps == 20

    loop, over = ui.training_budget(others + 3 * per_step, min_steps=10)
    assert over and loop == pytest.approx(10 * per_step)
    assert ui.steps == 10

    # Timings measured on this machine replace the first-run priors.
    fast = JourneyProgress({**PRIORS, "per_step": 5.0, "per_gate_unit": 5.0}, max_steps=60,
                           max_minutes=0, file=io.StringIO(), tty=False)  # fmt: skip
    fast.gate_units = 18
    fast.begin("dataset", "…")
    fast.end("built")
    loop, over = fast.training_budget(18 * 60, min_steps=10)
    assert not over and fast.steps == 60
    assert loop == pytest.approx(18 * 60 - (others - gate + 5.0 * 18), abs=1.0)


def test_the_report_says_when_the_budget_cut_the_recipe() -> None:
    from evals.journey_report import budget_note

    report = {
        "budget_minutes": 18.0,
        "seconds": 1000.0,
        "training": {"train/steps": 14.0, "train/planned_steps": 60.0, "train/seconds": 448.0},
    }
    # 46 more steps at 32 s: 1000 + 1472 s, about 41.2 minutes.
    assert budget_note(report) == (
        "training: 14 of the recipe's 60 LoRA steps fit the 18-minute budget on this machine "
        "(32 s a step); `--budget-minutes 42` trains them all"
    )
    report["training"]["train/steps"] = 60.0
    assert budget_note(report) is None
    assert budget_note({**report, "budget_minutes": 0}) is None
