"""The twin's answer to a writing request does not end before `min_words` words
(core/llm/min_words.py)."""

from __future__ import annotations

import numpy as np

from core.llm.min_words import LlamaCppMinimumWords, MinimumWords, end_tokens, word_count

PIECES = ["Short", " answer", ".", "<end>", " More", " words"]
END = np.array([3])


def test_the_end_is_refused_only_while_the_answer_is_short() -> None:
    check = MinimumWords(END, min_words=3)
    out = check.mask("Short answer.", np.zeros(len(PIECES)), PIECES)
    assert np.isneginf(out[3]) and np.isfinite(np.delete(out, 3)).all() and check.blocked == 1
    out = check.mask("Short answer. More words.", np.zeros(len(PIECES)), PIECES)
    assert np.isfinite(out).all() and check.blocked == 1  # four words: it may end
    # An end token outside the row (a smaller vocabulary) and a row of end tokens alone.
    assert np.isfinite(MinimumWords(np.array([9]), 3).mask("", np.zeros(4), PIECES)).all()
    only_end = np.full(len(PIECES), -np.inf)
    only_end[3] = 0.0
    assert MinimumWords(END, 3).mask("", only_end.copy(), PIECES)[3] == 0.0


def test_the_words_of_an_unfinished_last_sentence_do_not_count() -> None:
    # Served answers drop an unfinished last sentence (trim_to_sentence).
    check = MinimumWords(END, min_words=4)
    assert np.isneginf(check.mask("One two. Three four five", np.zeros(6), PIECES)[3])
    assert np.isfinite(check.mask("One two. Three four.", np.zeros(6), PIECES)[3])


def test_a_short_answer_does_not_write_a_stop_string_or_its_start() -> None:
    stops = ["\n\n* * *\n\n", "<|im_end|>"]
    check = MinimumWords(np.array([2]), min_words=3, stops=stops, top_k=3)
    assert not check.allows("Short answer.\n\n", "* *")  # the excerpts' separator
    assert not check.allows("Short answer.\n\n* *", " *\n\n")
    assert not check.allows("Short", " answer<|im")
    assert check.allows("Short answer.\n\n", "* A bullet")  # a list item is text
    assert check.allows("Short answer.", "\n\n")
    pieces = ["\n\n* *", " More", "<end>"]
    out = check.mask("Short answer.", np.zeros(3), pieces)
    assert np.isneginf(out[0]) and np.isfinite(out[1]) and np.isneginf(out[2])
    assert np.isfinite(check.mask("Short answer. More words.", np.zeros(3), pieces)).all()


def test_words_are_counted_as_the_gate_counts_a_short_answer() -> None:
    from evals.answer_quality import words

    text = "It's `os.path` — 3 words? No: (more) than 3, e.g. a_b!"
    assert word_count(text) == len(words(text))


def test_the_processor_counts_the_answer_not_the_prompt() -> None:
    processor = LlamaCppMinimumWords(PIECES, END, min_words=2, stops=())
    prompt = np.array([4, 5, 4, 5])  # the prompt has four words; the answer none yet
    assert np.isneginf(processor(prompt, np.zeros(len(PIECES)))[3])
    assert np.isneginf(processor(np.array([4, 5, 4, 5, 0]), np.zeros(len(PIECES)))[3])
    assert np.isfinite(processor(np.array([4, 5, 4, 5, 0, 1]), np.zeros(len(PIECES)))[3])


def test_the_chat_templates_end_tokens_are_found_in_a_real_tokenizer() -> None:
    from core.llm.base import generation_defaults
    from core.models import gguf_tokenizer_dir, load_tokenizer, offline_llm_gguf
    from core.settings import OFFLINE_LLM_FALLBACK

    tokenizer = load_tokenizer(str(gguf_tokenizer_dir(offline_llm_gguf(OFFLINE_LLM_FALLBACK))))
    stops = generation_defaults(OFFLINE_LLM_FALLBACK).stop
    ids = end_tokens(
        [tokenizer.eos_token_id, None],
        stops,
        lambda s: tokenizer.encode(s, add_special_tokens=False),
    )
    expected = {tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")}
    assert expected <= set(ids.tolist())
    assert len(ids) == len(set(ids.tolist())) <= 4  # no multi-token stop string's pieces


def test_asked_for_one_word_the_model_writes_on_to_the_minimum(local_runtime: str) -> None:
    from core.llm import get_llm
    from core.settings import OFFLINE_SMOLLM2

    llm = get_llm(OFFLINE_SMOLLM2, backend=local_runtime)
    request = [{"role": "user", "content": "Answer with one word, yes or no: is water wet?"}]
    free = llm.generate(request, max_new_tokens=40, temperature=0.0)
    held = llm.generate(request, max_new_tokens=40, temperature=0.0, min_words=20)
    assert word_count(free) < 10, free
    assert word_count(held) >= 20, held
    assert held.startswith(free.strip().rstrip(".")), (free, held)  # only the end waited
