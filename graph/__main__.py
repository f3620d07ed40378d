"""`python -m graph ask "REQUEST" [--author NAME]` — ask the twin from a terminal.

The answer streams to stdout token by token as the model writes it, followed by the
sources it was given (title and link of each passage). Same graph, prompts and models as
the server; `--k`, `--expand-n` and `--max-new-tokens` change the run's Configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m graph", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ask = sub.add_parser("ask", help="ask the twin and stream its answer")
    ask.add_argument("request", help="what to ask or what to write")
    ask.add_argument("--author", default="", help="the twin's author when the request names none")
    ask.add_argument("--k", type=int, default=None, help="passages given to the model")
    ask.add_argument("--expand-n", type=int, default=None, help="alternative query phrasings")
    ask.add_argument("--max-new-tokens", type=int, default=None)
    return parser


def _configurable(args: argparse.Namespace) -> dict[str, Any]:
    values = {"author": args.author, "k": args.k, "expand_n": args.expand_n,
              "max_new_tokens": args.max_new_tokens}  # fmt: skip
    return {k: v for k, v in values.items() if v not in (None, "")}


async def ask(args: argparse.Namespace) -> int:
    from graph.builder import compile_graph

    twin = compile_graph()
    final: dict[str, Any] = {}
    streamed = False
    config = {"configurable": _configurable(args)}
    async for mode, data in twin.astream(
        {"query": args.request}, config, stream_mode=["messages", "values"]
    ):
        if mode == "values":
            final = data
            continue
        chunk, meta = data
        if meta.get("langgraph_node") == "generate" and isinstance(chunk.content, str):
            sys.stdout.write(chunk.content)
            sys.stdout.flush()
            streamed = streamed or bool(chunk.content)
    if not streamed:  # a backend that does not stream still answers in full
        sys.stdout.write(final.get("answer", ""))
    sys.stdout.write("\n")
    messages = final.get("messages") or []
    meta = getattr(messages[-1], "response_metadata", None) or {} if messages else {}
    if meta.get("model_version") or meta.get("model"):
        # Which model answered: a promoted twin's registry version, or the offline default.
        print(f"\nAnswered by: {meta.get('model_version') or meta.get('model')}")
    sources = final.get("context") or []
    if sources:
        print("\nSources:")
        seen = set()
        for doc in sources:
            meta = doc.metadata or {}
            key = meta.get("document_id") or meta.get("link")
            if key in seen:
                continue
            seen.add(key)
            print(f"  - {meta.get('title') or '(untitled)'} ({meta.get('link') or 'no link'})")
    for note in final.get("notes") or []:
        print(f"note: {note}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from core.settings import settings_or_exit

    settings_or_exit()  # a bad setting: one line and exit 2, not a traceback
    from core.logs import setup_cli_logging

    setup_cli_logging()
    return asyncio.run(ask(args))


if __name__ == "__main__":
    sys.exit(main())
