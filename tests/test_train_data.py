"""What training learns from (raw-text + instruct objectives, windows, packing inputs), the
perplexity helpers and the few-shot style examples of the prompt — with the real tokenizer."""

from __future__ import annotations

import math

import pytest

AUTHOR = "Ada Example"
ROWS = [
    {"instruction": "Write about tests.", "answer": "Tests are letters to your future self.",
     "context": "", "author": AUTHOR, "document_id": "d1"},
    {"instruction": "Write about naming.", "answer": "Names are the first documentation.",
     "context": "", "author": AUTHOR, "document_id": "d2"},
    {"instruction": "Continue on tests.", "answer": "Write them before you forget why.",
     "context": "", "author": AUTHOR, "document_id": "d1"},
]  # fmt: skip


@pytest.fixture(scope="module")
def tokenizer():
    from conftest import SHARED_MODELS_CACHE
    from transformers import AutoTokenizer

    from core.models import gguf_tokenizer_dir, offline_llm_gguf
    from core.settings import reset_settings

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MODELS_CACHE_DIR", str(SHARED_MODELS_CACHE))
        reset_settings()
        path = gguf_tokenizer_dir(offline_llm_gguf("offline:SmolLM2-135M-Instruct"))
        tok = AutoTokenizer.from_pretrained(path)
    reset_settings()
    return tok


def test_document_texts_rejoin_each_documents_passages_in_order():
    from finetune.train_data import document_texts

    assert document_texts(ROWS) == [
        "Tests are letters to your future self.\n\nWrite them before you forget why.",
        "Names are the first documentation.",
    ]


def test_leading_words_share_a_word_budget_in_whole_paragraphs():
    from finetune.train_data import leading_words

    long = "\n\n".join(f"Paragraph {i} has exactly six words." for i in range(10))
    short = "One short paragraph of six words."
    assert leading_words([long, short], 0) == [long, short]  # 0: whole documents
    kept = leading_words([long, short], 24)  # 12 words each: two paragraphs of the long one
    assert kept[0] == "\n\n".join(long.split("\n\n")[:2]) and kept[1] == short
    # A paragraph longer than the share is still kept whole (one at least per text).
    assert leading_words([long], 1) == [long.split("\n\n")[0]]


def test_objectives(tokenizer):
    from finetune.train_data import training_items

    raw = training_items(tokenizer, ROWS, "raw", 512, seed=0)
    assert len(raw) == 2  # one item per document
    for item in raw:
        assert item["labels"] == item["input_ids"]  # every token is learned
        assert item["input_ids"][-1] == tokenizer.eos_token_id
    instruct = training_items(tokenizer, ROWS, "instruct", 512, seed=0)
    assert len(instruct) == 3
    for item in instruct:
        masked = item["labels"].count(-100)
        assert 0 < masked < len(item["labels"])  # the prompt is masked, the answer is not
        assert item["labels"][masked:] == item["input_ids"][masked:]
    mixed = training_items(tokenizer, ROWS, "mix", 512, seed=0)
    assert sorted(map(str, mixed)) == sorted(map(str, raw + instruct))
    assert mixed == training_items(tokenizer, ROWS, "mix", 512, seed=0)  # seeded shuffle
    with pytest.raises(ValueError, match="objective 'poetry'"):
        training_items(tokenizer, ROWS, "poetry", 512, seed=0)


def test_windows_keep_every_learned_token(tokenizer):
    from finetune.train_data import training_items, windows

    items = training_items(tokenizer, ROWS, "raw", 512, seed=0)
    pieces = windows(items, 4)
    assert all(len(p["input_ids"]) <= 4 for p in pieces)
    assert sum(len(p["input_ids"]) for p in pieces) >= sum(len(i["input_ids"]) for i in items) - 2


