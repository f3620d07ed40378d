"""Category-specific cleaning: raw warehouse documents → `CleanedDocument`s.

Cleaning must not lose meaning. Articles and posts lose only what is junk for retrieval and
style learning:
- leftover page chrome lines ("Sign up", "Share this post", "Subscribe", "5 min read", a date
  or a like count alone on a line, …: `boilerplate.is_generic_chrome`; the lines that recur
  across one author's documents are stripped at sync by `boilerplate.CorpusChrome`);
- tracking parameters in URLs (utm_*, fbclid, Medium's `source=`, …); the URLs themselves stay;
- emoji and unicode junk: zero-width and bidi characters, control characters, odd spaces;
  compatibility forms (ligatures, full-width letters, styled maths letters) are folded with
  NFKC, while superscripts, subscripts and fractions keep their meaning (x², H₂O, ½);
- runs of spaces and blank lines.
Code blocks (fenced and indented) and inline code spans are kept byte for byte, and so are
Markdown structure (headings, lists, quotes), punctuation and URLs.

Repositories keep their code exactly: only line endings are normalised to `\\n`, trailing
spaces are removed and whitespace-only files are dropped. The cleaned content is the files,
sorted by path, each under a `# file: <path>` header line.

`clean_document` dispatches on the category (one cleaner per category).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from core.domain import Category, CleanedDocument, RawDocument
from ingest.features.boilerplate import CorpusChrome, chrome_lines, split_code_blocks

FILE_HEADER = "# file: "

# --- unicode junk -----------------------------------------------------------------------

_ZERO_WIDTH_AND_BIDI = (
    "\u00ad"  # soft hyphen
    "\u034f"  # combining grapheme joiner
    "\u061c"  # arabic letter mark
    "\u115f\u1160\u3164\uffa0"  # hangul fillers (invisible)
    "\u180e"  # mongolian vowel separator
    "\u200b\u200c\u200d\u200e\u200f"  # zero-width space/joiners, lrm/rlm
    "\u202a\u202b\u202c\u202d\u202e"  # bidi embeddings/overrides
    "\u2060\u2061\u2062\u2063\u2064"  # word joiner, invisible operators
    "\u2066\u2067\u2068\u2069"  # bidi isolates
    "\ufeff"  # BOM / zero-width no-break space
    "\ufe0e\ufe0f"  # variation selectors (emoji presentation)
    "\u20e3"  # combining enclosing keycap
    "\ufffc\ufffd"  # object replacement, replacement character
)
_ODD_SPACES = "\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000"

# Emoji and pictographs (not arrows, maths, currency, box drawing or general punctuation).
_EMOJI_RANGES = (
    (0x1F000, 0x1FAFF),  # mahjong … symbols & pictographs extended-A (incl. flags, skin tones)
    (0x2600, 0x27BF),  # misc symbols, dingbats
    (0x2B50, 0x2B55),  # stars / circles used as emoji
    (0x2300, 0x23FF),  # misc technical: ⌚ ⏰ ⏳ … (emoji presentation)
    (0xE0000, 0xE007F),  # tag characters (flag sequences)
    (0xFE00, 0xFE0F),  # variation selectors
)
_EMOJI_KEEP = frozenset("⌘⌥⌃⇧⌫⌦⎋⏎")  # keyboard symbols in 0x2300-0x23FF carry meaning
# NFKC folds these decomposition kinds; the others (super/sub/fraction/circle/…) keep meaning.
_FOLD_TAGS = ("<compat>", "<wide>", "<narrow>", "<font>", "<noBreak>", "<medial>", "<final>", "<isolated>")


_EMOJI_CLASS = "".join(
    f"{chr(lo)}-{chr(hi)}" for lo, hi in _EMOJI_RANGES if (lo, hi) != (0x2300, 0x23FF)
) + "\u200d\u20e3\u231a\u231b\u23e9-\u23f3\u23f8-\u23fa"
# An emoji after text goes with the spaces before it ("intact 🚀." → "intact."); otherwise
# with the spaces after it ("🚀 Launch" → "Launch").
_EMOJI_AFTER_TEXT = re.compile(f"(?<=\\S)[ \t]*[{_EMOJI_CLASS}]+")
_EMOJI_OTHER = re.compile(f"[{_EMOJI_CLASS}]+[ \t]*")


class _CharMap(dict):
    """`str.translate` table computed lazily per character (cached)."""

    def __missing__(self, code: int) -> Any:
        char = chr(code)
        value: Any = None
        if char in _ZERO_WIDTH_AND_BIDI:
            value = ""
        elif char in _ODD_SPACES:
            value = " "
        elif char in "\t\n":
            value = code
        elif any(lo <= code <= hi for lo, hi in _EMOJI_RANGES) and char not in _EMOJI_KEEP:
            value = ""
        else:
            cat = unicodedata.category(char)
            if cat == "Cc":
                value = " " if char in "\r\x0b\x0c\x85" else ""
            elif cat in ("Zl", "Zp"):
                value = "\n"
            elif cat in ("Co", "Cs", "Cn") and code > 0xFFFF:
                value = ""  # private-use / unassigned astral junk
            else:
                decomposition = unicodedata.decomposition(char)
                if decomposition.startswith(_FOLD_TAGS):
                    value = unicodedata.normalize("NFKC", char)
                else:
                    value = code
        self[code] = value
        return value


_CHAR_MAP = _CharMap()


def normalize_unicode(text: str) -> str:
    """Compose (NFC), drop invisible/emoji junk, fold compatibility forms, fix odd spaces."""
    text = _EMOJI_OTHER.sub("", _EMOJI_AFTER_TEXT.sub("", unicodedata.normalize("NFC", text)))
    return text.translate(_CHAR_MAP)


# --- URLs ---------------------------------------------------------------------------------

_TRACKING_PARAMS = re.compile(
    r"^(utm_[a-z_]+|fbclid|gclid|gclsrc|dclid|msclkid|yclid|twclid|igshid|igsh|mc_cid|mc_eid|"
    r"_hsenc|_hsmi|__hssc|__hstc|__hsfp|hsctatracking|mkt_tok|oly_anon_id|oly_enc_id|vero_id|"
    r"vero_conv|wickedid|rb_clickid|s_cid|sc_cid|ref_src|ref_url|trk|trkcampaign|trackingid|"
    r"lipi|mibextid|si|spm|share_id|triedredirect|showwelcomeonshare|isfreemail|"
    r"_branch_match_id|_branch_referrer|cmpid|ncid)$",
    re.IGNORECASE,
)
_URL = re.compile(r"https?://[^\s<>()\[\]\"'`]+(?:\([^\s<>()]*\)[^\s<>()\[\]\"'`]*)*", re.IGNORECASE)


# Medium's `?source=post_page-----…` and friends; a plain `source=` may be meaningful.
_TRACKING_SOURCE = re.compile(r"^(?:post_page|rss|friends_link|user_profile|email|social|---)|-{3,}")


def _is_tracking_param(param: str) -> bool:
    name, _, value = param.partition("=")
    if name.lower() == "source":
        return bool(_TRACKING_SOURCE.search(value))
    return bool(_TRACKING_PARAMS.match(name))


def strip_tracking(url: str) -> str:
    """Remove tracking query parameters; keep everything else (order, fragment) as it was."""
    trail = ""
    while url and url[-1] in ".,;:!?":  # sentence punctuation after a bare URL
        trail = url[-1] + trail
        url = url[:-1]
    base, hash_sign, fragment = url.partition("#")
    path, question, query = base.partition("?")
    if question:
        kept = [p for p in query.split("&") if p and not _is_tracking_param(p)]
        base = path + ("?" + "&".join(kept) if kept else "")
    return base + hash_sign + fragment + trail


# --- text documents -------------------------------------------------------------------------

_INLINE_CODE = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)")
_SPACES = re.compile(r"[ \t]{2,}")
_BLANK_RUN = re.compile(r"\n{3,}")
# Code blocks are found where chrome detection finds them (one definition); the private
# name stays for the chunkers that import it from here.
_split_code_blocks = split_code_blocks


def _clean_prose(text: str) -> str:
    # Protect inline code spans from every rewrite below.
    spans: list[str] = []

    def stash(match: re.Match[str]) -> str:
        spans.append(match.group(0))
        return f"\ue000{len(spans) - 1}\ue001"

    text = _INLINE_CODE.sub(stash, text)
    text = normalize_unicode(text)
    text = _URL.sub(lambda m: strip_tracking(m.group(0)), text)
    lines = text.split("\n")
    chrome = chrome_lines(lines)
    out = []
    for number, line in enumerate(lines):
        if number in chrome:
            continue
        indent = len(line) - len(line.lstrip(" \t"))
        body = _SPACES.sub(" ", line[indent:]).rstrip()
        out.append((line[:indent] + body) if body else "")
    text = "\n".join(out)
    if spans:
        text = re.sub("\ue000(\\d+)\ue001", lambda m: spans[int(m.group(1))], text)
    return text


def clean_text(text: str) -> str:
    """Clean article/post text; code blocks and inline code stay verbatim."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    parts = []
    for is_code, segment in split_code_blocks(text):
        parts.append(segment if is_code else _clean_prose(segment))
    cleaned = "\n".join(parts)
    # Collapse blank-line runs only outside code: re-split so code keeps its blank lines.
    result = []
    for is_code, segment in split_code_blocks(cleaned):
        result.append(segment if is_code else _BLANK_RUN.sub("\n\n", segment))
    return "\n".join(result).strip("\n").strip()


