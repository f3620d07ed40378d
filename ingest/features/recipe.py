"""The features recipe: what text a chunk is embedded as, and the key that stamps it.

The key is stored on each document's commit marker; a document whose marker carries another
key (new recipe, chunk settings or embedding model) is re-embedded by the next sync. Sync
appends an article's or post's chrome fingerprint (`boilerplate.CorpusChrome`) to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.domain import Chunk

if TYPE_CHECKING:
    from core.domain import CleanedDocument

# Bumped when cleaning, chunking or what is embedded changes in a way that needs re-embedding
# (3: more generic chrome patterns; articles and posts lose their author's corpus chrome;
# 4: sparse vectors carry whole words and code names beside the subwords).
FEATURES_RECIPE = 4


def features_key() -> str:
    """What the stored features were made with: recipe, chunk settings, embedding model.
    A document whose commit marker carries another key is re-embedded by the next sync."""
    from core.settings import get_settings

    s = get_settings()
    return (
        f"{FEATURES_RECIPE}|{s.CHUNK_TOKENS}/{s.CHUNK_OVERLAP}|"
        f"{'context' if s.EMBED_CHUNK_CONTEXT else 'plain'}|{s.EMBEDDING_MODEL}"
    )


def embedding_input(chunk: Chunk, with_context: bool) -> str:
    """The text a chunk is embedded as: with its title and section headings in front, so a
    passage deep in a long document still carries what the document and section are about."""
    if not with_context:
        return chunk.content
    heading = " > ".join(part for part in (chunk.title.strip(), chunk.section.strip()) if part)
    return f"{heading}\n\n{chunk.content}" if heading else chunk.content


def cleaned_payload(doc: CleanedDocument, features: str = "") -> dict[str, Any]:
    """The `cleaned_*` payload: the CleanedDocument fields (datetimes as ISO strings) and
    the features key its chunks were made with."""
    return {**doc.model_dump(mode="json"), "features": features}
