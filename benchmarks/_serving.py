"""Shared by benchmarks/ttft.py and benchmarks/load.py: the API server as its own process
on 127.0.0.1 over a seeded DATA_DIR (the repository's `samples/` by default), warmed up."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "DO_NOT_TRACK": "1",
    "LANGSMITH_TRACING": "false",
    "OPIK_SENTRY_ENABLE": "false",
    "OPIK_TRACK_DISABLE": "true",
    "LANGGRAPH_NO_VERSION_CHECK": "true",
    "TOKENIZERS_PARALLELISM": "false",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def seed_samples(data_dir: Path) -> int:
    """`samples/` (articles, posts, code) ingested as `make demo` does, into DATA_DIR;
    returns the number of chunks embedded."""
    os.environ["DATA_DIR"] = str(data_dir)
    from core.domain import User
    from core.settings import reset_settings
    from ingest.documents import add_sources
    from retrievers.store import close_qdrant_client

    reset_settings()
    folders = [str(ROOT / "samples" / name) for name in ("articles", "posts", "code")]
    report = add_sources(folders, User.from_full_name("Maya Lindqvist"))
    close_qdrant_client()  # hand the local folder to the server process
    return report.sync.chunks_embedded if report.sync else 0


@contextlib.contextmanager
def served(
    data_dir: Path | None = None, max_new_tokens: int = 64, env: dict[str, str] | None = None
) -> Iterator[tuple[str, int]]:
    """(base URL, server pid) of a warmed-up server; stopped on exit."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    with tempfile.TemporaryDirectory(prefix="twin-bench-") as tmp:
        if data_dir is None:
            data_dir = Path(tmp) / "data"
            n = seed_samples(data_dir)
            print(f"seeded {n} chunks from samples/ into {data_dir}", file=sys.stderr)
        port = free_port()
        proc_env = {**os.environ, **OFFLINE_ENV, **(env or {})}
        proc_env.update(DATA_DIR=str(data_dir), LLM_MAX_NEW_TOKENS=str(max_new_tokens))
        proc_env.setdefault("MODELS_CACHE_DIR", str(ROOT / "data" / "models"))
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "server:app", "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "warning"],
            cwd=ROOT, env=proc_env,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 300
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"server exited with {proc.returncode}")
                try:
                    if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("server did not become healthy in 300 s")
                time.sleep(0.3)
            warm = {"input": {"query": "warm up"}, "config": {"configurable": {"expand_n": 0}}}
            httpx.post(f"{url}/twin/invoke", json=warm, timeout=600).raise_for_status()
            yield url, proc.pid
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
