"""Local files through unstructured, offline: structure, titles, ids, categories, failures."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.domain import Category, RawDocument, User, document_id_for_file
from ingest.errors import CollectFailure
from ingest.importers import import_path, local_files

AUTHOR = User.from_full_name("Maya Lindqvist")
REPO_ROOT = Path(__file__).resolve().parent.parent

GUIDE_MD = """\
---
title: Front matter title (not used: there is a heading)
date: 2024-03-01
tags: [rag]
---
# Building a Twin

An intro with a [link](https://example.com/x) and more words here.

## Steps

- collect the posts
- clean them carefully

```python
def f(x):
    return x  # indentation kept
```

Closing paragraph.
"""

PAGE_HTML = """\
<!DOCTYPE html><html><head><title>Notes From The Field</title></head>
<body><nav><a href="/">Home</a></nav>
<p>First paragraph of the page, written by hand.</p>
<ul><li>alpha</li><li>beta <a href="https://example.org/b">docs</a></li></ul>
<pre><code>SELECT 1;
SELECT 2;</code></pre>
</body></html>
"""


def make_pdf(lines: list[str], title: str) -> bytes:
    """A tiny real PDF (one page, Helvetica text) written by hand."""

    def esc(s: str) -> str:
        return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    stream = "BT /F1 12 Tf 72 720 Td 16 TL " + " ".join(f"({esc(x)}) Tj T*" for x in lines) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        f"<< /Title ({esc(title)}) >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info 6 0 R >>\n"
        f"startxref\n{xref}\n%%EOF\n"
    ).encode()
    return bytes(out)


def make_docx() -> bytes:
    from docx import Document

    document = Document()
    document.add_heading("Docx Heading", level=1)
    document.add_paragraph("A paragraph written in a word processor, with enough words to count.")
    document.add_paragraph("first bullet", style="List Bullet")
    document.add_paragraph("second bullet", style="List Bullet")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


@pytest.fixture
def notes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "notes"
    (root / "posts" / "2024").mkdir(parents=True)
    (root / ".obsidian").mkdir()
    (root / "guide.md").write_text(GUIDE_MD, encoding="utf-8")
    (root / "page.html").write_text(PAGE_HTML, encoding="utf-8")
    (root / "short.txt").write_text("Quick thought: small models, big wins.\n", encoding="utf-8")
    (root / "long.txt").write_text(
        "A long essay sentence that keeps going. " * 100, encoding="utf-8"
    )
    (root / "posts" / "2024" / "idea.md").write_text("# An idea\n\nPosted as a short note.\n")
    (root / "report.pdf").write_bytes(
        make_pdf(["Quarterly report on the twin.", "Retrieval got better."], "Twin Report")
    )
    (root / "essay.docx").write_bytes(make_docx())
    (root / "latin1.txt").write_bytes(
        "Caf\u00e9 cr\u00e8me br\u00fbl\u00e9e, na\u00efve r\u00e9sum\u00e9 of the day.\n".encode(
            "cp1252"
        )
    )
    (root / "binary.txt").write_bytes(bytes(range(256)) * 4)
    (root / "garbage.md").write_bytes(
        bytes([1, 2, 3, 4, 5, 6, 7, 8, 14, 15, 0x81, 0x8D, 0x8F, 0x90]) * 40
    )
    (root / "empty.md").write_bytes(b"")
    (root / "huge.txt").write_text("x" * 300_000)
    (root / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (root / ".obsidian" / "workspace.md").write_text("# hidden\n")
    monkeypatch.setattr(local_files, "MAX_FILE_BYTES", 200_000)
    return root


def _by_name(
    items: list[RawDocument | CollectFailure],
) -> tuple[dict[str, RawDocument], dict[str, str]]:
    docs = {
        Path(i.link.removeprefix("file://")).name: i for i in items if isinstance(i, RawDocument)
    }
    failures = {Path(i.item).name: i.reason for i in items if isinstance(i, CollectFailure)}
    return docs, failures


def test_folder_of_files(notes: Path) -> None:
    items = list(import_path(notes, AUTHOR))
    docs, failures = _by_name(items)
    assert set(docs) == {
        "guide.md",
        "page.html",
        "short.txt",
        "long.txt",
        "idea.md",
        "report.pdf",
        "essay.docx",
        "latin1.txt",
    }
    assert set(failures) == {"binary.txt", "garbage.md", "empty.md", "huge.txt", "photo.png"}
    assert "binary" in failures["binary.txt"]
    assert "undecodable" in failures["garbage.md"]
    assert failures["empty.md"] == "empty file"
    assert "too large" in failures["huge.txt"]
    assert "unsupported file type '.png'" in failures["photo.png"]
    # Sorted walk, one item per file, hidden folders skipped.
    names = [Path(getattr(i, "item", "") or i.link).name for i in items]
    assert "workspace.md" not in names and len(items) == 13

    guide = docs["guide.md"]
    data = (notes / "guide.md").read_bytes()
    assert guide.id == document_id_for_file(AUTHOR.id, hashlib.sha256(data).hexdigest())
    assert guide.link == (notes / "guide.md").resolve().as_uri() and guide.link.startswith(
        "file://"
    )
    assert guide.platform == "file" and guide.category == Category.ARTICLES
    assert guide.title == "Building a Twin"
    assert guide.published_at == datetime(2024, 3, 1, tzinfo=UTC)
    text = guide.content["text"]
    assert text.startswith("# Building a Twin")
    assert "## Steps" in text and "- collect the posts\n- clean them carefully" in text
    assert "```\ndef f(x):\n    return x  # indentation kept\n```" in text
    assert "[link](https://example.com/x)" in text
    assert "Front matter title" not in text and "tags:" not in text

    page = docs["page.html"]
    assert page.title == "Notes From The Field" and page.category == Category.ARTICLES
    assert page.published_at is None
    assert "- beta [docs](https://example.org/b)" in page.content["text"]
    assert "```\nSELECT 1;\nSELECT 2;\n```" in page.content["text"]
    assert "Home" not in page.content["text"]  # <nav> dropped

    assert docs["short.txt"].category == Category.POSTS
    assert docs["short.txt"].content == {"text": "Quick thought: small models, big wins."}
    assert docs["long.txt"].category == Category.ARTICLES
    assert docs["idea.md"].category == Category.POSTS  # under a folder named posts

    pdf = docs["report.pdf"]
    assert pdf.title == "Twin Report" and pdf.category == Category.ARTICLES
    assert "Quarterly report on the twin." in pdf.content["text"]
    assert "Retrieval got better." in pdf.content["text"]

    docx = docs["essay.docx"]
    assert docx.title == "Docx Heading"
    assert docx.content["text"].startswith("# Docx Heading")
    assert "- first bullet\n- second bullet" in docx.content["text"]

    assert "Café crème brûlée, naïve résumé" in docs["latin1.txt"].content["text"]


def test_single_file_and_posts_parent(tmp_path: Path) -> None:
    post = tmp_path / "posts" / "launch.md"
    post.parent.mkdir()
    post.write_text("# Launch day\n\nWe shipped.\n")
    (doc,) = list(import_path(post, AUTHOR))
    assert doc.category == Category.POSTS and doc.title == "Launch day"
    assert doc.content == {"text": "# Launch day\n\nWe shipped."}


def test_same_bytes_same_id(tmp_path: Path) -> None:
    a, b = tmp_path / "a.md", tmp_path / "b.md"
    a.write_text("# Same\n\nbody\n")
    b.write_text("# Same\n\nbody\n")
    (doc_a,) = list(import_path(a, AUTHOR))
    (doc_b,) = list(import_path(b, AUTHOR))
    assert doc_a.id == doc_b.id and doc_a.link != doc_b.link


OFFLINE_SCRIPT = textwrap.dedent(
    """
    import socket, sys

    def refuse(*args, **kwargs):
        raise OSError("network is off in this test")

    socket.socket.connect = refuse
    socket.socket.connect_ex = refuse
    socket.create_connection = refuse
    socket.getaddrinfo = refuse

    import spacy.util
    model_installed = spacy.util.is_package("en_core_web_sm")

    if not model_installed:
        # Control: unstructured as shipped tries to download en_core_web_sm and fails offline.
        from unstructured.partition.text import partition_text
        try:
            partition_text(text="This sentence needs a tokenizer to be classified.")
        except Exception as exc:
            print("UNPATCHED_FAILS", type(exc).__name__)
        else:
            print("UNPATCHED_WORKS")

    from ingest.importers.render import (
        elements_to_markdown, partition_html_text, partition_markdown, partition_plain_text,
    )
    from unstructured.nlp import tokenize

    md = elements_to_markdown(partition_markdown("# Title\\n\\nThe twin writes text.\\n"))
    html = elements_to_markdown(partition_html_text("<h2>Head</h2><p>It works offline.</p>"))
    txt = elements_to_markdown(partition_plain_text("One sentence. Another one is here."), headings=False)
    assert md == "# Title\\n\\nThe twin writes text.", md
    assert html == "## Head\\n\\nIt works offline.", html
    assert txt == "One sentence. Another one is here.", txt
    sentences = tokenize.sent_tokenize("One sentence. Another one is here.")
    assert sentences == ["One sentence.", "Another one is here."], sentences
    print("PIPELINE", tokenize._get_nlp().meta["name"], "installed" if model_installed else "")
    print("OK")
    """
)


def test_partitioning_works_with_network_off() -> None:
    """A fresh interpreter with sockets disabled: the shipped tokenizer fails (it downloads
    spaCy's model), ours partitions Markdown, HTML and text."""
    result = subprocess.run(
        [sys.executable, "-c", OFFLINE_SCRIPT],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={
            **os.environ,
            "UNSTRUCTURED_DISABLE_NOTICE": "1",
            "DO_NOT_TRACK": "1",
            "PYTHONPATH": str(REPO_ROOT),
        },
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK" in result.stdout
    if "installed" not in result.stdout:
        assert "UNPATCHED_FAILS" in result.stdout, result.stdout
        assert "PIPELINE twin_offline_en" in result.stdout


def test_plain_text_keeps_lists_and_unwraps_prose(tmp_path: Path) -> None:
    wrapped = (
        "This essay was written in a plain text editor that wraps lines at\n"
        "a fixed width, so every sentence spans several lines of the file\n"
        "and should read as one paragraph.\n\n"
        "Three things:\n1. open with a scene\n2. keep paragraphs short\n- and a bullet\n"
    )
    path = tmp_path / "essay.txt"
    path.write_text(wrapped, encoding="utf-8")
    (doc,) = list(import_path(path, AUTHOR))
    assert doc.content["text"] == (
        "This essay was written in a plain text editor that wraps lines at a fixed width, "
        "so every sentence spans several lines of the file and should read as one paragraph."
        "\n\nThree things:\n\n1. open with a scene\n2. keep paragraphs short\n- and a bullet"
    )
