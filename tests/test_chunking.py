"""Chunkers: token budgets by the embedding model's tokenizer, structure-aware cuts."""

from __future__ import annotations

import pytest

from core.domain import Category, CleanedDocument, chunk_id_for
from ingest.features.chunking import ARTICLE_BUDGET, CODE_BUDGET, POST_BUDGET, chunk_document
from ingest.features.cleaning import join_repository
from ingest.features.code_chunking import chunk_code, code_blocks
from ingest.features.prose_chunking import chunk_text
from ingest.features.tokens import count_tokens, get_tokenizer

pytestmark = pytest.mark.slow  # loads the embedding model (once per session)


@pytest.fixture(scope="module")
def tok():
    return get_tokenizer()


def _doc(category: Category, content: str) -> CleanedDocument:
    return CleanedDocument(
        document_id="doc-1",
        author_id="a",
        author_full_name="Maya Lindqvist",
        platform="web",
        category=category,
        link="https://example.com/x",
        title="T",
        content=content,
    )


def _sentence(i: int) -> str:
    return f"Sentence {i} explains how retrieval pipelines split long documents into chunks."


def _article(sections: int = 3, paras: int = 4, sentences: int = 6) -> str:
    out = []
    n = 0
    for s in range(sections):
        out.append(f"## Section {s}")
        for _ in range(paras):
            out.append(" ".join(_sentence(n := n + 1) for _ in range(sentences)))
    return "\n\n".join(out)


def test_article_chunks_respect_budget_and_keep_all_text(tok) -> None:
    text = _article()
    chunks = chunk_document(_doc(Category.ARTICLES, text), tok)
    assert len(chunks) > 3
    counts = count_tokens(tok, [c.content for c in chunks])
    assert max(counts) <= ARTICLE_BUDGET
    # Including [CLS]/[SEP] every chunk fits the model's window: nothing is truncated.
    assert max(len(tok(c.content)["input_ids"]) for c in chunks) <= 256
    joined = "\n".join(c.content for c in chunks)
    for i in range(1, 3 * 4 * 6 + 1):
        assert _sentence(i) in joined
    assert [c.chunk_index for c in chunks] == list(range(len(chunks)))
    assert all(c.id == chunk_id_for("doc-1", c.chunk_index, c.content) for c in chunks)


def test_chunks_start_at_headings_and_overlap_within_sections(tok) -> None:
    chunks = chunk_text(_article(sections=2, paras=6), ARTICLE_BUDGET, 32, tok)
    starts = [c for c in chunks if c.startswith("## Section")]
    assert [c.split("\n")[0] for c in starts] == ["## Section 0", "## Section 1"]
    # A section longer than one chunk: consecutive chunks share their edge sentences.
    first, second = chunks[0], chunks[1]
    last_sentence = first.rsplit(". ", 1)[-1]
    assert last_sentence.rstrip(".") in second


def test_sentence_and_word_fallbacks(tok) -> None:
    one_paragraph = " ".join(_sentence(i) for i in range(60))
    chunks = chunk_text(one_paragraph, 64, 0, tok)
    assert max(count_tokens(tok, chunks)) <= 64
    assert all(c.endswith(".") for c in chunks)  # cut at sentence ends
    no_punctuation = " ".join(f"word{i}" for i in range(500))
    pieces = chunk_text(no_punctuation, 50, 0, tok)
    assert max(count_tokens(tok, pieces)) <= 50
    assert " ".join(pieces).split() == no_punctuation.split()


def test_posts_use_a_smaller_budget(tok) -> None:
    text = " ".join(_sentence(i) for i in range(40))
    chunks = chunk_document(_doc(Category.POSTS, text), tok)
    assert len(chunks) > 1
    assert max(count_tokens(tok, [c.content for c in chunks])) <= POST_BUDGET


def test_code_block_inside_article_stays_whole(tok) -> None:
    code = "```python\ndef f(x):\n\n    return x + 1\n```"
    text = f"## Intro\n\n{_sentence(1)}\n\n{code}\n\n{_sentence(2)}"
    chunks = chunk_text(text, ARTICLE_BUDGET, 32, tok)
    assert any(code in c for c in chunks)


PYTHON = '''"""Module docstring."""
import os

CONSTANT = 3


# A comment that belongs to alpha.
def alpha(x):
    total = 0
    for i in range(x):
        total += i * {n}
    return total


@decorator
def beta(y):
    return [value for value in y if value]


class Gamma:
    """A class."""

    def method(self):

        return os.sep
'''


