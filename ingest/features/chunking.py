"""Category-specific chunking with token budgets measured by the embedding model's tokenizer.

- Articles (budget 200 wordpieces, overlap up to 32) and posts (budget 128, overlap up to 16):
  text is cut along headings, then paragraphs, then lines, then sentences; a piece that is
  still too long is cut at token boundaries. Neighbouring chunks of one section share their
  last sentences/paragraphs (the overlap) so a thought cut in two is still found whole.
- Repositories (budget 200, no overlap): each file is cut along its structure — Python at
  top-level `def`/`class` (via `ast`, line scanning when the file does not parse), other
  languages at blank lines outside braces — and blocks are packed up to the budget. Every
  code chunk starts with its `# file: <path>` line and never spans two files.

MiniLM reads at most 256 wordpieces including [CLS]/[SEP]; budgets are clamped below that.
Chunk ids are `core.domain.chunk_id_for(document_id, index, text)`.
"""

from __future__ import annotations

import ast
import copy
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from core.domain import Category, Chunk, CleanedDocument, chunk_id_for
from ingest.features.cleaning import FILE_HEADER, _split_code_blocks, split_repository

# Article budget and overlap are settings (CHUNK_TOKENS, CHUNK_OVERLAP); these are the
# defaults tests refer to.
ARTICLE_BUDGET, ARTICLE_OVERLAP = 200, 32
POST_BUDGET, POST_OVERLAP = 128, 16
CODE_BUDGET = 200


class Tokenizer(Protocol):
    def __call__(self, text: Any, **kwargs: Any) -> Any: ...


_local = threading.local()


def get_tokenizer() -> Any:
    """The embedding model's tokenizer, as a private copy for the calling thread.

    A Hugging Face fast tokenizer re-configures its padding/truncation on every call, so one
    instance used by the chunker and by `model.encode` in another thread at the same time
    produces unpadded batches. Each thread counts tokens with its own copy; the model's own
    tokenizer stays with the thread that encodes.
    """
    from core.models import get_embedding_model

    tokenizer = getattr(_local, "tokenizer", None)
    if tokenizer is None:
        tokenizer = _local.tokenizer = copy.deepcopy(get_embedding_model().tokenizer)
    return tokenizer


def max_budget() -> int:
    """Wordpieces the embedding model reads, minus its two special tokens."""
    from core.models import get_embedding_model

    return int(get_embedding_model().max_seq_length) - 2


def count_tokens(tokenizer: Tokenizer, texts: Sequence[str]) -> list[int]:
    if not texts:
        return []
    encoded = tokenizer(
        list(texts),
        add_special_tokens=False,
        return_attention_mask=False,
        return_token_type_ids=False,
        verbose=False,  # long inputs are measured here precisely to be split
    )
    return [len(ids) for ids in encoded["input_ids"]]


def split_by_tokens(tokenizer: Tokenizer, text: str, budget: int) -> list[str]:
    """Cut `text` into pieces of at most `budget` tokens, between words where possible."""
    encoded = tokenizer(
        text,
        add_special_tokens=False,
        return_offsets_mapping=True,
        return_attention_mask=False,
        verbose=False,
    )
    offsets = encoded["offset_mapping"]
    if len(offsets) <= budget:
        return [text]
    pieces = []
    start = 0
    while start < len(offsets):
        end = min(start + budget, len(offsets))
        if end < len(offsets):
            # Back up to a token that follows whitespace (a word start), if there is one.
            cut = end
            while cut > start + 1 and offsets[cut][0] <= offsets[cut - 1][1]:
                cut -= 1
            end = cut if cut > start + 1 else end
        begin = offsets[start][0] if start else 0
        stop = offsets[end][0] if end < len(offsets) else len(text)
        piece = text[begin:stop].strip()
        if piece:
            pieces.append(piece)
        start = end
    return pieces


@dataclass
class _Unit:
    text: str
    sep: str  # separator before this unit when it follows another one in a chunk
    tokens: int = 0
    section_start: bool = False
    verbatim: bool = False  # code: never cut into sentences or repeated as overlap
    heading_level: int = 0  # a Markdown heading unit: its level (1 = `#`)


_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"')\]]*\s+(?=\S)")
_HEADING = re.compile(r"^#{1,6}\s")


def _sentences(line: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(line) if s.strip()] or [line]


