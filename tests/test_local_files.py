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


RST_FIXTURE = REPO_ROOT / "tests" / "fixtures" / "rst" / "pep-9001.rst"


def test_rst_pep_header_and_structure() -> None:
    (doc,) = list(import_path(RST_FIXTURE, AUTHOR))
    assert isinstance(doc, RawDocument) and doc.category == Category.ARTICLES
    assert doc.title == doc.content["title"] == "Retrieval That Respects Code"
    assert doc.published_at == datetime(2001, 4, 19, tzinfo=UTC)
    assert doc.content["header_authors"] == ["Maya Lindqvist", "Jonas Berg"]
    header = doc.content["header"]
    assert header["PEP"] == "9001" and header["Status"] == "Draft"
    assert header["Post-History"] == "20-Apr-2001, 02-May-2001"  # continuation joined

    text = doc.content["text"]
    for absent in ("PEP: 9001", "Status:", "Draft", "maya@example.com", "19-Apr-2001", "fixture"):
        assert absent not in text, absent  # header and rst comment stay out of the text
    assert text.startswith("# Abstract\n\nThis proposal keeps code blocks whole")
    assert "# Motivation" in text and "## Sphinx-flavoured markup" in text
    assert "[project page](https://example.com/twin)" in text
    assert "- they cut a function in the middle,\n- they drop the indentation," in text
    assert "```\ndef keep(x):\n    return x  # indentation kept\n```" in text
    # Sphinx-only markup keeps its text: code-block with :linenos:, roles, versionadded.
    assert "```\nchunks = split(document, respect_code=True)\n```" in text
    assert "The helper split and the chunking guide describe the details." in text
    assert "Added in version 1.2\n\nCode-aware chunking became the default." in text
    assert ":func:" not in text and "code-block" not in text

    # The header metadata is not embedded: cleaning reads only the text keys.
    from ingest.features.cleaning import clean_document

    cleaned = clean_document(doc).content
    assert cleaned.startswith("# Abstract") and "Jonas Berg" not in cleaned
    assert "Informational" not in cleaned and "Maya Lindqvist" not in cleaned


def test_rst_without_header(tmp_path: Path) -> None:
    path = tmp_path / "2024-05-01-notes.rst"
    path.write_text(
        "Note: this first line is a paragraph, not a header.\n\n"
        "Chunking Notes\n==============\n\nSome prose with ``inline`` code.\n\n"
        "Details\n-------\n\n.. code:: python\n\n   x = 1\n",
        encoding="utf-8",
    )
    (doc,) = list(import_path(path, AUTHOR))
    assert doc.title == "Chunking Notes"
    assert doc.published_at == datetime(2024, 5, 1, tzinfo=UTC)  # file name prefix
    assert set(doc.content) == {"title", "text"}
    assert doc.content["text"] == (
        "Note: this first line is a paragraph, not a header.\n\n# Chunking Notes\n\n"
        "Some prose with inline code.\n\n## Details\n\n```\nx = 1\n```"
    )


def test_rst_header_fields() -> None:
    from ingest.importers import rst

    header, body = rst.split_header("Title: T\nAuthor: guido@python.org (Guido van Rossum)\n\nB\n")
    assert header == {"Title": "T", "Author": "guido@python.org (Guido van Rossum)"}
    assert body == "\nB\n"
    assert rst.author_names(header["Author"]) == ["Guido van Rossum"]
    assert rst.author_names("A B <a@b.c>, solo@b.c, C D") == ["A B", "C D"]
    # Not a header: a non-field line in the block, or no known field name.
    assert rst.split_header("Title: T\nnot a field\n\nB\n")[0] == {}
    assert rst.split_header("Note: draft\n\nB\n")[0] == {}
    assert rst.parse_header_date("2001-04-19") == datetime(2001, 4, 19, tzinfo=UTC)
    assert rst.parse_header_date("19 April 2001") == datetime(2001, 4, 19, tzinfo=UTC)
    assert rst.parse_header_date("31-Feb-2001") is None
    assert rst.parse_header_date("sometime in spring") is None


def test_rst_broken_markup_and_empty(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    # docutils recurses once per nesting level and raises RecursionError here.
    nested = tmp_path / "nested.rst"
    nested.write_text("A paragraph before the list.\n\n" + "* " * 300 + "leaf\n")
    include = tmp_path / "include.rst"
    include.write_text(
        f"Kept text.\n\n.. include:: {nested}\n\n.. raw:: html\n\n   <b>raw html</b>\n"
    )
    only_header = tmp_path / "only-header.rst"
    only_header.write_text("PEP: 1\nTitle: Nothing else\n\n.. just a comment\n")
    docs, failures = _by_name(list(import_path(tmp_path, AUTHOR)))
    assert docs["nested.rst"].content["text"].startswith("A paragraph before the list.")
    assert docs["nested.rst"].content["text"].endswith("* * leaf")
    assert docs["include.rst"].content["text"] == "Kept text."  # no file read, no raw HTML
    assert failures == {"only-header.rst": "no text extracted"}
    err = capfd.readouterr().err  # docutils reports look like "<string>:3: (ERROR/3) …"
    assert "(ERROR/" not in err and "(WARNING/" not in err and "(SEVERE/" not in err


@pytest.mark.slow
def test_ingest_add_folder_with_rst(data_dir: Path, tmp_path: Path, capsys) -> None:
    import json
    import shutil

    from core.warehouse import get_warehouse
    from ingest.cli import main

    src = tmp_path / "peps"
    src.mkdir()
    shutil.copy(RST_FIXTURE, src / RST_FIXTURE.name)
    assert main(["add", str(src), "--author", "Maya Lindqvist"]) == 0
    assert "collected: 1 added, 0 updated, 0 unchanged, 0 failed" in capsys.readouterr().out
    assert main(["status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["warehouse"]["articles"] == status["vector_store"]["cleaned_articles"] == 1
    assert status["vector_store"]["embedded_articles"] >= 1  # one point per chunk

    (expected,) = list(import_path(src / RST_FIXTURE.name, AUTHOR))
    with get_warehouse() as warehouse:
        record = warehouse.get("articles", expected.id)
    assert record is not None and record["title"] == "Retrieval That Respects Code"
    assert record["content"]["header_authors"] == ["Maya Lindqvist", "Jonas Berg"]
    assert "# Abstract" in record["content"]["text"]


def test_offline_nlp_adapter_matches_the_pinned_unstructured() -> None:
    """`ingest.importers.offline_nlp` replaces two private functions of unstructured: they
    must still exist, under the version the adapter was written for."""
    import importlib.metadata

    from unstructured.nlp import tokenize

    from ingest.importers.offline_nlp import PINNED_UNSTRUCTURED

    assert importlib.metadata.version("unstructured") == PINNED_UNSTRUCTURED, (
        "unstructured changed: re-check ingest/importers/offline_nlp.py, then update the pin"
    )
    assert callable(tokenize._get_nlp) and callable(tokenize._install_spacy_model)
    assert {"sent_tokenize", "word_tokenize", "pos_tag"} <= set(dir(tokenize))
