"""Site discovery: one address → every post, per fixture site format.

    .venv/bin/python benchmarks/discovery.py [--runs 3]

Serves tests/fixtures/discovery on 127.0.0.1 (Substack, Medium, WordPress, Ghost, Hugo RSS,
Hugo Atom, JSON Feed, sitemap-only sites), runs `crawl_url(ADDRESS)` — the path
`python -m ingest add ADDRESS` takes, without the warehouse — and prints, per format: posts
expected, documents found, recall and precision of their links against the posts, and
documents per minute (median of the runs). Every fetch goes through core.safe_fetch with the
rate limit set to 0 s (a real site would get `CRAWL_MIN_INTERVAL_S` = 1 s between requests).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "discovery"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    server = _load("discovery_server", FIXTURES / "_server.py").DiscoveryServer().start()
    posts = _load("discovery_posts", FIXTURES / "_make_fixtures.py").POSTS
    base = server.base_url
    os.environ.update({
        "DATA_DIR": tempfile.mkdtemp(prefix="bench-discovery-"),
        "CRAWL_ALLOW_HOSTS": '["127.0.0.1"]', "CRAWL_MIN_INTERVAL_S": "0",
        "CRAWL_HOST_MAP": json.dumps({"https://medium.com": f"{base}/medium.com"}),
    })  # fmt: skip
    from core import safe_fetch
    from core.domain import RawDocument, User
    from ingest.crawlers import crawl_url

    author = User.from_full_name("Maya Lindqvist")
    sites = {
        "Substack (RSS, full content)": (f"{base}/substack/", lambda p: f"{base}/substack/p/{p['slug']}", 12),
        "Medium profile (RSS, 1 page challenged)": (
            "https://medium.com/@maya.lindqvist",
            lambda p: f"https://medium.com/@maya.lindqvist/{p['slug']}-{0x3f2a1b9c + p['i']:x}", 8),
        "WordPress (RSS latest 10 + wp-sitemap)": (
            f"{base}/wordpress/", lambda p: f"{base}/wordpress/{p['date']:%Y/%m}/{p['slug']}", 12),
        "Ghost (RSS + sitemap index)": (f"{base}/ghost/", lambda p: f"{base}/ghost/{p['slug']}", 12),
        "Hugo (RSS summaries + sitemap)": (f"{base}/hugo/", lambda p: f"{base}/hugo/posts/{p['slug']}", 12),
        "Hugo Atom (probed /atom.xml)": (
            f"{base}/hugo-atom/", lambda p: f"{base}/hugo-atom/posts/{p['slug']}", 12),
        "JSON Feed": (f"{base}/jsonfeed/",
                      lambda p: f"{base}/jsonfeed/{p['date']:%Y/%m/%d}/{p['slug']}.html", 12),
        "Sitemap only (Yoast index + gzip)": (
            f"{base}/sitemap-only/", lambda p: f"{base}/sitemap-only/{p['slug']}", 12),
    }  # fmt: skip
    rows = []
    for name, (address, link_of, count) in sites.items():
        expected = {link_of(p) for p in posts[:count]}
        rates, links = [], set()
        for _ in range(args.runs):
            safe_fetch.clear_caches()
            started = time.perf_counter()
            docs = [i for i in crawl_url(address, author) if isinstance(i, RawDocument)]
            elapsed = time.perf_counter() - started
            rates.append(len(docs) / elapsed * 60 if elapsed else 0.0)
            links = {d.link for d in docs}
        hits = len(links & expected)
        rows.append((name, len(expected), len(links), hits / len(expected),
                     hits / len(links) if links else 0.0, statistics.median(rates)))  # fmt: skip
    server.stop()
    print("| format | posts expected | found | recall | precision | documents/minute (median of "
          f"{args.runs}) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, expected, found, recall, precision, rate in rows:
        print(f"| {name} | {expected} | {found} | {recall:.2f} | {precision:.2f} | {rate:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
