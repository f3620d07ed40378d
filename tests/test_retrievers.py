"""TwinRetriever: filters, multi-collection search, dedupe, rerankers, public entry points."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

DOCS = [
    dict(
        key="hnsw",
        author="Maya Lindqvist",
        category="articles",
        platform="medium",
        title="Tuning HNSW",
        published_at="2024-02-14T00:00:00+00:00",
        content=(
            "HNSW graph indexes in Qdrant have two build parameters: m, the number of edges "
            "per node, and ef_construct. Raising m improves recall but costs memory."
        ),
    ),
    dict(
        key="sourdough",
        author="Maya Lindqvist",
        category="posts",
        platform="linkedin",
        title="Sourdough",
        published_at="2023-05-01T00:00:00+00:00",
        content="My sourdough starter loves 78% hydration and a twelve hour cold retard in the fridge.",
    ),
    dict(
        key="asyncio",
        author="Tomás Okafor",
        category="articles",
        platform="substack",
        title="asyncio event loop",
        published_at="2023-11-28T00:00:00+00:00",
        content=(
            "A blocking call such as time.sleep inside a coroutine freezes the asyncio event "
            "loop; wrap synchronous work in asyncio.to_thread."
        ),
    ),
    dict(
        key="marathon",
        author="Tomás Okafor",
        category="posts",
        platform="linkedin",
        title="Marathon",
        published_at="2024-04-14T00:00:00+00:00",
        content="I ran the Rotterdam marathon in 3:41 after sixteen weeks of training.",
    ),
    dict(
        key="bucket",
        author="Tomás Okafor",
        category="repositories",
        platform="github",
        title="token_bucket.py",
        published_at=None,
        content=(
            "# file: ratelimit/token_bucket.py\nclass TokenBucket:\n    def try_acquire(self, "
            "tokens=1):\n        self._refill()\n        return self._tokens >= tokens\n"
        ),
    ),
    dict(
        key="backoff",
        author="Jonas Weber",
        category="repositories",
        platform="github",
        title="retry.py",
        published_at="2024-02-02T00:00:00+00:00",
        content=(
            "# file: resilience/retry.py\ndef retry(attempts=5, base_delay=0.2):\n    "
            "# exponential backoff with full jitter\n    time.sleep(random.uniform(0, "
            "base_delay * 2 ** attempt))\n"
        ),
    ),
    dict(
        key="hnsw-copy",  # same text as "hnsw", another document (a cross-post)
        author="Maya Lindqvist",
        category="articles",
        platform="substack",
        title="Tuning HNSW (cross-post)",
        published_at="2024-02-15T00:00:00+00:00",
        content=(
            "HNSW graph indexes in Qdrant have two build parameters:  m, the number of edges "
            "per node, and ef_construct. Raising m improves recall but costs memory."
        ),
    ),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """DOCS stored once for this module through the production pipeline in a folder of
    its own (the client is passed as `client=`)."""
    from support.corpus import store_corpus

    from core.warehouse.embedded import EmbeddedWarehouse
    from retrievers.store import open_embedded_store

    root = tmp_path_factory.mktemp("store")
    client = open_embedded_store(root / "qdrant")
    with EmbeddedWarehouse(root / "warehouse") as wh:
        assert store_corpus(DOCS, warehouse=wh, client=client) == len(DOCS)
    counts = {c.name: client.count(c.name).count for c in client.get_collections().collections
              if c.name.startswith("embedded_")}  # fmt: skip
    assert counts == {"embedded_articles": 3, "embedded_posts": 2, "embedded_repositories": 2}
    yield client
    client.close()


def _keys(docs):
    return [d.metadata["link"].rsplit("/", 1)[-1] for d in docs]


def search(store, query, **config):
    from retrievers import get_retriever

    return get_retriever(client=store, **config).invoke(query)


def test_get_retriever_is_a_base_retriever_on_the_default_store(data_dir):
    from langchain_core.retrievers import BaseRetriever
    from support.corpus import store_corpus

    from retrievers import TwinRetriever, get_retriever

    store_corpus(DOCS)
    retriever = get_retriever(k=2, max_new_tokens=8, author=None)  # other graph keys: ignored
    assert isinstance(retriever, BaseRetriever) and isinstance(retriever, TwinRetriever)
    docs = retriever.invoke("how do I tune HNSW edges per node?")
    assert 1 <= len(docs) <= 2
    top = docs[0]
    assert top.metadata["title"].startswith("Tuning HNSW")
    for field in (
        "document_id",
        "author_id",
        "author_full_name",
        "platform",
        "category",
        "link",
        "title",
        "chunk_index",
        "published_at",
        "score",
        "chunk_id",
        "collection",
    ):
        assert field in top.metadata, field
    assert top.metadata["collection"] == "embedded_articles"
    assert top.id == top.metadata["chunk_id"]
    assert "HNSW" in top.page_content


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("what hydration does the sourdough starter like", "sourdough"),
        ("event loop frozen by a blocking call", "asyncio"),
        ("TokenBucket try_acquire", "bucket"),
        ("exponential backoff with jitter", "backoff"),
        ("how long did the marathon take", "marathon"),
    ],
)
def test_known_questions_find_their_document(store, query, expected):
    assert _keys(search(store, query, k=3))[0] == expected


def test_author_filter_is_case_insensitive_and_accepts_ids(store):
    from core.domain import author_id_for

    for author in ("tomás okafor", "  Tomás   Okafor ", author_id_for("Tomás Okafor")):
        docs = search(store, "HNSW graph index parameters", k=5, filters={"author": author})
        assert docs and {d.metadata["author_full_name"] for d in docs} == {"Tomás Okafor"}
    top_level = search(store, "sourdough", k=5, author="Jonas Weber")
    assert {d.metadata["author_full_name"] for d in top_level} == {"Jonas Weber"}
    assert search(store, "sourdough", k=5, author="Nobody Known") == []


def test_category_filter_selects_collections(store):
    docs = search(store, "HNSW graph index", k=5, filters={"category": "posts"})
    assert docs and {d.metadata["collection"] for d in docs} == {"embedded_posts"}
    assert {d.metadata["category"] for d in docs} == {"posts"}
    # `collections` accepts categories or names; category narrows it further.
    docs = search(store, "retry", k=5, collections=["repositories", "embedded_posts"])
    assert {d.metadata["collection"] for d in docs} <= {"embedded_repositories", "embedded_posts"}
    assert search(store, "retry", k=5, collections=["articles"], category="posts") == []


def test_platform_filter(store):
    docs = search(store, "anything about performance", k=5, platform="LinkedIn")
    assert docs and {d.metadata["platform"] for d in docs} == {"linkedin"}


def test_date_filters(store):
    docs = search(store, "HNSW", k=10, filters={"date_from": "2024-01-01", "date_to": "2024-02-14"})
    assert set(_keys(docs)) == {"hnsw", "backoff"}  # date_to includes its whole day
    docs = search(store, "HNSW", k=10, date_from="2024")
    assert {d.metadata["published_at"][:4] for d in docs} == {"2024"}
    docs = search(store, "HNSW", k=10, date_to="2023")
    assert set(_keys(docs)) == {"sourdough", "asyncio"}  # undated chunks never match a range


def test_invalid_filters_fail_clearly():
    from retrievers import InvalidFilter, get_retriever

    with pytest.raises(InvalidFilter, match="unknown category"):
        get_retriever(category="podcasts")
    with pytest.raises(InvalidFilter, match="ISO 8601"):
        get_retriever(filters={"date_from": "last tuesday"})
    with pytest.raises(ValueError, match="unknown reranker"):
        get_retriever(reranker="magic").invoke("x")


def test_multi_collection_search_merges_all_three(store):
    docs = search(store, "code, posts and articles about performance", k=7, fetch_k=7)
    assert {d.metadata["collection"] for d in docs} == {
        "embedded_articles",
        "embedded_posts",
        "embedded_repositories",
    }
    scores = [d.metadata["score"] for d in docs]
    assert scores == sorted(scores, reverse=True)


def test_near_identical_chunks_are_deduplicated(store):
    docs = search(store, "HNSW build parameters m and ef_construct", k=5)
    hnsw = [k for k in _keys(docs) if k.startswith("hnsw")]
    assert len(hnsw) == 1, _keys(docs)
    assert len({d.metadata["chunk_id"] for d in docs}) == len(docs)


def test_dedupe_documents_by_id_and_content():
    from langchain_core.documents import Document

    from retrievers.ranking import dedupe_documents

    text = (
        "The quick brown fox jumps over the lazy dog near the river bank today, while the "
        "farmer watches from the old stone bridge and counts the sheep grazing in the green "
        "meadow behind the mill"
    )
    a = Document(text + ".", metadata={"chunk_id": "1"})
    same_id = Document("different text entirely", metadata={"chunk_id": "1"})
    spacing = Document("  " + text.replace(" ", "  ") + ". ", metadata={"chunk_id": "2"})
    near = Document(text + "!", metadata={"chunk_id": "3"})
    other = Document("Something else about vector databases.", metadata={"chunk_id": "4"})
    assert [
        d.metadata["chunk_id"] for d in dedupe_documents([a, same_id, spacing, near, other])
    ] == [
        "1",
        "4",
    ]


def test_search_many_and_rerank(store):
    from retrievers import rerank, search_many
    from retrievers.search import SearchConfig

    config = {"k": 3, "filters": {"author": None, "category": None}}
    docs = search_many(
        ["how do I limit the request rate", "token bucket rate limiter", "TokenBucket"],
        config,
        client=store,
    )
    assert docs and _keys(docs)[0] == "bucket" and len(docs) <= 3
    # rerank: candidates from several queries, judged against the user's question.
    pool = search_many(["sourdough"], {"k": 7}, client=store) + search_many(
        ["marathon training"], {"k": 7}, client=store
    )
    top = rerank("how fast was the marathon", pool, k=2)
    assert len(top) == 2 and _keys(top)[0] == "marathon"
    assert len({d.metadata["chunk_id"] for d in top}) == 2
    assert rerank("anything", [], k=3) == []
    assert SearchConfig.from_config({"configurable": {"k": 2}}).k == 2


def test_max_per_document_spreads_the_top_k(store):
    from retrievers.ranking import limit_per_document

    docs = search(store, "HNSW graph index edges per node", k=3, reranker="dense")
    spread = search(store, "HNSW graph index edges per node", k=3, reranker="dense",
                    max_per_document=1)  # fmt: skip
    assert len({d.metadata["document_id"] for d in spread}) == len(spread)
    assert _keys(spread)[0] == _keys(docs)[0]
    pool = docs * 2  # the same documents twice: at most one of each is kept
    assert len(limit_per_document(pool, 10, 1)) == len({d.metadata["document_id"] for d in docs})


def test_expand_n_searches_llm_phrasings_too(store, caplog):
    """`get_retriever(expand_n=…)` asks the default LLM for phrasings (bounded), and a
    failing LLM leaves the original query's results."""
    from retrievers import get_retriever
    from retrievers.expansion import expand_query, parse_expansions

    assert parse_expansions("1. a b c d\n- a b c d\nQueries: other one\nok", "x", 5) == [
        "a b c d", "other one"]  # fmt: skip
    phrasings = expand_query("how to tune HNSW graph edges in Qdrant", 2)
    assert len(phrasings) <= 2 and all(isinstance(p, str) and p for p in phrasings)
    docs = get_retriever(client=store, k=2, expand_n=2).invoke("tuning HNSW edges per node")
    assert _keys(docs)[0] in ("hnsw", "hnsw-copy")
    broken = get_retriever(client=store, k=2, expand_n=2, llm_model="offline:no-such-model")
    assert _keys(broken.invoke("tuning HNSW edges per node"))[0] in ("hnsw", "hnsw-copy")
    assert "query expansion failed" in caplog.text


