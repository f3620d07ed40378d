"""Scoring of the twin's generated answers on real writing (benchmarks/twin_quality.py).

- `degenerate_reasons(text, prompt=..., chrome=...)`: why an answer is unusable — empty,
  too short, repetitive (distinct-2 below a floor), shouting, another language, letters of
  another script (a Chinese word in an English answer), chat-template leakage, an
  unfinished last sentence, an echo of the prompt's own scaffolding, mostly copied
  verbatim from the prompt, an assistant's refusal in its opening ("I'm sorry, but I can't
  assist with that."), or (given the author's `chrome` line test) mostly page chrome
  recited from the corpus — bylines, share buttons — instead of prose. An answer with no
  reason is usable.
- `topicality(...)`: embedding similarity of an answer to the document it was asked for,
  minus its mean similarity to the other documents (0 = no more about its topic than
  about anything else).
- `AuthorshipClassifier`: character n-gram TF-IDF + logistic regression, trained on the
  authors' other documents; attributes a text to one of them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evals.style import logical_lines
from evals.style import words as style_words

MIN_WORDS = 25
MIN_DISTINCT2 = 0.5
# Chat-template control text that must never reach a reader (ChatML, Gemma, Llama, Mistral).
TEMPLATE_LEAK = re.compile(
    r"<\|[a-z_]+\|>|<start_of_turn>|<end_of_turn>|\[/?INST\]|</?s>|"
    r"^\s*(?:assistant|user|system)\s*:?\s*$",
    re.IGNORECASE | re.MULTILINE,
)
# What may end a finished answer: sentence punctuation, a closing quote/bracket after it,
# or the end of a fenced code block / list item made of code.
FINISHED_END = re.compile(r"(?:[.!?:;…]['\"”’)\]*_`]*|```|\))\s*\Z")
_WORD = re.compile(r"[A-Za-z0-9_']+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def distinct_n(tokens: Sequence[str], n: int = 2) -> float:
    """Unique n-grams / n-grams (1.0 for texts too short to repeat)."""
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 1.0


def _is_shouting(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    if len(letters) >= 40 and sum(c.isupper() for c in letters) / len(letters) > 0.5:
        return True
    return bool(re.search(r"[!?]{3,}", text))


def language_of(text: str) -> str:
    """The language langdetect reads in the prose (code and URLs left out); "en" for texts
    too short to tell, "unknown" when it cannot decide."""
    from langdetect import DetectorFactory, LangDetectException, detect

    DetectorFactory.seed = 0  # langdetect is random unless seeded
    prose = re.sub(r"```.*?```|`[^`]*`|https?://\S+", " ", text, flags=re.S)
    try:
        return detect(prose) if len(prose.split()) >= 8 else "en"
    except LangDetectException:
        return "unknown"


# Languages written in Latin letters: any other script's letters in such an answer are a
# model drifting into another language (langdetect misses one word in a paragraph).
LATIN_LANGUAGES = frozenset(
    "en fr de es it pt nl sv da no fi pl cs sk sl hr ro hu tr id ms tl sw ca et lv lt af sq "
    "so vi cy ga eu gl is".split()
)
# Greek letters are maths in English technical prose (λ, π, Σ), not another language.
_ALLOWED_SCRIPTS = frozenset({"LATIN", "GREEK"})
# CJK punctuation and full-width forms are not letters but betray the same switch.
_CJK_MARKS = re.compile(r"[\u3000-\u303f\uff00-\uffef]")


def other_scripts(text: str) -> list[str]:
    """Scripts other than Latin (and Greek) whose letters appear in the text, e.g. ["CJK"]."""
    found = set()
    for char in text:
        if char.isascii() or not (char.isalpha() or _CJK_MARKS.match(char)):
            continue
        name = unicodedata.name(char, "")
        script = name.split(" ", 1)[0] if name else "UNKNOWN"
        if script not in _ALLOWED_SCRIPTS:
            found.add(script)
    return sorted(found)


MAX_CHROME_LINES = 0.3
MIN_PROSE_WORDS = 0.5


def chrome_line_share(text: str, chrome: Callable[[str], bool]) -> float:
    """Share of the text's non-empty lines that `chrome` calls page chrome."""
    lines = [line for line in text.splitlines() if line.strip()]
    return sum(bool(chrome(line)) for line in lines) / len(lines) if lines else 0.0


def prose_word_share(
    text: str, chrome: Callable[[str], bool] | None = None, *, outside_code: bool = False
) -> float:
    """Share of the text's words that stand in prose: sentences (hard-wrapped ones joined),
    not headings, code, tables, bare link or tag lists, nor lines `chrome` rejects. With
    `outside_code`, code lines count on neither side (1.0 for an answer that is all code)."""
    lines = logical_lines(text)
    if outside_code:
        lines = [line for line in lines if line.kind != "code"]
        if not lines:
            return 1.0
    total = sum(len(style_words(physical)) for line in lines for physical in line.lines)
    if not total:
        return 0.0
    prose = 0
    for line in lines:
        if line.is_prose:
            prose += sum(
                len(style_words(physical))
                for physical in line.lines
                if chrome is None or not chrome(physical)
            )
    return prose / total


