"""A GitHub user or organisation (github.com/NAME): their public, non-fork repositories.

The list comes from the GitHub REST API, `GET {API}/users/NAME/repos` (it answers for
organisations too), paged 100 at a time, fetched through `core.safe_fetch` like any page.
`API` is `https://api.github.com` unless the `GITHUB_API_URL` environment variable names
another base (a GitHub Enterprise server, or a local fixture in tests; read at call time).
Each repository then goes through the existing `GitHubCrawler` (clone + repository walker).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from urllib.parse import urlsplit

from core.safe_fetch import FetchError, fetch
from ingest.crawlers.github import _RESERVED

DEFAULT_API = "https://api.github.com"
PER_PAGE = 100
MAX_PAGES = 20

_ACCOUNT_RE = re.compile(
    rf"^https?://(?:www\.)?github\.com/(?!(?:{_RESERVED})/?$)(?P<owner>[A-Za-z0-9][A-Za-z0-9-]{{0,38}})/?$",
    re.I,
)


def github_api_base() -> str:
    return (os.environ.get("GITHUB_API_URL") or DEFAULT_API).rstrip("/")


def account_of(url: str) -> str | None:
    """NAME for github.com/NAME (a user or organisation page), else None."""
    match = _ACCOUNT_RE.match(url.strip())
    return match["owner"] if match else None


def public_repositories(owner: str) -> Iterator[tuple[str, str]]:
    """(html_url, "") for each public non-fork repository, or (name, reason) for one skipped.

    Raises FetchError when the listing itself cannot be read (the first page)."""
    seen: set[str] = set()
    for page in range(1, MAX_PAGES + 1):
        api_url = (
            f"{github_api_base()}/users/{owner}/repos"
            f"?per_page={PER_PAGE}&type=owner&sort=pushed&page={page}"
        )
        try:
            result = fetch(api_url)
            repos = json.loads(result.text)
        except FetchError:
            if page == 1:
                raise
            return
        except ValueError as exc:
            raise FetchError(api_url, f"GitHub API answered with invalid JSON ({exc})") from None
        if not isinstance(repos, list):
            message = repos.get("message", "") if isinstance(repos, dict) else ""
            raise FetchError(api_url, f"GitHub API: unexpected answer {message!r}".strip())
        new = 0
        for repo in repos:
            if not isinstance(repo, dict):
                continue
            url = str(repo.get("html_url") or "")
            name = str(repo.get("full_name") or url)
            if not url or url in seen:
                continue
            seen.add(url)
            new += 1
            host = (urlsplit(url).hostname or "").lower()
            if host not in ("github.com", "www.github.com"):
                yield name, f"not on github.com ({host})"
            elif repo.get("fork"):
                yield name, "a fork (only the account's own repositories are collected)"
            elif repo.get("private"):
                yield name, "private"
            else:
                yield url, ""
        if len(repos) < PER_PAGE or not new:
            return
