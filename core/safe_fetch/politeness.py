"""Per-host politeness shared by every fetch in the process: the rate limit (requests to one
host start at least an interval apart, across threads) and the robots.txt cache."""

from __future__ import annotations

import threading
import time
import urllib.robotparser
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from core.safe_fetch.deadline import remaining

ROBOTS_CACHE_TTL_S = 3600.0
MAX_HOSTS_REMEMBERED = 512  # robots.txt files and rate-limit slots kept (least recent dropped)


def host_key(url: str) -> str:
    """scheme://host:port of `url`: the unit of rate limiting and robots.txt."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}"


class RateLimiter:
    """Reservation-based: each caller books the next free slot for its host, then sleeps."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next: dict[str, float] = {}

    def wait(self, host: str, interval: float) -> None:
        if interval <= 0:
            return
        with self._lock:
            now = time.monotonic()
            if len(self._next) > MAX_HOSTS_REMEMBERED:  # slots in the past mean nothing
                self._next = {h: t for h, t in self._next.items() if t > now}
            slot = max(now, self._next.get(host, now))
            self._next[host] = slot + interval
        if slot > now:
            remaining(needed=slot - now)
            time.sleep(slot - now)

    def clear(self) -> None:
        with self._lock:
            self._next.clear()


@dataclass
class Robots:
    """One host's robots.txt rules."""

    parser: urllib.robotparser.RobotFileParser | None  # None = everything allowed
    fetched_at: float

    def allows(self, agent: str, url: str) -> bool:
        return self.parser is None or self.parser.can_fetch(agent, url)

    def crawl_delay(self, agent: str) -> float:
        if self.parser is None:
            return 0.0
        try:
            delay = self.parser.crawl_delay(agent)
        except Exception:  # noqa: BLE001 - a malformed robots line must not break fetching
            return 0.0
        return float(delay or 0.0)


class RobotsCache:
    """robots.txt per host, kept for ROBOTS_CACHE_TTL_S; thread-safe, one download per host
    even when many threads ask at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, Robots] = OrderedDict()
        self._host_locks: dict[str, threading.Lock] = {}

    def get(self, url: str, download: Callable[[], Robots]) -> Robots:
        """The rules for `url`'s host, calling `download` when none are cached (or stale)."""
        key = host_key(url)
        with self._lock:
            cached = self._fresh(key)
            if cached:
                return cached
            host_lock = self._host_locks.setdefault(key, threading.Lock())
        with host_lock:
            with self._lock:
                cached = self._fresh(key)
                if cached:
                    return cached
            robots = download()
            with self._lock:
                self._entries[key] = robots
                self._entries.move_to_end(key)
                while len(self._entries) > MAX_HOSTS_REMEMBERED:
                    old, _ = self._entries.popitem(last=False)
                    self._host_locks.pop(old, None)
            return robots

    def _fresh(self, key: str) -> Robots | None:
        cached = self._entries.get(key)
        if cached and time.monotonic() - cached.fetched_at < ROBOTS_CACHE_TTL_S:
            return cached
        return None

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._host_locks.clear()


rate_limiter = RateLimiter()
robots_cache = RobotsCache()


def clear_caches() -> None:
    """Forget robots.txt files and rate-limit slots (tests, long-running processes)."""
    robots_cache.clear()
    rate_limiter.clear()
