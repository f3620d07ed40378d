"""Corpus chrome: the lines that recur across one author's posts (byline, share widgets,
plug paragraphs) are stripped, the author's words, headings and code are not; at sync the
cleaned and embedded features lose the chrome, the warehouse keeps it, and a change of an
author's chrome re-cleans exactly that author's documents."""

from __future__ import annotations

import pytest

from core.domain import Category, RawDocument, User, document_id_for_link
from ingest.features.boilerplate import (
    CorpusChrome,
    chrome_lines,
    is_generic_chrome,
    normalize_line,
)

PAUL = User.from_full_name("Paul Iusztin")
PROSE = [
    "Most retrieval bugs are ingestion bugs wearing a disguise.",
    "A feature store is a contract between the pipeline and the model.",
    "Evaluate the retriever before you blame the generator for an answer.",
    "Chunk by the tokenizer of the embedding model, not by characters.",
    "Keep the raw documents: every cleaning rule will change twice.",
    "Streaming answers make a slow model feel fast enough for a demo.",
    "A twin that recites its byline has learned the page, not the author.",
]
CODE = "```python\nimport numpy as np\nPaul Iusztin\nshare = 7\n```"
PLUG = [
    "If you want to build production LLM systems end to end,",
    "the free LLM Twin course walks you through every component.",
]
CHROME = ["Paul Iusztin", "Facebook", "Twitter", "Note", "Other", "Share",
          "Check out the full lesson on Medium", "min read", *PLUG]  # fmt: skip


def _post(i: int, extra: str = "") -> str:
    """A Substack-like export: chrome around real prose, dates and counts varying."""
    return "\n".join([
        f"# Lesson {i}: what I learned", "", "Paul Iusztin", f"Jul {i + 3}, 2024", "",
        f"{i * 3 + 5} min read", "", str(7 + i * 11), "",
        "Facebook", "", "Twitter", "", "Note", "", "Other", "", "Share", "",
        "## Motivation", "", PROSE[i], "", f"- {PROSE[i - 1].split()[0].lower()} first", "",
        CODE, "", *([extra, ""] if extra else []), *PLUG, "",
        "Check out the full lesson on Medium", "",
    ])  # fmt: skip


def _prose_only(text: str) -> str:
    return text.replace(CODE, "")


def test_recurring_chrome_removed_prose_heading_and_code_kept() -> None:
    posts = [_post(i) for i in range(5)]
    chrome = CorpusChrome.fit(posts)
    for i, post in enumerate(posts):
        out = chrome.strip(post)
        for junk in CHROME:
            assert junk not in _prose_only(out), (junk, out)
        assert f"Jul {i + 3}, 2024" not in out and f"{7 + i * 11}" not in _prose_only(out)
        assert PROSE[i] in out and f"- {PROSE[i - 1].split()[0].lower()} first" in out
        assert "## Motivation" in out  # a recurring heading is structure
        assert f"# Lesson {i}: what I learned" in out
        assert CODE in out  # recurring lines inside code stay, byte for byte
        assert "\n\n\n" not in out
    # What is learned is the recurring text, normalised; headings and code are not in it.
    assert "paul iusztin" in chrome.lines and "motivation" not in chrome.lines
    assert "import numpy as np" not in chrome.lines
    assert "\n".join(normalize_line(line) for line in PLUG) in chrome.blocks
    assert chrome.is_chrome("PAUL   IUSZTIN") and chrome.is_chrome("Jan 1, 2023")
    assert not chrome.is_chrome("## Paul Iusztin") and not chrome.is_chrome(PROSE[0])


def test_thresholds_single_document_and_fingerprint() -> None:
    posts = [_post(i) for i in range(5)]
    # A line in 2 of 5 posts is below min_documents=3; in 3 of 5 it is chrome.
    two = CorpusChrome.fit([_post(i, "Join us on Discord." if i < 2 else "") for i in range(5)])
    three = CorpusChrome.fit([_post(i, "Join us on Discord." if i < 3 else "") for i in range(5)])
    assert "join us on discord" not in two.lines and "join us on discord" in three.lines
    assert two.fingerprint != three.fingerprint
    # Stable: the same corpus in any order gives the same fingerprint.
    assert CorpusChrome.fit(posts).fingerprint == CorpusChrome.fit(posts[::-1]).fingerprint
    assert len(CorpusChrome.fit(posts).fingerprint) == 16

    # One document: nothing recurs, only the generic patterns apply.
    single = CorpusChrome.fit(posts[:1])
    assert not single.lines and single.fingerprint == CorpusChrome().fingerprint
    out = single.strip(posts[0])
    assert "Facebook" not in out and "min read" not in out and "Jul 3, 2024" not in out
    assert "Paul Iusztin" in _prose_only(out)  # a bare name needs the corpus to be chrome
    assert PROSE[0] in out


