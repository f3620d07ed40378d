"""core.safe_fetch against the fixture website on 127.0.0.1 (real sockets, real httpx)."""

from __future__ import annotations

import importlib.util
import json
import socket
import threading
import time
from pathlib import Path

import pytest

from core import safe_fetch
from core.safe_fetch import FetchError, check_url, decode_body, fetch, map_url, unmap_url
from core.safe_fetch import addresses as fetch_addresses
from core.safe_fetch import retry as fetch_retry

_SPEC = importlib.util.spec_from_file_location(
    "fixture_site_server_fetch", Path(__file__).parent / "fixtures" / "site" / "_server.py"
)
site_server = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(site_server)


@pytest.fixture(scope="module")
def site():
    server = site_server.FixtureServer().start()
    yield server
    server.stop()


@pytest.fixture
def env(data_dir, site, monkeypatch):
    """Allow-list the fixture host, no rate limit, fast backoff; fresh caches and server log."""
    from core.settings import reset_settings

    monkeypatch.setenv("CRAWL_ALLOW_HOSTS", '["127.0.0.1"]')
    monkeypatch.setenv("CRAWL_MIN_INTERVAL_S", "0")
    monkeypatch.setenv("CRAWL_RETRIES", "3")
    monkeypatch.setenv("CRAWL_TIMEOUT_S", "5")
    monkeypatch.delenv("CRAWL_HOST_MAP", raising=False)
    monkeypatch.setattr(fetch_retry, "BACKOFF_BASE_S", 0.01)
    reset_settings()
    safe_fetch.clear_caches()
    site.reset()
    yield site
    safe_fetch.clear_caches()
    reset_settings()


def _set(monkeypatch, **values):
    from core.settings import reset_settings

    for key, value in values.items():
        monkeypatch.setenv(key, str(value))
    reset_settings()


def test_fetches_page_with_user_agent_and_reads_robots_once(env):
    from core.settings import get_settings

    url = f"{env.base_url}/blog/2024/notes-on-rag/"
    first = fetch(url)
    second = fetch(url + "?again=1")
    assert first.status == 200 and first.content_type == "text/html"
    assert first.is_html and "Notes on RAG evaluation" in first.text
    assert first.final_url == url and second.status == 200
    assert env.hits("/robots.txt") == 1  # cached per host
    page_requests = [h for p, h in env.log if p == "/blog/2024/notes-on-rag/"]
    assert len(page_requests) == 2
    assert all(h["user-agent"] == get_settings().CRAWL_USER_AGENT for h in page_requests)


def test_robots_txt_disallows(env):
    with pytest.raises(FetchError) as err:
        fetch(f"{env.base_url}/blog/private/diary")
    assert err.value.reason == "robots.txt disallows /blog/private/diary"
    assert env.hits("/blog/private/diary") == 0


def test_http_404_is_not_retried(env):
    with pytest.raises(FetchError) as err:
        fetch(f"{env.base_url}/no/such/page")
    assert err.value.reason == "HTTP 404"
    assert env.hits("/no/such/page") == 1


def test_500_then_200_is_retried(env):
    result = fetch(f"{env.base_url}/flaky")
    assert "Flaky but fine now." in result.text
    assert env.hits("/flaky") == 2


def test_429_with_retry_after_is_retried(env):
    assert "Patience pays." in fetch(f"{env.base_url}/too-many").text
    assert env.hits("/too-many") == 2


def test_persistent_5xx_gives_up_after_the_configured_tries(env, monkeypatch):
    _set(monkeypatch, CRAWL_RETRIES=2)
    with pytest.raises(FetchError) as err:
        fetch(f"{env.base_url}/always-500")
    assert err.value.reason == "HTTP 503 after 2 tries"
    assert env.hits("/always-500") == 2


def test_slow_endpoint_times_out(env, monkeypatch):
    _set(monkeypatch, CRAWL_RETRIES=2, CRAWL_TIMEOUT_S=0.3)
    env.slow_s = 1.5
    with pytest.raises(FetchError) as err:
        fetch(f"{env.base_url}/slow")
    # Both tries ended on the client's timeout, not on the server's answer.
    assert err.value.reason == "timed out after 2 tries"
    assert env.hits("/slow") == 2


def test_size_cap_aborts_streamed_and_declared_bodies(env, monkeypatch):
    _set(monkeypatch, CRAWL_MAX_BYTES=100_000)
    env.huge_bytes = 5 * 1024 * 1024
    for path in ("/huge", "/huge-declared"):
        with pytest.raises(FetchError) as err:
            fetch(f"{env.base_url}{path}")
        assert err.value.reason.startswith("response larger than "), err.value.reason
        assert env.hits(path) == 1  # a size problem is final, not retried


def test_redirect_is_followed_and_rechecked(env):
    result = fetch(f"{env.base_url}/redirect?to=/blog/plain.html")
    assert result.final_url == f"{env.base_url}/blog/plain.html"
    assert "plain-text journal" in result.text


def test_redirect_to_loopback_name_that_is_not_allow_listed_is_refused(env):
    port = env.server_address[1]
    with pytest.raises(FetchError) as err:
        fetch(f"{env.base_url}/redirect?to=http://localhost:{port}/blog/plain.html")
    assert err.value.reason.startswith("refused: resolves to loopback address"), err.value.reason
    assert env.hits("/blog/plain.html") == 0


