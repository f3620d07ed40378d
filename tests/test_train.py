"""LoRA SFT end to end on a tiny corpus with the offline model: loss, tracker, registry,
merge/int8/GGUF exports, train/serve prompt parity, the real gate, DPO and watch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from finetune import demo_corpus

AUTHOR = demo_corpus.AUTHOR
BASE = "offline:SmolLM2-135M-Instruct"
# One module-scoped training run feeds every test; on a loaded 2-core machine its setup
# (train + merge + int8 + GGUF) can pass the suite's default 900 s timeout.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One CLI-driven build + 6-step LoRA run shared by this module's tests."""
    from conftest import SHARED_MODELS_CACHE

    from core.settings import reset_settings
    from finetune.cli import main
    from retrievers.store import close_qdrant_client, get_qdrant_client

    root = tmp_path_factory.mktemp("train")
    with pytest.MonkeyPatch.context() as mp:
        for var in ("LLM_BASE_URL", "QDRANT_URL", "MLFLOW_TRACKING_URI"):
            mp.delenv(var, raising=False)
        mp.setenv("DATA_DIR", str(root / "data"))
        mp.setenv("MODELS_CACHE_DIR", str(SHARED_MODELS_CACHE))
        mp.setenv("EVALS_GATE_RAG_LIMIT", "0")  # the gate's voice + answer checks: no RAG graph
        mp.setenv("EVALS_GATE_ANSWER_LIMIT", "2")
        mp.setenv("EVALS_GATE_ANSWER_MAX_TOKENS", "48")
        # The small model is both trained here and served (the gate's reference), so that CI
        # never loads the 0.5B default in torch.
        mp.setenv("LLM_MODEL", BASE)
        close_qdrant_client()
        reset_settings()
        demo_corpus.seed_cleaned(get_qdrant_client(), demo_corpus.corpus(n_topics=2))
        import io
        from contextlib import redirect_stderr, redirect_stdout

        out = io.StringIO()
        with redirect_stdout(out):
            assert main(["dataset", "build", "--author", AUTHOR, "--no-llm", "--json"]) == 0
        built = json.loads(out.getvalue())
        out, err = io.StringIO(), io.StringIO()  # not terminals: progress comes as lines
        with redirect_stdout(out), redirect_stderr(err):
            code = main(
                ["train", "--author", AUTHOR, "--base-model", BASE, "--max-steps", "6",
                 "--seq-len", "128", "--batch-size", "2", "--lr", "1e-3", "--json"]
            )  # fmt: skip
        assert code == 0
        result = json.loads(out.getvalue())
        result["dataset"] = built["instruct"]
        result["progress"] = err.getvalue()
        yield result
        close_qdrant_client()
        reset_settings()


def test_training_reduces_loss(trained):
    metrics = trained["metrics"]
    assert metrics["train/perplexity"] < metrics["train/base_perplexity"]
    assert metrics["eval/perplexity"] < metrics["eval/base_perplexity"]
    # The raw-text objective: the held-out documents themselves got less surprising.
    assert metrics["eval_documents/perplexity"] < metrics["eval_documents/base_perplexity"]
    assert metrics["eval_documents/documents"] >= 1
    assert metrics["train/steps"] == 6 and metrics["train/stopped_at_budget"] == 0
    assert metrics["train/tokens_per_s"] > 0 and metrics["train/steps_per_s"] > 0
    assert trained["dataset_version"] == trained["dataset"]["version"]


def test_train_prints_progress_lines_off_a_terminal(trained):
    """`finetune train` into a log: a line per stage and per step (6 steps: each one, since a
    line comes every 5% of the steps), each step with its loss and time left; no bar."""
    lines = trained["progress"].splitlines()
    steps = [line for line in lines if line.startswith("train: step ")]
    assert [line.split(",")[0] for line in steps] == [f"train: step {n}/6" for n in range(1, 7)]
    assert all(" loss " in line and "elapsed, ~" in line and "left" in line for line in steps)
    for stage in ("load base", "score base", "fine-tune", "score tuned", "export"):
        assert any(line.startswith(f"train: {stage} …") for line in lines), stage
        assert any(line.startswith(f"train: {stage} done in ") for line in lines), stage
    assert any(line.startswith("export: GGUF Q8_0 written in ") for line in lines)
    assert "\r" not in trained["progress"]
    # The JSON result on stdout stays clean of progress.
    assert trained["metrics"]["train/steps"] == 6


