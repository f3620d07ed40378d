"""The API server on a real socket for tests and benchmarks: a small seeded corpus, the
real graph and offline models, uvicorn in a background thread on a free 127.0.0.1 port."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

SHARED_MODELS_CACHE = Path(__file__).resolve().parents[2] / "data" / "models"

AUTHOR = "Maya Lindqvist"
# Small but varied: two authors, three categories, confusable topics.
CORPUS: list[dict[str, Any]] = [
    {
        "title": "Why retrieval beats fine-tuning for fresh facts",
        "category": "articles",
        "author": AUTHOR,
        "published_at": "2024-03-02",
        "content": (
            "Retrieval-augmented generation keeps the model small and the facts fresh. "
            "Instead of baking every fact into the weights, the twin searches my own "
            "articles in a vector store, reranks the passages and writes with them in the "
            "prompt. Fine-tuning teaches the voice; retrieval supplies the facts."
        ),
    },
    {
        "title": "Quantizing small models for CPUs",
        "category": "articles",
        "author": AUTHOR,
        "published_at": "2023-11-20",
        "content": (
            "Dynamic int8 quantization of the linear layers makes a 135M parameter model "
            "almost twice as fast on a laptop CPU. Watch for repetition: small quantized "
            "models loop, so a mild repetition penalty helps."
        ),
    },
    {
        "title": "Shipping on Fridays",
        "category": "posts",
        "author": AUTHOR,
        "platform": "linkedin",
        "published_at": "2024-06-14",
        "content": (
            "Hot take: ship on Fridays. If a deploy scares you on a Friday it should scare "
            "you on a Tuesday too. Small changes, good tests, a rollback button. #devops"
        ),
    },
    {
        "title": "qdrant helper",
        "category": "repositories",
        "author": AUTHOR,
        "platform": "github",
        "content": (
            "def search(client, query_vector, k=5):\n"
            "    # query the embedded collection and return the top k payloads\n"
            "    return client.query_points('embedded_articles', query=query_vector, limit=k)"
        ),
    },
    {
        "title": "Sourdough at altitude",
        "category": "posts",
        "author": "Paul Okafor",
        "platform": "linkedin",
        "published_at": "2022-05-01",
        "content": (
            "Baking sourdough in the mountains means less yeast, more water and a cooler "
            "proof. My starter took a week to adjust to the thin air."
        ),
    },
]

# Small generation budget so the real model answers in a few seconds on CPU.
FAST_CONFIG = {"configurable": {"max_new_tokens": 24, "expand_n": 0, "k": 3}}


def seed_corpus() -> int:
    """Seed CORPUS into the current DATA_DIR's vector store; returns the chunk count."""
    from support.corpus import store_corpus

    return store_corpus(CORPUS)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerThread:
    """uvicorn serving `app` on 127.0.0.1:<free port> in a daemon thread."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        import uvicorn

        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self, timeout: float = 60.0) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server on {self.url} did not start within {timeout}s")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def served_twin(data_dir: Path, **env: str | None) -> Iterator[ServerThread]:
    """The real app (real graph, offline models) on a seeded DATA_DIR, warmed up.

    `env` sets (None: removes) variables for the duration (e.g. OPIK_URL_OVERRIDE); the generation
    budget is capped small (LLM_MAX_NEW_TOKENS) so CPU answers take seconds.
    """
    from core.settings import reset_settings
    from core.tracing import reset_tracing
    from retrievers.store import close_qdrant_client

    values = {
        "DATA_DIR": str(data_dir),
        "MODELS_CACHE_DIR": str(SHARED_MODELS_CACHE),
        "LLM_MAX_NEW_TOKENS": "24",
        **env,
    }
    with pytest.MonkeyPatch.context() as mp:
        for var in ("MONGODB_URI", "QDRANT_URL", "QDRANT_API_KEY", "LLM_BASE_URL", "TWIN_API_KEY"):
            mp.delenv(var, raising=False)
        for key, value in values.items():
            if value is None:
                mp.delenv(key, raising=False)
            else:
                mp.setenv(key, value)
        close_qdrant_client()
        reset_settings()
        reset_tracing()
        seed_corpus()
        import server

        app = server.create_app(warmup=False)
        with ServerThread(app) as running:
            # First request loads the LLM and embeddings: keep that out of timed tests.
            # Within the server's own answer budget, which a test may set below FAST_CONFIG's.
            budget = min(FAST_CONFIG["configurable"]["max_new_tokens"],
                         int(values["LLM_MAX_NEW_TOKENS"] or 24))  # fmt: skip
            warm = {"configurable": {**FAST_CONFIG["configurable"], "max_new_tokens": budget}}
            httpx.post(
                f"{running.url}/twin/invoke",
                json={"input": {"query": "warm up"}, "config": warm},
                timeout=600,
            ).raise_for_status()
            yield running
        close_qdrant_client()
        reset_settings()
        reset_tracing()
