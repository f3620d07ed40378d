"""Scoring of the twin's generated answers on real writing (benchmarks/twin_quality.py).

- `degenerate_reasons(text, prompt=...)`: why an answer is unusable — empty, too short,
  repetitive (distinct-2 below a floor), shouting, another language, chat-template
  leakage, an unfinished last sentence, an echo of the prompt's own scaffolding, or mostly
  copied verbatim from the prompt. An answer with no reason is usable.
- `topicality(...)`: embedding similarity of an answer to the document it was asked for,
  minus its mean similarity to the other documents (0 = no more about its topic than
  about anything else).
- `AuthorshipClassifier`: character n-gram TF-IDF + logistic regression, trained on the
  authors' other documents; attributes a text to one of them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

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


def _language(text: str) -> str:
    from langdetect import DetectorFactory, LangDetectException, detect

    DetectorFactory.seed = 0  # langdetect is random unless seeded
    prose = re.sub(r"```.*?```|`[^`]*`|https?://\S+", " ", text, flags=re.S)
    try:
        return detect(prose) if len(prose.split()) >= 8 else "en"
    except LangDetectException:
        return "unknown"


# The twin's own prompt scaffolding (core/prompts.py, old and current formats) in an answer.
PROMPT_ECHO = re.compile(
    r"^\s*\[\d+\]\s|^\s*Request:|Excerpts from the author's earlier writing|"
    r"Context from the author's own writing",
    re.MULTILINE,
)
COPY_NGRAM = 8
MAX_COPIED_SHARE = 0.5


def copied_share(text: str, source: str, n: int = COPY_NGRAM) -> float:
    """Share of the answer's word n-grams that appear verbatim in `source` (the prompt)."""
    answer, given = words(text), words(source)
    grams = {tuple(answer[i : i + n]) for i in range(len(answer) - n + 1)}
    if not grams:
        return 0.0
    source_grams = {tuple(given[i : i + n]) for i in range(len(given) - n + 1)}
    return len(grams & source_grams) / len(grams)


def degenerate_reasons(text: str, language: str = "en", prompt: str = "") -> list[str]:
    """Every reason the answer is degenerate (empty list = usable). With `prompt` (the text
    the model was given), echoing it or copying most of it verbatim also counts."""
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
    if language and _language(stripped) not in (language, "unknown"):
        reasons.append("other-language")
    if TEMPLATE_LEAK.search(stripped):
        reasons.append("template-leak")
    if PROMPT_ECHO.search(stripped):
        reasons.append("prompt-echo")
    if prompt and copied_share(stripped, prompt) > MAX_COPIED_SHARE:
        reasons.append("copied")
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
