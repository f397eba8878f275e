"""Storage: one repository interface (`Repository`), SQLite by default."""

from .base import CacheAdapter, Record, Repository, UnreadableDocument
from .sqlite import SQLiteRepository

__all__ = ["CacheAdapter", "Record", "Repository", "SQLiteRepository", "UnreadableDocument", "open_repository"]


def open_repository(path) -> Repository:
    """Open the repository at `path` (an SQLite file)."""
    return SQLiteRepository(path)
