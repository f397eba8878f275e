"""The result cache: node results by cache key, bounded in entries and bytes, and the engine's view of it."""

from __future__ import annotations

import logging
from abc import abstractmethod
from typing import Callable

from .store import Store

log = logging.getLogger(__name__)


class ResultCache(Store):
    """Cached node results, kept by recent use."""

    @abstractmethod
    def cache_get_many(self, keys: list[str]) -> dict[str, dict]: ...

    @abstractmethod
    def cache_put(self, key: str, record: dict, max_bytes: int | None = None) -> int:
        """Store a result; answers its size in bytes, or 0 when it is larger than `max_bytes` and was
        not stored."""

    @abstractmethod
    def cache_prune(self, keep: int, max_bytes: int | None = None) -> int:
        """Keep the `keep` most recently used cached results, and of those only as many of the most
        recently used as fit in `max_bytes`; returns how many were dropped."""

class CacheAdapter:
    """The engine's CacheStore over a result cache. Results larger than `max_entry_bytes` are not kept;
    `written_bytes` counts what was stored, so the owner knows when to prune.

    The cache only saves time: a result that cannot be cached (the disk is full, say) is logged and
    handed to `on_error`, and the node that produced it still succeeds."""

    def __init__(self, cache: ResultCache, max_entry_bytes: int | None = None,
                 on_error: Callable[[Exception], None] | None = None, usable: Callable[[dict], bool] | None = None):
        self.cache = cache
        self.usable = usable  # a record it says no to (its artifact was collected) is a miss
        self.max_entry_bytes = max_entry_bytes
        self.on_error = on_error
        self.written_bytes = 0

    def get_many(self, keys: list[str]) -> dict[str, dict]:
        found = self.cache.cache_get_many(keys)
        if self.usable is None:
            return found
        return {key: record for key, record in found.items() if self.usable(record)}

    def put(self, key: str, record: dict) -> None:
        try:
            self.written_bytes += self.cache.cache_put(key, record, self.max_entry_bytes)
        except Exception as exc:
            log.warning("a result was not cached: %s", getattr(exc, "message", None) or repr(exc))
            if self.on_error is not None:
                self.on_error(exc)
