"""What every store has: write transactions, connections to release, and the health probes.

Storage has three interfaces with one job each: the object store (nodespecs, flows, revisions, imports
and exports; storage/objects.py), the run store (runs, their events and node results; storage/runs.py)
and the result cache (storage/cache.py). `Repository` is all three, as one backend provides them over
one database; each user depends on the narrow one it needs.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod


class Store(ABC):
    """One database's transactions, connections and health, shared by the three store interfaces."""

    @abstractmethod
    def transaction(self) -> contextlib.AbstractContextManager:
        """A write transaction; nested use joins the outer one."""

    def close(self) -> None:
        """Release connections."""

    def probe_write(self) -> str | None:
        """Prove that a write goes through, within a fraction of a second: None when it did, a note
        when it could not be tried (busy); raises StorageUnavailable when it failed."""
        return None

    def free_bytes(self) -> int | None:
        """Free space on the storage's filesystem, or None when that has no meaning here."""
        return None
