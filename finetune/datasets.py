"""Versioned instruction and preference datasets built from one author's cleaned documents.

`python -m finetune dataset build --author NAME [--kind instruct|preference|all]`

Source: the `cleaned_articles|posts|repositories` Qdrant collections (payload-only points,
payload = `core.domain.CleanedDocument`), filtered on the author's full name or id.

Instruct pairs: the ANSWER is the author's own text — a paragraph-aligned passage of an
article (~60–400 words, split at headings/paragraphs, long paragraphs at sentences), a whole
post (long posts split the same way), or a source file of a repository (big files split at
top-level blocks). The INSTRUCTION is what the passage answers ("Write a LinkedIn post
about …", "Write an article section explaining …", "Write the Python code for `path` …"),
written by the generator LLM and checked (length, ASCII, refusal/meta text, repetition,
topicality, no copied answer); failures fall back to deterministic templates.
Quality filters on answers: length, English (ASCII share + langdetect), garbage (letter
share, runs of one character), exact dedupe (normalised hash) and near-dedupe (5-gram
shingle Jaccard). Split per category by DOCUMENT: sha256(document_id) → a fraction in [0, 1);
documents below `test_fraction` go to "test" (at least one per category with ≥ 2 documents:
the lowest hash), so no document is in both splits.

Preference pairs: prompt = an instruct pair's instruction, chosen = the author's answer,
rejected = what the BASE model writes for the same instruction with no persona; plus
`/feedback` records (`core.feedback.load_feedback()`, when the server helper's module and
records exist): well-rated answers are chosen, poorly rated ones rejected (a request with
only a well-rated answer gets the base model's answer as rejected).

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
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.domain import CLEANED_COLLECTIONS, Category, author_id_for, utcnow
from core.registry import write_json_atomic

log = logging.getLogger(__name__)

INSTRUCT = "instruct"
PREFERENCE = "preference"
INSTRUCT_COLUMNS = ("instruction", "answer", "context", "document_id", "category", "author")
PREFERENCE_COLUMNS = ("prompt", "chosen", "rejected", "source")
SPLITS = ("train", "test")
FILE_HEADER = re.compile(r"^# file: (.+)$", re.MULTILINE)


class DatasetError(RuntimeError):
    """Nothing to build from, or no dataset version where one was asked for."""


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
    seed: int = 42


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


def _builder_code_version() -> str:
    digest = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in ("datasets.py", "generator.py"):
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


# --- reading the cleaned documents ------------------------------------------------------


def load_cleaned_documents(author: str, client: Any = None) -> list[dict[str, Any]]:
    """All cleaned documents of an author (by full name or id), sorted by category and id."""
    from qdrant_client import models

    if client is None:
        from retrievers.store import get_qdrant_client

        client = get_qdrant_client()
    name = " ".join(author.split())
    author_filter = models.Filter(
        should=[
            models.FieldCondition(key="author_full_name", match=models.MatchValue(value=name)),
            models.FieldCondition(
                key="author_id", match=models.MatchValue(value=author_id_for(name))
            ),
            models.FieldCondition(key="author_id", match=models.MatchValue(value=name)),
        ]
    )
    existing = {c.name for c in client.get_collections().collections}
    docs: list[dict[str, Any]] = []
    for category, collection in CLEANED_COLLECTIONS.items():
        if collection not in existing:
            continue
        offset = None
        while True:
            points, offset = client.scroll(
                collection,
                scroll_filter=author_filter,
                limit=256,
                offset=offset,
                with_payload=True,
                with_vectors=False,
            )
            for point in points:
                payload = dict(point.payload or {})
                payload.setdefault("document_id", str(point.id))
                payload.setdefault("category", category.value)
                if isinstance(payload.get("content"), str) and payload["content"].strip():
                    docs.append(payload)
            if offset is None:
                break
    return sorted(docs, key=lambda d: (str(d["category"]), str(d["document_id"])))


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


def _save(kind: str, version: str, rows: dict[str, list[dict[str, Any]]], manifest: dict) -> Path:
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
    dd.save_to_disk(str(tmp))
    write_json_atomic(tmp / "manifest.json", manifest)
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    return final


def _set_latest(kind: str, author: str, version: str) -> None:
    write_json_atomic(
        latest_pointer(kind, author),
        {"kind": kind, "author": author, "version": version, "updated_at": utcnow().isoformat()},
    )


def _existing(kind: str, version: str, author: str) -> DatasetVersion | None:
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
    use_llm: bool = True,
    client: Any = None,
    force: bool = False,
    progress: bool = False,
) -> DatasetVersion:
    """Build (or reuse) the author's instruct dataset version from their cleaned documents."""
    from core.settings import OFFLINE_TRAIN_BASE
    from finetune.generator import GenerationClient, generator_id, make_instruction

    params = params or BuildParams()
    author = " ".join(author.split())
    docs = load_cleaned_documents(author, client)
    if not docs:
        raise DatasetError(
            f"no cleaned documents for author {author!r}: ingest their writing first "
            f'(`python -m ingest add SOURCE --author "{author}"`)'
        )
    generator = generator or OFFLINE_TRAIN_BASE
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
        "builder": _builder_code_version(),
    }
    version = version_id(identity)
    found = _existing(INSTRUCT, version, author)
    if found and not force:
        _set_latest(INSTRUCT, author, version)
        return found

    gen_client = (
        GenerationClient(generator, cache_dir=datasets_root() / "cache") if use_llm else None
    )
    assignment = split_documents(docs, params.test_fraction)
    deduper = Deduper(params.near_dup_threshold)
    rows: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    rejected: dict[str, int] = {}
    instruction_sources: dict[str, int] = {}
    work = [(doc, passage) for doc in docs for passage in passages_for(doc, params)]
    iterator: Any = work
    if progress:
        from tqdm import tqdm

        iterator = tqdm(work, desc="instructions", unit="passage")
    kept = 0
    for doc, passage in iterator:
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
                "context": "",
                "document_id": str(doc["document_id"]),
                "category": str(doc["category"]),
                "author": author,
            }
        )
        kept += 1
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
    path = _save(INSTRUCT, version, rows, manifest)
    _set_latest(INSTRUCT, author, version)
    log.info("instruct dataset %s: %s", version, manifest["counts"])
    return DatasetVersion(INSTRUCT, version, author, path, manifest, built=True)