def test_copies_and_numbered_series_are_not_chrome() -> None:
    # The same post stored three times is not its own chrome: the corpus never empties it.
    copies = CorpusChrome.fit([PROSE[0]] * 3)
    assert copies.strip(PROSE[0]) == PROSE[0]
    # Long sentences that differ only in their numbers are the author's words.
    series = [f"In part {i} of this series we measure {i * 10} retrievers on 3 corpora of real writing." for i in range(5)]  # fmt: skip
    learned = CorpusChrome.fit([f"{s}\n\n{p}" for s, p in zip(series, PROSE, strict=False)])
    assert all(learned.strip(f"{s}\n\n{p}").startswith(s) for s, p in zip(series, PROSE, strict=False))
    # A footnote label recurs in every PEP, and means something different in each.
    refs = CorpusChrome.fit([f"{p}\n\n[1]\n\nhttps://peps.python.org/pep-{i:04d}/" for i, p in enumerate(PROSE)])
    assert not refs.lines


def test_generic_patterns_need_context_for_labels() -> None:
    for junk in ("Jul 20, 2024", "7", "1.2K", "Facebook", "5 min read", "By Paul Iusztin",
                 "Jul 20, 2024 · 5 min read", "2d • Edited", "Thanks for reading, Paul!",
                 "Check out the full lesson on Medium", "·"):  # fmt: skip
        assert is_generic_chrome(junk), junk
    for prose in ("1.", "| 7 | 8 |", "## Share", "May I say a word?", PROSE[0]):
        assert not is_generic_chrome(prose), prose
    # "Note" in a share bar is a widget; "Note" over an admonition's text is a label.
    bar = ["Twitter", "", "Note", "", "Other", "", "Share"]
    assert chrome_lines(bar) == {0, 2, 4, 6}
    label = ["Some prose first.", "", "Note", "", "This PEP has been rejected."]
    assert chrome_lines(label) == set()
    # A changelog's date over its list of changes stays; a post's date line goes.
    changelog = ["2019-10-13", "", "- Add missing return None.", "", "Jul 20, 2024", "", "Prose."]
    assert chrome_lines(changelog) == {4}


# --- at sync --------------------------------------------------------------------------------


def _raw(i: int, text: str) -> RawDocument:
    link = f"https://decodingml.substack.com/p/lesson-{i}"
    return RawDocument(
        _id=document_id_for_link("substack", link), author_id=PAUL.id,
        author_full_name=PAUL.full_name, platform="substack", category=Category.ARTICLES,
        link=link, title=f"Lesson {i}", content={"text": text},
    )  # fmt: skip


def _payloads(client, name: str) -> list[dict]:
    points, _ = client.scroll(name, limit=10_000, with_payload=True)
    return [p.payload for p in points]


@pytest.mark.slow  # embeds with the real model
def test_sync_strips_chrome_keeps_raw_and_recleans_when_chrome_changes(data_dir) -> None:
    from core.warehouse import get_warehouse
    from ingest.features import sync
    from retrievers.store import get_qdrant_client

    discord = "Join the Decoding ML Discord for questions and office hours."
    wh = get_warehouse()
    try:
        client = get_qdrant_client()
        # The Discord line is in 2 of 3 posts: below min_documents, so it is still prose.
        docs = [_raw(i, _post(i, discord if i < 2 else "")) for i in range(3)]
        for doc in docs:
            wh.upsert("articles", doc.to_record())
        first = sync(wh, client)
        assert (first.new, first.failed) == (3, [])
        cleaned = {p["document_id"]: p for p in _payloads(client, "cleaned_articles")}
        for i, doc in enumerate(docs):
            content = cleaned[doc.id]["content"]
            assert PROSE[i] in content and "## Motivation" in content and CODE in content
            for junk in CHROME:
                assert junk not in _prose_only(content), junk
            assert (discord in content) == (i < 2)
            assert "|chrome:" in cleaned[doc.id]["features"]
            raw = wh.get("articles", doc.id)["content"]["text"]  # the warehouse keeps the page
            assert "Paul Iusztin" in _prose_only(raw) and "Facebook" in raw
        chunks = _payloads(client, "embedded_articles")
        assert chunks and not any(
            junk in _prose_only(c["content"]) for c in chunks for junk in CHROME
        )

        again = sync(wh, client)
        assert again.changes == 0 and again.chunks_embedded == 0 and again.unchanged == 3

        # Two more posts with the Discord line: it is in 4 of 5 now, so it is chrome, and
        # the older posts are re-cleaned without it.
        more = [_raw(i, _post(i, discord)) for i in (3, 4)]
        for doc in more:
            wh.upsert("articles", doc.to_record())
        report = sync(wh, client)
        assert (report.new, report.changed, report.failed) == (2, 3, [])
        for payload in _payloads(client, "cleaned_articles"):
            assert discord not in payload["content"]
        assert not any(discord in c["content"] for c in _payloads(client, "embedded_articles"))
        assert sync(wh, client).changes == 0
    finally:
        wh.close()
