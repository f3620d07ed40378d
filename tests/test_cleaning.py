"""Cleaners: junk goes, meaning stays (code byte-exact, URLs, punctuation, Markdown)."""

from __future__ import annotations

from core.domain import Category, RawDocument, User
from ingest.features.cleaning import (
    clean_code,
    clean_document,
    clean_text,
    split_repository,
    strip_tracking,
)

AUTHOR = User.from_full_name("Maya Lindqvist")

CODE_BLOCK = (
    "```python\n"
    "def  keep(x):   # two spaces, trailing spaces and an emoji stay 😀  \n"
    "\n"
    "\n"
    "\n"
    "    return  x\u200b  # zero-width char inside code stays\n"
    "```"
)


def _raw(category: Category, content, title: str = "T") -> RawDocument:
    return RawDocument(
        _id=f"id-{category}",
        author_id=AUTHOR.id,
        author_full_name=AUTHOR.full_name,
        platform="web",
        category=category,
        link="https://example.com/x",
        title=title,
        content=content,
    )


def test_code_blocks_are_kept_byte_exact() -> None:
    text = f"# Title 🚀\n\nSome   text.\n\n{CODE_BLOCK}\n\nAfter."
    cleaned = clean_text(text)
    assert CODE_BLOCK in cleaned
    assert cleaned.startswith("# Title\n\nSome text.")


def test_indented_code_and_inline_code_are_kept() -> None:
    text = "Intro:\n\n    x  =  1   \n    y = 2\n\nUse `a  =  b  ` here 👍."
    cleaned = clean_text(text)
    assert "    x  =  1   \n    y = 2" in cleaned
    assert "`a  =  b  `" in cleaned
    assert "👍" not in cleaned


def test_urls_kept_tracking_params_removed() -> None:
    text = (
        "Read https://example.com/post?id=3&utm_source=newsletter&utm_medium=email#part-2. "
        "And [this](https://medium.com/@maya/on-rag-1a2b?source=post_page-----1a2b----) too, "
        "plus https://example.com/search?q=rag&fbclid=XYZ"
    )
    cleaned = clean_text(text)
    assert "https://example.com/post?id=3#part-2." in cleaned
    assert "(https://medium.com/@maya/on-rag-1a2b)" in cleaned
    assert "https://example.com/search?q=rag" in cleaned
    assert "utm_" not in cleaned and "fbclid" not in cleaned and "post_page" not in cleaned


def test_strip_tracking_keeps_meaningful_params() -> None:
    assert strip_tracking("https://x.io/a?page=2&utm_campaign=z") == "https://x.io/a?page=2"
    assert strip_tracking("https://x.io/a?source=github") == "https://x.io/a?source=github"
    assert strip_tracking("https://x.io/a?gclid=1") == "https://x.io/a"


def test_emoji_and_unicode_junk_removed() -> None:
    text = (
        "Great\u200b news\u200d! 🎉🎉 Launch\u00a0day\u2003is here 👩🏽‍💻 "
        "\ufeffwith ﬁne ligatures, ＦＵＬＬ width\x07 and\u202e bidi."
    )
    cleaned = clean_text(text)
    assert cleaned == "Great news! Launch day is here with fine ligatures, FULL width and bidi."
    assert clean_text("🚀 Launch day 🎉.\n- 👍 item") == "Launch day.\n- item"


def test_meaningful_unicode_and_punctuation_kept() -> None:
    text = "E = mc² and H₂O; ½ cup — “quoted” … café → naïve, 50 € (ok?) 東京 ✓?"
    cleaned = clean_text(text)
    for keep in ("mc²", "H₂O", "½", "—", "“quoted”", "café", "→", "naïve", "€", "(ok?)", "東京"):
        assert keep in cleaned
    assert "…" in cleaned or "..." in cleaned


