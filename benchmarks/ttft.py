"""Time to first token and tokens/s of the served twin, through `/twin/stream_events`.

Starts the API server as its own process on 127.0.0.1 (a temporary DATA_DIR seeded with
`samples/`, or `--data-dir`), warms it up, then streams a few requests and timestamps the
events: TTFT = request sent → first answer token (the `generate` node's LLM stream),
tokens/s = answer tokens after the first / time from first to last token. Prints the
median over the runs, once with the graph's default query expansion and once without.

    python benchmarks/ttft.py [--runs 5] [--max-new-tokens 64] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _serving import served  # noqa: E402

QUERIES = [
    "Write a LinkedIn post about measuring rerankers before choosing one.",
    "What do you think about fine-tuning on a laptop?",
    "Explain why a writing twin needs retrieval.",
    "Write a short post about the warehouse behind the twin.",
    "How should a twin keep the author's voice?",
]


def one_run(url: str, query: str, configurable: dict) -> dict:
    payload = {"input": {"query": query}, "config": {"configurable": configurable}}
    start = time.perf_counter()
    token_times: list[float] = []
    event = None
    with httpx.stream("POST", f"{url}/twin/stream_events", json=payload, timeout=600) as resp:
        resp.raise_for_status()
        for line in resp.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event == "data":
                data = json.loads(line[5:])
                if (
                    data.get("event") == "on_chat_model_stream"
                    and data.get("metadata", {}).get("langgraph_node") == "generate"
                    and data["data"]["chunk"]["content"]
                ):
                    token_times.append(time.perf_counter() - start)
    total = time.perf_counter() - start
    n = len(token_times)
    span = token_times[-1] - token_times[0] if n > 1 else 0.0
    return {
        "ttft_s": token_times[0] if n else None,
        "total_s": total,
        "tokens": n,
        "tokens_per_s": (n - 1) / span if span > 0 else None,
    }


def measure(url: str, runs: int, configurable: dict) -> dict:
    results = [one_run(url, QUERIES[i % len(QUERIES)], configurable) for i in range(runs)]

    def med(key: str) -> float | None:
        values = [r[key] for r in results if r[key] is not None]
        return round(statistics.median(values), 3) if values else None

    return {
        "config": configurable,
        "runs": runs,
        "ttft_s_median": med("ttft_s"),
        "total_s_median": med("total_s"),
        "tokens_median": med("tokens"),
        "tokens_per_s_median": med("tokens_per_s"),
        "per_run": results,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with served(args.data_dir, max_new_tokens=args.max_new_tokens) as (url, _pid):
        report = {
            "default_expansion": measure(url, args.runs, {"max_new_tokens": args.max_new_tokens}),
            "no_expansion": measure(
                url, args.runs, {"max_new_tokens": args.max_new_tokens, "expand_n": 0}
            ),
        }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for name, r in report.items():
            print(
                f"{name:18s} TTFT p50 {r['ttft_s_median']} s | total p50 {r['total_s_median']} s"
                f" | {r['tokens_median']} tokens | {r['tokens_per_s_median']} tokens/s"
                f" (median of {r['runs']})"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
