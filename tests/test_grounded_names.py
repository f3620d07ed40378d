"""Grounded names (core/llm/grounded_names.py): code names, identifiers and numbers only when the
prompt or the author's own writing spells them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

PROMPT = (
    "Excerpts: call os.path.join, then `PyBytes_FromStringAndSize` as PEP 403 says; "
    "Python 3.12 ships CamelCase helpers and run()."
)


@pytest.mark.parametrize(
    ("text", "piece", "allowed"),
    [
        ("We call ", "os.path", True),  # a dotted head of a known name
        ("We call os.pa", "th.join()", True),
        ("We call ", "my_", False),  # a snake_case name the prompt never spells
        ("We call my", "_function", False),
        ("We call `", "await", False),  # any word in a code span is a claim
        ("We call `", "run", True),
        ("See PEP 40", "3", True),
        ("See PEP 40", "1", False),  # a number above 10 must be one given
        ("In ", "2023", False),
        ("In Python 3.1", "2", True),
        ("A list of 5", " items", True),  # small numbers are free
        ("Use Question", "Answer", False),  # an inner capital: a CamelCase name
        ("Use Camel", "Case helpers", True),
        ("Write it, e.g", ". like this", True),  # prose abbreviations are not names
        ("then call foo", "()", False),  # a call names its function
        ("then call run", "()", True),
        ("Save it as ", "dependencies.json", False),
        ("The retriever ranks", " passages well", True),  # prose is free
    ],
)
def test_which_continuations_state_an_ungrounded_name(text: str, piece: str, allowed: bool) -> None:
    from core.llm.grounded_names import GroundedNames, NameIndex

    assert GroundedNames([NameIndex(PROMPT)]).allows(text, piece) is allowed


def test_the_authors_corpus_grounds_names_too() -> None:
    from core.llm.grounded_names import GroundedNames, NameIndex

    prompt_only = GroundedNames([NameIndex(PROMPT)])
    with_corpus = GroundedNames([NameIndex(PROMPT), NameIndex("the asyncio.get_event_loop() API")])
    assert not prompt_only.allows("Use ", "asyncio.get_event_loop")
    assert with_corpus.allows("Use ", "asyncio.get_event_loop")
    assert repr(NameIndex(PROMPT)).startswith("NameIndex(")  # no contents in traces


def test_a_capitalised_word_inside_a_sentence_must_be_one_the_corpus_spells() -> None:
    from core.llm.grounded_names import GroundedNames, NameIndex, grounded_names

    corpus = NameIndex("Guido and the Steering Council accepted it; python-dev agreed.")
    names = grounded_names("Write about the council.", corpus, top_k=40)
    assert names.allows("I asked ", "Guido")  # the corpus names him
    assert names.allows("and the ", "Steering Council")  # in any case
    assert not names.allows("I asked ", "Linus")  # a person the author never named
    assert not names.allows("I asked Gu", "ido Smith")  # the second word is new
    assert not names.allows("They moved to ", "Atrium.")
    assert names.allows("They moved. ", "Atrium is")  # a sentence's first word is free
    assert names.allows("Yes, ", "I think")
    assert names.allows("It is ", "OK")
    assert names.allows("I asked ", "Gu")  # still being written: the start of "Guido"
    assert not names.allows("I asked ", "Lin")
    # Without the corpus, the prompt's words are too few to tell a name from a word.
    assert GroundedNames([NameIndex("Write about it.")]).allows("I asked ", "Linus")


def test_a_link_must_be_one_the_prompt_or_corpus_holds() -> None:
    from core.llm.grounded_names import GroundedNames, NameIndex

    corpus = NameIndex("See https://peps.python.org/pep-0634.html and <https://bugs.python.org/>.")
    names = GroundedNames([NameIndex("Write about pattern matching."), corpus])
    written = "As [PEP 634](https://peps.python.org/pep-06"
    assert names.allows(written, "34")  # the start of a link the corpus holds
    assert not names.allows(written, "78")  # no such link
    assert names.allows(written + "34", ")")  # a word end of the corpus's link
    assert names.allows(written + "34.html", ". Then")  # the sentence ends after it
    assert not names.allows("See https://peps.python.org/pep-0634", "a)")
    assert not names.allows("Read ", "http://en.wikipedia.org/wiki/Lockstep ")
    assert names.allows("Read <https://bugs.python.org/", ">")
    # A link the answer already wrote may be given again; fenced code is the example's own.
    again = GroundedNames([corpus], top_k=2)
    pieces = [" https://example.org/a.", " https://example.org/b."]
    out = again.mask("Read https://example.org/a today. Also", np.zeros(2), pieces)
    assert np.isfinite(out[0]) and np.isneginf(out[1])
    fence = "```\nrequests.get('"
    assert names.allows(fence, "https://api.example.com/x')", in_fence=True)


def test_the_mask_refuses_only_checked_candidates_and_gives_up_when_all_fail() -> None:
    from core.llm.grounded_names import GroundedNames, NameIndex

    pieces = ["run", "my_helper", " the", "await"]
    names = GroundedNames([NameIndex("run the")], top_k=4)
    scores = np.array([1.0, 3.0, 0.5, 2.0], dtype=np.float32)
    out = names.mask("Call `", scores.copy(), pieces)
    assert np.isneginf(out[[1, 3]]).all() and out[0] == 1.0 and out[2] == 0.5
    assert names.blocked == 2
    # Every candidate fails: the step is left alone rather than forcing an unlikely token.
    only_bad = GroundedNames([NameIndex("nothing")], top_k=2)
    out = only_bad.mask("Call `", np.array([3.0, 2.0], dtype=np.float32), ["my_helper", "await"])
    assert np.isfinite(out).all() and only_bad.gave_up == 1


def test_a_word_start_looks_further_down_the_ranking_for_a_grounded_name() -> None:
    """At a word's start, when every top candidate is an invented name, the best grounded
    one further down is taken; inside a word the step is left alone (no mangled word)."""
    from core.llm.grounded_names import GroundedNames, NameIndex

    pieces = ["dotenv", "yml", " the", "settings", "ura"]
    scores = np.array([5.0, 4.0, 1.0, 2.0, 3.0], dtype=np.float32)
    names = GroundedNames([NameIndex("load the settings")], top_k=2)
    out = names.mask("Call `", scores.copy(), pieces)
    # " the" and "settings" are both allowed; "ura" (3.0) was passed on the way to "settings"
    assert np.isneginf(out[[0, 1, 4]]).all() and out[3] == 2.0 and out[2] == 1.0
    assert names.widened == 1 and names.gave_up == 0
    mid_word = GroundedNames([NameIndex("load the settings")], top_k=2)
    out = mid_word.mask("Call `config", scores.copy(), pieces)
    assert np.isfinite(out).all() and mid_word.gave_up == 1 and mid_word.widened == 0


def test_the_processor_reads_the_prompt_then_the_answer_from_token_ids() -> None:
    from core.llm.grounded_names import LlamaCppGroundedNames

    pieces = ["Use ", "frob_widget", " now", ". ", "my_", "_gadget", "frob"]
    processor = LlamaCppGroundedNames(pieces, top_k=7)
    prompt = np.array([0, 1, 2, 3])  # "Use frob_widget now. "
    scores = np.zeros(len(pieces), dtype=np.float32)
    out = processor(prompt, scores.copy())
    assert np.isneginf(out[4])  # "my_" starts a name the prompt does not hold
    assert np.isfinite(out[6])  # "frob" may start "frob_widget"
    out = processor(np.array([0, 1, 2, 3, 6]), scores.copy())  # answer so far: "frob"
    assert np.isneginf(out[5])  # "frob_gadget" is no name the prompt spells
    assert processor.decoded.text == "frob"


@pytest.mark.slow
def test_the_served_model_names_only_what_it_was_given(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Asked to name library functions about a topic whose excerpt names none, the default
    model invents them (`dotenv`, `config.js`); grounded, it states none of those. Counted
    outside code blocks, where an example's own names are free by design."""
    import re

    from core.llm import get_llm
    from evals.voice.invented_specifics import Sources, invented_specifics

    request = [
        {"role": "system", "content": "You write short technical posts."},
        {
            "role": "user",
            "content": "Excerpt: we load the settings once and keep them in one object.\n\n"
            "Write a short post about loading settings: which library functions do you call? "
            "Name them in backticks.",
        },
    ]

    def invented_in_prose(answer: str) -> list[str]:
        prose = re.sub(r"```.*?(?:```|\Z)", " ", answer, flags=re.S)
        return invented_specifics(prose, Sources.of([m["content"] for m in request]))

    llm = get_llm()
    free = llm.generate(request, max_new_tokens=120, temperature=0.0)  # off unless asked
    grounded = llm.generate(request, max_new_tokens=120, temperature=0.0, grounded_names=True)
    free_invented = invented_in_prose(free)
    assert free_invented, free
    assert not set(free_invented) & set(invented_in_prose(grounded)), (free_invented, grounded)


