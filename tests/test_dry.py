"""DRY: the penalty on extending a token run that the context already holds (core/llm/dry.py)."""

from __future__ import annotations

import numpy as np
import pytest

from core.llm.dry import Dry, LlamaCppDry, breaker_tokens, spacing_variants


def test_extending_a_repeated_run_is_penalised_by_its_length() -> None:
    # ... 5 6 7 [8] ... 5 6 7 → continuing with 8 would repeat a run of 3.
    tokens = np.array([5, 6, 7, 8, 9, 5, 6, 7])
    assert Dry().penalties(tokens) == {8: pytest.approx(0.8 * 1.75)}
    longer = np.array([4, 5, 6, 7, 8, 9, 4, 5, 6, 7])
    assert Dry().penalties(longer)[8] == pytest.approx(0.8 * 1.75**2)


def test_short_matches_and_a_zero_multiplier_cost_nothing() -> None:
    assert Dry().penalties(np.array([3, 7, 8, 1, 7])) == {}  # a run of one: allowed
    assert Dry(multiplier=0).penalties(np.array([5, 6, 7, 8, 5, 6, 7])) == {}


def test_runs_stop_at_line_breaks() -> None:
    newline = 0
    tokens = np.array([5, newline, 6, 7, 8, 1, newline, 6, 7])
    # Without the breaker the run "0 6 7" has length 3; with it, "6 7" has length 2.
    assert Dry().penalties(tokens)[8] == pytest.approx(0.8 * 1.75)
    assert Dry().penalties(tokens, frozenset({newline}))[8] == pytest.approx(0.8)
    assert Dry().penalties(np.array([6, 7, newline, 6, 7, newline]), frozenset({newline})) == {}
    assert breaker_tokens([(0, "\n"), (1, "a"), (2, ".\n\n")]) == frozenset({0, 2})


def test_the_llamacpp_processor_lowers_only_the_penalised_logits() -> None:
    scores = np.zeros(10, dtype=np.single)
    out = LlamaCppDry(Dry(), frozenset())(np.array([5, 6, 7, 8, 9, 5, 6, 7]), scores)
    assert out[8] == pytest.approx(-1.4)
    assert np.count_nonzero(out) == 1


def test_a_penalised_word_is_penalised_in_both_spellings() -> None:
    """Else the model writes the copied phrase's next word glued on ("arecurrently")."""
    pieces = [(0, " are"), (1, "are"), (2, " currently"), (3, "currently"), (4, " ("), (5, "("),
              (6, " unspecified"), (7, "ly")]  # fmt: skip
    spellings = spacing_variants(pieces)
    assert spellings == {0: 1, 1: 0, 2: 3, 3: 2}  # words only: punctuation keeps its own
    # ... 0 2 [6] ... 0 → " currently" (2) would extend a repeated run of 1+1.
    tokens = np.array([9, 0, 2, 6, 8, 9, 0])
    plain = Dry().penalties(tokens)
    assert plain == {2: pytest.approx(0.8)}
    both = Dry().penalties(tokens, spellings=spellings)
    assert both == {2: pytest.approx(0.8), 3: pytest.approx(0.8)}
    scores = np.zeros(10, dtype=np.single)
    out = LlamaCppDry(Dry(), frozenset(), spellings)(tokens, scores)
    assert out[2] == out[3] == pytest.approx(-0.8) and np.count_nonzero(out) == 2


def test_the_served_vocabulary_pairs_each_word_with_its_spaced_spelling() -> None:
    from core.llm import get_llm
    from core.settings import OFFLINE_SMOLLM2

    llm = get_llm(OFFLINE_SMOLLM2, backend="torch-fp32")
    (spaced,) = llm.tokenizer.encode(" the", add_special_tokens=False)
    (plain,) = llm.tokenizer.encode("the", add_special_tokens=False)
    assert llm._spellings[spaced] == plain and llm._spellings[plain] == spaced


PASSAGE = (
    "The farmer walks to the old stone bridge every morning, counts the sheep grazing in "
    "the green valley below, and writes the number in a small leather notebook."
)


def test_dry_keeps_the_served_model_from_copying_its_context(local_runtime: str) -> None:
    from core.llm import get_llm
    from core.settings import OFFLINE_SMOLLM2
    from evals.answer_quality import copied_share

    # A completion prompt that invites the model to copy the rest of the passage verbatim.
    prompt = f"{PASSAGE}\n\n{PASSAGE[:40]}"
    llm = get_llm(OFFLINE_SMOLLM2, backend=local_runtime)

    def continuation(dry: float) -> str:
        pieces = llm.stream(
            prompt, max_new_tokens=32, temperature=0.0, repetition_penalty=1.0, dry_multiplier=dry
        )
        return PASSAGE[:40] + "".join(pieces)

    plain, with_dry = continuation(0.0), continuation(0.8)
    copied = copied_share(plain, PASSAGE)
    assert copied >= 0.5  # greedy decoding copies the rest of it
    assert copied_share(with_dry, PASSAGE) < copied / 2
