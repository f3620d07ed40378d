"""The author's passages that become dataset answers, and the filters they pass.

Passages: paragraph-aligned pieces of an article (~60–400 words, split at headings and
paragraphs, long paragraphs at sentences), a whole post (long posts split the same way), or
a source file of a repository (big files split at top-level blocks). Filters: length,
English (ASCII share + langdetect), garbage (letter share, runs of one character), exact
dedupe (normalised hash) and near-dedupe (5-gram shingle Jaccard).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from core.domain import Category

FILE_HEADER = re.compile(r"^# file: (.+)$", re.MULTILINE)


@dataclass
class BuildParams:
    min_words: int = 60
    max_words: int = 400
    min_post_words: int = 20
    min_code_lines: int = 4
    max_code_chars: int = 4000
    test_fraction: float = 0.2
    near_dup_threshold: float = 0.8
    instruction_max_new_tokens: int = 40
    rejected_max_new_tokens: int = 128
    max_pairs: int = 0  # 0 = no cap; else the first N passages in document order
    # Excerpts of the author's other documents in each pair's prompt, as serving retrieves
    # them (finetune/grounding.py); 0 = pairs without context.
    context_passages: int = 0
    seed: int = 42



# --- passages ---------------------------------------------------------------------------


def _word_count(text: str) -> int:
    return len(text.split())


def _paragraphs(text: str) -> list[str]:
    """Blank-line separated blocks, keeping fenced code blocks whole."""
    out: list[str] = []
    buf: list[str] = []
    in_fence = False
    for block in re.split(r"\n\s*\n", text.strip()):
        buf.append(block)
        in_fence ^= block.count("```") % 2 == 1
        if not in_fence:
            out.append("\n\n".join(buf).strip())
            buf = []
    if buf:
        out.append("\n\n".join(buf).strip())
    return [p for p in out if p]


def _sentence_pieces(paragraph: str, max_words: int) -> list[str]:
    sentences = re.split(r"(?<=[.!?])\s+", paragraph)
    pieces, cur = [], []
    for sentence in sentences:
        if cur and _word_count(" ".join(cur + [sentence])) > max_words:
            pieces.append(" ".join(cur))
            cur = []
        cur.append(sentence)
    if cur:
        pieces.append(" ".join(cur))
    return pieces


def _is_heading(paragraph: str) -> bool:
    return paragraph.lstrip().startswith("#") and "\n" not in paragraph.strip()


def prose_passages(text: str, min_words: int, max_words: int) -> list[dict[str, Any]]:
    """Paragraph-aligned passages of min..max words; a heading starts a new passage."""
    passages: list[dict[str, Any]] = []
    cur: list[str] = []
    heading = ""
    cur_heading = ""

    def flush() -> None:
        nonlocal cur
        body = "\n\n".join(cur).strip()
        if body and any(not _is_heading(p) for p in cur):
            passages.append({"text": body, "heading": cur_heading})
        cur = []

    for para in _paragraphs(text):
        if _is_heading(para):
            if _word_count("\n\n".join(cur)) >= min_words:
                flush()
            heading = para.strip().lstrip("#").strip()
            if not cur or all(_is_heading(p) for p in cur):
                cur_heading = heading
            cur.append(para)
            continue
        if not cur:
            cur_heading = heading
        pieces = [para] if _word_count(para) <= max_words else _sentence_pieces(para, max_words)
        for piece in pieces:
            if cur and _word_count("\n\n".join(cur + [piece])) > max_words:
                flush()
                cur_heading = heading
            cur.append(piece)
    if cur:
        tail = "\n\n".join(cur)
        if _word_count(tail) < min_words and passages:
            merged = passages[-1]["text"] + "\n\n" + tail
            if _word_count(merged) <= max_words * 1.25:
                passages[-1]["text"] = merged
                cur = []
        if cur:
            flush()
    return [p for p in passages if min_words <= _word_count(p["text"]) <= max_words * 1.25]


def code_passages(text: str, params: BuildParams) -> list[dict[str, Any]]:
    """One passage per source file (`# file: path` headers), big files split at blocks."""
    matches = list(FILE_HEADER.finditer(text))
    files: list[tuple[str, str]] = []
    if not matches:
        files.append(("", text))
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        files.append((match.group(1).strip(), text[match.end() : end].strip("\n")))
    out: list[dict[str, Any]] = []
    for path, body in files:
        if len([ln for ln in body.splitlines() if ln.strip()]) < params.min_code_lines:
            continue
        if len(body) <= params.max_code_chars:
            out.append({"text": body, "path": path, "symbol": None})
            continue
        blocks = re.split(r"\n(?=\S)", body)  # top-level blocks start at column 0
        cur = ""
        for block in blocks:
            if cur and len(cur) + len(block) + 1 > params.max_code_chars:
                out.append({"text": cur, "path": path, "symbol": _symbol(cur)})
                cur = ""
            cur = f"{cur}\n{block}" if cur else block
        if cur.strip():
            out.append({"text": cur, "path": path, "symbol": _symbol(cur)})
    return [p for p in out if len(p["text"]) <= params.max_code_chars * 1.5]


def _symbol(code: str) -> str | None:
    match = re.search(r"^\s*(?:async\s+)?(?:def|class|func|fn|function)\s+(\w+)", code, re.M)
    return match.group(1) if match else None


def passages_for(doc: dict[str, Any], params: BuildParams) -> list[dict[str, Any]]:
    category = doc["category"]
    if category == Category.REPOSITORIES.value:
        return code_passages(doc["content"], params)
    min_words = params.min_post_words if category == Category.POSTS.value else params.min_words
    if category == Category.POSTS.value and _word_count(doc["content"]) <= params.max_words:
        text = doc["content"].strip()
        return [{"text": text, "heading": ""}] if _word_count(text) >= min_words else []
    return prose_passages(doc["content"], min_words, params.max_words)


# --- quality filters --------------------------------------------------------------------


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(re.findall(r"\w+", text))


def shingles(text: str, n: int = 5) -> set[str]:
    tokens = normalise(text).split()
    if len(tokens) < n:
        return {" ".join(tokens)}
    return {" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def _is_english(text: str) -> bool:
    try:
        from langdetect import DetectorFactory, detect_langs

        DetectorFactory.seed = 0  # langdetect is random unless seeded
        langs = detect_langs(text[:2000])
    except Exception:  # no features (e.g. only numbers): let the other checks decide
        return True
    return any(lang.lang == "en" and lang.prob >= 0.5 for lang in langs)


def answer_problem(text: str, category: str) -> str | None:
    """None when the author's passage is a usable answer, else why not."""
    stripped = text.strip()
    if not stripped:
        return "empty"
    if re.search(r"(.)\1{24,}", stripped):
        return "garbage:run"
    non_space = [ch for ch in stripped if not ch.isspace()]
    if category == Category.REPOSITORIES.value:
        if "\x00" in stripped or sum(ch.isprintable() for ch in non_space) < 0.95 * len(non_space):
            return "garbage:binary"
        return None
    letters = [ch for ch in non_space if ch.isalpha()]
    if len(letters) < 0.5 * len(non_space):
        return "garbage:letters"
    if sum(ch.isascii() for ch in letters) < 0.9 * len(letters):
        return "language:non-ascii"
    prose = re.sub(r"```.*?```", " ", stripped, flags=re.S)
    if _word_count(prose) >= 20 and not _is_english(prose):
        return "language:not-english"
    return None


class Deduper:
    """Exact (normalised hash) and near (shingle Jaccard) duplicate detection."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.hashes: set[str] = set()
        self.kept: list[set[str]] = []
        self.index: dict[str, list[int]] = {}

    def is_duplicate(self, text: str) -> str | None:
        digest = hashlib.sha256(normalise(text).encode("utf-8")).hexdigest()
        if digest in self.hashes:
            return "duplicate:exact"
        grams = shingles(text)
        candidates: dict[int, int] = {}
        for gram in grams:
            for idx in self.index.get(gram, ()):
                candidates[idx] = candidates.get(idx, 0) + 1
        for idx, shared in candidates.items():
            union = len(grams) + len(self.kept[idx]) - shared
            if union and shared / union >= self.threshold:
                return "duplicate:near"
        self.hashes.add(digest)
        self.kept.append(grams)
        for gram in grams:
            self.index.setdefault(gram, []).append(len(self.kept) - 1)
        return None
