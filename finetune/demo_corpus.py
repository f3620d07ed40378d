"""A small, fixed corpus of one author's writing (tests, benchmark, demos without ingest).

`seed_cleaned(client, docs)` writes `CleanedDocument` payloads into the cleaned_*
collections exactly as the ingest pipeline does (payload-only points, id = document_id).
The text is hand-written in one recognisable voice: short declarative sentences, Swedish
asides, "Here is the thing", and posts that end with "Ship small. Ship often."
"""

from __future__ import annotations

from typing import Any

from core.domain import (
    CLEANED_COLLECTIONS,
    Category,
    CleanedDocument,
    author_id_for,
    content_hash,
    document_id_for_link,
)

AUTHOR = "Maya Lindqvist"

TOPICS: list[tuple[str, list[str]]] = [
    (
        "Why your data pipeline needs boring retries",
        [
            "Here is the thing about pipelines: they fail at three in the morning, never at noon.",
            "I learned this in Uppsala, debugging a crawler while the coffee went cold.",
            "A retry with jitter is not clever engineering, it is basic hygiene.",
            "Most outages I have seen were not exotic, they were a timeout nobody handled.",
            "So I wrap every network call in a small, boring function that knows when to give up.",
            "Three attempts, exponential backoff, and a log line that a tired human can read.",
            "The fancy orchestration tool matters less than the discipline of idempotent steps.",
            "If you can rerun a step without fear, you can sleep through the night.",
            "Write the id before you write the data, and make every upsert safe to repeat.",
            "Boring code is kind code, because the person on call is usually future you.",
        ],
    ),
    (
        "Vector search is a ranking problem, not a database problem",
        [
            "Here is the thing about vector search: people buy a database when they need a ranker.",
            "The embedding gets you candidates, and that is all it promises.",
            "I keep telling my team in Stockholm that recall is cheap and precision is earned.",
            "Fetch fifty, rerank to five, and measure both numbers every single week.",
            "A filter on author or date often beats a bigger model, and it costs nothing.",
            "Hybrid search with a sparse vector rescues the rare keyword that dense vectors blur.",
            "Chunk along headings and paragraphs, because meaning lives in structure.",
            "When the answer is wrong, look at the retrieved context before you blame the model.",
            "Nine times out of ten the right passage was never in the top ten.",
            "Evaluation sets with known sources are the only honest way to tune this.",
        ],
    ),
    (
        "Fine-tuning a small model on your own voice",
        [
            "Here is the thing about fine-tuning: the data matters more than the method.",
            "I spent a rainy weekend in Gothenburg cleaning my own posts before training anything.",
            "Every pair needs an answer written by you and a request that answers to it.",
            "LoRA adapters are small enough to version like code, so I treat them that way.",
            "Keep a held-out set by document, never by passage, or you will fool yourself.",
            "Perplexity on your own unseen text is a blunt metric, but it is an honest one.",
            "A candidate model earns its promotion through a gate, not through a good feeling.",
            "Roll back in one command, because a bad model in production is just another bug.",
            "Quantize for the CPU you actually have, and measure tokens per second yourself.",
            "Small models trained on good data surprise people, and they run on a laptop.",
        ],
    ),
    (
        "What fika taught me about code review",
        [
            "Here is the thing about fika: nobody brings their laptop to the coffee table.",
            "Code review works the same way when you stop treating it as a gate.",
            "I ask one question per review, and I try to make it a kind one.",
            "Small pull requests get real attention, and big ones get a rubber stamp.",
            "A review that arrives after two days is feedback on a branch that no longer exists.",
            "We review before lunch in my team, so nothing waits overnight.",
            "Praise what is clear, question what is clever, and leave style to the formatter.",
            "Cinnamon buns help, but respect for the author of the change helps more.",
            "The goal is shared understanding of the code, not a perfect diff.",
            "Teams that review kindly ship faster, and I have the cycle times to prove it.",
        ],
    ),
    (
        "Measuring latency like you mean it",
        [
            "Here is the thing about latency: the average lies to you every day.",
            "Report the median and the ninety-fifth percentile, and plot them over time.",
            "I once chased a slow endpoint in Malmö for a week, and it was DNS.",
            "Warm up the process before you measure, because cold starts are a separate story.",
            "Pin the thread count, write down the machine, and repeat the run three times.",
            "A benchmark without the hardware next to it is a rumour, not a number.",
            "Streaming the first token early matters more to users than the total time.",
            "Measure the stage, not just the request, or you will optimise the wrong thing.",
            "Budgets help: three hundred milliseconds for retrieval, and then we talk about generation.",
            "Write the benchmark once, keep it in the repository, and run it before every release.",
        ],
    ),
    (
        "Writing documentation people actually read",
        [
            "Here is the thing about documentation: nobody reads the page you are proudest of.",
            "People read the first command, copy it, and come back only when it fails.",
            "So the first command must work on a clean machine, every single time.",
            "I test my README in a fresh container before I call a release done.",
            "Explain why before how, in two sentences, and then show the code.",
            "Every error message is documentation, so write it for a tired person at midnight.",
            "Name the fix in the error, not just the failure.",
            "Diagrams age badly, but a table of public contracts stays useful for years.",
            "Delete outdated pages with joy, because a wrong page is worse than no page.",
            "Good docs feel like a colleague from Västerås who answers before you finish asking.",
        ],
    ),
]


