"""Links in a request: fetched (safely, within a deadline and a size cap) and attached to
the context as readable page text; a page that cannot be read becomes a note instead."""

import re
from typing import Any

from langchain_core.documents import Document

# Shown in the context when a linked page could not be read.
LINK_FAILED_NOTE = "The page at {url} could not be read ({reason}); answer without it."


def _main_text(result: Any, max_chars: int) -> str:
    """Readable text of a fetched page: the article/main element when there is one."""
    text = result.text
    if getattr(result, "is_html", False):
        from bs4 import BeautifulSoup

        soup = BeautifulSoup(text, "html.parser")
        for tag in soup(["script", "style", "noscript", "nav", "header", "footer", "aside", "form"]):
            tag.decompose()
        root = soup.find("article") or soup.find("main") or soup.body or soup
        text = root.get_text("\n")
    text = re.sub(r"[ \t]+", " ", text)
    text = re.sub(r"\n\s*\n+", "\n\n", text).strip()
    return text[:max_chars]


def fetch_link(
    url: str, max_chars: int, deadline_s: float | None = None, max_bytes: int | None = None
) -> tuple[Document | None, str | None]:
    """(the page as a context document, None) or (None, a note saying why it was not read)."""
    from core.safe_fetch import FetchError, fetch

    try:
        result = fetch(url, deadline_s=deadline_s, max_bytes=max_bytes)
        text = _main_text(result, max_chars)
    except FetchError as exc:
        return None, LINK_FAILED_NOTE.format(url=url, reason=exc.reason)
    except Exception as exc:  # noqa: BLE001 - a bad page must never crash the request
        return None, LINK_FAILED_NOTE.format(url=url, reason=str(exc) or type(exc).__name__)
    if not text:
        return None, LINK_FAILED_NOTE.format(url=url, reason="no readable text")
    return (
        Document(
            page_content=text,
            metadata={"link": getattr(result, "final_url", url) or url, "collection": "link",
                      "title": "", "source": "request link"},
        ),
        None,
    )
