"""What a fetch hands back: the page (`FetchResult`, decoded on demand) or why not (`FetchError`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field


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


_CHARSET_RE = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.I)
_META_CHARSET_RE = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?([\w.:-]+)", re.I)


def charset_of(content_type: str) -> str | None:
    """The charset named in a Content-Type header value, lower-case, or None."""
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
