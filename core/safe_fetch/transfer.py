"""One GET, once: connected to the address that was checked, body streamed under a size cap
and a time bound. Retrying and redirects are decided by the callers."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import httpx

from core.safe_fetch.deadline import DeadlineExceeded, remaining
from core.safe_fetch.result import FetchError, charset_of

if TYPE_CHECKING:
    import ssl

    from core.settings import Settings

REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class Answer:
    """A server's answer to one GET. Redirects, 429 and 5xx come without a body."""

    status: int
    headers: dict[str, str]  # names lower-case
    body: bytes
    content_type: str  # media type only, lower-case
    charset: str | None


def _human_bytes(n: int) -> str:
    if n >= 1024 * 1024 and n % (1024 * 1024) == 0:
        return f"{n // (1024 * 1024)} MB"
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MB"
    if n >= 1024:
        return f"{n // 1024} KB"
    return f"{n} bytes"


@lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    """httpx's own verifying context (certifi's CA bundle), built once: a fresh client per
    GET would otherwise load the bundle again each time (about 40 ms)."""
    return httpx.create_ssl_context(trust_env=False)


def get_once(
    url: str, addresses: list[str], settings: Settings, max_bytes: int, display_url: str
) -> Answer:
    """GET `url` from `addresses[0]` (by name when empty, for allow-listed hosts).

    Raises FetchError for a body over `max_bytes` (declared or streamed), DeadlineExceeded
    when the download outlives `CRAWL_TIMEOUT_S` or the fetch deadline, and httpx errors
    as they come."""
    timeout_s = min(settings.CRAWL_TIMEOUT_S, remaining())
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
    # No proxies from the environment (trust_env=False): a proxy would bypass the address check.
    with httpx.Client(
        timeout=httpx.Timeout(timeout_s),
        follow_redirects=False,
        trust_env=False,
        verify=_tls_context(),
    ) as client:
        request = client.build_request("GET", request_url, headers=headers, extensions=extensions)
        response = client.send(request, stream=True)
        try:
            resp_headers = {k.lower(): v for k, v in response.headers.items()}
            status = response.status_code
            raw_type = resp_headers.get("content-type", "")
            content_type = raw_type.split(";", 1)[0].strip().lower()
            charset = charset_of(raw_type)
            if status in REDIRECT_CODES or status == 429 or status >= 500:
                return Answer(status, resp_headers, b"", content_type, charset)
            declared = resp_headers.get("content-length", "")
            too_large = f"response larger than {_human_bytes(max_bytes)}"
            if declared.isdigit() and int(declared) > max_bytes:
                raise FetchError(display_url, too_large)
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise FetchError(display_url, too_large)
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise DeadlineExceeded()
            return Answer(status, resp_headers, b"".join(chunks), content_type, charset)
        finally:
            response.close()