def _count_by(rows: dict[str, list[dict[str, Any]]], key: str) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for split, items in rows.items():
        for row in items:
            out.setdefault(row[key], {}).setdefault(split, 0)
            out[row[key]][split] += 1
    return out


def _feedback_records() -> list[dict[str, Any]]:
    try:
        from core.feedback import load_feedback
    except ImportError:
        return []
    try:
        return list(load_feedback() or [])
    except Exception as exc:  # a missing/corrupt store means no feedback, not a failed build
        log.warning("could not read feedback records: %s", exc)
        return []


def _score(value: Any) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("up", "thumbs_up", "good", "+1", "like"):
            return 1.0
        if lowered in ("down", "thumbs_down", "bad", "-1", "dislike"):
            return 0.0
        try:
            value = float(lowered)
        except ValueError:
            return None
    if isinstance(value, int | float):
        value = float(value)
        return value / 5.0 if value > 1 else max(0.0, value)
    return None


def _request_text(request: Any) -> str:
    if isinstance(request, str):
        return request.strip()
    if isinstance(request, dict):
        for key in ("query", "instruction", "prompt", "input"):
            if isinstance(request.get(key), str):
                return request[key].strip()
        messages = request.get("messages")
        if isinstance(messages, list):
            return _request_text(messages)
    if isinstance(request, list):
        users = [
            m.get("content", "")
            for m in request
            if isinstance(m, dict) and m.get("role", m.get("type")) in ("user", "human")
        ]
        return users[-1].strip() if users else ""
    return ""