def _section(sentences: list[str], start: int, count: int) -> str:
    return " ".join(sentences[(start + i) % len(sentences)] for i in range(count))


def article_text(title: str, sentences: list[str]) -> str:
    parts = [f"# {title}"]
    headings = ("The problem", "What I do instead", "What to take away")
    for i, heading in enumerate(headings):
        parts.append(f"## {heading}")
        parts.append(_section(sentences, i * 3, 4))
        parts.append(_section(sentences, i * 3 + 4, 3))
    return "\n\n".join(parts)


def post_text(title: str, sentences: list[str], variant: int) -> str:
    body = _section(sentences, variant * 2 + 1, 4)
    return f"{sentences[0]}\n\n{body}\n\nShip small. Ship often. #engineering #{title.split()[0].lower()}"


REPO_FILES = {
    "retry.py": '''"""Boring retries: the kind you can trust at three in the morning."""

import random
import time


def with_retries(call, attempts=3, base_delay=0.5):
    """Call `call()` up to `attempts` times with exponential backoff and jitter."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except TimeoutError:
            if attempt == attempts:
                raise
            time.sleep(base_delay * 2 ** (attempt - 1) * (1 + random.random() / 10))
''',
    "latency.py": '''"""Latency percentiles, because the average lies."""


def percentile(values, q):
    """The q-th percentile (0-100) of `values` by nearest rank."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    rank = max(1, round(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summary(values):
    return {"p50": percentile(values, 50), "p95": percentile(values, 95)}
''',
}


def corpus(author: str = AUTHOR, n_topics: int | None = None) -> list[CleanedDocument]:
    """Articles (medium), posts (linkedin) and one repository, deterministic ids."""
    author_id = author_id_for(author)
    docs: list[CleanedDocument] = []
    for i, (title, sentences) in enumerate(TOPICS[: n_topics or len(TOPICS)]):
        link = f"https://medium.com/@maya/{i}-{title.lower().replace(' ', '-')[:40]}"
        text = article_text(title, sentences)
        docs.append(
            CleanedDocument(
                document_id=document_id_for_link("medium", link), author_id=author_id,
                author_full_name=author, platform="medium", category=Category.ARTICLES,
                link=link, title=title, content=text, content_hash=content_hash(text),
            )
        )  # fmt: skip
        for variant in range(2):
            link = f"https://www.linkedin.com/feed/update/urn:li:activity:{1000 + i * 10 + variant}"
            text = post_text(title, sentences, variant)
            docs.append(
                CleanedDocument(
                    document_id=document_id_for_link("linkedin", link), author_id=author_id,
                    author_full_name=author, platform="linkedin", category=Category.POSTS,
                    link=link, title="", content=text, content_hash=content_hash(text),
                )
            )  # fmt: skip
    repo = "\n\n".join(f"# file: {path}\n{body}" for path, body in REPO_FILES.items())
    link = "https://github.com/maya/boring-tools"
    docs.append(
        CleanedDocument(
            document_id=document_id_for_link("github", link), author_id=author_id,
            author_full_name=author, platform="github", category=Category.REPOSITORIES,
            link=link, title="boring-tools", content=repo, content_hash=content_hash(repo),
        )
    )  # fmt: skip
    return docs


def seed_cleaned(client: Any, docs: list[CleanedDocument], dimension: int = 384) -> None:
    """Upsert payload-only points into cleaned_* (creating the collections if needed)."""
    from qdrant_client import models

    from retrievers.store import ensure_collections

    ensure_collections(client, dimension)
    by_collection: dict[str, list[Any]] = {}
    for doc in docs:
        payload = doc.model_dump(mode="json")
        by_collection.setdefault(CLEANED_COLLECTIONS[Category(doc.category)], []).append(
            models.PointStruct(id=doc.document_id, vector={}, payload=payload)
        )
    for collection, points in by_collection.items():
        client.upsert(collection, points=points)
