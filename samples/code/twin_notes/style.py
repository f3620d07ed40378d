"""Quick style statistics for comparing a draft with my own writing."""

import re
from statistics import mean

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def sentence_lengths(text: str) -> list[int]:
    """Words per sentence."""
    return [len(s.split()) for s in _SENTENCE_END.split(text.strip()) if s.strip()]


class StyleProfile:
    """A few numbers that describe how a text reads."""

    def __init__(self, text: str) -> None:
        lengths = sentence_lengths(text)
        self.mean_sentence_words = mean(lengths) if lengths else 0.0
        self.question_rate = text.count("?") / max(len(lengths), 1)
        paragraphs = [p for p in text.split("\n\n") if p.strip()]
        self.mean_paragraph_sentences = len(lengths) / max(len(paragraphs), 1)

    def distance(self, other: "StyleProfile") -> float:
        """Relative difference, 0 means the same profile."""
        pairs = [
            (self.mean_sentence_words, other.mean_sentence_words),
            (self.question_rate, other.question_rate),
            (self.mean_paragraph_sentences, other.mean_paragraph_sentences),
        ]
        return sum(abs(a - b) / max(abs(a), abs(b), 1e-9) for a, b in pairs) / len(pairs)
