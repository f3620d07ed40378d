"""The author's held-out passages the voice evaluation scores, and the wider corpus its style
is compared with.

They come from the latest instruct dataset version's "test" split of that author
(`DATA_DIR/datasets/instruct/…`, written by `python -m finetune dataset build`), or from
`--passages FILE` (JSONL with `answer`/`text`/`content` and optional `instruction`,
`context`; or plain text, passages separated by blank lines or `---` lines).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.settings import get_settings


class VoiceEvalError(RuntimeError):
    """Missing inputs (no held-out passages, no candidate model): a message for the user.

    The voice evaluation's one error type, raised by its loaders here, its model resolver
    and its runner.
    """


# Instruction used for passages that come without one (plain-text --passages files).
GENERIC_INSTRUCTION = "Write a short piece in your own voice."


@dataclass
class Passage:
    answer: str
    instruction: str = GENERIC_INSTRUCTION
    context: str = ""
    document_id: str = ""


@dataclass
class HeldOut:
    passages: list[Passage]
    source: str
    # The author's wider corpus (train + test answers) for the style reference.
    corpus: list[str] = field(default_factory=list)
    author: str = ""
    # Whole documents of the dataset's splits (what a twin trained on it may have memorised,
    # and the author's voice it never saw): the voice yardstick's reference texts.
    train_documents: list[str] = field(default_factory=list)
    test_documents: list[str] = field(default_factory=list)


def find_instruct_dataset(author: str) -> Path | None:
    """Folder of the author's latest instruct dataset version (`finetune.datasets` pointer)."""
    from finetune.datasets import INSTRUCT, datasets_root, latest_version

    version = latest_version(INSTRUCT, author)
    return datasets_root() / INSTRUCT / version if version else None


def load_dataset_passages(
    author: str | None, limit: int | None = None, path: Path | None = None
) -> HeldOut:
    """Held-out passages: the "test" split of `path` (default: the author's latest instruct
    dataset version), only rows of `author` when given."""
    path = path or (find_instruct_dataset(author) if author else None)
    if path is None:
        raise VoiceEvalError(
            f"no instruct dataset for {author!r} under {get_settings().datasets_dir}/instruct: "
            f'run `python -m finetune dataset build --author "{author}"` first, or pass '
            "--passages FILE"
        )
    from datasets import load_from_disk

    from finetune.datasets import author_slug

    dataset = load_from_disk(str(path))
    if "test" not in dataset:
        raise VoiceEvalError(f"dataset {path} has no 'test' split")

    def rows(split: str) -> list[dict[str, Any]]:
        out = []
        for row in dataset[split]:
            row_author = row.get("author") or ""
            if author and row_author and author_slug(row_author) != author_slug(author):
                continue
            if (row.get("answer") or "").strip():
                out.append(row)
        return out

    test_rows = rows("test")
    passages = [
        Passage(
            answer=r["answer"],
            instruction=r.get("instruction") or GENERIC_INSTRUCTION,
            context=r.get("context") or "",
            document_id=r.get("document_id") or "",
        )
        for r in test_rows
    ]
    if limit:
        passages = passages[:limit]
    if not passages:
        raise VoiceEvalError(f"dataset {path} has no held-out ('test') passages of {author!r}")
    from finetune.train_data import document_texts

    corpus = [r["answer"] for split in dataset for r in rows(split)]
    found_author = author or next((r.get("author") for r in test_rows if r.get("author")), "")
    return HeldOut(
        passages,
        source=f"dataset:{path.name}",
        corpus=corpus,
        author=found_author,
        train_documents=document_texts(rows("train")) if "train" in dataset else [],
        test_documents=document_texts(test_rows),
    )


def load_passages_file(path: str | Path, limit: int | None = None) -> HeldOut:
    path = Path(path)
    if not path.exists():
        raise VoiceEvalError(f"passages file not found: {path}")
    text = path.read_text("utf-8")
    passages: list[Passage] = []
    if path.suffix in (".jsonl", ".json") or text.lstrip().startswith("{"):
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise VoiceEvalError(f"{path}:{n}: not valid JSON ({exc})") from None
            answer = row.get("answer") or row.get("text") or row.get("content") or ""
            if answer.strip():
                passages.append(
                    Passage(
                        answer=answer,
                        instruction=row.get("instruction") or GENERIC_INSTRUCTION,
                        context=row.get("context") or "",
                        document_id=row.get("document_id") or "",
                    )
                )
    else:
        sep = r"^\s*---\s*$" if re.search(r"^\s*---\s*$", text, re.M) else r"\n\s*\n"
        passages = [Passage(p.strip()) for p in re.split(sep, text, flags=re.M) if p.strip()]
    if not passages:
        raise VoiceEvalError(f"no passages in {path}")
    corpus = [p.answer for p in passages]
    return HeldOut(passages[:limit] if limit else passages, source=f"file:{path}", corpus=corpus)