def feedback_pairs(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Group rated answers by request: well-rated → chosen, poorly rated → rejected."""
    by_request: dict[str, dict[str, list[tuple[float, str]]]] = {}
    for record in records:
        request = _request_text(record.get("request"))
        answer = str(record.get("answer") or "").strip()
        score = _score(record.get("score"))
        if not request or not answer or score is None:
            continue
        side = "good" if score >= 0.5 else "bad"
        by_request.setdefault(request, {"good": [], "bad": []})[side].append((score, answer))
    pairs = []
    for request in sorted(by_request):
        good = sorted(by_request[request]["good"], key=lambda t: (-t[0], t[1]))
        bad = sorted(by_request[request]["bad"], key=lambda t: (t[0], t[1]))
        if good:
            pairs.append(
                {"prompt": request, "chosen": good[0][1], "rejected": bad[0][1] if bad else None}
            )
    return pairs


def build_preference_dataset(
    author: str,
    *,
    params: BuildParams | None = None,
    base_model: str | None = None,
    instruct: DatasetVersion | None = None,
    use_llm: bool = True,
    force: bool = False,
    progress: bool = False,
    **instruct_kwargs: Any,
) -> DatasetVersion:
    """Preference pairs (prompt, chosen = author, rejected = base model) + feedback pairs."""
    from core.settings import OFFLINE_TRAIN_BASE
    from finetune.generator import GenerationClient, generator_id, generic_answer

    params = params or BuildParams()
    author = " ".join(author.split())
    if instruct is None:
        instruct = build_instruct_dataset(
            author, params=params, use_llm=use_llm, progress=progress, **instruct_kwargs
        )
    base_model = base_model or OFFLINE_TRAIN_BASE
    feedback = feedback_pairs(_feedback_records())
    identity = {
        "kind": PREFERENCE,
        "author": author,
        "instruct_version": instruct.version,
        "rejected_model": generator_id(base_model) if use_llm else "template",
        "rejected_max_new_tokens": params.rejected_max_new_tokens,
        "feedback": hashlib.sha256(json.dumps(feedback, sort_keys=True).encode()).hexdigest(),
        "builder": _builder_code_version(),
    }
    version = version_id(identity)
    found = _existing(PREFERENCE, version, author)
    if found and not force:
        _set_latest(PREFERENCE, author, version)
        return found

    client = GenerationClient(base_model, cache_dir=datasets_root() / "cache") if use_llm else None
    dd = instruct.load()
    rows: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    for split in SPLITS:
        items: Any = list(dd[split])
        if progress:
            from tqdm import tqdm

            items = tqdm(items, desc=f"rejected answers ({split})", unit="pair")
        for row in items:
            rejected = generic_answer(client, row["instruction"], params.rejected_max_new_tokens)
            rows[split].append(
                {
                    "prompt": row["instruction"],
                    "chosen": row["answer"],
                    "rejected": rejected,
                    "source": "author",
                }
            )
    for pair in feedback:
        rejected = pair["rejected"] or generic_answer(
            client, pair["prompt"], params.rejected_max_new_tokens
        )
        if rejected.strip() == pair["chosen"].strip():
            continue
        rows["train"].append({**pair, "rejected": rejected, "source": "feedback"})
    manifest = {
        "kind": PREFERENCE,
        "version": version,
        "author": author,
        "created_at": utcnow().isoformat(),
        "instruct_version": instruct.version,
        "sources": instruct.manifest.get("sources", []),
        "generator": identity["rejected_model"],
        "params": asdict(params),
        "builder": identity["builder"],
        "counts": {
            **{s: len(rows[s]) for s in SPLITS},
            "feedback_pairs": sum(r["source"] == "feedback" for r in rows["train"]),
        },
    }
    path = _save(PREFERENCE, version, rows, manifest)
    _set_latest(PREFERENCE, author, version)
    return DatasetVersion(PREFERENCE, version, author, path, manifest, built=True)
