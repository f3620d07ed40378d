"""Turn documents into Markdown-ish text through `unstructured` partitioners (offline).

Every partition goes through `partition_*` here, after `use_offline_nlp()` (see
offline_nlp.py), and the resulting elements are rendered back to Markdown: headings become
`#` lines (depth from `<h1>`..`<h6>`, Markdown `#` or DOCX heading styles), list items `- `,
code blocks fenced and verbatim, links kept as `[text](url)`.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sequence
from typing import Any

from ingest.importers.offline_nlp import use_offline_nlp

_SKIPPED_KINDS = {"PageBreak", "Image", "Header", "Footer", "PageNumber"}
_LIST_LINE = re.compile(r"^\s*(?:[-*+\u2022\u00b7\u25aa\u2013]|\d{1,3}[.)])\s+")
_NUMBERED = re.compile(r"^\d{1,3}[.)]\s")
_WRAP_MIN_CHARS = 50


def group_plain_text(text: str) -> str:
    """Paragraph grouping for plain text (replaces unstructured's auto grouper, which merges
    list lines into one element): blocks are separated by blank lines; inside a block, list
    lines stay separate, hard-wrapped prose lines (long lines that do not end a sentence) are
    unwrapped, and other line breaks are kept."""
    blocks = re.split(r"\n\s*\n", text.replace("\r\n", "\n").replace("\r", "\n"))
    out: list[str] = []
    for block in blocks:
        lines = [ln.strip() for ln in block.split("\n") if ln.strip()]
        merged: list[str] = []
        for line in lines:
            if (
                merged
                and not _LIST_LINE.match(line)
                and not _LIST_LINE.match(merged[-1])
                and len(merged[-1]) >= _WRAP_MIN_CHARS
                and not merged[-1].endswith((".", "!", "?", ":", ";"))
            ):
                merged[-1] += " " + line
            else:
                merged.append(line)
        if merged:
            out.append("\n".join(merged))
    return "\n\n".join(out)


def _with_links(text: str, metadata: Any) -> str:
    urls = getattr(metadata, "link_urls", None) or []
    texts = getattr(metadata, "link_texts", None) or []
    for i, url in enumerate(urls):
        url = (url or "").strip()
        if not url or url.startswith(("javascript:", "#")) or url in text:
            continue
        label = (texts[i] if i < len(texts) else "") or ""
        label = label.strip()
        if label and label in text and f"[{label}]" not in text:
            text = text.replace(label, f"[{label}]({url})", 1)
        else:
            text = f"{text} ({url})"
    return text


def elements_to_markdown(elements: Iterable[Any], *, headings: bool = True) -> str:
    """Render unstructured elements as Markdown. `headings=False` renders titles as
    paragraphs (for plain text and PDF text, where "Title" is only a guess)."""
    blocks: list[str] = []
    previous_kind = ""
    for element in elements:
        kind = type(element).__name__
        text = element.text or ""
        if kind in _SKIPPED_KINDS or not text.strip():
            continue
        metadata = element.metadata
        if kind == "CodeSnippet":
            block = f"```\n{text.strip(chr(10))}\n```"
        elif kind == "Title" and headings and metadata.category_depth is not None:
            depth = min(int(metadata.category_depth), 5)
            block = "#" * (depth + 1) + " " + _with_links(text.strip(), metadata)
        elif kind == "ListItem":
            item = _with_links(text.strip(), metadata)
            block = item if _NUMBERED.match(item) else "- " + item
        else:
            block = _with_links(text.strip(), metadata)
        if kind == "ListItem" and previous_kind == "ListItem":
            blocks[-1] += "\n" + block
        else:
            blocks.append(block)
        previous_kind = kind
    return "\n\n".join(blocks).strip()


def first_heading(elements: Sequence[Any]) -> str:
    """Text of the first real heading (an element with a heading depth), or ""."""
    for element in elements:
        if type(element).__name__ == "Title" and element.metadata.category_depth is not None:
            if element.text.strip():
                return element.text.strip()
    return ""


def partition_markdown(text: str) -> list[Any]:
    use_offline_nlp()
    from unstructured.partition.md import partition_md

    return list(partition_md(text=text)) if text.strip() else []


def partition_html_text(html: str) -> list[Any]:
    use_offline_nlp()
    from unstructured.partition.html import partition_html

    return list(partition_html(text=html)) if html.strip() else []


def partition_plain_text(text: str) -> list[Any]:
    use_offline_nlp()
    from unstructured.partition.text import partition_text

    if not text.strip():
        return []
    return list(partition_text(text=group_plain_text(text), paragraph_grouper=False))


def partition_docx_bytes(data: bytes) -> list[Any]:
    use_offline_nlp()
    from unstructured.partition.docx import partition_docx

    return list(partition_docx(file=io.BytesIO(data)))


def html_to_markdown(html: str) -> str:
    """An HTML fragment or page → Markdown. `<br>` inside `<pre>` (Medium's code blocks)
    becomes a newline first, so code keeps its lines."""
    if "<pre" in html and "<br" in html:
        from bs4 import BeautifulSoup

        soup = BeautifulSoup(html, "html.parser")
        for br in soup.select("pre br"):
            br.replace_with("\n")
        html = str(soup)
    return elements_to_markdown(partition_html_text(html))
