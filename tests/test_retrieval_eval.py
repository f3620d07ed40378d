"""The retrieval eval sets and `evals.retrieval.run_retrieval_eval` (through the production
pipeline and the graph's retrieval stage)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def test_fixture_corpus_and_questions_are_consistent():
    from core.domain import Category
    from evals.retrieval import load_questions, score_ranking
    from evals.retrieval_corpus import load_corpus

    docs = load_corpus()
    questions = load_questions()
    assert len(docs) >= 40 and len(questions) >= 60
    keys = {d.key for d in docs}
    assert len(keys) == len(docs) and len({d.link for d in docs}) == len(docs)
    assert {d.category for d in docs} == {c.value for c in Category}
    assert len({d.author for d in docs}) >= 4
    assert len({q.id for q in questions}) == len(questions)
    for q in questions:
        assert q.sources and set(q.sources) <= keys, q.id
        assert set(q.filters) <= {"author", "category", "platform", "date_from", "date_to"}
    # Every document answers some question, except the distractors (d*), which exist only
    # to sit close to other documents' topics.
    answered = {k for q in questions for k in q.sources}
    assert {k for k in keys - answered if not k.startswith("d")} == set()
    assert len([k for k in keys if k.startswith("d")]) >= 10

    assert score_ranking(["a", "b", "c"], ["b"], k=5) == {"recall": 1.0, "rr": 0.5, "hit": 1.0}
    assert score_ranking(["a", "b"], ["b", "z"], k=1) == {"recall": 0.0, "rr": 0.0, "hit": 0.0}


def test_peps_request_set_is_well_formed():
    """The real-writing eval set (its corpus is not in the repository: checked for shape)."""
    from evals.retrieval import PEPS_REQUESTS_FILE, load_questions

    rows = [json.loads(line) for line in PEPS_REQUESTS_FILE.read_text().splitlines() if line]
    assert len(rows) >= 150
    assert {tuple(sorted(r)) for r in rows} == {
        ("author_named", "gold_documents", "gold_section", "id", "length", "request", "style")
    }
    questions = load_questions(PEPS_REQUESTS_FILE)
    assert len({q.id for q in questions}) == len(questions)
    assert len({s for q in questions for s in q.sources}) >= 90
    assert {r["style"] for r in rows} == {"write-post", "opinion", "explain", "question", "how"}
    assert sum(1 for q in questions if q.author_named) >= 50
    assert sum(1 for q in questions if q.section) >= 150


def test_scores_of_one_request():
    from evals.retrieval import Question, ndcg, score_request

    question = Question("x", "q", ["b"], section="Static methods")
    row = score_request(
        ["a", "b", "b", "c"], [set(), {"intro"}, {"static methods"}, set()], question
    )
    assert row["recall@1"] == 0.0 and row["recall@5"] == 1.0 and row["rr"] == 0.5
    assert row["section@1"] == 0.0 and row["section@5"] == 1.0
    assert row["ranked"] == ["a", "b", "c"]
    assert ndcg(["a", "b"], ["b"]) == pytest.approx(1 / 1.584962500721156)


@pytest.fixture(scope="module")
def eval_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture corpus stored once for this module's evals (`corpus_store` reuses a
    store whose files and features recipe are unchanged; the RAG eval test covers the
    temporary store of a call without `work_dir`)."""
    return tmp_path_factory.mktemp("eval-store")


@pytest.mark.slow
def test_run_retrieval_eval_default(data_dir, eval_store):
    from evals.retrieval import run_retrieval_eval
    from retrievers.variants import DEFAULT_VARIANT

    result = run_retrieval_eval(work_dir=eval_store)
    assert {"recall@5", "mrr", "ndcg@10", "section_recall@5", "n_questions", "variant",
            "latency_ms_p50", "rows"} <= set(result)  # fmt: skip
    assert result["n_questions"] >= 60
    assert result["variant"] == DEFAULT_VARIANT
    # Measured 0.95+ recall@5 / 0.9+ MRR for the default (benchmarks/retrieval_choice.py);
    # leave headroom for encoder numerics on other CPUs.
    assert result["recall@5"] >= 0.85, result
    assert result["mrr"] >= 0.75, result
    assert result["latency_ms_p50"] > 0
    # The eval worked in its own store: the test's DATA_DIR holds nothing.
    assert not (data_dir / "qdrant").exists() or not any((data_dir / "qdrant").iterdir())


@pytest.mark.slow
def test_folder_corpus_goes_through_the_ingest_path(data_dir, tmp_path):
    """A folder of per-author subfolders (real .rst PEP-style documents) is ingested with the
    authors from the documents' headers and scored on a request file of its own."""
    import shutil
    from pathlib import Path

    from evals.retrieval import run_retrieval_eval

    fixtures = Path(__file__).parent / "fixtures" / "rst"
    corpus = tmp_path / "corpus"
    for path in sorted(fixtures.glob("*.rst")):
        (corpus / path.stem).mkdir(parents=True)
        shutil.copy(path, corpus / path.stem / path.name)
    if len(list(corpus.iterdir())) < 2:
        pytest.skip("needs two .rst fixtures")
    stems = sorted(p.stem for p in fixtures.glob("*.rst"))
    requests = tmp_path / "requests.jsonl"
    asks = {"pep-9001": "how should code blocks be chunked?",
            "pep-9002": "Tomás, how long should dough rest in the fridge?"}  # fmt: skip
    requests.write_text("\n".join(json.dumps({"id": stem, "request": asks[stem],
                                              "gold_documents": [stem]}) for stem in stems))  # fmt: skip
    result = run_retrieval_eval(corpus=corpus, questions_file=requests, work_dir=tmp_path / "w")
    assert result["n_questions"] == 2 and result["recall@1"] == 1.0, result["rows"]
    by_id = {row["id"]: row for row in result["rows"]}
    assert by_id["pep-9002"]["filters"] == {"author": "Tomás Okafor"}  # from the .rst header
    # Stored once: a second run reuses the store (its marker is unchanged).
    marker = (tmp_path / "w" / "stored.json").stat().st_mtime_ns
    run_retrieval_eval(corpus=corpus, questions_file=requests, work_dir=tmp_path / "w")
    assert (tmp_path / "w" / "stored.json").stat().st_mtime_ns == marker


