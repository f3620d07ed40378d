"""evals/voice/yardstick.py: the voice yardstick that copying cannot pass — real
computations (suffix automaton, scikit-learn, langdetect, the corpus chrome detector) on
small texts written here."""

from __future__ import annotations

import random

import pytest

from core.verbatim import CopyIndex, copy_tokens
from evals.answer_quality import degenerate_reasons, other_scripts, prose_word_share
from evals.voice.invented_specifics import Sources, extract_specifics, invented_specifics
from evals.voice.mangled_words import mangled_words
from evals.voice.yardstick import AnswerRecord, VoiceYardstick

COOKING = {
    "nouns": "bread dough oven flour butter soup pan onion garlic recipe crust loaf".split(),
    "verbs": "bake stir chop knead taste roast slice season".split(),
    "adjs": "crisp warm salty golden soft sticky".split(),
}
ASTRONOMY = {
    "nouns": "telescope galaxy nebula comet orbit star planet eclipse spectrum detector".split(),
    "verbs": "observe measure track calibrate photograph map".split(),
    "adjs": "faint distant bright cold dusty ancient".split(),
}


def short_i_style(topic: dict, rng: random.Random, paragraphs: int = 6) -> str:
    """Short sentences, first person singular, bullet lists, no semicolons."""
    out = []
    for i in range(paragraphs):
        n, v, a = (rng.choice(topic[k]) for k in ("nouns", "verbs", "adjs"))
        n2 = rng.choice(topic["nouns"])
        if i % 2:
            out.append(f"- I {v} the {n}.\n- I check the {n2}.\n- It is {a} now!")
        else:
            out.append(f"I {v} the {n} every day. It is {a}. I like the {n2}. "
                       f"My {n} is {a} too. I don't rush it. Simple is good!")  # fmt: skip
    return "\n\n".join(out)


def long_we_style(topic: dict, rng: random.Random, paragraphs: int = 5) -> str:
    """Long sentences, first person plural, semicolons, parentheses, no lists."""
    out = []
    for _ in range(paragraphs):
        n, v, a = (rng.choice(topic[k]) for k in ("nouns", "verbs", "adjs"))
        n2, n3 = rng.choice(topic["nouns"]), rng.choice(topic["nouns"])
        out.append(
            f"When we consider the {n}, which our group has studied for many years, we find "
            f"that the {a} {n2} is, in most respects, a question of patience; we therefore "
            f"{v} it again (and again), and we record what we see in the {n3}, because the "
            f"work that we share depends on it; our colleagues, whose notes we keep, would "
            f"say the same of the {n2} and of every {n3} that we have examined together."
        )
    return "\n\n".join(out)


def corpus(style, topic: dict, seed: int, documents: int) -> list[str]:
    rng = random.Random(seed)
    return [style(topic, rng) for _ in range(documents)]


@pytest.fixture(scope="module")
def two_authors() -> VoiceYardstick:
    training = {
        "Ada": corpus(short_i_style, COOKING, 1, 6),
        "Bert": corpus(long_we_style, ASTRONOMY, 2, 6),
    }
    held_out = {
        "Ada": corpus(short_i_style, COOKING, 3, 2),
        "Bert": corpus(long_we_style, ASTRONOMY, 4, 2),
    }
    return VoiceYardstick.fit(training, held_out)


REAL_PARAGRAPH = (
    "Explicit code is easier to read than clever code. When a function says what it does, "
    "the next person who opens the file does not have to guess, and the reviewer can spend "
    "their attention on the design instead of on decoding the tricks."
)


def test_a_verbatim_copy_has_a_long_span_and_a_paraphrase_does_not() -> None:
    index = CopyIndex(["An unrelated first document about sourdough.", REAL_PARAGRAPH])
    span, text = index.longest_span("As I wrote before:\n\n" + REAL_PARAGRAPH.upper())
    assert span == len(copy_tokens(REAL_PARAGRAPH)) and text.startswith("explicit code")
    assert index.ngram_share(REAL_PARAGRAPH) == 1.0
    paraphrase = (
        "Plain code beats smart code for readers. If a function states its purpose, whoever "
        "opens the file next need not guess, and reviewers can look at the design rather "
        "than untangle tricks."
    )
    assert index.longest_span(paraphrase)[0] <= 3
    assert index.ngram_share(paraphrase) == 0.0
    # A span never runs across two documents.
    assert index.longest_span("about sourdough explicit code is")[0] == 3


