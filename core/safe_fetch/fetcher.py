"""`fetch`: one URL through every rule — host map, address check, robots.txt, rate limit,
retries, redirects followed by hand and checked again at each hop."""

from __future__ import annotations

import time
import urllib.robotparser
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from core.safe_fetch.addresses import check_url, map_url, settings_or_current, unmap_url
from core.safe_fetch.deadline import DeadlineExceeded, fetch_deadline
from core.safe_fetch.politeness import Robots, robots_cache
from core.safe_fetch.result import FetchError, FetchResult
from core.safe_fetch.retry import get_with_retries
from core.safe_fetch.transfer import REDIRECT_CODES

if TYPE_CHECKING:
    from core.settings import Settings

MAX_REDIRECTS = 5
ROBOTS_MAX_BYTES = 512 * 1024


def fetch(
    url: str,
    *,
    settings: Settings | None = None,
    deadline_s: float | None = None,
    max_bytes: int | None = None,
) -> FetchResult:
    """GET `url` under the rules in the package docstring; raise FetchError with a clear reason.

    `deadline_s` bounds everything (robots.txt, redirects, retries, back-off) in seconds
    from now; `max_bytes` lowers the size cap (links in a request use both)."""
    settings = settings_or_current(settings)
    url = url.strip()
    cap = min(settings.CRAWL_MAX_BYTES, max_bytes or settings.CRAWL_MAX_BYTES)
    try:
        with fetch_deadline(deadline_s):
            return _fetch_checked(url, settings, max_bytes=cap, check_robots=True)
    except DeadlineExceeded:
        raise FetchError(url, f"no answer within the {deadline_s:g}s deadline") from None


def _fetch_checked(
    url: str,
    settings: Settings,
    *,
    max_bytes: int,
    check_robots: bool,
    attempts: int | None = None,
    accept_status: Callable[[int], bool] | None = None,
) -> FetchResult:
    logical = url
    current = map_url(url, settings)
    for _hop in range(MAX_REDIRECTS + 1):
        addresses = check_url(current, settings)
        agent = settings.CRAWL_USER_AGENT
        interval = settings.CRAWL_MIN_INTERVAL_S
        if check_robots:
            robots = robots_cache.get(current, partial(_download_robots, current, settings))
            if not robots.allows(agent, current):
                shown = urlsplit(unmap_url(current, settings)).path or "/"
                raise FetchError(logical, f"robots.txt disallows {shown}")
            interval = max(interval, robots.crawl_delay(agent))
        answer = get_with_retries(
            current,
            addresses,
            settings,
            interval=interval,
            max_bytes=max_bytes,
            attempts=attempts if attempts is not None else max(1, settings.CRAWL_RETRIES),
            display_url=logical,
        )
        if answer.status in REDIRECT_CODES and answer.headers.get("location"):
            target = urljoin(current, answer.headers["location"].strip())
            # Redirects that point at a mapped host's public name are mapped as well.
            current = map_url(unmap_url(target, settings), settings)
            continue
        ok = accept_status(answer.status) if accept_status else 200 <= answer.status < 300
        if not ok:
            raise FetchError(logical, f"HTTP {answer.status}")
        return FetchResult(
            url=url,
            final_url=unmap_url(current, settings),
            status=answer.status,
            headers=answer.headers,
            content=answer.body,
            content_type=answer.content_type,
            charset=answer.charset,
            fetched_url=current,
        )
    raise FetchError(logical, f"too many redirects (more than {MAX_REDIRECTS})")


def _download_robots(url: str, settings: Settings) -> Robots:
    parts = urlsplit(url)
    robots_url = f"{parts.scheme}://{parts.netloc}/robots.txt"
    now = time.monotonic()
    try:
        result = _fetch_checked(
            robots_url,
            settings,
            max_bytes=ROBOTS_MAX_BYTES,
            check_robots=False,
            attempts=1,
            accept_status=lambda s: True,
        )
    except FetchError:
        # Unreachable robots.txt: treated as "no rules" (the page fetch itself will then
        # report the real network problem).
        return Robots(None, now)
    parser = urllib.robotparser.RobotFileParser(robots_url)
    if result.status in (401, 403):
        parser.disallow_all = True
    elif result.status >= 400:
        return Robots(None, now)  # no robots.txt (404 and friends, or a server error)
    else:
        parser.parse(result.text.splitlines())
    parser.modified()
    return Robots(parser, now)