def test_known_item_requests_are_unique_to_their_document():
    """The known-item builder: every request's gold is the only document holding the
    sentence, code name or person it was made from, and no request copies a sentence."""
    from evals.known_item import SourceDocument, build_known_items, content_words

    docs = [
        SourceDocument("a", "ann", "Intro\n=====\n\nThe `os.fspath` hook lets Brandt Bucher "
                       "convert path objects before any legacy string API sees them at all.\n\n"
                       "Shared words appear in both documents here, repeated on purpose."),
        SourceDocument("b", "bob", "We keep PyMem_SetupDebugHooks for allocators because "
                       "release builds must still detect buffer overflows early and loudly.\n\n"
                       "Shared words appear in both documents here, repeated on purpose."),
    ]  # fmt: skip
    items = build_known_items(docs)
    by_kind = {(item.gold, item.kind): item.request for item in items}
    assert "os.fspath" in by_kind[("a", "identifier")]
    assert "PyMem_SetupDebugHooks" in by_kind[("b", "identifier")]
    assert "Brandt Bucher" in by_kind[("a", "name")]
    phrase = by_kind[("b", "phrase")]
    # Every other content word of the one sentence unique to b, never the shared one.
    sentence = "release builds must still detect buffer overflows early and loudly"
    assert phrase.split() == [w.lower() for w in content_words(
        "We keep PyMem_SetupDebugHooks for allocators because " + sentence + ".")][::2]  # fmt: skip
    assert not any("shared" in request.lower() for request in by_kind.values())


def test_request_shape_sets_the_lexical_weight():
    from retrievers.variants import (
        SPARSE_WEIGHT_CODE,
        SPARSE_WEIGHT_PROSE,
        SPARSE_WEIGHT_TERMS,
        sparse_weight,
    )

    assert sparse_weight("where do I explain os.fspath?") == SPARSE_WEIGHT_CODE
    assert sparse_weight("PyMem_SetupDebugHooks") == SPARSE_WEIGHT_CODE
    assert sparse_weight("what did Neil Brown point out") == SPARSE_WEIGHT_TERMS
    assert sparse_weight("close_fds inheritable descriptors child") == SPARSE_WEIGHT_CODE
    assert sparse_weight("inheritable descriptors child process spawn") == SPARSE_WEIGHT_TERMS
    assert sparse_weight("Why would a twin need to respect the author?") == SPARSE_WEIGHT_PROSE
    assert SPARSE_WEIGHT_PROSE < SPARSE_WEIGHT_TERMS < SPARSE_WEIGHT_CODE


def test_sparse_vectors_carry_whole_code_names():
    """A code name is a term of its own beside its subwords: two names sharing every
    subword ("fs", "##path") still differ."""
    from retrievers.encoders import WHOLE_TERM_BASE, sparse_encode, sparse_encode_query

    doc = sparse_encode(["call os.fspath on it"])[0]
    query = sparse_encode_query("os.fspath")
    other = sparse_encode_query("fs path")
    whole = {i for i in query.indices if i >= WHOLE_TERM_BASE}
    assert whole and whole <= set(doc.indices)
    assert not whole & set(other.indices)


@pytest.mark.slow
def test_known_item_requests_find_their_document(data_dir, tmp_path, eval_store):
    """Known-item requests built from the fixture corpus: the default recipe finds the one
    document far more often than dense retrieval alone (on the PEPs: R@1 0.968 vs 0.404)."""
    from evals.known_item import SourceDocument, build_known_items, write_jsonl
    from evals.retrieval import run_retrieval_eval
    from evals.retrieval_corpus import load_corpus

    items = build_known_items([SourceDocument(d.key, d.author, d.content) for d in load_corpus()])
    assert len(items) >= 60 and {"phrase", "identifier"} <= {item.kind for item in items}
    requests = tmp_path / "known.jsonl"
    requests.write_text(write_jsonl(items))
    store = eval_store
    default = run_retrieval_eval(questions_file=requests, work_dir=store)
    dense = run_retrieval_eval("dense", questions_file=requests, work_dir=store)
    topical = run_retrieval_eval(work_dir=store)
    print({name: (r["recall@1"], r["recall@5"]) for name, r in
           {"default": default, "dense": dense, "topical": topical}.items()})  # fmt: skip
    assert default["recall@5"] >= 0.9, default["misses"]
    assert default["recall@1"] > dense["recall@1"] + 0.1
    assert topical["recall@5"] >= 0.85, topical["misses"]
