"""The whole repository interface: the object store, the run store and the result cache in one.

A backend such as SQLite implements all three over one database (storage/store.py says why there are
three); code that needs only one of them asks for that one.
"""

from __future__ import annotations

from .cache import CacheAdapter, ResultCache
from .objects import KINDS, ObjectStore, Record, UnreadableDocument
from .runs import RunStore
from .store import Store

__all__ = ["KINDS", "CacheAdapter", "ObjectStore", "Record", "Repository", "ResultCache", "RunStore", "Store",
           "UnreadableDocument"]


class Repository(ObjectStore, RunStore, ResultCache):
    """Nodespecs, flows, runs, run events and cached node results in one backend."""