def _text_units(text: str) -> list[_Unit]:
    """Paragraph-level units; headings open sections; code blocks stay whole."""
    units: list[_Unit] = []
    for is_code, segment in _split_code_blocks(text):
        if is_code:
            if segment.strip():
                units.append(_Unit(segment, "\n\n", verbatim=True))
            continue
        for para in re.split(r"\n[ \t]*\n", segment):
            if not para.strip():
                continue
            para = para.strip("\n")
            first, _, rest = para.partition("\n")
            if _HEADING.match(first.lstrip()):
                level = len(first.lstrip()) - len(first.lstrip().lstrip("#"))
                units.append(_Unit(first, "\n\n", section_start=True, heading_level=level))
                if rest.strip():
                    units.append(_Unit(rest.strip("\n"), "\n"))
            else:
                units.append(_Unit(para, "\n\n"))
    return units


def _refine(tokenizer: Tokenizer, units: list[_Unit], budget: int) -> list[_Unit]:
    """Split units over budget: lines, then sentences, then token windows."""
    if not units:
        return units
    for unit, n in zip(units, count_tokens(tokenizer, [u.text for u in units]), strict=True):
        unit.tokens = n
    out: list[_Unit] = []
    for unit in units:
        if unit.tokens <= budget:
            out.append(unit)
            continue
        # Lines, each keeping the blank lines that follow it (code stays verbatim).
        lines = [line for line in re.split(r"\n(?=[^\n])", unit.text) if line.strip()]
        if len(lines) > 1:
            subs = [_Unit(line, "\n") for line in lines]
        else:
            subs = [] if unit.verbatim else [_Unit(s, " ") for s in _sentences(unit.text)]
            if len(subs) <= 1:
                subs = [_Unit(p, " ") for p in split_by_tokens(tokenizer, unit.text, budget)]
        for sub in subs:
            sub.verbatim = unit.verbatim
        subs[0].sep, subs[0].section_start = unit.sep, unit.section_start
        if len(subs) == 1:
            subs[0].tokens = count_tokens(tokenizer, [subs[0].text])[0]
            if subs[0].tokens > budget:  # token windows never exceed the budget; guard anyway
                subs[0].tokens = budget
            out.append(subs[0])
            continue
        out.extend(_refine(tokenizer, subs, budget))
    return out


def _tail_sentences(unit: _Unit, room: int, counter: Callable[[list[str]], list[int]]) -> _Unit | None:
    """The last sentences of a prose unit that fit in `room` tokens (the overlap)."""
    if unit.verbatim or room <= 0:
        return None
    sentences = _sentences(unit.text.rsplit("\n", 1)[-1])
    if len(sentences) < 2:
        return None
    tail: list[str] = []
    used = 0
    for sentence, n in zip(reversed(sentences), reversed(counter(sentences)), strict=True):
        if used + n > room:
            break
        tail.insert(0, sentence)
        used += n
    if not tail or len(tail) == len(sentences):
        return None
    return _Unit(" ".join(tail), "\n\n", tokens=used)


def _heading_text(unit: _Unit) -> str:
    return unit.text.strip().lstrip("#").strip().rstrip("#").strip()


def _pack(
    units: list[_Unit],
    budget: int,
    overlap: int,
    min_section_fill: int,
    counter: Callable[[list[str]], list[int]] | None = None,
) -> list[tuple[str, str]]:
    """Units packed into chunks of at most `budget` tokens: [(text, section path)], the
    path being the headings (outermost first, " > "-joined) in force where the chunk's own
    text starts."""
    chunks: list[tuple[str, str]] = []
    current: list[_Unit] = []
    used = 0
    path: list[str] = []
    section = ""
    started = False  # the current chunk holds more than the overlap carried into it

    def render(parts: list[_Unit]) -> str:
        text = "".join((u.sep if i else "") + u.text for i, u in enumerate(parts))
        return text.strip("\n").rstrip()

    for unit in units:
        if current and unit.section_start and used >= min_section_fill:
            chunks.append((render(current), section))
            current, used, started = [], 0, False
        elif current and used + unit.tokens > budget:
            chunks.append((render(current), section))
            started = False
            room = min(overlap, budget - unit.tokens)
            carry: list[_Unit] = []
            carried = 0
            for prev in reversed(current):
                if prev.verbatim or carried + prev.tokens > room:
                    break
                carry.insert(0, prev)
                carried += prev.tokens
            if len(carry) == len(current):
                carry, carried = [], 0  # never repeat a whole chunk
            if not carry and counter is not None:
                tail = _tail_sentences(current[-1], room, counter)
                if tail is not None:
                    carry, carried = [tail], tail.tokens
            current, used = carry, carried
        if unit.heading_level:
            path = [*path[: unit.heading_level - 1], _heading_text(unit)]
        if not started:
            section, started = " > ".join(p for p in path if p), True
        current.append(unit)
        used += unit.tokens
    if current:
        chunks.append((render(current), section))
    return [(text, sec) for text, sec in chunks if text]


