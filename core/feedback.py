"""Served runs and user feedback on them: the store the preference-dataset builder reads.

Two append-only JSONL files under `DATA_DIR/feedback/`:
  runs.jsonl      one record per answer the server produced:
                  {run_id, request, messages, answer, trace_id, model, context_ids, created_at}
  feedback.jsonl  one record per rating: the run's request and answer joined in, plus
                  {score (0..1), comment, opik_logged, created_at}

`record_run(...)` is called by the server after each answer, `record_feedback(...)` by
`POST /feedback`, `load_feedback()` by `finetune` (high score → chosen, low → rejected).
Each line is written with one `write` on a file opened in append mode, so concurrent
writers (threads, or a second process) never interleave partial lines.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
RUNS_FILE = "runs.jsonl"
FEEDBACK_FILE = "feedback.jsonl"
_lock = threading.Lock()
# run_id → run record, per store folder (tests switch DATA_DIR between cases); the most
# recent RUN_INDEX_SIZE runs per folder, older ones are looked up in the file on demand.
RUN_INDEX_SIZE = 10_000
_run_index: dict[Path, dict[str, dict[str, Any]]] = {}
_index_sizes: dict[Path, int] = {}
_index_truncated: set[Path] = set()


class UnknownRun(LookupError):
    """Feedback names a run this server never served (or whose record was removed)."""


def feedback_dir() -> Path:
    from core.settings import get_settings

    return get_settings().DATA_DIR / "feedback"


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _append(path: Path, record: dict[str, Any]) -> None:
    line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    with _lock, open(path, "a", encoding="utf-8") as fh:
        fh.write(line)


def _read_jsonl(path: Path, start: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Records from byte offset `start` on, and the offset after the last full line."""
    if not path.exists():
        return [], 0
    records: list[dict[str, Any]] = []
    with open(path, "rb") as fh:
        fh.seek(start)
        data = fh.read()
    end = data.rfind(b"\n") + 1  # ignore a line another process is still writing
    for raw in data[:end].splitlines():
        if not raw.strip():
            continue
        try:
            records.append(json.loads(raw))
        except json.JSONDecodeError:
            log.warning("skipping a malformed line in %s", path)
    return records, start + end


def record_run(
    run_id: str,
    request: str,
    answer: str,
    *,
    messages: list[dict[str, Any]] | None = None,
    trace_id: str | None = None,
    model: str | None = None,
    context_ids: list[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Remember what the server answered for `run_id` (so feedback can refer to it)."""
    record = {
        "run_id": str(run_id),
        "request": request,
        "messages": messages or [{"role": "user", "content": request}],
        "answer": answer,
        "trace_id": trace_id,
        "model": model,
        "context_ids": context_ids or [],
        "created_at": _now(),
        **extra,
    }
    folder = feedback_dir()
    _append(folder / RUNS_FILE, record)
    with _lock:
        index = _run_index.get(folder)
        if index is not None and _remember(index, record):
            _index_truncated.add(folder)
    return record


def _remember(index: dict[str, dict[str, Any]], record: dict[str, Any]) -> bool:
    """Index `record`; True when an older run had to leave the index."""
    index.pop(str(record.get("run_id")), None)
    index[str(record.get("run_id"))] = record
    evicted = len(index) > RUN_INDEX_SIZE
    while len(index) > RUN_INDEX_SIZE:
        del index[next(iter(index))]
    return evicted


def get_run(run_id: str) -> dict[str, Any] | None:
    """The served run's record, or None. Picks up runs other processes appended too."""
    folder = feedback_dir()
    path = folder / RUNS_FILE
    with _lock:
        index = _run_index.setdefault(folder, {})
        start = _index_sizes.get(folder, 0)
        size = path.stat().st_size if path.exists() else 0
        if size < start:  # file replaced or truncated: rebuild
            index.clear()
            start = 0
        if str(run_id) not in index and size > start:
            records, offset = _read_jsonl(path, start)
            for rec in records:
                if _remember(index, rec):
                    _index_truncated.add(folder)
            _index_sizes[folder] = offset
        found = index.get(str(run_id))
        truncated = folder in _index_truncated
    if found is None and truncated:  # an older run than the index keeps: read the file
        records, _ = _read_jsonl(path)
        found = next((r for r in reversed(records) if str(r.get("run_id")) == str(run_id)), None)
    return found


def normalize_score(score: Any) -> float:
    """0..1 floats as they are; thumbs (`up`/`down`, booleans, 👍/👎) as 1.0 / 0.0."""
    if isinstance(score, bool):
        return 1.0 if score else 0.0
    if isinstance(score, int | float):
        value = float(score)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"score must be between 0 and 1, got {score}")
        return value
    if isinstance(score, str):
        text = score.strip().lower()
        if text in {"up", "thumbs_up", "thumbsup", "+1", "good", "yes", "👍"}:
            return 1.0
        if text in {"down", "thumbs_down", "thumbsdown", "-1", "bad", "no", "👎"}:
            return 0.0
        try:
            return normalize_score(float(text))
        except ValueError:
            pass
    raise ValueError(
        f"score must be a number between 0 and 1 or a thumbs value ('up'/'down'), got {score!r}"
    )


def record_feedback(
    run_id: str,
    score: Any,
    comment: str | None = None,
    *,
    request: str | None = None,
    answer: str | None = None,
    trace_id: str | None = None,
    opik_logged: bool = False,
) -> dict[str, Any]:
    """Store one rating of a served run, joined with that run's request and answer.

    Raises `UnknownRun` when the run is not in the store and no request/answer is given,
    `ValueError` for a score that is neither 0..1 nor a thumbs value.
    """
    value = normalize_score(score)
    run = get_run(run_id)
    if run is None and (request is None or answer is None):
        raise UnknownRun(f"no served run with run_id {run_id!r}")
    run = run or {}
    record = {
        "run_id": str(run_id),
        "request": request if request is not None else run.get("request", ""),
        "messages": run.get("messages") or [{"role": "user", "content": request or ""}],
        "answer": answer if answer is not None else run.get("answer", ""),
        "score": value,
        "comment": comment or "",
        "trace_id": trace_id or run.get("trace_id"),
        "model": run.get("model"),
        "opik_logged": opik_logged,
        "created_at": _now(),
    }
    _append(feedback_dir() / FEEDBACK_FILE, record)
    return record


def load_feedback() -> list[dict[str, Any]]:
    """Every feedback record (oldest first): run_id, request, messages, answer, score,
    comment, trace_id, model, created_at. Empty when nobody rated anything yet."""
    records, _ = _read_jsonl(feedback_dir() / FEEDBACK_FILE)
    return records