def test_the_longest_span_matches_a_brute_force_search() -> None:
    rng = random.Random(0)
    vocab = "a b c d e".split()
    docs = [" ".join(rng.choice(vocab) for _ in range(60)) for _ in range(3)]
    index = CopyIndex(docs)
    doc_tokens = [d.split() for d in docs]
    for _ in range(40):
        query = [rng.choice(vocab + ["z"]) for _ in range(25)]
        best = 0
        for i in range(len(query)):
            for j in range(i + 1, len(query) + 1):
                piece = query[i:j]
                if any(
                    doc[k : k + len(piece)] == piece for doc in doc_tokens for k in range(len(doc))
                ):
                    best = max(best, j - i)
        assert index.longest_span(" ".join(query))[0] == best


def test_recital_is_caught_beside_the_gold_rate(two_authors: VoiceYardstick) -> None:
    recital = corpus(short_i_style, COOKING, 1, 6)[0]  # Ada's first training document
    scored = two_authors.score_answers([AnswerRecord("Ada", recital)])
    gold = two_authors.score_gold()["summary"]
    row = scored["per_answer"][0]
    assert row["copy_8gram_share"] == 1.0
    assert row["copy_longest_span"] == len(copy_tokens(recital))
    assert gold["n"] == 4 and gold["copy_longest_span_median"] < row["copy_longest_span"]


def test_style_attribution_follows_style_not_topic(two_authors: VoiceYardstick) -> None:
    rng = random.Random(9)
    same_topics = [
        AnswerRecord("Ada", short_i_style(COOKING, rng, 4)),
        AnswerRecord("Bert", long_we_style(ASTRONOMY, rng, 3)),
    ]
    swapped = [  # each author writing on the OTHER author's topic
        AnswerRecord("Ada", short_i_style(ASTRONOMY, rng, 4)),
        AnswerRecord("Bert", long_we_style(COOKING, rng, 3)),
    ]
    for records in (same_topics, swapped):
        result = two_authors.score_answers(records)
        summary = result["summary"]
        assert [r["style_author"] for r in result["per_answer"]] == ["Ada", "Bert"]
        assert summary["style_attribution"] == 1.0
        assert summary["delta_nearest_share"] == 1.0
        assert summary["delta_own"] < summary["delta_other"]
    gold = two_authors.score_gold()["summary"]
    assert gold["style_attribution"] == 1.0 and gold["char_attribution"] is not None


def test_one_author_reports_distances_not_attribution() -> None:
    yardstick = VoiceYardstick.fit(
        {"Ada": corpus(short_i_style, COOKING, 1, 5)}, {"Ada": corpus(short_i_style, COOKING, 3, 2)}
    )
    rng = random.Random(5)
    own = yardstick.score_answers([AnswerRecord("Ada", short_i_style(COOKING, rng, 4))])
    foreign = yardstick.score_answers([AnswerRecord("Ada", long_we_style(COOKING, rng, 3))])
    for summary in (own["summary"], foreign["summary"]):
        assert summary["style_attribution"] is None and summary["char_attribution"] is None
        assert summary["delta_other"] is None and summary["delta_nearest_share"] is None
        assert summary["delta_training"] is not None
    assert own["summary"]["delta_own"] < foreign["summary"]["delta_own"]
    assert foreign["summary"]["delta_own"] > foreign["summary"]["delta_training"]
    with pytest.raises(ValueError, match="Bert"):
        yardstick.score_answers([AnswerRecord("Bert", "Hello there.")])


def test_an_invented_identifier_is_flagged_and_a_given_one_is_not() -> None:
    answer = (
        "I call `parse_config()` first, then frobnicate_widgets() cleans up; in 1987 "
        "we met Linus Torvalds at the meetup, and in step 2 we learned about sourdough."
    )
    specifics = extract_specifics(answer)
    assert {"parse_config()", "frobnicate_widgets()", "1987", "Linus Torvalds"} <= set(specifics)
    assert "2" not in specifics
    context = Sources.of(["def parse_config(path): ..."])
    author_corpus = Sources.of(["I wrote about linus torvalds once."])
    invented = invented_specifics(answer, context, author_corpus)
    assert "frobnicate_widgets()" in invented and "1987" in invented
    assert "parse_config()" not in invented and "Linus Torvalds" not in invented


def test_grounding_counts_the_request_and_context(two_authors: VoiceYardstick) -> None:
    answer = "I bake the bread with the ProofingBox every day. It is warm. I like it a lot."
    bare = two_authors.score_answers([AnswerRecord("Ada", answer)])
    given = two_authors.score_answers(
        [AnswerRecord("Ada", answer, context="The ProofingBox keeps dough warm.")]
    )
    assert bare["per_answer"][0]["invented"] == ["ProofingBox"]
    assert bare["summary"]["invented_share"] == 1.0
    assert given["per_answer"][0]["invented"] == [] and given["summary"]["invented_share"] == 0.0


