"""Where a crawl may go: the SSRF guard (scheme, credentials, every resolved address must be
public unless the host is allow-listed) and the `CRAWL_HOST_MAP` rewrite that runs before it."""

from __future__ import annotations

import ipaddress
import socket
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from core.safe_fetch.result import FetchError

if TYPE_CHECKING:
    from core.settings import Settings


def settings_or_current(settings: Settings | None) -> Settings:
    """`settings` when given, else the settings in force."""
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
    for prefix, target in _host_map(settings_or_current(settings)):
        if _has_prefix(url, prefix):
            return target + url[len(prefix) :]
    return url


def unmap_url(url: str, settings: Settings | None = None) -> str:
    """Undo `map_url` for a URL on a mapped target (redirect targets, final URLs)."""
    for prefix, target in _host_map(settings_or_current(settings)):
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
    settings = settings_or_current(settings)
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
