"""Real servers for the scale-out switches, each a child process on 127.0.0.1:

- `LlamaCppServer`: llama.cpp's own OpenAI-compatible server (`python -m llama_cpp.server`)
  on the shipped GGUF, for `LLM_BASE_URL`;
- `TwinServerProcess`: this project's API server (`python server.py`) with its own DATA_DIR;
- `postgres_url()`: the PostgreSQL that .ci/run starts (`TWIN_TEST_POSTGRES_URL`), for
  `THREADS_URL`.

Every wait is bounded and every process is stopped by the object that started it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from support.twin_server import free_port

ROOT = Path(__file__).resolve().parents[2]
# What .ci/run (through .ci/postgres) creates; tried when TWIN_TEST_POSTGRES_URL is unset.
DEFAULT_POSTGRES_URL = "postgresql://twin:twin@127.0.0.1:5432/twin_test"
# Variables of ours or of llama_cpp.server's settings (pydantic-settings reads HOST, PORT,
# API_KEY, MODEL, … from the environment) that must not leak into a child server.
_LEAKY = (
    "MONGODB_URI", "QDRANT_URL", "QDRANT_API_KEY", "LLM_BASE_URL", "LLM_API_KEY", "LLM_MODEL",
    "TWIN_API_KEY", "THREADS_URL", "HOST", "PORT", "API_KEY", "MODEL", "CONFIG_FILE",
)  # fmt: skip


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _LEAKY}
    env["PYTHONUNBUFFERED"] = "1"  # log lines reach the log file as they are printed
    env.update(extra)
    return env


class ChildServer:
    """A server process with its output in `log`; `start()` returns at once, `wait_ready()`
    polls `ready_path` until it answers 200, the process exits or `timeout` passes."""

    ready_path = "/"

    def __init__(self, log: Path, port: int | None = None) -> None:
        self.log = log
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return child_env()

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                self.command(), cwd=ROOT, env=self.env(), stdout=out, stderr=subprocess.STDOUT
            )

    def wait_ready(self, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"{self.url} exited before answering:\n{self.log_tail()}")
            try:
                if httpx.get(self.url + self.ready_path, timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"{self.url} did not answer within {timeout:.0f}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_text()[-chars:]


def llama_server_importable() -> str:
    """Why `python -m llama_cpp.server` cannot run here, or "" when it can."""
    try:
        import llama_cpp.server.app  # noqa: F401
    except ImportError as exc:  # llama-cpp-python not built, or its [server] extra missing
        return f"llama_cpp.server does not import ({exc}): pip install 'llama-cpp-python[server]'"
    return ""


class LlamaCppServer(ChildServer):
    """llama.cpp's server on one GGUF: a small context and one thread (a shared CPU);
    `interrupt_requests` off, so a request is never cut short by the next one."""

    ready_path = "/v1/models"

    def __init__(self, gguf: Path, alias: str, log: Path, port: int | None = None) -> None:
        super().__init__(log, port)
        self.gguf = gguf
        self.alias = alias

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(self.gguf), "--model_alias", self.alias,
            "--host", "127.0.0.1", "--port", str(self.port),
            "--n_ctx", "1024", "--n_threads", "1", "--n_threads_batch", "1",
            "--interrupt_requests", "False", "--verbose", "False",
        ]  # fmt: skip


class TwinServerProcess(ChildServer):
    """`python server.py` on its own DATA_DIR (the embedded vector store is one process's),
    with a small generation budget; `env` adds e.g. THREADS_URL."""

    ready_path = "/health"

    def __init__(self, data_dir: Path, models_cache: Path, log: Path, **env: str) -> None:
        super().__init__(log)
        self.extra = {
            "DATA_DIR": str(data_dir),
            "MODELS_CACHE_DIR": str(models_cache),
            "SERVER_HOST": "127.0.0.1",
            "SERVER_PORT": str(self.port),
            "LLM_MAX_NEW_TOKENS": "24",
            **env,
        }

    def command(self) -> list[str]:
        return [sys.executable, "server.py"]

    def env(self) -> dict[str, str]:
        return child_env(**self.extra)


def postgres_url() -> tuple[str, str]:
    """(URL, "") for a reachable PostgreSQL, else ("", why not)."""
    url = os.environ.get("TWIN_TEST_POSTGRES_URL", "")
    candidate = url or DEFAULT_POSTGRES_URL
    try:
        import psycopg
    except ImportError:
        return "", "psycopg is not installed: pip install -e '.[postgres]'"
    try:
        with psycopg.connect(candidate, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        where = "TWIN_TEST_POSTGRES_URL" if url else f"no TWIN_TEST_POSTGRES_URL, and {candidate}"
        reason = str(exc).strip()[:200]
        return "", f"{where}: PostgreSQL not reachable ({reason}); .ci/run starts one"
    return candidate, ""
