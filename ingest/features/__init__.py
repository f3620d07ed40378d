"""The feature pipeline: clean → chunk → embed → Qdrant, kept in sync with the warehouse."""

from ingest.features.chunking import chunk_document
from ingest.features.cleaning import clean_document
from ingest.features.store_state import delete_document_points, vector_counts
from ingest.features.sync import sync
from ingest.features.sync_report import SyncReport

__all__ = [
    "SyncReport",
    "chunk_document",
    "clean_document",
    "delete_document_points",
    "sync",
    "vector_counts",
]
