"""`python -m finetune watch`: new data → dataset version → train → gate → promote.

Each poll, per author (all authors found in the cleaned_* collections, or `--author`):
build the instruct dataset (a no-op returning the same version id when the cleaned
documents did not change), and when that version has not been trained yet, train a
candidate, run the evals gate and promote it when the gate agrees. State (which dataset
version each author's model was last trained on) lives in `DATA_DIR/finetune/watch.json`.
`--once` runs one poll (tests, cron); otherwise it sleeps `--interval` seconds between polls.
The local vector store is released between polls so `ingest` can write in the meantime.
It chains finetune (datasets, training) with the gate and promotion, so it lives in evals,
above both.
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from core.domain import CLEANED_COLLECTIONS
from core.registry import write_json_atomic

log = logging.getLogger(__name__)


def state_path() -> Path:
    from core.settings import get_settings

    return get_settings().DATA_DIR / "finetune" / "watch.json"


def _load_state() -> dict[str, Any]:
    import json

    path = state_path()
    return json.loads(path.read_text("utf-8")) if path.exists() else {}


def known_authors() -> list[str]:
    from retrievers.store import get_qdrant_client

    client = get_qdrant_client()
    existing = {c.name for c in client.get_collections().collections}
    names: set[str] = set()
    for collection in CLEANED_COLLECTIONS.values():
        if collection not in existing:
            continue
        offset = None
        while True:
            points, offset = client.scroll(
                collection, limit=256, offset=offset, with_payload=["author_full_name"]
            )
            names.update(p.payload["author_full_name"] for p in points if p.payload)
            if offset is None:
                break
    return sorted(names)


def poll_once(
    authors: list[str] | None, train_config: Any, use_llm: bool = False
) -> list[dict[str, Any]]:
    from evals.promotion import PromotionRefused, promote
    from finetune.datasets import DatasetError, author_slug, build_instruct_dataset
    from finetune.train import train
    from retrievers.store import close_qdrant_client

    try:
        authors = authors or known_authors()
        state = _load_state()
        results = []
        for author in authors:
            slug = author_slug(author)
            try:
                ds = build_instruct_dataset(author, use_llm=use_llm)
            except DatasetError as exc:
                results.append({"author": author, "status": "no-data", "detail": str(exc)})
                continue
            close_qdrant_client()
            if state.get(slug, {}).get("dataset_version") == ds.version:
                results.append(
                    {"author": author, "status": "up-to-date", "dataset_version": ds.version}
                )
                continue
            config = replace(train_config, author=author, dataset_version=ds.version)
            trained = train(config)
            entry: dict[str, Any] = {
                "author": author,
                "dataset_version": ds.version,
                "version": trained.version,
                "run_id": trained.run_id,
            }
            try:
                decision = promote(config.registry_name, trained.version)
                entry.update(status="promoted", gate=decision["gate"])
            except PromotionRefused as exc:
                entry.update(status="refused", gate=exc.gate)
            state[slug] = {k: entry[k] for k in ("dataset_version", "version", "status")}
            write_json_atomic(state_path(), state)
            results.append(entry)
        return results
    finally:
        close_qdrant_client()


def watch(
    authors: list[str] | None, train_config: Any, interval: float, once: bool, use_llm: bool = False
) -> list[dict[str, Any]]:
    while True:
        results = poll_once(authors, train_config, use_llm)
        for item in results:
            log.info("watch: %s", item)
        if once:
            return results
        time.sleep(interval)


def watch_command(args: argparse.Namespace) -> int:
    """`python -m finetune watch [--once] …`."""
    from finetune.cli import print_result, train_config_from_args

    config = train_config_from_args(args)
    results = watch(args.author, config, args.interval, args.once, args.llm_instructions)
    print_result(results, args.json)
    return 0
