"""Instruction and generic-answer generation for the dataset builders.

The generator LLM is configurable (`--generator REF`, default the offline
SmolLM2-135M-Instruct) and goes through `core.llm.get_llm(ref)` (an OpenAI-compatible
endpoint when `LLM_BASE_URL` is set, else in-process). Generation is greedy, so the same
inputs give the same outputs. The 135M model is weak: every instruction it writes passes
quality checks (`check_instruction`) or is replaced by a deterministic template built from
the passage's heading / the document title / its first sentence (`template_instruction`).
Results are cached per (model, prompt) under `DATA_DIR/datasets/cache/` so rebuilding a
changed corpus only generates for new passages.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import re
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

INSTRUCTION_SYSTEM = (
    "You turn a piece of writing into the request that would produce it. "
    "Reply with one sentence only: the request, nothing else."
)
REFUSAL_PATTERNS = re.compile(
    r"\b(i'?m sorry|i am sorry|i cannot|i can'?t|as an ai|language model|i'?m unable|"
    r"i am unable|i don'?t have|cannot assist|not able to)\b",
    re.IGNORECASE,
)
META_PATTERNS = re.compile(
    r"\b(this passage|the passage|the text above|above text|this text|the following text|"
    r"here is|here's|request:|instruction:)\b",
    re.IGNORECASE,
)
# Verbal tics at the start of a first sentence say nothing about the topic.
LEAD_INS = re.compile(
    r"^(here is the thing about|here's the thing about|here is the thing:|here's the thing:|"
    r"i think that|today i want to talk about|let's talk about|so,|well,)\s*",
    re.IGNORECASE,
)
STOPWORDS = frozenset(
    "about above after again also because been before being below between both could does "
    "doing down during each few from further have having here into itself just more most "
    "must myself once only other over same should some such than that their theirs them "
    "then there these they this those through under until very what when where which while "
    "will with would your yours write post article section code explaining explain".split()
)
STARTERS = (
    "Write a LinkedIn post about",
    "Write a post about",
    "Write an article section explaining",
    "Write the code for",
)
IMPERATIVES = (
    "write", "explain", "describe", "draft", "create", "compose", "share", "implement",
    "summarize", "summarise", "outline", "discuss", "give", "tell", "show", "build",
    "argue", "walk",
)  # fmt: skip
CODE_LANGUAGES = {
    ".py": "Python", ".js": "JavaScript", ".ts": "TypeScript", ".tsx": "TypeScript",
    ".go": "Go", ".rs": "Rust", ".java": "Java", ".c": "C", ".h": "C", ".cpp": "C++",
    ".cc": "C++", ".rb": "Ruby", ".sh": "shell", ".sql": "SQL", ".md": "Markdown",
    ".toml": "TOML", ".yaml": "YAML", ".yml": "YAML", ".json": "JSON", ".html": "HTML",
    ".css": "CSS", ".kt": "Kotlin", ".swift": "Swift", ".php": "PHP", ".scala": "Scala",
}  # fmt: skip


# --- the LLM -------------------------------------------------------------------------


class _LocalGreedyLLM:
    """Fallback when `core.llm` is unavailable: greedy generation with transformers."""

    def __init__(self, ref: str) -> None:
        self.ref = ref

    @property
    def tokenizer(self) -> Any:
        from core.models import load_causal_lm

        return load_causal_lm(self.ref)[1]

    def generate(self, prompt_or_messages: Any, max_new_tokens: int = 64, **_: Any) -> str:
        import torch

        from core.models import load_causal_lm

        model, tokenizer = load_causal_lm(self.ref)
        if isinstance(prompt_or_messages, str):
            text = prompt_or_messages
        else:
            text = tokenizer.apply_chat_template(
                prompt_or_messages, tokenize=False, add_generation_prompt=True
            )
        enc = tokenizer(text, return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            out = model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                repetition_penalty=1.15,
                pad_token_id=tokenizer.pad_token_id,
            )
        return tokenizer.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)


def generator_id(ref: str) -> str:
    """What identifies the generator in a dataset version id."""
    from core.settings import get_settings

    base_url = get_settings().LLM_BASE_URL
    return f"{base_url.rstrip('/')}|{ref}" if base_url else ref


class GenerationClient:
    """Greedy `generate` over the configured LLM, with a persistent per-prompt cache."""

    def __init__(self, ref: str, cache_dir: Path | None = None) -> None:
        self.ref = ref
        self.model_id = generator_id(ref)
        self._llm: Any = None
        self._lock = threading.Lock()
        self._cache_path = (cache_dir / "generations.jsonl") if cache_dir else None
        self._cache: dict[str, str] = {}
        if self._cache_path and self._cache_path.exists():
            for line in self._cache_path.read_text("utf-8").splitlines():
                try:
                    item = json.loads(line)
                    self._cache[item["key"]] = item["text"]
                except (ValueError, KeyError):
                    continue
        self.calls = 0

    def _get_llm(self) -> Any:
        if self._llm is None:
            try:
                from core.llm import get_llm

                self._llm = get_llm(self.ref)
            except ImportError:
                log.info("core.llm not available; generating with transformers directly")
                self._llm = _LocalGreedyLLM(self.ref)
        return self._llm

    def _key(self, messages: Any, max_new_tokens: int, prefill: str) -> str:
        blob = json.dumps([self.model_id, messages, max_new_tokens, prefill], sort_keys=True)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def _render(self, llm: Any, messages: Any, prefill: str) -> Any:
        """Messages, or — for in-process models — the rendered prompt with the assistant's
        answer already begun (`prefill`), which keeps a small model on task."""
        from core.settings import get_settings

        tokenizer = getattr(llm, "tokenizer", None)
        if not prefill or get_settings().LLM_BASE_URL or tokenizer is None:
            return messages
        from core.prompts import render_prompt

        return render_prompt(tokenizer, messages) + prefill

    def generate(self, messages: Any, max_new_tokens: int, prefill: str = "") -> str:
        key = self._key(messages, max_new_tokens, prefill)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        llm = self._get_llm()
        prompt = self._render(llm, messages, prefill)
        kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens}
        try:
            params = inspect.signature(llm.generate).parameters
        except (TypeError, ValueError):
            params = {}
        # Greedy decoding wherever the backend lets us say so.
        for name, value in (("temperature", 0.0), ("do_sample", False)):
            if name in params:
                kwargs[name] = value
        if prefill and "stop" in params:
            kwargs["stop"] = ["\n"]
        try:
            text = llm.generate(prompt, **kwargs)
        except Exception as exc:  # a flaky endpoint must not kill the build: fall back
            log.warning("generator %s failed (%s); using the deterministic fallback", self.ref, exc)
            return ""
        text = (text or "").strip()
        if isinstance(prompt, str) and prefill:
            text = f"{prefill} {text}".strip()
        self.calls += 1
        with self._lock:
            self._cache[key] = text
            if self._cache_path:
                self._cache_path.parent.mkdir(parents=True, exist_ok=True)
                with self._cache_path.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps({"key": key, "text": text}) + "\n")
        return text


# --- instructions ----------------------------------------------------------------------


def words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z0-9']+", text)


def first_sentence(text: str, max_words: int = 16) -> str:
    body = "\n".join(
        line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    )
    body = re.sub(r"[*_`>\[\]]", "", body)
    match = re.search(r"(.+?[.!?])(\s|$)", body.strip().replace("\n", " "))
    sentence = (match.group(1) if match else body.strip()).strip()
    tokens = sentence.split()
    if len(tokens) > max_words:
        sentence = " ".join(tokens[:max_words])
    return sentence.rstrip(".!?:;, ")


def _lower_first(text: str) -> str:
    head = text.split(" ", 1)[0]
    if len(head) > 1 and head[0].isupper() and head[1:].islower():
        return text[0].lower() + text[1:]
    return text


def code_language(path: str) -> str:
    return CODE_LANGUAGES.get(Path(path).suffix.lower(), "source")


def starter_for(category: str, platform: str) -> str:
    if category == "posts":
        return "Write a LinkedIn post about" if platform == "linkedin" else "Write a post about"
    if category == "repositories":
        return "Write the code for"
    return "Write an article section explaining"


def template_instruction(passage: dict[str, Any], doc: dict[str, Any]) -> str:
    """Deterministic instruction from heading and title, else title / first sentence, per
    category (the default: `--llm-instructions` has the generator write them instead)."""
    category = doc.get("category", "articles")
    title = (doc.get("title") or "").strip()
    if category == "repositories":
        path = passage.get("path") or title or "this file"
        lang = code_language(path)
        repo = f" in the {title} repository" if title and title != path else ""
        symbol = passage.get("symbol")
        if symbol:
            return f"Write the {lang} code in `{path}`{repo} that defines `{symbol}`."
        return f"Write the {lang} code for `{path}`{repo}."
    gist = _lower_first(LEAD_INS.sub("", first_sentence(passage["text"])))
    heading = (passage.get("heading") or "").strip()
    if category == "posts":
        starter = starter_for(category, doc.get("platform", ""))
        topic = title if title and not passage["text"].startswith(title[:30]) else gist
        return f"{starter} {_lower_first(topic)}."
    if heading and title and heading != title:
        # Not the passage's opening sentence as well: trained on requests that hold it, the
        # twin learnt to restate the request (Alyssa Coghlan's held-out requests: Delta to
        # her style 0.264 / 0.250 with it, 0.245 / 0.239 without; degenerate 12% → 0%).
        return f'Write the "{heading}" section of an article on "{title}".'
    topic = heading or title
    if topic and gist:
        return f'Write an article section on "{topic}", explaining {gist}.'
    return f"Write an article section explaining {gist or topic}."


def clean_instruction(raw: str) -> str:
    line = next((ln.strip() for ln in raw.strip().splitlines() if ln.strip()), "")
    line = re.sub(r"^(request|instruction|answer)\s*:\s*", "", line, flags=re.IGNORECASE)
    return line.strip().strip('"').strip("'").strip()


def check_instruction(text: str, passage_text: str) -> str | None:
    """None when the instruction is usable, else why not."""
    tokens = words(text)
    if not 5 <= len(tokens) <= 45:
        return "length"
    if sum(ch.isascii() for ch in text) < 0.97 * len(text):
        return "non-ascii"
    if REFUSAL_PATTERNS.search(text):
        return "refusal"
    if META_PATTERNS.search(text):
        return "meta"
    first = tokens[0].lower()
    if first not in IMPERATIVES and not text.rstrip().endswith("?"):
        return "not-a-request"
    lowered = [t.lower() for t in tokens]
    if any(lowered[i] == lowered[i + 1] == lowered[i + 2] for i in range(len(lowered) - 2)):
        return "repetition"
    rest = text
    for verb_phrase in STARTERS:
        if text.lower().startswith(verb_phrase.lower()):
            rest = text[len(verb_phrase) :].strip()
            break
    if not rest[:1].isalnum() or "..." in text or len(words(rest)) < 3:
        return "no-topic"
    content = {t.lower() for t in words(rest) if len(t) >= 4 and t.lower() not in STOPWORDS}
    passage_words = {t.lower() for t in words(passage_text)}
    if not content & passage_words:
        return "off-topic"
    # A request that copies a long stretch of the answer leaks the answer.
    passage_norm = " ".join(t.lower() for t in words(passage_text))
    for i in range(0, max(0, len(lowered) - 9)):
        if " ".join(lowered[i : i + 10]) in passage_norm:
            return "copies-answer"
    return None


def instruction_messages(passage: dict[str, Any], doc: dict[str, Any]) -> list[dict[str, str]]:
    category = doc.get("category", "articles")
    kind = {"posts": "social media post", "repositories": "source file"}.get(
        category, "article section"
    )
    excerpt = " ".join(passage["text"].split()[:220])
    starter = starter_for(category, doc.get("platform", ""))
    return [
        {"role": "system", "content": INSTRUCTION_SYSTEM},
        {
            "role": "user",
            "content": (
                f"Title: {doc.get('title', '')}\n{kind.capitalize()}:\n{excerpt}\n\n"
                f"Write the one-sentence request that asks for this {kind}. "
                f'Begin with "{starter}".'
            ),
        },
    ]


def make_instruction(
    client: GenerationClient | None,
    passage: dict[str, Any],
    doc: dict[str, Any],
    max_new_tokens: int = 40,
) -> tuple[str, str]:
    """(instruction, source) where source is `llm` or `template:<why the LLM's was rejected>`."""
    if client is None or doc.get("category") == "repositories":
        # Code requests are best named by path/symbol; the small model only blurs them.
        return template_instruction(passage, doc), "template"
    starter = starter_for(doc.get("category", "articles"), doc.get("platform", ""))
    raw = client.generate(instruction_messages(passage, doc), max_new_tokens, prefill=starter)
    text = clean_instruction(raw)
    if text and not words(text)[:1] == words(starter)[:1] and text[:1].islower():
        text = f"{starter} {text}"  # the model continued the starter instead of repeating it
    problem = check_instruction(text, passage["text"]) if text else "empty"
    if problem is None:
        return text.rstrip() if text.rstrip()[-1:] in ".?!" else text.rstrip() + ".", "llm"
    return template_instruction(passage, doc), f"template:{problem}"


# --- generic answers (preference "rejected") ---------------------------------------------


def generic_answer(client: GenerationClient | None, instruction: str, max_new_tokens: int) -> str:
    """What the base model writes for the request with no persona: the `rejected` side."""
    text = ""
    if client is not None:
        text = client.generate([{"role": "user", "content": instruction}], max_new_tokens)
    text = text.strip()
    if len(words(text)) < 5 or REFUSAL_PATTERNS.search(text[:80] or ""):
        # Deterministic generic filler: still a fair "not the author's voice" negative.
        topic = re.sub(r"^(write|draft|create|compose)\s+", "", instruction, flags=re.I)
        text = (
            f"Sure! Here is {topic.rstrip('.')}. This is an important topic that many people "
            "are interested in. There are many factors to consider, and it is always a good "
            "idea to do your own research. In conclusion, it is a very interesting subject."
        )
    return text
