"""Source dispatch for `python -m ingest add`: URL → crawler, local path → importer.

`collect(source, author)` never raises: every problem is a `CollectFailure` naming the
source (or the item inside it) and the reason, so one bad source never stops a run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from core.domain import RawDocument, User
from ingest.errors import CollectFailure


def collect(source: str, author: User) -> Iterator[RawDocument | CollectFailure]:
    """Documents (and failures) from one SOURCE: a URL, an export archive, a file, a folder
    or a git repository path."""
    try:
        from ingest.crawlers import crawl_url, is_url

        if is_url(source):
            yield from crawl_url(source, author)
            return
        path = Path(source).expanduser()
        if path.exists():
            from ingest.importers import import_path

            yield from import_path(path, author)
            return
        yield CollectFailure(source, "not a URL, and no such file or folder")
    except GeneratorExit:
        raise
    except Exception as exc:  # noqa: BLE001 - a collector bug must not stop the run
        yield CollectFailure(source, f"{type(exc).__name__}: {exc}")
