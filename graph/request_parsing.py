"""Deterministic request parsing for the self-query step: authors that really exist in the
warehouse, category/platform keywords, date ranges, links. The 135M model is weak at JSON,
so these rules always run and the LLM's answer only fills gaps where it validates."""

from __future__ import annotations

import calendar
import json
import logging
import re
import threading
import time
from datetime import date
from typing import Any

log = logging.getLogger(__name__)

AUTHOR_CACHE_TTL_S = 60.0
_authors: tuple[float, str, list[str]] | None = None  # (loaded_at, data_dir, names)
_authors_lock = threading.Lock()

URL_RE = re.compile(r"https?://[^\s<>\"')\]]+", re.IGNORECASE)
# A category is read from what the request asks for or searches in ("a LinkedIn post",
# "a thread", "my repo", "your articles"), not from the words as topics: "threads" in
# "unsafe with threads" or "code" in "code reviews" name no category.
_DETERMINER = r"(?:a|an|one|my|your|his|her|their|our|this|that|these|those)"
_OWNER = rf"(?:{_DETERMINER}|\w+['’]s)"  # "a thread", "Maya's posts"
_ADJECTIVES = r"(?:[\w-]+[\s-]+){0,2}"
CATEGORY_WORDS = {
    "posts": rf"{_OWNER}\s+{_ADJECTIVES}(?:posts?|tweets?|threads?)|social\s+media",
    "articles": r"articles?|blog\s*posts?|blogs?|essays?|newsletters?|write-?ups?",
    # The author's code ("your repo", "his codebase", "a repository"), not the user's
    # ("our codebase", "a Twisted codebase").
    "repositories": (
        rf"(?:my|your|his|her|their|the\s+author's)\s+{_ADJECTIVES}"
        r"(?:repos?|repositor(?:y|ies)|code\s*base|code|source\s+code)"
        r"|(?:a|an|one)\s+(?:[\w-]+\s+)?(?:repo|repository)"
    ),
}
PLATFORMS = ("medium", "substack", "linkedin", "github")
MONTHS = {
    name.lower(): i
    for i, name in enumerate(calendar.month_name)
    if name
} | {name.lower(): i for i, name in enumerate(calendar.month_abbr) if name}
_MONTH = r"(?P<{0}>" + "|".join(sorted((m for m in MONTHS), key=len, reverse=True)) + r")\.?"
_YEAR = r"(?P<{0}>(?:19|20)\d\d)"


def known_authors(ttl_s: float = AUTHOR_CACHE_TTL_S) -> list[str]:
    """Full names of the warehouse's `users` (read-only), cached per process for `ttl_s`."""
    global _authors
    from core.settings import get_settings

    data_dir = str(get_settings().DATA_DIR) + "|" + get_settings().MONGODB_URI
    now = time.monotonic()
    with _authors_lock:
        if _authors and _authors[1] == data_dir and now - _authors[0] < ttl_s:
            return _authors[2]
        names: list[str] = []
        try:
            from core.warehouse import get_warehouse

            with get_warehouse() as wh:
                names = sorted(
                    {
                        " ".join(str(u.get("full_name", "")).split())
                        for u in wh.find("users", {})
                        if u.get("full_name")
                    }
                )
        except Exception as exc:  # noqa: BLE001 - no warehouse yet → no author matching
            log.info("author list unavailable (%s); self-query matches no names", exc)
        _authors = (now, data_dir, names)
        return names


def clear_author_cache() -> None:
    global _authors
    with _authors_lock:
        _authors = None


def find_author(text: str, authors: list[str]) -> str | None:
    """The one real author named in `text` (full name, surname, first name; any case;
    possessives), None when none or several are (`graph.names.resolve_author`)."""
    from graph.names import resolve_author

    return resolve_author(text, authors).author


def find_category(text: str) -> str | None:
    low = text.casefold()
    best: tuple[int, str] | None = None
    for category, pattern in CATEGORY_WORDS.items():
        m = re.search(rf"\b(?:{pattern})\b", low)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), category)
    # "blog post" is an article even though it contains "post".
    if re.search(r"\bblog\s*posts?\b", low):
        return "articles"
    return best[1] if best else None


def find_platform(text: str) -> str | None:
    """A platform named as a SOURCE ("from my Medium", "on GitHub", "my Substack posts",
    "Maya's Medium articles").
    "Write a LinkedIn post" names the output format, not where to search: no filter."""
    low = text.casefold()
    for p in PLATFORMS:
        if re.search(rf"(?:\b(?:from|on|in|my|across)\s+(?:my\s+|the\s+)?|'s\s+){p}\b", low):
            return p
    return None


