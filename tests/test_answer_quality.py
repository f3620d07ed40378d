"""evals/answer_quality.py: the twin-quality benchmark's scoring, on real components
(langdetect, MiniLM embeddings, a scikit-learn character n-gram classifier)."""

from __future__ import annotations

import numpy as np
import pytest

from evals.answer_quality import (
    AuthorshipClassifier,
    degenerate_reasons,
    distinct_n,
    passages,
    topicality,
)

GOOD = (
    "Explicit code is easier to read than clever code. When a function says what it does, "
    "the next person who opens the file does not have to guess, and the reviewer can spend "
    "their attention on the design instead of on decoding the tricks. That is why I keep "
    "asking for plain names and small functions."
)


def test_a_plain_finished_english_paragraph_is_usable() -> None:
    assert degenerate_reasons(GOOD) == []


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("Too short to be an answer.", "short"),
        ("the cat sat on the mat " * 20 + ".", "repetitive"),
        (GOOD.upper(), "shouting"),
        (GOOD + " Wow!!!!", "shouting"),
        (
            "El código explícito es más fácil de leer que el código ingenioso. Cuando una "
            "función dice lo que hace, la siguiente persona que abre el archivo no tiene que "
            "adivinar nada, y el revisor puede dedicar su atención al diseño del programa.",
            "other-language",
        ),
        (GOOD + "\n<|im_start|>user\nWrite more.", "template-leak"),
        (GOOD[:-1] + ", which keeps the code 简单 and honest.", "other-script"),
        (GOOD + " Это тоже важно.", "other-script"),
        (GOOD + " And then the next thing we", "unfinished"),
        ("I'm sorry, but I can't assist with that request. " + GOOD, "refusal"),
        ("I’m unable as an artificial intelligence to write articles on this. " + GOOD, "refusal"),
        ("I'm unable to assist with writing about people. " + GOOD, "refusal"),
        ("As an AI language model, I do not write articles. " + GOOD, "refusal"),
    ],
)
def test_each_kind_of_degenerate_answer_is_named(text: str, reason: str) -> None:
    assert reason in degenerate_reasons(text)


def test_an_author_may_be_sorry_or_unable_without_refusing() -> None:
    for opening in (
        "I'm sorry to say the first draft of this PEP was wrong, but it taught us a lot. ",
        "I can't help but think that explicit names matter more than clever ones. ",
        "We were unable to agree on a keyword, so the proposal waited a year. ",
        "As an AI researcher, I care about reproducible experiments. ",
    ):
        assert "refusal" not in degenerate_reasons(opening + GOOD), opening


def test_echoing_or_copying_the_prompt_is_degenerate() -> None:
    assert "prompt-echo" in degenerate_reasons("[1] " + GOOD)
    assert "prompt-echo" in degenerate_reasons(GOOD + "\n\nRequest: Write a post.")
    prompt = "Excerpts from the author's earlier writing:\n\n" + GOOD + "\n\nWrite a post."
    assert "copied" in degenerate_reasons(GOOD, prompt=prompt)
    assert "copied" not in degenerate_reasons(GOOD, prompt="Write a post about clear code.")


def test_answers_that_end_in_code_or_quotes_are_finished() -> None:
    assert "unfinished" not in degenerate_reasons(GOOD + '\n\n```python\nprint("hi")\n```')
    assert "unfinished" not in degenerate_reasons(GOOD[:-1] + ' "as I said."')


def test_distinct_n() -> None:
    assert distinct_n(["a", "b", "a", "b", "a", "b"], 2) == pytest.approx(2 / 5)
    assert distinct_n(["one"], 2) == 1.0


def test_passages_keep_paragraphs_whole_and_respect_the_limit() -> None:
    text = "\n\n".join(f"Paragraph {i} " + "word " * 50 for i in range(10))
    parts = passages(text, size=600)
    assert len(parts) == 5 and all(p.startswith("Paragraph") for p in parts)
    assert len(passages(text, size=600, limit=2)) == 2


def test_topicality_is_similarity_to_own_minus_mean_to_others() -> None:
    docs = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    assert topicality(np.array([2.0, 0.0]), docs, own=0) == pytest.approx(1.0 - (-0.5))
    assert topicality(np.array([0.0, 1.0]), docs, own=0) == pytest.approx(0.0 - 0.5)