def test_boilerplate_lines_removed_structure_kept() -> None:
    text = "\n".join(
        [
            "# Why chunking matters",
            "Sign up",
            "5 min read",
            "Share this post",
            "## Budget",
            "- first point",
            "- second point",
            "1. numbered",
            "> a quote",
            "",
            "---",
            "[Subscribe](https://maya.substack.com/subscribe?utm_medium=web)",
            "Thanks for reading Maya's Notes! Subscribe for free to receive new posts.",
            "I signed up for the course and shared the notes with my team.",
            "Written by Maya Lindqvist",
            "Written by hand, these notes took a week.",
            "More from the benchmark later.",
        ]
    )
    cleaned = clean_text(text)
    lines = cleaned.split("\n")
    for junk in ("Sign up", "5 min read", "Share this post", "Thanks for reading", "Written by Maya"):
        assert not any(line.startswith(junk) for line in lines), junk
    assert "Subscribe" not in cleaned
    for keep in ("# Why chunking matters", "## Budget", "- first point", "- second point",
                 "1. numbered", "> a quote", "---",
                 "I signed up for the course and shared the notes with my team.",
                 "Written by hand, these notes took a week.", "More from the benchmark later."):
        assert keep in lines, keep


def test_generic_chrome_dates_counters_and_widgets() -> None:
    text = "\n".join([
        "Maya Lindqvist", "Jul 20, 2024 · 6 min read", "", "7", "", "12 comments", "",
        "Facebook", "", "Twitter", "", "Note", "", "Other", "", "Share", "",
        "The retriever was fine; the chunks were not.", "",
        "Note", "", "This idea was later rejected.", "",
        "2019-10-13", "", "- Added the second retriever.", "",
        "| 7 | 12 |", "", "1.", "", "```", "Share", "7", "```",
    ])  # fmt: skip
    cleaned = clean_text(text)
    lines = cleaned.split("\n")
    for junk in ("Jul 20, 2024 · 6 min read", "7", "12 comments", "Facebook", "Twitter", "Other", "Share"):
        assert lines.count(junk) == (1 if junk in ("Share", "7") else 0), junk  # once: in code
    # An admonition's "Note", a changelog's date over its list, a table row, a list marker
    # and a bare name (it needs the author's corpus to be chrome) stay.
    for keep in ("Maya Lindqvist", "Note", "2019-10-13", "- Added the second retriever.",
                 "| 7 | 12 |", "1.", "The retriever was fine; the chunks were not."):
        assert keep in lines, keep
    assert lines.count("Note") == 1
    assert cleaned.endswith("```\nShare\n7\n```")


def test_whitespace_collapsed_outside_code() -> None:
    cleaned = clean_text("a    b\t\tc   \n\n\n\n\nd\r\ne")
    assert cleaned == "a b c\n\nd\ne"


def test_article_and_post_documents() -> None:
    article = clean_document(
        _raw(Category.ARTICLES, {"title": "T", "subtitle": "On chunks", "text": "Body 🚀 text."})
    )
    assert article.content == "On chunks\n\nBody text."
    assert article.document_id == "id-articles" and article.category == "articles"
    assert article.content_hash  # carries the warehouse hash (the sync's commit marker)
    post = clean_document(_raw(Category.POSTS, {"text": "Hello\u200b world 👋", "image_urls": []}))
    assert post.content == "Hello world"


def test_repository_code_exact_and_file_headers() -> None:
    files = {
        "src/app.py": "import os\r\n\r\n\r\ndef main():  \r\n    return  os.sep\t\r\n",
        "README.md": "# Demo 🚀\n\nRun it.\n",
        "empty.txt": "   \n\n",
        "web/index.js": "const a  =  1;\nfunction f() {\n\n  return a; // 😀\n}\n",
    }
    cleaned = clean_document(_raw(Category.REPOSITORIES, files))
    assert "empty.txt" not in cleaned.content
    parsed = dict(split_repository(cleaned.content))
    assert list(parsed) == ["README.md", "src/app.py", "web/index.js"]
    assert parsed["src/app.py"] == "import os\n\n\ndef main():\n    return  os.sep"
    assert parsed["web/index.js"] == files["web/index.js"].rstrip("\n")
    assert parsed["README.md"] == "# Demo 🚀\n\nRun it."  # code files are not prose-cleaned
    assert cleaned.content.startswith("# file: README.md\n# Demo")


def test_clean_code_only_normalises_line_ends_and_trailing_spaces() -> None:
    code = "\ufeffx = 1  \r\n\tif x:\r\n\t\ty = '  a  '\r\n"
    assert clean_code(code) == "x = 1\n\tif x:\n\t\ty = '  a  '"
