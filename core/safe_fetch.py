"""A careful HTTP GET for crawling user-named URLs (ingest crawlers, links in graph requests).

`fetch(url)` returns a `FetchResult` or raises `FetchError(url, reason)`; the reason is a short
sentence meant for the user ("robots.txt disallows …", "HTTP 404", "refused: resolves to private
address 10.0.0.1", "response larger than 10 MB", "timed out after 3 tries").

Rules, all from `core.settings`:
- only http/https; the host is resolved here and every address it resolves to must be public
  (no loopback, private, link-local, multicast, reserved, unspecified or other non-global
  address) unless the host is listed in `CRAWL_ALLOW_HOSTS` (local fixture sites). The request
  then goes to the address that was checked (the URL is pinned to it, with the original
  `Host` header and TLS server name), so a second DNS answer cannot swap in another address.
- redirects are followed by hand (at most `MAX_REDIRECTS`), each hop checked again.
- robots.txt is read once per scheme+host+port (cached, thread-safe) and obeyed for
  `CRAWL_USER_AGENT`; a robots `Crawl-delay` raises the per-host interval.
- per-host rate limit: requests to one host start at least `CRAWL_MIN_INTERVAL_S` apart,
  across threads.
- `CRAWL_RETRIES` is the number of attempts: connect errors, timeouts, 429 and 5xx are tried
  again with exponential backoff (`Retry-After` honoured, capped).
- the body is streamed and abandoned past `CRAWL_MAX_BYTES`; each attempt is bounded by
  `CRAWL_TIMEOUT_S` (per network operation and for the whole download).
- no proxies from the environment (`trust_env=False`): a proxy would bypass the address check.

`CRAWL_HOST_MAP` (a test/mirror hook, empty by default) rewrites `scheme://host` prefixes to
other base URLs before anything else happens, e.g. `{"https://medium.com":
"http://127.0.0.1:8123/medium.com"}` serves Medium URLs from a local fixture site; the mapped
URL goes through every check above (so the target host must be allow-listed if it is local).
"""

from __future__ import annotations

import contextvars
import ipaddress
import re
import socket
import threading
import time
import urllib.robotparser
from collections import OrderedDict
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

import httpx

if TYPE_CHECKING:
    from core.settings import Settings

MAX_REDIRECTS = 5
BACKOFF_BASE_S = 0.5  # first retry waits this long, then doubles
MAX_BACKOFF_S = 30.0
ROBOTS_MAX_BYTES = 512 * 1024
ROBOTS_CACHE_TTL_S = 3600.0
MAX_HOSTS_REMEMBERED = 512  # robots.txt files and rate-limit slots kept (least recent dropped)
# The absolute time (time.monotonic) by which the current `fetch` must be done, if any.
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "fetch_deadline", default=None
)
_REDIRECT_CODES = {301, 302, 303, 307, 308}


class FetchError(Exception):
    """A URL that could not be fetched, and why (`reason` is meant for the user)."""

    def __init__(self, url: str, reason: str):
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


@dataclass(frozen=True)
class FetchResult:
    url: str  # as asked for
    final_url: str  # after redirects (and after undoing CRAWL_HOST_MAP)
    status: int
    headers: dict[str, str]
    content: bytes
    content_type: str  # media type only, lower-case: "text/html"
    charset: str | None = None
    fetched_url: str = field(default="")  # the URL really requested last (after CRAWL_HOST_MAP)

    @property
    def bytes(self) -> bytes:
        return self.content

    @property
    def text(self) -> str:
        return decode_body(self.content, self.charset, self.content_type)

    @property
    def is_html(self) -> bool:
        return self.content_type in ("text/html", "application/xhtml+xml") or (
            not self.content_type
            and self.content.lstrip()[:15].lower().startswith((b"<!doctype", b"<html"))
        )


# ---------------------------------------------------------------------------------------------
# URL and address checks


def _settings(settings: Settings | None) -> Settings:
    if settings is not None:
        return settings
    from core.settings import get_settings

    return get_settings()


def _host_map(settings: Settings) -> list[tuple[str, str]]:
    mapping = getattr(settings, "CRAWL_HOST_MAP", None) or {}
    # Longest prefix first so "https://a.b.com" wins over "https://b.com"-style overlaps.
    return sorted(
        ((k.rstrip("/"), v.rstrip("/")) for k, v in mapping.items()), key=lambda kv: -len(kv[0])
    )