async def test_async_invoke_searches_in_a_thread(store):
    from retrievers import get_retriever

    docs = await get_retriever(client=store, k=2).ainvoke("sourdough hydration")
    assert _keys(docs)[0] == "sourdough"


@pytest.mark.parametrize(
    "variant", ["dense", "sparse", "hybrid-weighted", "qdrant-rrf", "hybrid+maxsim"]
)
def test_every_variant_runs(store, variant):
    docs = search(store, "asyncio event loop blocking", k=3, reranker=variant)
    assert docs and _keys(docs)[0] == "asyncio"


def test_empty_store_returns_nothing(data_dir):
    from retrievers import get_retriever

    assert get_retriever().invoke("anything") == []


def test_cross_encoder_path_when_reranker_model_is_set(store, tmp_path, monkeypatch):
    """A tiny locally built CrossEncoder (untrained head: junk scores) runs the code path."""
    from sentence_transformers import CrossEncoder

    from core.models import embedding_model_path
    from core.settings import reset_settings
    from retrievers import scoring as rerank_mod
    from retrievers.variants import resolve_variant

    model_dir = tmp_path / "tiny-cross-encoder"
    CrossEncoder(embedding_model_path(), num_labels=1, device="cpu").save(str(model_dir))
    monkeypatch.setenv("RERANKER_MODEL", str(model_dir))
    reset_settings()
    rerank_mod.get_cross_encoder.cache_clear()
    try:
        assert resolve_variant("auto")[0] == "cross-encoder"
        docs = search(store, "sourdough hydration", k=3)
        assert len(docs) == 3
        assert all(isinstance(d.metadata["score"], float) for d in docs)
        search(store, "marathon", k=2)
        info = rerank_mod.get_cross_encoder.cache_info()
        assert info.currsize == 1 and info.hits >= 1  # loaded once, reused
    finally:
        monkeypatch.delenv("RERANKER_MODEL")
        reset_settings()
        rerank_mod.get_cross_encoder.cache_clear()
    assert resolve_variant("auto")[0] != "cross-encoder"


def test_importing_retrievers_loads_no_models_or_clients():
    code = (
        "import sys, retrievers, retrievers.store, retrievers.filters;"
        "heavy = [m for m in ('torch', 'sentence_transformers', 'langchain_core', 'qdrant_client')"
        " if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
