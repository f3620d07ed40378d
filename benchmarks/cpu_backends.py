"""Generation speed and output quality of the CPU backends on the same weights.

    python benchmarks/cpu_backends.py [--tokens 64] [--prompts 6] [--threads 2] [--ref REF]

Backends: torch fp32 (unquantized baseline), torch dynamic int8 (the in-process default),
int8 without the repetition penalty (to show why it is on), and llama.cpp on the GGUF when
`llama-cpp-python` is installed (optional extra). Prompts run round-robin across backends
so load changes on a shared machine hit every backend alike. Reports decode tokens/s
(generated tokens / wall time, greedy), time to first token, and two quality proxies over
the generated words: distinct-2 (unique bigrams / bigrams, higher = less repetitive) and
the share of repeated 4-grams (lower = fewer loops), plus sample outputs.

The served-path TTFT through LangServe `/twin/stream_events` is measured by
benchmarks/ttft.py (server helper).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
for _k, _v in {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "DO_NOT_TRACK": "1"}.items():
    os.environ.setdefault(_k, _v)

PROMPTS = [
    "Write a short LinkedIn post about retrieval-augmented generation.",
    "Explain in three sentences why vector databases need payload filters.",
    "Give me a tweet announcing a new open-source Python library for chunking text.",
    "Write an introduction paragraph for an article about fine-tuning small language models.",
    "Describe how you would evaluate a RAG system, as a short post.",
    "Summarise the benefits of quantization for CPU inference.",
    "Write a friendly post inviting readers to a meetup about LLM engineering.",
    "What is the difference between an embedding model and a reranker?",
]


def quality(text: str) -> dict[str, float]:
    words = text.lower().split()
    bigrams = list(zip(words, words[1:], strict=False))
    fourgrams = list(zip(words, words[1:], words[2:], words[3:], strict=False))
    distinct2 = len(set(bigrams)) / len(bigrams) if bigrams else 1.0
    repeated4 = 1 - len(set(fourgrams)) / len(fourgrams) if fourgrams else 0.0
    return {"distinct2": distinct2, "repeated4": repeated4}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", default="offline:SmolLM2-135M-Instruct")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--prompts", type=int, default=6)
    parser.add_argument("--threads", type=int, default=0, help="LLM_THREADS (0 = default)")
    parser.add_argument("--backends", default="torch-fp32,torch-int8,torch-int8-norp,llamacpp")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.threads:
        os.environ["LLM_THREADS"] = str(args.threads)

    from core.llm import clear_llm_cache, get_llm, llamacpp_available

    variants: dict[str, tuple[str, dict]] = {
        "torch-fp32": ("torch-fp32", {}),
        "torch-int8": ("torch-int8", {}),  # default repetition_penalty (core.llm.DEFAULTS)
        "torch-int8-norp": ("torch-int8", {"repetition_penalty": 1.0}),
        "llamacpp": ("llamacpp", {}),
    }
    chosen = [v.strip() for v in args.backends.split(",") if v.strip()]
    if "llamacpp" in chosen and not llamacpp_available():
        print("llama.cpp: not installed (pip install -e '.[llamacpp]') — skipped")
        chosen.remove("llamacpp")
    llms = {}
    load_s = {}
    for name in chosen:
        backend, _ = variants[name]
        start = time.perf_counter()
        llms[name] = get_llm(args.ref, backend=backend)
        load_s[name] = time.perf_counter() - start
        # Warm-up (first call pays one-off costs).
        llms[name].generate("Hello", max_new_tokens=4, temperature=0)

    results: dict[str, dict] = {n: {"tps": [], "ttft": [], "q": [], "samples": []} for n in chosen}
    prompts = PROMPTS[: args.prompts]
    for prompt in prompts:
        messages = [{"role": "user", "content": prompt}]
        for name in chosen:
            _, extra = variants[name]
            llm = llms[name]
            start = time.perf_counter()
            first = None
            pieces = []
            for piece in llm.stream(messages, max_new_tokens=args.tokens, temperature=0, **extra):
                if first is None:
                    first = time.perf_counter() - start
                pieces.append(piece)
            elapsed = time.perf_counter() - start
            text = "".join(pieces).strip()
            n_tokens = llm.count_tokens(text) if text else 0
            results[name]["tps"].append(n_tokens / elapsed if elapsed else 0.0)
            results[name]["ttft"].append(first or elapsed)
            results[name]["q"].append(quality(text))
            results[name]["samples"].append(text)
    clear_llm_cache()

    summary = {}
    for name in chosen:
        r = results[name]
        summary[name] = {
            "tokens_per_s_median": statistics.median(r["tps"]),
            "ttft_s_median": statistics.median(r["ttft"]),
            "distinct2_mean": statistics.mean(q["distinct2"] for q in r["q"]),
            "repeated4_mean": statistics.mean(q["repeated4"] for q in r["q"]),
            "load_s": load_s[name],
        }
    if "llamacpp" in summary and "torch-int8" in summary:
        summary["int8_vs_llamacpp"] = (
            summary["torch-int8"]["tokens_per_s_median"]
            / summary["llamacpp"]["tokens_per_s_median"]
        )
    if args.json:
        print(json.dumps({"summary": summary, "samples": {n: results[n]["samples"] for n in chosen}}, indent=2))
        return
    print(
        f"ref={args.ref} tokens={args.tokens} prompts={len(prompts)} "
        f"threads={args.threads or 'default'} cpus={os.cpu_count()} "
        f"loadavg={os.getloadavg()[0]:.1f}"
    )
    print(f"{'backend':<18}{'tok/s p50':>10}{'TTFT p50':>10}{'distinct-2':>12}{'rep-4gram':>11}{'load s':>8}")
    for name in chosen:
        s = summary[name]
        print(
            f"{name:<18}{s['tokens_per_s_median']:>10.1f}{s['ttft_s_median']:>10.2f}"
            f"{s['distinct2_mean']:>12.2f}{s['repeated4_mean']:>11.2f}{s['load_s']:>8.1f}"
        )
    if "int8_vs_llamacpp" in summary:
        print(f"torch int8 / llama.cpp tokens/s = {summary['int8_vs_llamacpp']:.2f}")
    print()
    for name in chosen:
        print(f"--- {name}: sample outputs")
        for prompt, text in list(zip(prompts, results[name]["samples"], strict=True))[:2]:
            print(f"> {prompt}\n{text[:400]}\n")


if __name__ == "__main__":
    main()