def test_train_console_on_a_terminal_draws_a_bar():
    import io

    from finetune.sft import TrainConsole

    out = io.StringIO()
    console = TrainConsole(file=out, tty=True)
    console({"event": "stage", "stage": "fine-tune", "state": "start"})
    for step in (1, 2, 3):
        console({"event": "step", "step": step, "total": 3, "loss": 1.0 / step,
                 "seconds": step * 2.0, "eta": (3 - step) * 2.0})  # fmt: skip
    console({"event": "stage", "stage": "fine-tune", "state": "end", "seconds": 6.0})
    text = out.getvalue()
    assert "\r" in text and "3/3" in text and "loss=0.3333" in text
    assert "train: fine-tune done in 6 s" in text


def test_train_console_in_a_log_throttles_long_runs():
    import io

    from finetune.sft import TrainConsole

    out = io.StringIO()
    console = TrainConsole(file=out, tty=False)
    for step in range(1, 201):
        console({"event": "step", "step": step, "total": 200, "loss": 2.0,
                 "seconds": 0.0, "eta": 0.0})  # fmt: skip
    steps = [line for line in out.getvalue().splitlines() if line.startswith("train: step ")]
    assert len(steps) == 21  # the first step, then every 5% of 200 steps
    assert steps[0].startswith("train: step 1/200") and steps[-1].startswith("train: step 200/")


def test_tracker_holds_the_run(trained):
    from finetune.tracking import get_run

    run = get_run(trained["run_id"])
    assert run["status"] == "FINISHED"
    assert run["params"]["dataset_version"] == trained["dataset_version"]
    assert run["params"]["max_steps"] == "6"
    assert [step for step, _ in run["history"]["train/loss"]] == list(range(1, 7))
    assert run["metrics"]["eval/base_perplexity"] == pytest.approx(
        trained["metrics"]["eval/base_perplexity"]
    )
    assert run["tags"]["registry_version"] == trained["version"]
    assert {"adapter", "manifest.json"} <= set(run["artifacts"])


def test_registry_version_and_exports(trained):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from core.models import load_causal_lm, resolve_llm_path
    from core.registry import get_registry
    from finetune.export import load_int8

    registry = get_registry()
    version = registry.resolve("registry:twin@candidate")
    assert version.version == trained["version"]
    manifest = version.manifest
    assert manifest["dataset_version"] == trained["dataset_version"]
    assert manifest["base_model"] == "offline:SmolLM2-135M-Instruct"
    assert manifest["tracking"]["run_id"] == trained["run_id"]
    assert "accepted" not in registry.tags("twin")

    # Adapter saves/loads/merges: merged logits match base+adapter logits.
    assert manifest["metrics"]["export/merge_max_abs_diff"] < 1e-3
    merged, tokenizer = load_causal_lm(str(version.artifact("merged")))
    base = AutoModelForCausalLM.from_pretrained(
        resolve_llm_path("offline:SmolLM2-135M-Instruct"), dtype=torch.float32
    )
    with_adapter = PeftModel.from_pretrained(base, str(version.artifact("adapter"))).eval()
    enc = tokenizer("Here is the thing about retries", return_tensors="pt")
    with torch.no_grad():
        diff = (with_adapter(**enc).logits - merged(**enc).logits).abs().max().item()
    assert diff < 1e-3

    # The int8 export rebuilds without retraining and generates text.
    assert version.artifact("int8").exists()
    model, tok = load_int8(version.artifact("quantized"))
    out = model.generate(**enc, max_new_tokens=8, do_sample=False)
    assert tok.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True).strip()

    # GGUF quantized by llama.cpp (Q8_0): llama.cpp, the runtime that serves it, gives the
    # merged model's next-token picks. (Read back by transformers, it took 10 s to dequantize.)
    gguf = version.artifact("gguf")
    assert gguf and gguf.name == "model-Q8_0.gguf" and gguf.exists()
    assert not list(gguf.parent.glob("*f16*"))  # the f16 intermediate is gone
    from llama_cpp import Llama

    ids = enc["input_ids"][0].tolist()
    llama = Llama(model_path=str(gguf), n_ctx=64, n_threads=2, logits_all=True, verbose=False)
    llama.eval(ids)
    with torch.no_grad():
        picks = merged(**enc).logits[0].argmax(-1)
    gguf_picks = torch.tensor(llama.scores[: len(ids)]).argmax(-1)
    assert (picks == gguf_picks).float().mean() > 0.9


