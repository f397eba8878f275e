"""Storage: one repository interface (`Repository`), SQLite by default."""

from .base import CacheAdapter, Record, Repository
from .sqlite import SQLiteRepository

__all__ = ["CacheAdapter", "Record", "Repository", "SQLiteRepository", "open_repository"]


def open_repository(path) -> Repository:
    """Open the repository at `path` (an SQLite file)."""
    return SQLiteRepository(path)