def chunk_text_sections(
    text: str, budget: int, overlap: int = 0, tokenizer: Tokenizer | None = None
) -> list[tuple[str, str]]:
    """Chunks of prose/Markdown text, each at most `budget` tokens, with the section path
    (its headings, outermost first) where each one starts."""
    tokenizer = tokenizer or get_tokenizer()
    units = _refine(tokenizer, _text_units(text), budget)
    counter = lambda texts: count_tokens(tokenizer, texts)  # noqa: E731
    return _pack(units, budget, overlap, min_section_fill=budget // 3, counter=counter)


def chunk_text(
    text: str, budget: int, overlap: int = 0, tokenizer: Tokenizer | None = None
) -> list[str]:
    """Chunks of prose/Markdown text, each at most `budget` tokens."""
    return [chunk for chunk, _ in chunk_text_sections(text, budget, overlap, tokenizer)]


# --- code -----------------------------------------------------------------------------------

_PY_TOP = re.compile(r"^(?:async\s+def|def|class)\s|^@")


def _python_block_starts(code: str, lines: list[str]) -> tuple[list[int], set[int]]:
    """(0-based first lines of top-level statements, the subset that are def/class)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        starts = [
            i for i, line in enumerate(lines)
            if _PY_TOP.match(line) and not (i and lines[i - 1].startswith("@"))
        ]
        return starts, set(starts)
    starts, defs = [], set()
    for node in tree.body:
        decorators = getattr(node, "decorator_list", [])
        first = min([node.lineno, *(d.lineno for d in decorators)]) - 1
        starts.append(first)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defs.add(first)
    return starts, defs


def _comment_start(lines: list[str], start: int, floor: int) -> int:
    """Move a block start up over the comment lines directly above it."""
    while start - 1 > floor and lines[start - 1].startswith("#"):
        start -= 1
    return start


def _brace_block_starts(lines: list[str]) -> list[int]:
    """Blank lines outside braces/brackets end a block (C-like, JS, Go, Rust, Java, …)."""
    starts, depth, after_blank = [], 0, False
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            after_blank = depth <= 0
            continue
        if after_blank and i:
            starts.append(i)
        after_blank = False
        code = re.sub(r"(\"(?:\\.|[^\"\\])*\"|'(?:\\.|[^'\\])*'|//.*$)", "", stripped)
        depth += code.count("{") + code.count("(") + code.count("[")
        depth -= code.count("}") + code.count(")") + code.count("]")
    return starts


def code_blocks(path: str, code: str) -> list[tuple[str, bool]]:
    """[(block, opens_definition)] of one file, in order; together they are the whole file."""
    lines = code.split("\n")
    if path.endswith((".py", ".pyi")):
        raw_starts, defs = _python_block_starts(code, lines)
        starts, opens = [], set()
        for s in raw_starts:
            moved = _comment_start(lines, s, starts[-1] if starts else 0)
            starts.append(moved)
            if s in defs:
                opens.add(moved)
    else:
        starts, opens = _brace_block_starts(lines), set()
    bounds = sorted({0, *[s for s in starts if 0 < s < len(lines)]})
    blocks = []
    for begin, end in zip(bounds, [*bounds[1:], len(lines)], strict=True):
        # Blocks keep their trailing blank lines: joined with "\n" they are the file again.
        blocks.append(("\n".join(lines[begin:end]), begin in opens))
    return blocks


_NESTED_DEF = re.compile(r"^[ \t]+(?:async\s+def|def|class)\s|^[ \t]+@")


def inner_blocks(path: str, block: str) -> list[str]:
    """A block too big for one chunk, cut at nested definitions (Python methods) or at its
    inner blank lines; joined with "\\n" the pieces are the block again."""
    lines = block.split("\n")
    starts: list[int] = []
    if path.endswith((".py", ".pyi")):
        for i in range(1, len(lines)):
            if _NESTED_DEF.match(lines[i]) and not _NESTED_DEF.match(lines[i - 1]):
                start = i
                while start - 1 > (starts[-1] if starts else 0) and lines[start - 1].lstrip().startswith("#"):
                    start -= 1
                starts.append(start)
    if not starts:
        starts = [i for i in range(1, len(lines)) if not lines[i - 1].strip() and lines[i].strip()]
    bounds = [0, *starts, len(lines)]
    return ["\n".join(lines[a:b]) for a, b in zip(bounds, bounds[1:], strict=False) if a < b]


def chunk_code(
    files: Sequence[tuple[str, str]], budget: int, tokenizer: Tokenizer | None = None
) -> list[str]:
    """Chunks of source files, each `# file: <path>` + code, at most `budget` tokens."""
    tokenizer = tokenizer or get_tokenizer()
    chunks: list[str] = []
    for path, code in files:
        header = f"{FILE_HEADER}{path}" if path else ""
        header_tokens = count_tokens(tokenizer, [header])[0] if header else 0
        room = max(budget - header_tokens, 16)
        blocks = code_blocks(path, code)
        units: list[_Unit] = []
        for (block, opens), n in zip(blocks, count_tokens(tokenizer, [b for b, _ in blocks]), strict=True):
            if n <= room:
                units.append(_Unit(block, "\n", section_start=opens, verbatim=True))
                continue
            for i, piece in enumerate(inner_blocks(path, block)):
                units.append(_Unit(piece, "\n", section_start=opens or i > 0, verbatim=True))
        for piece, _ in _pack(_refine(tokenizer, units, room), room, 0, min_section_fill=room // 2):
            chunks.append(f"{header}\n{piece}" if header else piece)
    return chunks


# --- dispatch -------------------------------------------------------------------------------


def _make_chunks(
    doc: CleanedDocument, texts: list[str], sections: Sequence[str] | None = None
) -> list[Chunk]:
    sections = sections or [""] * len(texts)
    return [
        Chunk(
            id=chunk_id_for(doc.document_id, i, text),
            document_id=doc.document_id,
            author_id=doc.author_id,
            author_full_name=doc.author_full_name,
            platform=doc.platform,
            category=doc.category,
            link=doc.link,
            title=doc.title,
            chunk_index=i,
            content=text,
            section=section,
            published_at=doc.published_at,
        )
        for i, (text, section) in enumerate(zip(texts, sections, strict=True))
    ]


def _clamp(budget: int, tokenizer: Tokenizer | None) -> int:
    if tokenizer is not None:
        limit = getattr(tokenizer, "model_max_length", 0) or 0
        return min(budget, limit - 2) if 0 < limit < 100_000 else budget
    return min(budget, max_budget())


def _prose_chunks(
    doc: CleanedDocument, budget: int, overlap: int, tokenizer: Tokenizer | None
) -> list[Chunk]:
    pairs = chunk_text_sections(doc.content, _clamp(budget, tokenizer), overlap, tokenizer)
    return _make_chunks(doc, [text for text, _ in pairs], [section for _, section in pairs])


def chunk_article(doc: CleanedDocument, tokenizer: Tokenizer | None = None) -> list[Chunk]:
    from core.settings import get_settings

    settings = get_settings()
    return _prose_chunks(doc, settings.CHUNK_TOKENS, settings.CHUNK_OVERLAP, tokenizer)


def chunk_post(doc: CleanedDocument, tokenizer: Tokenizer | None = None) -> list[Chunk]:
    return _prose_chunks(doc, POST_BUDGET, POST_OVERLAP, tokenizer)


def chunk_repository(doc: CleanedDocument, tokenizer: Tokenizer | None = None) -> list[Chunk]:
    budget = _clamp(CODE_BUDGET, tokenizer)
    return _make_chunks(doc, chunk_code(split_repository(doc.content), budget, tokenizer))


CHUNKERS: dict[Category, Callable[..., list[Chunk]]] = {
    Category.ARTICLES: chunk_article,
    Category.POSTS: chunk_post,
    Category.REPOSITORIES: chunk_repository,
}


def chunk_document(doc: CleanedDocument, tokenizer: Tokenizer | None = None) -> list[Chunk]:
    """Chunk one cleaned document with the chunker of its category."""
    return CHUNKERS[Category(doc.category)](doc, tokenizer)