@pytest.mark.skipif(
    not __import__("core.llm", fromlist=["x"]).llamacpp_available(),
    reason="llama-cpp-python is not installed",
)
def test_the_default_runtime_serves_the_quantized_version(trained):
    """`get_llm` on the registry ref serves the version's own GGUF through llama.cpp."""
    from core.llm import get_llm
    from core.prompts import twin_messages
    from core.registry import get_registry

    version = get_registry().resolve("registry:twin@candidate")
    llm = get_llm(f"registry:twin@{version.version}")
    assert llm.backend == "llamacpp" and llm.version == version.version
    assert llm.gguf == version.artifact("gguf")
    answer = llm.generate(
        twin_messages("Write a post about retries.", "", AUTHOR), max_new_tokens=24, temperature=0
    )
    assert answer.strip()


def test_serving_prompt_equals_training_prompt(trained):
    from core.models import load_causal_lm
    from core.prompts import render_prompt, twin_messages
    from finetune.train_data import encode_example

    _, tokenizer = load_causal_lm("offline:SmolLM2-135M-Instruct")
    instruction = "Write a LinkedIn post about boring retries."
    answer = "Here is the thing: retries should be boring."
    item = encode_example(tokenizer, instruction, answer, "", AUTHOR, 512)
    serving = render_prompt(tokenizer, twin_messages(instruction, "", AUTHOR))
    serving_ids = tokenizer(serving, add_special_tokens=False)["input_ids"]
    n = len(serving_ids)
    assert item["input_ids"][:n] == serving_ids
    assert item["labels"][:n] == [-100] * n  # no loss on the prompt
    completion = tokenizer.decode(item["input_ids"][n:])
    assert completion == answer + tokenizer.eos_token
    assert item["labels"][n:] == item["input_ids"][n:]


def test_promote_runs_the_real_gate(trained):
    from core.registry import get_registry
    from evals.promotion import PromotionRefused, promote

    try:
        result = promote("twin", trained["version"])
    except PromotionRefused as exc:
        gate, promoted = exc.gate, False
    else:
        gate, promoted = result["gate"], True
    assert gate["reasons"]
    assert gate["promote"] is promoted
    tags = get_registry().tags("twin")
    assert (tags.get("accepted") == trained["version"]) is promoted
    if promoted:
        assert tags["history"][-1]["gate"]["promote"] is True
        assert tags["history"][-1]["forced"] is False


def test_dpo_on_preference_dataset(trained, monkeypatch):
    import datasets.fingerprint as fingerprint

    # `datasets` names each mapped dataset by dill-hashing the map function's closure, and
    # the DPO maps (ours and TRL's) close over the tokenizer: several seconds a hash on this
    # CPU. The names only key the on-disk map cache, which this one-off run never reuses;
    # random ones (what `datasets` itself falls back to when hashing fails) skip that cost.
    monkeypatch.setattr(
        fingerprint,
        "update_fingerprint",
        lambda *_, **__: fingerprint.generate_random_fingerprint(),
    )
    from finetune.passages import BuildParams
    from finetune.preferences import build_preference_dataset
    from finetune.tracking import get_run
    from finetune.train import TrainConfig, train

    pref = build_preference_dataset(AUTHOR, params=BuildParams(), use_llm=False)
    assert len(pref.load()["train"]) > 0
    result = train(
        TrainConfig(author=AUTHOR, method="dpo", base_model=BASE, max_steps=2, seq_len=128,
                    batch_size=2, learning_rate=1e-4, register=False, eval_max_examples=2)
    )  # fmt: skip
    assert result.dataset_version == pref.version
    assert len(result.losses) == 2
    run = get_run(result.run_id)
    assert run["status"] == "FINISHED" and run["params"]["method"] == "dpo"
    assert "train/loss" in run["history"]
    assert "eval/rewards_accuracies" in run["metrics"]


def test_watch_once_trains_gates_then_idles(trained, capsys):
    from finetune.__main__ import main

    # The small model, as everywhere in this module (the default base is the 0.5B Qwen).
    args = ["watch", "--once", "--no-llm", "--base-model", BASE, "--max-steps", "2",
            "--seq-len", "128", "--no-gguf", "--json"]  # fmt: skip
    capsys.readouterr()
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert [r["author"] for r in first] == [AUTHOR]
    assert first[0]["status"] in ("promoted", "refused")
    assert first[0]["gate"]["reasons"]
    assert main(args) == 0
    second = json.loads(capsys.readouterr().out)
    assert second[0]["status"] == "up-to-date"
    assert Path(trained["path"]).exists()


def test_train_help_names_the_model_it_tunes() -> None:
    """`finetune train --help` says which base the CPU default tunes (it once named a model
    that was no longer the default)."""
    from core.settings import OFFLINE_TRAIN_BASE
    from finetune.cli import TRAIN_EPILOG

    cpu_line = TRAIN_EPILOG.splitlines()[0]
    assert OFFLINE_TRAIN_BASE.removeprefix("offline:") in cpu_line
