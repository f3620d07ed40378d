"""Instruct/preference dataset versions from seeded cleaned_* collections (real offline LLM)."""

from __future__ import annotations

import json

import pytest

from finetune import datasets as fds
from finetune import demo_corpus, preferences
from finetune import passages as fps
from finetune.generator import check_instruction, template_instruction

AUTHOR = demo_corpus.AUTHOR


def _seed(n_topics: int = 2, extra: list | None = None) -> None:
    from retrievers.store import get_qdrant_client

    docs = demo_corpus.corpus(n_topics=n_topics) + (extra or [])
    demo_corpus.seed_cleaned(get_qdrant_client(), docs)


@pytest.mark.slow
def test_instruct_build_versions_splits_and_filters(data_dir):
    _seed()
    first = fds.build_instruct_dataset(AUTHOR, use_llm=True)  # the real offline generator LLM
    assert first.built
    dd, manifest = fds.load_dataset_version(fds.INSTRUCT, AUTHOR)
    assert manifest["version"] == first.version
    assert set(dd.keys()) == {"train", "test"}
    assert dd["train"].column_names == list(fds.INSTRUCT_COLUMNS)
    assert len(dd["train"]) and len(dd["test"])

    # No document on both sides; every category with >= 2 documents has a held-out one.
    train_docs, test_docs = set(dd["train"]["document_id"]), set(dd["test"]["document_id"])
    assert not train_docs & test_docs
    assert {"articles", "posts"} <= set(dd["test"]["category"])

    # Answers are the author's own text; instructions are requests.
    sources = {d.document_id: d.content for d in demo_corpus.corpus(n_topics=2)}
    for row in list(dd["train"]) + list(dd["test"]):
        assert " ".join(row["answer"].split()) in " ".join(sources[row["document_id"]].split())
        assert row["instruction"].startswith("Write")
        assert row["author"] == AUTHOR
        if row["category"] != "repositories":
            assert 20 <= len(row["answer"].split()) <= 500
    counts = manifest["counts"]
    assert counts["train"] + counts["test"] == len(dd["train"]) + len(dd["test"])
    assert sum(counts["instruction_sources"].values()) == counts["train"] + counts["test"]
    assert manifest["generator"] == "offline:SmolLM2-135M-Instruct"
    assert {s["document_id"] for s in manifest["sources"]} == set(sources)

    # Same inputs → same version, nothing rebuilt; the latest pointer names it.
    again = fds.build_instruct_dataset(AUTHOR, use_llm=True)
    assert again.version == first.version and not again.built
    pointer = json.loads(fds.latest_pointer(fds.INSTRUCT, AUTHOR).read_text())
    assert pointer["version"] == first.version

    # A changed document → a new version, and latest moves to it.
    changed = demo_corpus.corpus(n_topics=2)[0].model_copy()
    changed.content += "\n\nHere is the thing: I added a paragraph, so this is a new version now."
    from core.domain import content_hash

    changed.content_hash = content_hash(changed.content)
    _seed(extra=[changed])
    newer = fds.build_instruct_dataset(AUTHOR, use_llm=False)
    assert newer.version != first.version
    assert fds.latest_version(fds.INSTRUCT, AUTHOR) == newer.version


def test_template_only_build_is_deterministic_across_stores(data_dir, tmp_path, monkeypatch):
    from core.settings import reset_settings
    from retrievers.store import close_qdrant_client

    _seed()
    a = fds.build_instruct_dataset(AUTHOR, use_llm=False)
    rows_a = a.load()["train"].to_list()
    close_qdrant_client()
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "other"))
    reset_settings()
    _seed()
    b = fds.build_instruct_dataset(AUTHOR, use_llm=False)
    assert b.built and b.version == a.version
    assert b.load()["train"].to_list() == rows_a


def test_no_documents_is_a_clear_error(data_dir):
    _seed()
    with pytest.raises(fds.DatasetError, match="no cleaned documents"):
        fds.build_instruct_dataset("Nobody Atall", use_llm=False)


