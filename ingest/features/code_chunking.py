"""Chunking source files along their structure, never across two files.

Python is cut at top-level `def`/`class` (via `ast`, line scanning when the file does not
parse), other languages at blank lines outside braces; a block too big for one chunk is cut
at nested definitions or inner blank lines. Blocks are packed up to the budget, and every
chunk starts with its `# file: <path>` line.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence

from ingest.features.cleaning import FILE_HEADER
from ingest.features.packing import Unit, pack, refine
from ingest.features.tokens import Tokenizer, count_tokens, get_tokenizer

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
        units: list[Unit] = []
        for (block, opens), n in zip(blocks, count_tokens(tokenizer, [b for b, _ in blocks]), strict=True):
            if n <= room:
                units.append(Unit(block, "\n", section_start=opens, verbatim=True))
                continue
            for i, piece in enumerate(inner_blocks(path, block)):
                units.append(Unit(piece, "\n", section_start=opens or i > 0, verbatim=True))
        for piece, _ in pack(refine(tokenizer, units, room), room, 0, min_section_fill=room // 2):
            chunks.append(f"{header}\n{piece}" if header else piece)
    return chunks
