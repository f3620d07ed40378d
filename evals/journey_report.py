"""The before/after report of `python -m finetune twin`: for the first held-out requests of
the dataset's test split, the answer of the model the twin served BEFORE the journey and the
answer of the new twin AFTER it, with the gate's figures and reasons.

Answers are greedy, through the backend that serves each model, with the gate's prompt and
token budget (`EVALS_GATE_ANSWER_MAX_TOKENS`), so they are what a user would get. Both sides
are cached under `DATA_DIR/reports/cache/answers/`, keyed by the model's weights
fingerprint, the backend, its sampling defaults, the messages, the budget and the generation
code: a rerun against the same served model generates only the new twin's side, and a
promoted twin's answers are the next journey's "before". Written as JSON and Markdown under
`DATA_DIR/reports/`.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from core.registry import write_json_atomic
from finetune.sft import minutes

ANSWER_GRACE = 48  # tokens past the budget to end on a full sentence (as the gate answers)


def _code_version() -> str:
    """The generation code (backends, sampling, DRY, prompts): a change invalidates cached
    answers."""
    import core.llm
    import core.prompts

    digest = hashlib.sha256()
    for path in sorted(Path(core.llm.__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    digest.update(Path(core.prompts.__file__).read_bytes())
    return digest.hexdigest()[:16]


def _weights_fingerprint(ref: str) -> str:
    from core.models import resolve_llm_path
    from finetune.held_out_scoring import model_fingerprint

    return model_fingerprint(resolve_llm_path(ref))


def _answer_key(ref: str, messages: list[dict[str, str]], max_tokens: int) -> str:
    from core.llm import choose_backend
    from core.llm.base import generation_defaults

    blob = json.dumps(
        [
            _weights_fingerprint(ref),
            choose_backend(ref),
            repr(generation_defaults(ref)),
            messages,
            max_tokens,
            ANSWER_GRACE,
            _code_version(),
        ],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def gate_answers(gate: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The gate's own greedy answers, "candidate" / "reference" → request → text. Same
    prompt, budget, backend and greedy decoding as `answers`: reusing them shows the user
    the very answers the gate judged, without generating them twice."""
    roles = (gate.get("metrics") or {}).get("answers") or {}
    out: dict[str, dict[str, str]] = {}
    for role, report in roles.items():
        rows = report.get("answers") if isinstance(report, dict) else None
        kept = {
            row["request"]: row["text"]
            for row in rows or []
            if isinstance(row, dict) and isinstance(row.get("text"), str) and row.get("request")
        }
        out["candidate" if role == "candidate" else "reference"] = kept
    return out


def pick_requests(passages: list[Any], gate: dict[str, Any], n: int) -> list[Any]:
    """`n` held-out requests: those the gate answered first (its answers can be reused),
    else round-robin over the documents, so that the report is not about one topic."""
    rows = ((gate.get("metrics") or {}).get("answers") or {}).get("candidate") or {}
    asked = [r.get("request") for r in rows.get("answers", []) if isinstance(r, dict)]
    by_request = {p.instruction: p for p in passages}
    picked = [by_request[q] for q in asked if q in by_request][:n]
    queues: dict[str, list[Any]] = {}
    for p in passages:
        if p not in picked:
            queues.setdefault(p.document_id, []).append(p)
    while len(picked) < n and any(queues.values()):
        for queue in queues.values():
            if queue and len(picked) < n:
                picked.append(queue.pop(0))
    return picked


def answers(
    ref: str,
    requests: list[Any],
    author: str,
    max_tokens: int,
    cache: bool = True,
    known: dict[str, str] | None = None,
) -> tuple[list[str], int]:
    """Greedy answers of `ref` to the held-out passages' requests: `known` ones (the gate's,
    by request) first, else from the answer cache (with `cache`), else generated and cached.
    Returns (answers, how many were not generated)."""
    from core.llm import get_llm
    from core.prompts import twin_messages
    from core.settings import get_settings
    from retrievers.author_corpus import grounding_kwargs

    folder = get_settings().DATA_DIR / "reports" / "cache" / "answers"
    out, hits, llm = [], 0, None
    grounding = grounding_kwargs(author)  # as the served twin answers
    for passage in requests:
        if known and passage.instruction in known:
            out.append(known[passage.instruction])
            hits += 1
            continue
        messages = twin_messages(passage.instruction, passage.context, author)
        copied = grounding.get("max_copied_words", 0)
        decoding = f"grounded={grounding['grounded_names']}|copied<={copied}"
        key = _answer_key(f"{ref}|{decoding}", messages, max_tokens)
        path = folder / f"{key}.json" if cache else None
        if path is not None and path.exists():
            out.append(json.loads(path.read_text("utf-8"))["answer"])
            hits += 1
            continue
        llm = llm or get_llm(ref)
        text = llm.generate(
            messages, max_new_tokens=max_tokens, temperature=0.0, sentence_grace=ANSWER_GRACE,
            **grounding,
        )
        if path is not None:
            write_json_atomic(path, {"ref": ref, "answer": text})
        out.append(text)
    return out, hits


def voice_figures(gate: dict[str, Any]) -> list[str]:
    """The gate's voice figures as short lines (whatever measures its report carries)."""
    voice = gate.get("metrics", {}).get("voice") or {}
    lines = []
    for key, value in voice.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            lines.append(f"{key.replace('_', ' ')}: {value:g}")
    return lines


