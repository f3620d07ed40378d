"""Shared test setup: offline switches before any library import, one data dir per test."""

from __future__ import annotations

import os

for _key, _value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "DO_NOT_TRACK": "1",
    "UNSTRUCTURED_DISABLE_NOTICE": "1",
    "LANGSMITH_TRACING": "false",
    "OPIK_SENTRY_ENABLE": "false",
    "OPIK_TRACK_DISABLE": "true",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LANGGRAPH_NO_VERSION_CHECK": "true",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(_key, _value)

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

# Settings that a developer's shell or .env could set and that would leak into tests.
# A real MongoDB for the warehouse contract suite, when the environment provides one; other
# tests always get the embedded warehouse of their own DATA_DIR.
REAL_MONGODB_URI = os.environ.pop("MONGODB_URI", "")
SHARED_MODELS_CACHE = Path(__file__).resolve().parent.parent / "data" / "models"
_ISOLATED_VARS = ("MONGODB_URI", "QDRANT_URL", "QDRANT_API_KEY", "LLM_BASE_URL", "TWIN_API_KEY")


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh DATA_DIR for this test, with settings and the Qdrant client reset."""
    from core.settings import reset_settings
    from retrievers.store import close_qdrant_client

    for var in _ISOLATED_VARS:
        monkeypatch.delenv(var, raising=False)
    path = tmp_path / "data"
    monkeypatch.setenv("DATA_DIR", str(path))
    # Converted model weights are expensive to rebuild: share them across tests.
    monkeypatch.setenv("MODELS_CACHE_DIR", str(SHARED_MODELS_CACHE))
    close_qdrant_client()
    reset_settings()
    yield path
    close_qdrant_client()
    reset_settings()


@pytest.fixture(scope="session")
def perturbed_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The offline model with noise on its weights (`make_perturbed_model`): clearly worse.
    Built once for the session: the evals and gate tests only read it."""
    from tests.support.evals_fixtures import make_perturbed_model

    os.environ.setdefault("MODELS_CACHE_DIR", str(SHARED_MODELS_CACHE))
    return make_perturbed_model(tmp_path_factory.mktemp("models") / "perturbed")


@pytest.fixture(params=["llamacpp", "torch-fp32"])
def local_runtime(request: pytest.FixtureRequest) -> str:
    """Each local runtime that decodes with the answer checks: llama.cpp (skipped where it
    does not run on this CPU) and transformers in full precision, which decodes greedily
    alike on every CPU."""
    from core.llm import llamacpp_available

    if request.param == "llamacpp" and not llamacpp_available():
        pytest.skip("llama-cpp-python is not installed or does not run on this CPU")
    return request.param
