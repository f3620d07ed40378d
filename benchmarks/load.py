"""Concurrent load on the served twin: N simultaneous `/twin/invoke` on 127.0.0.1.

Starts the API server as its own process (temporary DATA_DIR seeded with `samples/`, or
`--data-dir`), warms it up, then fires `--requests` invocations with at most
`--concurrency` in flight (default 32 and 32), bounded by `--deadline` seconds overall.
Reports errors (goal 0), p50/p95/max latency, throughput and the server process's peak
RSS (psutil, sampled every 50 ms, children included).

    python benchmarks/load.py [--requests 32] [--concurrency 32] [--max-new-tokens 32] [--json]
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


async def fire(url: str, n: int, concurrency: int, configurable: dict, deadline: float) -> list:
    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def one(client: httpx.AsyncClient, i: int) -> dict:
        payload = {
            "input": {"query": QUERIES[i % len(QUERIES)]},
            "config": {"configurable": configurable},
        }
        async with sem:
            start = time.perf_counter()
            try:
                resp = await client.post(f"{url}/twin/invoke", json=payload)
                ok = resp.status_code == 200 and bool(resp.json()["output"]["content"].strip())
                err = None if ok else f"HTTP {resp.status_code}: {resp.text[:200]}"
            except Exception as exc:  # noqa: BLE001 - counted as an error
                ok, err = False, f"{type(exc).__name__}: {exc}"
            return {"ok": ok, "latency_s": time.perf_counter() - start, "error": err}

    async with httpx.AsyncClient(timeout=deadline, limits=limits) as client:
        tasks = [asyncio.create_task(one(client, i)) for i in range(n)]
        done, pending = await asyncio.wait(tasks, timeout=deadline)
        for task in pending:
            task.cancel()
        results = [t.result() for t in done]
        results += [{"ok": False, "latency_s": deadline, "error": "deadline"} for _ in pending]
    return results


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
    return ordered[index]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--expand-n", type=int, default=0)
    parser.add_argument("--deadline", type=float, default=900.0, help="seconds for the whole run")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    configurable = {"max_new_tokens": args.max_new_tokens, "expand_n": args.expand_n}
    with served(args.data_dir, max_new_tokens=args.max_new_tokens) as (url, pid):
        sampler = RssSampler(pid)
        idle_rss = sampler.rss()
        sampler.start()
        start = time.perf_counter()
        results = asyncio.run(
            fire(url, args.requests, args.concurrency, configurable, args.deadline)
        )
        wall = time.perf_counter() - start
        sampler.stop.set()
        sampler.join()
    latencies = [r["latency_s"] for r in results if r["ok"]]
    errors = [r["error"] for r in results if not r["ok"]]
    report = {
        "requests": args.requests,
        "concurrency": args.concurrency,
        "config": configurable,
        "errors": len(errors),
        "error_samples": errors[:3],
        "latency_p50_s": round(statistics.median(latencies), 3) if latencies else None,
        "latency_p95_s": round(percentile(latencies, 0.95), 3) if latencies else None,
        "latency_max_s": round(max(latencies), 3) if latencies else None,
        "wall_s": round(wall, 2),
        "throughput_rps": round(len(latencies) / wall, 3) if wall else None,
        "server_rss_idle_mb": round(idle_rss / 2**20, 1),
        "server_rss_peak_mb": round(max(sampler.peak, idle_rss) / 2**20, 1),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            print(f"{key:20s} {value}")
    return 0 if not errors else 1


if __name__ == "__main__":
    raise SystemExit(main())
