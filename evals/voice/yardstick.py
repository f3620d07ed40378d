"""A voice yardstick that copying cannot pass.

The character n-gram classifier of `evals.answer_quality` is trained on the documents a
fine-tuned twin memorised, so a twin that recites them "is" the author. This scores each
answer on measures a recital fails, always beside the same figure for GOLD — the author's
own held-out writing — so every number has its natural level next to it:

- copy (`core.verbatim`): the longest verbatim word span the answer shares with the
  author's training documents, and the share of its word 8-grams found in them;
- style (`evals.voice.stylometry`): top-1 attribution by a classifier on topic-free
  features (function words, punctuation, lengths, formatting, person), beside the char
  n-gram one; and Burrows' Delta of each author's answer profile to held-out profiles;
- grounding (`evals.voice.invented_specifics`): specifics (identifiers, numbers, names) found in
  neither the request, the retrieved context nor the author's training corpus;
- chrome: the share of lines that are the corpus' page chrome (`ingest.features.boilerplate`)
  and the share of words in prose;
- language: another language, or letters of another script, than the author writes in;
- mangled words (`evals.voice.mangled_words`): words glued to the next ("arecurrently") or
  broken ("metho d"), the marks of a decoder routing around its copy penalty.

Gold: each held-out document gives ONE gold answer, its middle ~1000-character passage (as
many gold answers as the benchmark asks questions); the other passages of the held-out
documents make the author's held-out style profile, the reference of `delta_*` for the
answers and for gold alike.

Summary keys (`score_answers(...)["summary"]`), for one author or several:
- `n`; `copy_longest_span_median`, `copy_longest_span_max` (words),
  `copy_8gram_share_median`: always.
- `style_attribution`, `char_attribution`: share of answers attributed to their own author
  (chance = 1/authors); None with a single author — there is nobody to confuse them with.
- `delta_own`: mean over authors of Delta(author's answer profile, their held-out profile);
  always (against the training profile when an author has no held-out documents).
- `delta_training`: the same Delta for random samples of the author's own TRAINING passages
  of the same size as their answers — the spread of real writing; the single-author
  verdict is `delta_own` against this (and against gold's `delta_own`).
- `delta_other`: mean Delta of an author's answer profile to the OTHER authors' held-out
  profiles, and `delta_nearest_share`: share of authors whose answer profile is nearest to
  their own held-out profile; None with fewer than two authors with held-out documents.
- `invented_share`: share of answers with ≥ 1 invented specific (listed per answer), and
  `invented_per_100_words_mean`: how many per 100 words (new writing names new things too:
  compare with gold).
- `chrome_line_share_mean`, `chrome_answer_share` (share of answers ≥ 30 % chrome lines),
  `prose_word_share_mean`, `wrong_language_share`.
- `mangled_per_100_words_mean`, `mangled_share` (answers with any).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.verbatim import CopyIndex
from evals.answer_quality import (
    LATIN_LANGUAGES,
    MAX_CHROME_LINES,
    AuthorshipClassifier,
    chrome_line_share,
    language_of,
    other_scripts,
    passages,
    prose_word_share,
)
from evals.voice.invented_specifics import Sources, invented_specifics
from evals.voice.mangled_words import mangled_words
from evals.voice.stylometry import StyleSpace, delta

PASSAGE_CHARS = 1000
# Enough passages to estimate an author's style; more only costs time on big corpora.
MAX_TRAINING_PASSAGES = 300
SPAN_PREVIEW_CHARS = 200


@dataclass
class AnswerRecord:
    author: str
    answer: str
    request: str = ""
    context: str = ""


@dataclass
class _Author:
    copy: CopyIndex
    corpus: Sources
    chrome: Callable[[str], bool] | None
    language: str
    reference: np.ndarray  # held-out style profile (mean z), or the training one


def _spread(items: list[str], limit: int) -> list[str]:
    """At most `limit` items, evenly spaced (every document keeps a say)."""
    if len(items) <= limit:
        return items
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


def _median(values: Sequence[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def _mean(values: Sequence[float]) -> float | None:
    return float(statistics.fmean(values)) if values else None


def _share(flags: Sequence[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def _fit_chrome(documents: Sequence[str]) -> Callable[[str], bool]:
    from ingest.features.boilerplate import CorpusChrome

    return CorpusChrome.fit(documents).is_chrome


class VoiceYardstick:
    """Fit once per corpus split; score any number of answer sets and gold beside them."""

    def __init__(
        self,
        authors: dict[str, _Author],
        style: StyleSpace,
        char_classifier: AuthorshipClassifier | None,
        gold: list[AnswerRecord],
    ) -> None:
        self.authors = authors
        self.style = style
        self.char_classifier = char_classifier
        self.gold = gold

    def chrome_of(self, author: str) -> Callable[[str], bool] | None:
        """The line test for `author`'s page chrome (for `degenerate_reasons(chrome=...)`)."""
        fitted = self.authors.get(author)
        return fitted.chrome if fitted else None

    @classmethod
    def fit(
        cls,
        training: Mapping[str, Sequence[str]],
        held_out: Mapping[str, Sequence[str]] | None = None,
        *,
        chrome: Callable[[Sequence[str]], Callable[[str], bool]] | None = None,
        char_classifier: AuthorshipClassifier | None = None,
    ) -> VoiceYardstick:
        """`training`: author → that author's training documents (whole texts);
        `held_out`: author → held-out documents (gold). `chrome` builds a line test from an
        author's documents (default: `CorpusChrome.fit(...).is_chrome`); `char_classifier`:
        a fitted one to reuse (default: fitted here on the training passages)."""
        fit_chrome = chrome or _fit_chrome
        train_passages = {
            author: _spread(
                [p for doc in docs for p in passages(doc, PASSAGE_CHARS)], MAX_TRAINING_PASSAGES
            )
            for author, docs in training.items()
        }
        style = StyleSpace(train_passages)
        if char_classifier is None and len(style.authors) >= 2:
            texts = [p for a in style.authors for p in train_passages[a]]
            labels = [a for a in style.authors for _ in train_passages[a]]
            char_classifier = AuthorshipClassifier().fit(texts, labels)
        gold: list[AnswerRecord] = []
        authors: dict[str, _Author] = {}
        for author in style.authors:
            reference_texts: list[str] = []
            for doc in (held_out or {}).get(author, ()):
                parts = passages(doc, PASSAGE_CHARS)
                if not parts:
                    continue
                middle = len(parts) // 2
                gold.append(AnswerRecord(author, parts[middle]))
                reference_texts += parts[:middle] + parts[middle + 1 :]
            if not reference_texts:  # every held-out document was a single passage
                reference_texts = [r.answer for r in gold if r.author == author]
            reference = (
                style.z(reference_texts).mean(axis=0)
                if reference_texts
                else style.training_z[author].mean(axis=0)
            )
            sample = " ".join(train_passages[author][:5])
            language = language_of(sample) if sample else "en"
            authors[author] = _Author(
                copy=CopyIndex(training[author]),
                corpus=Sources.of(training[author]),
                chrome=fit_chrome(training[author]),
                language="en" if language == "unknown" else language,
                reference=reference,
            )
        return cls(authors, style, char_classifier if len(style.authors) >= 2 else None, gold)

    @property
    def has_held_out(self) -> bool:
        return bool(self.gold)

    def score_gold(self) -> dict[str, Any]:
        """The yardstick on the held-out passages themselves (one per held-out document)."""
        return self.score_answers(self.gold)

    def score_answers(self, records: Sequence[AnswerRecord]) -> dict[str, Any]:
        """{"per_answer": [...], "summary": {...}}, per_answer in the order of `records`."""
        unknown = sorted({r.author for r in records} - set(self.authors))
        if unknown:
            raise ValueError(f"authors the yardstick was not fitted on: {unknown}")
        texts = [r.answer or " " for r in records]
        z = self.style.z(texts) if records else np.zeros((0, 0))
        style_pred = self.style.predict(z)
        char_pred = self.char_classifier.predict(texts) if self.char_classifier and texts else None
        per_answer = []
        for i, record in enumerate(records):
            row = self._score_one(record, z[i])
            if style_pred is not None:
                row["style_author"] = style_pred[i]
            if char_pred is not None:
                row["char_author"] = char_pred[i]
            per_answer.append(row)
        return {"per_answer": per_answer, "summary": self._summarize(records, per_answer, z)}

    def _score_one(self, record: AnswerRecord, z: np.ndarray) -> dict[str, Any]:
        author = self.authors[record.author]
        answer = record.answer
        span, span_text = author.copy.longest_span(answer)
        given = Sources.of([record.request, record.context])
        invented = invented_specifics(answer, given, author.corpus)
        mangled = mangled_words(answer, given, author.corpus)
        language = language_of(answer) if answer.strip() else "unknown"
        scripts = other_scripts(answer) if author.language in LATIN_LANGUAGES else []
        return {
            "author": record.author,
            "copy_longest_span": span,
            "copy_span": span_text[:SPAN_PREVIEW_CHARS],
            "copy_8gram_share": author.copy.ngram_share(answer),
            "delta_own": delta(z, author.reference),
            "invented": invented,
            "invented_per_100_words": 100 * len(invented) / max(len(answer.split()), 1),
            "mangled": mangled,
            "mangled_per_100_words": 100 * len(mangled) / max(len(answer.split()), 1),
            "chrome_line_share": (
                chrome_line_share(answer, author.chrome) if author.chrome else None
            ),
            "prose_word_share": prose_word_share(answer, author.chrome),
            "language": language,
            "other_scripts": scripts,
            "wrong_language": bool(scripts) or language not in (author.language, "unknown"),
        }

    def _summarize(
        self, records: Sequence[AnswerRecord], rows: list[dict[str, Any]], z: np.ndarray
    ) -> dict[str, Any]:
        several = len(self.style.authors) >= 2
        spans = [r["copy_longest_span"] for r in rows]
        chrome = [r["chrome_line_share"] for r in rows if r["chrome_line_share"] is not None]
        summary: dict[str, Any] = {
            "n": len(rows),
            "authors": sorted({r.author for r in records}),
            "copy_longest_span_median": _median(spans),
            "copy_longest_span_max": max(spans) if spans else None,
            "copy_8gram_share_median": _median([r["copy_8gram_share"] for r in rows]),
            "style_attribution": (
                _share([r["style_author"] == r["author"] for r in rows]) if several else None
            ),
            "char_attribution": (
                _share([r["char_author"] == r["author"] for r in rows]) if several else None
            ),
            **self._deltas(records, z),
            "invented_share": _share([bool(r["invented"]) for r in rows]),
            "invented_per_100_words_mean": _mean([r["invented_per_100_words"] for r in rows]),
            "chrome_line_share_mean": _mean(chrome),
            "chrome_answer_share": _share([c >= MAX_CHROME_LINES for c in chrome]),
            "prose_word_share_mean": _mean([r["prose_word_share"] for r in rows]),
            "wrong_language_share": _share([r["wrong_language"] for r in rows]),
            "mangled_share": _share([bool(r["mangled"]) for r in rows]),
            "mangled_per_100_words_mean": _mean([r["mangled_per_100_words"] for r in rows]),
        }
        return summary

    def _deltas(self, records: Sequence[AnswerRecord], z: np.ndarray) -> dict[str, Any]:
        """Profile distances: each author's answers (mean z) to held-out profiles."""
        by_author: dict[str, list[int]] = {}
        for i, record in enumerate(records):
            by_author.setdefault(record.author, []).append(i)
        held = sorted({r.author for r in self.gold})
        own, other, nearest, training = [], [], [], []
        for author, rows in sorted(by_author.items()):
            profile = z[rows].mean(axis=0)
            reference = self.authors[author].reference
            own.append(delta(profile, reference))
            spread = self.style.training_spread(author, reference, len(rows))
            if spread is not None:
                training.append(spread)
            others = {b: delta(profile, self.authors[b].reference) for b in held if b != author}
            if author in held and others:
                other.append(statistics.fmean(others.values()))
                nearest.append(own[-1] < min(others.values()))
        return {
            "delta_own": _mean(own),
            "delta_training": _mean(training),
            "delta_other": _mean(other),
            "delta_nearest_share": _share(nearest),
        }


