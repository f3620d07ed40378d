"""The twin answers small talk as the author's twin, never as a vendor's assistant."""

from __future__ import annotations

from pathlib import Path

import pytest

AUTHOR = "Maya Lindqvist"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hi", True),
        ("Hello!", True),
        ("hey there", True),
        ("Hi, who are you?", True),
        ("who made you?", True),
        ("Thanks so much!", True),
        ("What is your name?", True),
        ("Write a post on hi-fi audio", False),
        ("hi, write about the GIL", False),
        ("Who are you going to vote for in the packaging survey and why?", False),
        ("", False),
    ],
)
def test_small_talk_is_recognised(text: str, expected: bool) -> None:
    from core.prompts import is_small_talk

    assert is_small_talk(text) is expected


def test_vendor_persona_sentences_are_dropped() -> None:
    from core.prompts import drop_vendor_persona

    assert (
        drop_vendor_persona(
            "Hello! I'm an AI language model created by OpenAI. How can I assist you today?"
        )
        == "Hello! How can I assist you today?"
    )
    assert drop_vendor_persona("I am Qwen, created by Alibaba Cloud.") == ""
    kept = "I wrote about OpenAI's API last spring. The retries mattered more than the model."
    assert drop_vendor_persona(kept) == kept


def test_small_talk_prompt_has_no_excerpts_and_the_twin_introducing_itself() -> None:
    from langchain_core.documents import Document

    from core.prompts import CONTEXT_HEADER
    from graph.configuration import Configuration
    from graph.generation_nodes import build_messages

    state = {
        "request": "hi",
        "filters": {"author": AUTHOR},
        "context": [Document(page_content="Sourdough needs a warm corner.", metadata={})],
        "messages": [],
    }
    messages = build_messages(state, Configuration())
    assert AUTHOR in messages[0].content and "writing twin" in messages[0].content
    assert (messages[-1].type, messages[-1].content) == ("human", "hi")
    assert not any(CONTEXT_HEADER in m.content for m in messages)
    assert messages[-2].type == "ai" and f"{AUTHOR}'s writing twin" in messages[-2].content
    # A real request keeps its excerpts.
    state["request"] = "Write a post about sourdough"
    assert CONTEXT_HEADER in build_messages(state, Configuration())[-1].content


@pytest.mark.slow
@pytest.mark.parametrize("greeting", ["hi", "who are you?"])
def test_the_served_model_greets_as_the_twin(greeting: str, data_dir: Path) -> None:
    """The real default model on the small-talk prompt (greedy, no post-filter involved)."""
    from core.llm import get_llm, lc_to_dicts
    from core.prompts import VENDOR_PERSONA
    from graph.configuration import Configuration
    from graph.generation_nodes import build_messages

    messages = build_messages(
        {"request": greeting, "filters": {"author": AUTHOR}, "messages": []}, Configuration()
    )
    answer = get_llm().generate(lc_to_dicts(messages), max_new_tokens=60, temperature=0.0)
    assert not VENDOR_PERSONA.search(answer), answer
    assert "OpenAI" not in answer and "Alibaba" not in answer, answer


def test_small_talk_that_does_not_say_twin_gets_the_twins_introduction() -> None:
    from core.prompts import twin_reply_to_small_talk

    generic = "Hello! How can I assist you today?"
    assert f"{AUTHOR}'s writing twin" in twin_reply_to_small_talk("hi", generic, AUTHOR)
    own = "Hej! I'm Maya's writing twin. Want a post on retries?"
    assert twin_reply_to_small_talk("hello", own, AUTHOR) == own
    # Thanks needs no introduction.
    assert twin_reply_to_small_talk("thanks!", "You're welcome!", AUTHOR) == "You're welcome!"


@pytest.mark.slow
async def test_a_one_author_install_answers_hi_as_that_author(data_dir: Path) -> None:
    from support.corpus import store_corpus

    from core.domain import User
    from core.prompts import VENDOR_PERSONA
    from core.warehouse import get_warehouse
    from graph import graph
    from graph.request_parsing import clear_author_cache

    store_corpus([{
        "author": AUTHOR, "category": "posts", "platform": "linkedin", "title": "Sourdough",
        "published_at": "2024-03-03T00:00:00+00:00",
        "content": "I bake sourdough every Sunday. The starter needs feeding twice a day.",
    }])  # fmt: skip
    with get_warehouse() as wh:
        wh.upsert("users", User.from_full_name(AUTHOR).model_dump(by_alias=True))
    clear_author_cache()
    try:
        out = await graph.ainvoke({"query": "hi"}, {"configurable": {"max_new_tokens": 60}})
    finally:
        clear_author_cache()
    assert out["filters"]["author"] == AUTHOR  # the only author: the twin is theirs
    assert out["answer"] and not VENDOR_PERSONA.search(out["answer"])
    assert f"{AUTHOR}'s writing twin" in out["answer"] or "twin" in out["answer"].lower()