def test_quality_filters():
    swedish = (
        "Det här är en lång text på svenska om datapipelines och varför man alltid ska "
        "bygga tråkiga omförsök. Man lär sig det klockan tre på natten när kaffet har "
        "kallnat och ingen annan är vaken. Det är en del av jobbet."
    )
    assert fps.answer_problem(swedish, "posts").startswith("language")
    assert fps.answer_problem("1234 5678 !!!! ???? 9999 ---- " * 5, "posts") == "garbage:letters"
    assert fps.answer_problem("a" * 40, "articles") == "garbage:run"
    assert fps.answer_problem("def f():\n    return 1\n", "repositories") is None
    english = demo_corpus.post_text(*demo_corpus.TOPICS[0], 0)
    assert fps.answer_problem(english, "posts") is None

    dedupe = fps.Deduper(0.8)
    assert dedupe.is_duplicate(english) is None
    assert dedupe.is_duplicate(english.upper()) == "duplicate:exact"
    near = english.replace("Ship small.", "Ship smaller.")
    assert dedupe.is_duplicate(near) == "duplicate:near"

    passage = "Retries with jitter keep pipelines alive when a timeout hits at night."
    assert check_instruction("I'm sorry, I cannot help with retries and pipelines.", passage)
    assert check_instruction("Write a LinkedIn post about ...", passage)
    assert (
        check_instruction("Write a post about retries with jitter in pipelines.", passage) is None
    )
    # An article section's request names its heading and title, never its opening words
    # (a twin trained on requests that hold them learns to restate the request).
    article = {"category": "articles", "title": "Measure, then choose"}
    section = {"text": "Benchmarks decide. Opinions wait for numbers.", "heading": "Why"}
    request = template_instruction(section, article)
    assert request == 'Write the "Why" section of an article on "Measure, then choose".'
    untitled = template_instruction({"text": section["text"], "heading": ""}, article)
    assert "benchmarks decide" in untitled.lower()  # no heading: the gist tells them apart
    doc = {"category": "repositories", "title": "boring-tools"}
    assert template_instruction({"text": "x", "path": "retry.py", "symbol": None}, doc) == (
        "Write the Python code for `retry.py` in the boring-tools repository."
    )


def test_passages_are_paragraph_aligned():
    title, sentences = demo_corpus.TOPICS[1]
    text = demo_corpus.article_text(title, sentences)
    passages = fps.prose_passages(text, 60, 400)
    assert len(passages) == 3
    for p in passages:
        assert p["heading"] in ("The problem", "What I do instead", "What to take away")
        assert 60 <= len(p["text"].split()) <= 400
        assert p["text"] in text  # whole paragraphs, verbatim
    code = "# file: a.py\n" + "\n".join(f"x{i} = {i}" for i in range(6)) + "\n# file: b.py\nx = 1\n"
    files = fps.code_passages(code, fds.BuildParams())
    assert [f["path"] for f in files] == ["a.py"]  # b.py is too short


def test_split_is_by_document_hash():
    docs = [{"document_id": f"d{i}", "category": "posts"} for i in range(30)]
    split = fds.split_documents(docs, 0.2)
    assert split == fds.split_documents(list(reversed(docs)), 0.2)
    assert 0 < sum(v == "test" for v in split.values()) < 30


@pytest.mark.slow
def test_a_version_with_an_empty_split_loads_back(data_dir):
    """An author whose held-out documents gave no pair after the filters (Guido van Rossum's
    ten training PEPs) still has a loadable dataset: an empty "test" split, not a crash."""
    from finetune.datasets import INSTRUCT, load_dataset_version, save_version

    row = {"instruction": "Write about retries.", "answer": "Retry with backoff.", "context": ""}
    save_version(INSTRUCT, "v-empty-test", {"train": [row]}, {"author": "A"})
    dd, manifest = load_dataset_version(INSTRUCT, version="v-empty-test")
    assert len(dd["train"]) == 1 and len(dd["test"]) == 0
    assert dd["train"][0]["answer"] == "Retry with backoff." and manifest == {"author": "A"}


