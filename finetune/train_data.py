"""What `finetune train` learns from: token ids + labels built from one dataset version.

Two objectives, chosen by `TrainConfig.objective`:
- `instruct`: the dataset's pairs rendered with the serving prompt
  (`core.prompts.render_training_example`); the loss covers only the author's answer + EOS.
- `raw`: continued pre-training on the author's own prose — each training document's
  passages, in order, joined back into one text (the cleaned document as the dataset kept
  it) + EOS, every token in the loss.
- `mix` (the default): both, shuffled together. The raw text teaches the author's wording
  and structure over whole documents; the pairs keep the model answering requests in the
  served prompt format (benchmarks/finetune.py measured the choice).

Only the dataset's "train" split is read for training, so its "test" documents stay unseen.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

OBJECTIVES = ("mix", "instruct", "raw")


def encode_example(
    tokenizer: Any, instruction: str, answer: str, context: str, author: str, seq_len: int
) -> dict[str, list[int]] | None:
    """input_ids + labels (-100 over the prompt) for one pair, or None if nothing to learn."""
    from core.prompts import render_training_example

    prompt, completion = render_training_example(tokenizer, instruction, answer, context, author)
    p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    c_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    if len(p_ids) + len(c_ids) > seq_len:
        if len(p_ids) > seq_len // 2:
            p_ids = p_ids[-(seq_len // 2) :]
        c_ids = c_ids[: seq_len - len(p_ids)]
    if not c_ids:
        return None
    return {"input_ids": p_ids + c_ids, "labels": [-100] * len(p_ids) + c_ids}


def encode_split(tokenizer: Any, rows: Iterable[dict], seq_len: int) -> list[dict[str, list[int]]]:
    out = []
    for row in rows:
        item = encode_example(
            tokenizer,
            row["instruction"],
            row["answer"],
            row.get("context", ""),
            row["author"],
            seq_len,
        )
        if item:
            out.append(item)
    return out


def document_texts(rows: Iterable[dict]) -> list[str]:
    """The documents behind a split: each document's passages in dataset order, joined.

    The builder emits a document's passages consecutively and in reading order, so this is
    the cleaned document minus what its filters dropped (duplicates, too-short pieces)."""
    by_doc: dict[str, list[str]] = {}
    for row in rows:
        answer = (row.get("answer") or "").strip()
        if answer:
            by_doc.setdefault(str(row.get("document_id") or ""), []).append(answer)
    return ["\n\n".join(parts) for parts in by_doc.values()]


def leading_words(texts: list[str], budget: int) -> list[str]:
    """Each text's leading paragraphs, `budget` words shared evenly among the texts (at
    least one paragraph each); 0 keeps them whole. Whole paragraphs, so that word
    perplexity counts exactly the words scored."""
    if budget <= 0 or not texts:
        return texts
    share = max(1, budget // len(texts))
    out = []
    for text in texts:
        kept: list[str] = []
        words = 0
        for paragraph in text.split("\n\n"):
            if kept and words + len(paragraph.split()) > share:
                break
            kept.append(paragraph)
            words += len(paragraph.split())
        out.append("\n\n".join(kept))
    return out


def encode_document(tokenizer: Any, text: str) -> dict[str, list[int]] | None:
    """A whole document for the raw-text objective: every token (and the final EOS) learned."""
    eos = getattr(tokenizer, "eos_token", None) or ""
    ids = tokenizer(text.strip() + eos, add_special_tokens=False)["input_ids"]
    return {"input_ids": ids, "labels": list(ids)} if len(ids) > 1 else None


def training_items(
    tokenizer: Any, rows: list[dict], objective: str, seq_len: int, seed: int
) -> list[dict[str, list[int]]]:
    """The shuffled examples of `objective`. Documents may be longer than `seq_len`: with
    packing they are cut into blocks, without it into consecutive `seq_len` windows."""
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown training objective {objective!r}; choose one of {OBJECTIVES}")
    items: list[dict[str, list[int]]] = []
    if objective in ("instruct", "mix"):
        items += encode_split(tokenizer, rows, seq_len)
    if objective in ("raw", "mix"):
        for text in document_texts(rows):
            item = encode_document(tokenizer, text)
            if item:
                items.append(item)
    random.Random(seed).shuffle(items)
    return items


def windows(items: list[dict[str, list[int]]], seq_len: int) -> list[dict[str, list[int]]]:
    """Items cut into consecutive pieces of at most `seq_len` tokens (no packing)."""
    out = []
    for item in items:
        for start in range(0, len(item["input_ids"]), seq_len):
            piece = {k: v[start : start + seq_len] for k, v in item.items()}
            if any(label != -100 for label in piece["labels"]) and len(piece["input_ids"]) > 1:
                out.append(piece)
    return out


def to_dataset(items: list[dict[str, list[int]]]) -> Any:
    from datasets import Dataset

    return Dataset.from_dict(
        {"input_ids": [i["input_ids"] for i in items], "labels": [i["labels"] for i in items]}
    )


def collate(items: list[dict[str, list[int]]], pad_id: int, device: Any = "cpu") -> dict[str, Any]:
    """Right-padded batch tensors (labels -100 on padding)."""
    import torch

    width = max(len(i["input_ids"]) for i in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    labels = torch.full((len(items), width), -100, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for row, item in enumerate(items):
        n = len(item["input_ids"])
        ids[row, :n] = torch.tensor(item["input_ids"])
        labels[row, :n] = torch.tensor(item["labels"])
        mask[row, :n] = 1
    return {
        "input_ids": ids.to(device),
        "attention_mask": mask.to(device),
        "labels": labels.to(device),
    }
