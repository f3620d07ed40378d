"""Concurrent load on the served twin: N simultaneous clients on 127.0.0.1.

Starts the API server as its own process (temporary DATA_DIR seeded with `samples/`, or
`--data-dir`), warms it up, then for each `--clients` level (default 8, 32, 64) fires that
many simultaneous `/twin/stream` requests, bounded by `--deadline` seconds per level.
Reports per level: success share, 429 share (back-pressure: LLM_CONCURRENCY +
SERVER_QUEUE_SIZE are admitted, the rest are turned away at once), other errors (goal 0),
p50/p95 latency and time to first token of admitted requests, and the server process's
peak RSS (psutil, sampled every 50 ms, children included).

    python benchmarks/load.py [--clients 8,32,64] [--max-new-tokens 32] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _serving import served  # noqa: E402

QUERIES = [
    "Write a LinkedIn post about measuring rerankers.",
    "What do you think about fine-tuning on a laptop?",
    "Why does a writing twin need retrieval?",
    "Write a post about kill -9 and durable writes.",
    "How do you keep the author's voice?",
    "Summarise the two-commands post.",
]


class RssSampler(threading.Thread):
    def __init__(self, pid: int, every: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.every = every
        self.peak = 0
        self.stop = threading.Event()

    def rss(self) -> int:
        total = self.proc.memory_info().rss
        for child in self.proc.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                pass
        return total

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.peak = max(self.peak, self.rss())
            except psutil.Error:
                return
            time.sleep(self.every)


async def fire(url: str, clients: int, configurable: dict, deadline: float) -> list[dict]:
    """`clients` simultaneous streams; per request: status, latency and first-token time."""
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def one(client: httpx.AsyncClient, i: int) -> dict:
        payload = {
            "input": {"query": QUERIES[i % len(QUERIES)]},
            "config": {"configurable": configurable},
        }
        start = time.perf_counter()
        first = None
        try:
            async with client.stream("POST", f"{url}/twin/stream", json=payload) as resp:
                status = resp.status_code
                error = None
                async for line in resp.aiter_lines():
                    if line.startswith("event: error"):
                        error = "error event"
                    if first is None and line.startswith("data:") and '"content":"' in line:
                        if '"content":""' not in line:
                            first = time.perf_counter() - start
        except Exception as exc:  # noqa: BLE001 - counted as an error
            status, error = 0, f"{type(exc).__name__}: {exc}"
        return {
            "status": status,
            "ok": status == 200 and error is None,
            "latency_s": time.perf_counter() - start,
            "ttft_s": first,
            "error": error or (None if status in (200, 429) else f"HTTP {status}"),
        }

    async with httpx.AsyncClient(timeout=deadline, limits=limits) as client:
        tasks = [asyncio.create_task(one(client, i)) for i in range(clients)]
        done, pending = await asyncio.wait(tasks, timeout=deadline)
        for task in pending:
            task.cancel()
        results = [t.result() for t in done]
        results += [{"status": 0, "ok": False, "error": "deadline"} for _ in pending]
    return results


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
    return ordered[index]


def summarize(clients: int, results: list[dict], peak_rss: int) -> dict:
    admitted = [r for r in results if r["ok"]]
    latencies = [r["latency_s"] for r in admitted]
    ttfts = [r["ttft_s"] for r in admitted if r.get("ttft_s") is not None]
    errors = [r["error"] for r in results if r["error"]]
    return {
        "clients": clients,
        "success": round(len(admitted) / clients, 3),
        "rejected_429": round(sum(r["status"] == 429 for r in results) / clients, 3),
        "errors": len(errors),
        "error_samples": errors[:3],
        "p50_s": round(statistics.median(latencies), 2) if latencies else None,
        "p95_s": round(percentile(latencies, 0.95), 2) if latencies else None,
        "ttft_p50_s": round(statistics.median(ttfts), 2) if ttfts else None,
        "ttft_p95_s": round(percentile(ttfts, 0.95), 2) if ttfts else None,
        "peak_rss_mb": round(peak_rss / 2**20, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="8,32,64", help="comma-separated levels")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--expand-n", type=int, default=0)
    parser.add_argument("--deadline", type=float, default=600.0, help="seconds per level")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    levels = [int(c) for c in args.clients.split(",") if c.strip()]
    configurable = {"max_new_tokens": args.max_new_tokens, "expand_n": args.expand_n}
    rows = []
    with served(args.data_dir, max_new_tokens=args.max_new_tokens) as (url, pid):
        sampler = RssSampler(pid)
        sampler.start()
        for clients in levels:
            sampler.peak = sampler.rss()
            results = asyncio.run(fire(url, clients, configurable, args.deadline))
            rows.append(summarize(clients, results, sampler.peak))
        sampler.stop.set()
        sampler.join()
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print("| clients | success | 429 | errors | p50 s | p95 s | TTFT p50 s | TTFT p95 s | peak RSS MB |")
        print("|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {r['clients']} | {r['success']:.0%} | {r['rejected_429']:.0%} | {r['errors']} "
                f"| {r['p50_s']} | {r['p95_s']} | {r['ttft_p50_s']} | {r['ttft_p95_s']} "
                f"| {r['peak_rss_mb']} |"
            )
    return 0 if not any(r["errors"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
