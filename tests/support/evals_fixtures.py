"""Shared setup for the evals/gate tests: held-out passages, a tiny instruct dataset,
registry versions (written in the documented core/registry.py layout) and a deliberately
worse model (the offline model with noise added to its weights)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

AUTHOR = "Maya Lindqvist"
BASE_REF = "offline:SmolLM2-135M-Instruct"
PASSAGES = [
    (
        "Explain why you prefer small tools.",
        "I have been writing software for a long time, and the lesson I keep relearning is "
        "simple: small tools that do one thing well outlive every grand framework I have built.",
    ),
    (
        "Write a LinkedIn post about rewriting a deploy script.",
        "Last week I rewrote our deploy script. It was three hundred lines of bash that nobody "
        "dared to touch. Now it is forty lines of Python, with tests, and the team reads it.",
    ),
    (
        "Write an article section about vector databases.",
        "Vector databases are not magic. They are indexes. Treat them like you treat Postgres "
        "indexes: measure, tune, and throw them away when they stop earning their keep.",
    ),
]
TRAIN_PASSAGES = [
    (
        "Write a post about code review.",
        "Code review is where a team learns to write one codebase instead of five. Keep the "
        "diffs small, say why, and never review after six in the evening.",
    ),
]


def write_passages_file(path: Path) -> Path:
    path.write_text(
        "\n".join(json.dumps({"instruction": i, "answer": a}) for i, a in PASSAGES) + "\n",
        encoding="utf-8",
    )
    return path


def write_instruct_dataset(data_dir: Path, version: str = "ds-test-1") -> Path:
    """A DatasetDict (train/test) in the finetune layout, with a manifest naming the author."""
    from datasets import Dataset, DatasetDict

    def rows(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
        return {
            "instruction": [i for i, _ in pairs],
            "answer": [a for _, a in pairs],
            "context": ["" for _ in pairs],
            "document_id": [f"doc-{n}" for n, _ in enumerate(pairs)],
            "category": ["posts" for _ in pairs],
            "author": [AUTHOR for _ in pairs],
        }

    path = data_dir / "datasets" / "instruct" / version
    DatasetDict(
        {
            "train": Dataset.from_dict(rows(TRAIN_PASSAGES)),
            "test": Dataset.from_dict(rows(PASSAGES)),
        }
    ).save_to_disk(str(path))
    manifest = {"author": AUTHOR, "version": version, "created_at": datetime.now(UTC).isoformat()}
    (path / "manifest.json").write_text(json.dumps(manifest), "utf-8")
    # The builder's pointer to the author's newest version (finetune/datasets.py layout).
    (path.parent / "latest-maya-lindqvist.json").write_text(
        json.dumps({"kind": "instruct", "author": AUTHOR, "version": version}), "utf-8"
    )
    return path


def register_version(
    name: str,
    version: str,
    merged: Path | str,
    tag: str | None = "candidate",
    dataset_version: str | None = None,
    base_model: str = BASE_REF,
) -> None:
    """A registry version whose `merged` artifact is an existing model folder."""
    from core.registry import get_registry, write_json_atomic

    registry = get_registry()
    folder = registry.root / name / "versions" / version
    write_json_atomic(
        folder / "manifest.json",
        {
            "base_model": base_model,
            "artifacts": {"merged": str(Path(merged).resolve())},
            "author": AUTHOR,
            "dataset_version": dataset_version,
            "created_at": datetime.now(UTC).isoformat(),
        },
    )
    if tag:
        tags = registry.tags(name)
        tags[tag] = version
        registry.set_tags(name, tags)


def make_perturbed_model(target: Path, scale: float = 0.3, seed: int = 0) -> Path:
    """The offline model with Gaussian noise on its weight matrices: clearly worse."""
    import copy

    import torch

    from core.models import load_causal_lm

    if (target / "config.json").exists():
        return target
    model, tokenizer = load_causal_lm(BASE_REF)
    noisy = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in noisy.named_parameters():
            if param.dim() == 2 and "embed" not in name:
                param.add_(torch.randn(param.shape, generator=generator) * param.std() * scale)
    noisy.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target