def test_code_examples_keep_their_own_names_but_not_invented_apis() -> None:
    """Inside a ``` block an example's own names are free (no mangled `Testmymodule`), and
    the answer may name them again in prose; a dotted name on a module is still a claim."""
    from core.llm.grounded_names import GroundedNames, NameIndex

    names = GroundedNames([NameIndex("import asyncio; asyncio.run(main()) in the excerpt")])
    fence = "Example:\n```python\n"
    assert names.allows(fence, "my_dict", in_fence=True)
    assert names.allows(fence + "class ", "TestMyModule", in_fence=True)
    assert names.allows(fence, "asyncio.run(", in_fence=True)
    assert not names.allows(fence, "asyncio.get_event_loop(", in_fence=True)
    # A space before the bracket does not hide the call.
    assert not names.allows(fence + "asyncio.get_event_loop ", "()", in_fence=True)
    assert names.allows(fence + "asyncio.run ", "(main())", in_fence=True)
    assert names.allows(fence + "#include <", "stdio.h>", in_fence=True)  # no mangled "stdio. h"
    written = fence + "my_dict = {}\nmy_dict.update(x)\n```\n\nHere "
    names.mask(written, np.zeros(2, dtype=np.float32), ["a", "b"])  # learns the answer's names
    assert names.allows(written + "`", "my_dict")
    assert names.allows(fence + "my_dict = {}\n", "my_dict.update(", in_fence=True)
    assert not names.allows("Then call `", "other_dict")


