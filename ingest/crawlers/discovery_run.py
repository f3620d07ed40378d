"""The state of one discovery run: options from the CLI (`--max-documents`, `--since`, a
notice hook, via a context variable so `crawl_url`'s signature stays the same), the scope
posts must be in, and the per-address bookkeeping (dedupe, cap, date filter, tallies)."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from core.domain import RawDocument, User
from ingest.crawlers import feeds
from ingest.crawlers.base import strip_tracking
from ingest.errors import CollectFailure

Item = RawDocument | CollectFailure


@dataclass
class DiscoveryOptions:
    """Per-run options and tallies (`found` posts, `skipped` with reasons)."""

    max_documents: int | None = None
    since: datetime | None = None
    on_note: Callable[[str], None] | None = None
    found: int = 0
    skipped: int = 0

    def note(self, message: str) -> None:
        if self.on_note is not None:
            self.on_note(message)


_options: contextvars.ContextVar[DiscoveryOptions | None] = contextvars.ContextVar(
    "discovery_options", default=None
)


@contextmanager
def discovery_options(options: DiscoveryOptions) -> Iterator[DiscoveryOptions]:
    token = _options.set(options)
    try:
        yield options
    finally:
        _options.reset(token)


def current_options() -> DiscoveryOptions:
    return _options.get() or DiscoveryOptions()


@dataclass
class Scope:
    """Where posts of this address may live."""

    root: str  # the site root, ends with "/"
    platform: str = ""  # "medium" | "substack" | ""
    extra_hosts: set[str] = field(default_factory=set)

    def refusal(self, url: str) -> str:
        """'' when `url` is in scope, else why not."""
        parts, root = urlsplit(url), urlsplit(self.root)
        if parts.scheme not in ("http", "https"):
            return f"not an http(s) link ({parts.scheme or 'no scheme'})"
        host = (parts.hostname or "").lower().removeprefix("www.")
        if self.platform == "medium" and (host == "medium.com" or host.endswith(".medium.com")):
            return ""
        if host in self.extra_hosts:
            return ""
        if not feeds.same_host(url, self.root):
            return f"off-site link ({parts.hostname}, not {root.hostname})"
        if not (parts.path.rstrip("/") + "/").startswith(root.path):
            return f"outside {root.path} on this site"
        return ""


class Run:
    """One address's discovery: dedupes links, applies the cap and the date filter."""

    def __init__(self, address: str, author: User, scope: Scope) -> None:
        self.address, self.author, self.scope = address, author, scope
        self.options = current_options()
        self.seen: set[str] = set()
        self.documents = 0

    @property
    def full(self) -> bool:
        cap = self.options.max_documents
        return cap is not None and self.documents >= cap

    def skip(self, item: str, reason: str) -> None:
        self.options.skipped += 1
        self.options.note(f"skipped: {item}: {reason}")

    def claim(self, link: str, published: datetime | None) -> bool:
        """Whether `link` is new, in scope and recent enough (reasons noted)."""
        key = strip_tracking(link)
        if key in self.seen:
            return False
        self.seen.add(key)
        refusal = self.scope.refusal(link)
        if refusal:
            self.skip(link, refusal)
            return False
        since = self.options.since
        if since is not None and published is not None and published < since:
            return False
        self.options.found += 1
        return True

    def emit(self, items: Iterator[Item], *, need_date: bool = False) -> Iterator[Item]:
        for item in items:
            if isinstance(item, RawDocument):
                since = self.options.since
                if need_date and item.published_at is None:
                    self.options.found -= 1
                    self.skip(item.link, "not a post (the page has no publication date)")
                    continue
                if since is not None and item.published_at and item.published_at < since:
                    continue
                self.documents += 1
            yield item