# (column, summary key, format) of `summary_table`.
TABLE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("n", "n", "{:d}"),
    ("span med", "copy_longest_span_median", "{:.0f}"),
    ("span max", "copy_longest_span_max", "{:d}"),
    ("8-gram copy", "copy_8gram_share_median", "{:.0%}"),
    ("style attrib", "style_attribution", "{:.0%}"),
    ("char attrib", "char_attribution", "{:.0%}"),
    ("Δ own", "delta_own", "{:.3f}"),
    ("Δ other", "delta_other", "{:.3f}"),
    ("Δ nearest", "delta_nearest_share", "{:.0%}"),
    ("Δ train", "delta_training", "{:.3f}"),
    ("invented", "invented_share", "{:.0%}"),
    ("inv/100w", "invented_per_100_words_mean", "{:.1f}"),
    ("chrome lines", "chrome_line_share_mean", "{:.0%}"),
    ("chrome ans", "chrome_answer_share", "{:.0%}"),
    ("prose", "prose_word_share_mean", "{:.0%}"),
    ("wrong lang", "wrong_language_share", "{:.0%}"),
    ("mangled/100w", "mangled_per_100_words_mean", "{:.2f}"),
)


def summary_table(summaries: Mapping[str, Mapping[str, Any]], default: str = "") -> str:
    """A Markdown table of summaries (name → summary, "gold" first when present); the
    `default` row is marked, a figure that does not apply is blank."""
    head = ["variant", *(c for c, _, _ in TABLE_COLUMNS)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    names = sorted(summaries, key=lambda name: name != "gold")
    for name in names:
        summary = summaries[name]
        label = "gold (held-out passages)" if name == "gold" else name
        label += " **(default)**" if name == default else ""
        cells = [
            "" if summary.get(key) is None else fmt.format(summary[key])
            for _, key, fmt in TABLE_COLUMNS
        ]
        lines.append("| " + " | ".join([label, *cells]) + " |")
    return "\n".join(lines)
