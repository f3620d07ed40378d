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

# No identity line here: with "say that you are X's twin" in it, both Qwen models opened
# ordinary answers with "As X, I write in a formal tone…", and a "do not invent numbers"
# line made the 1.5B refuse ("I can't assist with that"); the twin introduces itself
# through an example turn in small talk only (`small_talk_examples`).
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
# The separator on a line of its own in an answer: the model has gone on to write another
# "excerpt", or a request of its own (4 of 30 held-out PEP answers, base and tuned, did:
# "* * *" then a second Acknowledgments, or "Write a passage for a post title …"). Every
# generation stops there, as it stops at the chat template's control text.
EXCERPT_BREAK = "\n" + CONTEXT_SEPARATOR.strip() + "\n"
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


# Small talk ("hi", "who are you?", "thanks"): no topic to retrieve for, and the moment a
# small instruct model falls back to its vendor's persona ("I'm an AI language model created
# by OpenAI"). Such a turn gets no context and one example turn of the twin introducing
# itself, so the model answers as the author's twin.
_SMALL_TALK = re.compile(
    r"^(?:(?:hi|hello|hey|hiya|howdy|yo|greetings|good (?:morning|afternoon|evening|day)|"
    r"thanks?(?: you)?(?: (?:so|very) much)?|thank you|cheers|bye|goodbye|see you|"
    r"how are you(?: doing| today)?|how'?s it going|what'?s up|nice to meet you|"
    r"who are you|what are you|who is this|are you (?:an? )?(?:ai|bot|robot|human|real|"
    r"person|machine|chatbot|language model)|who (?:made|built|created|trained|wrote) you|"
    r"what can you do|what do you do|introduce yourself|tell me about yourself|"
    r"what(?:'s| is) your name)"
    r"(?: (?:there|again|twin|friend|everyone|all))?[\s!?.,:;)(-]*)+$",
    re.IGNORECASE,
)
# Only small talk gets this line (with it in every prompt, answers opened with "As X, I…").
SMALL_TALK_SYSTEM_LINE = (
    " Greeted, thanked or asked who you are, answer in one or two sentences as {author}'s "
    "writing twin and offer to write something in {author}'s voice."
)
# Two example exchanges, a greeting and the identity question: with the greeting alone the
# 0.5B answered "who are you?" with an invented biography ("born in 1978 in Los Angeles").
SMALL_TALK_EXAMPLES = (
    (
        "Hi!",
        "Hello! I'm {author}'s writing twin: I learnt to write from {author}'s own posts and "
        "articles. Ask me to write something the way {author} would.",
    ),
    (
        "Who are you, really?",
        "I'm not {author} but {author}'s writing twin, an AI trained on what {author} has "
        "written. I can draft posts and answers in {author}'s voice.",
    ),
)
# A vendor's assistant persona in an answer: never the twin's own words.
VENDOR_PERSONA = re.compile(
    r"[^.!?\n]*\b(?:(?:I am|I'm|as) (?:an? )?(?:AI language model|large language model|"
    r"language model (?:developed|created|made|trained) by|AI assistant (?:developed|created|"
    r"made|trained) by|Qwen|ChatGPT|GPT-\d|Claude)|(?:created|developed|made|trained|built) "
    r"by (?:OpenAI|Alibaba(?: Cloud)?|Anthropic|Google|Meta|Hugging ?Face))[^.!?\n]*[.!?]?",
    re.IGNORECASE,
)


def is_small_talk(text: str) -> bool:
    """A greeting, thanks or question about the twin itself, with nothing to write about."""
    stripped = " ".join(text.split())
    return bool(stripped) and len(stripped.split()) <= 12 and bool(_SMALL_TALK.match(stripped))


def small_talk_examples(author: str) -> list[dict[str, str]]:
    """Example exchanges in which the twin greets and says what it is: the author's twin."""
    name = author.strip() or GENERIC_AUTHOR
    turns: list[dict[str, str]] = []
    for request, answer in SMALL_TALK_EXAMPLES:
        turns += [{"role": "user", "content": request},
                  {"role": "assistant", "content": answer.replace("{author}", name)}]  # fmt: skip
    return turns


_ASKS_WHO = re.compile(
    r"\b(?:hi|hello|hey|hiya|howdy|greetings|good (?:morning|afternoon|evening|day)|who|"
    r"what are you|are you|introduce|yourself|your name|what can you do|what do you do)\b",
    re.IGNORECASE,
)


def twin_reply_to_small_talk(request: str, answer: str, author: str) -> str:
    """The answer to small talk, as the author's twin: a greeting or "who are you?" whose
    answer does not say it is the twin (the small models often fall back to "How can I
    assist you today?") gets the twin's own introduction instead."""
    if _ASKS_WHO.search(request) and "twin" not in answer.lower():
        name = author.strip() or GENERIC_AUTHOR
        return SMALL_TALK_EXAMPLES[0][1].replace("{author}", name)
    return answer


def drop_vendor_persona(text: str) -> str:
    """`text` without sentences in which the model speaks as a vendor's assistant."""
    return re.sub(r"[ \t]{2,}", " ", VENDOR_PERSONA.sub("", text)).strip()


def twin_system_prompt(
    author: str, template: str = TWIN_SYSTEM_PROMPT, *, small_talk: bool = False
) -> str:
    """The system message's text, rendered once: `template` (with the small-talk line for
    small talk) and `{author}` filled in."""
    text = template + (SMALL_TALK_SYSTEM_LINE if small_talk else "")
    return text.replace("{author}", author.strip() or GENERIC_AUTHOR)


def twin_user_turn(instruction: str, context: str = "") -> str:
    """The user's turn: the context excerpts first, then the instruction."""
    user = instruction.strip()
    if context.strip():
        user = f"{CONTEXT_HEADER}\n\n{context.strip()}{CONTEXT_SEPARATOR}{user}"
    return user


def twin_messages(
    instruction: str,
    context: str = "",
    author: str = "",
    history: Sequence[dict[str, str]] = (),
    examples: Sequence[dict[str, str]] = (),
    system_prompt: str = TWIN_SYSTEM_PROMPT,
) -> list[dict[str, str]]:
    """Chat messages for one request: system (`{author}` filled in), style example turns
    (`style_examples`), prior turns, then the user's instruction after the context. (The
    graph builds the same turns as LangChain messages: `graph.generation_nodes`.)"""
    return [
        {"role": "system", "content": twin_system_prompt(author, system_prompt)},
        *examples,
        *history,
        {"role": "user", "content": twin_user_turn(instruction, context)},
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