# --- code ---------------------------------------------------------------------------------

_TRAILING_WS = re.compile(r"[ \t]+$", re.MULTILINE)


def clean_code(text: str) -> str:
    """Normalise line endings and trailing spaces only; the code itself stays exactly."""
    if text.startswith("\ufeff"):
        text = text[1:]
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _TRAILING_WS.sub("", text).strip("\n")


def repository_files(content: str | Mapping[str, Any]) -> dict[str, str]:
    """{path: cleaned code} of a repository document, sorted, without empty files."""
    if isinstance(content, str):
        files: Mapping[str, Any] = {"": content}
    else:
        files = content
    cleaned = {}
    for path in sorted(files):
        value = files[path]
        if not isinstance(value, str):
            continue
        code = clean_code(value)
        if code.strip():
            cleaned[str(path)] = code
    return cleaned


def join_repository(files: Mapping[str, str]) -> str:
    return "\n\n".join(
        f"{FILE_HEADER}{path}\n{code}" if path else code for path, code in files.items()
    )


def split_repository(content: str) -> list[tuple[str, str]]:
    """Inverse of `join_repository`: [(path, code)] from a cleaned repository's content."""
    files: list[tuple[str, str]] = []
    path, lines = "", []
    for line in content.split("\n"):
        if line.startswith(FILE_HEADER) and (not lines or lines[-1] == "" or not files and not lines):
            if lines or path:
                files.append((path, "\n".join(lines).strip("\n")))
            path, lines = line[len(FILE_HEADER):], []
        else:
            lines.append(line)
    if lines or path:
        files.append((path, "\n".join(lines).strip("\n")))
    return [(p, c) for p, c in files if c.strip()]


