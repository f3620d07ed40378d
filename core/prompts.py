"""The twin's prompt format: the single source for dataset building, training and serving.

Training renders `twin_messages(instruction, context)` + the author's text as the assistant
turn; serving renders the same messages with the generation prompt. So what the model is
trained on is exactly what it is served (tests/test_train.py proves it). Serving may add
the author's own passages as few-shot example turns (`style_examples`, off by default: see
graph/configuration.py `style_examples`); they are ordinary chat turns of the same format.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Protocol

TWIN_SYSTEM_PROMPT = (
    "You are {author}'s writing twin. Write in {author}'s own voice: their tone, vocabulary, "
    "sentence rhythm and formatting habits. Use the context when it is relevant; never invent "
    "facts that the context or the request does not support."
)
GENERIC_AUTHOR = "the author"
# Context comes first and the request last, without labels the model could continue:
# with numbered "[1]" passages and a "Request:" line, Qwen-0.5B sometimes copied passages
# and the request into its answer (benchmarks/twin_quality.py, "prompt-echo"/"copied").
CONTEXT_HEADER = (
    "Excerpts from the author's earlier writing, for facts and voice (write new text; "
    "do not copy them):"
)
CONTEXT_SEPARATOR = "\n\n* * *\n\n"
# Few-shot style examples: the author's own passages as earlier turns of the conversation
# (a request for each, the passage as the twin's answer), so the model continues a voice it
# has just "written in" rather than reading about it.
STYLE_EXAMPLE_REQUEST = 'Write a passage on "{topic}".'
# Examples are bounded in tokens without a tokenizer at hand: English prose measured 1.4–1.8
# tokens per word with the Qwen and SmolLM2 tokenizers (the PEP corpus); 1.8 keeps a budget.
TOKENS_PER_WORD = 1.8
_SENTENCE_END = re.compile(r"[.!?:](?:[\"')\]*_`])*(?=\s|$)")


class ChatTemplateTokenizer(Protocol):
    def apply_chat_template(self, conversation: Any, **kwargs: Any) -> Any: ...


def format_context(passages: Sequence[str]) -> str:
    """The passages, in rank order, between plain separators."""
    return CONTEXT_SEPARATOR.join(p.strip() for p in passages if p.strip())


def clip_to_tokens(text: str, max_tokens: int) -> str:
    """`text` cut to about `max_tokens` tokens, at the last sentence end that fits (a whole
    text that fits is returned unchanged)."""
    words = text.split()
    budget = int(max_tokens / TOKENS_PER_WORD)
    if len(words) <= budget:
        return text.strip()
    head = " ".join(words[:budget])
    ends = [m.end() for m in _SENTENCE_END.finditer(head)]
    return head[: ends[-1]] if ends else head


def style_examples(passages: Sequence[tuple[str, str]], max_tokens: int) -> list[dict[str, str]]:
    """(topic, passage) pairs of the author's own writing as example turns: a request for
    each and the passage (clipped to `max_tokens`) as the answer."""
    turns: list[dict[str, str]] = []
    for topic, passage in passages:
        text = clip_to_tokens(passage, max_tokens)
        if text:
            request = STYLE_EXAMPLE_REQUEST.format(topic=topic.strip() or "the same subject")
            turns += [{"role": "user", "content": request}, {"role": "assistant", "content": text}]
    return turns


def twin_messages(
    instruction: str,
    context: str = "",
    author: str = "",
    history: Sequence[dict[str, str]] = (),
    examples: Sequence[dict[str, str]] = (),
) -> list[dict[str, str]]:
    """Chat messages for one request: system, style example turns (`style_examples`), prior
    turns, then the user's instruction after the context."""
    system = TWIN_SYSTEM_PROMPT.format(author=author.strip() or GENERIC_AUTHOR)
    user = instruction.strip()
    if context.strip():
        user = f"{CONTEXT_HEADER}\n\n{context.strip()}{CONTEXT_SEPARATOR}{user}"
    return [
        {"role": "system", "content": system},
        *examples,
        *history,
        {"role": "user", "content": user},
    ]


def render_prompt(tokenizer: ChatTemplateTokenizer, messages: list[dict[str, str]]) -> str:
    """The exact text the model sees before it starts the answer."""
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def render_training_example(
    tokenizer: ChatTemplateTokenizer,
    instruction: str,
    answer: str,
    context: str = "",
    author: str = "",
) -> tuple[str, str]:
    """(prompt, completion) for SFT: prompt == the serving prompt for the same request."""
    prompt = render_prompt(tokenizer, twin_messages(instruction, context, author))
    eos = getattr(tokenizer, "eos_token", None) or ""
    return prompt, answer.strip() + eos


# Prompts the inference graph's helper steps use; kept here so Studio/LangServe callers
# can override them per run through the graph Configuration.
SELF_QUERY_PROMPT = (
    "Extract search filters from the request. Reply with JSON only, keys: author (a person's "
    "full name or null), category (one of articles, posts, repositories, or null), platform "
    "(one of medium, substack, linkedin, github, web, file, git, or null), date_from and "
    "date_to (YYYY-MM-DD or null).\nRequest: {query}\nJSON:"
)
EXPAND_QUERY_PROMPT = (
    "Write {n} different search queries that would find passages answering the request. "
    "One query per line, no numbering.\nRequest: {query}\nQueries:"
)
