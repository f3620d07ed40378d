"""Sharing the embedded vector store: the process that holds it (the API server) lends it
to the others on this machine, so the twin learns while it serves.

Qdrant Edge lets one process open a folder (it locks each shard's write-ahead log; 0.9.0
has no read-only or shared opening). The server therefore writes a share file,
`DATA_DIR/qdrant/share.json` (mode 0600: address, a random token, its pid), and serves
the part of Qdrant's REST API this project uses at `/store` (`retrievers.store_api`), backed
by the store it holds. A process that finds the store locked reads the share file and, when
that server answers to the token, gets a `QdrantClient` pointed at `/store` — the same
client as with `QDRANT_URL` — so `ingest add`, `ingest sync`, `finetune watch` and the
rest run unchanged, and the server's next request reads what they wrote.

Reading the token needs read access to DATA_DIR: the same trust as opening the store.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

SHARE_FILE = "share.json"
STORE_PREFIX = "/store"
TOKEN_HEADER = "api-key"  # the header qdrant-client sends its key in
PROBE_TIMEOUT_S = 5.0
CLIENT_TIMEOUT_S = 300
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


@dataclass(frozen=True)
class StoreShare:
    """Where the process holding the store answers (`url`), the token it takes, its pid."""

    url: str
    token: str
    pid: int

    def accepts(self, presented: str | None) -> bool:
        """Whether `presented` is this share's token (constant-time)."""
        return bool(presented) and hmac.compare_digest(
            str(presented).encode("utf-8"), self.token.encode("utf-8")
        )


def share_path(qdrant_path: Path) -> Path:
    return qdrant_path / SHARE_FILE


def local_url(host: str, port: int) -> str:
    """The URL a process on this machine reaches a server bound to `host:port` at."""
    host = _WILDCARDS.get(host, host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def publish_share(qdrant_path: Path, url: str) -> StoreShare:
    """Write a new share file (0600, atomically) for this process serving at `url`."""
    share = StoreShare(url=url.rstrip("/"), token=secrets.token_urlsafe(32), pid=os.getpid())
    qdrant_path.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=qdrant_path, prefix=f".{SHARE_FILE}.")  # created 0600
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(asdict(share), fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, share_path(qdrant_path))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return share


def withdraw_share(qdrant_path: Path, share: StoreShare) -> None:
    """Remove the share file if it is still `share`'s (a newer server may have replaced it)."""
    current = read_share(qdrant_path)
    if current is not None and current.token == share.token:
        share_path(qdrant_path).unlink(missing_ok=True)


def read_share(qdrant_path: Path) -> StoreShare | None:
    """The share file's content, or None when there is none (or it cannot be read)."""
    try:
        data = json.loads(share_path(qdrant_path).read_text("utf-8"))
        return StoreShare(url=str(data["url"]), token=str(data["token"]), pid=int(data["pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def probe_share(share: StoreShare) -> str | None:
    """None when the server behind `share` answers to its token, else why not."""
    import httpx

    try:
        response = httpx.get(
            f"{share.url}{STORE_PREFIX}/collections",
            headers={TOKEN_HEADER: share.token},
            timeout=PROBE_TIMEOUT_S,
        )
    except httpx.HTTPError as exc:
        return f"the server at {share.url} (process {share.pid}) does not answer: {exc}"
    if response.status_code != 200:
        return (
            f"the server at {share.url} refused the store's token (HTTP {response.status_code}): "
            "it is not the process holding this store"
        )
    return None


def shared_client(share: StoreShare) -> QdrantClient:
    """A qdrant-client over the server's `/store` (the code path QDRANT_URL takes)."""
    from qdrant_client import QdrantClient

    return QdrantClient(
        url=share.url,
        prefix=STORE_PREFIX,
        headers={TOKEN_HEADER: share.token},
        timeout=CLIENT_TIMEOUT_S,
        check_compatibility=False,
        https=False,
    )


def share_lost(exc: BaseException) -> bool:
    """Whether `exc` is the shared store's server going away mid-run (connection refused or
    reset, a timeout), as opposed to an error the store itself reported."""
    import httpx
    from qdrant_client.http.exceptions import ResponseHandlingException

    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ResponseHandlingException | httpx.TransportError):
            return True
        cause = cause.__cause__ or cause.__context__
    return False
