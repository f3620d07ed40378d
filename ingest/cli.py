"""`python -m ingest` — collect an author's writing into the warehouse and keep the vector
store in sync with it.

  add SOURCE… --author "Full Name"   URLs, export archives, files, folders, git repositories;
                                     then syncs the vector store. A site root, profile, feed,
                                     sitemap or GitHub account yields every post on it
                                     (--max-documents N, --since DATE bound that)
  sync [--full]                      embed new/changed documents, drop removed ones
  remove [ID|LINK…] [--author NAME]  delete documents from the warehouse and their points
  status [--json]                    document and point counts

Failed items are reported one per line on stderr (item: reason) and the run goes on. The
exit code is 0 when anything succeeded, 1 when nothing did, 2 on a fatal error (e.g. the
local vector store is held by another process).
Heavy libraries are imported only after the arguments are parsed, so `--help` is instant.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

EXIT_OK, EXIT_NOTHING, EXIT_FATAL = 0, 1, 2


def _failure(item: str, reason: str) -> None:
    from tqdm import tqdm

    tqdm.write(f"failed: {item}: {reason}", file=sys.stderr)


def _open_store() -> Any:
    """The Qdrant client, opened before any work so a locked store fails fast; through the
    API server when it holds the embedded store (`retrievers.store_share`)."""
    from retrievers.store import borrowed_from, get_qdrant_client

    client = get_qdrant_client()
    share = borrowed_from()
    if share is not None:
        print(f"note: the twin server at {share.url} holds the vector store: writing through "
              "it (its next request sees the new writing)", file=sys.stderr)  # fmt: skip
    return client


def _print_sync(report: Any) -> None:
    print(f"sync: {report.summary()}")


def _note(message: str) -> None:
    from tqdm import tqdm

    tqdm.write(message, file=sys.stderr)


def _document_line(outcome: str, doc: Any) -> None:
    from tqdm import tqdm

    tqdm.write(f"{outcome}: {doc.title or doc.link} <{doc.link}>", file=sys.stderr)


def _since(value: str) -> Any:
    from ingest.crawlers.extract import parse_date

    parsed = parse_date(value)
    if parsed is None:
        raise argparse.ArgumentTypeError(f"not a date: {value!r} (use YYYY-MM-DD)")
    return parsed


def cmd_add(args: argparse.Namespace) -> int:
    from core.domain import User
    from ingest.crawlers.discovery import DiscoveryOptions, discovery_options
    from ingest.documents import add_sources

    if not args.author.strip():
        print("error: --author must name the author", file=sys.stderr)
        return EXIT_FATAL
    if args.max_documents is not None and args.max_documents < 1:
        print("error: --max-documents must be at least 1", file=sys.stderr)
        return EXIT_FATAL
    client = None if args.no_sync else _open_store()
    options = DiscoveryOptions(max_documents=args.max_documents, since=args.since, on_note=_note)
    with discovery_options(options):
        report = add_sources(
            args.sources,
            User.from_full_name(args.author),
            client=client,
            sync_store=not args.no_sync,
            on_failure=_failure,
            progress=True,
            on_document=_document_line,
        )
    counts = report.counts
    discovered = ""
    if options.found or options.skipped:
        discovered = f" (discovered: {options.found} posts found, {options.skipped} skipped)"
    print(
        f"collected: {counts['added']} added, {counts['updated']} updated, "
        f"{counts['unchanged']} unchanged, {counts['failed']} failed{discovered}"
    )
    synced = report.sync
    if synced is not None:
        _print_sync(synced)
        if synced.failed and not (synced.new or synced.changed or synced.unchanged):
            return EXIT_NOTHING
    return EXIT_OK if report.stored else EXIT_NOTHING


def cmd_sync(args: argparse.Namespace) -> int:
    from ingest.features.sync import sync

    report = sync(client=_open_store(), full=args.full, progress=True, on_failure=_failure)
    _print_sync(report)
    if report.failed and not (report.new or report.changed or report.unchanged or report.deleted):
        return EXIT_NOTHING
    return EXIT_OK


def cmd_remove(args: argparse.Namespace) -> int:
    from pathlib import Path

    from core.domain import EMBEDDED_COLLECTIONS, Category, author_id_for
    from core.warehouse import get_warehouse
    from ingest.features.store_state import delete_document_points

    if not args.targets and not args.author:
        print("error: name documents (id or link) or --author NAME", file=sys.stderr)
        return EXIT_FATAL
    client = _open_store()
    found: dict[Category, set[str]] = {c: set() for c in Category}
    misses = 0
    author_id = None
    with get_warehouse() as wh:
        for target in args.targets:
            hits = 0
            links = {target}
            path = Path(target).expanduser()
            if "://" not in target and path.exists():
                links.add(path.resolve().as_uri())
            for category in Category:
                if wh.get(category.value, target) is not None:
                    found[category].add(target)
                    hits += 1
                for link in links:
                    for record in wh.find(category.value, {"link": link}):
                        found[category].add(record["_id"])
                        hits += 1
            if not hits:
                misses += 1
                _failure(target, "no document with this id or link")
        if args.author:
            author_id = author_id_for(args.author)
            hits = 0
            for category in Category:
                for record in wh.find(category.value, {"author_id": author_id}):
                    found[category].add(record["_id"])
                    hits += 1
            hits += wh.delete("users", [author_id])
            if not hits:
                misses += 1
                _failure(args.author, "no such author in the warehouse")
        # Warehouse first: if we die before the points go, the next sync removes them.
        documents = sum(wh.delete(c.value, ids) for c, ids in found.items() if ids)
    chunks = sum(delete_document_points(client, c, ids) for c, ids in found.items() if ids)
    if author_id is not None:
        from qdrant_client import models

        from ingest.features.store_state import vector_counts

        # Points of this author's documents that the warehouse no longer knows (crash leftovers).
        before = vector_counts(client)
        selector = models.FilterSelector(
            filter=models.Filter(
                must=[models.FieldCondition(key="author_id", match=models.MatchValue(value=author_id))]
            )
        )
        existing = {c.name for c in client.get_collections().collections}
        for name in EMBEDDED_COLLECTIONS.values():
            if name in existing:
                client.delete(name, points_selector=selector)
        after = vector_counts(client)
        chunks += sum(before[n] - after[n] for n in EMBEDDED_COLLECTIONS.values())
    print(f"removed: {documents} documents, {chunks} chunks")
    return EXIT_OK if documents or chunks or not misses else EXIT_NOTHING


def status_counts() -> dict[str, dict[str, int]]:
    from core.domain import Category
    from core.warehouse import get_warehouse
    from ingest.features.store_state import vector_counts

    client = _open_store()
    with get_warehouse() as wh:
        warehouse = {"users": wh.count("users")}
        warehouse.update({c.value: wh.count(c.value) for c in Category})
    return {"warehouse": warehouse, "vector_store": vector_counts(client)}


def cmd_status(args: argparse.Namespace) -> int:
    counts = status_counts()
    if args.json:
        print(json.dumps(counts))
        return EXIT_OK
    width = max(len(k) for part in counts.values() for k in part)
    for title, part in (("Warehouse", counts["warehouse"]), ("Vector store", counts["vector_store"])):
        print(title)
        for key, value in part.items():
            print(f"  {key:<{width}}  {value:>8}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ingest",
        description="Collect an author's writing and keep the feature store in sync.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    add = sub.add_parser("add", help="collect sources for an author, then sync")
    add.add_argument(
        "sources", nargs="+", metavar="SOURCE",
        help="URL, export archive (.zip), file, folder or git repository path",
    )
    add.add_argument("--author", required=True, help='the author\'s full name, e.g. "Maya Lindqvist"')
    add.add_argument(
        "--no-sync", action="store_true", help="only fill the warehouse; run `sync` later"
    )
    add.add_argument(
        "--max-documents", type=int, metavar="N",
        help="at most N documents from each site, profile, feed or sitemap",
    )  # fmt: skip
    add.add_argument(
        "--since", type=_since, metavar="DATE",
        help="only posts published on or after DATE (YYYY-MM-DD) from a site, feed or sitemap",
    )  # fmt: skip
    add.set_defaults(func=cmd_add)

    sync = sub.add_parser("sync", help="embed new/changed documents, drop removed ones")
    sync.add_argument("--full", action="store_true", help="re-clean and re-embed every document")
    sync.set_defaults(func=cmd_sync)

    remove = sub.add_parser("remove", help="delete documents and their points")
    remove.add_argument("targets", nargs="*", metavar="ID_OR_LINK", help="document id or link")
    remove.add_argument("--author", help="remove every document of this author (and the author)")
    remove.set_defaults(func=cmd_remove)

    status = sub.add_parser("status", help="document and point counts")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=cmd_status)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from core.settings import settings_or_exit

    settings_or_exit()  # a bad setting: one line and exit 2, not a traceback
    from core.logs import quiet_noisy_libraries
    from core.models import ModelNotAvailable
    from core.warehouse import WarehouseError
    from ingest.features.store_state import FeatureStoreError
    from retrievers.store import VectorStoreLocked

    quiet_noisy_libraries()

    try:
        return args.func(args)
    except (VectorStoreLocked, WarehouseError, FeatureStoreError, ModelNotAvailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FATAL
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to finish (it resumes safely)", file=sys.stderr)
        return 130
    except Exception as exc:
        from retrievers.store_share import share_lost

        if not share_lost(exc):
            raise
        print(f"error: the vector store's server stopped answering ({exc}); rerun the same "
              "command (it resumes safely)", file=sys.stderr)  # fmt: skip
        return EXIT_FATAL
    finally:
        from retrievers.store import close_qdrant_client

        close_qdrant_client()
