"""Versioned instruction datasets built from one author's cleaned documents.

`python -m finetune dataset build --author NAME [--kind instruct|preference|all]`

Source: the `cleaned_articles|posts|repositories` Qdrant collections (payload-only points,
payload = `core.domain.CleanedDocument`), filtered on the author's full name or id.

Instruct pairs: the ANSWER is the author's own text, a passage (`finetune.passages`: how
documents are cut and which passages the quality filters keep). The INSTRUCTION is what the
passage answers ("Write a LinkedIn post about …", "Write an article section explaining …",
"Write the Python code for `path` …"), written by the generator LLM and checked (length,
ASCII, refusal/meta text, repetition, topicality, no copied answer); failures fall back to
deterministic templates. Split per category by DOCUMENT: sha256(document_id) → a fraction
in [0, 1); documents below `test_fraction` go to "test" (at least one per category with ≥ 2
documents: the lowest hash), so no document is in both splits.

Preference pairs (DPO) are built on an instruct version by `finetune.preferences`.

Versions: the id is a hash of the source document ids + content hashes, the generator
model, the parameters and the builder's own source code, so the same inputs give the same
id and a second build is a no-op. Saved with `datasets.DatasetDict.save_to_disk` under
`DATA_DIR/datasets/<kind>/<version_id>/` (splits "train"/"test") with `manifest.json`;
`DATA_DIR/datasets/<kind>/latest-<author-slug>.json` points at the author's newest version.
Readers: `load_dataset_version(kind, author=...)` / `latest_version(kind, author)`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.domain import utcnow
from core.registry import write_json_atomic
from finetune.passages import BuildParams, Deduper, answer_problem, passages_for
from retrievers.author_corpus import load_cleaned_documents

log = logging.getLogger(__name__)

INSTRUCT = "instruct"
PREFERENCE = "preference"
INSTRUCT_COLUMNS = ("instruction", "answer", "context", "document_id", "category", "author")
PREFERENCE_COLUMNS = ("prompt", "chosen", "rejected", "source")
SPLITS = ("train", "test")


class DatasetError(RuntimeError):
    """Nothing to build from, or no dataset version where one was asked for."""


@dataclass
class DatasetVersion:
    kind: str
    version: str
    author: str
    path: Path
    manifest: dict[str, Any] = field(default_factory=dict)
    built: bool = False  # False when an identical version already existed

    def load(self) -> Any:
        from datasets import load_from_disk

        return load_from_disk(str(self.path))


# --- paths & versions -------------------------------------------------------------------


def author_slug(author: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", " ".join(author.split()).casefold()).strip("-") or "author"


def datasets_root() -> Path:
    from core.settings import get_settings

    return get_settings().datasets_dir


def builder_code_version() -> str:
    digest = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in ("datasets.py", "passages.py", "preferences.py", "generator.py"):
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:12]


def version_id(payload: dict[str, Any]) -> str:
    blob = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def latest_pointer(kind: str, author: str) -> Path:
    return datasets_root() / kind / f"latest-{author_slug(author)}.json"


def latest_version(kind: str, author: str) -> str | None:
    path = latest_pointer(kind, author)
    if not path.exists():
        return None
    return json.loads(path.read_text("utf-8")).get("version")


def list_versions(kind: str, author: str | None = None) -> list[dict[str, Any]]:
    base = datasets_root() / kind
    out = []
    if base.exists():
        for path in base.iterdir():
            manifest_path = path / "manifest.json"
            if not manifest_path.exists():
                continue
            manifest = json.loads(manifest_path.read_text("utf-8"))
            if author and author_slug(manifest.get("author", "")) != author_slug(author):
                continue
            out.append(manifest)
    return sorted(out, key=lambda m: m.get("created_at", ""))


def load_dataset_version(
    kind: str = INSTRUCT, author: str | None = None, version: str | None = None
) -> tuple[Any, dict[str, Any]]:
    """(DatasetDict with "train"/"test", manifest) — a given version or the author's latest."""
    from datasets import load_from_disk

    if version is None:
        if author is None:
            raise DatasetError("give an author or a version")
        version = latest_version(kind, author)
        if version is None:
            raise DatasetError(
                f"no {kind} dataset for {author!r} yet: run "
                f'`python -m finetune dataset build --author "{author}"`'
            )
    path = datasets_root() / kind / version
    if not (path / "manifest.json").exists():
        raise DatasetError(f"no {kind} dataset version {version!r} under {path.parent}")
    manifest = json.loads((path / "manifest.json").read_text("utf-8"))
    return load_from_disk(str(path)), manifest


