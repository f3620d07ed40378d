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
  (`addresses`)
- redirects are followed by hand (at most `MAX_REDIRECTS`), each hop checked again. (`fetcher`)
- robots.txt is read once per scheme+host+port (cached, thread-safe) and obeyed for
  `CRAWL_USER_AGENT`; a robots `Crawl-delay` raises the per-host interval. (`politeness`)
- per-host rate limit: requests to one host start at least `CRAWL_MIN_INTERVAL_S` apart,
  across threads. (`politeness`)
- `CRAWL_RETRIES` is the number of attempts: connect errors, timeouts, 429 and 5xx are tried
  again with exponential backoff (`Retry-After` honoured, capped). (`retry`)
- the body is streamed and abandoned past `CRAWL_MAX_BYTES`; each attempt is bounded by
  `CRAWL_TIMEOUT_S` (per network operation and for the whole download). (`transfer`)
- no proxies from the environment (`trust_env=False`): a proxy would bypass the address check.

`CRAWL_HOST_MAP` (a test/mirror hook, empty by default) rewrites `scheme://host` prefixes to
other base URLs before anything else happens, e.g. `{"https://medium.com":
"http://127.0.0.1:8123/medium.com"}` serves Medium URLs from a local fixture site; the mapped
URL goes through every check above (so the target host must be allow-listed if it is local).
"""

from core.safe_fetch.addresses import check_url, map_url, unmap_url
from core.safe_fetch.fetcher import MAX_REDIRECTS, fetch
from core.safe_fetch.politeness import clear_caches
from core.safe_fetch.result import FetchError, FetchResult, decode_body

__all__ = [
    "MAX_REDIRECTS",
    "FetchError",
    "FetchResult",
    "check_url",
    "clear_caches",
    "decode_body",
    "fetch",
    "map_url",
    "unmap_url",
]
