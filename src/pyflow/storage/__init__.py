"""Storage: the object store, the run store and the result cache (one `Repository`), SQLite by default."""

from .base import CacheAdapter, ObjectStore, Record, Repository, ResultCache, RunStore, Store, UnreadableDocument
from .sqlite import SQLiteRepository

__all__ = ["CacheAdapter", "ObjectStore", "Record", "Repository", "ResultCache", "RunStore", "SQLiteRepository",
           "Store", "UnreadableDocument", "open_repository"]


def open_repository(path) -> Repository:
    """Open the repository at `path` (an SQLite file)."""
    return SQLiteRepository(path)
