"""Bytes → text for local files: UTF-8 first, then a detected encoding, then cp1252."""

from __future__ import annotations

import unicodedata

# Latin-script single-byte code pages that detection confuses on short text; for these
# cp1252 (the usual Windows/"ANSI" default for Western text) is preferred when it decodes.
_LATIN_SINGLE_BYTE = frozenset(
    {
        "cp1250",
        "cp1252",
        "cp1254",
        "cp1257",
        "latin_1",
        "iso8859_2",
        "iso8859_3",
        "iso8859_4",
        "iso8859_9",
        "iso8859_10",
        "iso8859_13",
        "iso8859_14",
        "iso8859_15",
        "iso8859_16",
        "mac_latin2",
        "mac_roman",
        "mac_iceland",
        "mac_turkish",
        "cp850",
        "cp437",
    }
)

# Share of characters that may be U+FFFD or control characters before we call it garbage.
MAX_BAD_CHAR_RATIO = 0.05
_SNIFF_BYTES = 8192


class UndecodableError(ValueError):
    """The bytes are not text (binary, or mostly undecodable)."""


def looks_binary(data: bytes) -> bool:
    """NUL bytes in the first 8 KB: what git and most tools take as "binary"."""
    return b"\x00" in data[:_SNIFF_BYTES]


def _bad_ratio(text: str) -> float:
    if not text:
        return 0.0
    bad = sum(
        1
        for ch in text
        if ch == "\ufffd"
        or (unicodedata.category(ch) in ("Cc", "Cs", "Co") and ch not in "\t\n\r\f")
    )
    return bad / len(text)


def decode_text(data: bytes) -> tuple[str, str]:
    """Return (text, encoding). Raise UndecodableError for binary or garbage bytes."""
    if looks_binary(data):
        raise UndecodableError("binary file (contains NUL bytes)")
    try:
        text = data.decode("utf-8-sig")
        encoding = "utf-8"
    except UnicodeDecodeError:
        text, encoding = "", ""
        try:
            from charset_normalizer import from_bytes

            best = from_bytes(data).best()
        except Exception:  # noqa: BLE001 - detection is best effort
            best = None
        if best is not None and best.encoding in _LATIN_SINGLE_BYTE:
            try:
                text, encoding = data.decode("cp1252"), "cp1252"
            except UnicodeDecodeError:
                pass
        if not encoding and best is not None and best.encoding:
            try:
                text, encoding = data.decode(best.encoding), best.encoding
            except (LookupError, UnicodeDecodeError):
                text = ""
        if not encoding:
            text, encoding = data.decode("cp1252", errors="replace"), "cp1252"
    if _bad_ratio(text) > MAX_BAD_CHAR_RATIO:
        raise UndecodableError(f"not text: mostly undecodable (tried utf-8, then {encoding})")
    return text, encoding
