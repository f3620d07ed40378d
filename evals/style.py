"""Style statistics of a body of text, and a distance between two style profiles.

Pure Python (no model): used to compare generated samples with the author's own writing.
Rates are per 100 words (punctuation, emoji) or per line (headings, list items), so texts
of different lengths compare. The type-token ratio is the moving-average TTR over 50-word
windows (plain TTR falls with text length, which would reward short samples).
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

# Closed-class English words whose relative frequencies are a classic authorship signal.
FUNCTION_WORDS = (
    "a an the and but or nor so yet for of in on at by to from with without about into over "
    "under between through after before during i you he she it we they me him her us them my "
    "your his its our their this that these those is are was were be been being have has had "
    "do does did not no can could will would should may might must just very really also "
    "because if then than when while which who what how there here"
).split()
_FUNCTION_INDEX = {w: i for i, w in enumerate(FUNCTION_WORDS)}

_WORD_RE = re.compile(r"[A-Za-z][A-Za-z'’-]*|\d+(?:[.,]\d+)*")
_SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?])\s+|\n{2,}")
_PUNCTUATION = {
    "comma": ",",
    "semicolon": ";",
    "colon": ":",
    "exclamation": "!",
    "question": "?",
    "dash": "—",
    "parenthesis": "(",
    "quote": '"',
}
_EMOJI_RE = re.compile(
    "[\U0001f300-\U0001faff\U00002600-\U000027bf\U0001f1e6-\U0001f1ff\U00002b50\U00002705]"
)
_HEADING_RE = re.compile(r"^\s{0,3}#{1,6}\s+\S")
_LIST_RE = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s+\S")
MATTR_WINDOW = 50

# Scalar features compared by `style_distance` (relative difference, capped at 1 each).
SCALAR_FEATURES = (
    "sentence_length_mean",
    "sentence_length_std",
    "word_length_mean",
    "type_token_ratio",
    "punctuation_per_100_words",
    "emoji_per_100_words",
    "heading_rate",
    "list_rate",
)


def words(text: str) -> list[str]:
    return _WORD_RE.findall(text)


def sentences(text: str) -> list[str]:
    parts = (p.strip() for p in _SENTENCE_SPLIT_RE.split(text))
    return [p for p in parts if words(p)]


def moving_average_ttr(tokens: Sequence[str], window: int = MATTR_WINDOW) -> float:
    """Mean type/token ratio over sliding windows (plain TTR when shorter than a window)."""
    if not tokens:
        return 0.0
    if len(tokens) <= window:
        return len(set(tokens)) / len(tokens)
    counts = Counter(tokens[:window])
    total = len(counts) / window
    n = 1
    for i in range(window, len(tokens)):
        counts[tokens[i]] += 1
        old = tokens[i - window]
        counts[old] -= 1
        if not counts[old]:
            del counts[old]
        total += len(counts) / window
        n += 1
    return total / n


def function_word_profile(tokens: Sequence[str]) -> list[float]:
    """Relative frequency of each function word among all function-word occurrences."""
    counts = [0] * len(FUNCTION_WORDS)
    for token in tokens:
        idx = _FUNCTION_INDEX.get(token)
        if idx is not None:
            counts[idx] += 1
    total = sum(counts)
    return [c / total for c in counts] if total else [0.0] * len(counts)


def style_stats(texts: str | Iterable[str]) -> dict[str, float | int | list[float]]:
    """Style profile of one text or a corpus of texts (pooled)."""
    if isinstance(texts, str):
        texts = [texts]
    texts = [t for t in texts if t and t.strip()]
    sentence_lengths: list[int] = []
    all_words: list[str] = []
    punctuation: Counter[str] = Counter()
    emoji = headings = list_items = lines = 0
    for text in texts:
        sentence_lengths.extend(len(words(s)) for s in sentences(text))
        all_words.extend(words(text))
        for name, char in _PUNCTUATION.items():
            punctuation[name] += text.count(char)
        emoji += len(_EMOJI_RE.findall(text))
        for line in text.splitlines():
            if not line.strip():
                continue
            lines += 1
            headings += bool(_HEADING_RE.match(line))
            list_items += bool(_LIST_RE.match(line))
    lowered = [w.lower() for w in all_words]
    n_words = len(all_words)
    per_100 = 100.0 / n_words if n_words else 0.0
    stats: dict[str, float | int | list[float]] = {
        "n_texts": len(texts),
        "n_words": n_words,
        "n_sentences": len(sentence_lengths),
        "sentence_length_mean": statistics.fmean(sentence_lengths) if sentence_lengths else 0.0,
        "sentence_length_std": statistics.pstdev(sentence_lengths) if sentence_lengths else 0.0,
        "word_length_mean": statistics.fmean(len(w) for w in all_words) if all_words else 0.0,
        "type_token_ratio": moving_average_ttr(lowered),
        "punctuation_per_100_words": sum(punctuation.values()) * per_100,
        "emoji_per_100_words": emoji * per_100,
        "heading_rate": headings / lines if lines else 0.0,
        "list_rate": list_items / lines if lines else 0.0,
        "function_words": function_word_profile(lowered),
    }
    for name in _PUNCTUATION:
        stats[f"{name}_per_100_words"] = punctuation[name] * per_100
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in stats.items()}


def jensen_shannon(p: Sequence[float], q: Sequence[float]) -> float:
    """Jensen–Shannon divergence in bits (0 = same distribution, 1 = disjoint)."""
    if not any(p) or not any(q):
        return 1.0 if any(p) != any(q) else 0.0

    def kl(a: Sequence[float], m: Sequence[float]) -> float:
        return sum(x * math.log2(x / y) for x, y in zip(a, m, strict=True) if x > 0)

    m = [(x + y) / 2 for x, y in zip(p, q, strict=True)]
    return max(0.0, 0.5 * kl(p, m) + 0.5 * kl(q, m))


def style_distance(sample: dict, reference: dict) -> dict[str, float]:
    """How far a sample's style is from a reference profile (0 = identical).

    `features`: mean over SCALAR_FEATURES of |a-b| / max(|a|, |b|) (each in [0, 1]);
    `function_words`: Jensen–Shannon divergence of the function-word profiles;
    `overall`: the mean of the two.
    """
    diffs = []
    for key in SCALAR_FEATURES:
        a, b = float(sample.get(key, 0.0)), float(reference.get(key, 0.0))
        scale = max(abs(a), abs(b))
        diffs.append(abs(a - b) / scale if scale else 0.0)
    features = statistics.fmean(diffs)
    fw = jensen_shannon(sample.get("function_words", []), reference.get("function_words", []))
    return {
        "features": round(features, 4),
        "function_words": round(fw, 4),
        "overall": round((features + fw) / 2, 4),
    }


def summarize(stats: dict) -> dict:
    """The stats without the long function-word vector (for compact reports)."""
    return {k: v for k, v in stats.items() if k != "function_words"}


# --- Stylometric features that follow style rather than topic (evals/voice/stylometry.py).
# More closed-class words than FUNCTION_WORDS (kept as it is: `style_distance` reports
# compare with it): connectives, quantifiers and hedges are as author-specific as pronouns.
EXTRA_FUNCTION_WORDS = (
    "as up out off down why where whether although though however since until unless "
    "both each every all any some such only even still more most much many other same too "
    "again once own few one something nothing anything actually maybe perhaps quite rather "
    "thus therefore hence instead indeed simply often never always already"
).split()
STYLE_FUNCTION_WORDS = tuple(FUNCTION_WORDS) + tuple(
    w for w in EXTRA_FUNCTION_WORDS if w not in _FUNCTION_INDEX
)
FIRST_SINGULAR = frozenset("i me my mine myself i'm i've i'd i'll".split())
FIRST_PLURAL = frozenset("we us our ours ourselves we're we've we'd we'll let's".split())
SECOND_PERSON = frozenset("you your yours yourself yourselves you're you've you'd you'll".split())

# Public names for the line patterns above (evals/voice/stylometry.py counts with them).
HEADING_RE, LIST_RE, EMOJI_RE = _HEADING_RE, _LIST_RE, _EMOJI_RE
_FENCE_RE = re.compile(r"^\s*(```|~~~)")
_RST_UNDERLINE_RE = re.compile(r"^\s*([=\-~^*#+`'\".])\1{2,}\s*$")
_TABLE_RE = re.compile(r"^\s*\|")
_QUOTE_RE = re.compile(r"^\s*>")
_SENTENCE_END_RE = re.compile(r"[.!?…][\"'”’)\]*_]*(?:\s|$)")
# A sentence that introduces a code block or a list ends with a colon.
_INTRODUCES_RE = re.compile(r":\s*$")


@dataclass
class LogicalLine:
    """A paragraph line as written, before hard wrapping: a heading, a list item, a table
    row, a code line, or a run of wrapped prose lines (`lines` keeps the physical lines)."""

    kind: str  # "text" | "list" | "quote" | "heading" | "table" | "code" | "rule"
    lines: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        joiner = "\n" if self.kind == "code" else " "
        return joiner.join(line.strip() for line in self.lines)

    @property
    def is_prose(self) -> bool:
        """A sentence: enough words, mostly letters, with sentence punctuation."""
        if self.kind not in ("text", "list", "quote"):
            return False
        text = self.text
        letters = sum(c.isalpha() for c in text)
        visible = sum(not c.isspace() for c in text)
        return (
            len(words(text)) >= 4
            and letters >= 0.6 * max(visible, 1)
            and bool(_SENTENCE_END_RE.search(text) or _INTRODUCES_RE.search(text))
        )


def logical_lines(text: str) -> list[LogicalLine]:
    """The text's lines with hard-wrapped paragraphs joined back, so prose wrapped at 72
    columns (reStructuredText, e-mail) and unwrapped prose (model answers) compare."""
    out: list[LogicalLine] = []
    in_fence = False
    after_blank = True
    for line in text.splitlines():
        current = out[-1] if out else None
        if _FENCE_RE.match(line) or in_fence:
            if _FENCE_RE.match(line):
                in_fence = not in_fence
            out.append(LogicalLine("code", [line]))
        elif not line.strip():
            after_blank = True
            continue
        elif _RST_UNDERLINE_RE.match(line):
            if current and current.kind == "text" and len(current.lines) == 1 and not after_blank:
                current.kind = "heading"  # reStructuredText: a title over its underline
            else:
                out.append(LogicalLine("rule", [line]))
        elif _HEADING_RE.match(line):
            out.append(LogicalLine("heading", [line]))
        elif _LIST_RE.match(line):
            out.append(LogicalLine("list", [line]))
        elif _TABLE_RE.match(line):
            out.append(LogicalLine("table", [line]))
        elif _QUOTE_RE.match(line):
            out.append(LogicalLine("quote", [line]))
        elif (
            line.startswith(("    ", "\t"))
            and (after_blank or (current is not None and current.kind == "code"))
            and not (current is not None and current.kind == "list" and not after_blank)
        ):
            out.append(LogicalLine("code", [line]))
        elif current and not after_blank and current.kind in ("text", "list", "quote"):
            current.lines.append(line)  # a wrapped continuation of the same paragraph
        else:
            out.append(LogicalLine("text", [line]))
        after_blank = False
    return out
