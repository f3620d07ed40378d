"""Category-specific chunking with token budgets measured by the embedding model's tokenizer.

- Articles (budget 200 wordpieces, overlap up to 32) and posts (budget 128, overlap up to 16):
  text is cut along headings, then paragraphs, then lines, then sentences; a piece that is
  still too long is cut at token boundaries. Neighbouring chunks of one section share their
  last sentences/paragraphs (the overlap) so a thought cut in two is still found whole.
- Repositories (budget 200, no overlap): each file is cut along its structure — Python at
  top-level `def`/`class` (via `ast`, line scanning when the file does not parse), other
  languages at blank lines outside braces — and blocks are packed up to the budget. Every
  code chunk starts with its `# file: <path>` line and never spans two files.

MiniLM reads at most 256 wordpieces including [CLS]/[SEP]; budgets are clamped below that.
Chunk ids are `core.domain.chunk_id_for(document_id, index, text)`.

This module picks the chunker of a document's category and turns its pieces into `Chunk`s;
the cutting lives in `prose_chunking` and `code_chunking`, on top of `packing` (units into
budget-sized chunks) and `tokens` (the tokenizer that measures them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from core.domain import Category, Chunk, CleanedDocument, chunk_id_for
from ingest.features.cleaning import split_repository
from ingest.features.code_chunking import chunk_code
from ingest.features.prose_chunking import chunk_text_sections
from ingest.features.tokens import Tokenizer, max_budget

# Article budget and overlap are settings (CHUNK_TOKENS, CHUNK_OVERLAP); these are the
# defaults tests refer to.
ARTICLE_BUDGET, ARTICLE_OVERLAP = 200, 32
POST_BUDGET, POST_OVERLAP = 128, 16
CODE_BUDGET = 200


def _make_chunks(
    doc: CleanedDocument, texts: list[str], sections: Sequence[str] | None = None
) -> list[Chunk]:
    sections = sections or [""] * len(texts)
    return [
        Chunk(
            id=chunk_id_for(doc.document_id, i, text),
            document_id=doc.document_id,
            author_id=doc.author_id,
            author_full_name=doc.author_full_name,
            platform=doc.platform,
            category=doc.category,
            link=doc.link,
            title=doc.title,
            chunk_index=i,
            content=text,
            section=section,
            published_at=doc.published_at,
        )
        for i, (text, section) in enumerate(zip(texts, sections, strict=True))
    ]


def _clamp(budget: int, tokenizer: Tokenizer | None) -> int:
    if tokenizer is not None:
        limit = getattr(tokenizer, "model_max_length", 0) or 0
        return min(budget, limit - 2) if 0 < limit < 100_000 else budget
    return min(budget, max_budget())


def _prose_chunks(
    doc: CleanedDocument, budget: int, overlap: int, tokenizer: Tokenizer | None
) -> list[Chunk]:
    pairs = chunk_text_sections(doc.content, _clamp(budget, tokenizer), overlap, tokenizer)
    return _make_chunks(doc, [text for text, _ in pairs], [section for _, section in pairs])


def chunk_article(doc: CleanedDocument, tokenizer: Tokenizer | None = None) -> list[Chunk]:
    from core.settings import get_settings

    settings = get_settings()
    return _prose_chunks(doc, settings.CHUNK_TOKENS, settings.CHUNK_OVERLAP, tokenizer)


def chunk_post(doc: CleanedDocument, tokenizer: Tokenizer | None = None) -> list[Chunk]:
    return _prose_chunks(doc, POST_BUDGET, POST_OVERLAP, tokenizer)


def chunk_repository(doc: CleanedDocument, tokenizer: Tokenizer | None = None) -> list[Chunk]:
    budget = _clamp(CODE_BUDGET, tokenizer)
    return _make_chunks(doc, chunk_code(split_repository(doc.content), budget, tokenizer))


CHUNKERS: dict[Category, Callable[..., list[Chunk]]] = {
    Category.ARTICLES: chunk_article,
    Category.POSTS: chunk_post,
    Category.REPOSITORIES: chunk_repository,
}


def chunk_document(doc: CleanedDocument, tokenizer: Tokenizer | None = None) -> list[Chunk]:
    """Chunk one cleaned document with the chunker of its category."""
    return CHUNKERS[Category(doc.category)](doc, tokenizer)