# The twin's own prompt scaffolding (core/prompts.py, old and current formats) in an answer.
PROMPT_ECHO = re.compile(
    r"^\s*\[\d+\]\s|^\s*Request:|Excerpts from the author's earlier writing|"
    r"Context from the author's own writing",
    re.MULTILINE,
)
COPY_NGRAM = 8
MAX_COPIED_SHARE = 0.5
# An assistant declining, in an answer's opening: never the author's words. The untuned
# Qwen 0.5B answered 4 of 24 held-out requests for a section of Alyssa Coghlan's PEPs with
# "I'm sorry, but I can't assist with that." (once: "…on political topics"), and went on
# with filler once a minimum length held back its end (core/llm/min_words.py).
REFUSAL = re.compile(
    r"\b(?:(?:i'm|i am) sorry,? but|i apologi[sz]e,? but|sorry,? but i (?:can|am|'m)|"
    r"(?:i (?:can't|cannot|can not|won't)|(?:i'm|i am) unable to) "
    r"(?:assist|help (?:you )?with|fulfil|comply)|(?:i'm|i am) unable,? as an|"
    r"as an (?:ai|artificial intelligence)(?: language model| assistant)?,)",
    re.IGNORECASE,
)
REFUSAL_OPENING_CHARS = 300


def copied_share(text: str, source: str, n: int = COPY_NGRAM) -> float:
    """Share of the answer's word n-grams that appear verbatim in `source` (the prompt)."""
    answer, given = words(text), words(source)
    grams = {tuple(answer[i : i + n]) for i in range(len(answer) - n + 1)}
    if not grams:
        return 0.0
    source_grams = {tuple(given[i : i + n]) for i in range(len(given) - n + 1)}
    return len(grams & source_grams) / len(grams)


def degenerate_reasons(
    text: str,
    language: str = "en",
    prompt: str = "",
    chrome: Callable[[str], bool] | None = None,
) -> list[str]:
    """Every reason the answer is degenerate (empty list = usable). With `prompt` (the text
    the model was given), echoing it or copying most of it verbatim also counts. With
    `chrome` (a line test, `CorpusChrome(...).is_chrome` of the author's corpus), so does
    an answer whose lines are ≥ 30 % chrome or whose words outside code are < 50 % in
    prose."""
    stripped = text.strip()
    if not stripped:
        return ["empty"]
    reasons = []
    tokens = words(stripped)
    if len(tokens) < MIN_WORDS:
        reasons.append("short")
    if distinct_n(tokens, 2) < MIN_DISTINCT2:
        reasons.append("repetitive")
    if _is_shouting(stripped):
        reasons.append("shouting")
    if language and language_of(stripped) not in (language, "unknown"):
        reasons.append("other-language")
    if language in LATIN_LANGUAGES and other_scripts(stripped):
        reasons.append("other-script")
    if TEMPLATE_LEAK.search(stripped):
        reasons.append("template-leak")
    if PROMPT_ECHO.search(stripped):
        reasons.append("prompt-echo")
    if prompt and copied_share(stripped, prompt) > MAX_COPIED_SHARE:
        reasons.append("copied")
    if REFUSAL.search(stripped[:REFUSAL_OPENING_CHARS].replace("’", "'")):
        reasons.append("refusal")
    if chrome is not None and (
        chrome_line_share(stripped, chrome) >= MAX_CHROME_LINES
        # Code is the author's content (PEPs, tutorials), not a page's furniture.
        or prose_word_share(stripped, chrome, outside_code=True) < MIN_PROSE_WORDS
    ):
        reasons.append("chrome")
    if not FINISHED_END.search(stripped):
        reasons.append("unfinished")
    return reasons


def passages(text: str, size: int = 1000, limit: int | None = None) -> list[str]:
    """Consecutive paragraph groups of about `size` characters (no paragraph is split)."""
    out: list[str] = []
    current = ""
    for para in re.split(r"\n\s*\n", text):
        para = para.strip()
        if not para:
            continue
        if current and len(current) + len(para) > size:
            out.append(current)
            current = ""
        current = f"{current}\n\n{para}".strip()
        if limit and len(out) >= limit:
            break
    if current and (not limit or len(out) < limit):
        out.append(current)
    return out


def normalize(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def topicality(answer: np.ndarray, documents: np.ndarray, own: int) -> float:
    """cos(answer, own document) − mean cos(answer, every other document)."""
    sims = normalize(documents) @ normalize(answer)
    others = np.delete(sims, own)
    return float(sims[own] - (others.mean() if others.size else 0.0))


@dataclass
class AuthorshipClassifier:
    """Character 2–4-gram TF-IDF + logistic regression (a standard authorship baseline)."""

    ngram_range: tuple[int, int] = (2, 4)
    C: float = 10.0
    _pipeline: Any = field(default=None, init=False, repr=False)

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> AuthorshipClassifier:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        if len(set(labels)) < 2:
            raise ValueError("attribution needs texts of at least two authors")
        self._pipeline = make_pipeline(
            TfidfVectorizer(
                analyzer="char_wb", ngram_range=self.ngram_range, sublinear_tf=True, min_df=2
            ),
            LogisticRegression(C=self.C, max_iter=2000),
        )
        self._pipeline.fit(list(texts), list(labels))
        return self

    def predict(self, texts: Sequence[str]) -> list[str]:
        if self._pipeline is None:
            raise RuntimeError("fit the classifier first")
        return [str(label) for label in self._pipeline.predict(list(texts))]

    def probability(self, texts: Sequence[str], authors: Sequence[str]) -> list[float]:
        """The probability the classifier gives each text's true author: a graded view of
        attribution that moves before the top-1 label does (less noisy on few answers)."""
        if self._pipeline is None:
            raise RuntimeError("fit the classifier first")
        classes = self.authors
        unknown = sorted(set(authors) - set(classes))
        if unknown:
            raise ValueError(f"authors the classifier was not trained on: {unknown}")
        probs = self._pipeline.predict_proba(list(texts))
        return [float(row[classes.index(a)]) for row, a in zip(probs, authors, strict=True)]

    @property
    def authors(self) -> list[str]:
        return [str(c) for c in self._pipeline.classes_] if self._pipeline is not None else []