def test_perplexity_helpers_agree(tokenizer):
    """Document perplexity in one window equals the completion perplexity of the same tokens,
    and word perplexity scales the same NLL by words instead of tokens."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from finetune.perplexity import completion_nll, document_perplexity, relative_drop

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2)  # fmt: skip
    model = LlamaForCausalLM(config).eval()
    text = ROWS[0]["answer"]
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    doc = document_perplexity(model, tokenizer, [text], window=512)
    total, count = completion_nll(model, [{"input_ids": ids, "labels": ids}], pad_id=0)
    assert count == len(ids) - 1 == doc["tokens"]
    assert doc["perplexity"] == pytest.approx(math.exp(total / count), rel=1e-4)
    assert doc["word_perplexity"] == pytest.approx(math.exp(total / len(text.split())), rel=1e-4)
    assert relative_drop(10.0, 7.0) == pytest.approx(0.3)


def test_precision_choice():
    from finetune.sft import use_bf16

    assert use_bf16("fp32") is False and use_bf16("bf16") is True
    assert use_bf16("auto") in (True, False)
    with pytest.raises(ValueError, match="fp8"):
        use_bf16("fp8")


def test_style_examples_are_token_bounded_turns_before_the_request():
    from core.prompts import TOKENS_PER_WORD, clip_to_tokens, style_examples, twin_messages

    long = " ".join(f"Sentence number {i} ends here." for i in range(200))
    clipped = clip_to_tokens(long, 60)
    assert clipped.endswith("ends here.") and len(clipped.split()) <= 60 / TOKENS_PER_WORD
    assert clip_to_tokens("Short and whole.", 60) == "Short and whole."
    turns = style_examples([("Retries", long), ("", "Names matter.")], 60)
    assert [t["role"] for t in turns] == ["user", "assistant", "user", "assistant"]
    assert '"Retries"' in turns[0]["content"] and turns[1]["content"] == clipped
    messages = twin_messages("Write about caching.", "some context", AUTHOR, examples=turns)
    assert [m["role"] for m in messages] == ["system", *[t["role"] for t in turns], "user"]
    assert messages[-1]["content"].endswith("Write about caching.")


def test_build_messages_shows_passages_as_examples_when_configured():
    from langchain_core.documents import Document

    from graph.configuration import Configuration
    from graph.generation_nodes import build_messages

    docs = [Document(page_content=f"Passage {i} in my voice.", metadata={"title": f"T{i}"})
            for i in range(2)]  # fmt: skip
    state = {"request": "Write about X.", "context": docs, "filters": {"author": AUTHOR}}
    plain = build_messages(state, Configuration(style_examples=0))
    assert [m.type for m in plain] == ["system", "human"]
    assert "Passage 0" in plain[-1].content and "Passage 1" in plain[-1].content
    shown = build_messages(state, Configuration(style_examples=1))
    assert [m.type for m in shown] == ["system", "human", "ai", "human"]
    assert '"T0"' in shown[1].content and shown[2].content == "Passage 0 in my voice."
    assert "Passage 0" not in shown[-1].content and "Passage 1" in shown[-1].content


def test_served_prompt_is_the_training_format():
    """The graph's LangChain prompt, turned into the dicts a backend renders, is exactly
    `core.prompts.twin_messages` for the same request (what training renders)."""
    from langchain_core.documents import Document
    from langchain_core.messages import AIMessage, HumanMessage

    from core.llm import lc_to_dicts
    from core.prompts import format_context, twin_messages
    from graph.configuration import Configuration
    from graph.generation_nodes import build_messages

    docs = [Document(page_content="Passage one.", metadata={}), Document(page_content="Two.")]
    history = [HumanMessage(content="Earlier ask"), AIMessage(content="Earlier answer")]
    state = {"request": "Write about X.", "context": docs, "filters": {"author": AUTHOR},
             "messages": [*history, HumanMessage(content="Write about X.")]}  # fmt: skip
    served = lc_to_dicts(build_messages(state, Configuration()))
    trained = twin_messages(
        "Write about X.", format_context(["Passage one.", "Two."]), AUTHOR,
        history=lc_to_dicts(history),
    )  # fmt: skip
    assert served == trained


def test_time_box_schedule_anneals_within_the_budget():
    from finetune.sft import TimeBox

    box = TimeBox(max_steps=10, warmup_ratio=0.2, budget_s=0.0)
    factors = [box.lr_factor(step) for step in range(10)]
    assert factors[0] < factors[1] < factors[2] == 1.0  # warmup, then the peak
    assert all(a > b for a, b in zip(factors[2:], factors[3:], strict=False))  # linear decay
    box.start()
    assert not any(box.should_stop(step) for step in range(1, 10)) and box.should_stop(10)
    # A budget already spent: the total shrinks to the steps done, so the schedule ends now.
    tight = TimeBox(max_steps=1000, warmup_ratio=0.1, budget_s=1e-9)
    tight.start()
    tight.should_stop(1)
    assert tight.should_stop(3) and tight.cut and tight.total == 3
    # An expected step speed sizes the total from the start; a faster measured speed takes it
    # back up, never past max_steps.
    sized = TimeBox(max_steps=100, warmup_ratio=0.1, budget_s=60.0, step_s_estimate=4.0)
    assert sized.total == 15 and sized.cut and sized.warmup == 10
    sized.start()
    assert not any(sized.should_stop(step) for step in (1, 2, 3))
    assert sized.total == 100 and not sized.cut


def test_style_example_knobs_are_bounded():
    from graph.configuration import Configuration
    from graph.knobs import InvalidKnob

    with pytest.raises(InvalidKnob, match="style_example_tokens"):
        Configuration(style_example_tokens=1_000_000)
    with pytest.raises(InvalidKnob, match="style_examples"):
        Configuration(style_examples=-1)