def test_python_chunked_at_def_and_class(tok) -> None:
    blocks = code_blocks("pkg/mod.py", PYTHON.format(n=1))
    opened = [b.split("\n")[0] for b, opens in blocks if opens]
    assert opened == ["# A comment that belongs to alpha.", "@decorator", "class Gamma:"]
    # Tight budget: every chunk starts at a top-level statement, never inside a function.
    code = "\n\n".join(PYTHON.format(n=i).replace("alpha", f"alpha{i}") for i in range(3))
    chunks = chunk_code([("pkg/mod.py", code)], 60, tok)
    assert len(chunks) > 3
    for chunk in chunks:
        header, _, body = chunk.partition("\n")
        assert header == "# file: pkg/mod.py"
        assert body.split("\n")[0].startswith(('"""', "import", "CONSTANT", "#", "@", "class", "def"))
    assert max(count_tokens(tok, chunks)) <= 60


def test_code_chunks_reassemble_to_the_exact_file(tok) -> None:
    code = PYTHON.format(n=7)
    chunks = chunk_code([("m.py", code)], 40, tok)
    bodies = [c.partition("\n")[2] for c in chunks]
    assert "\n".join(bodies).split() == code.split()
    # Byte-exact inside each chunk: every body is a verbatim slice of the file.
    for body in bodies:
        assert body in code


def test_other_languages_split_outside_braces(tok) -> None:
    js = "\n\n".join(
        f"function f{i}(a) {{\n  const x = a + {i};\n\n  return x;\n}}" for i in range(30)
    )
    chunks = chunk_code([("web/app.js", js)], 50, tok)
    for chunk in chunks:
        body = chunk.partition("\n")[2]
        assert body.startswith("function f")
        assert body.count("{") == body.count("}")
        assert body in js


def test_repository_document_chunks_carry_paths(tok) -> None:
    files = {"a.py": PYTHON.format(n=2), "b/c.js": "const a = 1;\n"}
    chunks = chunk_document(_doc(Category.REPOSITORIES, join_repository(files)), tok)
    assert {c.content.split("\n")[0] for c in chunks} == {"# file: a.py", "# file: b/c.js"}
    assert max(count_tokens(tok, [c.content for c in chunks])) <= CODE_BUDGET


def test_big_class_is_cut_at_its_methods(tok) -> None:
    methods = "\n\n".join(
        f"    def method_{i}(self, value):\n        result = value * {i}\n"
        f"        return self.combine(result, {i})"
        for i in range(12)
    )
    code = f"class Big:\n    \"\"\"Many methods.\"\"\"\n\n{methods}\n"
    chunks = chunk_code([("big.py", code)], 80, tok)
    assert len(chunks) > 2
    bodies = [c.partition("\n")[2] for c in chunks]
    assert bodies[0].startswith("class Big:")
    assert all(b.startswith("    def method_") for b in bodies[1:])
    assert all(b in code for b in bodies)


def test_chunks_carry_the_section_path_where_they_start(tok) -> None:
    from ingest.features.prose_chunking import chunk_text_sections

    para = " ".join(_sentence(i) for i in range(8))
    text = "\n\n".join(["# Design", para, "## Storage", para, para, "## Search", para,
                        "# Results", para])  # fmt: skip
    pairs = chunk_text_sections(text, 120, 0, tok)
    sections = [section for _, section in pairs]
    assert sections[0] == "Design"
    assert "Design > Storage" in sections and "Design > Search" in sections
    assert sections[-1] == "Results"  # a new top-level heading resets the path
    # The chunk's own text starts in the section it names.
    for chunk, section in pairs:
        if chunk.startswith("#"):
            assert section.endswith(chunk.splitlines()[0].lstrip("#").strip())
    chunks = chunk_document(_doc(Category.ARTICLES, text), tok)
    assert [c.section for c in chunks] == sections


def test_article_budget_follows_the_settings(tok, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.settings import settings_override

    text = _article()
    with settings_override(CHUNK_TOKENS=100, CHUNK_OVERLAP=0):
        small = chunk_document(_doc(Category.ARTICLES, text), tok)
    default = chunk_document(_doc(Category.ARTICLES, text), tok)
    assert max(count_tokens(tok, [c.content for c in small])) <= 100
    assert len(small) > len(default)
