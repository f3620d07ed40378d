"""Self-query as people write requests: names, possessives, lowercase, formats, notes."""

from __future__ import annotations

import pytest

from evals.self_query import check_case, load_cases, run_self_query_eval

CASES = load_cases()


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_self_query_case(case):
    assert check_case(case) == [], case["request"]


def test_self_query_eval_reports_accuracy_and_failures(tmp_path):
    bad = tmp_path / "cases.jsonl"
    bad.write_text(
        '{"id": "x", "authors": ["Ada Lovelace"], "request": "what would ada say", '
        '"expect": {"author": "Someone Else"}}\n'
    )
    report = run_self_query_eval(bad)
    assert report["accuracy"] == 0.0 and report["failures"][0]["id"] == "x"
    assert run_self_query_eval()["accuracy"] == 1.0
    (tmp_path / "broken.jsonl").write_text('{"id": "y"}\n')
    with pytest.raises(ValueError, match="broken.jsonl:1: missing fields"):
        load_cases(tmp_path / "broken.jsonl")


def test_ambiguous_name_note_names_the_candidates():
    from graph.names import resolve_author

    match = resolve_author("Paul's view on startups", ["Paul Graham", "Paul Iusztin"])
    assert match.author is None and match.candidates == ["Paul Graham", "Paul Iusztin"]
    assert "'paul' could be any of Paul Graham, Paul Iusztin" in match.note
    several = resolve_author("compare Paul and Maya", ["Paul Iusztin", "Maya Lindqvist"])
    assert several.author is None and "names several authors" in several.note
    assert resolve_author("Explain HNSW", ["Paul Iusztin"]).note is None
