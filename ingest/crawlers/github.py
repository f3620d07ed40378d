"""GitHub repositories: github.com/<owner>/<repo>[/tree/…] → one `repositories` document.

The repository is cloned (`git clone --depth 1`, falling back to a full clone for servers
that cannot do shallow fetches, such as "dumb HTTP" ones) into a temporary folder and the
checkout handed to the repository walker `ingest.importers.git_repo.repository_document`.

Safety: the clone URL (after `CRAWL_HOST_MAP`) passes `core.safe_fetch.check_url` first (http/
https only, public addresses unless allow-listed), and git is pinned to the checked address
(`http.curloptResolve`), may not follow redirects, speaks only http/https (no file:, ssh:,
submodules elsewhere), runs with no user/system git config or credential prompts, checks
symlinks out as plain files (so a link to /etc/passwd stays a one-line text file) and is
killed past `CLONE_TIMEOUT_S` or when the checkout grows beyond `CLONE_MAX_BYTES`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

from core.domain import Category, Platform, RawDocument, User
from core.safe_fetch import FetchError, check_url, map_url
from core.settings import get_settings
from ingest.crawlers.base import BaseCrawler
from ingest.errors import CollectFailure

CLONE_TIMEOUT_S = 300.0
CLONE_MAX_BYTES = 500 * 1024 * 1024
GITHUB = "https://github.com"

_RESERVED = (
    "about|account|apps|blog|collections|contact|customer-stories|enterprise|events|explore|"
    "features|gist|issues|login|logout|marketplace|new|notifications|orgs|organizations|pricing|"
    "pulls|search|security|settings|site|sponsors|topics|trending|users|codespaces|copilot|"
    "readme|team|signup|join|dashboard"
)
_REPO_RE = re.compile(
    rf"^https?://(?:www\.)?github\.com/(?!(?:{_RESERVED})(?:/|$))"
    r"(?P<owner>[A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))/(?P<repo>[A-Za-z0-9._-]+?)(?:\.git)?/?(?:[/?#].*)?$",
    re.I,
)


class CloneError(Exception):
    pass


def _dir_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def clone_repository(
    clone_url: str,
    dest: Path,
    *,
    addresses: list[str],
    timeout_s: float | None = None,
    max_bytes: int | None = None,
) -> None:
    """Clone `clone_url` into `dest` under the limits above; raise CloneError with a reason."""
    timeout_s = CLONE_TIMEOUT_S if timeout_s is None else timeout_s
    max_bytes = CLONE_MAX_BYTES if max_bytes is None else max_bytes
    settings = get_settings()
    parts = urlsplit(clone_url)
    home = dest.parent / ".git-home"
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C",
        "LC_ALL": "C",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "/bin/true",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_ALLOW_PROTOCOL": "http:https",
        "GIT_LFS_SKIP_SMUDGE": "1",
    }
    config = [
        "-c", "http.followRedirects=false",
        "-c", "core.symlinks=false",
        "-c", "protocol.file.allow=never",
        "-c", "credential.helper=",
        "-c", f"http.userAgent={settings.CRAWL_USER_AGENT}",
        "-c", "http.lowSpeedLimit=1000",
        "-c", f"http.lowSpeedTime={max(10, int(settings.CRAWL_TIMEOUT_S))}",
    ]  # fmt: skip
    if addresses:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        pinned = ",".join(f"[{a}]" if ":" in a else a for a in addresses)
        config += ["-c", f"http.curloptResolve={parts.hostname}:{port}:{pinned}"]

    def run(shallow: bool) -> tuple[int, str]:
        if dest.exists():
            shutil.rmtree(dest)
        args = ["git", *config, "clone", "--quiet", "--single-branch", "--no-tags"]
        if shallow:
            args += ["--depth", "1"]
        args += ["--", clone_url, str(dest)]
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(
                args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err
            )
            started = time.monotonic()
            try:
                while proc.poll() is None:
                    time.sleep(0.1)
                    if time.monotonic() - started > timeout_s:
                        raise CloneError(f"git clone timed out after {timeout_s:g} s")
                    if dest.exists() and _dir_size(dest) > max_bytes:
                        raise CloneError(f"repository larger than {max_bytes // (1024 * 1024)} MB")
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            err.seek(0)
            return proc.returncode, err.read().decode("utf-8", "replace")

    code, stderr = run(shallow=True)
    if code != 0 and ("shallow" in stderr or "dumb http" in stderr.lower()):
        code, stderr = run(shallow=False)
    if code != 0:
        message = " ".join(stderr.split())
        if re.search(r"not found|404|does not appear to be a git repository", message, re.I):
            raise CloneError("repository not found (or private)")
        if re.search(r"\b30[12378]\b|redirect", message, re.I):
            raise CloneError(f"git clone refused a redirect ({message[:200]})")
        raise CloneError(f"git clone failed: {message[:300] or f'exit code {code}'}")
    if _dir_size(dest) > max_bytes:
        raise CloneError(f"repository larger than {max_bytes // (1024 * 1024)} MB")


def _repository_walker() -> Callable[[Path, str, User, str], RawDocument]:
    from ingest.importers.git_repo import repository_document

    return repository_document


class GitHubCrawler(BaseCrawler):
    platform = Platform.GITHUB.value
    category = Category.REPOSITORIES
    patterns = (_REPO_RE.pattern,)

    @classmethod
    def matches(cls, url: str) -> bool:
        return _REPO_RE.match(url) is not None

    def crawl(self, url: str, author: User) -> Iterator[RawDocument | CollectFailure]:
        match = _REPO_RE.match(url.strip())
        if not match:
            yield CollectFailure(
                url, "not a GitHub repository URL (expected github.com/OWNER/REPO)"
            )
            return
        owner, repo = match["owner"], match["repo"]
        # GitHub names are case-insensitive: one canonical spelling keeps ids stable.
        link = f"{GITHUB}/{owner.lower()}/{repo.lower()}"
        clone_url = map_url(f"{link}.git")
        try:
            addresses = check_url(clone_url)
        except FetchError as exc:
            yield CollectFailure(url, exc.reason)
            return
        try:
            walker = _repository_walker()
        except ImportError as exc:
            yield CollectFailure(url, f"repository walker unavailable ({exc})")
            return
        with tempfile.TemporaryDirectory(prefix="twin-clone-") as tmp:
            dest = Path(tmp) / repo
            try:
                clone_repository(clone_url, dest, addresses=addresses)
            except CloneError as exc:
                yield CollectFailure(url, str(exc))
                return
            except OSError as exc:  # git missing, disk full …
                yield CollectFailure(url, f"git clone failed: {exc}")
                return
            try:
                document = walker(dest, link, author, self.platform)
            except Exception as exc:  # noqa: BLE001 - one bad repository must not stop the run
                yield CollectFailure(url, f"could not read the repository: {exc}")
                return
        yield document