def _month_start(year: int, month: int) -> date:
    return date(year, month, 1)


def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def find_dates(text: str, today: date | None = None) -> tuple[str | None, str | None]:
    """(date_from, date_to) as YYYY-MM-DD from phrases like "in 2024", "since March 2023",
    "before 2022", "between 2020 and 2022", "in May 2021", "from 2021" (that year),
    "from 2021 onwards", "last year", "this year"."""
    today = today or date.today()
    low = " ".join(text.casefold().split())
    my = rf"(?:{_MONTH.format('m')}\s+)?{_YEAR.format('y')}"

    def start(m: re.Match[str], mk: str = "m", yk: str = "y") -> date:
        y = int(m.group(yk))
        mon = m.group(mk)
        return _month_start(y, MONTHS[mon]) if mon else date(y, 1, 1)

    def end(m: re.Match[str], mk: str = "m", yk: str = "y") -> date:
        y = int(m.group(yk))
        mon = m.group(mk)
        return _month_end(y, MONTHS[mon]) if mon else date(y, 12, 31)

    my2 = rf"(?:{_MONTH.format('m2')}\s+)?{_YEAR.format('y2')}"
    m = re.search(rf"\b(?:between|from)\s+{my}\s+(?:and|to|until|-)\s+{my2}\b", low)
    if m:
        return start(m).isoformat(), end(m, "m2", "y2").isoformat()
    frm = to = None
    m = re.search(rf"\b(?:since|after)\s+{my}\b", low) or re.search(
        rf"\bfrom\s+{my}\s+(?:on|onwards?)\b", low
    )
    if m:
        frm = start(m) if not low[m.start():].startswith("after") else None
        if frm is None:  # "after 2022" → from 2023-01-01, "after May 2022" → from June
            e = end(m)
            frm = date.fromordinal(e.toordinal() + 1)
    m = re.search(rf"\b(?:before|until|till|up to|prior to)\s+{my}\b", low)
    if m:
        s = start(m) if low[m.start():].startswith(("before", "prior")) else None
        to = date.fromordinal(s.toordinal() - 1) if s else end(m)
    if frm or to:
        return (frm.isoformat() if frm else None), (to.isoformat() if to else None)
    m = re.search(rf"\b(?:in|during|of|from)\s+{my}\b", low)
    if m:
        return start(m).isoformat(), end(m).isoformat()
    if re.search(r"\blast year\b", low):
        return date(today.year - 1, 1, 1).isoformat(), date(today.year - 1, 12, 31).isoformat()
    if re.search(r"\bthis year\b", low):
        return date(today.year, 1, 1).isoformat(), today.isoformat()
    return None, None


def find_urls(text: str) -> list[str]:
    return [u.rstrip(".,;:!?") for u in URL_RE.findall(text)]


def extract_filters(text: str, authors: list[str] | None = None) -> dict[str, Any]:
    from graph.state import empty_filters

    authors = known_authors() if authors is None else authors
    filters = empty_filters()
    without_urls = URL_RE.sub(" ", text)
    filters["author"] = find_author(without_urls, authors)
    filters["category"] = find_category(without_urls)
    filters["platform"] = find_platform(without_urls)
    filters["date_from"], filters["date_to"] = find_dates(without_urls)
    return filters


def parse_llm_filters(raw: str, authors: list[str]) -> dict[str, Any]:
    """The validated part of the LLM's JSON answer (anything unverifiable is dropped)."""
    from graph.state import empty_filters

    out = empty_filters()
    m = re.search(r"\{.*?\}", raw, re.DOTALL)
    if not m:
        return out
    try:
        data = json.loads(m.group(0))
    except json.JSONDecodeError:
        return out
    if not isinstance(data, dict):
        return out
    author = data.get("author")
    if isinstance(author, str) and author.strip():
        out["author"] = find_author(author, authors)
    if data.get("category") in CATEGORY_WORDS:
        out["category"] = data["category"]
    if data.get("platform") in PLATFORMS:
        out["platform"] = data["platform"]
    for key in ("date_from", "date_to"):
        value = data.get(key)
        if isinstance(value, str):
            try:
                out[key] = date.fromisoformat(value.strip()).isoformat()
            except ValueError:
                pass
    return out


def search_text(request: str, author: str | None = None) -> str:
    """The request as a search query: links and self-introductions ("I am <author>.")
    removed, whitespace normalised."""
    text = URL_RE.sub(" ", request)
    if author:
        text = re.sub(
            rf"\b(?:i am|i'm|im|this is|my name is)\s+{re.escape(author)}\b[.,!;:]?",
            " ",
            text,
            flags=re.IGNORECASE,
        )
    return " ".join(text.split()) or request.strip()