def test_redirect_to_cloud_metadata_address_is_refused(env):
    with pytest.raises(FetchError) as err:
        fetch(f"{env.base_url}/redirect?to=http://169.254.169.254/latest/meta-data/")
    assert err.value.reason == "refused: resolves to link-local address 169.254.169.254"


def test_redirect_loop_is_bounded(env):
    with pytest.raises(FetchError) as err:
        fetch(f"{env.base_url}/loop")
    assert err.value.reason.startswith("too many redirects")
    assert env.hits("/loop") == safe_fetch.MAX_REDIRECTS + 1


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://10.0.0.1/", "refused: resolves to private address 10.0.0.1"),
        ("http://192.168.1.20:8080/admin", "refused: resolves to private address 192.168.1.20"),
        ("http://127.0.0.1:9/", "refused: resolves to loopback address 127.0.0.1"),
        ("http://[::1]/", "refused: resolves to loopback address ::1"),
        ("http://0.0.0.0/", "refused: resolves to unspecified address 0.0.0.0"),
        ("http://224.0.0.251/", "refused: resolves to multicast address 224.0.0.251"),
        ("http://240.0.0.1/", "refused: resolves to reserved address 240.0.0.1"),
        ("http://[::ffff:10.1.2.3]/", "refused: resolves to private address 10.1.2.3"),
        ("http://[fe80::1]/", "refused: resolves to link-local address fe80::1"),
        ("http://100.64.0.1/", "refused: resolves to non-public address 100.64.0.1"),
        ("ftp://example.com/file.txt", "refused: unsupported scheme 'ftp' (only http and https)"),
        ("file:///etc/passwd", "refused: unsupported scheme 'file' (only http and https)"),
        ("http://user:secret@example.com/", "refused: credentials in URL"),
        ("https:///nohost", "refused: URL has no host"),
    ],
)
def test_refused_addresses_and_schemes(data_dir, monkeypatch, url, reason):
    _set(monkeypatch, CRAWL_ALLOW_HOSTS="[]")
    with pytest.raises(FetchError) as err:
        fetch(url)
    assert err.value.reason == reason
    assert err.value.url == url and reason in str(err.value)


def test_host_names_are_resolved_before_connecting(data_dir, monkeypatch):
    _set(monkeypatch, CRAWL_ALLOW_HOSTS="[]")
    with pytest.raises(FetchError) as err:
        check_url("http://localhost/")
    assert err.value.reason.startswith("refused: resolves to loopback address")


def test_connection_is_pinned_to_the_checked_address(env, monkeypatch):
    """A public-looking name is resolved once, by us; httpx connects to that very address."""
    port = env.server_address[1]
    calls = []

    real_getaddrinfo = socket.getaddrinfo

    def fake_getaddrinfo(host, *args, **kwargs):
        if host == "127.0.0.1":  # the socket layer "resolving" the pinned literal address
            return real_getaddrinfo(host, *args, **kwargs)
        calls.append(host)
        if host == "blog.example.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        raise socket.gaierror(f"unexpected lookup of {host}")

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    # Pretend 127.0.0.1 is public, so the non-allow-listed code path (pinning) is taken.
    monkeypatch.setattr(fetch_addresses, "_address_problem", lambda ip: None)
    result = fetch(f"http://blog.example.test:{port}/echo-headers")
    headers = json.loads(result.text)
    assert headers["host"] == f"blog.example.test:{port}"
    # One lookup per checked request (robots.txt, the page); none by the HTTP client itself.
    assert calls == ["blog.example.test", "blog.example.test"]
    assert result.final_url == f"http://blog.example.test:{port}/echo-headers"


def test_rate_limit_spaces_requests_to_one_host_across_threads(env, monkeypatch):
    _set(monkeypatch, CRAWL_MIN_INTERVAL_S=0.2)
    url = f"{env.base_url}/blog/plain.html"
    results, errors = [], []

    def worker():
        try:
            results.append(fetch(url).status)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    assert not errors and results == [200] * 4
    # robots.txt + 4 pages = 5 requests, at least 4 intervals apart in total.
    assert elapsed >= 0.75, elapsed
    assert env.hits("/robots.txt") == 1


def test_host_map_rewrites_and_reverses(data_dir, monkeypatch):
    _set(monkeypatch, CRAWL_HOST_MAP='{"https://medium.com": "http://127.0.0.1:9/medium.com"}')
    assert map_url("https://medium.com/@a/b?x=1") == "http://127.0.0.1:9/medium.com/@a/b?x=1"
    assert map_url("https://medium.community/x") == "https://medium.community/x"
    assert unmap_url("http://127.0.0.1:9/medium.com/@a/b") == "https://medium.com/@a/b"
    assert unmap_url("http://127.0.0.1:9/other") == "http://127.0.0.1:9/other"


def test_mapped_fetch_reports_the_public_url(env, monkeypatch):
    _set(
        monkeypatch, CRAWL_HOST_MAP=json.dumps({"https://blog.mayalab.dev": f"{env.base_url}/blog"})
    )
    result = fetch("https://blog.mayalab.dev/plain.html")
    assert result.final_url == "https://blog.mayalab.dev/plain.html"
    assert result.fetched_url == f"{env.base_url}/blog/plain.html"


def test_decoding_follows_declared_and_meta_charsets():
    assert decode_body("café".encode("latin-1"), "iso-8859-1") == "café"
    html = b'<html><head><meta charset="windows-1252"></head><body>caf\xe9 \x93q\x94</body></html>'
    assert "café “q”" in decode_body(html, None, "text/html")
    assert decode_body(b"\xff\xfe broken", None, "text/plain").endswith("broken")