def map_url(url: str, settings: Settings | None = None) -> str:
    """Apply `CRAWL_HOST_MAP` (scheme://host prefix → base URL); unchanged when nothing matches."""
    for prefix, target in _host_map(_settings(settings)):
        if _has_prefix(url, prefix):
            return target + url[len(prefix) :]
    return url


def unmap_url(url: str, settings: Settings | None = None) -> str:
    """Undo `map_url` for a URL on a mapped target (redirect targets, final URLs)."""
    for prefix, target in _host_map(_settings(settings)):
        if _has_prefix(url, target):
            return prefix + url[len(target) :]
    return url


def _has_prefix(url: str, prefix: str) -> bool:
    if not url.lower().startswith(prefix.lower()):
        return False
    rest = url[len(prefix) :]
    return rest == "" or rest[0] in "/?#"


def _allowed_hosts(settings: Settings) -> set[str]:
    return {h.strip().lower().strip("[]") for h in settings.CRAWL_ALLOW_HOSTS if h.strip()}


def _address_problem(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why this address must not be contacted ("private address 10.0.0.1"), or None."""
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            return _address_problem(mapped)
    for attr, name in (
        ("is_loopback", "loopback"),
        ("is_unspecified", "unspecified"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_reserved", "reserved"),
        ("is_private", "private"),
    ):
        if getattr(ip, attr):
            return f"{name} address {ip}"
    if not ip.is_global:
        return f"non-public address {ip}"
    return None


def check_url(url: str, settings: Settings | None = None) -> list[str]:
    """Check scheme and host of `url`; return the IP addresses it may be fetched from.

    An empty list means "allow-listed host, connect by name". Raises FetchError when refused.
    """
    settings = _settings(settings)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchError(
            url, f"refused: unsupported scheme '{scheme or '(none)'}' (only http and https)"
        )
    try:
        host = (parts.hostname or "").lower()
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise FetchError(url, f"refused: malformed URL ({exc})") from None
    if not host:
        raise FetchError(url, "refused: URL has no host")
    if parts.username or parts.password:
        raise FetchError(url, "refused: credentials in URL")
    if host in _allowed_hosts(settings):
        return []
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise FetchError(url, f"cannot resolve host {host} ({exc})") from None
        addresses = []
        for info in infos:
            ip = ipaddress.ip_address(info[4][0].split("%", 1)[0])
            if ip not in addresses:
                addresses.append(ip)
        if not addresses:
            raise FetchError(url, f"cannot resolve host {host}")
    for ip in addresses:
        problem = _address_problem(ip)
        if problem:
            raise FetchError(url, f"refused: resolves to {problem}")
    return [str(ip) for ip in addresses]


# ---------------------------------------------------------------------------------------------
# Per-host state: rate limit and robots.txt cache


def _host_key(url: str) -> str:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}"


class _RateLimiter:
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
            _remaining(needed=slot - now)
            time.sleep(slot - now)

    def clear(self) -> None:
        with self._lock:
            self._next.clear()


@dataclass
class _Robots:
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


_rate_limiter = _RateLimiter()
_robots_lock = threading.Lock()
_robots_cache: OrderedDict[str, _Robots] = OrderedDict()
_robots_host_locks: dict[str, threading.Lock] = {}


def clear_caches() -> None:
    """Forget robots.txt files and rate-limit slots (tests, long-running processes)."""
    with _robots_lock:
        _robots_cache.clear()
        _robots_host_locks.clear()
    _rate_limiter.clear()


def _robots_for(url: str, settings: Settings) -> _Robots:
    key = _host_key(url)
    with _robots_lock:
        cached = _robots_cache.get(key)
        if cached and time.monotonic() - cached.fetched_at < ROBOTS_CACHE_TTL_S:
            return cached
        host_lock = _robots_host_locks.setdefault(key, threading.Lock())
    with host_lock:  # one download per host even when many threads ask at once
        with _robots_lock:
            cached = _robots_cache.get(key)
            if cached and time.monotonic() - cached.fetched_at < ROBOTS_CACHE_TTL_S:
                return cached
        robots = _download_robots(url, settings)
        with _robots_lock:
            _robots_cache[key] = robots
            _robots_cache.move_to_end(key)
            while len(_robots_cache) > MAX_HOSTS_REMEMBERED:
                old, _ = _robots_cache.popitem(last=False)
                _robots_host_locks.pop(old, None)
        return robots


def _download_robots(url: str, settings: Settings) -> _Robots:
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
        return _Robots(None, now)
    parser = urllib.robotparser.RobotFileParser(robots_url)
    if result.status in (401, 403):
        parser.disallow_all = True
    elif result.status >= 400:
        return _Robots(None, now)  # no robots.txt (404 and friends, or a server error)
    else:
        parser.parse(result.text.splitlines())
    parser.modified()
    return _Robots(parser, now)


# ---------------------------------------------------------------------------------------------
# Fetching


def fetch(
    url: str,
    *,
    settings: Settings | None = None,
    deadline_s: float | None = None,
    max_bytes: int | None = None,
) -> FetchResult:
    """GET `url` under the rules in the module docstring; raise FetchError with a clear reason.

    `deadline_s` bounds everything (robots.txt, redirects, retries, back-off) in seconds
    from now; `max_bytes` lowers the size cap (links in a request use both)."""
    settings = _settings(settings)
    url = url.strip()
    cap = min(settings.CRAWL_MAX_BYTES, max_bytes or settings.CRAWL_MAX_BYTES)
    token = _deadline.set(time.monotonic() + deadline_s if deadline_s is not None else None)
    try:
        return _fetch_checked(url, settings, max_bytes=cap, check_robots=True)
    except _Deadline:
        raise FetchError(url, f"no answer within the {deadline_s:g}s deadline") from None
    finally:
        _deadline.reset(token)


def _remaining(needed: float = 0.0) -> float:
    """Seconds left before the fetch deadline (inf without one); _Deadline when `needed`
    seconds are more than that."""
    deadline = _deadline.get()
    if deadline is None:
        return float("inf")
    left = deadline - time.monotonic()
    if left <= needed:
        raise _Deadline()
    return left


def _fetch_checked(
    url: str,
    settings: Settings,
    *,
    max_bytes: int,
    check_robots: bool,
    attempts: int | None = None,
    accept_status=None,
) -> FetchResult:
    logical = url
    current = map_url(url, settings)
    for _hop in range(MAX_REDIRECTS + 1):
        addresses = check_url(current, settings)
        agent = settings.CRAWL_USER_AGENT
        interval = settings.CRAWL_MIN_INTERVAL_S
        if check_robots:
            robots = _robots_for(current, settings)
            if not robots.allows(agent, current):
                shown = urlsplit(unmap_url(current, settings)).path or "/"
                raise FetchError(logical, f"robots.txt disallows {shown}")
            interval = max(interval, robots.crawl_delay(agent))
        status, headers, body, content_type, charset = _get_with_retries(
            current,
            addresses,
            settings,
            interval=interval,
            max_bytes=max_bytes,
            attempts=attempts if attempts is not None else max(1, settings.CRAWL_RETRIES),
            display_url=logical,
        )
        if status in _REDIRECT_CODES and headers.get("location"):
            target = urljoin(current, headers["location"].strip())
            # Redirects that point at a mapped host's public name are mapped as well.
            current = map_url(unmap_url(target, settings), settings)
            continue
        ok = accept_status(status) if accept_status else 200 <= status < 300
        if not ok:
            raise FetchError(logical, f"HTTP {status}")
        return FetchResult(
            url=url,
            final_url=unmap_url(current, settings),
            status=status,
            headers=headers,
            content=body,
            content_type=content_type,
            charset=charset,
            fetched_url=current,
        )
    raise FetchError(logical, f"too many redirects (more than {MAX_REDIRECTS})")


def _retry_after(headers: dict[str, str]) -> float | None:
    value = headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _get_with_retries(
    url: str,
    addresses: list[str],
    settings: Settings,
    *,
    interval: float,
    max_bytes: int,
    attempts: int,
    display_url: str,
) -> tuple[int, dict[str, str], bytes, str, str | None]:
    host = _host_key(url)
    last_problem = ""
    for attempt in range(1, attempts + 1):
        _remaining()
        _rate_limiter.wait(host, interval)
        wait_hint: float | None = None
        try:
            status, headers, body, ctype, charset = _get_once(
                url, addresses, settings, max_bytes, display_url
            )
        except httpx.TimeoutException:
            last_problem = "timeout"
        except _Deadline:
            if _deadline.get() is not None and _deadline.get() <= time.monotonic():
                raise
            last_problem = "timeout"
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError) as exc:
            last_problem = f"connection failed ({exc.__class__.__name__}: {exc})"
        except httpx.HTTPError as exc:
            raise FetchError(
                display_url, f"request failed ({exc.__class__.__name__}: {exc})"
            ) from None
        else:
            if status == 429 or status >= 500:
                last_problem = f"HTTP {status}"
                wait_hint = _retry_after(headers)
            else:
                return status, headers, body, ctype, charset
        if attempt < attempts:
            delay = BACKOFF_BASE_S * (2 ** (attempt - 1))
            if wait_hint is not None:
                delay = max(delay, wait_hint)
            delay = min(delay, MAX_BACKOFF_S)
            _remaining(needed=delay)
            time.sleep(delay)
    tries = f"{attempts} {'try' if attempts == 1 else 'tries'}"
    if last_problem == "timeout":
        raise FetchError(display_url, f"timed out after {tries}")
    raise FetchError(display_url, f"{last_problem} after {tries}")


class _Deadline(Exception):
    pass


def _human_bytes(n: int) -> str:
    if n >= 1024 * 1024 and n % (1024 * 1024) == 0:
        return f"{n // (1024 * 1024)} MB"
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MB"
    if n >= 1024:
        return f"{n // 1024} KB"
    return f"{n} bytes"


def _get_once(
    url: str, addresses: list[str], settings: Settings, max_bytes: int, display_url: str
) -> tuple[int, dict[str, str], bytes, str, str | None]:
    timeout_s = min(settings.CRAWL_TIMEOUT_S, _remaining())
    request_url = httpx.URL(url)
    headers = {
        "User-Agent": settings.CRAWL_USER_AGENT,
        "Accept": "text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.5",
        "Accept-Language": "en;q=1.0, *;q=0.5",
    }
    extensions: dict[str, object] = {}
    if addresses:  # pin the connection to the checked address
        host = request_url.host
        default_port = 443 if request_url.scheme == "https" else 80
        headers["Host"] = (
            host if request_url.port in (None, default_port) else f"{host}:{request_url.port}"
        )
        if request_url.scheme == "https":
            extensions["sni_hostname"] = host
        request_url = request_url.copy_with(host=addresses[0])
    deadline = time.monotonic() + timeout_s
    with httpx.Client(
        timeout=httpx.Timeout(timeout_s),
        follow_redirects=False,
        trust_env=False,
    ) as client:
        request = client.build_request("GET", request_url, headers=headers, extensions=extensions)
        response = client.send(request, stream=True)
        try:
            resp_headers = {k.lower(): v for k, v in response.headers.items()}
            status = response.status_code
            raw_type = resp_headers.get("content-type", "")
            content_type = raw_type.split(";", 1)[0].strip().lower()
            charset = _charset_of(raw_type)
            if status in _REDIRECT_CODES or status == 429 or status >= 500:
                return status, resp_headers, b"", content_type, charset
            declared = resp_headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise FetchError(display_url, f"response larger than {_human_bytes(max_bytes)}")
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise FetchError(display_url, f"response larger than {_human_bytes(max_bytes)}")
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise _Deadline()
            return status, resp_headers, b"".join(chunks), content_type, charset
        finally:
            response.close()


_CHARSET_RE = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.I)
_META_CHARSET_RE = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?([\w.:-]+)", re.I)


def _charset_of(content_type: str) -> str | None:
    match = _CHARSET_RE.search(content_type or "")
    return match.group(1).lower() if match else None


def decode_body(content: bytes, charset: str | None, content_type: str = "") -> str:
    """Bytes → text: declared charset, else a `<meta charset>` in HTML, else UTF-8 (lenient)."""
    candidates: list[str] = []
    if charset:
        candidates.append(charset)
    if content.startswith(b"\xef\xbb\xbf"):
        candidates.insert(0, "utf-8-sig")
    if not charset and ("html" in content_type or not content_type):
        match = _META_CHARSET_RE.search(content[:4096])
        if match:
            candidates.append(match.group(1).decode("ascii", "ignore"))
    candidates.append("utf-8")
    for name in candidates:
        try:
            return content.decode(name)
        except (LookupError, UnicodeDecodeError):
            continue
    return content.decode("utf-8", errors="replace")