PLUG = "Ada's Kitchen Letter: new recipes every Friday, straight to your inbox"


def test_page_chrome_lines_are_counted() -> None:
    rng = random.Random(7)
    docs = [short_i_style(COOKING, rng) + f"\n\n{PLUG}\n\nJul 20, 2024" for _ in range(4)]
    yardstick = VoiceYardstick.fit({"Ada": docs})
    chromey = (
        f"{PLUG}\n\nJul 21, 2024\n\nShare\n\nI bake the bread every day. It is warm and golden."
    )
    clean = "I bake the bread every day. It is warm and golden. I like the crust. Simple is good!"
    result = yardstick.score_answers([AnswerRecord("Ada", chromey), AnswerRecord("Ada", clean)])
    rows, summary = result["per_answer"], result["summary"]
    assert rows[0]["chrome_line_share"] == pytest.approx(3 / 4)
    assert rows[1]["chrome_line_share"] == 0.0 and rows[1]["prose_word_share"] == 1.0
    assert rows[0]["prose_word_share"] < 0.6
    assert summary["chrome_answer_share"] == 0.5
    assert summary["chrome_line_share_mean"] == pytest.approx(3 / 8)
    from ingest.features.boilerplate import CorpusChrome

    is_chrome = CorpusChrome.fit(docs).is_chrome
    assert "chrome" in degenerate_reasons(chromey, chrome=is_chrome)
    long_clean = clean + " I knead the dough slowly, and I wait until it is soft and ready."
    assert "chrome" not in degenerate_reasons(long_clean, chrome=is_chrome)


def test_prose_share_joins_wrapped_lines_and_skips_code() -> None:
    wrapped = "This sentence is wrapped\nat a narrow column, as reStructuredText\nsources are."
    assert prose_word_share(wrapped) == 1.0
    mixed = "Here is the fix.\n\n```python\nx = compute(a, b, c, d)\n```"
    assert prose_word_share(mixed) < 0.5


def test_a_chinese_word_in_an_english_answer_is_caught(two_authors: VoiceYardstick) -> None:
    answer = (
        "I knead the dough until it feels 柔软 and warm. Then I let it rest for an hour, "
        "and I bake it in a hot oven until the crust is golden and crisp."
    )
    assert other_scripts(answer) == ["CJK"]
    assert "other-script" in degenerate_reasons(answer)
    math = "The decay constant λ sets the half life, so I estimate λ from two counts first."
    assert other_scripts(math) == [] and "other-script" not in degenerate_reasons(math)
    result = two_authors.score_answers(
        [AnswerRecord("Ada", answer), AnswerRecord("Ada", answer.replace("柔软", "soft"))]
    )
    assert [r["wrong_language"] for r in result["per_answer"]] == [True, False]
    assert result["summary"]["wrong_language_share"] == 0.5


def test_glued_and_broken_words_are_caught_and_real_compounds_are_not(
    two_authors: VoiceYardstick,
) -> None:
    corpus = Sources.of(["The semantics of locals() are currently unspecified. Use a method."])
    answer = ("The semantics arecurrently unspecified, so use oflocals() with care: a metho d "
              "that works in every codebase, as RISC OS users know.")  # fmt: skip
    # "codebase": both halves are words, but nobody wrote "code base"; "RISC OS": a name.
    assert mangled_words(answer, corpus) == ["arecurrently", "oflocals", "metho d"]
    assert mangled_words("The semantics are currently unspecified.", corpus) == []
    scored = two_authors.score_answers(
        [AnswerRecord("Ada", "I knead thedough and bake the bread.", context="knead the dough"),
         AnswerRecord("Ada", "I knead the dough and bake the bread.")]
    )  # fmt: skip
    assert [r["mangled"] for r in scored["per_answer"]] == [["thedough"], []]
    assert scored["summary"]["mangled_share"] == 0.5


def test_summary_has_the_documented_keys(two_authors: VoiceYardstick) -> None:
    summary = two_authors.score_gold()["summary"]
    for key in ("n", "copy_longest_span_median", "copy_8gram_share_median",
                "style_attribution", "char_attribution", "delta_own", "delta_other",
                "delta_nearest_share", "invented_share", "chrome_line_share_mean",
                "chrome_answer_share", "prose_word_share_mean", "wrong_language_share",
                "mangled_share", "mangled_per_100_words_mean"):  # fmt: skip
        assert key in summary
    empty = two_authors.score_answers([])["summary"]
    assert empty["n"] == 0 and empty["delta_own"] is None
