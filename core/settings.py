"""One settings object for every part of the twin, read from env and `.env` on first use."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_EMBEDDING_MODEL = "offline:all-MiniLM-L6-v2"
DEFAULT_LLM_MODEL = "registry:twin@accepted"
OFFLINE_QWEN = "offline:Qwen2.5-Coder-0.5B-Instruct"
OFFLINE_SMOLLM2 = "offline:SmolLM2-135M-Instruct"
# What the twin serves until a fine-tuned version is accepted (chosen on answer quality by
# benchmarks/twin_quality.py).
OFFLINE_LLM_FALLBACK = OFFLINE_QWEN
# The base model `finetune train` and the dataset generator use by default: the small one,
# so that a CPU run of tens of steps takes minutes (benchmarks/finetune.py).
OFFLINE_TRAIN_BASE = OFFLINE_SMOLLM2


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    DATA_DIR: Path = Path("./data")
    # Converted/cached model weights; defaults to DATA_DIR/models (tests share one cache).
    MODELS_CACHE_DIR: Path | None = None

    MONGODB_URI: str = ""
    MONGODB_DATABASE: str = "twin"

    QDRANT_URL: str = ""
    QDRANT_API_KEY: str = ""

    EMBEDDING_MODEL: str = DEFAULT_EMBEDDING_MODEL
    EMBEDDING_BATCH_SIZE: int = 32
    RERANKER_MODEL: str = ""

    LLM_MODEL: str = DEFAULT_LLM_MODEL
    # auto | openai | llamacpp | torch-int8 | torch-fp32 (auto: server, else GGUF on
    # llama.cpp when installed, else torch dynamic int8).
    LLM_BACKEND: str = "auto"
    LLM_BASE_URL: str = ""
    LLM_API_KEY: str = ""
    # Judge for evals on an OpenAI-compatible server; empty = LLM_MODEL.
    JUDGE_MODEL: str = ""
    LLM_THREADS: int = Field(default=0, description="CPU threads for generation; 0 = all cores")
    LLM_MAX_NEW_TOKENS: int = 256

    # Crawling: hosts listed here may resolve to loopback/private addresses (fixture sites).
    CRAWL_ALLOW_HOSTS: list[str] = Field(default_factory=list)
    CRAWL_USER_AGENT: str = "LLMTwinBot/0.1 (+personal-archive crawler)"
    CRAWL_TIMEOUT_S: float = 20.0
    CRAWL_MAX_BYTES: int = 10 * 1024 * 1024
    CRAWL_MIN_INTERVAL_S: float = 1.0
    CRAWL_RETRIES: int = 3
    # Rewrites "scheme://host" prefixes to other base URLs before fetching or cloning (tests map
    # https://medium.com, https://github.com … onto a local fixture site; also usable for mirrors).
    CRAWL_HOST_MAP: dict[str, str] = Field(default_factory=dict)

    TWIN_API_KEY: str = ""
    SERVER_HOST: str = "127.0.0.1"
    SERVER_PORT: int = 8000
    # Request limits of the API server (413 / 422 beyond them).
    SERVER_MAX_BODY_BYTES: int = 256 * 1024
    SERVER_MAX_MESSAGES: int = 50
    SERVER_MAX_MESSAGE_CHARS: int = 8000

    @property
    def warehouse_dir(self) -> Path:
        return self.DATA_DIR / "warehouse"

    @property
    def qdrant_path(self) -> Path:
        return self.DATA_DIR / "qdrant"

    @property
    def models_cache_dir(self) -> Path:
        return self.MODELS_CACHE_DIR or self.DATA_DIR / "models"

    @property
    def registry_dir(self) -> Path:
        return self.DATA_DIR / "registry"

    @property
    def datasets_dir(self) -> Path:
        return self.DATA_DIR / "datasets"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget the cached settings (tests change the environment between cases)."""
    get_settings.cache_clear()