def test_the_twin_grounds_in_the_authors_stored_writing(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The served answer's kwargs carry the author's own names from the store (cached until
    their writing changes) and the minimum answer length; small talk and
    LLM_GROUNDED_NAMES=false carry none."""
    import asyncio

    from core.settings import reset_settings
    from finetune import demo_corpus
    from graph.configuration import Configuration
    from graph.generation_nodes import grounding
    from retrievers.author_corpus import author_name_index, grounding_kwargs
    from retrievers.store import get_qdrant_client

    author = demo_corpus.AUTHOR
    demo_corpus.seed_cleaned(get_qdrant_client(), demo_corpus.corpus(n_topics=2))
    kwargs = grounding_kwargs(author)
    assert kwargs["grounded_names"] is True
    assert kwargs["grounding_sources"].spells("with_retries")  # a name Maya wrote
    assert not kwargs["grounding_sources"].spells("my_function")
    assert author_name_index(author) is kwargs["grounding_sources"]  # cached
    assert kwargs["max_copied_words"] == 6
    assert kwargs["recitation_index"].words > 1000  # the recitation guard's index of Maya's words
    assert kwargs["min_words"] == 40  # a writing request's answer runs on to 40 words
    # The gate leaves its held-out documents out: the answer key grounds nothing.
    from retrievers.author_corpus import load_cleaned_documents

    docs = load_cleaned_documents(author)
    holding = frozenset(str(d["document_id"]) for d in docs if "with_retries" in d["content"])
    assert holding and len(holding) < len(docs)
    without = grounding_kwargs(author, leave_out=holding)["grounding_sources"]
    assert not without.spells("with_retries") and without is not kwargs["grounding_sources"]
    assert author_name_index(author) is kwargs["grounding_sources"]  # each kept apart
    assert grounding_kwargs("Nobody Here") == {
        "grounded_names": True,
        "min_words": 40,
        "grounding_sources": None,
    }
    state = {"request": "Write about retries", "filters": {"author": author}}
    assert asyncio.run(grounding(state, Configuration()))["grounded_names"] is True
    assert asyncio.run(grounding({**state, "request": "hi"}, Configuration())) == {}
    monkeypatch.setenv("LLM_GROUNDED_NAMES", "false")
    monkeypatch.setenv("LLM_MAX_COPIED_WORDS", "0")
    monkeypatch.setenv("LLM_MIN_ANSWER_WORDS", "0")
    reset_settings()
    assert grounding_kwargs(author) == {"grounded_names": False}