# --- dispatch -------------------------------------------------------------------------------

_TEXT_KEYS = ("subtitle", "text", "content", "body", "description", "commentary")


def document_text(content: str | Mapping[str, Any], title: str = "") -> str:
    """The prose of an article/post document, whatever shape its collector gave it."""
    if isinstance(content, str):
        return content
    parts = [content[k] for k in _TEXT_KEYS if isinstance(content.get(k), str) and content[k].strip()]
    if not parts:  # unknown shape: every string field but the title and links
        parts = [
            v for k, v in content.items()
            if isinstance(v, str) and v.strip() and k not in ("title", "link", "url")
        ]
    if len(parts) > 1 and parts[0] and parts[0] in parts[1]:
        parts = parts[1:]  # subtitle repeated inside the text
    return "\n\n".join(parts)


def _base_fields(raw: RawDocument) -> dict[str, Any]:
    return {
        "document_id": raw.id,
        "author_id": raw.author_id,
        "author_full_name": raw.author_full_name,
        "platform": str(raw.platform),
        "category": raw.category,
        "link": raw.link,
        "title": normalize_unicode(raw.title).strip() if raw.title else "",
        "published_at": raw.published_at,
        "content_hash": raw.content_hash,
    }


def clean_text_document(raw: RawDocument) -> CleanedDocument:
    return CleanedDocument(**_base_fields(raw), content=clean_text(document_text(raw.content)))


def clean_repository_document(raw: RawDocument) -> CleanedDocument:
    return CleanedDocument(
        **_base_fields(raw), content=join_repository(repository_files(raw.content))
    )


TEXT_CATEGORIES = (Category.ARTICLES, Category.POSTS)  # prose: chrome is stripped from these
CLEANERS: dict[Category, Callable[[RawDocument], CleanedDocument]] = {
    Category.ARTICLES: clean_text_document,
    Category.POSTS: clean_text_document,
    Category.REPOSITORIES: clean_repository_document,
}


def clean_document(
    raw: RawDocument | Mapping[str, Any], chrome: CorpusChrome | None = None
) -> CleanedDocument:
    """Clean one warehouse document with the cleaner of its category; with `chrome` (its
    author's, from `fit_chrome`), an article or post also loses its corpus chrome."""
    if not isinstance(raw, RawDocument):
        raw = RawDocument.model_validate(dict(raw))
    cleaned = CLEANERS[Category(raw.category)](raw)
    if chrome is not None and Category(raw.category) in TEXT_CATEGORIES:
        cleaned = cleaned.model_copy(update={"content": chrome.strip(cleaned.content)})
    return cleaned


def chrome_group(raw: RawDocument) -> tuple[str, str]:
    """Whose chrome a text document shares: its author's on its platform (a Substack plug
    is in the Substack posts only, and would be too rare among all of the author's)."""
    return raw.author_id, str(raw.platform)


def fit_chrome(
    raws: Iterable[RawDocument], min_documents: int = 3, min_share: float = 0.3
) -> dict[str, CorpusChrome]:
    """{document id: the CorpusChrome of its group} for the articles and posts of `raws`,
    fitted on their cleaned text (the text `CorpusChrome.strip` then gets). Identical texts
    count once, so a post stored twice (export and URL) is not its own chrome."""
    texts: dict[tuple[str, str], dict[str, None]] = {}
    members: dict[tuple[str, str], list[str]] = {}
    for raw in raws:
        if Category(raw.category) not in TEXT_CATEGORIES:
            continue
        group = chrome_group(raw)
        texts.setdefault(group, {})[clean_text_document(raw).content] = None
        members.setdefault(group, []).append(raw.id)
    chromes: dict[str, CorpusChrome] = {}
    for group, ids in members.items():
        chrome = CorpusChrome.fit(list(texts[group]), min_documents, min_share)
        chromes.update(dict.fromkeys(ids, chrome))
    return chromes
