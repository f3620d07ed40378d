"""Self-query evaluation: do the request's filters come out as a person means them?

`evals/data/self_query.jsonl`: requests written as people write them (first names,
surnames, possessives, lowercase, role-play, names shared by two authors, everyday words
that are also first names, output formats like "a LinkedIn post", topics that merely
contain "threads" or "code"), each with the authors in the warehouse, the filters
expected (only the keys listed are checked) and whether the answer must carry a note
(an ambiguous name applies no filter and says why).

    from evals.self_query import run_self_query_eval
    run_self_query_eval()  # {"accuracy": 1.0, "n_cases": 38, "failures": []}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SELF_QUERY_FILE = Path(__file__).resolve().parent / "data" / "self_query.jsonl"


def load_cases(path: Path = SELF_QUERY_FILE) -> list[dict[str, Any]]:
    cases = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            case = json.loads(line)
            missing = {"id", "authors", "request", "expect"} - set(case)
            if missing:
                raise ValueError(f"{path}:{number}: missing fields {sorted(missing)}")
            cases.append(case)
    return cases


def check_case(case: dict[str, Any]) -> list[str]:
    """What the rule-based self-query got wrong on one case ([] when all is right)."""
    from graph.names import resolve_author
    from graph.request_parsing import extract_filters

    filters = extract_filters(case["request"], case["authors"])
    problems = [
        f"{key}: expected {want!r}, got {filters.get(key)!r}"
        for key, want in case["expect"].items()
        if filters.get(key) != want
    ]
    note = resolve_author(case["request"], case["authors"]).note
    if bool(case.get("note")) != (note is not None):
        problems.append(f"note: expected {'one' if case.get('note') else 'none'}, got {note!r}")
    return problems


def run_self_query_eval(path: Path = SELF_QUERY_FILE) -> dict[str, Any]:
    cases = load_cases(path)
    failures = []
    for case in cases:
        problems = check_case(case)
        if problems:
            failures.append({"id": case["id"], "request": case["request"], "problems": problems})
    n = len(cases)
    return {"accuracy": round((n - len(failures)) / n, 4) if n else 0.0, "n_cases": n,
            "failures": failures}  # fmt: skip
