"""What learning while serving costs: `python -m ingest add` of N documents straight into the
embedded store vs through a holder's store share (`retrievers.store_share`), per-call
overhead of the share, how soon the holder sees the writing, and what reopening the store
would cost (the alternative of readers that refresh).

    .venv/bin/python benchmarks/learn_while_serving.py [--docs 40] [--rounds 2]

The holder is the real API app (`server.create_app`) in this process on 127.0.0.1, which
holds the store and shares it; the CLI runs in a subprocess, as a user's second terminal
would. "reopen" is opening and closing the six shards (what readers that refresh would pay).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def _docs(folder: Path, n: int) -> None:
    folder.mkdir(parents=True)
    for i in range(n):
        body = " ".join(
            f"Paragraph {j} of note {i}: queues, retries and backpressure in small services "
            "decide how a system degrades when a dependency slows down." for j in range(20)
        )  # fmt: skip
        (folder / f"note-{i:03d}.md").write_text(f"# Note {i}\n\n{body}\n", encoding="utf-8")


def _ingest(data_dir: Path, folder: Path) -> tuple[float, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("QDRANT_URL", "MONGODB_URI")}
    env.update(DATA_DIR=str(data_dir), MODELS_CACHE_DIR=str(ROOT / "data" / "models"),
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")  # fmt: skip
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "ingest", "add", str(folder), "--author", "Bench Author"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    if out.returncode != 0:
        raise SystemExit(f"ingest add failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return time.perf_counter() - started, out.stdout.strip().splitlines()[-1]


def _calls(client: object, n: int = 200) -> float:
    started = time.perf_counter()
    for _ in range(n):
        client.count("embedded_articles")  # type: ignore[attr-defined]
    return (time.perf_counter() - started) / n * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    from support.twin_server import ServerThread, free_port

    import server as server_module
    from core.settings import reset_settings
    from retrievers.edge import EdgeClient
    from retrievers.store import borrowed_from, close_qdrant_client, get_qdrant_client
    from retrievers.store_share import read_share, shared_client

    work = Path(tempfile.mkdtemp(prefix="lws-bench-"))
    folder = work / "notes"
    _docs(folder, args.docs)
    direct, shared, seen, per_call = [], [], [], []
    for r in range(args.rounds):
        seconds, summary = _ingest(work / f"direct-{r}", folder)
        direct.append(seconds)
        print(f"direct  round {r}: {seconds:6.1f} s  {summary}", flush=True)

        data = work / f"shared-{r}"
        port = free_port()
        os.environ.update(DATA_DIR=str(data), SERVER_PORT=str(port),
                          MODELS_CACHE_DIR=str(ROOT / "data" / "models"))  # fmt: skip
        reset_settings()
        close_qdrant_client()
        server = ServerThread(server_module.create_app(warmup=False), port=port).start()
        holder = get_qdrant_client()  # the real API server holds the store and shares it
        share = read_share(data / "qdrant")
        assert share is not None and borrowed_from() is None
        seconds, summary = _ingest(data, folder)
        returned = time.perf_counter()
        count = holder.count("embedded_articles").count
        seen.append((time.perf_counter() - returned) * 1000)
        shared.append(seconds)
        print(f"shared  round {r}: {seconds:6.1f} s  {summary} (holder sees {count} chunks)",
              flush=True)  # fmt: skip
        remote = shared_client(share)
        per_call.append((_calls(holder), _calls(remote)))
        remote.close()
        server.stop()
        close_qdrant_client()
        reopen = []
        for _ in range(3):
            started = time.perf_counter()
            holder = EdgeClient(data / "qdrant" / "edge")
            holder.close()
            reopen.append(time.perf_counter() - started)
        print(f"reopen (close + open 6 shards): {[round(x * 1000) for x in reopen]} ms")
    print(
        f"\nmedian ingest of {args.docs} docs: direct {statistics.median(direct):.1f} s, "
        f"through the share {statistics.median(shared):.1f} s; holder sees the writing "
        f"{statistics.median(seen):.1f} ms after the CLI returns; count() per call: direct "
        f"{statistics.median(p[0] for p in per_call):.2f} ms, shared "
        f"{statistics.median(p[1] for p in per_call):.2f} ms"
    )


if __name__ == "__main__":
    main()