def test_preference_dataset_with_feedback(data_dir):
    from core import feedback

    _seed(n_topics=1)
    instruct = fds.build_instruct_dataset(AUTHOR, use_llm=False)
    feedback.record_feedback(
        "run-1", 1.0, "sounds like me", request="Write a post about retries.",
        answer="Here is the thing about retries: make them boring.",
    )  # fmt: skip
    feedback.record_feedback(
        "run-2", 0.0, "generic", request="Write a post about retries.",
        answer="Retries are an important topic that many people are interested in.",
    )  # fmt: skip
    params = fds.BuildParams(rejected_max_new_tokens=24)
    pref = preferences.build_preference_dataset(AUTHOR, params=params, instruct=instruct)
    dd = pref.load()
    assert dd["train"].column_names == list(fds.PREFERENCE_COLUMNS)
    author_rows = [r for r in dd["train"] if r["source"] == "author"]
    assert len(author_rows) == len(instruct.load()["train"])
    for row in author_rows:
        assert row["chosen"] != row["rejected"] and row["rejected"].strip()
    fb = [r for r in dd["train"] if r["source"] == "feedback"]
    assert fb == [
        {
            "prompt": "Write a post about retries.",
            "chosen": "Here is the thing about retries: make them boring.",
            "rejected": "Retries are an important topic that many people are interested in.",
            "source": "feedback",
        }
    ]
    assert pref.manifest["counts"]["feedback_pairs"] == 1
    assert pref.manifest["instruct_version"] == instruct.version
    again = preferences.build_preference_dataset(AUTHOR, params=params, instruct=instruct)
    assert again.version == pref.version and not again.built


def test_feedback_pairs_without_store_or_ratings():
    assert preferences.feedback_pairs([]) == []
    pairs = preferences.feedback_pairs(
        [
            {
                "request": {"messages": [{"role": "user", "content": "Q?"}]},
                "answer": "A",
                "score": "up",
            },
            {"request": "Q2", "answer": "B", "score": None},
        ]
    )
    assert pairs == [{"prompt": "Q?", "chosen": "A", "rejected": None}]


_TOOLS = [
    "crawler",
    "warehouse",
    "chunker",
    "embedder",
    "retriever",
    "reranker",
    "trainer",
    "registry",
]


def _distinct_document(tool: str, n: int) -> str:
    """Three paragraphs about one tool whose sentences name it (no sentence is shared)."""
    paragraphs = []
    for p in range(3):
        sentences = [
            f"The {tool} number {n}.{p}.{i} taught me something about {tool} design that I "
            f"keep relearning whenever a {tool} misbehaves at night."
            for i in range(4)
        ]
        paragraphs.append(" ".join(sentences))
    return "\n\n".join(paragraphs)


@pytest.mark.slow
def test_context_grounded_pairs_carry_other_documents_as_served(data_dir):
    """`context_passages`: each pair's prompt holds excerpts of the author's OTHER documents
    found by the twin's retrieval; a training pair never sees a held-out document's text."""
    from support.corpus import store_corpus

    from core.prompts import CONTEXT_SEPARATOR

    texts = {tool: _distinct_document(tool, n) for n, tool in enumerate(_TOOLS)}
    store_corpus(
        {"author": AUTHOR, "category": "articles", "platform": "web", "title": f"On the {tool}",
         "content": text, "key": tool}
        for tool, text in texts.items()
    )  # fmt: skip
    built = fds.build_instruct_dataset(
        AUTHOR, params=fps.BuildParams(context_passages=2, min_words=20), use_llm=False
    )
    dd, manifest = fds.load_dataset_version(fds.INSTRUCT, AUTHOR, built.version)
    assert manifest["params"]["context_passages"] == 2

    def source(text: str) -> str:
        head = " ".join(text.split()[:10])
        return next(tool for tool, body in texts.items() if head in " ".join(body.split()))

    held = {source(row["answer"]) for row in dd["test"]}
    assert held and len(dd["train"])
    for split in dd:
        for row in dd[split]:
            own = source(row["answer"])
            excerpts = [e for e in row["context"].split(CONTEXT_SEPARATOR) if e.strip()]
            assert 1 <= len(excerpts) <= 2, row
            for excerpt in excerpts:
                assert source(excerpt) != own  # never the passage's own document
                if split == "train":
                    assert source(excerpt) not in held  # held-out text never reaches training
    # Pairs without context are another dataset version.
    assert (
        fds.build_instruct_dataset(
            AUTHOR, use_llm=False, params=fps.BuildParams(min_words=20)
        ).version
        != built.version
    )