@pytest.mark.slow
def test_topicality_with_real_embeddings_prefers_the_right_document(data_dir) -> None:
    from retrievers.encoders import dense_encode

    docs = dense_encode([
        "Vector databases index embeddings for nearest neighbour search over documents.",
        "Sourdough bread needs a starter, flour, water, salt and a long slow rise.",
        "The marathon runner trained through the winter for the spring race.",
    ])  # fmt: skip
    answer = dense_encode(["Approximate nearest neighbour indexes make embedding search fast."])
    assert topicality(answer[0], docs, own=0) > 0.2
    assert topicality(answer[0], docs, own=1) < 0


def test_attribution_tells_two_writing_styles_apart() -> None:
    formal = [
        f"Furthermore, the committee shall consider proposal number {i} with due care, "
        "notwithstanding the objections previously recorded in the minutes thereof."
        for i in range(12)
    ]
    casual = [
        f"ok so here's the thing lol — idea #{i} is kinda neat, gonna try it tonight!! "
        "tbh it's prob fine, we'll see haha"
        for i in range(12)
    ]
    clf = AuthorshipClassifier().fit(formal + casual, ["Formal"] * 12 + ["Casual"] * 12)
    assert clf.authors == ["Casual", "Formal"]
    assert clf.predict([
        "Moreover, the board shall deliberate upon the amendment notwithstanding delays.",
        "lol ok gonna ship it tonight, prob fine haha",
    ]) == ["Formal", "Casual"]  # fmt: skip
    formal_text = "Moreover, the board shall deliberate upon the amendment notwithstanding delays."
    p_formal, p_casual = clf.probability([formal_text] * 2, ["Formal", "Casual"])
    assert p_formal > 0.5 > p_casual and p_formal + p_casual == pytest.approx(1.0)
    with pytest.raises(ValueError, match="Nobody"):
        clf.probability([formal_text], ["Nobody"])
    with pytest.raises(ValueError, match="two authors"):
        AuthorshipClassifier().fit(formal, ["Formal"] * 12)


def test_greek_maths_and_accented_latin_are_not_another_script() -> None:
    assert "other-script" not in degenerate_reasons(GOOD + " The rate λ stays small, naïvely.")


def test_an_answer_mostly_of_page_chrome_is_degenerate() -> None:
    def chrome(line: str) -> bool:
        return line.strip() in {"Share", "Subscribe now", "Jul 20, 2024"}

    assert "chrome" not in degenerate_reasons(GOOD, chrome=chrome)
    assert "chrome" not in degenerate_reasons(GOOD)  # no line test, no chrome reason
    padded = "Jul 20, 2024\n\n" + GOOD + "\n\nShare\n\nSubscribe now"
    assert "chrome" in degenerate_reasons(padded, chrome=chrome)  # 3 of 4 lines
    listing = "\n".join(f"- item {i}" for i in range(12)) + "\n\nDone."
    assert "chrome" in degenerate_reasons(listing, chrome=chrome)  # no prose to speak of


def test_code_in_an_answer_is_content_not_chrome() -> None:
    """A PEP-style section that is mostly a code block (the onboarding gate flagged two of
    eight such answers of Alyssa Coghlan's twin) is not page chrome; a byline list is."""

    def chrome(line: str) -> bool:
        return line.strip() in {"Share", "Subscribe now"}

    code = "\n".join(f"    result_{i} = compute(value_{i}, limit={i})" for i in range(12))
    section = (
        "## Usage syntax\n\nThe proposed syntax is simple, and it reads the way the "
        f"statement runs:\n\n```\n{code}\n```\n\nThe other spelling binds each name "
        f"in a loop of its own:\n\n```\n{code}\n```\n\nEach result is bound once."
    )
    assert "chrome" not in degenerate_reasons(section, chrome=chrome)
    byline = "decodingml.substack.com\nFacebook\nNote\nOther\nPaul Iusztin\nJul 20, 2114\n7"
    assert "chrome" in degenerate_reasons(byline + "\n\nRead the rest.", chrome=chrome)
