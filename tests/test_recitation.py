"""The recitation guard (core/llm/recitation.py): the twin may not copy more than N
consecutive words of the author's documents, and says it another way instead."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.llm.recitation import LlamaCppRecitationGuard, RecitationGuard
from core.verbatim import CopyIndex

CORPUS = [
    "The quick brown fox jumps over the lazy dog before breakfast.",
    "Statement templates make resource cleanup explicit and hard to forget.",
]


def test_the_index_follows_the_run_and_names_the_words_that_would_continue_it() -> None:
    index = CopyIndex(CORPUS)
    state = run = 0
    for word in ["i", "saw", "the", "quick", "brown"]:
        state, run = index.advance(state, run, index.word_id(word))
    assert run == 3  # "the quick brown"
    assert index.continuations(state, run, 4) == {"fox"}
    assert index.continuations(state, run, 5) == set()  # one more word is still allowed
    # No run crosses from one document into the next.
    state = run = 0
    for word in ["lazy", "dog", "before", "breakfast"]:
        state, run = index.advance(state, run, index.word_id(word))
    assert run == 4 and index.continuations(state, run, 5) == set()


@pytest.mark.parametrize(
    ("text", "piece", "allowed"),
    [
        ("I saw the quick brown fox", " jumps", False),  # the 5th copied word
        ("I saw the quick brown fox", " JUMPS", False),  # case does not hide a copy
        ("I saw the quick brown fox", " jum", False),  # the start of it
        ("I saw the quick brown fox", " j", True),  # too short to tell
        ("I saw the quick brown fox", " jumped", True),  # another word
        ("I saw the quick brown fox", " leaps", True),
        ("I saw the quick brown fox", ".", True),  # ending the copied word is never refused
        ("I saw the quick brown fox j", "umps", False),  # finishing it, piece by piece
        ("I saw the quick brown", " fox", True),  # four copied words are allowed
        ("I saw the quick brown", " fox jumps over", False),  # a whole copied word in one piece
        ("I saw the quick brown fox", "es", True),  # "foxes": the run ends
    ],
)
def test_a_word_is_refused_where_it_would_start_the_fifth_copied_word(
    text: str, piece: str, allowed: bool
) -> None:
    guard = RecitationGuard(CopyIndex(CORPUS), max_words=4)
    assert guard.allows(text, piece) is allowed


def test_code_links_and_headings_are_never_refused() -> None:
    """A URL, a signature or a section title is spelt one way: breaking one
    ("peps.python-ideas-guide. org") is worse than copying it."""
    corpus = [
        "See PEP 634 at https://peps.python.org/pep-0634 for the details of matching.",
        "Define def __exit__(self, exc_type, exc_value, traceback): in the class body.",
    ]
    guard = RecitationGuard(CopyIndex(corpus), max_words=3)
    assert guard.allows("See [PEP 634](https://peps.python.org/pep-", "0634")
    assert guard.allows("Link: https://peps.python.", "org")
    fence = "Like this:\n```python\ndef __exit__(self, exc_type, exc_value,"
    assert guard.allows(fence, " traceback")
    assert guard.allows("Use `def __exit__(self, exc_type, exc_value,", " traceback")
    # A heading names the section the request asked for, in the author's own title.
    assert guard.allows("## See PEP 634 at", " https")
    assert not guard.allows("See PEP 634 at", " https")  # in prose, the 5th copied word
    # Prose after the code starts a new run: "for the details of" is copied prose.
    assert guard.allows(fence + " traceback):\n```\nAnd for the", " details")
    assert not guard.allows(fence + " traceback):\n```\nAnd for the details", " of")


def test_code_and_links_still_count_towards_the_copied_run() -> None:
    """The yardstick counts every word of a copied sentence, a `name` or a link in it too:
    so does the guard (when they ended the run, a copied sentence ran to 20 words)."""
    corpus = [
        "Here, block and as are new keywords; EXPR1 is an arbitrary expression.",
        "Read https://peps.python.org/pep-0634 for the details of matching.",
    ]
    index = CopyIndex(corpus)

    def allows(text: str, piece: str) -> bool:  # a guard follows one answer: one each
        return RecitationGuard(index, max_words=4).allows(text, piece)

    # here, block, and, `as`, are, new: six copied words, one of them code.
    assert not allows("Here, 'block' and `as` are new", " keywords")
    assert allows("Here, 'block' and `as` are new", " reserved")
    assert not allows("Read https://peps.python.org/pep-0634 for", " the")
    # Inside the code span or the link, nothing is refused, however long the run.
    assert allows("Here, 'block' and `as are new keywords", " EXPR1")
    assert allows("Read https://peps.python.org/pep", "-0634")


def test_the_mask_turns_away_only_the_copying_candidates_and_never_all_of_them() -> None:
    guard = RecitationGuard(CopyIndex(CORPUS), max_words=4, top_k=3)
    pieces = [" jumps", " leaps", ".", " runs"]
    out = guard.mask("the quick brown fox", np.array([3.0, 2.0, 1.0, 0.0]), pieces)
    assert np.isneginf(out[0]) and np.isfinite(out[1:]).all() and guard.blocked == 1
    only_copies = RecitationGuard(CopyIndex(CORPUS), max_words=4, top_k=1)
    out = only_copies.mask("the quick brown fox", np.array([3.0, 2.0, 1.0, 0.0]), pieces)
    assert np.isfinite(out).all() and only_copies.gave_up == 1


def test_the_processor_reads_the_answer_from_token_ids_and_ignores_the_prompt() -> None:
    # The prompt quotes the author at length; only the answer's own words make a run.
    pieces = ["The quick brown fox", " jumps", " over", " the", " lazy", " dog", " leaps"]
    processor = LlamaCppRecitationGuard(pieces, CopyIndex(CORPUS), max_words=4)
    prompt = np.array([0, 1, 2, 3])  # "The quick brown fox jumps over the"
    out = processor(prompt, np.zeros(len(pieces), dtype=np.float32))
    assert np.isfinite(out).all()  # nothing written yet
    out = processor(np.array([0, 1, 2, 3, 0]), np.zeros(len(pieces), dtype=np.float32))
    assert np.isneginf(out[1]) and np.isfinite(out[6])  # "jumps" would be the 5th word
    assert processor.decoded.text == "The quick brown fox"


def test_nothing_else_is_refused_when_the_answer_does_not_copy() -> None:
    guard = RecitationGuard(CopyIndex(CORPUS), max_words=4)
    text = "Foxes and dogs rarely share a breakfast table in my experience"
    assert all(guard.allows(text[:i], text[i : i + 3]) for i in range(0, len(text), 3))
    with pytest.raises(ValueError, match="max_words"):
        RecitationGuard(CopyIndex(CORPUS), max_words=0)


@pytest.mark.slow
def test_asked_to_copy_a_passage_the_served_model_writes_it_in_other_words(
    data_dir: Path,
) -> None:
    """The default model, told to repeat a passage of the author's, copies it word for
    word; with the guard its longest copied run stays within the limit, in whole words."""
    from core.llm import get_llm
    from evals.voice.invented_specifics import Sources
    from evals.voice.mangled_words import mangled_words

    passage = (
        "Explicit resource management matters because cleanup code that is easy to forget "
        "will eventually be forgotten, usually at the worst possible moment in production."
    )
    request = [
        {"role": "user", "content": f"Repeat this sentence exactly, word for word:\n\n{passage}"}
    ]
    index = CopyIndex([passage])
    llm = get_llm()
    # DRY off: it already steers away from repeating the prompt; this is the guard alone.
    free = llm.generate(request, max_new_tokens=60, temperature=0.0, dry_multiplier=0.0)
    guarded = llm.generate(
        request,
        max_new_tokens=60,
        temperature=0.0,
        dry_multiplier=0.0,
        recitation_index=index,
        max_copied_words=6,
    )
    assert index.longest_span(free)[0] >= 12, free
    assert 0 < index.longest_span(guarded)[0] <= 6, guarded
    assert len(guarded.split()) >= 8, guarded
    assert not mangled_words(guarded, Sources.of([passage])), guarded