def write_report(report: dict[str, Any], stem: str) -> tuple[Path, Path]:
    """`DATA_DIR/reports/<stem>.json` and `.md`; returns both paths."""
    from core.settings import get_settings

    folder = get_settings().DATA_DIR / "reports"
    json_path, md_path = folder / f"{stem}.json", folder / f"{stem}.md"
    write_json_atomic(json_path, report)
    md_path.write_text(markdown(report), "utf-8")
    return json_path, md_path


def report_stem(author_slug: str, version: str | None) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"twin-{author_slug}-{version or 'none'}-{stamp}"


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in (text or "(empty)").splitlines())


def markdown(report: dict[str, Any]) -> str:
    gate = report["gate"]
    verdict = "promoted" if report["promoted"] else "not promoted (the candidate is kept)"
    lines = [
        f"# {report['author']}'s twin: before and after",
        "",
        f"- twin: `{report['candidate']}` — {verdict}",
        f"- before: `{report['before']['ref']}` ({report['before']['role']})",
        f"- dataset: `{report['dataset_version']}`",
        f"- journey: {report['seconds'] / 60:.1f} min",
        *([f"- {note}"] if (note := budget_note(report)) else []),
        "",
        "## Gate",
        "",
        *[f"- {reason}" for reason in gate.get("reasons", [])],
        "",
        *[f"- {figure}" for figure in voice_figures(gate)],
        "",
    ]
    for n, pair in enumerate(report["pairs"], 1):
        lines += [
            f"## Request {n}: {pair['request']}",
            "",
            "**Before**",
            "",
            _quote(pair["before"]),
            "",
            "**After**",
            "",
            _quote(pair["after"]),
            "",
            "<details><summary>What the author wrote (held out)</summary>",
            "",
            _quote(pair["author_text"]),
            "",
            "</details>",
            "",
        ]
    return "\n".join(lines)


def _columns(left: str, right: str, width: int) -> list[str]:
    col = (width - 3) // 2
    a = [ln for para in left.splitlines() for ln in textwrap.wrap(para, col) or [""]]
    b = [ln for para in right.splitlines() for ln in textwrap.wrap(para, col) or [""]]
    rows = max(len(a), len(b))
    a += [""] * (rows - len(a))
    b += [""] * (rows - len(b))
    return [f"{x:<{col}} │ {y}" for x, y in zip(a, b, strict=True)]


def budget_note(report: dict[str, Any]) -> str | None:
    """When the budget cut the training below the recipe: how many steps fit, and the
    budget that would give the recipe all of them at this machine's measured speed."""
    training = report.get("training", {})
    steps = int(training.get("train/steps", 0))
    planned = int(training.get("train/planned_steps", 0))
    if not report.get("budget_minutes") or not steps or steps >= planned:
        return None
    per_step = float(training.get("train/seconds", 0.0)) / steps
    needed = report["seconds"] + (planned - steps) * per_step
    return (
        f"training: {steps} of the recipe's {planned} LoRA steps fit the "
        f"{report['budget_minutes']:g}-minute budget on this machine ({per_step:.0f} s a step); "
        f"`--budget-minutes {math.ceil(needed / 60)}` trains them all"
    )


def print_report(report: dict[str, Any], paths: tuple[Path, Path], file: TextIO) -> None:
    """Side by side on a terminal at least 100 columns wide, else one after the other."""
    width = shutil.get_terminal_size((80, 24)).columns
    side_by_side = file.isatty() and width >= 100
    gate = report["gate"]
    rule = "─" * min(width, 100)
    before, after = report["before"], report["candidate"]
    print(rule, file=file)
    for n, pair in enumerate(report["pairs"], 1):
        print(f"Request {n}: {pair['request']}", file=file)
        if side_by_side:
            for line in _columns(f"BEFORE ({before['ref']})", f"AFTER ({after})", width):
                print(line, file=file)
            for line in _columns(pair["before"], pair["after"], width):
                print(line, file=file)
        else:
            print(f"  before ({before['ref']}):", file=file)
            print(
                textwrap.indent(textwrap.fill(pair["before"] or "(empty)", 96), "    "), file=file
            )
            print(f"  after ({after}):", file=file)
            print(textwrap.indent(textwrap.fill(pair["after"] or "(empty)", 96), "    "), file=file)
        print(rule, file=file)
    verdict = "PROMOTED: the twin now answers" if report["promoted"] else "NOT PROMOTED"
    print(f"{verdict} — {after}", file=file)
    for reason in gate.get("reasons", []):
        print(f"  - {reason}", file=file)
    figures = voice_figures(gate)
    if figures:
        print("  " + "; ".join(figures), file=file)
    if not report["promoted"]:
        print(
            f"  The candidate stays in the registry (`python -m finetune registry show "
            f"{report['version']} --name {report['name']}`); more writing (`python -m ingest "
            "add …`) and another `python -m finetune twin` may pass.",
            file=file,
        )
    stages = ", ".join(f"{k} {minutes(v)}" for k, v in report["stage_seconds"].items())
    print(f"journey: {minutes(report['seconds'])} ({stages})", file=file)
    if note := budget_note(report):
        print(note, file=file)
    print(f"report: {paths[1]} (and {paths[0].name})", file=file)