# --- splits -----------------------------------------------------------------------------


def _hash_fraction(document_id: str) -> float:
    return int(hashlib.sha256(document_id.encode("utf-8")).hexdigest()[:15], 16) / 16**15


def split_documents(docs: list[dict[str, Any]], test_fraction: float) -> dict[str, str]:
    """document_id → "train"/"test", per category, decided by the id's hash alone."""
    by_category: dict[str, list[str]] = {}
    for doc in docs:
        by_category.setdefault(str(doc["category"]), []).append(str(doc["document_id"]))
    assignment: dict[str, str] = {}
    for ids in by_category.values():
        ranked = sorted(set(ids), key=_hash_fraction)
        for doc_id in ranked:
            assignment[doc_id] = "test" if _hash_fraction(doc_id) < test_fraction else "train"
        if len(ranked) >= 2 and test_fraction > 0 and "test" not in {assignment[i] for i in ranked}:
            assignment[ranked[0]] = "test"
        if len(ranked) >= 2 and all(assignment[i] == "test" for i in ranked):
            assignment[ranked[-1]] = "train"
    return assignment


# --- building ---------------------------------------------------------------------------


def save_version(kind: str, version: str, rows: dict[str, list[dict[str, Any]]], manifest: dict) -> Path:
    import datasets as hf_datasets
    from datasets import Dataset, DatasetDict, Features, Value

    hf_datasets.disable_progress_bars()  # one save per version: bars are noise
    columns = INSTRUCT_COLUMNS if kind == INSTRUCT else PREFERENCE_COLUMNS
    features = Features({c: Value("string") for c in columns})
    dd = DatasetDict(
        {
            split: Dataset.from_dict(
                {c: [str(r.get(c, "") or "") for r in rows.get(split, [])] for c in columns},
                features=features,
            )
            for split in SPLITS
        }
    )
    final = datasets_root() / kind / version
    tmp = final.with_name(f".{version}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    # One shard per split, even an empty one: `datasets` writes no file for an empty split
    # saved with the default sharding, and `load_from_disk` then fails (IndexError).
    dd.save_to_disk(str(tmp), num_shards={split: 1 for split in SPLITS})
    write_json_atomic(tmp / "manifest.json", manifest)
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    return final


def set_latest(kind: str, author: str, version: str) -> None:
    write_json_atomic(
        latest_pointer(kind, author),
        {"kind": kind, "author": author, "version": version, "updated_at": utcnow().isoformat()},
    )


def existing_version(kind: str, version: str, author: str) -> DatasetVersion | None:
    path = datasets_root() / kind / version
    if (path / "manifest.json").exists():
        manifest = json.loads((path / "manifest.json").read_text("utf-8"))
        return DatasetVersion(kind, version, author, path, manifest, built=False)
    return None


def build_instruct_dataset(
    author: str,
    *,
    params: BuildParams | None = None,
    generator: str | None = None,
    use_llm: bool = False,
    client: Any = None,
    force: bool = False,
    progress: bool = False,
) -> DatasetVersion:
    """Build (or reuse) the author's instruct dataset version from their cleaned documents."""
    from core.settings import OFFLINE_SMOLLM2
    from finetune.generator import GenerationClient, generator_id, make_instruction

    params = params or BuildParams()
    author = " ".join(author.split())
    docs = load_cleaned_documents(author, client)
    if not docs:
        raise DatasetError(
            f"no cleaned documents for author {author!r}: ingest their writing first "
            f'(`python -m ingest add SOURCE --author "{author}"`)'
        )
    # The small model writes the instructions: one short line per passage, hundreds of them.
    generator = generator or OFFLINE_SMOLLM2
    gen_id = generator_id(generator) if use_llm else "template"
    sources = [
        {"document_id": str(d["document_id"]), "content_hash": d.get("content_hash", "")}
        for d in docs
    ]
    identity = {
        "kind": INSTRUCT,
        "author": author,
        "sources": sources,
        "generator": gen_id,
        "params": asdict(params),
        "builder": builder_code_version(),
    }
    version = version_id(identity)
    found = existing_version(INSTRUCT, version, author)
    if found and not force:
        set_latest(INSTRUCT, author, version)
        if progress:
            _say(f"dataset: {author}'s documents are unchanged: reusing version {version}")
        return found

    gen_client = (
        GenerationClient(generator, cache_dir=datasets_root() / "cache") if use_llm else None
    )
    assignment = split_documents(docs, params.test_fraction)
    served = None
    if params.context_passages > 0:
        from finetune.grounding import ServedContext

        served = ServedContext(author, params.context_passages, client)
        held = {doc_id for doc_id, split in assignment.items() if split != "train"}
    deduper = Deduper(params.near_dup_threshold)
    rows: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    rejected: dict[str, int] = {}
    instruction_sources: dict[str, int] = {}
    work = [(doc, passage) for doc in docs for passage in passages_for(doc, params)]
    bar: Any = None
    started = time.perf_counter()
    if progress:
        from core.progress import progress_bar

        _say(
            f"dataset: building version {version} from {len(docs)} documents "
            f"({len(work)} passages; instructions by {gen_id}) …"
        )
        bar = progress_bar(total=len(work), desc="dataset: instructions", unit="passage")
    kept = 0
    for doc, passage in work:
        if bar is not None:
            bar.update(1)
        if params.max_pairs and kept >= params.max_pairs:
            break
        problem = answer_problem(passage["text"], doc["category"]) or deduper.is_duplicate(
            passage["text"]
        )
        if problem:
            rejected[problem] = rejected.get(problem, 0) + 1
            continue
        instruction, source = make_instruction(
            gen_client, passage, doc, params.instruction_max_new_tokens
        )
        key = source.split(":")[0]
        instruction_sources[key] = instruction_sources.get(key, 0) + 1
        if ":" in source:
            rejected[f"instruction:{source.split(':', 1)[1]}"] = (
                rejected.get(f"instruction:{source.split(':', 1)[1]}", 0) + 1
            )
        split = assignment[str(doc["document_id"])]
        rows[split].append(
            {
                "instruction": instruction,
                "answer": passage["text"].strip(),
                "context": served.for_request(
                    instruction, {str(doc["document_id"]), *(held if split == "train" else ())}
                )
                if served
                else "",
                "document_id": str(doc["document_id"]),
                "category": str(doc["category"]),
                "author": author,
            }
        )
        kept += 1
    if bar is not None:
        bar.close()
    if not rows["train"]:
        raise DatasetError(f"no usable training pairs for {author!r} (filtered: {rejected})")
    manifest = {
        "kind": INSTRUCT,
        "version": version,
        "author": author,
        "created_at": utcnow().isoformat(),
        "sources": sources,
        "splits": {s: sorted({r["document_id"] for r in rows[s]}) for s in SPLITS},
        "generator": gen_id,
        "params": asdict(params),
        "builder": identity["builder"],
        "counts": {
            "documents": len(docs),
            "passages": len(work),
            **{s: len(rows[s]) for s in SPLITS},
            "by_category": _count_by(rows, "category"),
            "instruction_sources": instruction_sources,
            "filtered": rejected,
        },
    }
    path = save_version(INSTRUCT, version, rows, manifest)
    set_latest(INSTRUCT, author, version)
    log.info("instruct dataset %s: %s", version, manifest["counts"])
    if progress:
        _say(
            f"dataset: version {version} built in {time.perf_counter() - started:.0f} s: "
            f"{len(rows['train'])} train / {len(rows['test'])} test pairs"
        )
    return DatasetVersion(INSTRUCT, version, author, path, manifest, built=True)


def _say(line: str) -> None:
    """A progress line on stderr, beside the bar (stdout keeps the command's result)."""
    print(line, file=sys.stderr, flush=True)


def _count_by(rows: dict[str, list[dict[str, Any]]], key: str) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for split, items in rows.items():
        for row in items:
            out.setdefault(row[key], {}).setdefault(split, 0)
            out[row[key]][split] += 1
    return out
